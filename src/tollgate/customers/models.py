"""Customers, the resources they subscribe per workspace, and their promotional grants."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tollgate.catalog.enums import ResetPeriod
from tollgate.catalog.models import Feature
from tollgate.db.base import Base, BigIntPK, TimestampMixin, UTCDateTime, enum_column

Json = dict[str, Any]


class Customer(TimestampMixin, Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("environment_id", "ref_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    ref_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255), index=True)
    billing_id: Mapped[str | None] = mapped_column(String(255))
    billing_currency: Mapped[str | None] = mapped_column(String(8))
    coupon_id: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    default_payment_method: Mapped[Json | None] = mapped_column(JSON)
    integrations: Mapped[list[Json]] = mapped_column(JSON, default=list)
    passthrough: Mapped[Json | None] = mapped_column(JSON)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped in the transaction of every change to what the customer is entitled to; a
    # cached snapshot older than this is stale (see entitlements.snapshots).
    entitlements_version: Mapped[int] = mapped_column(BigInteger, default=1)
    # A digest of the terms last announced in `entitlements.updated`, per scope (the
    # customer, each resource), so a change that leaves them as they were says nothing.
    announced_entitlements: Mapped[dict[str, str] | None] = mapped_column(JSON)


class CustomerResource(TimestampMixin, Base):
    """A workspace, project or seat group of a customer that holds its own subscriptions."""

    __tablename__ = "customer_resources"
    __table_args__ = (UniqueConstraint("customer_id", "ref_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    ref_id: Mapped[str] = mapped_column(String(255))


class PromotionStatus(StrEnum):
    ACTIVE = "Active"
    EXPIRED = "Expired"
    PAUSED = "Paused"


class PromotionPeriod(StrEnum):
    WEEK = "1 week"
    MONTH = "1 month"
    HALF_YEAR = "6 month"
    YEAR = "1 year"
    LIFETIME = "lifetime"
    CUSTOM = "custom"


class PromotionalEntitlement(TimestampMixin, Base):
    """A grant to one customer outside any plan. One row per customer and feature: a new
    grant replaces the old one, and a revoked or ended grant stays, Expired, as history."""

    __tablename__ = "promotional_entitlements"
    __table_args__ = (UniqueConstraint("customer_id", "feature_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id"), index=True)
    status: Mapped[PromotionStatus] = mapped_column(enum_column(PromotionStatus))
    period: Mapped[PromotionPeriod] = mapped_column(enum_column(PromotionPeriod))
    start_date: Mapped[datetime] = mapped_column(UTCDateTime())
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    usage_limit: Mapped[int | None] = mapped_column(BigInteger)
    has_unlimited_usage: Mapped[bool] = mapped_column(Boolean, default=False)
    has_soft_limit: Mapped[bool] = mapped_column(Boolean, default=False)
    reset_period: Mapped[ResetPeriod | None] = mapped_column(enum_column(ResetPeriod))
    reset_period_configuration: Mapped[Json | None] = mapped_column(JSON)
    enum_values: Mapped[list[str] | None] = mapped_column(JSON)
    is_visible: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)

    feature: Mapped[Feature] = relationship(lazy="raise")
    customer: Mapped[Customer] = relationship(lazy="raise")

"""Subscriptions: a customer holding a published plan version and add-on versions.

A subscription points at immutable package versions, so publishing a plan never changes
what an existing customer bought unless they are migrated. `next_transition_at` is the
earliest moment something is due (start, trial end, period end, cancellation, a scheduled
update); the lifecycle job picks rows by it."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tollgate.catalog.enums import PricingType
from tollgate.catalog.models import PackageVersion
from tollgate.customers.models import Customer, CustomerResource
from tollgate.db.base import Base, BigIntPK, TimestampMixin, UTCDateTime, enum_column
from tollgate.subscriptions.enums import (
    BillingPeriod,
    CancelReason,
    PaymentCollectionMethod,
    ScheduleStatus,
    ScheduleType,
    SubscriptionStatus,
    TrialEndBehavior,
)
from tollgate.subscriptions.targets import ScheduleTarget, ScheduleTargetJson


class Subscription(TimestampMixin, Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("environment_id", "ref_id"),
        Index("ix_subscriptions_customer_status", "customer_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    ref_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    resource_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer_resources.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("package_versions.id"), index=True)
    status: Mapped[SubscriptionStatus] = mapped_column(enum_column(SubscriptionStatus))
    pricing_type: Mapped[PricingType] = mapped_column(enum_column(PricingType))
    billing_period: Mapped[BillingPeriod] = mapped_column(enum_column(BillingPeriod))
    billing_id: Mapped[str | None] = mapped_column(String(255))
    # What a paid subscription is billed in, and its quantity of each PER_UNIT feature
    # (seats, say); null and empty while it holds nothing with a price.
    currency: Mapped[str | None] = mapped_column(String(3))
    unit_quantities: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # The coupon applied, as its terms were then (see billing.py); null: none.
    coupon: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # None reads as CHARGE: only those are charged by the payment provider.
    payment_collection_method: Mapped[PaymentCollectionMethod | None] = mapped_column(
        enum_column(PaymentCollectionMethod)
    )
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    start_date: Mapped[datetime] = mapped_column(UTCDateTime())
    billing_cycle_anchor: Mapped[datetime] = mapped_column(UTCDateTime())
    current_period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    current_period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    trial_end_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trial_end_behavior: Mapped[TrialEndBehavior | None] = mapped_column(
        enum_column(TrialEndBehavior)
    )
    # When access ends (a cancellation that took or will take effect); null while open.
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancellation_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[CancelReason | None] = mapped_column(enum_column(CancelReason))
    next_transition_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    customer: Mapped[Customer] = relationship(lazy="raise")
    resource: Mapped[CustomerResource | None] = relationship(lazy="raise")
    plan_version: Mapped[PackageVersion] = relationship(lazy="raise")
    addons: Mapped[list["SubscriptionAddon"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="SubscriptionAddon.id"
    )
    schedules: Mapped[list["SubscriptionSchedule"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="SubscriptionSchedule.id"
    )


class SubscriptionAddon(Base):
    __tablename__ = "subscription_addons"
    __table_args__ = (UniqueConstraint("subscription_id", "addon_version_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    addon_version_id: Mapped[int] = mapped_column(ForeignKey("package_versions.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)

    addon_version: Mapped[PackageVersion] = relationship(lazy="raise")


class SubscriptionSchedule(TimestampMixin, Base):
    """A change that takes effect later (a downgrade at period end, a migration)."""

    __tablename__ = "subscription_schedules"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    schedule_type: Mapped[ScheduleType] = mapped_column(enum_column(ScheduleType))
    status: Mapped[ScheduleStatus] = mapped_column(enum_column(ScheduleStatus))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What the subscription becomes (stored as JSON; see targets.py).
    target: Mapped[ScheduleTarget] = mapped_column(ScheduleTargetJson)

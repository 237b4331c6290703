"""Usage tables: counters per period, and the reports and events that moved them.

Amounts are scaled integers (see `amounts.py`). `resource_ref` is "" for usage of the
customer itself, so it can take part in unique constraints on both databases.

These tables take thousands of rows a second, and every index is paid on each row: they
have only the indexes their reads and unique rules need. Their environment and feature
columns are left unindexed; neither parent is deleted while it has usage."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.db.base import Base, BigIntPK, UTCDateTime, enum_column, utcnow


class UpdateBehavior(StrEnum):
    DELTA = "DELTA"
    SET = "SET"


class UsageCounter(Base):
    """One customer's usage of one feature (per resource) in one usage period."""

    __tablename__ = "usage_counters"
    __table_args__ = (
        UniqueConstraint("customer_id", "feature_id", "resource_ref", "period_start"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    resource_ref: Mapped[str] = mapped_column(String(255))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: never resets
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    # What an event meter has aggregated so far; `value` is derived from them.
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    event_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    event_min: Mapped[int | None] = mapped_column(BigInteger)
    event_max: Mapped[int | None] = mapped_column(BigInteger)
    unique_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # When usage first reached the limit in this period: `entitlement.usage_exceeded` once.
    limit_reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UsageRecord(Base):
    """A usage report as it was applied: the history, and the memory of idempotency keys
    (a retry within the window gets this record's answer back)."""

    __tablename__ = "usage_records"
    __table_args__ = (
        UniqueConstraint("environment_id", "idempotency_key"),
        Index(None, "customer_id", "feature_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    resource_ref: Mapped[str] = mapped_column(String(255))
    # Cleared once the idempotency window has passed, so the key may be used again.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    behavior: Mapped[UpdateBehavior] = mapped_column(enum_column(UpdateBehavior))
    value: Mapped[int] = mapped_column(BigInteger)
    change: Mapped[int] = mapped_column(BigInteger)  # what it added to the counter
    usage_after: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dimensions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # when the usage happened
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageEvent(Base):
    """A raw event, kept for idempotency and history; meters turned it into usage when it
    was stored."""

    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("environment_id", "idempotency_key"),
        Index(None, "customer_id", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    resource_ref: Mapped[str] = mapped_column(String(255))
    event_name: Mapped[str] = mapped_column(String(255))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    dimensions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MeterUniqueValue(Base):
    """A value a UNIQUE meter has already counted in a counter's period."""

    __tablename__ = "meter_unique_values"
    __table_args__ = (UniqueConstraint("counter_id", "value"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("usage_counters.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(String(255))

"""The coupons table. A fixed coupon's amounts are whole minor units per currency; a
percentage is kept as the exact decimal text it was given."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.db.base import Base, BigIntPK, UTCDateTime, enum_column


class CouponStatus(StrEnum):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("environment_id", "ref_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    ref_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    percent_off: Mapped[str | None] = mapped_column(String(16))
    # [{"currency": "usd", "minor": 500}, ...]
    amounts_off: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    duration_in_months: Mapped[int | None] = mapped_column(Integer)  # None: for ever
    status: Mapped[CouponStatus] = mapped_column(enum_column(CouponStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

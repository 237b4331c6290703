"""Creating, reading, renaming and archiving coupons.

A coupon takes either a percentage off (above 0, at most 100) or fixed amounts off, one per
currency, each in whole minor units of its currency. Its terms never change once created
(subscriptions hold them); only its name, description and metadata may, and archiving
stops it from being applied anew."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.coupons.models import Coupon, CouponStatus
from tollgate.coupons.schemas import AmountOffRead, CouponCreate, CouponRead, CouponUpdate
from tollgate.db.errors import flush_unique
from tollgate.db.lookup import get_by_ref
from tollgate.errors import InvalidValue
from tollgate.kit.filters import CreatedAtRange, range_conditions
from tollgate.kit.money import MoneyError, from_minor, to_minor
from tollgate.kit.pagination import Cursors, PageRequest, paginate

# A percentage is stored as written, to 12 decimal places: "99.999999999999" fits its column.
_PERCENT_PLACES = Decimal(1).scaleb(-12)


def create_coupon(
    session: Session, *, environment_id: int, data: CouponCreate, now: datetime
) -> Coupon:
    if (data.percent_off is None) == (not data.amounts_off):
        raise InvalidValue(
            "give either percentOff or amountsOff (one amount per currency)", field="percentOff"
        )
    amounts: list[dict[str, Any]] | None = None
    if data.amounts_off:
        amounts = []
        for i, off in enumerate(data.amounts_off):
            field = f"amountsOff.{i}"
            if any(a["currency"] == off.currency for a in amounts):
                raise InvalidValue(f"{off.currency.upper()} is given twice", field=field)
            if off.amount <= 0:
                raise InvalidValue("an amount off is above 0", field=f"{field}.amount")
            try:
                amounts.append(
                    {"currency": off.currency, "minor": to_minor(off.amount, off.currency)}
                )
            except MoneyError as error:
                raise InvalidValue(str(error), field=f"{field}.amount") from error
    percent = data.percent_off
    if percent is not None and not Decimal(0) < percent <= 100:
        raise InvalidValue("percentOff is above 0 and at most 100", field="percentOff")
    if percent is not None and percent != percent.quantize(_PERCENT_PLACES):
        raise InvalidValue("percentOff has at most 12 decimal places", field="percentOff")
    coupon = Coupon(
        environment_id=environment_id,
        ref_id=data.id,
        name=data.name,
        description=data.description,
        metadata_=data.metadata or {},
        percent_off=None if percent is None else str(percent),
        amounts_off=amounts,
        duration_in_months=data.duration_in_months,
        status=CouponStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    session.add(coupon)
    flush_unique(session, kind="coupon", ref_id=data.id)
    return coupon


def get_coupon(session: Session, *, environment_id: int, ref_id: str, lock: bool = False) -> Coupon:
    return get_by_ref(
        session, Coupon, environment_id=environment_id, ref_id=ref_id, noun="coupon", lock=lock
    )


def list_coupons(
    session: Session,
    *,
    environment_id: int,
    page: PageRequest,
    created_at: CreatedAtRange,
    ref_id: str | None = None,
    statuses: Sequence[CouponStatus] | None = None,
    kind: str | None = None,
) -> tuple[Sequence[Coupon], Cursors]:
    query = select(Coupon).where(
        Coupon.environment_id == environment_id, *range_conditions(Coupon.created_at, created_at)
    )
    if ref_id is not None:
        query = query.where(Coupon.ref_id == ref_id)
    if statuses:
        query = query.where(Coupon.status.in_(statuses))
    if kind == "PERCENTAGE":
        query = query.where(Coupon.percent_off.is_not(None))
    elif kind == "FIXED":
        query = query.where(Coupon.percent_off.is_(None))
    return paginate(session, query, Coupon.id, page)


def update_coupon(
    session: Session, *, environment_id: int, ref_id: str, data: CouponUpdate, now: datetime
) -> Coupon:
    coupon = get_coupon(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    given = data.model_fields_set
    if "name" in given:
        if data.name is None:
            raise InvalidValue("'name' cannot be null", field="name")
        coupon.name = data.name
    if "description" in given:
        coupon.description = data.description
    if "metadata" in given:
        coupon.metadata_ = data.metadata or {}
    coupon.updated_at = now
    return coupon


def archive_coupon(session: Session, *, environment_id: int, ref_id: str, now: datetime) -> Coupon:
    coupon = get_coupon(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    if coupon.status is not CouponStatus.ARCHIVED:
        coupon.status = CouponStatus.ARCHIVED
        coupon.updated_at = now
    return coupon


def to_read(coupon: Coupon) -> CouponRead:
    return CouponRead(
        id=coupon.ref_id,
        name=coupon.name,
        description=coupon.description,
        metadata=coupon.metadata_ or {},
        type="PERCENTAGE" if coupon.percent_off is not None else "FIXED",
        percent_off=None if coupon.percent_off is None else Decimal(coupon.percent_off),
        amounts_off=None
        if coupon.amounts_off is None
        else [
            AmountOffRead(amount=from_minor(a["minor"], a["currency"]), currency=a["currency"])
            for a in coupon.amounts_off
        ],
        duration_in_months=coupon.duration_in_months,
        status=coupon.status.value,
        created_at=coupon.created_at,
        updated_at=coupon.updated_at,
    )

"""The coupons API (/api/v1/coupons), Stigg's paths."""

from typing import Annotated, Literal

from fastapi import Depends, Query, status

from tollgate.coupons import service
from tollgate.coupons.models import CouponStatus
from tollgate.coupons.schemas import CouponCreate, CouponRead, CouponUpdate
from tollgate.http.deps import DbSession, Now, ReadPrincipal, WritePrincipal
from tollgate.http.params import created_at_range, enum_list, enum_query, page_request
from tollgate.http.routing import api_router
from tollgate.http.schemas import Envelope, Page, page_of
from tollgate.kit.filters import CreatedAtRange
from tollgate.kit.pagination import PageRequest

router = api_router(prefix="/api/v1/coupons", tags=["coupons"])
CouponEnvelope = Envelope[CouponRead]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_coupon(
    body: CouponCreate, session: DbSession, principal: WritePrincipal, now: Now
) -> CouponEnvelope:
    """Create a coupon: `percentOff`, or `amountsOff` per currency; for `durationInMonths`
    or, without it, for ever."""
    coupon = service.create_coupon(
        session, environment_id=principal.environment_id, data=body, now=now
    )
    return CouponEnvelope(data=service.to_read(coupon))


@router.get("")
def list_coupons(
    session: DbSession,
    principal: ReadPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    created_at: Annotated[CreatedAtRange, Depends(created_at_range)],
    id: str | None = Query(None, max_length=255),
    status: str | None = enum_query(CouponStatus),
    type: Literal["FIXED", "PERCENTAGE"] | None = Query(None),
) -> Page[CouponRead]:
    """The environment's coupons, oldest first."""
    coupons, cursors = service.list_coupons(
        session,
        environment_id=principal.environment_id,
        page=page,
        created_at=created_at,
        ref_id=id,
        statuses=enum_list(status, CouponStatus, field="status"),
        kind=type,
    )
    return page_of([service.to_read(c) for c in coupons], cursors)


@router.get("/{coupon_id}")
def get_coupon(coupon_id: str, session: DbSession, principal: ReadPrincipal) -> CouponEnvelope:
    coupon = service.get_coupon(session, environment_id=principal.environment_id, ref_id=coupon_id)
    return CouponEnvelope(data=service.to_read(coupon))


@router.patch("/{coupon_id}")
def update_coupon(
    coupon_id: str, body: CouponUpdate, session: DbSession, principal: WritePrincipal, now: Now
) -> CouponEnvelope:
    """Rename or describe a coupon; its terms never change."""
    coupon = service.update_coupon(
        session, environment_id=principal.environment_id, ref_id=coupon_id, data=body, now=now
    )
    return CouponEnvelope(data=service.to_read(coupon))


@router.post("/{coupon_id}/archive")
def archive_coupon(
    coupon_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> CouponEnvelope:
    """Archive a coupon: it stays readable and is applied to nothing new."""
    coupon = service.archive_coupon(
        session, environment_id=principal.environment_id, ref_id=coupon_id, now=now
    )
    return CouponEnvelope(data=service.to_read(coupon))

"""Promotional entitlements: grants to one customer outside any plan, for a while.

They override what the customer's subscriptions say about the feature. One grant per
customer and feature: granting again replaces it; a revoked or ended grant stays, Expired."""

from collections.abc import Sequence
from datetime import datetime

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.models import Feature
from tollgate.catalog.packages.entitlements import (
    check_terms,
    reset_configuration,
    usable_feature,
)
from tollgate.catalog.packages.schemas import ResetAnchor
from tollgate.customers.announcements import announce_promotions
from tollgate.customers.feed import Trigger, record_holdings_change
from tollgate.customers.lookup import get_customer, live_customer
from tollgate.customers.models import (
    Customer,
    PromotionalEntitlement,
    PromotionPeriod,
    PromotionStatus,
)
from tollgate.customers.schemas import PromotionGrant, PromotionGrants, PromotionRead
from tollgate.errors import InvalidValue, NotFound
from tollgate.kit.filters import CreatedAtRange, range_conditions
from tollgate.kit.pagination import Cursors, PageRequest, paginate
from tollgate.webhooks.event_types import EventType

PROMOTIONS = Trigger.PROMOTIONAL_ENTITLEMENT_CHANGED
_LENGTHS = {
    PromotionPeriod.WEEK: relativedelta(weeks=1),
    PromotionPeriod.MONTH: relativedelta(months=1),
    PromotionPeriod.HALF_YEAR: relativedelta(months=6),
    PromotionPeriod.YEAR: relativedelta(years=1),
}


def list_promotions(
    session: Session,
    *,
    environment_id: int,
    customer_ref: str,
    page: PageRequest,
    created_at: CreatedAtRange,
    statuses: list[PromotionStatus] | None = None,
) -> tuple[Sequence[PromotionalEntitlement], Cursors]:
    customer = get_customer(session, environment_id=environment_id, ref_id=customer_ref)
    query = (
        select(PromotionalEntitlement)
        .options(selectinload(PromotionalEntitlement.feature))
        .where(
            PromotionalEntitlement.customer_id == customer.id,
            *range_conditions(PromotionalEntitlement.created_at, created_at),
        )
    )
    if statuses:
        query = query.where(PromotionalEntitlement.status.in_(statuses))
    return paginate(session, query, PromotionalEntitlement.id, page)


def grant_promotions(
    session: Session,
    *,
    environment_id: int,
    customer_ref: str,
    data: PromotionGrants,
    now: datetime,
) -> list[PromotionalEntitlement]:
    customer = live_customer(session, environment_id=environment_id, ref_id=customer_ref)
    features = [grant.feature_id for grant in data.promotional_entitlements]
    repeated = sorted({f for f in features if features.count(f) > 1})
    if repeated:
        raise InvalidValue(
            f"grant each feature once per request; repeated: {', '.join(repeated)}",
            field="promotionalEntitlements",
        )
    changes = [
        _grant(session, customer, grant, f"promotionalEntitlements.{index}", now)
        for index, grant in enumerate(data.promotional_entitlements)
    ]
    session.flush()
    announce_promotions(session, customer.environment_id, changes, now)
    record_holdings_change(session, customer, trigger=PROMOTIONS)
    return [promotion for _, promotion in changes]


def _grant(
    session: Session, customer: Customer, grant: PromotionGrant, where: str, now: datetime
) -> tuple[EventType, PromotionalEntitlement]:
    feature = usable_feature(
        session,
        environment_id=customer.environment_id,
        ref_id=grant.feature_id,
        field=f"{where}.featureId",
    )
    promotion = session.scalar(
        select(PromotionalEntitlement).where(
            PromotionalEntitlement.customer_id == customer.id,
            PromotionalEntitlement.feature_id == feature.id,
        )
    )
    if promotion is None:
        promotion = PromotionalEntitlement(
            environment_id=customer.environment_id,
            customer_id=customer.id,
            feature_id=feature.id,
            created_at=now,
        )
        session.add(promotion)
    replaces = promotion.status is PromotionStatus.ACTIVE
    promotion.feature = feature
    promotion.status = PromotionStatus.ACTIVE
    promotion.period = grant.period
    promotion.start_date = promotion.updated_at = now
    promotion.end_date = _end_date(grant, now, where)
    promotion.usage_limit = grant.usage_limit
    promotion.has_unlimited_usage = bool(grant.has_unlimited_usage)
    promotion.has_soft_limit = bool(grant.has_soft_limit)
    promotion.reset_period = grant.reset_period
    promotion.reset_period_configuration = reset_configuration(grant)
    promotion.enum_values = grant.enum_values
    promotion.is_visible = True if grant.is_visible is None else grant.is_visible
    promotion.description = grant.description
    check_terms(promotion, feature, where)
    return (EventType.PROMOTION_UPDATED if replaces else EventType.PROMOTION_GRANTED), promotion


def _end_date(grant: PromotionGrant, now: datetime, where: str) -> datetime | None:
    if grant.period is PromotionPeriod.CUSTOM:
        end = grant.custom_end_date
        if end is None:
            raise InvalidValue(
                "period 'custom' needs a customEndDate", field=f"{where}.customEndDate"
            )
        if end <= now:
            raise InvalidValue(
                "customEndDate must be in the future", field=f"{where}.customEndDate"
            )
        return end
    if grant.custom_end_date is not None:
        raise InvalidValue(
            f"customEndDate applies only to period 'custom', not '{grant.period.value}'",
            field=f"{where}.customEndDate",
        )
    if grant.period is PromotionPeriod.LIFETIME:
        return None
    return now + _LENGTHS[grant.period]


def revoke_promotion(
    session: Session, *, environment_id: int, customer_ref: str, feature_ref: str, now: datetime
) -> PromotionalEntitlement:
    customer = get_customer(session, environment_id=environment_id, ref_id=customer_ref, lock=True)
    promotion = session.scalar(
        select(PromotionalEntitlement)
        .join(Feature)
        .options(selectinload(PromotionalEntitlement.feature))
        .where(
            PromotionalEntitlement.customer_id == customer.id,
            Feature.ref_id == feature_ref,
            PromotionalEntitlement.status == PromotionStatus.ACTIVE,
        )
    )
    if promotion is None:
        raise NotFound(f"active promotional entitlement of customer '{customer_ref}'", feature_ref)
    _expire(promotion, now)
    announce_promotions(session, environment_id, [(EventType.PROMOTION_REVOKED, promotion)], now)
    record_holdings_change(session, customer, trigger=PROMOTIONS)
    return promotion


def _expire(promotion: PromotionalEntitlement, now: datetime) -> None:
    promotion.status = PromotionStatus.EXPIRED
    promotion.updated_at = now
    if promotion.end_date is None or promotion.end_date > now:
        promotion.end_date = now


def expire_due_promotions(session: Session, *, now: datetime, limit: int = 100) -> int:
    """Mark grants whose end has passed as Expired (the lifecycle job calls this). Rows
    another worker holds are skipped, so several workers never expire one grant twice."""
    due = session.scalars(
        select(PromotionalEntitlement)
        .where(
            PromotionalEntitlement.status == PromotionStatus.ACTIVE,
            PromotionalEntitlement.end_date <= now,
        )
        .order_by(PromotionalEntitlement.end_date)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    customers: set[int] = set()
    for promotion in due:
        _expire(promotion, now)
        customers.add(promotion.customer_id)
    for environment_id in {promotion.environment_id for promotion in due}:
        expired = [p for p in due if p.environment_id == environment_id]
        announce_promotions(
            session, environment_id, [(EventType.PROMOTION_EXPIRED, p) for p in expired], now
        )
    for customer in session.scalars(select(Customer).where(Customer.id.in_(customers))):
        record_holdings_change(session, customer, trigger=PROMOTIONS)
    return len(due)


def to_read(promotion: PromotionalEntitlement, *, environment_name: str) -> PromotionRead:
    configuration = promotion.reset_period_configuration
    return PromotionRead(
        id=str(promotion.id),
        feature_id=promotion.feature.ref_id,
        environment_id=environment_name,
        status=promotion.status,
        period=promotion.period,
        start_date=promotion.start_date,
        end_date=promotion.end_date,
        usage_limit=promotion.usage_limit,
        has_unlimited_usage=promotion.has_unlimited_usage,
        has_soft_limit=promotion.has_soft_limit,
        reset_period=promotion.reset_period,
        reset_period_configuration=ResetAnchor.model_validate(configuration)
        if configuration
        else None,
        enum_values=promotion.enum_values,
        is_visible=promotion.is_visible,
        description=promotion.description,
        created_at=promotion.created_at,
        updated_at=promotion.updated_at,
    )

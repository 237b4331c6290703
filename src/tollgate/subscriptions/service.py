"""Subscriptions: provisioning (with upgrades and scheduled downgrades), reads, previews."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.enums import PricingType
from tollgate.catalog.models import Package, PackageVersion
from tollgate.customers.lookup import get_customer, live_customer
from tollgate.customers.models import Customer, CustomerResource
from tollgate.db.lookup import get_by_ref
from tollgate.errors import InvalidValue, NotImplementedYet
from tollgate.kit.filters import CreatedAtRange, range_conditions
from tollgate.kit.pagination import Cursors, PageRequest, paginate
from tollgate.subscriptions import lifecycle, offer
from tollgate.subscriptions.enums import (
    BillingPeriod,
    CancelReason,
    ScheduleStrategy,
    ScheduleType,
    SubscriptionStatus,
    TrialEndBehavior,
)
from tollgate.subscriptions.models import Subscription, SubscriptionAddon
from tollgate.subscriptions.schemas import (
    AddonRead,
    FutureUpdate,
    SubscriptionPreview,
    SubscriptionProvision,
    SubscriptionRead,
    SubscriptionTerms,
    TargetPackage,
    TrialOverride,
    TrialRead,
    Unsupported,
)
from tollgate.subscriptions.targets import AddonTarget, ScheduleTarget

_UNSUPPORTED_DETAIL = "prices, coupons, budgets and custom entitlements arrive with checkout"


# What reading a subscription's wire shape needs, loaded up front.
_RELATIONS = (
    selectinload(Subscription.customer),
    selectinload(Subscription.resource),
    selectinload(Subscription.plan_version).selectinload(PackageVersion.package),
    selectinload(Subscription.addons)
    .selectinload(SubscriptionAddon.addon_version)
    .selectinload(PackageVersion.package),
    selectinload(Subscription.schedules),
)


def get_subscription(
    session: Session, *, environment_id: int, ref_id: str, lock: bool = False
) -> Subscription:
    return get_by_ref(
        session,
        Subscription,
        environment_id=environment_id,
        ref_id=ref_id,
        noun="subscription",
        lock=lock,
        options=_RELATIONS,
        reload=True,
    )


def subscription_to_change(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> Subscription:
    """The subscription, locked, with whatever was due by `now` already carried out, so a
    change applies to its present state rather than to one the job has not caught up on."""
    subscription = get_subscription(
        session, environment_id=environment_id, ref_id=ref_id, lock=True
    )
    if subscription.next_transition_at is not None and subscription.next_transition_at <= now:
        lifecycle.advance(session, subscription, now=now)
        subscription = reload(session, subscription)
    return subscription


def reload(session: Session, subscription: Subscription) -> Subscription:
    """The subscription with every relation loaded again, after changes."""
    session.flush()
    return get_subscription(
        session, environment_id=subscription.environment_id, ref_id=subscription.ref_id
    )


def list_subscriptions(
    session: Session,
    *,
    environment_id: int,
    page: PageRequest,
    created_at: CreatedAtRange,
    customer_ref: str | None = None,
    plan_ref: str | None = None,
    resource_ref: str | None = None,
    statuses: list[SubscriptionStatus] | None = None,
    pricing_types: list[PricingType] | None = None,
) -> tuple[Sequence[Subscription], Cursors]:
    query = (
        select(Subscription)
        .options(*_RELATIONS)
        .where(
            Subscription.environment_id == environment_id,
            *range_conditions(Subscription.created_at, created_at),
        )
    )
    if customer_ref is not None:
        query = query.join(Customer, Customer.id == Subscription.customer_id).where(
            Customer.ref_id == customer_ref
        )
    if resource_ref is not None:
        query = query.join(CustomerResource, CustomerResource.id == Subscription.resource_id).where(
            CustomerResource.ref_id == resource_ref
        )
    if plan_ref is not None:
        query = (
            query.join(PackageVersion, PackageVersion.id == Subscription.plan_version_id)
            .join(Package, Package.id == PackageVersion.package_id)
            .where(Package.ref_id == plan_ref)
        )
    if statuses:
        query = query.where(Subscription.status.in_(statuses))
    if pricing_types:
        query = query.where(Subscription.pricing_type.in_(pricing_types))
    return paginate(session, query, Subscription.id, page)


# -- provisioning ------------------------------------------------------------------------


def refuse_unsupported(data: Unsupported) -> None:
    for field in Unsupported.model_fields:
        value = getattr(data, field)
        if value is not None and value is not False and value != []:
            raise NotImplementedYet(to_camel(field), _UNSUPPORTED_DETAIL)


def _refuse_terms(data: SubscriptionTerms) -> None:
    refuse_unsupported(data)
    if data.paying_customer_id is not None:
        raise NotImplementedYet("payingCustomerId", "another customer paying arrives with checkout")
    if data.unit_quantity is not None:
        raise NotImplementedYet("unitQuantity", "per-unit prices arrive with checkout")


def provision(
    session: Session, *, environment_id: int, data: SubscriptionProvision, now: datetime
) -> tuple[Subscription, bool]:
    """Start a subscription. In a product that holds one subscription per customer (and
    resource), the new plan replaces the current one: at once for an upgrade, at the end
    of the billing period for a downgrade (the second value is then True, and the current
    subscription, now with a scheduled update, is returned)."""
    _refuse_terms(data)
    if data.checkout_options is not None:
        raise NotImplementedYet("checkoutOptions", "checkout pages arrive later")
    customer = live_customer(session, environment_id=environment_id, ref_id=data.customer_id)
    plan = offer.plan(session, environment_id=environment_id, ref_id=data.plan_id)
    addons = offer.addons(session, plan=plan, requested=data.addons or [])
    start = data.start_date or now
    end = data.cancellation_date
    if end is not None and end <= max(start, now):
        raise InvalidValue("cancellationDate must be after the start", field="cancellationDate")
    resource = _resource(session, customer, data.resource_id, now)
    billing_period = data.billing_period or BillingPeriod.MONTHLY
    current = _replaced(session, customer, plan, resource, now)
    if current:
        strategy = data.schedule_strategy or ScheduleStrategy.END_OF_BILLING_PERIOD
        latest = current[-1]
        downgrade = offer.is_downgrade(session, current=latest.plan_version, new=plan.version)
        if downgrade and strategy is not ScheduleStrategy.IMMEDIATE:
            _schedule_plan_change(session, latest, plan, addons, billing_period, strategy, now)
            return latest, True
        for subscription in current:
            # Replaced when the new one starts, so a future start leaves no gap.
            lifecycle.end_at(
                session,
                subscription,
                at=max(start, now),
                reason=CancelReason.UPGRADE_OR_DOWNGRADE,
                now=now,
            )
    new = lifecycle.NewSubscription(
        customer=customer,
        plan=plan,
        addons=addons,
        billing_period=billing_period,
        start=start,
        trial=_trial(session, customer, plan, data.trial_override_configuration, start),
        resource=resource,
        ref_id=data.id,
        metadata=data.metadata,
        billing_id=data.billing_id,
        end=end,
    )
    return lifecycle.create(session, new, now=now), False


def _resource(
    session: Session, customer: Customer, ref_id: str | None, now: datetime
) -> CustomerResource | None:
    if ref_id is None:
        return None
    resource = session.scalar(
        select(CustomerResource).where(
            CustomerResource.customer_id == customer.id, CustomerResource.ref_id == ref_id
        )
    )
    if resource is None:
        resource = CustomerResource(
            customer_id=customer.id, ref_id=ref_id, created_at=now, updated_at=now
        )
        session.add(resource)
        session.flush()
    return resource


def _replaced(
    session: Session,
    customer: Customer,
    plan: offer.Offered,
    resource: CustomerResource | None,
    now: datetime,
    *,
    catch_up: bool = True,
) -> list[Subscription]:
    """The live subscriptions a new one in this product replaces (none if it allows many)."""
    if plan.package.product.is_multiple_subscriptions:
        return []

    def live() -> list[Subscription]:
        return lifecycle.live_in_product(
            session,
            customer_id=customer.id,
            product_id=plan.package.product_id,
            resource_id=resource.id if resource else None,
        )

    found = live()
    due = [s for s in found if s.next_transition_at is not None and s.next_transition_at <= now]
    if not catch_up:
        return found
    for subscription in due:
        lifecycle.advance(session, subscription, now=now)
    return live() if due else found


def _schedule_plan_change(
    session: Session,
    subscription: Subscription,
    plan: offer.Offered,
    addons: list[offer.OfferedAddon],
    billing_period: BillingPeriod,
    strategy: ScheduleStrategy,
    now: datetime,
) -> None:
    at = subscription.current_period_end
    if strategy is ScheduleStrategy.END_OF_BILLING_MONTH:
        at = lifecycle.billing_bounds(
            subscription.billing_cycle_anchor, BillingPeriod.MONTHLY, now
        )[1]
    if subscription.end_date is not None and subscription.end_date <= at:
        raise InvalidValue(
            f"subscription '{subscription.ref_id}' ends before the downgrade would take effect",
            field="planId",
        )
    lifecycle.schedule_update(
        subscription,
        schedule_type=ScheduleType.DOWNGRADE,
        at=at,
        target=ScheduleTarget(
            plan_version_id=plan.version.id,
            addons=tuple(AddonTarget(a.version.id, a.quantity) for a in addons),
            billing_period=billing_period
            if billing_period is not subscription.billing_period
            else None,
        ),
        now=now,
    )
    lifecycle.refresh(session, subscription, now=now)


def _trial(
    session: Session,
    customer: Customer,
    plan: offer.Offered,
    override: TrialOverride | None,
    start: datetime,
) -> lifecycle.Trial | None:
    """The plan's default trial, once per customer and product, unless overridden."""
    config: dict[str, Any] = plan.version.default_trial_config or {}
    default_behavior = TrialEndBehavior(config.get("trialEndBehavior") or "CONVERT_TO_PAID")
    if override is not None:
        if not override.is_trial:
            return None
        end = override.trial_end_date
        if end is None:
            if not config:
                raise InvalidValue(
                    f"plan '{plan.package.ref_id}' has no default trial; give a trialEndDate",
                    field="trialOverrideConfiguration.trialEndDate",
                )
            end = _trial_end(start, config)
        if end <= start:
            raise InvalidValue(
                "the trial must end after the subscription starts",
                field="trialOverrideConfiguration.trialEndDate",
            )
        return lifecycle.Trial(end, override.trial_end_behavior or default_behavior)
    if not config or _had_trial(session, customer, plan):
        return None
    return lifecycle.Trial(_trial_end(start, config), default_behavior)


def _trial_end(start: datetime, config: dict[str, Any]) -> datetime:
    duration = float(config["duration"])
    if config.get("units") == "MONTH":
        return start + relativedelta(months=round(duration))
    return start + timedelta(days=duration)


def _had_trial(session: Session, customer: Customer, plan: offer.Offered) -> bool:
    return (
        session.scalar(
            select(Subscription.id)
            .where(
                Subscription.customer_id == customer.id,
                Subscription.product_id == plan.package.product_id,
                Subscription.trial_end_date.is_not(None),
            )
            .limit(1)
        )
        is not None
    )


def preview(
    session: Session, *, environment_id: int, data: SubscriptionPreview, now: datetime
) -> tuple[Customer, offer.Offered, list[offer.OfferedAddon], bool, bool]:
    """Validate a provision without making it: the customer, plan and add-ons it would
    hold, whether it is a downgrade, and whether it would be scheduled."""
    _refuse_terms(data)
    if data.billable_features is not None:
        raise NotImplementedYet("billableFeatures", "prices arrive with checkout")
    customer = get_customer(session, environment_id=environment_id, ref_id=data.customer_id)
    plan = offer.plan(session, environment_id=environment_id, ref_id=data.plan_id)
    addons = offer.addons(session, plan=plan, requested=data.addons or [])
    current = []
    if not plan.package.product.is_multiple_subscriptions:
        resource = (
            session.scalar(
                select(CustomerResource).where(
                    CustomerResource.customer_id == customer.id,
                    CustomerResource.ref_id == data.resource_id,
                )
            )
            if data.resource_id
            else None
        )
        current = _replaced(session, customer, plan, resource, now, catch_up=False)
    downgrade = bool(current) and offer.is_downgrade(
        session, current=current[-1].plan_version, new=plan.version
    )
    scheduled = downgrade and data.schedule_strategy is not ScheduleStrategy.IMMEDIATE
    return customer, plan, addons, downgrade, scheduled


# -- reads -------------------------------------------------------------------------------


def to_read(session: Session, subscription: Subscription) -> SubscriptionRead:
    trial = None
    if subscription.trial_end_date is not None and subscription.trial_end_behavior is not None:
        trial = TrialRead(trial_end_behavior=subscription.trial_end_behavior)
    return SubscriptionRead(
        id=subscription.ref_id,
        customer_id=subscription.customer.ref_id,
        resource_id=subscription.resource.ref_id if subscription.resource else None,
        plan_id=subscription.plan_version.package.ref_id,
        plan_version=subscription.plan_version.version_number,
        pricing_type=subscription.pricing_type,
        status=subscription.status,
        billing_id=subscription.billing_id,
        billing_period=subscription.billing_period,
        start_date=subscription.start_date,
        end_date=subscription.end_date,
        effective_end_date=subscription.end_date,
        cancellation_date=subscription.cancellation_date,
        cancel_reason=subscription.cancel_reason,
        billing_cycle_anchor=subscription.billing_cycle_anchor,
        current_billing_period_start=subscription.current_period_start,
        current_billing_period_end=subscription.current_period_end,
        trial_end_date=subscription.trial_end_date,
        trial=trial,
        addons=[
            AddonRead(id=a.addon_version.package.ref_id, quantity=a.quantity)
            for a in subscription.addons
        ],
        future_updates=_future_updates(session, subscription),
        metadata=subscription.metadata_ or {},
        created_at=subscription.created_at,
        updated_at=subscription.updated_at,
    )


def _future_updates(session: Session, subscription: Subscription) -> list[FutureUpdate]:
    pending = lifecycle.pending_schedules(subscription)
    version_ids = [s.target.plan_version_id for s in pending if s.target.plan_version_id]
    rows = session.execute(
        select(PackageVersion.id, Package.ref_id)
        .join(Package, Package.id == PackageVersion.package_id)
        .where(PackageVersion.id.in_(version_ids))
    )
    plan_refs = dict(rows.tuples().all())
    return [
        FutureUpdate(
            scheduled_execution_time=schedule.scheduled_at,
            schedule_status=schedule.status,
            subscription_schedule_type=schedule.schedule_type,
            target_package=TargetPackage(id=plan_refs[schedule.target.plan_version_id])
            if schedule.target.plan_version_id
            else None,
        )
        for schedule in pending
    ]

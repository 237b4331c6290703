"""The subscriptions domain's one face: every route calls these, and only these.

Provisioning (with upgrades now and downgrades scheduled), previews, reads, changes,
cancellation and migration. The request is checked here and in the modules behind this
one (`provisioning`, `changes`, `offer`); `lifecycle` then carries out the transitions."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.enums import MigrationType, PackageKind, PricingType
from tollgate.catalog.models import Package, PackageVersion
from tollgate.customers.lookup import get_customer, live_customer
from tollgate.customers.models import Customer, CustomerResource
from tollgate.db.lookup import get_by_ref
from tollgate.errors import InvalidValue, NotImplementedYet
from tollgate.kit.filters import CreatedAtRange, range_conditions
from tollgate.kit.pagination import Cursors, PageRequest, paginate
from tollgate.subscriptions import billing, changes, lifecycle, offer, provisioning, timing
from tollgate.subscriptions.enums import (
    BillingPeriod,
    CancelReason,
    PaymentCollectionMethod,
    ScheduleStrategy,
    ScheduleType,
    SubscriptionStatus,
)
from tollgate.subscriptions.models import Subscription, SubscriptionAddon
from tollgate.subscriptions.schemas import (
    REFUSED_BILLING_INFORMATION,
    AddonRead,
    BillingInformation,
    FutureUpdate,
    SubscriptionCancel,
    SubscriptionMigrate,
    SubscriptionPreview,
    SubscriptionProvision,
    SubscriptionRead,
    SubscriptionTerms,
    SubscriptionUpdate,
    TargetPackage,
    TrialRead,
    Unsupported,
)

_UNSUPPORTED_DETAIL = (
    "budgets, price overrides, a minimum spend of the subscription's own, custom entitlements "
    "and waiting for a payment's confirmation are not supported"
)


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
        subscription = reload_subscription(session, subscription)
    return subscription


def reload_subscription(session: Session, subscription: Subscription) -> Subscription:
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


def _refuse_unsupported(data: Unsupported) -> None:
    for field in Unsupported.model_fields:
        value = getattr(data, field)
        if value is not None and value is not False and value != []:
            raise NotImplementedYet(to_camel(field), _UNSUPPORTED_DETAIL)


def _refuse_billing_information(info: BillingInformation | None) -> None:
    for name in REFUSED_BILLING_INFORMATION if info is not None else ():
        value = getattr(info, name)
        if value is not None and value is not False and value != []:
            raise NotImplementedYet(
                f"billingInformation.{to_camel(name)}",
                "Tollgate's invoices are taxed, discounted and collected by its own rules "
                "(a coupon is applied by appliedCoupon.couponId)",
            )


def _refuse_terms(data: SubscriptionTerms) -> None:
    _refuse_unsupported(data)
    _refuse_billing_information(data.billing_information)
    if data.paying_customer_id is not None:
        raise NotImplementedYet("payingCustomerId", "another customer paying arrives with checkout")
    for i, charge in enumerate(data.charges or []):
        if charge.type == "CREDIT":
            raise NotImplementedYet(f"charges[{i}].type", "credits are not billed yet")


def check_plan_offered(session: Session, *, environment_id: int, ref_id: str, field: str) -> None:
    """Refuse, naming `field`, a plan nobody can be subscribed to now (422)."""
    offer.check_plan(session, environment_id=environment_id, ref_id=ref_id, field=field)


def provision_subscription(
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
    resource = provisioning.resource(session, customer, data.resource_id, now)
    billing_period = data.billing_period or BillingPeriod.MONTHLY
    current = provisioning.replaced(session, customer, plan, resource, now)
    price_terms = _price_terms(data, customer, plan, addons, billing_period, current)
    coupon = _coupon(session, environment_id, data, price_terms, at=max(start, now))
    if current:
        latest = current[-1]
        at = timing.scheduled_for(
            latest,
            change=ScheduleType.DOWNGRADE,
            decrease=offer.is_downgrade(session, current=latest.plan_version, new=plan.version),
            strategy=data.schedule_strategy,
            now=now,
        )
        if at is not None:
            provisioning.schedule_plan_change(
                session,
                latest,
                plan=plan,
                addons=addons,
                billing_period=billing_period,
                price_terms=price_terms,
                at=at,
                now=now,
            )
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
    trial = provisioning.trial(session, customer, plan, data.trial_override_configuration, start)
    new = lifecycle.NewSubscription(
        customer=customer,
        plan=plan,
        addons=addons,
        billing_period=billing_period,
        start=start,
        trial=trial,
        resource=resource,
        ref_id=data.id,
        metadata=data.metadata,
        billing_id=data.billing_id,
        end=end,
        currency=price_terms.currency,
        unit_quantities=price_terms.unit_quantities,
        coupon=coupon,
        payment_collection_method=data.payment_collection_method,
    )
    return lifecycle.create(session, new, now=now), False


def _price_terms(
    data: SubscriptionTerms,
    customer: Customer,
    plan: offer.Offered,
    addons: list[offer.OfferedAddon],
    billing_period: BillingPeriod,
    current: Sequence[Subscription],
) -> billing.PriceTerms:
    """The price terms provisioning (or its preview) would give, in one place for both."""
    return billing.choose(
        customer=customer,
        plan=plan,
        addons=addons,
        billing_period=billing_period,
        unit_quantity=data.unit_quantity,
        quantities=data.charges,
        replacing=current[-1].currency if current else None,
    )


def _coupon(
    session: Session,
    environment_id: int,
    data: SubscriptionTerms,
    price_terms: billing.PriceTerms,
    *,
    at: datetime,
) -> dict[str, Any] | None:
    if data.applied_coupon is None:
        return None
    return billing.coupon_terms(
        session,
        environment_id=environment_id,
        applied=data.applied_coupon,
        currency=price_terms.currency,
        field="appliedCoupon",
        now=at,
    )


@dataclass(frozen=True, slots=True)
class Preview:
    """What provisioning would do: who would hold what, from when, and whether it would
    replace the current plan as a downgrade (`is_scheduled` when that waits)."""

    customer: Customer
    plan: offer.Offered
    addons: list[offer.OfferedAddon]
    start: datetime
    period: tuple[datetime, datetime]
    is_downgrade: bool
    is_scheduled: bool
    billing_period: BillingPeriod
    price_terms: billing.PriceTerms
    in_trial: bool
    replacing: list[Subscription]
    coupon: dict[str, Any] | None = None


def preview_subscription(
    session: Session, *, environment_id: int, data: SubscriptionPreview, now: datetime
) -> Preview:
    """Check a provision as `provision_subscription` would, without making it."""
    _refuse_terms(data)
    if data.billable_features is not None:
        raise NotImplementedYet(
            "billableFeatures", "previews do not take estimated usage quantities"
        )
    customer = get_customer(session, environment_id=environment_id, ref_id=data.customer_id)
    plan = offer.plan(session, environment_id=environment_id, ref_id=data.plan_id)
    addons = offer.addons(session, plan=plan, requested=data.addons or [])
    current = []
    if not plan.package.product.is_multiple_subscriptions:
        resource = provisioning.existing_resource(session, customer, data.resource_id)
        current = provisioning.replaced(session, customer, plan, resource, now, catch_up=False)
    downgrade = bool(current) and offer.is_downgrade(
        session, current=current[-1].plan_version, new=plan.version
    )
    scheduled = bool(current) and (
        timing.scheduled_for(
            current[-1],
            change=ScheduleType.DOWNGRADE,
            decrease=downgrade,
            strategy=data.schedule_strategy,
            now=now,
        )
        is not None
    )
    start = data.start_date or now
    billing_period = data.billing_period or BillingPeriod.MONTHLY
    period = lifecycle.billing_bounds(start, billing_period, max(now, start))
    price_terms = _price_terms(data, customer, plan, addons, billing_period, current)
    trial = provisioning.trial(session, customer, plan, data.trial_override_configuration, start)
    coupon = _coupon(session, environment_id, data, price_terms, at=max(start, now))
    return Preview(
        customer,
        plan,
        addons,
        start,
        period,
        downgrade,
        scheduled,
        billing_period=billing_period,
        price_terms=price_terms,
        in_trial=trial is not None,
        replacing=[] if scheduled else list(current),
        coupon=coupon,
    )


# -- changes -----------------------------------------------------------------------------


def update_subscription(
    session: Session, *, environment_id: int, ref_id: str, data: SubscriptionUpdate, now: datetime
) -> Subscription:
    """Change add-ons, billing period, trial end, metadata or the cancellation date."""
    _refuse_unsupported(data)
    _refuse_billing_information(data.billing_information)
    for i, charge in enumerate(data.charges or []):
        if charge.type == "CREDIT":
            raise NotImplementedYet(f"charges.{i}.type", "credits are not billed yet")
    if data.promotion_code is not None:
        raise NotImplementedYet(
            "promotionCode", "promotion codes are not supported: apply a coupon by couponId"
        )
    subscription = subscription_to_change(
        session, environment_id=environment_id, ref_id=ref_id, now=now
    )
    if data.applied_coupon is not None:
        # From the next invoice on; the coupon's months run from now.
        subscription.coupon = billing.coupon_terms(
            session,
            environment_id=environment_id,
            applied=data.applied_coupon,
            currency=subscription.currency,
            field="appliedCoupon",
            now=now,
        )
    changes.update(session, subscription, data, now=now)
    return subscription


def cancel_subscription(
    session: Session, *, environment_id: int, ref_id: str, data: SubscriptionCancel, now: datetime
) -> Subscription:
    """Cancel now, at the end of the billing period, or on a date (the product's default
    when the request names no time)."""
    subscription = subscription_to_change(
        session, environment_id=environment_id, ref_id=ref_id, now=now
    )
    changes.cancel(
        session,
        subscription,
        time=data.cancellation_time,
        end_date=data.end_date,
        revoke_now=data.cancellation_action == "REVOKE_ENTITLEMENTS",
        now=now,
    )
    return subscription


def migrate_subscription(
    session: Session, *, environment_id: int, ref_id: str, data: SubscriptionMigrate, now: datetime
) -> Subscription:
    """Move the subscription to the latest published versions of its plan and add-ons,
    now (the default) or at the end of the billing period."""
    subscription = subscription_to_change(
        session, environment_id=environment_id, ref_id=ref_id, now=now
    )
    strategy = ScheduleStrategy(data.subscription_migration_time or ScheduleStrategy.IMMEDIATE)
    changes.migrate(session, subscription, strategy=strategy, now=now)
    return subscription


def cancel_scheduled_updates(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> Subscription:
    """Drop every update still waiting to happen (a scheduled downgrade, say)."""
    subscription = subscription_to_change(
        session, environment_id=environment_id, ref_id=ref_id, now=now
    )
    changes.cancel_schedules(session, subscription, now=now)
    return subscription


# -- reads -------------------------------------------------------------------------------


def follow_publish(
    session: Session, *, package: Package, migration_type: MigrationType, now: datetime
) -> None:
    """The subscriptions' part of a package's publish (its route calls it): ALL_CUSTOMERS
    moves every holder to the new version; a plan's publish reaches the plans below it."""
    if migration_type is MigrationType.ALL_CUSTOMERS:
        changes.migrate_package(session, package=package, now=now)
    if package.kind is PackageKind.PLAN:
        changes.record_parent_published(session, package=package)


def end_subscriptions_of_archived_customer(
    session: Session, *, customer: Customer, now: datetime
) -> None:
    """The subscriptions' part of a customer's archive (its route calls it): its live
    subscriptions end at once."""
    lifecycle.end_for_archived_customer(session, customer=customer, now=now)


def to_read(session: Session, subscription: Subscription) -> SubscriptionRead:
    """The subscription's wire shape (its relations loaded, as `get_subscription` does)."""
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
        payment_collection_method=subscription.payment_collection_method
        or PaymentCollectionMethod.CHARGE,
        prices=billing.price_reads(subscription),
        coupons=billing.coupon_reads(subscription, subscription.updated_at),
        currency=subscription.currency,
        unit_quantities=subscription.unit_quantities or {},
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

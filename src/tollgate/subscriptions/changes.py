"""Changing a live subscription: add-ons, billing period, trial end, cancellation,
migration to the latest versions. Part of the service layer, behind `service`: each
function takes the subscription already locked and caught up, checks what the request asks
for (raising request errors by field) and leaves the transitions to `lifecycle`.

When a change takes effect (now, or at the end of the billing period as a scheduled
update that can be cancelled) is `timing`'s to say. `migrate_package` moves every holder
of a package to a newly published version."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.enums import PackageKind
from tollgate.catalog.models import Package, PackageVersion, Product
from tollgate.catalog.packages import versions
from tollgate.customers.feed import Trigger, record_holdings_change
from tollgate.customers.models import Customer
from tollgate.errors import InvalidValue
from tollgate.subscriptions import billing, lifecycle, offer, timing
from tollgate.subscriptions.enums import (
    LIVE_STATUSES,
    BillingPeriod,
    CancellationTime,
    CancelReason,
    ScheduleStatus,
    ScheduleStrategy,
    ScheduleType,
    SubscriptionStatus,
)
from tollgate.subscriptions.models import Subscription, SubscriptionAddon, SubscriptionSchedule
from tollgate.subscriptions.schemas import AddonQuantity, ChargeQuantity, SubscriptionUpdate
from tollgate.subscriptions.targets import AddonTarget, ScheduleTarget


def update(
    session: Session, subscription: Subscription, data: SubscriptionUpdate, *, now: datetime
) -> None:
    lifecycle.require_live(subscription)
    given = data.model_fields_set
    strategy = data.schedule_strategy
    if "metadata" in given:
        subscription.metadata_ = data.metadata or {}
    if data.trial_end_date is not None:
        _move_trial_end(subscription, data.trial_end_date, now)
    if data.billing_cycle_anchor == "NOW":
        subscription.billing_cycle_anchor = now
        _restart_period(subscription, now)
    if data.billing_period is not None and data.billing_period is not subscription.billing_period:
        _change_billing_period(subscription, data.billing_period, strategy, now)
    if data.addons is not None:
        _change_addons(session, subscription, data.addons, strategy, now)
    if data.charges:
        _change_unit_quantities(subscription, data.charges, strategy, now)
    if "cancellation_date" in given:
        _change_cancellation(session, subscription, data.cancellation_date, now)
    lifecycle.refresh(session, subscription, now=now)


def _move_trial_end(subscription: Subscription, trial_end: datetime, now: datetime) -> None:
    if subscription.status not in (SubscriptionStatus.IN_TRIAL, SubscriptionStatus.NOT_STARTED):
        raise InvalidValue(
            f"subscription '{subscription.ref_id}' is not in a trial", field="trialEndDate"
        )
    if trial_end <= max(now, subscription.start_date):
        raise InvalidValue("trialEndDate must be in the future", field="trialEndDate")
    subscription.trial_end_date = subscription.billing_cycle_anchor = trial_end
    subscription.current_period_end = trial_end


def _restart_period(subscription: Subscription, now: datetime) -> None:
    if subscription.status is SubscriptionStatus.ACTIVE:
        subscription.current_period_start, subscription.current_period_end = (
            lifecycle.billing_bounds(
                subscription.billing_cycle_anchor, subscription.billing_period, now
            )
        )


def _change_billing_period(
    subscription: Subscription,
    period: BillingPeriod,
    strategy: ScheduleStrategy | None,
    now: datetime,
) -> None:
    at = timing.scheduled_for(
        subscription,
        change=ScheduleType.BILLING_PERIOD,
        decrease=period is BillingPeriod.MONTHLY,
        strategy=strategy,
        now=now,
    )
    if at is not None:
        lifecycle.schedule_update(
            subscription,
            schedule_type=ScheduleType.BILLING_PERIOD,
            at=at,
            target=ScheduleTarget(billing_period=period),
            now=now,
        )
        return
    subscription.billing_period = period
    subscription.billing_cycle_anchor = now
    _restart_period(subscription, now)


def _change_addons(
    session: Session,
    subscription: Subscription,
    requested: list[AddonQuantity],
    strategy: ScheduleStrategy | None,
    now: datetime,
) -> None:
    held = offer.Offered(subscription.plan_version.package, subscription.plan_version)
    wanted = offer.addons(session, plan=held, requested=requested)
    wanted_quantities = {w.package.ref_id: w.quantity for w in wanted}
    decreases = any(
        wanted_quantities.get(a.addon_version.package.ref_id, 0) < a.quantity
        for a in subscription.addons
    )
    final = [(w.version.id, w.quantity) for w in wanted]
    at = timing.scheduled_for(
        subscription, change=ScheduleType.ADDON, decrease=decreases, strategy=strategy, now=now
    )
    if at is None:
        # The list is the whole new set of add-ons: a decrease still waiting is superseded.
        lifecycle.cancel_pending(subscription, ScheduleType.ADDON, now=now)
        lifecycle.set_addons(subscription, final)
        return
    # Increases now; the decreases wait.
    now_held = {a.addon_version_id: a.quantity for a in subscription.addons}
    for version_id, quantity in final:
        now_held[version_id] = max(quantity, now_held.get(version_id, 0))
    lifecycle.set_addons(subscription, list(now_held.items()))
    lifecycle.schedule_update(
        subscription,
        schedule_type=ScheduleType.ADDON,
        at=at,
        target=ScheduleTarget(addons=tuple(AddonTarget(v, q) for v, q in final)),
        now=now,
    )


def _change_unit_quantities(
    subscription: Subscription,
    requested: list[ChargeQuantity],
    strategy: ScheduleStrategy | None,
    now: datetime,
) -> None:
    """New quantities of the plan's per-unit prices: more now, fewer at the period's end
    (unless IMMEDIATE), as with add-ons."""
    held = dict(subscription.unit_quantities or {})
    wanted = billing.changed_quantities(subscription.plan_version, held, requested)
    decrease = any(quantity < held.get(feature, 0) for feature, quantity in wanted.items())
    at = timing.scheduled_for(
        subscription, change=ScheduleType.UNIT_AMOUNT, decrease=decrease, strategy=strategy, now=now
    )
    if at is None:
        lifecycle.cancel_pending(subscription, ScheduleType.UNIT_AMOUNT, now=now)
        subscription.unit_quantities = wanted
        return
    subscription.unit_quantities = {f: max(q, held.get(f, 0)) for f, q in wanted.items()}
    lifecycle.schedule_update(
        subscription,
        schedule_type=ScheduleType.UNIT_AMOUNT,
        at=at,
        target=ScheduleTarget(unit_quantities=tuple(sorted(wanted.items()))),
        now=now,
    )


def _change_cancellation(
    session: Session, subscription: Subscription, moment: datetime | None, now: datetime
) -> None:
    if moment is not None:
        cancel(
            session,
            subscription,
            time=CancellationTime.SPECIFIC_DATE,
            end_date=moment,
            revoke_now=False,
            now=now,
            field="cancellationDate",
        )
        return
    # null: take back a cancellation that has not happened yet.
    if subscription.cancel_reason is CancelReason.SCHEDULED:
        subscription.end_date = subscription.cancellation_date = subscription.cancel_reason = None


def cancel(
    session: Session,
    subscription: Subscription,
    *,
    time: CancellationTime | None,
    end_date: datetime | None,
    revoke_now: bool,
    now: datetime,
    field: str = "endDate",
) -> None:
    """Cancel now, at the end of the billing period, or on a date (by default, when the
    product's settings say); `field` names the date in the request."""
    lifecycle.require_live(subscription)
    if time is None:
        settings = session.get_one(Product, subscription.product_id).settings or {}
        time = CancellationTime(
            settings.get("subscriptionCancellationTime", "END_OF_BILLING_PERIOD")
        )
    if end_date is not None and time is not CancellationTime.SPECIFIC_DATE:
        raise InvalidValue("endDate goes with cancellationTime SPECIFIC_DATE", field="endDate")
    at = _cancellation_moment(subscription, time, end_date, now, field)
    lifecycle.cancel(session, subscription, at=at, revoke_now=revoke_now, now=now)


def _cancellation_moment(
    subscription: Subscription,
    time: CancellationTime,
    end_date: datetime | None,
    now: datetime,
    field: str,
) -> datetime:
    if time is CancellationTime.IMMEDIATE:
        return now
    if time is CancellationTime.END_OF_BILLING_PERIOD:
        return subscription.current_period_end
    if end_date is None:
        raise InvalidValue(f"cancellationTime SPECIFIC_DATE needs an {field}", field=field)
    if end_date < now:
        raise InvalidValue(f"{field} is in the past", field=field)
    return end_date


def cancel_schedules(session: Session, subscription: Subscription, *, now: datetime) -> None:
    """Drop every update still waiting to happen (a scheduled downgrade, say)."""
    for schedule in lifecycle.pending_schedules(subscription):
        schedule.status = ScheduleStatus.CANCELED
        schedule.updated_at = now
    lifecycle.refresh(session, subscription, now=now)


def migrate(
    session: Session, subscription: Subscription, *, strategy: ScheduleStrategy, now: datetime
) -> None:
    """Move the subscription to the latest published versions of its plan and add-ons."""
    lifecycle.require_live(subscription)
    plan = offer.latest_version(session, subscription.plan_version)
    addons = [
        (offer.latest_version(session, a.addon_version).id, a.quantity) for a in subscription.addons
    ]
    at = timing.scheduled_for(
        subscription,
        change=ScheduleType.MIGRATE_TO_LATEST,
        decrease=True,
        strategy=strategy,
        now=now,
    )
    if at is not None:
        lifecycle.schedule_update(
            subscription,
            schedule_type=ScheduleType.MIGRATE_TO_LATEST,
            at=at,
            target=ScheduleTarget(
                plan_version_id=plan.id, addons=tuple(AddonTarget(v, q) for v, q in addons)
            ),
            now=now,
        )
    else:
        _move_to(subscription, plan, addons)
    lifecycle.refresh(session, subscription, now=now)


def _move_to(
    subscription: Subscription, plan: PackageVersion, addons: list[tuple[int, int]]
) -> None:
    subscription.plan_version_id = plan.id
    subscription.pricing_type = offer.pricing_type(plan)
    lifecycle.set_addons(subscription, addons)


def migrate_package(session: Session, *, package: Package, now: datetime) -> int:
    """After a publish for ALL_CUSTOMERS: move every live subscription holding an older
    version of the package to the new one, at once. Returns how many moved."""
    latest = versions.latest_published(session, package_id=package.id)
    if latest is None:
        return 0
    older = select(PackageVersion.id).where(
        PackageVersion.package_id == package.id, PackageVersion.id != latest.id
    )
    holding = session.scalars(
        select(Subscription)
        .options(
            selectinload(Subscription.addons).selectinload(SubscriptionAddon.addon_version),
            selectinload(Subscription.schedules),
        )
        .where(
            Subscription.environment_id == package.environment_id,
            Subscription.status.in_(LIVE_STATUSES),
            or_(
                Subscription.plan_version_id.in_(older),
                Subscription.addons.any(SubscriptionAddon.addon_version_id.in_(older)),
            ),
        )
        .with_for_update(of=Subscription)
    ).all()
    older_ids = set(session.scalars(older))
    for subscription in holding:
        if package.kind is PackageKind.PLAN and subscription.plan_version_id != latest.id:
            subscription.plan_version_id = latest.id
            subscription.pricing_type = offer.pricing_type(latest)
        for addon in subscription.addons:
            if addon.addon_version.package_id == package.id:
                addon.addon_version_id = latest.id
        lifecycle.refresh(session, subscription, now=now, trigger=Trigger.PLAN_PUBLISHED)
    _migrate_pending_targets(session, package=package, older=older_ids, latest=latest, now=now)
    return len(holding)


def _migrate_pending_targets(
    session: Session, *, package: Package, older: set[int], latest: PackageVersion, now: datetime
) -> None:
    """Updates still waiting name versions too; they move to the new one as well, or they
    would undo the migration when they take effect."""
    pending = session.scalars(
        select(SubscriptionSchedule)
        .join(Subscription, Subscription.id == SubscriptionSchedule.subscription_id)
        .where(
            Subscription.environment_id == package.environment_id,
            SubscriptionSchedule.status == ScheduleStatus.SCHEDULED,
        )
    )
    for schedule in pending:
        target = schedule.target.with_versions_moved(older, latest.id)
        if target != schedule.target:
            schedule.target = target
            schedule.updated_at = now


def record_parent_published(session: Session, *, package: Package) -> None:
    """A plan includes its parent's latest published version: after a plan's publish, the
    customers of the plans below it (at any depth) may hold other terms."""
    for customer in _holders_of_plans_below(session, package.id):
        record_holdings_change(session, customer, trigger=Trigger.PLAN_PUBLISHED)


def _holders_of_plans_below(session: Session, package_id: int) -> Sequence[Customer]:
    below: set[int] = set()
    parents = {package_id}
    while parents:
        children = set(
            session.scalars(
                select(PackageVersion.package_id).where(
                    PackageVersion.parent_package_id.in_(parents)
                )
            )
        )
        parents = children - below
        below |= children
    if not below:
        return []
    holders = (
        select(Subscription.customer_id)
        .join(PackageVersion, PackageVersion.id == Subscription.plan_version_id)
        .where(PackageVersion.package_id.in_(below), Subscription.status.in_(LIVE_STATUSES))
    )
    return session.scalars(
        select(Customer).where(Customer.id.in_(holders)).order_by(Customer.id)
    ).all()

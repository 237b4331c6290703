"""Changing a live subscription: add-ons, billing period, trial end, migration.

Upgrades (more add-ons, a longer billing period) take effect at once; downgrades (fewer
add-ons, a shorter period) at the end of the billing period, as a scheduled update that
can be cancelled, unless the caller asks for IMMEDIATE."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.enums import MigrationType, PackageKind
from tollgate.catalog.models import Package, PackageVersion
from tollgate.catalog.packages import versions
from tollgate.customers.feed import Trigger, record_holdings_change
from tollgate.customers.models import Customer
from tollgate.errors import InvalidValue, NotImplementedYet
from tollgate.subscriptions import lifecycle, offer
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
from tollgate.subscriptions.schemas import AddonQuantity, SubscriptionUpdate
from tollgate.subscriptions.service import refuse_unsupported, subscription_to_change


def update(
    session: Session, *, environment_id: int, ref_id: str, data: SubscriptionUpdate, now: datetime
) -> Subscription:
    refuse_unsupported(data)
    if data.promotion_code is not None:
        raise NotImplementedYet("promotionCode", "coupons arrive with checkout")
    subscription = subscription_to_change(
        session, environment_id=environment_id, ref_id=ref_id, now=now
    )
    lifecycle.require_live(subscription)
    given = data.model_fields_set
    strategy = data.schedule_strategy or ScheduleStrategy.END_OF_BILLING_PERIOD
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
    if "cancellation_date" in given:
        _change_cancellation(session, subscription, data.cancellation_date, now)
    lifecycle.refresh(session, subscription, now=now)
    return subscription


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
    subscription: Subscription, period: BillingPeriod, strategy: ScheduleStrategy, now: datetime
) -> None:
    shorter = period is BillingPeriod.MONTHLY
    if shorter and strategy is not ScheduleStrategy.IMMEDIATE:
        lifecycle.schedule_update(
            subscription,
            schedule_type=ScheduleType.BILLING_PERIOD,
            at=subscription.current_period_end,
            target={"billingPeriod": period.value},
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
    strategy: ScheduleStrategy,
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
    if not decreases or strategy is ScheduleStrategy.IMMEDIATE:
        # The list is the whole new set of add-ons: a decrease still waiting is superseded.
        lifecycle.cancel_pending(subscription, ScheduleType.ADDON, now=now)
        lifecycle.set_addons(subscription, final)
        return
    # Increases now; the decreases wait for the end of the period.
    now_held = {a.addon_version_id: a.quantity for a in subscription.addons}
    for version_id, quantity in final:
        now_held[version_id] = max(quantity, now_held.get(version_id, 0))
    lifecycle.set_addons(subscription, list(now_held.items()))
    lifecycle.schedule_update(
        subscription,
        schedule_type=ScheduleType.ADDON,
        at=subscription.current_period_end,
        target={"addons": [{"addonVersionId": v, "quantity": q} for v, q in final]},
        now=now,
    )


def _change_cancellation(
    session: Session, subscription: Subscription, moment: datetime | None, now: datetime
) -> None:
    if moment is not None:
        lifecycle.cancel(
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


def cancel_schedules(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> Subscription:
    """Drop every update still waiting to happen (a scheduled downgrade, say)."""
    subscription = subscription_to_change(
        session, environment_id=environment_id, ref_id=ref_id, now=now
    )
    for schedule in lifecycle.pending_schedules(subscription):
        schedule.status = ScheduleStatus.CANCELED
        schedule.updated_at = now
    lifecycle.refresh(session, subscription, now=now)
    return subscription


def migrate(
    session: Session, *, environment_id: int, ref_id: str, at_period_end: bool, now: datetime
) -> Subscription:
    """Move the subscription to the latest published versions of its plan and add-ons."""
    subscription = subscription_to_change(
        session, environment_id=environment_id, ref_id=ref_id, now=now
    )
    lifecycle.require_live(subscription)
    plan = offer.latest_version(session, subscription.plan_version)
    addons = [
        (offer.latest_version(session, a.addon_version).id, a.quantity) for a in subscription.addons
    ]
    if at_period_end:
        lifecycle.schedule_update(
            subscription,
            schedule_type=ScheduleType.MIGRATE_TO_LATEST,
            at=subscription.current_period_end,
            target={
                "planVersionId": plan.id,
                "addons": [{"addonVersionId": v, "quantity": q} for v, q in addons],
            },
            now=now,
        )
    else:
        _move_to(subscription, plan, addons)
    lifecycle.refresh(session, subscription, now=now)
    return subscription


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
        target = dict(schedule.target)
        if target.get("planVersionId") in older:
            target["planVersionId"] = latest.id
        if target.get("addons"):
            target["addons"] = [
                {**a, "addonVersionId": latest.id} if a["addonVersionId"] in older else a
                for a in target["addons"]
            ]
        if target != schedule.target:
            schedule.target = target
            schedule.updated_at = now


# -- what other domains' changes mean for subscriptions (called from their routes) --------


def follow_publish(
    session: Session, *, package: Package, migration_type: MigrationType, now: datetime
) -> None:
    """After a package's publish: ALL_CUSTOMERS moves its subscribers to the new version;
    a plan's publish also changes what customers of the plans below it hold (a plan
    includes its parent's latest published version)."""
    if migration_type is MigrationType.ALL_CUSTOMERS:
        migrate_package(session, package=package, now=now)
    if package.kind is PackageKind.PLAN:
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


def end_subscriptions_of_archived_customer(
    session: Session, *, customer: Customer, now: datetime
) -> None:
    """A customer archived: its live subscriptions end at once."""
    lifecycle.end_for_archived_customer(session, customer=customer, now=now)

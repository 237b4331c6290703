"""A subscription's life, as a state machine: creation, periods, trial end, scheduled
updates, cancellation and ending. It takes decided values (moments, typed targets) and
checks no request: the service layer does that before calling it.

Every transition that is due happens through `advance`, which the lifecycle job calls for
each subscription whose `next_transition_at` has passed. Checks do not wait for it: the
entitlement engine reads the same dates and answers as if it had already run."""

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.models import PackageVersion, Product
from tollgate.customers.feed import Trigger, record_holdings_change
from tollgate.customers.models import Customer, CustomerResource
from tollgate.db.errors import flush_unique
from tollgate.kit.periods import Period, bounds
from tollgate.subscriptions import announcements, offer
from tollgate.subscriptions.enums import (
    LIVE_STATUSES,
    BillingPeriod,
    CancelReason,
    PaymentCollectionMethod,
    ScheduleStatus,
    ScheduleType,
    SubscriptionStatus,
    TrialEndBehavior,
)
from tollgate.subscriptions.errors import SubscriptionEnded
from tollgate.subscriptions.models import Subscription, SubscriptionAddon, SubscriptionSchedule
from tollgate.subscriptions.targets import ScheduleTarget

_PERIODS = {BillingPeriod.MONTHLY: Period.MONTH, BillingPeriod.ANNUALLY: Period.YEAR}


@dataclass(frozen=True, slots=True)
class Trial:
    end: datetime
    behavior: TrialEndBehavior


@dataclass(frozen=True, slots=True)
class NewSubscription:
    customer: Customer
    plan: offer.Offered
    addons: list[offer.OfferedAddon]
    billing_period: BillingPeriod
    start: datetime
    trial: Trial | None = None
    resource: CustomerResource | None = None
    ref_id: str | None = None
    metadata: dict[str, str] | None = None
    billing_id: str | None = None
    end: datetime | None = None
    currency: str | None = None
    unit_quantities: dict[str, int] | None = None
    coupon: dict[str, Any] | None = None
    payment_collection_method: PaymentCollectionMethod | None = None


def billing_bounds(
    anchor: datetime, billing_period: BillingPeriod, at: datetime
) -> tuple[datetime, datetime]:
    return bounds(anchor, _PERIODS[billing_period], at)


def create(session: Session, new: NewSubscription, *, now: datetime) -> Subscription:
    start = new.start
    anchor = new.trial.end if new.trial else start
    if new.trial:
        period_start, period_end = start, new.trial.end
    else:
        period_start, period_end = billing_bounds(anchor, new.billing_period, max(now, start))
    if start > now:
        status = SubscriptionStatus.NOT_STARTED
    else:
        status = SubscriptionStatus.IN_TRIAL if new.trial else SubscriptionStatus.ACTIVE
    subscription = Subscription(
        environment_id=new.customer.environment_id,
        ref_id=new.ref_id or f"subscription-{new.plan.package.ref_id}-{secrets.token_hex(6)}",
        customer_id=new.customer.id,
        resource_id=new.resource.id if new.resource else None,
        product_id=new.plan.package.product_id,
        plan_version_id=new.plan.version.id,
        status=status,
        pricing_type=offer.pricing_type(new.plan.version),
        billing_period=new.billing_period,
        billing_id=new.billing_id,
        currency=new.currency,
        unit_quantities=new.unit_quantities or {},
        coupon=new.coupon,
        payment_collection_method=new.payment_collection_method,
        metadata_=new.metadata or {},
        start_date=start,
        billing_cycle_anchor=anchor,
        current_period_start=period_start,
        current_period_end=period_end,
        trial_end_date=new.trial.end if new.trial else None,
        trial_end_behavior=new.trial.behavior if new.trial else None,
        end_date=new.end,
        cancellation_date=new.end,
        cancel_reason=CancelReason.SCHEDULED if new.end else None,
        created_at=now,
        updated_at=now,
    )
    subscription.addons = [
        SubscriptionAddon(addon_version_id=a.version.id, quantity=a.quantity) for a in new.addons
    ]
    subscription.schedules = []
    subscription.next_transition_at = next_transition(subscription)
    session.add(subscription)
    flush_unique(session, kind="subscription", ref_id=subscription.ref_id)
    announcements.announce_created(session, subscription, now=now)
    record_holdings_change(session, new.customer, trigger=Trigger.SUBSCRIPTION_CREATED)
    return subscription


def next_transition(subscription: Subscription) -> datetime | None:
    """The earliest moment something about the subscription is due, if it is still live."""
    if subscription.status not in LIVE_STATUSES:
        return None
    moments = [subscription.current_period_end]
    if subscription.status is SubscriptionStatus.NOT_STARTED:
        moments.append(subscription.start_date)
    if subscription.status is SubscriptionStatus.IN_TRIAL and subscription.trial_end_date:
        moments.append(subscription.trial_end_date)
    if subscription.end_date is not None:
        moments.append(subscription.end_date)
    moments.extend(s.scheduled_at for s in pending_schedules(subscription))
    return min(moments)


def pending_schedules(subscription: Subscription) -> list[SubscriptionSchedule]:
    return sorted(
        (s for s in subscription.schedules if s.status is ScheduleStatus.SCHEDULED),
        key=lambda s: s.scheduled_at,
    )


def refresh(
    session: Session,
    subscription: Subscription,
    *,
    now: datetime,
    trigger: Trigger = Trigger.SUBSCRIPTION_CHANGED,
) -> None:
    """After any change: stamp it, recompute when it is next due, tell the caches."""
    subscription.updated_at = now
    subscription.next_transition_at = next_transition(subscription)
    before, changed = announcements.pending_change(subscription)
    session.flush()
    announcements.announce_change(session, subscription, before=before, changed=changed, now=now)
    record_holdings_change(session, _customer(session, subscription), trigger=trigger)


def _customer(session: Session, subscription: Subscription) -> Customer:
    return session.get_one(Customer, subscription.customer_id)


def require_live(subscription: Subscription) -> None:
    if subscription.status not in LIVE_STATUSES:
        raise SubscriptionEnded(subscription)


# -- ending ------------------------------------------------------------------------------


def end_now(
    session: Session,
    subscription: Subscription,
    *,
    at: datetime,
    reason: CancelReason,
    status: SubscriptionStatus = SubscriptionStatus.CANCELED,
) -> None:
    subscription.status = status
    subscription.end_date = subscription.cancellation_date = at
    subscription.cancel_reason = reason
    for schedule in pending_schedules(subscription):
        schedule.status = ScheduleStatus.CANCELED


def end_at(
    session: Session,
    subscription: Subscription,
    *,
    at: datetime,
    reason: CancelReason,
    now: datetime,
) -> None:
    """End the subscription at `at`: now if that has come, else when the job reaches it."""
    if at <= now:
        end_now(session, subscription, at=now, reason=reason)
    else:
        subscription.end_date = subscription.cancellation_date = at
        subscription.cancel_reason = reason
        for schedule in pending_schedules(subscription):
            if schedule.scheduled_at >= at:
                schedule.status = ScheduleStatus.CANCELED
    refresh(session, subscription, now=now)


def cancel(
    session: Session, subscription: Subscription, *, at: datetime, revoke_now: bool, now: datetime
) -> None:
    """Cancel at `at` (now, if that has come). When the cancellation takes effect, the
    product's downgrade plan (if it has one) starts, unless the entitlements are revoked:
    then access ends now and nothing replaces it."""
    if revoke_now:
        end_now(session, subscription, at=now, reason=CancelReason.IMMEDIATE)
    elif at <= now or subscription.status is SubscriptionStatus.NOT_STARTED:
        end_now(session, subscription, at=now, reason=CancelReason.IMMEDIATE)
        start_downgrade_plan(session, subscription, at=now, now=now)
    else:
        end_at(session, subscription, at=at, reason=CancelReason.SCHEDULED, now=now)
        return
    refresh(session, subscription, now=now)


def end_unpaid(session: Session, subscription: Subscription, *, now: datetime) -> None:
    """The last retry of its payment failed: the product's rules decide. The product's
    downgrade plan starts if it has one; otherwise the subscription just ends."""
    end_now(session, subscription, at=now, reason=CancelReason.PENDING_PAYMENT_EXPIRED)
    start_downgrade_plan(session, subscription, at=now, now=now)
    refresh(session, subscription, now=now)


def start_downgrade_plan(
    session: Session, ended: Subscription, *, at: datetime, now: datetime
) -> Subscription | None:
    """Put the customer on the product's downgrade plan, unless it holds another live
    subscription there (or was on the downgrade plan already)."""
    customer = _customer(session, ended)
    if customer.archived_at is not None:
        return None
    fallback = offer.downgrade_plan(session, session.get_one(Product, ended.product_id))
    if fallback is None or fallback.package.id == _package_id(session, ended.plan_version_id):
        return None
    others = live_in_product(
        session,
        customer_id=ended.customer_id,
        product_id=ended.product_id,
        resource_id=ended.resource_id,
        exclude=ended.id,
    )
    if others:
        return None
    resource = session.get(CustomerResource, ended.resource_id) if ended.resource_id else None
    # Announce the end first: creating the next one flushes, which forgets what changed.
    refresh(session, ended, now=now)
    return create(
        session,
        NewSubscription(
            customer=customer,
            plan=fallback,
            addons=[],
            billing_period=ended.billing_period,
            start=at,
            resource=resource,
        ),
        now=now,
    )


def _package_id(session: Session, version_id: int) -> int:
    return session.get_one(PackageVersion, version_id).package_id


def live_in_product(
    session: Session,
    *,
    customer_id: int,
    product_id: int,
    resource_id: int | None,
    exclude: int | None = None,
) -> list[Subscription]:
    """A customer's live subscriptions in one product (and resource), oldest first."""
    query = (
        select(Subscription)
        .options(
            selectinload(Subscription.schedules),
            selectinload(Subscription.addons),
            selectinload(Subscription.plan_version),
        )
        .where(
            Subscription.customer_id == customer_id,
            Subscription.product_id == product_id,
            Subscription.resource_id == resource_id
            if resource_id is not None
            else Subscription.resource_id.is_(None),
            Subscription.status.in_(LIVE_STATUSES),
        )
        .order_by(Subscription.id)
    )
    if exclude is not None:
        query = query.where(Subscription.id != exclude)
    return list(session.scalars(query))


def end_for_archived_customer(session: Session, *, customer: Customer, now: datetime) -> None:
    live = session.scalars(
        select(Subscription)
        .options(selectinload(Subscription.schedules))
        .where(Subscription.customer_id == customer.id, Subscription.status.in_(LIVE_STATUSES))
    )
    for subscription in live:
        end_now(session, subscription, at=now, reason=CancelReason.CUSTOMER_ARCHIVED)
        subscription.updated_at = now
        subscription.next_transition_at = None


# -- time passing ------------------------------------------------------------------------


def advance(session: Session, subscription: Subscription, *, now: datetime) -> None:
    """Carry out, in order, every transition of the subscription that is due by `now`."""
    for _ in range(10_000):  # a guard: each step moves the subscription forward
        due = subscription.next_transition_at
        if due is None or due > now:
            break
        _step(session, subscription, at=due, now=now)
        subscription.next_transition_at = next_transition(subscription)
    refresh(session, subscription, now=now)


def _step(session: Session, subscription: Subscription, *, at: datetime, now: datetime) -> None:
    if subscription.status is SubscriptionStatus.NOT_STARTED and subscription.start_date <= at:
        trial = subscription.trial_end_date
        in_trial = trial is not None and trial > subscription.start_date
        subscription.status = SubscriptionStatus.IN_TRIAL if in_trial else SubscriptionStatus.ACTIVE
        return
    if subscription.end_date is not None and subscription.end_date <= at:
        reason = subscription.cancel_reason or CancelReason.SCHEDULED
        end_now(session, subscription, at=subscription.end_date, reason=reason)
        start_downgrade_plan(session, subscription, at=subscription.end_date, now=now)
        return
    trial_end = subscription.trial_end_date
    if subscription.status is SubscriptionStatus.IN_TRIAL and trial_end and trial_end <= at:
        _end_trial(session, subscription, now=now)
        return
    schedules = pending_schedules(subscription)
    if schedules and schedules[0].scheduled_at <= at:
        apply_schedule(session, subscription, schedules[0])
        return
    subscription.current_period_start, subscription.current_period_end = billing_bounds(
        subscription.billing_cycle_anchor, subscription.billing_period, at
    )


def _end_trial(session: Session, subscription: Subscription, *, now: datetime) -> None:
    trial_end = subscription.trial_end_date
    assert trial_end is not None
    if subscription.trial_end_behavior is TrialEndBehavior.CANCEL_SUBSCRIPTION:
        end_now(
            session,
            subscription,
            at=trial_end,
            reason=CancelReason.TRIAL_ENDED,
            status=SubscriptionStatus.EXPIRED,
        )
        start_downgrade_plan(session, subscription, at=trial_end, now=now)
        return
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.billing_cycle_anchor = trial_end
    subscription.current_period_start, subscription.current_period_end = billing_bounds(
        trial_end, subscription.billing_period, trial_end
    )


def apply_schedule(
    session: Session, subscription: Subscription, schedule: SubscriptionSchedule
) -> None:
    """Make the subscription what a scheduled update says, from the update's moment."""
    target = schedule.target
    if target.plan_version_id is not None:
        version = session.get_one(PackageVersion, target.plan_version_id)
        subscription.plan_version_id = version.id
        subscription.pricing_type = offer.pricing_type(version)
        subscription.currency = target.currency
        subscription.unit_quantities = dict(target.unit_quantities)
    elif target.unit_quantities:
        subscription.unit_quantities = dict(target.unit_quantities)
    if target.addons is not None:
        set_addons(subscription, [(a.version_id, a.quantity) for a in target.addons])
    if target.billing_period is not None:
        subscription.billing_period = target.billing_period
        subscription.billing_cycle_anchor = schedule.scheduled_at
    subscription.current_period_start, subscription.current_period_end = billing_bounds(
        subscription.billing_cycle_anchor, subscription.billing_period, schedule.scheduled_at
    )
    schedule.status = ScheduleStatus.DONE
    schedule.updated_at = schedule.scheduled_at


def set_addons(subscription: Subscription, addons: list[tuple[int, int]]) -> None:
    """Hold exactly these (add-on version, quantity) pairs, keeping the rows of versions
    already held: replacing them would insert a row beside the one it replaces."""
    existing = {a.addon_version_id: a for a in subscription.addons}
    kept = []
    for version_id, quantity in addons:
        row = existing.get(version_id) or SubscriptionAddon(addon_version_id=version_id)
        row.quantity = quantity
        kept.append(row)
    subscription.addons = kept


def cancel_pending(
    subscription: Subscription, schedule_type: ScheduleType, *, now: datetime
) -> None:
    for pending in pending_schedules(subscription):
        if pending.schedule_type is schedule_type:
            pending.status = ScheduleStatus.CANCELED
            pending.updated_at = now


def schedule_update(
    subscription: Subscription,
    *,
    schedule_type: ScheduleType,
    at: datetime,
    target: ScheduleTarget,
    now: datetime,
) -> SubscriptionSchedule:
    """Replace any pending update of the same kind with this one."""
    for pending in pending_schedules(subscription):
        if pending.schedule_type is schedule_type or (
            {pending.schedule_type, schedule_type} <= {ScheduleType.DOWNGRADE, ScheduleType.PLAN}
        ):
            pending.status = ScheduleStatus.CANCELED
            pending.updated_at = now
    schedule = SubscriptionSchedule(
        schedule_type=schedule_type,
        status=ScheduleStatus.SCHEDULED,
        scheduled_at=at,
        target=target,
        created_at=now,
        updated_at=now,
    )
    subscription.schedules.append(schedule)
    return schedule

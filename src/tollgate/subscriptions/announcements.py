"""Webhooks for subscription changes, in Stigg's flat shape.

`lifecycle.create` announces a new subscription; `lifecycle.refresh`, which every change
goes through, announces what the change was, read from the attributes SQLAlchemy saw
change since the last flush (a renewal alone, which only moves the period, says nothing)."""

from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from tollgate.catalog.models import Package, PackageVersion
from tollgate.customers.models import Customer, CustomerResource
from tollgate.subscriptions.enums import SubscriptionStatus
from tollgate.subscriptions.models import Subscription, SubscriptionAddon
from tollgate.webhooks import outbox
from tollgate.webhooks.event_types import EventType

_BOOKKEEPING = {"updated_at", "next_transition_at", "current_period_start", "current_period_end"}
Status = SubscriptionStatus


def pending_change(subscription: Subscription) -> tuple[SubscriptionStatus | None, bool]:
    """(status before the change if it moved, whether anything that matters changed)."""
    state = inspect(subscription)
    if state.pending or state.transient:
        return None, False
    before = state.attrs.status.history.deleted
    changed = any(
        attr.history.has_changes() for attr in state.attrs if attr.key not in _BOOKKEEPING
    )
    return (before[0] if before else None), changed


def announce_created(session: Session, subscription: Subscription, *, now: datetime) -> None:
    types = [EventType.SUBSCRIPTION_CREATED]
    if subscription.status is Status.IN_TRIAL:
        types.append(EventType.SUBSCRIPTION_TRIAL_STARTED)
    _emit(session, subscription, types, now)


def announce_change(
    session: Session,
    subscription: Subscription,
    *,
    before: SubscriptionStatus | None,
    changed: bool,
    now: datetime,
) -> None:
    after = subscription.status
    types: list[EventType] = []
    if before is not None and before is not after:
        if before is Status.NOT_STARTED and after is Status.IN_TRIAL:
            types.append(EventType.SUBSCRIPTION_TRIAL_STARTED)
        elif before is Status.IN_TRIAL and after is Status.ACTIVE:
            types.append(EventType.SUBSCRIPTION_TRIAL_CONVERTED)
        elif before is Status.IN_TRIAL and after in (Status.EXPIRED, Status.CANCELED):
            types.append(EventType.SUBSCRIPTION_TRIAL_EXPIRED)
        if after is Status.CANCELED:
            types.append(EventType.SUBSCRIPTION_CANCELED)
        elif after is Status.EXPIRED:
            types.append(EventType.SUBSCRIPTION_EXPIRED)
        elif not types:
            types.append(EventType.SUBSCRIPTION_UPDATED)
    elif changed:
        types.append(EventType.SUBSCRIPTION_UPDATED)
    _emit(session, subscription, types, now)


def _emit(
    session: Session, subscription: Subscription, types: list[EventType], now: datetime
) -> None:
    if not types:
        return
    entity = subscription_entity(session, subscription)
    customer_ref = entity["customer"]["id"]
    outbox.emit_many(
        session,
        environment_id=subscription.environment_id,
        events=[outbox.Event(event_type, entity, customer_ref) for event_type in types],
        now=now,
    )


def subscription_entity(session: Session, subscription: Subscription) -> dict[str, Any]:
    # Read back (the change is flushed): the relationship may not be loaded.
    addons = list(
        session.execute(
            select(SubscriptionAddon.addon_version_id, SubscriptionAddon.quantity)
            .where(SubscriptionAddon.subscription_id == subscription.id)
            .order_by(SubscriptionAddon.id)
        ).tuples()
    )
    named = {
        version: (ref, name)
        for version, ref, name in session.execute(
            select(PackageVersion.id, Package.ref_id, PackageVersion.display_name)
            .join(Package, Package.id == PackageVersion.package_id)
            .where(PackageVersion.id.in_([subscription.plan_version_id, *(a for a, _ in addons)]))
        ).tuples()
    }
    plan_ref, plan_name = named.get(subscription.plan_version_id, (None, None))
    customer_ref = session.scalar(
        select(Customer.ref_id).where(Customer.id == subscription.customer_id)
    )
    resource_ref = (
        session.scalar(
            select(CustomerResource.ref_id).where(CustomerResource.id == subscription.resource_id)
        )
        if subscription.resource_id
        else None
    )
    return {
        "entityId": str(subscription.id),
        "id": subscription.ref_id,
        "status": subscription.status.value,
        "billingId": subscription.billing_id,
        "billingPeriod": subscription.billing_period.value,
        "startDate": subscription.start_date,
        "endDate": subscription.end_date,
        "cancellationDate": subscription.cancellation_date,
        "trialEndDate": subscription.trial_end_date,
        "currentBillingPeriodStart": subscription.current_period_start,
        "currentBillingPeriodEnd": subscription.current_period_end,
        "isTrialSubscription": subscription.status is Status.IN_TRIAL,
        "customer": {"id": customer_ref},
        "resource": {"id": resource_ref} if resource_ref else None,
        "plan": {
            "id": plan_ref,
            "name": plan_name,
            "pricingType": subscription.pricing_type.value,
        },
        "addons": [
            {"id": ref, "name": name, "quantity": quantity}
            for (ref, name), quantity in ((named.get(v, (None, None)), q) for v, q in addons)
        ],
        "metadata": subscription.metadata_,
    }

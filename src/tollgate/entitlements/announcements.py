"""`entitlements.updated`: said when what a customer may use changes, not on every write.

Every change to what a customer holds goes through `invalidation.customer_changed`, which
calls `announce` in the change's transaction. It recomputes the customer's entitlements
(for the customer and for each of its resources) as the transaction sees them, and owes
the event only for those whose terms moved since they were last announced. Usage and the
rolling usage period are not terms: `measurement.reported` tells of those."""

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tollgate.catalog.models import PackageVersion
from tollgate.customers.models import Customer
from tollgate.entitlements import engine, holdings, usage_store
from tollgate.entitlements.engine import Effective, Snapshot
from tollgate.entitlements.service import describe_entitlements
from tollgate.subscriptions.enums import LIVE_STATUSES
from tollgate.subscriptions.models import Subscription
from tollgate.webhooks import outbox
from tollgate.webhooks.event_types import EventType

_CUSTOMER_SCOPE = ""  # the key, among announced digests, of the customer's own entitlements


class Trigger(StrEnum):
    """Why a customer's entitlements changed (the event's `trigger`)."""

    SUBSCRIPTION_CREATED = "SUBSCRIPTION_CREATED"
    SUBSCRIPTION_CHANGED = "SUBSCRIPTION_CHANGED"  # an update, a transition, an ending
    # A publish moved its subscriptions to the new version, or changed a parent plan.
    PLAN_PUBLISHED = "PLAN_PUBLISHED"
    PROMOTIONAL_ENTITLEMENT_CHANGED = "PROMOTIONAL_ENTITLEMENT_CHANGED"
    CUSTOMER_ARCHIVED = "CUSTOMER_ARCHIVED"
    CUSTOMER_UNARCHIVED = "CUSTOMER_UNARCHIVED"


def announce(session: Session, customer: Customer, *, trigger: Trigger, now: datetime) -> None:
    """Owe `entitlements.updated` for each of the customer's scopes whose terms changed."""
    environment_id = customer.environment_id
    if not outbox.is_wanted(session, environment_id, EventType.ENTITLEMENTS_UPDATED):
        return  # nobody listens: computing entitlements would be wasted
    held = holdings.load_holdings(
        session,
        holdings.PackageGrantsCache(),  # this transaction may have published a version
        customer_id=customer.id,
        customer_ref=customer.ref_id,
        is_archived=customer.archived_at is not None,
    )
    announced = dict(customer.announced_entitlements or {})
    changed: list[Snapshot] = []
    for resource_ref in [None, *sorted(held.resource_refs)]:
        snapshot = engine.compute(held, resource_ref=resource_ref, version=0, now=now)
        scope = resource_ref or _CUSTOMER_SCOPE
        digest = _digest(snapshot)
        if announced.get(scope, _NOTHING) != digest:
            announced[scope] = digest
            changed.append(snapshot)
    if not changed:
        return
    session.execute(
        update(Customer)
        .where(Customer.id == customer.id)
        # The customer's own fields did not change: updated_at stays.
        .values(announced_entitlements=announced, updated_at=Customer.updated_at)
        .execution_options(synchronize_session=False)
    )
    # The loaded customer must agree, or a second change in this transaction would compare
    # with the digests from before this one and announce the same terms again.
    set_committed_value(customer, "announced_entitlements", announced)
    features = holdings.load_features(session, environment_id)
    usage = usage_store.load(session, environment_id, customer.ref_id, now)
    events = [
        outbox.Event(
            EventType.ENTITLEMENTS_UPDATED,
            {
                "trigger": trigger.value,
                "customer": {"id": customer.ref_id},
                "resource": {"id": s.resource_ref} if s.resource_ref else None,
                "entitlements": describe_entitlements(s, features, usage),
            },
            ordering_key=customer.ref_id,
        )
        for s in changed
    ]
    outbox.emit_many(session, environment_id=environment_id, events=events, now=now)


def announce_below(
    session: Session, package_id: int, *, environment_id: int, now: datetime
) -> None:
    """After a plan's publish: a plan includes its parent's latest published version, so
    customers of the plans below it (at any depth) may now hold other terms."""
    if not outbox.is_wanted(session, environment_id, EventType.ENTITLEMENTS_UPDATED):
        return
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
        return
    holders = (
        select(Subscription.customer_id)
        .join(PackageVersion, PackageVersion.id == Subscription.plan_version_id)
        .where(PackageVersion.package_id.in_(below), Subscription.status.in_(LIVE_STATUSES))
    )
    for customer in session.scalars(
        select(Customer).where(Customer.id.in_(holders)).order_by(Customer.id)
    ):
        announce(session, customer, trigger=Trigger.PLAN_PUBLISHED, now=now)


def _digest(snapshot: Snapshot) -> str:
    return _digest_of([_terms(snapshot.entitlements[ref]) for ref in sorted(snapshot.entitlements)])


def _terms(entitlement: Effective) -> list[Any]:
    """What a receiver acts on; usage and the current usage period are left out."""
    return [
        entitlement.feature_ref,
        entitlement.is_granted,
        entitlement.usage_limit,
        entitlement.has_unlimited_usage,
        entitlement.has_soft_limit,
        sorted(entitlement.enum_values) if entitlement.enum_values is not None else None,
        entitlement.reset_period.value if entitlement.reset_period else None,
        entitlement.usage_period_anchor,
        entitlement.valid_until,
    ]


def _digest_of(terms: list[list[Any]]) -> str:
    return hashlib.blake2b(orjson.dumps(terms), digest_size=16).hexdigest()


# A scope never announced counts as holding nothing, so a customer created without
# entitlements says nothing until it gets some.
_NOTHING = _digest_of([])

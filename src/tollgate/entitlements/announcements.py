"""`entitlements.updated`: said when what a customer may use changes, not on every write.

Writers only record that a customer's holdings changed (`customers.feed`). The announcer
follows the change feed inside the transaction, just before it commits (wired in
`create_app` and in every process that writes): once per customer per transaction, however
many changes it made, it recomputes the customer's entitlements (for the customer and for
each of its resources) as the transaction sees them, and owes the event only for those
whose terms moved since they were last announced. Usage and the rolling usage period are
not terms: `measurement.reported` tells of those."""

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tollgate.customers.feed import Trigger
from tollgate.customers.models import Customer
from tollgate.db.changes import Change, ChangeKind
from tollgate.entitlements import engine, holdings, usage_store
from tollgate.entitlements.engine import Effective, FeatureInfo, Snapshot
from tollgate.entitlements.service import describe_entitlements
from tollgate.entitlements.usage_store import CustomerUsage
from tollgate.kit.clock import Clock
from tollgate.webhooks import outbox
from tollgate.webhooks.event_types import EventType

_CUSTOMER_SCOPE = ""  # the key, among announced digests, of the customer's own entitlements


class Announcer:
    """Follows the change feed inside each transaction (`ChangeFeed.follow_in_transaction`)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def __call__(self, session: Session, changes: Sequence[Change]) -> None:
        announce_changes(session, changes, now=self._clock.now())


def announce_changes(session: Session, changes: Sequence[Change], *, now: datetime) -> None:
    """Owe `entitlements.updated` for every customer whose holdings these changes moved:
    once per customer, saying why by the last change's cause."""
    triggers: dict[int, dict[str, str]] = {}  # environment -> customer -> trigger
    for change in changes:
        if change.kind is ChangeKind.CUSTOMER and change.cause:
            triggers.setdefault(change.environment_id, {})[change.customer_ref] = change.cause
    for environment_id, by_customer in triggers.items():
        if not outbox.is_wanted(session, environment_id, EventType.ENTITLEMENTS_UPDATED):
            continue  # nobody listens: computing entitlements would be wasted
        # Shared by the environment's customers, and new: this transaction may have
        # published a version.
        grants = holdings.PackageGrantsCache()
        features: dict[str, FeatureInfo] | None = None  # read once, if anything is owed
        customers = session.scalars(
            select(Customer)
            .where(
                Customer.environment_id == environment_id,
                Customer.ref_id.in_(by_customer),
            )
            .order_by(Customer.id)
        )
        for customer in customers:
            changed = _moved_scopes(session, customer, grants, now)
            if not changed:
                continue
            if features is None:
                features = holdings.load_features(session, environment_id)
            trigger = Trigger(by_customer[customer.ref_id])
            _owe(session, customer, changed, features, trigger=trigger, now=now)


def _moved_scopes(
    session: Session, customer: Customer, grants: holdings.PackageGrantsCache, now: datetime
) -> list[Snapshot]:
    """The customer's scopes (its own and each resource's) whose terms differ from those
    last announced; their digests are recorded as announced."""
    held = holdings.load_holdings(
        session,
        grants,
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
        return changed
    session.execute(
        update(Customer)
        .where(Customer.id == customer.id)
        # The customer's own fields did not change: updated_at stays.
        .values(announced_entitlements=announced, updated_at=Customer.updated_at)
        .execution_options(synchronize_session=False)
    )
    # The loaded customer must agree: sessions keep objects across commits, and a later
    # transaction of this one would compare with the digests from before this one and
    # announce the same terms again.
    set_committed_value(customer, "announced_entitlements", announced)
    return changed


def _owe(
    session: Session,
    customer: Customer,
    changed: list[Snapshot],
    features: Mapping[str, FeatureInfo],
    *,
    trigger: Trigger,
    now: datetime,
) -> None:
    """One `entitlements.updated` per scope whose terms moved, in this transaction."""
    usage = usage_store.load(session, customer.environment_id, customer.ref_id, now)
    events = [
        outbox.Event(
            EventType.ENTITLEMENTS_UPDATED,
            {
                "trigger": trigger.value,
                "customer": {"id": customer.ref_id},
                "resource": {"id": s.resource_ref} if s.resource_ref else None,
                "entitlements": _announced(s, features, usage),
            },
            ordering_key=customer.ref_id,
        )
        for s in changed
    ]
    outbox.emit_many(session, environment_id=customer.environment_id, events=events, now=now)


def _announced(
    snapshot: Snapshot, features: Mapping[str, FeatureInfo], usage: CustomerUsage
) -> list[dict[str, Any]]:
    """Each entitlement as a check decides it, with the terms a check's answer leaves out
    and a receiver needs to decide checks itself (the replica does): the soft limit, the
    enum values, the feature's meter and units."""
    described = describe_entitlements(snapshot, features, usage)
    for wire in described:
        feature = features[wire["feature"]["id"]]
        entitlement = snapshot.entitlements[feature.ref_id]
        values = entitlement.enum_values
        wire["hasSoftLimit"] = entitlement.has_soft_limit
        wire["enumValues"] = sorted(values) if values is not None else None
        wire["feature"] = {
            **wire["feature"],
            "meterType": feature.meter_type,
            "featureUnits": feature.units,
            "featureUnitsPlural": feature.units_plural,
        }
    return described


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

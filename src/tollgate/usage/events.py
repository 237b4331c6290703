"""Raw events: stored once per idempotency key, and counted by every meter that matches
them in the same transaction, so usage is current the moment the request returns.

A key stands for one event (customer, name, resource and dimensions; not its timestamp,
which a retry may leave out): sent again with another, the batch is refused (see
`idempotency`). A request that loses a race for a key to a concurrent one runs once more
from a savepoint and answers as a retry would, as reports do."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.orm import Session

from tollgate.customers.models import Customer
from tollgate.db.changes import Change, ChangeKind, record
from tollgate.db.errors import run_again_on_duplicate
from tollgate.db.sets import where_among
from tollgate.entitlements.periods import usage_period
from tollgate.entitlements.snapshots import SnapshotSource
from tollgate.usage import counters, limits, meters, thresholds
from tollgate.usage.counters import CounterKey
from tollgate.usage.errors import UsageRefused
from tollgate.usage.idempotency import FirstUses, Use, comparable
from tollgate.usage.models import UsageEvent
from tollgate.usage.reports import FUTURE_TOLERANCE
from tollgate.usage.subjects import (
    EVENT_WINDOW_DAYS,
    CustomerRow,
    MeteredFeature,
    customer_problem,
    customers_of,
    features_of,
)

_MAX_DISTINCT_LENGTH = 200


@dataclass(frozen=True, slots=True)
class EventReport:
    customer_ref: str
    event_name: str
    idempotency_key: str
    dimensions: dict[str, Any] = field(default_factory=dict)
    resource_ref: str | None = None
    timestamp: datetime | None = None
    enforce_limit: bool = False
    # With enforce_limit: only this feature's counter is enforced, others count freely
    # (None: every counter the event moves).
    enforce_only: str | None = None


@dataclass(frozen=True, slots=True)
class _Amount:
    """What one event adds to one counter, and where the event sits in its batch."""

    value: int | str
    index: int
    enforce_limit: bool


@dataclass(slots=True)
class _Counted:
    """What one counter receives from the batch, in order."""

    feature: MeteredFeature
    period_end: datetime | None
    customer_ref: str
    resource_ref: str | None
    amounts: list[_Amount] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Tally:
    """One counter moved by a batch: its usage (scaled) before and after."""

    customer_ref: str
    feature_ref: str
    before: int
    after: int


@dataclass(frozen=True, slots=True)
class Stored:
    """A batch as stored: how many of its events were new, and the counters they moved."""

    count: int
    tallies: list[Tally]


@dataclass(frozen=True, slots=True)
class _Measured:
    customer_ref: str
    feature_ref: str
    resource_ref: str | None
    period_start: datetime
    period_end: datetime | None


def report_events(
    session: Session,
    snapshots: SnapshotSource,
    *,
    environment_id: int,
    events: Sequence[EventReport],
    now: datetime,
) -> Stored:
    """Store the batch's new events and count them.

    An event with `enforce_limit` passes only if no counter it moves goes past the
    customer's limit (a UNIQUE meter's value already counted in the period moves nothing);
    otherwise UsageLimitExceeded refuses the batch, decided under the counters' locks.

    A refused batch leaves nothing written (its work runs in a savepoint), so the caller's
    transaction may go on."""
    customers = _checked(session, environment_id, events, now)
    fresh, tallies = run_again_on_duplicate(
        session,
        lambda: _store(session, snapshots, environment_id, customers, events, now),
        table=UsageEvent.__table__,  # type: ignore[arg-type]
        columns=("environment_id", "idempotency_key"),
    )
    for ref in {event.customer_ref for event in fresh}:
        record(session, Change(ChangeKind.USAGE, environment_id, ref))
    return Stored(len(fresh), tallies)


def _store(
    session: Session,
    snapshots: SnapshotSource,
    environment_id: int,
    customers: dict[str, CustomerRow],
    events: Sequence[EventReport],
    now: datetime,
) -> tuple[list[EventReport], list[Tally]]:
    fresh = _new_events(session, environment_id, customers, events, now)
    if not fresh:
        return [], []
    rows = [_row(environment_id, customers[e.customer_ref], e, now) for _, e in fresh]
    # In key order, so that batches sharing keys wait for each other in one order on the
    # unique index rather than deadlock.
    session.execute(insert(UsageEvent), sorted(rows, key=lambda row: row["idempotency_key"]))
    meters_ = [f for f in features_of(session, environment_id).values() if f.meter is not None]
    counted = _measure(snapshots, environment_id, customers, fresh, meters_, now)
    return [event for _, event in fresh], _count(session, snapshots, environment_id, counted, now)


def _checked(
    session: Session, environment_id: int, events: Sequence[EventReport], now: datetime
) -> dict[str, CustomerRow]:
    customers = customers_of(session, environment_id, (e.customer_ref for e in events))
    problems = []
    for index, event in enumerate(events):
        problem = customer_problem(customers.get(event.customer_ref), event.customer_ref)
        if problem:
            problems.append({"field": f"events[{index}].customerId", "message": problem})
        elif event.timestamp is not None and event.timestamp > now + FUTURE_TOLERANCE:
            problems.append(
                {"field": f"events[{index}].timestamp", "message": "timestamp is in the future"}
            )
    if problems:
        raise UsageRefused(problems)
    return customers


def _new_events(
    session: Session,
    environment_id: int,
    customers: dict[str, CustomerRow],
    events: Sequence[EventReport],
    now: datetime,
) -> list[tuple[int, EventReport]]:
    """The events whose keys were not seen within the window (nor earlier in the batch),
    with their places in the batch; IdempotencyKeyReused if a key comes with another event
    than it stands for."""
    uses = FirstUses(items="events", kind="event", outcome="stored")
    for key, use in _remembered(session, environment_id, events, now).items():
        uses.remember(key, use)
    fresh = []
    for index, event in enumerate(events):
        described = partial(_use, customers[event.customer_ref].id, event)
        if not uses.repeats(index, event.idempotency_key, described):
            fresh.append((index, event))
    uses.refuse_reuses()
    return fresh


def _remembered(
    session: Session, environment_id: int, events: Sequence[EventReport], now: datetime
) -> dict[str, Use]:
    """What the keys seen within the window stand for; older keys are let go."""
    e = UsageEvent
    query = select(
        e.id,
        e.idempotency_key,
        e.recorded_at,
        e.customer_id,
        Customer.ref_id.label("customer_ref"),
        e.event_name,
        e.resource_ref,
        e.dimensions,
    ).where(e.environment_id == environment_id)
    keys = {event.idempotency_key for event in events}
    query = where_among(session, query, e.idempotency_key, keys)
    rows = session.execute(query.join(Customer, Customer.id == e.customer_id)).all()
    horizon = now - timedelta(days=EVENT_WINDOW_DAYS)
    expired = [row.id for row in rows if row.recorded_at < horizon]
    if expired:
        session.execute(update(e).where(e.id.in_(expired)).values(idempotency_key=None))
    return {
        row.idempotency_key: _stored_use(row)
        for row in rows
        if row.recorded_at >= horizon and row.idempotency_key is not None
    }


def _stored_use(row: Row[Any]) -> Use:
    return Use(
        content={
            "customerId": row.customer_id,
            "eventName": row.event_name,
            "resourceId": row.resource_ref,
            "dimensions": comparable(row.dimensions),
        },
        subject={
            "customerId": row.customer_ref,
            "eventName": row.event_name,
            "resourceId": row.resource_ref or None,
        },
    )


def _use(customer_id: int, event: EventReport) -> Use:
    """What makes an event the same event; not its timestamp, which a retry may leave out."""
    return Use(
        content={
            "customerId": customer_id,
            "eventName": event.event_name,
            "resourceId": event.resource_ref or "",
            "dimensions": comparable(event.dimensions),
        },
        subject={
            "customerId": event.customer_ref,
            "eventName": event.event_name,
            "resourceId": event.resource_ref,
        },
    )


def _row(
    environment_id: int, customer: CustomerRow, event: EventReport, now: datetime
) -> dict[str, Any]:
    return {
        "environment_id": environment_id,
        "customer_id": customer.id,
        "resource_ref": event.resource_ref or "",
        "event_name": event.event_name,
        "idempotency_key": event.idempotency_key,
        "dimensions": event.dimensions,
        "timestamp": event.timestamp or now,
        "recorded_at": now,
    }


def _measure(
    snapshots: SnapshotSource,
    environment_id: int,
    customers: dict[str, CustomerRow],
    fresh: list[tuple[int, EventReport]],
    metered: list[MeteredFeature],
    now: datetime,
) -> dict[CounterKey, _Counted]:
    counted: dict[CounterKey, _Counted] = {}
    for index, event in fresh:
        seen = meters.Event(
            event.event_name, event.customer_ref, event.resource_ref, event.dimensions
        )
        for feature in metered:
            assert feature.meter is not None
            if not meters.matches(feature.meter, seen):
                continue
            amount = meters.measured(feature.meter, seen)
            if amount is None:
                continue
            snapshot = snapshots.snapshot(environment_id, event.customer_ref, event.resource_ref)
            entitlement = snapshot.entitlements.get(feature.ref_id)
            start, end = usage_period(feature.meter_type, entitlement, event.timestamp or now)
            customer_id = customers[event.customer_ref].id
            key = CounterKey(customer_id, feature.id, event.resource_ref or "", start)
            counter = _Counted(feature, end, event.customer_ref, event.resource_ref)
            enforced = event.enforce_limit and event.enforce_only in (None, feature.ref_id)
            counted.setdefault(key, counter).amounts.append(_Amount(amount, index, enforced))
    return counted


def _count(
    session: Session,
    snapshots: SnapshotSource,
    environment_id: int,
    counted: dict[CounterKey, _Counted],
    now: datetime,
) -> list[Tally]:
    periods = {key: c.period_end for key, c in counted.items()}
    locked = counters.lock(session, environment_id=environment_id, periods=periods, now=now)
    moves = []
    tallies = []
    for key, batch in counted.items():
        counter = locked[key]
        before = counter.value
        feature = batch.feature
        assert feature.meter is not None
        distinct = [_distinct(a.value) for a in batch.amounts if isinstance(a.value, str)]
        new = counters.new_distinct_values(session, counter.id, distinct)
        for amount in batch.amounts:
            was = counter.value
            if isinstance(amount.value, str):
                value = _distinct(amount.value)
                meters.add(counter.aggregate, amount.value, is_new_distinct=value in new)
                new.discard(value)
            else:
                meters.add(counter.aggregate, amount.value)
            counter.value = meters.usage(
                feature.meter, counter.aggregate, feature.unit_transformation
            )
            if amount.enforce_limit and counter.value > was:
                limits.refuse_past_limit(
                    snapshots,
                    environment_id,
                    customer_ref=batch.customer_ref,
                    resource_ref=batch.resource_ref,
                    feature_ref=feature.ref_id,
                    before=was,
                    after=counter.value,
                    field=f"events[{amount.index}]",
                )
        counter.changed = True
        measured = _Measured(
            batch.customer_ref,
            feature.ref_id,
            batch.resource_ref,
            key.period_start,
            batch.period_end,
        )
        moves.append(thresholds.Move(counter.id, measured, before=before, after=counter.value))
        tallies.append(Tally(batch.customer_ref, feature.ref_id, before, counter.value))
    counters.save(session, locked.values(), now=now)
    thresholds.announce_crossings(
        session, snapshots, environment_id=environment_id, moves=moves, now=now
    )
    return tallies


def _distinct(value: str) -> str:
    """A distinct value as stored: long ones by their digest, to fit the column."""
    if len(value) <= _MAX_DISTINCT_LENGTH:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()

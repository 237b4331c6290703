"""Usage counters, written in bulk.

`lock` + `save`: a write that must decide from the current values (a SET, an enforced
limit, a meter's aggregate) locks every counter it will change first, so two requests
racing for the last unit of a limit are decided one after the other (PostgreSQL: row locks
taken in id order; SQLite: the writer's lock taken at BEGIN).

`add`: plain increments need no decision, so on PostgreSQL they are one upsert
(`value = value + excluded.value`) that returns the new totals; rows go in key order, so
concurrent batches lock shared counters in the same order and never deadlock."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from tollgate.db import bulk
from tollgate.db.sets import where_among
from tollgate.db.upsert import insert_missing
from tollgate.usage.meters import Aggregate
from tollgate.usage.models import MeterUniqueValue, UsageCounter


@dataclass(frozen=True, slots=True, order=True)
class CounterKey:
    customer_id: int
    feature_id: int
    resource_ref: str
    period_start: datetime


@dataclass(slots=True)
class Counter:
    id: int
    value: int
    aggregate: Aggregate = field(default_factory=Aggregate)
    changed: bool = False


def lock(
    session: Session,
    *,
    environment_id: int,
    periods: Mapping[CounterKey, datetime | None],
    now: datetime,
) -> dict[CounterKey, Counter]:
    """The counters of `periods` (key → period end), created at zero if missing, locked."""
    if not periods:
        return {}
    insert_missing(
        session,
        UsageCounter.__table__,  # type: ignore[arg-type]
        [
            {
                "environment_id": environment_id,
                "customer_id": key.customer_id,
                "feature_id": key.feature_id,
                "resource_ref": key.resource_ref,
                "period_start": key.period_start,
                "period_end": end,
                "value": 0,
                "event_count": 0,
                "event_sum": 0,
                "unique_count": 0,
                "updated_at": now,
            }
            for key, end in sorted(periods.items())
        ],
    )
    c = UsageCounter
    query = (
        select(
            c.id,
            c.customer_id,
            c.feature_id,
            c.resource_ref,
            c.period_start,
            c.value,
            c.event_count,
            c.event_sum,
            c.event_min,
            c.event_max,
            c.unique_count,
        )
        .where(
            c.feature_id.in_({key.feature_id for key in periods}),  # a few of each
            c.period_start.in_({key.period_start for key in periods}),
        )
        .order_by(c.id)
        .with_for_update(of=c)
    )
    customers = {key.customer_id for key in periods}
    rows = session.execute(where_among(session, query, c.customer_id, customers))
    locked = {}
    for row in rows:
        key = CounterKey(row.customer_id, row.feature_id, row.resource_ref, row.period_start)
        if key in periods:
            aggregate = Aggregate(
                row.event_count, row.event_sum, row.event_min, row.event_max, row.unique_count
            )
            locked[key] = Counter(row.id, row.value, aggregate)
    return locked


def add(
    session: Session,
    *,
    environment_id: int,
    deltas: Mapping[CounterKey, tuple[datetime | None, int]],
    now: datetime,
) -> dict[CounterKey, tuple[int, int]]:
    """Add each key's delta (key → (period end, delta)); return (counter id, new total)."""
    ordered = sorted(deltas.items())
    if session.get_bind().dialect.name != "postgresql":
        return _sqlite_add(session, environment_id, ordered, now)
    rows = session.execute(
        text(_PG_ADD),
        {
            "environment_id": environment_id,
            "now": now,
            "customers": [key.customer_id for key, _ in ordered],
            "features": [key.feature_id for key, _ in ordered],
            "resources": [key.resource_ref for key, _ in ordered],
            "starts": [key.period_start for key, _ in ordered],
            "ends": [end for _, (end, _) in ordered],
            "deltas": [delta for _, (_, delta) in ordered],
        },
    )
    return {
        CounterKey(row.customer_id, row.feature_id, row.resource_ref, row.period_start): (
            row.id,
            row.value,
        )
        for row in rows
    }


def _sqlite_add(
    session: Session,
    environment_id: int,
    ordered: list[tuple[CounterKey, tuple[datetime | None, int]]],
    now: datetime,
) -> dict[CounterKey, tuple[int, int]]:
    times: dict[datetime, str] = {}
    keys = {}
    totals = {}
    for start in range(0, len(ordered), _SQLITE_ROWS):
        chunk = ordered[start : start + _SQLITE_ROWS]
        params: list[Any] = []
        for key, (end, delta) in chunk:
            stored_start = bulk.sqlite_param(key.period_start, times)
            keys[(key.customer_id, key.feature_id, key.resource_ref, stored_start)] = key
            params += [environment_id, key.customer_id, key.feature_id, key.resource_ref]
            params += [stored_start, bulk.sqlite_param(end, times), delta]
            params.append(bulk.sqlite_param(now, times))
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?)"] * len(chunk))
        rows = session.connection().exec_driver_sql(
            _SQLITE_ADD.format(values=values), tuple(params)
        )
        for counter_id, customer_id, feature_id, resource_ref, stored_start, value in rows:
            totals[keys[(customer_id, feature_id, resource_ref, stored_start)]] = (
                counter_id,
                value,
            )
    return totals


_SQLITE_ROWS = 1_000  # 8 parameters a row, well under SQLite's 32,766
_SQLITE_ADD = """
INSERT INTO usage_counters (environment_id, customer_id, feature_id, resource_ref,
    period_start, period_end, value, event_count, event_sum, unique_count, updated_at)
VALUES {values}
ON CONFLICT (customer_id, feature_id, resource_ref, period_start)
DO UPDATE SET value = value + excluded.value, updated_at = excluded.updated_at
RETURNING id, customer_id, feature_id, resource_ref, period_start, value
"""
_PG_ADD = """
INSERT INTO usage_counters AS c (environment_id, customer_id, feature_id, resource_ref,
    period_start, period_end, value, event_count, event_sum, unique_count, updated_at)
SELECT :environment_id, t.customer_id, t.feature_id, t.resource_ref, t.period_start,
    t.period_end, t.delta, 0, 0, 0, :now
FROM unnest(CAST(:customers AS bigint[]), CAST(:features AS bigint[]),
    CAST(:resources AS text[]), CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]),
    CAST(:deltas AS bigint[]))
    WITH ORDINALITY AS t(customer_id, feature_id, resource_ref, period_start, period_end,
        delta, position)
ORDER BY t.position
ON CONFLICT (customer_id, feature_id, resource_ref, period_start)
DO UPDATE SET value = c.value + excluded.value, updated_at = excluded.updated_at
RETURNING c.id, c.customer_id, c.feature_id, c.resource_ref, c.period_start, c.value
"""


def claim_limit_reached(session: Session, counter_ids: set[int], *, now: datetime) -> set[int]:
    """Mark counters whose usage reached the limit; return those not marked before, so a
    period's `entitlement.usage_exceeded` is sent once."""
    if not counter_ids:
        return set()
    claimed = session.scalars(
        update(UsageCounter)
        .where(UsageCounter.id.in_(counter_ids), UsageCounter.limit_reached_at.is_(None))
        .values(limit_reached_at=now)
        .returning(UsageCounter.id)
    )
    return set(claimed)


def save(session: Session, counters: Iterable[Counter], *, now: datetime) -> None:
    changed = [
        {
            "id": counter.id,
            "value": counter.value,
            "event_count": counter.aggregate.count,
            "event_sum": counter.aggregate.total,
            "event_min": counter.aggregate.low,
            "event_max": counter.aggregate.high,
            "unique_count": counter.aggregate.distinct,
            "updated_at": now,
        }
        for counter in counters
        if counter.changed
    ]
    bulk.update_rows(session, UsageCounter.__table__, changed)  # type: ignore[arg-type]


def new_distinct_values(session: Session, counter_id: int, values: Iterable[str]) -> set[str]:
    """Record the values a UNIQUE meter saw in a counter's period; return the new ones.

    The caller holds the counter's lock, so nobody else adds values to it meanwhile."""
    wanted = set(values)
    if not wanted:
        return set()
    known = set(
        session.scalars(
            select(MeterUniqueValue.value).where(
                MeterUniqueValue.counter_id == counter_id, MeterUniqueValue.value.in_(wanted)
            )
        )
    )
    fresh = wanted - known
    if fresh:
        session.execute(
            MeterUniqueValue.__table__.insert(),  # type: ignore[attr-defined]
            [{"counter_id": counter_id, "value": value} for value in sorted(fresh)],
        )
    return fresh

"""Usage over time for one customer and feature, in the `stigg` client's history shape.

Reported usage replays the stored reports; event-metered usage replays the stored events
through the feature's meter. Each series restarts at every usage period (a reset point)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.entitlements.periods import usage_period
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.errors import InvalidValue, NotFound
from tollgate.kit.amounts import from_units
from tollgate.usage import meters
from tollgate.usage.models import UsageEvent, UsageRecord
from tollgate.usage.subjects import MeteredFeature, customers_of, features_of


@dataclass(slots=True)
class _Series:
    points: list[dict[str, Any]] = field(default_factory=list)
    period: datetime | None = None
    total: int = 0
    aggregate: meters.Aggregate = field(default_factory=meters.Aggregate)
    distinct: set[str] = field(default_factory=set)
    resets: set[datetime] = field(default_factory=set)  # periods that followed another
    restarted: bool = False  # the next point is the first of a new period


def usage_history(
    session: Session,
    snapshots: SnapshotStore,
    *,
    environment_id: int,
    customer_ref: str,
    feature_ref: str,
    start: datetime,
    end: datetime,
    group_by: str | None,
    resource_ref: str | None,
) -> dict[str, Any]:
    if end <= start:
        raise InvalidValue("endDate must be after startDate", field="endDate")
    customer = customers_of(session, environment_id, [customer_ref]).get(customer_ref)
    if customer is None:
        raise NotFound("customer", customer_ref, field="customerId")
    feature = features_of(session, environment_id).get(feature_ref)
    if feature is None:
        raise NotFound("feature", feature_ref, field="featureId")
    if not feature.is_metered:
        raise InvalidValue(f"feature '{feature_ref}' is not metered", field="featureId")
    snapshot = snapshots.snapshot(environment_id, customer_ref, resource_ref)
    entitlement = snapshot.entitlements.get(feature_ref)

    def period_of(moment: datetime) -> datetime:
        return usage_period(feature.meter_type, entitlement, moment)[0]

    series: dict[str, _Series] = {}
    if feature.meter is None:
        for row in _records(session, customer.id, feature, resource_ref, start, end):
            group = _group(row.dimensions, group_by)
            state = _advance(series, group, period_of(row.created_at))
            state.total = row.usage_after if group_by is None else state.total + row.change
            _point(state, row.created_at, state.total)
    else:
        for event in _events(session, customer.id, resource_ref, start, end):
            _replay(series, feature, event, customer_ref, group_by, period_of(event.timestamp))
    resets = sorted({p for state in series.values() for p in state.resets})
    markers = [{"timestamp": p, "type": "PERIODIC_RESET"} for p in resets]
    return {
        "markers": markers,
        "series": [
            {
                "points": state.points,
                "tags": [] if group_by is None else [{"key": group_by, "value": group}],
            }
            for group, state in sorted(series.items())
        ],
    }


def _records(
    session: Session,
    customer_id: int,
    feature: MeteredFeature,
    resource_ref: str | None,
    start: datetime,
    end: datetime,
) -> Iterable[UsageRecord]:
    r = UsageRecord
    return session.scalars(
        select(r)
        .where(
            r.customer_id == customer_id,
            r.feature_id == feature.id,
            r.resource_ref == (resource_ref or ""),
            r.created_at >= start,
            r.created_at <= end,
        )
        .order_by(r.created_at, r.id)
    )


def _events(
    session: Session, customer_id: int, resource_ref: str | None, start: datetime, end: datetime
) -> Iterable[UsageEvent]:
    e = UsageEvent
    return session.scalars(
        select(e)
        .where(
            e.customer_id == customer_id,
            e.resource_ref == (resource_ref or ""),
            e.timestamp >= start,
            e.timestamp <= end,
        )
        .order_by(e.timestamp, e.id)
    )


def _replay(
    series: dict[str, _Series],
    feature: MeteredFeature,
    row: UsageEvent,
    customer_ref: str,
    group_by: str | None,
    period: datetime,
) -> None:
    assert feature.meter is not None
    event = meters.Event(row.event_name, customer_ref, row.resource_ref or None, row.dimensions)
    if not meters.matches(feature.meter, event):
        return
    amount = meters.measured(feature.meter, event)
    if amount is None:
        return
    state = _advance(series, _group(row.dimensions, group_by), period)
    is_new = isinstance(amount, str) and amount not in state.distinct
    if isinstance(amount, str):
        state.distinct.add(amount)
    meters.add(state.aggregate, amount, is_new_distinct=is_new)
    value = meters.usage(feature.meter, state.aggregate, feature.unit_transformation)
    _point(state, row.timestamp, value)


def _group(dimensions: dict[str, Any] | None, group_by: str | None) -> str:
    if group_by is None:
        return ""
    value = (dimensions or {}).get(group_by)
    return "" if value is None else str(value)


def _advance(series: dict[str, _Series], group: str, period: datetime) -> _Series:
    """The group's series, restarted when `period` is a new usage period."""
    state = series.setdefault(group, _Series())
    if state.period is not None and state.period != period:
        state.total = 0
        state.aggregate = meters.Aggregate()
        state.distinct = set()
        state.restarted = True
        state.resets.add(period)
    state.period = period
    return state


def _point(state: _Series, moment: datetime, units: int) -> None:
    state.points.append(
        {"timestamp": moment, "value": from_units(units), "isResetPoint": state.restarted}
    )
    state.restarted = False

"""Usage reports: DELTA and SET, idempotent, all-or-nothing per batch, optionally enforced.

A batch is checked whole before anything is written; then its counters are locked, each
report applied in order, and one record per report written, all in the request's
transaction. A report whose idempotency key was seen within the window is not applied
again: its answer is the original one, rebuilt from the stored record. A key sent with a
different report is refused (see `idempotency`).

Two requests may send one key at once: both find it new, and the second to insert it
meets the first's row in the unique index. It then runs once more from a savepoint and
answers as a retry would (`db.errors.run_again_on_duplicate`)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tollgate.catalog.models import Feature
from tollgate.customers.models import Customer
from tollgate.db import bulk
from tollgate.db.changes import Change, ChangeKind, record
from tollgate.db.errors import run_again_on_duplicate
from tollgate.db.sets import where_among
from tollgate.entitlements.periods import usage_period
from tollgate.entitlements.snapshots import SnapshotSource
from tollgate.kit.amounts import from_units
from tollgate.usage import counters, limits, thresholds
from tollgate.usage.announcements import announce_measurements
from tollgate.usage.counters import CounterKey
from tollgate.usage.errors import UsageRefused
from tollgate.usage.idempotency import FirstUses, Use, comparable
from tollgate.usage.models import UpdateBehavior, UsageRecord
from tollgate.usage.subjects import (
    EVENT_WINDOW_DAYS,
    CustomerRow,
    MeteredFeature,
    customer_problem,
    customers_of,
    features_of,
)

FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks of reporting hosts drift a little


@dataclass(frozen=True, slots=True)
class UsageReport:
    customer_ref: str
    feature_ref: str
    value: int  # scaled, see amounts.py
    behavior: UpdateBehavior = UpdateBehavior.DELTA
    created_at: datetime | None = None
    dimensions: dict[str, Any] | None = None
    idempotency_key: str | None = None
    resource_ref: str | None = None
    enforce_limit: bool = False


@dataclass(frozen=True, slots=True)
class Measurement:
    """A report as applied (or, for a retry, as it was applied the first time)."""

    id: int
    customer_ref: str
    feature_ref: str
    resource_ref: str | None
    value: int
    usage_after: int
    created_at: datetime
    recorded_at: datetime
    period_start: datetime
    period_end: datetime | None

    def as_wire(self) -> dict[str, Any]:
        has_period = self.period_end is not None
        return {
            "id": str(self.id),
            "customerId": self.customer_ref,
            "featureId": self.feature_ref,
            "resourceId": self.resource_ref,
            "value": from_units(self.value),
            "currentUsage": from_units(self.usage_after),
            "createdAt": self.created_at,
            "timestamp": self.recorded_at,
            "usagePeriodStart": self.period_start if has_period else None,
            "usagePeriodEnd": self.period_end,
            "nextResetDate": self.period_end,
        }


@dataclass(slots=True)
class _Item:
    index: int
    report: UsageReport
    customer: CustomerRow
    feature: MeteredFeature
    key: CounterKey
    period_end: datetime | None
    created_at: datetime


def report_usage(
    session: Session,
    snapshots: SnapshotSource,
    *,
    environment_id: int,
    reports: Sequence[UsageReport],
    now: datetime,
) -> list[Measurement]:
    items = _checked(session, snapshots, environment_id=environment_id, reports=reports, now=now)
    measured, fresh = run_again_on_duplicate(
        session,
        lambda: _apply(session, snapshots, environment_id, items, now),
        table=UsageRecord.__table__,  # type: ignore[arg-type]
        columns=("environment_id", "idempotency_key"),
    )
    for ref in {item.customer.ref_id for item in fresh}:
        record(session, Change(ChangeKind.USAGE, environment_id, ref))
    return measured


def _apply(
    session: Session,
    snapshots: SnapshotSource,
    environment_id: int,
    items: list[_Item],
    now: datetime,
) -> tuple[list[Measurement], list[_Item]]:
    """Every report's answer, and the items applied now (not repeats of a key)."""
    uses = FirstUses(items="usages", kind="report", outcome="counted")
    answered = _remembered(session, environment_id, items, now, uses)
    fresh = [item for item in items if not _repeats(uses, item)]
    uses.refuse_reuses()
    applied = _write(session, snapshots, environment_id, fresh, now) if fresh else []
    by_index = {item.index: measurement for item, measurement in zip(fresh, applied, strict=True)}
    for item, measurement in zip(fresh, applied, strict=True):
        if item.report.idempotency_key is not None:
            answered[item.report.idempotency_key] = measurement
    measured = [
        by_index.get(item.index) or answered[item.report.idempotency_key or ""] for item in items
    ]
    return measured, fresh


def _write(
    session: Session,
    snapshots: SnapshotSource,
    environment_id: int,
    fresh: list[_Item],
    now: datetime,
) -> list[Measurement]:
    if all(_is_plain_increment(item.report) for item in fresh):
        rows, counter_ids = _add(session, environment_id, fresh, now)
    else:
        rows, counter_ids = _decide(session, snapshots, environment_id, fresh, now)
    applied = _insert(session, fresh, rows)
    announce_measurements(session, environment_id, rows, applied, now)
    thresholds.announce_crossings(
        session,
        snapshots,
        environment_id=environment_id,
        moves=[
            thresholds.Move(
                counter_ids[item.key],
                measurement,
                before=row["usage_after"] - row["change"],
                after=row["usage_after"],
            )
            for item, row, measurement in zip(fresh, rows, applied, strict=True)
        ],
        now=now,
    )
    return applied


def _checked(
    session: Session,
    snapshots: SnapshotSource,
    *,
    environment_id: int,
    reports: Sequence[UsageReport],
    now: datetime,
) -> list[_Item]:
    """Every report resolved to its counter, or UsageRefused naming every bad one."""
    customers = customers_of(session, environment_id, (r.customer_ref for r in reports))
    features = features_of(session, environment_id)
    items: list[_Item] = []
    problems: list[dict[str, Any]] = []
    for index, report in enumerate(reports):
        customer = customers.get(report.customer_ref)
        feature = features.get(report.feature_ref)
        problem, field = _problem(report, customer, feature, now)
        if problem is None and customer is not None and feature is not None:
            snapshot = snapshots.snapshot(environment_id, report.customer_ref, report.resource_ref)
            if not snapshot.resource_found:
                problem, field = (
                    f"customer '{report.customer_ref}' has no resource '{report.resource_ref}'",
                    "resourceId",
                )
            else:
                created_at = report.created_at or now
                entitlement = snapshot.entitlements.get(feature.ref_id)
                start, end = usage_period(feature.meter_type, entitlement, created_at)
                key = CounterKey(customer.id, feature.id, report.resource_ref or "", start)
                items.append(_Item(index, report, customer, feature, key, end, created_at))
        if problem is not None:
            problems.append({"field": f"usages[{index}].{field}", "message": problem})
    if problems:
        raise UsageRefused(problems)
    return items


def _problem(
    report: UsageReport,
    customer: CustomerRow | None,
    feature: MeteredFeature | None,
    now: datetime,
) -> tuple[str | None, str]:
    customer_problem_text = customer_problem(customer, report.customer_ref)
    if customer_problem_text:
        return customer_problem_text, "customerId"
    if feature is None:
        return f"feature '{report.feature_ref}' was not found", "featureId"
    if not feature.is_metered:
        return (
            f"feature '{feature.ref_id}' is not metered ({feature.feature_type}, meter type "
            f"{feature.meter_type}); only NUMBER features with a meter type count usage",
            "featureId",
        )
    if feature.meter is not None:
        return (
            f"feature '{feature.ref_id}' counts the events its meter matches; send them "
            "to POST /api/v1/events instead",
            "featureId",
        )
    if report.behavior is UpdateBehavior.SET and report.value < 0:
        return "a SET report gives the new total, which cannot be negative", "value"
    if report.created_at is not None and report.created_at > now + FUTURE_TOLERANCE:
        return "createdAt is in the future", "createdAt"
    return None, ""


def _remembered(
    session: Session,
    environment_id: int,
    items: list[_Item],
    now: datetime,
    uses: FirstUses,
) -> dict[str, Measurement]:
    """The original answers of keys seen within the window (each key's first use, told to
    `uses`); older keys are let go."""
    keys = {item.report.idempotency_key for item in items if item.report.idempotency_key}
    if not keys:
        return {}
    query = where_among(
        session,
        select(UsageRecord, Customer.ref_id, Feature.ref_id).where(
            UsageRecord.environment_id == environment_id
        ),
        UsageRecord.idempotency_key,
        keys,
    )
    query = query.join(Customer, Customer.id == UsageRecord.customer_id).join(
        Feature, Feature.id == UsageRecord.feature_id
    )
    rows = session.execute(query).all()
    horizon = now - timedelta(days=EVENT_WINDOW_DAYS)
    expired = [row[0].id for row in rows if row[0].recorded_at < horizon]
    if expired:
        session.execute(
            update(UsageRecord).where(UsageRecord.id.in_(expired)).values(idempotency_key=None)
        )
    answered = {}
    for row, customer_ref, feature_ref in rows:
        if row.recorded_at >= horizon and row.idempotency_key is not None:
            answered[row.idempotency_key] = _remembered_answer(row, customer_ref, feature_ref)
            uses.remember(row.idempotency_key, _stored_use(row, customer_ref, feature_ref))
    return answered


def _remembered_answer(row: UsageRecord, customer_ref: str, feature_ref: str) -> Measurement:
    return Measurement(
        id=row.id,
        customer_ref=customer_ref,
        feature_ref=feature_ref,
        resource_ref=row.resource_ref or None,
        value=row.value,
        usage_after=row.usage_after,
        created_at=row.created_at,
        recorded_at=row.recorded_at,
        period_start=row.period_start,
        period_end=row.period_end,
    )


def _stored_use(row: UsageRecord, customer_ref: str, feature_ref: str) -> Use:
    return _use(
        (row.customer_id, customer_ref),
        (row.feature_id, feature_ref),
        row.resource_ref,
        row.behavior,
        row.value,
        row.dimensions,
    )


def _item_use(item: _Item) -> Use:
    report = item.report
    return _use(
        (item.customer.id, item.customer.ref_id),
        (item.feature.id, item.feature.ref_id),
        item.key.resource_ref,
        report.behavior,
        report.value,
        report.dimensions,
    )


def _use(
    customer: tuple[int, str],
    feature: tuple[int, str],
    resource_ref: str,
    behavior: UpdateBehavior,
    value: int,
    dimensions: dict[str, Any] | None,
) -> Use:
    """What makes a report the same report: the scaled value, not how it was spelt."""
    return Use(
        content={
            "customerId": customer[0],
            "featureId": feature[0],
            "resourceId": resource_ref,
            "updateBehavior": behavior,
            "value": value,
            "dimensions": comparable(dimensions),
        },
        subject={
            "customerId": customer[1],
            "featureId": feature[1],
            "resourceId": resource_ref or None,
        },
    )


def _repeats(uses: FirstUses, item: _Item) -> bool:
    key = item.report.idempotency_key
    return key is not None and uses.repeats(item.index, key, lambda: _item_use(item))


def _is_plain_increment(report: UsageReport) -> bool:
    return report.behavior is UpdateBehavior.DELTA and not report.enforce_limit


def _add(
    session: Session, environment_id: int, items: list[_Item], now: datetime
) -> tuple[list[dict[str, Any]], dict[CounterKey, int]]:
    """Increments only: one bulk add, then each report's total read back from the end."""
    deltas: dict[CounterKey, tuple[datetime | None, int]] = {}
    for item in items:
        end, delta = deltas.get(item.key, (item.period_end, 0))
        deltas[item.key] = (end, delta + item.report.value)
    added = counters.add(session, environment_id=environment_id, deltas=deltas, now=now)
    totals = {key: total for key, (_, total) in added.items()}
    rows: list[dict[str, Any]] = []
    for item in reversed(items):
        after = totals[item.key]
        totals[item.key] = before = after - item.report.value
        _refuse_below_zero(item, before, after)
        rows.append(_record_row(environment_id, item, before, after, now))
    rows.reverse()
    return rows, {key: counter_id for key, (counter_id, _) in added.items()}


def _decide(
    session: Session,
    snapshots: SnapshotSource,
    environment_id: int,
    items: list[_Item],
    now: datetime,
) -> tuple[list[dict[str, Any]], dict[CounterKey, int]]:
    """SETs and enforced reports: decided one by one on locked counters."""
    periods = {item.key: item.period_end for item in items}
    locked = counters.lock(session, environment_id=environment_id, periods=periods, now=now)
    rows = []
    for item in items:
        counter = locked[item.key]
        report = item.report
        before = counter.value
        after = report.value if report.behavior is UpdateBehavior.SET else before + report.value
        _refuse_below_zero(item, before, after)
        if report.enforce_limit and after > before:
            limits.refuse_past_limit(
                snapshots,
                environment_id,
                customer_ref=report.customer_ref,
                resource_ref=report.resource_ref,
                feature_ref=report.feature_ref,
                before=before,
                after=after,
                field=f"usages[{item.index}].value",
            )
        counter.value = after
        counter.changed = True
        rows.append(_record_row(environment_id, item, before, after, now))
    counters.save(session, locked.values(), now=now)
    return rows, {key: counter.id for key, counter in locked.items()}


def _refuse_below_zero(item: _Item, before: int, after: int) -> None:
    if after < 0:
        message = (
            f"usage of '{item.report.feature_ref}' would fall below zero "
            f"(it is {from_units(before)})"
        )
        raise UsageRefused([{"field": f"usages[{item.index}].value", "message": message}])


def _record_row(
    environment_id: int, item: _Item, before: int, after: int, now: datetime
) -> dict[str, Any]:
    report = item.report
    return {
        "environment_id": environment_id,
        "customer_id": item.customer.id,
        "feature_id": item.feature.id,
        "resource_ref": item.key.resource_ref,
        "idempotency_key": report.idempotency_key,
        "behavior": report.behavior,
        "value": report.value,
        "change": after - before,
        "usage_after": after,
        "period_start": item.key.period_start,
        "period_end": item.period_end,
        "dimensions": report.dimensions,
        "created_at": item.created_at,
        "recorded_at": now,
    }


def _insert(session: Session, items: list[_Item], rows: list[dict[str, Any]]) -> list[Measurement]:
    table = UsageRecord.__table__
    ids = bulk.allocate_ids(session, table, len(rows))  # type: ignore[arg-type]
    for record_id, row in zip(ids, rows, strict=True):
        row["id"] = record_id
    # In key order, so that batches sharing keys wait for each other in one order on the
    # unique index rather than deadlock.
    bulk.insert_rows(session, table, sorted(rows, key=_by_key))  # type: ignore[arg-type]
    return [
        Measurement(
            id=row["id"],
            customer_ref=item.report.customer_ref,
            feature_ref=item.report.feature_ref,
            resource_ref=item.report.resource_ref,
            value=row["value"],
            usage_after=row["usage_after"],
            created_at=row["created_at"],
            recorded_at=row["recorded_at"],
            period_start=row["period_start"],
            period_end=row["period_end"],
        )
        for item, row in zip(items, rows, strict=True)
    ]


def _by_key(row: dict[str, Any]) -> str:
    return row["idempotency_key"] or ""

"""Checks answered from memory: each customer's rows, read once, as the engine's inputs.

The database is the record and memory its cache: a customer is read on its first check and
read again after every change applied to it (in the process that applied it), so a check is
a dictionary lookup and the engine's `check`, never a query.

The decision is the server's: the engine's `check` over a `Snapshot` made of the
entitlements the source announced, with what only time changes worked out here as the
server works it out (an entitlement past its `validUntil` is gone, a usage period that ended
rolls over to the next one and its usage starts from zero, a subscription counts while it
is live)."""

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from tollgate.entitlements.engine import (
    Decision,
    Effective,
    FeatureInfo,
    Snapshot,
    check,
    not_found_snapshot,
)
from tollgate.entitlements.wire import decision_wire
from tollgate.kit.periods import Period, bounds
from tollgate.replica import store
from tollgate.replica.tables import CUSTOMER_SCOPE

# Subscriptions in these states give their customer "a subscription" (Tollgate's live
# statuses, and the hosted platform's names for them).
_LIVE = frozenset({"ACTIVE", "IN_TRIAL", "PAYMENT_PENDING", "NOT_STARTED"})
_METERED = "NUMBER"


@dataclass(frozen=True, slots=True)
class Counted:
    value: float
    period_end: datetime | None


@dataclass(frozen=True, slots=True)
class Window:
    """A live subscription's time: it counts from `start` until `end`."""

    resource_id: str
    start: datetime | None
    end: datetime | None


@dataclass(slots=True)
class CustomerView:
    customer_id: str
    found: bool
    is_archived: bool = False
    resources: frozenset[str] = frozenset()
    windows: tuple[Window, ...] = ()
    entitlements: dict[str, dict[str, Effective]] = field(default_factory=dict)  # by scope
    usage: dict[tuple[str, str], Counted] = field(default_factory=dict)
    # Snapshots made for checks, by scope, until the first moment one could change.
    snapshots: dict[str, "Kept"] = field(default_factory=dict)


AnswerKey = tuple[str, int | None, frozenset[str] | None]  # feature, usage and values asked
ANSWERS_KEPT = 64  # per customer and scope; past it, the kept answers start again


@dataclass(slots=True)
class Kept:
    """A snapshot, until when it holds, and the answers rendered from it (status, JSON) for
    the features they were rendered with: a repeated check is a dictionary lookup."""

    snapshot: Snapshot
    expires_at: datetime | None
    features: dict[str, FeatureInfo] | None = None
    answers: dict[AnswerKey, tuple[int, bytes]] = field(default_factory=dict)


class Memory:
    """Customers' views (the `capacity` most recently read of them) and the features.

    A read from the database may race a change that commits meanwhile: each change bumps
    the customer's generation, and a read is kept only if no generation moved while it ran
    (else it reads again), so memory never holds a state older than the database's."""

    def __init__(self, sessions: sessionmaker[Session], *, capacity: int = 100_000) -> None:
        self._sessions = sessions
        self._capacity = capacity
        self._views: OrderedDict[str, CustomerView] = OrderedDict()
        self._features: dict[str, FeatureInfo] | None = None
        self._lock = threading.Lock()
        self._generations: dict[str, int] = {}  # by customer: changes applied so far
        self._epoch = 0  # everything forgotten so far (resyncs), and feature changes

    def sessions(self) -> Session:
        return self._sessions()

    def view_of(self, customer_id: str, rows: store.CustomerRows) -> CustomerView:
        """A view of rows just read (for a GraphQL answer), not kept."""
        return _view(rows, customer_id)

    def cached(self, customer_id: str) -> CustomerView | None:
        return self._views.get(customer_id)

    def load(self, customer_id: str) -> CustomerView:
        """Read the customer from the database into memory (blocking)."""
        while True:
            before = self._generations.get(customer_id, 0), self._epoch
            with self._sessions() as session:
                view = _view(store.customer_rows(session, customer_id), customer_id)
            with self._lock:
                if (self._generations.get(customer_id, 0), self._epoch) != before:
                    continue  # changed while it was read: read again
                self._views[customer_id] = view
                if len(self._views) > self._capacity:
                    self._views.popitem(last=False)
                return view

    def changed(self, customer_id: str) -> None:
        """After a change to the customer committed: read it again if it is held."""
        with self._lock:
            self._generations[customer_id] = self._generations.get(customer_id, 0) + 1
            held = customer_id in self._views
        if held:
            self.load(customer_id)

    def forget_all(self) -> None:
        """After a resync: everything is read again on its next check."""
        with self._lock:
            self._epoch += 1
            self._views.clear()
            self._features = None

    def features(self) -> dict[str, FeatureInfo]:
        while True:
            features, epoch = self._features, self._epoch
            if features is not None:
                return features
            with self._sessions() as session:
                features = {row.feature_id: _feature(row) for row in store.feature_rows(session)}
            with self._lock:
                if self._epoch == epoch:
                    self._features = features
                    return features

    def features_changed(self) -> None:
        with self._lock:
            self._epoch += 1
            self._features = None


def _view(rows: store.CustomerRows, customer_id: str) -> CustomerView:
    customer = rows.customer
    if customer is None or not customer.is_known:
        return CustomerView(customer_id, found=False)
    entitlements: dict[str, dict[str, Effective]] = {}
    for row in rows.entitlements:
        entitlements.setdefault(row.resource_id, {})[row.feature_id] = _effective(row)
    windows = tuple(
        Window(s.resource_id, s.start_date, s.end_date)
        for s in rows.subscriptions
        if s.status.upper() in _LIVE
    )
    resources = {s.resource_id for s in rows.subscriptions} | set(entitlements)
    resources.discard(CUSTOMER_SCOPE)
    return CustomerView(
        customer_id,
        found=True,
        is_archived=customer.is_archived,
        resources=frozenset(resources),
        windows=windows,
        entitlements=entitlements,
        usage={
            (row.resource_id, row.feature_id): Counted(row.current_usage, row.period_end)
            for row in rows.usage
        },
    )


def _effective(row: Any) -> Effective:
    period = str(row.reset_period).upper() if row.reset_period else ""
    return Effective(
        feature_ref=row.feature_id,
        is_granted=row.is_granted,
        usage_limit=row.usage_limit,
        has_unlimited_usage=row.has_unlimited_usage,
        has_soft_limit=row.has_soft_limit,
        enum_values=frozenset(row.enum_values) if row.enum_values is not None else None,
        reset_period=Period(period) if period in Period.__members__ else None,
        usage_period_anchor=row.usage_period_anchor,
        usage_period_start=row.usage_period_start,
        usage_period_end=row.usage_period_end,
        valid_until=row.valid_until,
        updated_at=row.updated_at or row.usage_period_anchor or datetime.min,
    )


def _feature(row: Any) -> FeatureInfo:
    return FeatureInfo(
        ref_id=row.feature_id,
        display_name=row.name or row.feature_id,
        feature_type=row.feature_type,
        meter_type=row.meter_type,
        status=row.status or "ACTIVE",
        units=row.units,
        units_plural=row.units_plural,
    )


def snapshot(view: CustomerView, resource_id: str | None, now: datetime) -> Snapshot:
    """The engine's snapshot of the customer (or resource) at `now`."""
    return _kept(view, resource_id, now).snapshot


def _kept(view: CustomerView, resource_id: str | None, now: datetime) -> Kept:
    """The snapshot made once and kept until the first moment time alone would change it."""
    scope = resource_id or CUSTOMER_SCOPE
    kept = view.snapshots.get(scope)
    if kept is None or (kept.expires_at is not None and now >= kept.expires_at):
        kept = view.snapshots[scope] = Kept(*_snapshot(view, resource_id, now))
    return kept


def _snapshot(
    view: CustomerView, resource_id: str | None, now: datetime
) -> tuple[Snapshot, datetime | None]:
    if not view.found:
        return not_found_snapshot(view.customer_id, resource_id, now), None
    base = Snapshot(
        view.customer_id,
        resource_id,
        0,
        now,
        None,
        customer_found=True,
        is_archived=view.is_archived,
    )
    if resource_id is not None and resource_id not in view.resources:
        return replace(base, resource_found=False), None
    scope = resource_id or CUSTOMER_SCOPE
    moments: list[datetime] = []
    live = False
    for window in view.windows:
        if window.resource_id not in (CUSTOMER_SCOPE, scope):
            continue
        moments.extend(m for m in (window.start, window.end) if m is not None and m > now)
        started = window.start is None or window.start <= now
        live = live or (started and (window.end is None or now < window.end))
    held: dict[str, Effective] = {}
    for feature_id, entitlement in view.entitlements.get(scope, {}).items():
        if entitlement.valid_until is not None:
            if entitlement.valid_until <= now:
                continue
            moments.append(entitlement.valid_until)
        entitlement = _in_current_period(entitlement, now)
        if entitlement.usage_period_end is not None:
            moments.append(entitlement.usage_period_end)
        held[feature_id] = entitlement
    moments += [
        counted.period_end
        for (counted_scope, _), counted in view.usage.items()
        if counted_scope == scope and counted.period_end is not None and counted.period_end > now
    ]
    expires_at = min(moments, default=None)
    return replace(
        base, has_subscription=live, entitlements=held, expires_at=expires_at
    ), expires_at


def _in_current_period(entitlement: Effective, now: datetime) -> Effective:
    """The entitlement with its usage period moved on to the one holding `now`."""
    end = entitlement.usage_period_end
    anchor = entitlement.usage_period_anchor
    if end is None or now < end or entitlement.reset_period is None or anchor is None:
        return entitlement
    start, end = bounds(anchor, entitlement.reset_period, now)
    return replace(entitlement, usage_period_start=start, usage_period_end=end)


def current_usage(
    view: CustomerView, snapshot: Snapshot, feature: FeatureInfo, now: datetime
) -> float:
    """Usage counted in the entitlement's current period (none once that period ended)."""
    if feature.feature_type != _METERED:
        return 0
    counted = view.usage.get((snapshot.resource_ref or CUSTOMER_SCOPE, feature.ref_id))
    if counted is None or (counted.period_end is not None and counted.period_end <= now):
        return 0
    return counted.value


@dataclass(frozen=True, slots=True)
class Asked:
    customer_id: str
    feature_id: str
    resource_id: str | None = None
    requested_usage: int | None = None
    requested_values: frozenset[str] | None = None


def answer(
    view: CustomerView, features: dict[str, FeatureInfo], asked: Asked, now: datetime
) -> tuple[int, bytes]:
    """`/check-access`'s status (200 granted, 403 not) and body: the check's answer in the
    REST check's wire shape, and `hasAccess`. Kept with the snapshot it was decided on."""
    kept = _kept(view, asked.resource_id, now)
    if kept.features is not features:
        kept.features = features
        kept.answers.clear()
    key = (asked.feature_id, asked.requested_usage, asked.requested_values)
    found = kept.answers.get(key)
    if found is None:
        wire = _decide(view, kept.snapshot, features, asked, now)
        wire["hasAccess"] = wire["isGranted"]
        found = (200 if wire["isGranted"] else 403, orjson.dumps(wire))
        if len(kept.answers) >= ANSWERS_KEPT:
            kept.answers.clear()
        kept.answers[key] = found
    return found


def _decide(
    view: CustomerView,
    made: Snapshot,
    features: dict[str, FeatureInfo],
    asked: Asked,
    now: datetime,
) -> dict[str, Any]:
    feature = features.get(asked.feature_id)
    usage = current_usage(view, made, feature, now) if feature else 0
    decision: Decision = check(
        made,
        feature,
        requested_usage=asked.requested_usage,
        requested_values=asked.requested_values,
        current_usage=usage,
    )
    return decision_wire(made, decision, feature, current_usage=usage)


def decide_all(
    view: CustomerView, features: dict[str, FeatureInfo], resource_id: str | None, now: datetime
) -> list[dict[str, Any]]:
    """Every entitlement the customer (or resource) holds now, each decided as a check
    without requested usage, with the terms a check's answer leaves out."""
    made = snapshot(view, resource_id, now)
    answers = []
    for feature_id in sorted(made.entitlements):
        feature = features.get(feature_id)
        if feature is None:
            continue
        usage = current_usage(view, made, feature, now)
        entitlement = made.entitlements[feature_id]
        wire = decision_wire(
            made, check(made, feature, current_usage=usage), feature, current_usage=usage
        )
        wire["hasSoftLimit"] = entitlement.has_soft_limit
        values = entitlement.enum_values
        wire["enumValues"] = sorted(values) if values is not None else None
        answers.append(wire)
    return answers

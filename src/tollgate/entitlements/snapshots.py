"""Versioned entitlement snapshots, kept in memory and recomputed only when stale.

A snapshot is stale when a committed change says the customer's version moved past it
(`db.changes`, from this process or, through PostgreSQL NOTIFY, from any other), when the
environment's catalog changed, or when time reaches its `expires_at` (a trial end, a period
boundary, a scheduled update). A check that finds a fresh snapshot does no I/O at all.

Races: a snapshot computed from data older than a change can finish after that change was
announced. Each announcement raises the customer's known version (or the environment's
epoch), and a snapshot labelled with an older version or epoch is never stored."""

import threading
from collections.abc import Set
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from tollgate.db.changes import Change, ChangeFeed, ChangeKind
from tollgate.entitlements import engine, holdings
from tollgate.entitlements.engine import FeatureInfo, Snapshot
from tollgate.kit.clock import Clock

CustomerKey = tuple[int, str]
DEFAULT_MAX_CUSTOMERS = 200_000


class SnapshotSource(Protocol):
    """Where a write reads the entitlements it decides by."""

    def snapshot(
        self, environment_id: int, customer_ref: str, resource_ref: str | None
    ) -> Snapshot: ...

    def features(self, environment_id: int) -> dict[str, FeatureInfo]: ...


class SnapshotStore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        max_customers: int = DEFAULT_MAX_CUSTOMERS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._max_customers = max_customers
        self._lock = threading.Lock()
        self._snapshots: dict[CustomerKey, dict[str | None, Snapshot]] = {}
        self._known_versions: dict[CustomerKey, int] = {}
        self._epochs: dict[int, int] = {}
        self._features: dict[int, dict[str, FeatureInfo]] = {}
        self.grants = holdings.PackageGrantsCache()

    def follow(self, feed: ChangeFeed) -> None:
        feed.subscribe(self.apply, on_reset=self.clear)

    # -- reads ---------------------------------------------------------------------------

    def cached(
        self, environment_id: int, customer_ref: str, resource_ref: str | None
    ) -> Snapshot | None:
        """The snapshot if it is in memory and still true now; never does I/O."""
        by_resource = self._snapshots.get((environment_id, customer_ref))
        if by_resource is None:
            return None
        snapshot = by_resource.get(resource_ref)
        if snapshot is None:
            return None
        if snapshot.expires_at is not None and self._clock.now() >= snapshot.expires_at:
            return None
        return snapshot

    def cached_features(self, environment_id: int) -> dict[str, FeatureInfo] | None:
        return self._features.get(environment_id)

    def snapshot(
        self, environment_id: int, customer_ref: str, resource_ref: str | None
    ) -> Snapshot:
        """The snapshot, computed from the database when none is fresh (blocking I/O)."""
        found = self.cached(environment_id, customer_ref, resource_ref)
        if found is not None:
            return found
        return self.recompute(environment_id, customer_ref, resource_ref)

    def recompute(
        self, environment_id: int, customer_ref: str, resource_ref: str | None
    ) -> Snapshot:
        """The snapshot computed from the database now, whatever memory holds (for a
        reader that knows of a change this process may not have heard of yet)."""
        with self._sessions() as session:
            return self.compute_and_keep(
                session, environment_id, customer_ref, resource_ref, now=self._clock.now()
            )

    def compute_and_keep(
        self,
        session: Session,
        environment_id: int,
        customer_ref: str,
        resource_ref: str | None,
        *,
        now: datetime,
    ) -> Snapshot:
        """The snapshot computed inside `session` and kept as `recompute` keeps one: only
        for a customer whose holdings the session has not changed (its data is then what is
        committed, whatever becomes of the session)."""
        epoch = self._epochs.get(environment_id, 0)
        snapshot = self.compute(session, environment_id, customer_ref, resource_ref, now=now)
        self._store((environment_id, customer_ref), snapshot, epoch)
        return snapshot

    def features(self, environment_id: int) -> dict[str, FeatureInfo]:
        found = self._features.get(environment_id)
        if found is not None:
            return found
        return self.reload_features(environment_id)

    def reload_features(self, environment_id: int) -> dict[str, FeatureInfo]:
        """The environment's features read from the database now, whatever memory holds."""
        epoch = self._epochs.get(environment_id, 0)
        with self._sessions() as session:
            features = holdings.load_features(session, environment_id)
        with self._lock:
            if self._epochs.get(environment_id, 0) == epoch:
                self._features[environment_id] = features
        return features

    def compute(
        self,
        session: Session,
        environment_id: int,
        customer_ref: str,
        resource_ref: str | None,
        *,
        now: datetime | None = None,
    ) -> Snapshot:
        """Compute a snapshot inside `session` (also used before a write commits)."""
        now = now or self._clock.now()
        found = holdings.customer_version(
            session, environment_id=environment_id, customer_ref=customer_ref
        )
        if found is None:
            return engine.not_found_snapshot(customer_ref, resource_ref, now)
        customer_id, version, is_archived = found
        held = holdings.load_holdings(
            session,
            self.grants,
            customer_id=customer_id,
            customer_ref=customer_ref,
            is_archived=is_archived,
        )
        return engine.compute(held, resource_ref=resource_ref, version=version, now=now)

    # -- invalidation --------------------------------------------------------------------

    def apply(self, changes: list[Change]) -> None:
        with self._lock:
            for change in changes:
                if change.kind is ChangeKind.CUSTOMER:
                    key = (change.environment_id, change.customer_ref)
                    if change.version > self._known_versions.get(key, 0):
                        self._known_versions[key] = change.version
                    self._snapshots.pop(key, None)
                elif change.kind is ChangeKind.ENVIRONMENT:
                    self._drop_environment(change.environment_id)

    def clear(self) -> None:
        with self._lock:
            for environment_id in {key[0] for key in self._snapshots} | set(self._features):
                self._epochs[environment_id] = self._epochs.get(environment_id, 0) + 1
            self._snapshots.clear()
            self._features.clear()
            self.grants.clear()

    def _drop_environment(self, environment_id: int) -> None:
        self._epochs[environment_id] = self._epochs.get(environment_id, 0) + 1
        self._features.pop(environment_id, None)
        for key in [key for key in self._snapshots if key[0] == environment_id]:
            del self._snapshots[key]
        # Grants of other environments are still true, but a publish is rare: clear all.
        self.grants.clear()

    def _store(self, key: CustomerKey, snapshot: Snapshot, epoch: int) -> None:
        with self._lock:
            if self._epochs.get(key[0], 0) != epoch:
                return
            if snapshot.version < self._known_versions.get(key, 0):
                return
            by_resource = self._snapshots.get(key)
            if by_resource is None:
                if len(self._snapshots) >= self._max_customers:
                    # Forget the longest-held customer; it is recomputed when next asked.
                    del self._snapshots[next(iter(self._snapshots))]
                by_resource = self._snapshots[key] = {}
            by_resource[snapshot.resource_ref] = snapshot


class AsTransactionSees:
    """Snapshots as an open transaction sees them, for writes that decide access from
    what is committed now rather than from what this process has heard.

    Customers the transaction changed (`changed`: created, subscribed) are computed in it,
    as no other session sees them yet, and never kept (it may still roll back). For any
    other customer the snapshot in memory is used if the customer's version in the
    transaction is the one it was computed from (one small read); otherwise it is computed
    in the transaction and kept. Nothing opens a second connection while the transaction
    holds its locks. Each is read once per instance: make one after the changes it must
    see."""

    def __init__(
        self, store: SnapshotStore, session: Session, changed: Set[str], now: datetime
    ) -> None:
        self._store = store
        self._session = session
        self._changed = changed
        self._now = now
        self._seen: dict[tuple[int, str, str | None], Snapshot] = {}

    def snapshot(
        self, environment_id: int, customer_ref: str, resource_ref: str | None
    ) -> Snapshot:
        key = (environment_id, customer_ref, resource_ref)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = self._read(environment_id, customer_ref, resource_ref)
        return found

    def _read(self, environment_id: int, customer_ref: str, resource_ref: str | None) -> Snapshot:
        if customer_ref in self._changed:
            return self._store.compute(
                self._session, environment_id, customer_ref, resource_ref, now=self._now
            )
        kept = self._store.cached(environment_id, customer_ref, resource_ref)
        if kept is not None:
            current = holdings.customer_version(
                self._session, environment_id=environment_id, customer_ref=customer_ref
            )
            seen = None if current is None else (True, current[1], current[2])
            if seen == (kept.customer_found, kept.version, kept.is_archived):
                return kept
        return self._store.compute_and_keep(
            self._session, environment_id, customer_ref, resource_ref, now=self._now
        )

    def features(self, environment_id: int) -> dict[str, FeatureInfo]:
        return self._store.features(environment_id)

"""The change feed: tells every Tollgate process what a committed transaction changed.

Services record changes on their session (`record`) and nothing more. Just before the
transaction commits, the feed hands its changes to the followers that must act inside it
(`follow_in_transaction`: the entitlement announcer, which owes webhooks in the same
transaction), once per transaction. When the transaction commits, the changes reach this
process's subscribers (caches) at once. On PostgreSQL they are also sent
with NOTIFY inside the transaction itself, so PostgreSQL delivers them to every other
process exactly when, and only if, the transaction commits; each process LISTENs on a
thread of its own. A single SQLite process needs only the in-process path.

Changes to what customers hold or have used, and to catalogs, are also written to the change
log (`db.changelog`) in the same transaction, for streams that must resume after a gap."""

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import psycopg
from psycopg import sql
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from tollgate.db import changelog

log = logging.getLogger("tollgate.changes")

_PENDING = "tollgate.changes"
_MAX_PAYLOAD = 7000  # PostgreSQL refuses NOTIFY payloads of 8000 bytes and more


class ChangeKind(StrEnum):
    CUSTOMER = "c"  # what one customer is entitled to
    ENVIRONMENT = "e"  # the catalog of an environment (features, published versions)
    KEYS = "k"  # the API keys of an environment
    USAGE = "u"  # the usage counted for one customer


# What streams follow; keys are nobody's business outside the server.
LOGGED = frozenset({ChangeKind.CUSTOMER, ChangeKind.ENVIRONMENT, ChangeKind.USAGE})


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    environment_id: int
    customer_ref: str = ""
    version: int = 0
    # Why it changed, for followers that tell of it (a webhook's `trigger`); "" when there
    # is nothing to tell. Not sent to other processes: caches only need to know *that*.
    cause: str = field(default="", compare=False)

    def encode(self) -> str:
        return f"{self.kind.value}|{self.environment_id}|{self.version}|{self.customer_ref}"

    @classmethod
    def decode(cls, line: str) -> "Change":
        kind, environment_id, version, customer_ref = line.split("|", 3)
        return cls(ChangeKind(kind), int(environment_id), customer_ref, int(version))


def record(session: Session, change: Change) -> None:
    """Announce `change` when (and only if) the session's transaction commits."""
    session.info.setdefault(_PENDING, []).append(change)


Subscriber = Callable[[list[Change]], None]
# Runs inside the transaction, before it commits, with every change it recorded.
InTransaction = Callable[[Session, Sequence[Change]], None]


class ChangeFeed:
    """One per process: delivers committed changes to the caches that subscribed."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._in_transaction: list[InTransaction] = []
        self._resets: list[Callable[[], None]] = []
        self._listener: _Listener | None = None
        self._channel: str | None = None

    def subscribe(self, on_changes: Subscriber, *, on_reset: Callable[[], None]) -> None:
        """`on_reset` runs when changes may have been missed (the listener reconnected)."""
        self._subscribers.append(on_changes)
        self._resets.append(on_reset)

    def follow_in_transaction(self, follower: InTransaction) -> None:
        """`follower` runs once per transaction that recorded changes, just before it
        commits, inside it: what it writes commits (or rolls back) with the changes."""
        self._in_transaction.append(follower)

    def deliver(self, changes: list[Change]) -> None:
        for subscriber in self._subscribers:
            subscriber(changes)

    def reset(self) -> None:
        for on_reset in self._resets:
            on_reset()

    def attach(self, factory: sessionmaker[Session], engine: Engine) -> None:
        """Make sessions of `factory` announce what they commit."""
        event.listen(factory, "before_commit", self._before_commit)
        if engine.dialect.name == "postgresql":
            event.listen(factory, "before_commit", self._notify)
        event.listen(factory, "after_commit", self._after_commit)
        event.listen(factory, "after_soft_rollback", _forget)

    def _before_commit(self, session: Session) -> None:
        changes = session.info.get(_PENDING)
        if not changes:
            return
        for follower in self._in_transaction:
            follower(session, tuple(changes))
        _log(session)

    def _notify(self, session: Session) -> None:
        changes = session.info.get(_PENDING)
        if not changes:
            return
        if self._channel is None:
            # Learnt from the first transaction that needs it, not at start-up: a server
            # must start (and answer 503) while its database is unreachable.
            schema = session.execute(select(func.current_schema())).scalar_one()
            self._channel = channel_for(schema)
        for payload in _payloads(changes):
            session.execute(select(func.pg_notify(self._channel, payload)))

    def _after_commit(self, session: Session) -> None:
        changes = session.info.pop(_PENDING, None)
        if changes:
            self.deliver(changes)

    def listen(self, engine: Engine) -> None:
        """Follow other processes' changes (PostgreSQL only; SQLite serves one process)."""
        if engine.dialect.name != "postgresql" or self._listener is not None:
            return
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener = _Listener(url, self)
        self._listener.start()

    def wait_listening(self, timeout: float) -> bool:
        return self._listener is None or self._listener.ready.wait(timeout)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None


def channel_for(schema: str) -> str:
    """One channel per schema, so deployments sharing a database do not hear each other."""
    return f"tollgate:{schema}"


def _payloads(changes: Iterable[Change]) -> Iterable[str]:
    batch: list[str] = []
    size = 0
    for line in dict.fromkeys(change.encode() for change in changes):
        if batch and size + len(line) + 1 > _MAX_PAYLOAD:
            yield "\n".join(batch)
            batch, size = [], 0
        batch.append(line)
        size += len(line.encode()) + 1
    if batch:
        yield "\n".join(batch)


def _log(session: Session) -> None:
    changes = session.info.get(_PENDING)
    if changes:
        changelog.write(
            session,
            (
                (c.environment_id, c.kind.value, c.customer_ref, c.version)
                for c in changes
                if c.kind in LOGGED
            ),
        )


def _forget(session: Session, previous_transaction: SessionTransaction) -> None:
    # A savepoint rolled back leaves the enclosing transaction's changes to announce. (One
    # recorded inside it is then announced too: a needless re-read, never a missed change.)
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)


class _Listener(threading.Thread):
    def __init__(self, url: str, feed: ChangeFeed) -> None:
        super().__init__(name="tollgate-change-listener", daemon=True)
        self._url = url
        self._feed = feed
        self._stopping = threading.Event()
        self.ready = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._follow()
            except psycopg.Error:
                log.warning("change listener lost its connection; reconnecting", exc_info=True)
                self._stopping.wait(1.0)

    def _follow(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as connection:
            row = connection.execute("SELECT current_schema()").fetchone()
            assert row is not None
            channel = channel_for(row[0])
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            # Whatever happened while not listening is unknown: start from empty caches.
            self._feed.reset()
            self.ready.set()
            while not self._stopping.is_set():
                for notification in connection.notifies(timeout=0.5):
                    changes = [Change.decode(line) for line in notification.payload.split("\n")]
                    self._feed.deliver(changes)

"""The replica as one object: its database, memory, source and the audit that keeps it
honest. `app.py` serves it over HTTP; `tollgate replica` builds and runs it."""

import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook, WebhookVerificationError

from tollgate.config import normalize_database_url
from tollgate.db.engine import make_engine, make_session_factory
from tollgate.replica import store, sync
from tollgate.replica.events import BadEvent, read_event
from tollgate.replica.memory import Memory
from tollgate.replica.source import Source, SourceError
from tollgate.replica.sync import RESYNCED_AT

log = logging.getLogger("tollgate.replica")

STIGG_SECRET_HEADER = "stigg-webhooks-secret"
# Where the source's endpoint registration is kept (its id and signing secret).
REGISTRATION = "registration"


class Unauthenticated(Exception):
    """A delivery whose signature (or shared secret) does not hold."""


@dataclass
class ReplicaSettings:
    database_url: str
    source_url: str | None = None
    api_key: str | None = None
    # Secrets a delivery may be signed with (Standard Webhooks), beyond a registration's.
    webhook_secrets: tuple[str, ...] = ()
    # The hosted platform's shared secret (`Stigg-Webhooks-Secret`), if it sends here.
    stigg_secret: str | None = None
    # The URL the source should deliver to; given, the replica registers it at the source.
    register_url: str | None = None
    access_token: str | None = None  # required as a bearer token by checks and GraphQL
    audit_seconds: float = 30.0
    cache_size: int = 100_000


@dataclass
class Health:
    """What the audit last learned of the source."""

    checked_at: datetime | None = None
    reachable: bool | None = None
    pending: int | None = None  # messages the source still owes this replica
    error: str | None = None
    repaired: int = 0  # customers read again because of a gap, since start


class Replica:
    def __init__(self, settings: ReplicaSettings) -> None:
        self.settings = settings
        self.engine = make_engine(normalize_database_url(settings.database_url))
        store.create_schema(self.engine)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        # Reads never take SQLite's write lock (a read inside a write would wait forever).
        self.reads: sessionmaker[Session] = make_session_factory(self.engine, write=False)
        self.memory = Memory(self.reads, capacity=settings.cache_size)
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.source = (
            Source(settings.source_url, settings.api_key)
            if settings.source_url and settings.api_key
            else None
        )
        self.health = Health()
        self._write_lock = threading.Lock()
        self._gaps: set[str] = set()  # customers to read again from the source
        self._gaps_lock = threading.Lock()
        self._stop = threading.Event()
        self._auditor: threading.Thread | None = None
        self._secrets = list(settings.webhook_secrets)
        self._resynced_seen: str | None = None

    # Starting and stopping ---------------------------------------------------------------

    def start(self) -> None:
        """Register at the source and backfill if this is the first start, then audit in
        the background."""
        if self.source is not None:
            self._register()
            with self.reads() as session:
                resynced = store.fact(session, RESYNCED_AT)
            if resynced is None:
                self.resync()
        self.memory.features()
        self._auditor = threading.Thread(target=self._audit_loop, name="replica-audit", daemon=True)
        self._auditor.start()

    def stop(self) -> None:
        self._stop.set()
        if self._auditor is not None:
            self._auditor.join(timeout=10)
        if self.source is not None:
            self.source.close()
        self.engine.dispose()

    def _register(self) -> None:
        assert self.source is not None
        with self.reads() as session:
            registration = store.fact(session, REGISTRATION)
        if registration is None and self.settings.register_url:
            created = self.source.register(self.settings.register_url)
            registration = {"endpointId": created["id"], "secret": created["secret"]}
            with self.sessions.begin() as session:
                store.set_fact(session, REGISTRATION, registration)
            log.info("replica registered", extra={"endpoint": created["id"]})
        if registration is not None:
            self._secrets.append(registration["secret"])

    def endpoint_id(self) -> str | None:
        with self.reads() as session:
            registration = store.fact(session, REGISTRATION)
        return registration["endpointId"] if registration else None

    # Deliveries --------------------------------------------------------------------------

    def verify(self, body: bytes, headers: dict[str, str]) -> None:
        """Accept a delivery signed with one of the replica's secrets (Standard Webhooks:
        `webhook-id`, `webhook-timestamp` within five minutes, `webhook-signature`), or
        carrying the hosted platform's shared secret."""
        if "webhook-signature" in headers:
            for secret in self._secrets:
                try:
                    Webhook(secret).verify(body, headers)
                    return
                except WebhookVerificationError:
                    continue
            raise Unauthenticated("the webhook-signature does not match, or it is too old")
        sent = headers.get(STIGG_SECRET_HEADER)
        expected = self.settings.stigg_secret
        if sent is not None and expected and hmac.compare_digest(sent, expected):
            return
        raise Unauthenticated(
            "unsigned: send Standard Webhooks headers, or the Stigg-Webhooks-Secret header"
        )

    def receive(self, payload: Any, message_id: str | None) -> store.Outcome:
        """Apply one delivery and commit it; then memory follows (blocking)."""
        event = read_event(payload, message_id=message_id)
        with self._write_lock:
            with self.sessions.begin() as session:
                outcome = store.apply_event(session, event, received_at=self.now())
            if outcome.feature_changed:
                self.memory.features_changed()
                self.memory.features()  # read here, not by the next check on the event loop
            if outcome.customer_id is not None and outcome.applied is store.Applied.APPLIED:
                self.memory.changed(outcome.customer_id)
        if outcome.unknown_customer and self.source is not None:
            with self._gaps_lock:
                self._gaps.add(outcome.customer_id or "")
        return outcome

    # Reading the source again -----------------------------------------------------------

    def resync(
        self, customer_ids: list[str] | None = None, progress: sync.Progress | None = None
    ) -> sync.Resynced:
        if self.source is None:
            raise SourceError("a resync needs the source's URL and an API key")
        with self._write_lock:
            done = sync.resync(
                self.sessions, self.source, customer_ids=customer_ids, progress=progress
            )
            # This process's own resync: its memory follows below, and the next audit
            # must not take it for one run beside it and read every customer again.
            self._resynced_seen = sync.resynced_fact(done.at)
        if customer_ids is None:
            self.memory.forget_all()
        else:
            self.memory.features_changed()
            for customer_id in customer_ids:
                self.memory.changed(customer_id)
        self.memory.features()
        return done

    def audit(self) -> None:
        """Look for gaps and repair them: customers an event named before the replica knew
        them, messages the source gave up delivering, an endpoint the source disabled."""
        if self.source is None:
            return
        with self._gaps_lock:
            gaps, self._gaps = self._gaps, set()
        health = Health(checked_at=self.now(), repaired=self.health.repaired)
        self._follow_outside_resyncs()
        try:
            endpoint_id = self.endpoint_id()
            failed_since = None
            if endpoint_id is not None:
                missed, failed_since = self._missed(endpoint_id, health)
                gaps |= missed
            if gaps:
                self.resync(sorted(gaps))
                health.repaired += len(gaps)
                log.info("replica repaired gaps", extra={"customers": len(gaps)})
            if endpoint_id is not None and failed_since is not None:
                # Only once repaired. Sent again, they arrive older than what the repair
                # wrote (changing nothing) and leave the source's FAILED list, so the
                # next audit does not repair them again.
                self.source.redeliver_failed(endpoint_id, since=failed_since)
            health.reachable = True
        except SourceError as error:
            self._retry_later(gaps)
            health.reachable, health.error = False, str(error)
            log.warning("replica audit failed", extra={"error": str(error)})
        except Exception:
            self._retry_later(gaps)
            raise
        with self.sessions.begin() as session:
            sync.prune_messages(session, self.now())
        self.health = health

    def _missed(self, endpoint_id: str, health: Health) -> tuple[set[str], str | None]:
        """Customers of messages the source gave up delivering, and when the oldest of those
        was created; an endpoint the source disabled is enabled again and everything read
        again."""
        assert self.source is not None
        endpoint = self.source.endpoint(endpoint_id)
        if not endpoint["isEnabled"]:
            self.source.enable(endpoint_id)
            log.warning("replica endpoint was disabled at the source: enabled, resyncing")
            self.resync()
        missed: set[str] = set()
        oldest: str | None = None
        for message in self.source.messages(endpoint_id, "FAILED"):
            oldest = oldest or str(message["createdAt"])  # listed oldest first
            customer = _customer_of(message.get("payload") or {})
            if customer:
                missed.add(customer)
        health.pending = sum(1 for _ in self.source.messages(endpoint_id, "PENDING"))
        return missed, oldest

    def _follow_outside_resyncs(self) -> None:
        """A `tollgate replica resync` run beside this process changed rows under its
        memory: read everything again."""
        with self.reads() as session:
            resynced = store.fact(session, RESYNCED_AT)
        if resynced != self._resynced_seen:
            if self._resynced_seen is not None:
                self.memory.forget_all()
            self._resynced_seen = resynced

    def _audit_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.audit()
            except Exception:  # the loop must outlive any one bad audit
                log.exception("replica audit crashed")
            self._stop.wait(self.settings.audit_seconds)

    def _retry_later(self, gaps: set[str]) -> None:
        """Gaps an audit could not repair: the next audit tries them again."""
        with self._gaps_lock:
            self._gaps |= gaps


def _customer_of(payload: dict[str, Any]) -> str | None:
    """The customer a message was about, whatever its type."""
    try:
        return read_event(payload, message_id="-").customer_id
    except BadEvent:
        return None

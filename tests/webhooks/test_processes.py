"""Webhook delivery across real process deaths: nothing owed is lost when `tollgate serve`
or `tollgate worker` is killed with SIGKILL, and an endpoint that fails for days is
disabled. Real processes, a real receiver; time is only moved in-process, through `now`."""

import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support import Served, launch, start_worker
from tests.support.webhooks import Received, Receiver
from tollgate.background import dispatcher
from tollgate.config import Settings
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.kit.clock import SystemClock
from tollgate.schema import migrate
from tollgate.webhooks import delivery, outbox, service
from tollgate.webhooks.dispatcher import Dispatcher
from tollgate.webhooks.models import MessageStatus, WebhookMessage
from tollgate.webhooks.schemas import EndpointCreate, EndpointRead
from tollgate.webhooks.targets import TargetRules

DEADLINE_SECONDS = 20.0
PRIVATE_ALLOWED = TargetRules(allow_private=True)  # the receiver listens on 127.0.0.1


@contextmanager
def _worker(sessions: sessionmaker[Session]) -> Iterator[Dispatcher]:
    """A dispatcher set up as `tollgate worker` sets its own up (same deadline and lease)."""
    deliveries = dispatcher(Settings(), sessions, SystemClock(), PRIVATE_ALLOWED)
    try:
        yield deliveries
    finally:
        deliveries.close()


def _eventually(condition: Callable[[], bool], what: str) -> None:
    """Poll, with a deadline, until `condition` holds."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"never happened within {DEADLINE_SECONDS} s: {what}"
        time.sleep(0.05)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no shutdown hook, no last commit, as when a machine dies."""
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=20) == -signal.SIGKILL


def _ids(received: list[Received]) -> list[str]:
    return [request.headers["webhook-id"] for request in received]


def _endpoint(sessions: sessionmaker[Session], receiver: Receiver) -> tuple[int, str]:
    """An environment of its own with an endpoint to the receiver: (environment id, ref)."""
    with unit_of_work(sessions) as session:
        environment = environments.ensure_environment(session, name=f"hooks-{secrets.token_hex(6)}")
        endpoint = service.create_endpoint(
            session,
            environment_id=environment.id,
            data=EndpointCreate.model_validate({"url": receiver.url}),
            now=datetime.now(UTC),
            targets=PRIVATE_ALLOWED,
        )
        return environment.id, endpoint.ref_id


def _owe(sessions: sessionmaker[Session], environment_id: int, *, ns: range, now: datetime) -> None:
    """One message per n, for customers `customer-{n % 4}` (so some wait for others)."""
    with unit_of_work(sessions) as session:
        outbox.emit_many(
            session,
            environment_id=environment_id,
            events=[outbox.Event("test", {"n": n}, ordering_key=f"customer-{n % 4}") for n in ns],
            now=now,
        )


def _messages(sessions: sessionmaker[Session], environment_id: int) -> dict[str, MessageStatus]:
    with unit_of_work(sessions) as session:
        rows = session.execute(
            select(WebhookMessage.ref_id, WebhookMessage.status).where(
                WebhookMessage.environment_id == environment_id
            )
        ).all()
    return {row.ref_id: row.status for row in rows}


class TestServerRestart:
    # Filtered so that events other than these (entitlements, ...) do not enter the count.
    EVENTS = ("customer.created", "customer.updated", "subscription.created")

    def test_a_server_restart_loses_nothing(
        self, database_url: str, receiver: Receiver, tmp_path: Path
    ) -> None:
        # The first server runs no jobs at all: nothing can be sent before it dies, whatever
        # the timing, so every message below is owed when the SIGKILL lands.
        first = launch(database_url, tmp_path / "first.log", run_jobs="false")
        second: Served | None = None
        try:
            key = first.keys["server"]
            with httpx.Client(base_url=first.url, headers={"X-API-KEY": key}) as http:
                created = http.post(
                    "/api/v1/webhooks", json={"url": receiver.url, "eventTypes": self.EVENTS}
                )
                assert created.status_code == 201, created.text
                endpoint = created.json()["data"]["id"]
                changes = [
                    ("POST", "/api/v1/customers", {"id": "acme", "name": "Acme"}),
                    ("POST", "/api/v1/customers", {"id": "globex"}),
                    ("PATCH", "/api/v1/customers/acme", {"name": "Acme Corp"}),
                    (
                        "POST",
                        "/api/v1/subscriptions",
                        {"customerId": "globex", "planId": "plan-free"},
                    ),
                    ("POST", "/api/v1/customers", {"id": "initech"}),
                ]
                for method, path, body in changes:
                    response = http.request(method, path, json=body)
                    assert response.status_code in (200, 201), response.text
                listed = http.get(f"/api/v1/webhooks/{endpoint}/messages").json()["data"]
            owed = {m["id"]: m["eventType"] for m in listed}
            assert len(owed) == 5
            assert {m["status"] for m in listed} == {"PENDING"}
            _kill(first.process)
            assert receiver.received == []

            second = launch(database_url, tmp_path / "second.log", job_interval_seconds="0.2")
            assert second.keys == first.keys
            with httpx.Client(base_url=second.url, headers={"X-API-KEY": key}) as http:

                def all_delivered() -> bool:
                    listed = http.get(f"/api/v1/webhooks/{endpoint}/messages").json()["data"]
                    return {m["status"] for m in listed} == {"DELIVERED"}

                _eventually(all_delivered, "every owed message DELIVERED after the restart")
        finally:
            for served in (first, second):
                if served is not None and served.process.poll() is None:
                    served.process.kill()
                    served.process.wait(timeout=20)
        arrived = _ids(receiver.received)
        assert sorted(arrived) == sorted(owed)  # each owed message, once
        assert [r.payload["type"] for r in receiver.received] == [owed[i] for i in arrived]
        by_subject = [(r.payload["type"], _subject(r.payload)) for r in receiver.received]
        assert sorted(by_subject) == [
            ("customer.created", "acme"),
            ("customer.created", "globex"),
            ("customer.created", "initech"),
            ("customer.updated", "acme"),
            ("subscription.created", "globex"),
        ]
        acme = [t for t, subject in by_subject if subject == "acme"]
        assert acme == ["customer.created", "customer.updated"]  # in order, across the restart


def _subject(payload: dict[str, Any]) -> str:
    """The customer a payload is about."""
    customer = payload.get("customer")
    ref: str = customer["id"] if isinstance(customer, dict) else payload["id"]
    return ref


class TestWorkerKilled:
    COUNT = 12  # for four customers: three messages each, the later waiting for the earlier

    def test_a_sigkilled_worker_loses_nothing(
        self, database_url: str, receiver: Receiver, tmp_path: Path
    ) -> None:
        engine = make_engine(database_url)
        worker: subprocess.Popen[bytes] | None = None
        release = threading.Event()
        try:
            migrate.upgrade(engine)
            sessions = make_session_factory(engine)
            environment_id, _ = _endpoint(sessions, receiver)
            _owe(sessions, environment_id, ns=range(self.COUNT), now=datetime.now(UTC))
            interrupted = _block_the_first_request(receiver, release)
            worker = process = start_worker(database_url, tmp_path / "worker.log")
            _eventually(
                lambda: bool(interrupted) or process.poll() is not None,
                "the worker sending its first message",
            )
            assert process.poll() is None, (tmp_path / "worker.log").read_text()
            _kill(process)  # mid-delivery: the receiver has not answered
            release.set()
            (interrupted_id,) = interrupted
            with _worker(sessions) as deliveries:
                # The dead worker's lease holds until it expires: the interrupted message
                # (and, waiting behind it, its customer's later ones) is not sent meanwhile.
                # Other customers' messages the worker had not leased may go now.
                deliveries.run_once(datetime.now(UTC))
                assert _ids(receiver.received).count(interrupted_id) == 1
                sent_before = len(receiver.received)
                later = datetime.now(UTC) + deliveries.lease + timedelta(seconds=1)
                for _ in range(5):
                    if MessageStatus.PENDING not in _messages(sessions, environment_id).values():
                        break
                    deliveries.run_once(later)
            messages = _messages(sessions, environment_id)
        finally:
            release.set()
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait(timeout=20)
            engine.dispose()
        assert len(messages) == self.COUNT
        assert set(messages.values()) == {MessageStatus.DELIVERED}
        arrived = _ids(receiver.received)
        assert set(arrived) == set(messages)
        assert arrived.count(interrupted_id) == 2  # to the dead worker, then again
        assert interrupted_id in _ids(receiver.received[sent_before:])
        first_arrivals: dict[str, list[int]] = {}
        for request in receiver.received:
            n = request.payload["n"]
            sent = first_arrivals.setdefault(f"customer-{n % 4}", [])
            if n not in sent:
                sent.append(n)
        assert all(sent == sorted(sent) for sent in first_arrivals.values())
        assert sum(len(sent) for sent in first_arrivals.values()) == self.COUNT


def _block_the_first_request(receiver: Receiver, release: threading.Event) -> list[str]:
    """Hold the first request until `release`; the list gets its webhook-id."""
    first: list[str] = []
    lock = threading.Lock()

    def answer(request: Received) -> int:
        with lock:
            is_first = not first
            if is_first:
                first.append(request.headers["webhook-id"])
        if is_first:
            release.wait(timeout=60)
        return 200

    receiver.answer = answer
    return first


class TestFailingEndpoint:
    START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    CHANGES_EVERY = timedelta(days=1)  # the customers keep changing while the receiver fails

    def test_an_endpoint_failing_for_days_is_disabled(
        self, engine: Engine, receiver: Receiver
    ) -> None:
        receiver.answer = lambda _request: 500
        sessions = make_session_factory(engine)
        environment_id, ref = _endpoint(sessions, receiver)
        now = next_change = disabled_at = self.START
        changes = 0
        with _worker(sessions) as deliveries:
            while _endpoint_read(sessions, environment_id, ref).is_enabled:
                limit = self.START + delivery.DISABLE_AFTER + self.CHANGES_EVERY
                assert now < limit, f"still enabled at {now}, after failing since {self.START}"
                if now >= next_change:
                    _owe(sessions, environment_id, ns=range(changes, changes + 1), now=now)
                    changes += 1
                    next_change += self.CHANGES_EVERY
                assert deliveries.run_once(now) == 0
                disabled_at = now
                now = min(next_change, _next_attempt(sessions, environment_id, ref, after=now))
            read = _endpoint_read(sessions, environment_id, ref)
            assert disabled_at >= self.START + delivery.DISABLE_AFTER
            assert read.disabled_reason is not None
            assert f"failed for {delivery.DISABLE_AFTER.days} days" in read.disabled_reason
            assert read.failing_since is not None
            assert read.failing_since < self.START + timedelta(seconds=1)
            sent = len(receiver.received)
            assert sent > len(delivery.RETRY_DELAYS)  # it was retried for days first
            for later in (timedelta(hours=1), timedelta(days=1), timedelta(days=30)):
                assert deliveries.run_once(disabled_at + later) == 0
        assert len(receiver.received) == sent  # nothing more to a disabled endpoint
        with unit_of_work(sessions) as session:
            event = outbox.Event("test", {"n": changes}, ordering_key="customer-0")
            owed = outbox.emit_many(
                session, environment_id=environment_id, events=[event], now=disabled_at
            )
        assert owed == 0  # and nothing new is owed to it


def _endpoint_read(sessions: sessionmaker[Session], environment_id: int, ref: str) -> EndpointRead:
    with unit_of_work(sessions) as session:
        endpoint = service.get_endpoint(session, environment_id=environment_id, ref_id=ref)
        return service.to_read(endpoint)


def _next_attempt(
    sessions: sessionmaker[Session], environment_id: int, ref: str, *, after: datetime
) -> datetime:
    """The next retry due after `after` (messages waiting behind another are not due)."""
    with unit_of_work(sessions) as session:
        endpoint = service.get_endpoint(session, environment_id=environment_id, ref_id=ref)
        due = session.scalar(
            select(func.min(WebhookMessage.next_attempt_at)).where(
                WebhookMessage.endpoint_id == endpoint.id,
                WebhookMessage.status == MessageStatus.PENDING,
                WebhookMessage.next_attempt_at > after,
            )
        )
    return due or datetime.max.replace(tzinfo=UTC)

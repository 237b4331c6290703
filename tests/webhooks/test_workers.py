"""Several workers on one database: each message is sent once; a dead worker's lease
expires and another sends its messages."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from tests.support.webhooks import Receiver
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.kit.clock import ManualClock
from tollgate.webhooks import delivery, outbox
from tollgate.webhooks.dispatcher import Dispatcher
from tollgate.webhooks.models import MessageStatus, WebhookAttempt, WebhookMessage
from tollgate.webhooks.schemas import EndpointCreate
from tollgate.webhooks.sender import Outcome
from tollgate.webhooks.service import create_endpoint
from tollgate.webhooks.targets import TargetRules

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PRIVATE_ALLOWED = TargetRules(allow_private=True)  # the receiver listens on 127.0.0.1


@contextmanager
def dispatching(engine: Engine) -> Iterator[Dispatcher]:
    """One worker's dispatcher, as `tollgate worker` runs it (with a 10 s deadline)."""
    dispatcher = Dispatcher(
        make_session_factory(engine), ManualClock(NOW), PRIVATE_ALLOWED, deadline_seconds=10
    )
    try:
        yield dispatcher
    finally:
        dispatcher.close()


def owe(engine: Engine, receiver: Receiver, count: int) -> None:
    """An environment with an endpoint and `count` messages for 10 customers."""
    with unit_of_work(make_session_factory(engine)) as session:
        environment = environments.ensure_environment(session, name=f"hooks-{id(receiver)}")
        create_endpoint(
            session,
            environment_id=environment.id,
            data=EndpointCreate.model_validate({"url": receiver.url}),
            now=NOW,
            targets=PRIVATE_ALLOWED,
        )
        outbox.emit_many(
            session,
            environment_id=environment.id,
            events=[
                outbox.Event("test", {"n": n}, ordering_key=f"customer-{n % 10}")
                for n in range(count)
            ],
            now=NOW,
        )


class TestWorkers:
    def test_two_workers_never_send_a_message_twice(
        self, engine: Engine, receiver: Receiver
    ) -> None:
        if engine.dialect.name != "postgresql":
            pytest.skip("several workers share PostgreSQL; SQLite serves one process")
        owe(engine, receiver, 300)

        def work() -> None:
            with dispatching(engine) as dispatcher:
                while dispatcher.run_once(NOW):
                    pass

        workers = [threading.Thread(target=work) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        ids = [request.headers["webhook-id"] for request in receiver.received]
        assert len(ids) == 300
        assert len(set(ids)) == 300
        by_customer: dict[str, list[int]] = {}
        for request in receiver.received:
            n = request.payload["n"]
            by_customer.setdefault(f"customer-{n % 10}", []).append(n)
        assert all(sent == sorted(sent) for sent in by_customer.values())

    def test_a_dead_workers_lease_expires(self, engine: Engine, receiver: Receiver) -> None:
        owe(engine, receiver, 3)
        sessions = make_session_factory(engine)
        with dispatching(engine) as dispatcher:
            # A worker leases, then dies before sending.
            leased = delivery.lease(sessions, NOW, duration=dispatcher.lease, room=lambda _: 10)
            assert len(leased) == 3
            assert dispatcher.run_once(NOW) == 0  # leased: not sent
            later = NOW + dispatcher.lease + timedelta(seconds=1)
            assert dispatcher.run_once(later) == 3
        assert len(receiver.received) == 3

    def test_a_lost_lease_records_nothing(self, engine: Engine, receiver: Receiver) -> None:
        owe(engine, receiver, 1)
        sessions = make_session_factory(engine)
        with dispatching(engine) as dispatcher:
            # A worker leases, then stalls past its lease.
            [message] = delivery.lease(sessions, NOW, duration=dispatcher.lease, room=lambda _: 10)
            later = NOW + dispatcher.lease + timedelta(seconds=1)
            assert dispatcher.run_once(later) == 1  # another takes over
        late_failure = Outcome(status_code=500, error="late", duration_ms=10)
        late = delivery.Attempt(message, late_failure, NOW)
        assert delivery.record(sessions, [late], NOW, lambda: 0.5) == 0
        with sessions() as session:
            row = session.get_one(WebhookMessage, message.message_id)
            attempts = session.scalars(
                select(WebhookAttempt.status_code).where(WebhookAttempt.message_id == row.id)
            ).all()
        assert (row.status, row.attempts, attempts) == (MessageStatus.DELIVERED, 1, [200])

"""Requests that race for one idempotency key: the loser gets the winner's answer.

The deterministic races hold a transaction that has recorded a report (or an event) under
key K, uncommitted, while the same key arrives over HTTP: on PostgreSQL the request waits
on the key's unique index (or the counter's row lock), on SQLite for the writer's lock.
Then the transaction commits, and the request must answer as a retry would."""

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

import tollgate.environments.service as environments
from tests.support import Clocked, Tenant
from tests.support.usage import check, customer, usage
from tollgate.db.engine import SessionFactories, unit_of_work
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.http.components import app_components
from tollgate.kit.amounts import to_units
from tollgate.usage import events, reports

pytestmark = pytest.mark.usefixtures("acme")
USERS = "feature-active-users"
CALLS = "feature-api-calls"  # counts events named api_call
DEADLINE = 30.0  # seconds: only to prove that nothing hangs


class Held:
    """A transaction of the app's own kind, held open while a request races it."""

    def __init__(self, clocked: Clocked, tenant: Tenant, session: Session) -> None:
        self.session = session
        self.snapshots = app_components(clocked.app).get(SnapshotStore)
        self.now = clocked.clock.now()
        self.environment_id = environments.ensure_environment(session, name=tenant.name).id

    def report(self, customer_ref: str, feature_ref: str, value: float, key: str) -> str:
        (measured,) = reports.report_usage(
            self.session,
            self.snapshots,
            environment_id=self.environment_id,
            reports=[
                reports.UsageReport(customer_ref, feature_ref, to_units(value), idempotency_key=key)
            ],
            now=self.now,
        )
        return str(measured.id)

    def event(self, customer_ref: str, name: str, key: str) -> None:
        stored = events.report_events(
            self.session,
            self.snapshots,
            environment_id=self.environment_id,
            events=[events.EventReport(customer_ref, name, key)],
            now=self.now,
        )
        assert stored.count == 1


@contextmanager
def held(clocked: Clocked, tenant: Tenant) -> Iterator[Held]:
    """Commits when the block ends."""
    with unit_of_work(app_components(clocked.app).get(SessionFactories).write) as session:
        yield Held(clocked, tenant, session)


def race(
    engine: Engine, holder: Held, tenant: Tenant, path: str, body: dict[str, Any]
) -> Future[httpx.Response]:
    """POST `body` from another thread and return once it waits for `holder`."""
    pool = ThreadPoolExecutor(1)

    def post() -> httpx.Response:
        with tenant.http() as http:
            return http.post(path, json=body)

    pending = pool.submit(post)
    pool.shutdown(wait=False)
    if engine.dialect.name == "postgresql":
        blocker = holder.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        _wait_until(lambda: _waiting_for(engine, blocker) > 0 or pending.done())
    else:
        # One writer at a time: the request cannot finish before the holder commits.
        time.sleep(0.3)
    assert not pending.done(), pending.result().text
    return pending


def _waiting_for(engine: Engine, blocker: int) -> int:
    with engine.connect() as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
        return int(connection.execute(text(query), {"pid": blocker}).scalar_one())


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "the request never waited for the held key"
        time.sleep(0.01)


class TestReportsRacingForAKey:
    def test_the_same_report_gets_the_first_answer(
        self, engine: Engine, clocked: Clocked, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        with held(clocked, demo_tenant) as holder:
            first_id = holder.report("acme", USERS, 5, "k-1")
            body = {"usages": [usage(USERS, 5, idempotencyKey="k-1")]}
            pending = race(engine, holder, demo_tenant, "/api/v1/usage", body)
        answer = pending.result(timeout=DEADLINE)
        assert answer.status_code == 200, answer.text
        (measurement,) = answer.json()["data"]
        assert (measurement["id"], measurement["currentUsage"]) == (first_id, 5)
        assert check(http, USERS)["currentUsage"] == 5

    def test_another_customers_report_is_refused(
        self, engine: Engine, clocked: Clocked, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        customer(http, "bravo")
        with held(clocked, demo_tenant) as holder:
            first_id = holder.report("acme", USERS, 5, "k-1")
            body = {"usages": [usage(USERS, 5, customerId="bravo", idempotencyKey="k-1")]}
            pending = race(engine, holder, demo_tenant, "/api/v1/usage", body)
        answer = pending.result(timeout=DEADLINE)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "idempotency_key_reused"
        assert first_id not in answer.text
        assert check(http, USERS)["currentUsage"] == 5
        assert check(http, USERS, customer_id="bravo")["currentUsage"] == 0

    def test_many_at_once_count_once(self, demo_tenant: Tenant, http: httpx.Client) -> None:
        answers = at_once(
            demo_tenant, "/api/v1/usage", {"usages": [usage(USERS, 5, idempotencyKey="k-1")]}
        )
        assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
        assert len({a.text for a in answers}) == 1  # everyone got the one record
        assert check(http, USERS)["currentUsage"] == 5


class TestEventsRacingForAKey:
    def test_the_same_event_is_a_duplicate(
        self, engine: Engine, clocked: Clocked, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        with held(clocked, demo_tenant) as holder:
            holder.event("acme", "api_call", "e1")
            body = {"events": [api_call("e1")]}
            pending = race(engine, holder, demo_tenant, "/api/v1/events", body)
        answer = pending.result(timeout=DEADLINE)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == {"accepted": 0, "duplicates": 1}
        assert check(http, CALLS)["currentUsage"] == 1

    def test_another_event_is_refused(
        self, engine: Engine, clocked: Clocked, demo_tenant: Tenant, http: httpx.Client
    ) -> None:
        with held(clocked, demo_tenant) as holder:
            holder.event("acme", "api_call", "e1")
            body = {"events": [api_call("e2"), api_call("e1", eventName="login")]}
            pending = race(engine, holder, demo_tenant, "/api/v1/events", body)
        answer = pending.result(timeout=DEADLINE)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["field"] == "events[1].idempotencyKey"
        assert check(http, CALLS)["currentUsage"] == 1

    def test_many_at_once_count_once(self, demo_tenant: Tenant, http: httpx.Client) -> None:
        answers = at_once(demo_tenant, "/api/v1/events", {"events": [api_call("e1")]})
        assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
        accepted = sorted(a.json()["data"]["accepted"] for a in answers)
        assert accepted == [0] * (THREADS - 1) + [1]
        assert check(http, CALLS)["currentUsage"] == 1


THREADS = 12


def at_once(tenant: Tenant, path: str, body: dict[str, Any]) -> list[httpx.Response]:
    """The same body posted by many threads released together."""
    start = threading.Barrier(THREADS)

    def post(_: int) -> httpx.Response:
        with tenant.http() as http:
            start.wait(timeout=DEADLINE)
            return http.post(path, json=body)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(post, range(THREADS)))


def api_call(key: str, **fields: Any) -> dict[str, Any]:
    return {"customerId": "acme", "eventName": "api_call", "idempotencyKey": key, **fields}

"""One slow or dead endpoint delays nobody: not the other endpoints, not the lifecycle jobs.

Real peers on 127.0.0.1: a raw-socket server answering a byte at a time (`SlowPeer`), a
fast receiver, a port where nothing listens; a real Tollgate on each database, on a clock
the test moves."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx

from tests.support import START, Clocked, free_port, live_server, make_demo_tenant
from tests.support.webhooks import Receiver, SlowPeer, endpoint
from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.db.engine import make_engine
from tollgate.kit.clock import ManualClock
from tollgate.webhooks.dispatcher import PAUSE_FIRST, PER_ENDPOINT

WAIT_SECONDS = 20.0  # generous: only proves that something happens, and does not hang


@contextmanager
def tollgate(database_url: str, **settings: Any) -> Iterator[tuple[Clocked, httpx.Client]]:
    """A Tollgate of its own on a fresh database, at START on a clock the test moves, and
    a client of a tenant holding the demo catalog."""
    engine = make_engine(database_url)
    clock = ManualClock(START)
    app = create_app(
        Settings(
            database_url=database_url,
            webhooks_allow_private_targets=True,  # the peers listen on 127.0.0.1
            **settings,
        ),
        engine=engine,
        clock=clock,
    )
    with live_server(app) as url, make_demo_tenant(engine, url).http() as http:
        yield Clocked(app, clock, url), http


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS:g} s: {what}"
        time.sleep(0.02)


def types(receiver: Receiver) -> list[str]:
    return [str(request.payload["type"]) for request in receiver.received]


def messages(http: httpx.Client, endpoint_id: str) -> list[dict[str, Any]]:
    listed = http.get(f"/api/v1/webhooks/{endpoint_id}/messages", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    data: list[dict[str, Any]] = listed.json()["data"]
    return data


def provision(http: httpx.Client, *customers: str) -> None:
    for customer in customers:
        response = http.post("/api/v1/customers", json={"id": customer})
        assert response.status_code == 201, response.text


class TestSlowEndpoint:
    def test_delays_neither_another_endpoint_nor_a_trial_end(
        self, database_url: str, receiver: Receiver, slow_peer: SlowPeer
    ) -> None:
        # As `tollgate serve` runs: jobs and delivery in the background, all the time. The
        # deadline is long: the slow delivery stays in flight for the whole test.
        running = tollgate(
            database_url,
            run_jobs=True,
            job_interval_seconds=0.1,
            webhooks_delivery_deadline_seconds=120,
        )
        with running as (served, http):
            endpoint(http, receiver)
            slow = http.post("/api/v1/webhooks", json={"url": slow_peer.url})
            assert slow.status_code == 201, slow.text
            provision(http, "acme")
            trial = http.post(
                "/api/v1/subscriptions",
                json={"customerId": "acme", "planId": "plan-pro", "id": "sub-acme"},
            )
            assert trial.status_code == 200, trial.text
            assert slow_peer.requested.wait(WAIT_SECONDS), "the slow endpoint was never called"
            eventually(
                lambda: "subscription.trial_started" in types(receiver),
                "the fast endpoint gets its messages while the slow one answers",
            )

            served.clock.set(START + timedelta(days=14, minutes=1))  # the trial's end

            def converted() -> bool:
                read = http.get("/api/v1/subscriptions/sub-acme").json()["data"]
                return bool(read["status"] == "ACTIVE")

            eventually(converted, "the trial converts while a delivery is stuck")
            eventually(
                lambda: "subscription.trial_converted" in types(receiver),
                "the conversion reaches the fast endpoint",
            )
            # All of it while the slow delivery was still in flight, the only one to it.
            assert not slow_peer.abandoned.is_set()
            assert slow_peer.requests == 1

    def test_is_cut_at_the_deadline_and_paused(
        self, database_url: str, receiver: Receiver, slow_peer: SlowPeer
    ) -> None:
        customers = [f"customer-{n}" for n in range(PER_ENDPOINT + 2)]
        short = tollgate(database_url, run_jobs=False, webhooks_delivery_deadline_seconds=1)
        with short as (served, http):
            endpoint(http, receiver, eventTypes=["customer.created"])
            slow = http.post(
                "/api/v1/webhooks",
                json={"url": slow_peer.url, "eventTypes": ["customer.created"]},
            )
            assert slow.status_code == 201, slow.text
            provision(http, *customers)
            started = time.monotonic()
            done = served.run_jobs()
            took = time.monotonic() - started
            owed = messages(http, slow.json()["data"]["id"])
            attempts = [
                http.get(
                    f"/api/v1/webhooks/{slow.json()['data']['id']}/messages/{m['id']}/attempts"
                ).json()["data"]
                for m in owed
                if m["attempts"]
            ]
        assert done["webhooks.deliver"] == len(customers)  # every fast delivery
        assert sorted(r.payload["id"] for r in receiver.received) == sorted(customers)
        assert took < WAIT_SECONDS
        # PER_ENDPOINT requests at once, each cut at the 1 s deadline; then the endpoint is
        # paused, so the others wait (keeping their attempts).
        assert slow_peer.most_open == slow_peer.requests == PER_ENDPOINT
        assert sorted(m["attempts"] for m in owed) == [0] * 2 + [1] * PER_ENDPOINT
        assert {m["status"] for m in owed} == {"PENDING"}
        for [attempt] in attempts:
            assert attempt["statusCode"] is None
            assert attempt["error"] == "no answer within the 1 s deadline"
            assert 1_000 <= attempt["durationMs"] < WAIT_SECONDS * 1_000
        assert slow_peer.abandoned.wait(WAIT_SECONDS)


class TestDeadEndpoint:
    def test_is_paused_rather_than_sent_every_customers_message(
        self, database_url: str, receiver: Receiver
    ) -> None:
        customers = [f"customer-{n}" for n in range(3 * PER_ENDPOINT)]
        nothing_listens = f"http://127.0.0.1:{free_port()}/hooks"
        with tollgate(database_url, run_jobs=False) as (served, http):
            endpoint(http, receiver, eventTypes=["customer.created"])
            dead = http.post(
                "/api/v1/webhooks",
                json={"url": nothing_listens, "eventTypes": ["customer.created"]},
            )
            assert dead.status_code == 201, dead.text
            provision(http, *customers)

            def tried() -> int:
                owed = messages(http, dead.json()["data"]["id"])
                return sum(1 for m in owed if m["attempts"])

            assert served.run_jobs()["webhooks.deliver"] == len(customers)
            assert tried() == PER_ENDPOINT  # then paused
            served.clock.advance(PAUSE_FIRST / 2)
            served.run_jobs()
            assert tried() == PER_ENDPOINT  # still paused
            # Step on until the pause is over: each run also takes real time, which the
            # dispatcher adds to the clock's moment, so one fixed step would depend on how
            # busy the machine is. Then the next few go, and no more: no retry is due
            # before 4 s.
            for _ in range(12):
                served.clock.advance(PAUSE_FIRST / 8)
                served.run_jobs()
                if tried() > PER_ENDPOINT:
                    break
            assert tried() == 2 * PER_ENDPOINT
        assert len(receiver.received) == len(customers)  # the healthy endpoint got them all

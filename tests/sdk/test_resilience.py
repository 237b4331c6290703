"""The SDK survives its server: real `tollgate serve --demo` processes are killed (SIGKILL,
a crash) or frozen (SIGSTOP, a hang) and launched again on the same database and port.

Proves that while the server is gone checks keep answering (cached customers from the
cache, others from the configured fallbacks) without raising or waiting on the network for
each check; that usage reported meanwhile is buffered, counted by local checks, and
delivered exactly once after the restart, and that `flush()` never calls a batch still on
its way delivered; that the stream reconnects and catches up with a change made while it
was disconnected; that `close()` does not wait on a live stream; and (PostgreSQL) that a
change made through one server process reaches an SDK connected to another."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    Tenant,
    free_port,
    live_server,
    postgres_schema,
    require_postgres,
    url_in_schema,
)
from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.db.engine import make_engine
from tollgate_sdk import AccessDeniedReason, Fallback, Source, Tollgate

# Generous: the SDK retries usage with a backoff growing to 30 s, and reconnects its
# stream with one growing the same way.
RECOVERY_DEADLINE_SECONDS = 30.0
STREAM_DEADLINE_SECONDS = 10.0
SSO = "feature-sso"
SEATS = "feature-seats"
ACTIVE_USERS = "feature-active-users"  # INCREMENTAL, monthly: 100 on plan-free


class Server:
    """`tollgate serve --demo` on a port chosen once, so it comes back where the SDK keeps
    looking after a crash. Every launch logs to a file of its own."""

    def __init__(self, database_url: str, logs: Path) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys: dict[str, str] = {}
        self._logs = logs
        self._launches = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self._process is None, "already running"
        self._launches += 1
        log = self._logs / f"serve-{self.port}-{self._launches}.log"
        env = {
            **os.environ,
            "TOLLGATE_DATABASE_URL": self.database_url,
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
        command = [sys.executable, "-m", "tollgate", "serve", "--demo", "--port", str(self.port)]
        with log.open("w") as out:
            self._process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.crash()
                raise AssertionError(f"tollgate serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        found = dict(_key_lines(log.read_text()))
        assert found.get("server"), "tollgate serve --demo printed no server key"
        if self.keys:
            assert found == self.keys, "a relaunch on the same database changed the demo keys"
        self.keys = found

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def crash(self) -> None:
        """SIGKILL: no shutdown, open connections reset."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=20)
            self._process = None

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections, nothing ever answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"X-API-KEY": self.keys["server"]}, timeout=10
        )


def _key_lines(output: str) -> Iterator[tuple[str, str]]:
    for line in output.splitlines():
        for kind in ("server", "client"):
            marker = f"{kind} key: "
            if marker in line:
                yield kind, line.split(marker, 1)[1].split()[0]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    served = Server(database_url, tmp_path)
    served.start()
    yield served
    served.crash()


MakeSdk = Callable[..., Tollgate]


@pytest.fixture
def make_sdk() -> Iterator[MakeSdk]:
    """Start a live `Tollgate` against a server; after the test its servers are stopped,
    then it is closed (closing while the stream is live is TestCloseWhileLive's matter)."""
    started: list[tuple[Tollgate, Server]] = []

    def make(served: Server, **options: Any) -> Tollgate:
        options.setdefault("timeout", 1.0)
        client = Tollgate(served.keys["server"], base_url=served.url, **options)
        started.append((client, served))
        assert client.wait_for_initialization(timeout=15), "the SDK never became live"
        return client

    yield make
    for _, served in started:
        served.crash()
    for client, _ in started:
        client.close(flush_timeout=1.0)


def provision(http: httpx.Client, customer_id: str, plan_id: str) -> None:
    response = http.post("/api/v1/customers", json={"id": customer_id})
    assert response.status_code < 300, response.text
    subscribe(http, customer_id, plan_id)


def subscribe(http: httpx.Client, customer_id: str, plan_id: str) -> None:
    body = {"customerId": customer_id, "planId": plan_id}
    response = http.post("/api/v1/subscriptions", json=body)
    assert response.status_code < 300, response.text


def server_usage(http: httpx.Client, customer_id: str, feature_id: str) -> float:
    response = http.get(
        f"/api/v1/customers/{customer_id}/entitlements/check", params={"featureId": feature_id}
    )
    assert response.status_code == 200, response.text
    usage: float = response.json()["data"]["currentUsage"]
    return usage


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.05)


def cache_customer(sdk: Tollgate, customer_id: str) -> None:
    """Load a customer into the SDK's cache (its first check asks the server)."""
    first = sdk.get_boolean_entitlement(customer_id, SSO)
    assert first.source is Source.SERVER
    assert sdk.get_boolean_entitlement(customer_id, SSO).source is Source.CACHE


class TestChecksWhileTheServerIsDown:
    def test_a_crashed_server_leaves_cache_and_fallback_answers(
        self, server: Server, make_sdk: MakeSdk
    ) -> None:
        sdk = make_sdk(server, fallback_entitlements={SSO: Fallback(has_access=True)})
        with server.http() as http:
            provision(http, "pro-co", "plan-pro")
            provision(http, "free-co", "plan-free")
        cache_customer(sdk, "pro-co")
        cache_customer(sdk, "free-co")

        server.crash()
        wait_until(lambda: not sdk.is_live, STREAM_DEADLINE_SECONDS, "the SDK noticed the crash")

        sso = sdk.get_boolean_entitlement("pro-co", SSO)
        assert (sso.has_access, sso.source) == (True, Source.CACHE)
        seats = sdk.get_metered_entitlement("pro-co", SEATS, requested_usage=5)
        assert (seats.has_access, seats.usage_limit, seats.source) == (True, 20, Source.CACHE)
        assert sdk.get_numeric_entitlement("pro-co", SEATS).source is Source.CACHE
        # The fallback would grant SSO: a denial proves the cached answer is used.
        denied = sdk.get_boolean_entitlement("free-co", SSO)
        assert (denied.has_access, denied.access_denied_reason, denied.source) == (
            False,
            AccessDeniedReason.NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION,
            Source.CACHE,
        )
        over = sdk.get_metered_entitlement("free-co", SEATS, requested_usage=4)
        assert (over.has_access, over.access_denied_reason) == (
            False,
            AccessDeniedReason.REQUESTED_USAGE_EXCEEDING_LIMIT,
        )

        fallback = sdk.get_boolean_entitlement("never-seen", SSO)
        assert (fallback.has_access, fallback.access_denied_reason, fallback.source) == (
            True,
            None,
            Source.FALLBACK,
        )
        no_fallback = sdk.get_metered_entitlement("never-seen", ACTIVE_USERS)
        assert (no_fallback.has_access, no_fallback.access_denied_reason) == (
            False,
            AccessDeniedReason.UNKNOWN,
        )
        assert no_fallback.source is Source.FALLBACK
        assert not sdk.get_numeric_entitlement("never-seen", SEATS).has_access
        assert not sdk.get_enum_entitlement("never-seen", "feature-region").has_access
        assert [(e.feature_id, e.has_access) for e in sdk.get_entitlements("never-seen")] == [
            (SSO, True)
        ]


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    """A server for what only the SDK decides: one backend is enough."""
    served = Server(f"sqlite:///{tmp_path / 'tollgate.db'}", tmp_path)
    served.start()
    yield served
    served.crash()


class TestChecksWhileTheServerHangs:
    def test_a_hung_server_costs_one_timeout_not_one_per_check(
        self, sqlite_server: Server, make_sdk: MakeSdk
    ) -> None:
        server = sqlite_server
        timeout = 1.0
        sdk = make_sdk(
            server, timeout=timeout, fallback_entitlements={SSO: Fallback(has_access=True)}
        )
        with server.http() as http:
            provision(http, "pro-co", "plan-pro")
        cache_customer(sdk, "pro-co")

        server.freeze()
        started = time.monotonic()
        answers = [sdk.get_boolean_entitlement(f"unknown-{n}", SSO) for n in range(100)]
        cached = [sdk.get_boolean_entitlement("pro-co", SSO) for _ in range(100)]
        elapsed = time.monotonic() - started
        server.crash()  # a frozen process would hold the SDK's close until its timeouts

        assert {(a.has_access, a.source) for a in answers} == {(True, Source.FALLBACK)}
        assert {(a.has_access, a.source) for a in cached} == {(True, Source.CACHE)}
        # Waiting out the timeout on every check would take 100 s.
        assert elapsed < timeout + 4, f"200 checks took {elapsed:.1f} s against a hung server"


class SeenPaths(httpx.BaseTransport):
    """A real transport that remembers the path of every request as it starts."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self._paths.append(request.url.path)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

    def count(self, path: str) -> int:
        with self._lock:
            return self._paths.count(path)


class TestFlushWhileTheServerHangs:
    def test_flush_does_not_call_a_batch_still_in_flight_delivered(
        self, sqlite_server: Server, make_sdk: MakeSdk
    ) -> None:
        server = sqlite_server
        seen = SeenPaths()
        sdk = make_sdk(server, flush_interval=0.1, timeout=3.0, transport=seen)
        with server.http() as http:
            provision(http, "metered-co", "plan-free")

        server.freeze()
        sdk.report_usage("metered-co", ACTIVE_USERS, 1)
        # The sender thread sends the report to a server that will never answer.
        wait_until(lambda: seen.count("/api/v1/usage") == 1, 2, "the sender sent the report")
        delivered = sdk.flush(timeout=0.5)
        server.crash()
        assert not delivered, "flush() said a report reached a server that is frozen"
        wait_until(lambda: sdk.usage_waiting == 1, 10, "the unanswered report waits again")


class TestUsageWhileTheServerIsDown:
    def test_buffered_usage_is_counted_locally_and_delivered_once_after_restart(
        self, server: Server, make_sdk: MakeSdk
    ) -> None:
        sdk = make_sdk(server, flush_interval=0.1, timeout=5.0)
        with server.http() as http:
            provision(http, "metered-co", "plan-free")
            cache_customer(sdk, "metered-co")
            sdk.report_usage("metered-co", ACTIVE_USERS, 5)
            assert sdk.flush(timeout=10)
            assert server_usage(http, "metered-co", ACTIVE_USERS) == 5

        server.crash()
        sdk.report_usage("metered-co", ACTIVE_USERS, 3)
        sdk.report_usage("metered-co", ACTIVE_USERS, 4)
        wait_until(lambda: sdk.usage_waiting > 0, 5, "the reports wait in the buffer")
        local = sdk.get_metered_entitlement("metered-co", ACTIVE_USERS)
        assert (local.current_usage, local.source) == (12, Source.CACHE)
        assert local.remaining == 88

        server.start()
        with server.http() as http:
            seen: list[float] = []

            def delivered() -> bool:
                seen.append(server_usage(http, "metered-co", ACTIVE_USERS))
                return seen[-1] >= 12

            wait_until(delivered, RECOVERY_DEADLINE_SECONDS, "the buffered usage arrived")
            # Once acknowledged, the reports are the server's count, not added to it again
            # (a state read while they were in flight counts them twice until then).
            wait_until(
                lambda: sdk.get_metered_entitlement("metered-co", ACTIVE_USERS).current_usage == 12,
                10,
                "the SDK's count settled on the server's",
            )
            assert sdk.usage_waiting == 0
            assert set(seen) <= {5, 12}, f"the server counted {seen}"
            assert server_usage(http, "metered-co", ACTIVE_USERS) == 12
        assert sdk.usage_dropped == 0


class TestStreamAfterRestart:
    def test_a_change_made_while_disconnected_reaches_the_cache(
        self, server: Server, make_sdk: MakeSdk
    ) -> None:
        sdk = make_sdk(server)
        with server.http() as http:
            provision(http, "upgrade-co", "plan-free")
        cache_customer(sdk, "upgrade-co")
        assert not sdk.get_boolean_entitlement("upgrade-co", SSO).has_access

        server.crash()
        wait_until(lambda: not sdk.is_live, STREAM_DEADLINE_SECONDS, "the SDK noticed the crash")
        # Upgrade through another Tollgate on the same database while none serves the
        # SDK's URL, so the change is certainly made while the SDK is disconnected.
        engine = make_engine(server.database_url)
        try:
            app = create_app(
                Settings(database_url=server.database_url, run_jobs=False), engine=engine
            )
            with (
                live_server(app) as other,
                httpx.Client(
                    base_url=other, headers={"X-API-KEY": server.keys["server"]}, timeout=10
                ) as http,
            ):
                subscribe(http, "upgrade-co", "plan-pro")
        finally:
            engine.dispose()
        stale = sdk.get_boolean_entitlement("upgrade-co", SSO)
        assert (stale.has_access, stale.source) == (False, Source.CACHE)

        server.start()
        wait_until(
            lambda: sdk.get_boolean_entitlement("upgrade-co", SSO).has_access,
            RECOVERY_DEADLINE_SECONDS,
            "the upgrade reached the SDK's cache after the restart",
        )
        # A load retried after the failure may bring the upgrade before the stream is back.
        wait_until(lambda: sdk.is_live, RECOVERY_DEADLINE_SECONDS, "the stream is live again")
        assert sdk.get_boolean_entitlement("upgrade-co", SSO).source is Source.CACHE


@pytest.fixture
def postgres_database(tmp_path: Path) -> Iterator[str]:
    url = require_postgres()
    with postgres_schema(url) as schema:
        yield url_in_schema(url, schema)


class TestCloseWhileLive:
    def test_close_does_not_wait_for_the_stream_to_end(self, tenant: Tenant) -> None:
        sdk = Tollgate(tenant.server_key, base_url=tenant.base_url)
        try:
            assert sdk.wait_for_initialization(timeout=10)
        finally:
            started = time.monotonic()
            sdk.close()
            elapsed = time.monotonic() - started
        assert elapsed < 2, f"close() took {elapsed:.1f} s with nothing queued"


class TestTwoServerProcesses:
    def test_a_change_through_one_process_reaches_an_sdk_on_the_other(
        self, postgres_database: str, tmp_path: Path, make_sdk: MakeSdk
    ) -> None:
        a = Server(postgres_database, tmp_path)
        b = Server(postgres_database, tmp_path)
        try:
            a.start()
            b.start()  # after A, which migrated and seeded the database
            assert b.keys == a.keys
            sdk = make_sdk(a)
            with a.http() as http:
                provision(http, "cross-co", "plan-free")
            cache_customer(sdk, "cross-co")
            assert not sdk.get_boolean_entitlement("cross-co", SSO).has_access

            with b.http() as http:
                subscribe(http, "cross-co", "plan-pro")
            wait_until(
                lambda: sdk.get_boolean_entitlement("cross-co", SSO).has_access,
                STREAM_DEADLINE_SECONDS,
                "the upgrade made through B reached the SDK connected to A",
            )
            assert sdk.get_boolean_entitlement("cross-co", SSO).source is Source.CACHE
        finally:
            a.crash()
            b.crash()

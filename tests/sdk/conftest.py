"""The SDK against a live Tollgate: a tenant holding the demo catalog, a transport that
counts what the SDK sends (and can stand in for a failing server), and started clients
that are closed after each test.

The tenant lives on the real-clock server (`base_url`), never the clocked one of
tests/e2e: the SDK compares usage period ends with the wall clock."""

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.support import Tenant, make_demo_tenant
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate_sdk import Tollgate

STREAM_PATH = "/api/v1/sdk/stream"


@pytest.fixture
def demo_tenant(engine: Engine, base_url: str) -> Tenant:
    """A fresh environment holding the demo catalog, served on the real clock."""
    tenant = make_demo_tenant(engine, base_url)
    return tenant


@pytest.fixture
def signing_secret(engine: Engine, demo_tenant: Tenant) -> str:
    """The secret customer tokens of `demo_tenant` are signed with."""
    with unit_of_work(make_session_factory(engine)) as session:
        return environments.get_environment(session, name=demo_tenant.name).signing_secret


@dataclass(frozen=True, slots=True)
class Sent:
    """One request the SDK made: what, from which thread, and the answer's status (None
    while a streamed answer has not arrived, or when the request failed)."""

    method: str
    path: str
    thread: str
    status: int | None


# Sees each request first: returns an answer to give instead of the server's, raises (say
# `httpx.ConnectError`) to fail the request, or returns None to let it through.
Intercept = Callable[[httpx.Request], httpx.Response | None]


class CountingTransport(httpx.BaseTransport):
    """A real `httpx.HTTPTransport` that remembers every request sent through it; a test
    may set `intercept` to answer or fail some of them itself (the edge of the network,
    never Tollgate's code)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._sent: list[Sent] = []
        self.intercept: Intercept | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        thread = threading.current_thread().name
        with self._lock:
            index = len(self._sent)
            self._sent.append(Sent(request.method, request.url.path, thread, None))
        intercept = self.intercept
        answer = intercept(request) if intercept is not None else None
        response = answer if answer is not None else self._inner.handle_request(request)
        with self._lock:
            self._sent[index] = Sent(request.method, request.url.path, thread, response.status_code)
        return response

    def close(self) -> None:
        self._inner.close()

    @property
    def sent(self) -> list[Sent]:
        with self._lock:
            return list(self._sent)

    def requests(self, *, thread: str | None = None) -> list[Sent]:
        """Every request but the long-lived stream's, optionally of one thread only."""
        return [
            s for s in self.sent if s.path != STREAM_PATH and (thread is None or s.thread == thread)
        ]

    def streams(self) -> list[Sent]:
        return [s for s in self.sent if s.path == STREAM_PATH]


@pytest.fixture
def transport() -> CountingTransport:
    """Closed by the clients given it (the SDK's own `httpx.Client`s close their transport);
    closing it here could come first, under a stream still being read."""
    return CountingTransport()


StartSdk = Callable[..., Tollgate]


@pytest.fixture
def start_sdk(demo_tenant: Tenant) -> Iterator[StartSdk]:
    """Start a `Tollgate` for `demo_tenant` (its server key unless `api_key` is given),
    waiting until it is live unless `wait=False`; every one is closed after the test."""
    started: list[Tollgate] = []

    def start(*, api_key: str | None = None, wait: bool = True, **options: Any) -> Tollgate:
        client = Tollgate(
            api_key if api_key is not None else demo_tenant.server_key,
            base_url=demo_tenant.base_url,
            **options,
        )
        started.append(client)
        if wait:
            assert client.wait_for_initialization(timeout=10), "the SDK never became live"
        return client

    yield start
    for client in started:
        client.close()


@pytest.fixture
def demo_http(demo_tenant: Tenant) -> Iterator[httpx.Client]:
    """Raw HTTP to `demo_tenant` with its server key: the server's side of each story."""
    with demo_tenant.http() as http:
        yield http

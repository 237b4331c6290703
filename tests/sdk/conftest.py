"""The SDK against a live Tollgate: a tenant holding the demo catalog, a transport that
counts what the SDK sends (and can stand in for a failing server), and started clients
that are closed after each test.

The tenant lives on the real-clock server (`base_url`), never the clocked one of
tests/e2e: the SDK compares usage period ends with the wall clock."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.support import Tenant, make_demo_tenant
from tests.support.sdk import CountingTransport, StartSdk
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate_sdk import Tollgate


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


@pytest.fixture
def transport() -> CountingTransport:
    """Closed by the clients given it (the SDK's own `httpx.Client`s close their transport);
    closing it here could come first, under a stream still being read."""
    return CountingTransport()


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

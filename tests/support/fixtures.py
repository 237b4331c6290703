"""The fixtures tests share, registered once for the whole suite by tests/conftest.py.

Every test that takes `tenant` runs twice: on SQLite and on PostgreSQL. Each backend gets one
migrated database and one live server per session; each test gets an environment of its own,
which is all the isolation Tollgate's data model needs. Tests that move time take `clocked`
(an app of their module whose clock they set) and `demo_tenant` (the demo catalog on it)."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stigg
from sqlalchemy import Engine

from tests.support.cli import Cli
from tests.support.clocks import START, Clocked
from tests.support.databases import (
    postgres_schema,
    postgres_schema_engine,
    require_postgres,
    url_in_schema,
)
from tests.support.servers import live_server
from tests.support.tenants import Tenant, make_demo_tenant, make_tenant
from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.db.engine import make_engine
from tollgate.kit.clock import ManualClock
from tollgate.schema import migrate

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = Path(tmp_path_factory.mktemp("sqlite")) / "tollgate.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        yield engine
        engine.dispose()
    else:
        with postgres_schema_engine(require_postgres()) as engine:
            migrate.upgrade(engine)
            yield engine


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend, as a URL for a `tollgate` process to use."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tollgate.db'}"
    else:
        url = require_postgres()
        with postgres_schema(url) as schema:
            yield url_in_schema(url, schema)


@pytest.fixture(scope="session")
def base_url(engine: Engine) -> Iterator[str]:
    # No background jobs: on the real clock they would advance, while other tests run, the
    # subscriptions that clocked tests (`clocked` below) date in the past. Webhook
    # receivers of tests listen on 127.0.0.1: private targets are allowed.
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        run_jobs=False,
        webhooks_allow_private_targets=True,
    )
    with live_server(create_app(settings, engine=engine)) as url:
        yield url


@pytest.fixture
def tenant(engine: Engine, base_url: str) -> Tenant:
    return make_tenant(engine, base_url)


@pytest.fixture
def client(tenant: Tenant) -> Iterator[stigg.Stigg]:
    """The official Stigg client, pointed at Tollgate. No retries: each call is one request."""
    with stigg.Stigg(api_key=tenant.server_key, base_url=tenant.base_url, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http(tenant: Tenant) -> Iterator[httpx.Client]:
    with tenant.http() as raw:
        yield raw


@pytest.fixture(scope="module")
def clocked(engine: Engine) -> Iterator[Clocked]:
    clock = ManualClock(START)
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        run_jobs=False,
        webhooks_allow_private_targets=True,  # the tests' receivers listen on 127.0.0.1
    )
    app = create_app(settings, engine=engine, clock=clock)
    with live_server(app) as url:
        yield Clocked(app, clock, url)


@pytest.fixture
def demo_tenant(engine: Engine, clocked: Clocked) -> Tenant:
    """A fresh environment holding the demo catalog, served by the clocked app."""
    clocked.clock.set(START)
    tenant = make_demo_tenant(engine, clocked.base_url)
    return tenant


@pytest.fixture
def demo_client(demo_tenant: Tenant) -> Iterator[stigg.Stigg]:
    with stigg.Stigg(
        api_key=demo_tenant.server_key, base_url=demo_tenant.base_url, max_retries=0
    ) as sdk:
        yield sdk


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    return Cli(database_url, tmp_path)

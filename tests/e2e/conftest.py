"""A Tollgate whose clock the test moves, and a tenant with the demo catalog."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import stigg
from fastapi import FastAPI
from sqlalchemy import Engine

from tests.support import Tenant, live_server, make_demo_tenant
from tollgate.app import create_app
from tollgate.config import Settings
from tollgate.http.components import app_components
from tollgate.jobs.runner import JobRunner
from tollgate.kit.clock import ManualClock
from tollgate.webhooks.dispatcher import Dispatcher

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@dataclass
class Clocked:
    app: FastAPI
    clock: ManualClock
    base_url: str

    def run_jobs(self) -> dict[str, int]:
        """What `tollgate serve` does all the time, done now, for the clock's moment: the
        lifecycle jobs, then webhook delivery until nothing more may go."""
        parts = app_components(self.app)
        done = parts.get(JobRunner).run_once()
        done["webhooks.deliver"] = parts.get(Dispatcher).run_once()
        return done


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

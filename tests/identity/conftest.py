"""Auth0 tests run on the demo catalog plus the active-users feature `tollgate auth0 setup
--demo` makes (feature-mau: 100 a month on plan-free, 1,000 on plan-pro, unlimited on
plan-enterprise), served by an app whose clock they move; `plan-team` allows 3."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.support import Clocked, Tenant, factories
from tests.support.clocks import START
from tests.support.tenants import make_demo_tenant
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments import service as environments
from tollgate.identity import setup

MAU = "feature-mau"
TEAM_LIMIT = 3


@pytest.fixture
def mau_tenant(engine: Engine, clocked: Clocked) -> Tenant:
    clocked.clock.set(START)
    tenant = make_demo_tenant(engine, clocked.base_url)
    with unit_of_work(make_session_factory(engine)) as session:
        environment = environments.ensure_environment(session, name=tenant.name)
        setup.set_up(
            session,
            environment_id=environment.id,
            feature_ref=MAU,
            event_name="auth0-login",
            demo=True,
            now=datetime.now(UTC),
        )
    with tenant.http() as http:
        grant = {"id": MAU, "type": "FEATURE", "usageLimit": TEAM_LIMIT, "resetPeriod": "MONTH"}
        factories.plan(http, id="plan-team", entitlements=[grant], publish=True)
    return tenant


@pytest.fixture
def http(mau_tenant: Tenant) -> Iterator[httpx.Client]:
    with mau_tenant.http() as raw:
        yield raw


def login_body(
    user: str,
    key: str,
    *,
    organization: str | None = None,
    mode: str = "B2C",
    plans: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A login as the Action reports it; new customers get plan-team (3 active users)."""
    return {
        "user": {"id": user, "email": f"{user.split('|')[-1]}@example.com", "name": user},
        "organization": {"id": organization, "name": organization.upper()}
        if organization
        else None,
        "mode": mode,
        "initialPlans": {"user": "plan-team", "organization": "plan-team"}
        if plans is None
        else plans,
        "featureId": MAU,
        "eventName": "auth0-login",
        "idempotencyKey": key,
        **fields,
    }


def report_login(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return http.post("/api/v1/integrations/auth0/logins", json=body)


def decided(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    answer = report_login(http, body)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data

"""Tenants: an environment of its own per test, with a server and a client key."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine

import tollgate.environments.service as environments
from tollgate.catalog import demo
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments.models import KeyKind


@dataclass(frozen=True)
class Tenant:
    """An environment of its own with a server and a client key: each test's sandbox."""

    name: str
    server_key: str
    client_key: str
    base_url: str

    def http(self, *, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"X-API-KEY": key if key is not None else self.server_key},
            timeout=30,
        )


def make_tenant(engine: Engine, base_url: str) -> Tenant:
    name = f"test-{secrets.token_hex(6)}"
    with unit_of_work(make_session_factory(engine)) as session:
        server = environments.create_key(session, environment_name=name, kind=KeyKind.SERVER)
        client = environments.create_key(session, environment_name=name, kind=KeyKind.CLIENT)
    return Tenant(name, server.secret, client.secret, base_url)


def make_demo_tenant(engine: Engine, base_url: str) -> Tenant:
    """A tenant of its own whose environment holds the demo catalog."""
    tenant = make_tenant(engine, base_url)
    with unit_of_work(make_session_factory(engine)) as session:
        environment = environments.ensure_environment(session, name=tenant.name)
        demo.seed(session, environment_id=environment.id, now=datetime.now(UTC))
    return tenant


def signing_secret(engine: Engine, tenant: Tenant) -> str:
    """The secret the tenant's customer tokens are signed with."""
    with unit_of_work(make_session_factory(engine)) as session:
        return environments.get_environment(session, name=tenant.name).signing_secret

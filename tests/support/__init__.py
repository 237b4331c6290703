"""What tests share: databases, live servers, tenants, a movable clock, and (in modules of
their own) helpers for each area's tests. The fixtures are in `tests.support.fixtures`."""

from tests.support.clocks import START, Clocked
from tests.support.databases import (
    postgres_schema,
    postgres_schema_engine,
    require_postgres,
    url_in_schema,
)
from tests.support.servers import Served, free_port, launch, live_server, serving, start_worker
from tests.support.tenants import Tenant, make_demo_tenant, make_tenant

__all__ = [
    "START",
    "Clocked",
    "Served",
    "Tenant",
    "free_port",
    "launch",
    "live_server",
    "make_demo_tenant",
    "make_tenant",
    "postgres_schema",
    "postgres_schema_engine",
    "require_postgres",
    "serving",
    "start_worker",
    "url_in_schema",
]

"""The clocked app and the demo tenant of tests/e2e, shared by the subscription tests."""

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import clocked, demo_client, demo_tenant
from tests.support import Tenant

__all__ = ["clocked", "demo_client", "demo_http", "demo_tenant"]


@pytest.fixture
def demo_http(demo_tenant: Tenant) -> Iterator[httpx.Client]:
    """Raw HTTP on the demo tenant, for error bodies and Tollgate's additions."""
    with demo_tenant.http() as raw:
        yield raw

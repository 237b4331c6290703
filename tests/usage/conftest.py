"""Usage tests run on the demo catalog, served by an app whose clock they move."""

from typing import Any

import httpx
import pytest

from tests.support import Tenant
from tests.support.usage import customer


@pytest.fixture
def http(demo_tenant: Tenant) -> Any:
    with demo_tenant.http() as raw:
        yield raw


@pytest.fixture
def acme(http: httpx.Client) -> str:
    """Customer `acme` on plan-free: 3 seats, 100 active users and 1,000 API calls a month."""
    return customer(http, "acme")

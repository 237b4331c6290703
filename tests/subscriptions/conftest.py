"""Raw HTTP on the demo tenant the subscription tests share."""

from collections.abc import Iterator

import httpx
import pytest

from tests.support import Tenant


@pytest.fixture
def demo_http(demo_tenant: Tenant) -> Iterator[httpx.Client]:
    """Raw HTTP on the demo tenant, for error bodies and Tollgate's additions."""
    with demo_tenant.http() as raw:
        yield raw

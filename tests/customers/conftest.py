"""The clocked app and demo tenant (tests/support/fixtures.py), with the clock moved to `T0`."""

from collections.abc import Iterator

import httpx
import pytest
import stigg

from tests.support import Clocked, Tenant
from tests.support.customers import T0


@pytest.fixture
def demo(demo_client: stigg.Stigg, clocked: Clocked) -> stigg.Stigg:
    """The Stigg client on a fresh demo tenant whose clock reads `T0`."""
    clocked.clock.set(T0)
    return demo_client


@pytest.fixture
def demo_http(demo: stigg.Stigg, demo_tenant: Tenant) -> Iterator[httpx.Client]:
    """Raw HTTP on the demo tenant (clock at `T0`), for error bodies."""
    with demo_tenant.http() as raw:
        yield raw

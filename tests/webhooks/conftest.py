"""Webhook tests: a real HTTP receiver on 127.0.0.1, and a Tollgate whose clock they move
(deliveries happen when a test runs the jobs, as `tollgate serve` does every second)."""

from collections.abc import Iterator

import httpx
import pytest

from tests.support import Tenant
from tests.support.webhooks import Receiver, SlowPeer, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


@pytest.fixture
def http(demo_tenant: Tenant) -> Iterator[httpx.Client]:
    with demo_tenant.http() as raw:
        yield raw


@pytest.fixture
def slow_peer() -> Iterator[SlowPeer]:
    peer = SlowPeer()
    yield peer
    peer.close()

"""Usage tests run on the demo catalog, served by an app whose clock they move."""

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import clocked, demo_client, demo_tenant  # noqa: F401
from tests.support import Tenant


@pytest.fixture
def http(demo_tenant: Tenant) -> Any:  # noqa: F811 (the imported fixture)
    with demo_tenant.http() as raw:
        yield raw


@pytest.fixture
def acme(http: httpx.Client) -> str:
    """Customer `acme` on plan-free: 3 seats, 100 active users and 1,000 API calls a month."""
    return customer(http, "acme")


def customer(http: httpx.Client, customer_id: str) -> str:
    """A customer on plan-free."""
    assert http.post("/api/v1/customers", json={"id": customer_id}).status_code == 201
    subscribed = http.post(
        "/api/v1/subscriptions", json={"customerId": customer_id, "planId": "plan-free"}
    )
    assert subscribed.status_code == 200, subscribed.text
    return customer_id


def report(http: httpx.Client, *usages: dict[str, Any], version: int = 1) -> httpx.Response:
    return http.post(f"/api/v{version}/usage", json={"usages": list(usages)})


def usage(feature: str, value: float, **fields: Any) -> dict[str, Any]:
    return {"customerId": "acme", "featureId": feature, "value": value, **fields}


def check(
    http: httpx.Client, feature: str, *, customer_id: str = "acme", **params: Any
) -> dict[str, Any]:
    response = http.get(
        f"/api/v1/customers/{customer_id}/entitlements/check",
        params={"featureId": feature, **params},
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data

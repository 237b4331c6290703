"""Usage over raw HTTP: customers on the demo's free plan, usage reports and checks."""

from typing import Any

import httpx


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

"""Plain factories for catalog objects, over raw HTTP so they work with any key."""

from typing import Any

import httpx


def feature(http: httpx.Client, *, id: str = "feature-seats", **fields: Any) -> dict[str, Any]:
    body = {"id": id, "displayName": id, "featureType": "NUMBER", "meterType": "FLUCTUATING"}
    response = http.post("/api/v1/features", json={**body, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def product(http: httpx.Client, *, id: str = "product-saas", **fields: Any) -> dict[str, Any]:
    response = http.post("/api/v1/products", json={"id": id, "displayName": id, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def plan(
    http: httpx.Client,
    *,
    id: str = "plan-free",
    product_id: str = "product-saas",
    entitlements: list[dict[str, Any]] | None = None,
    publish: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    return _package(http, "plans", id, product_id, entitlements, publish, fields)


def addon(
    http: httpx.Client,
    *,
    id: str = "addon-extra-seats",
    product_id: str = "product-saas",
    entitlements: list[dict[str, Any]] | None = None,
    publish: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    return _package(http, "addons", id, product_id, entitlements, publish, fields)


def _package(
    http: httpx.Client,
    segment: str,
    id: str,
    product_id: str,
    entitlements: list[dict[str, Any]] | None,
    publish: bool,
    fields: dict[str, Any],
) -> dict[str, Any]:
    body = {"id": id, "displayName": id, "productId": product_id, **fields}
    response = http.post(f"/api/v1/{segment}", json=body)
    assert response.status_code == 201, response.text
    if entitlements:
        added = http.post(
            f"/api/v1/{segment}/{id}/entitlements", json={"entitlements": entitlements}
        )
        assert added.status_code == 201, added.text
    if publish:
        published = http.post(
            f"/api/v1/{segment}/{id}/publish", json={"migrationType": "NEW_CUSTOMERS"}
        )
        assert published.status_code == 200, published.text
    current = http.get(f"/api/v1/{segment}/{id}")
    return dict(current.json()["data"])


def seats(limit: int | None = 5) -> dict[str, Any]:
    grant: dict[str, Any] = {"id": "feature-seats", "type": "FEATURE"}
    if limit is None:
        grant["hasUnlimitedUsage"] = True
    else:
        grant["usageLimit"] = limit
    return grant

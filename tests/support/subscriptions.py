"""Small helpers for the subscription tests: customers, subscriptions, checks, errors."""

from datetime import datetime
from typing import Any

import httpx
import stigg
from stigg.types.v1.subscription import Data as Subscription

Check = tuple[bool, str | None, object]


def customer(client: stigg.Stigg, id: str = "acme") -> str:
    client.v1.customers.provision(id=id, name=id.title(), email=f"it@{id}.test")
    return id


def subscribe(client: stigg.Stigg, customer_id: str = "acme", **fields: Any) -> Subscription:
    """Provision and return the subscription the answer names (the current one when the
    change was scheduled)."""
    provisioned = client.v1.subscriptions.provision(customer_id=customer_id, **fields).data
    assert provisioned.subscription is not None
    return get(client, provisioned.subscription.id)


def get(client: stigg.Stigg, subscription_id: str) -> Subscription:
    return client.v1.subscriptions.retrieve(subscription_id).data


def check(client: stigg.Stigg, feature: str, customer_id: str = "acme", **params: Any) -> Check:
    """(isGranted, accessDeniedReason, usageLimit) of one entitlement check."""
    data = client.v1.customers.check_entitlement(customer_id, feature_id=feature, **params).data
    return data.is_granted, data.access_denied_reason, getattr(data, "usage_limit", None)


def seats(client: stigg.Stigg, customer_id: str = "acme", **params: Any) -> object:
    """The customer's seat limit ("unlimited" if so), or the reason there is none."""
    data = client.v1.customers.check_entitlement(
        customer_id, feature_id="feature-seats", **params
    ).data
    if not data.is_granted:
        return data.access_denied_reason
    if getattr(data, "has_unlimited_usage", False):
        return "unlimited"
    return getattr(data, "usage_limit", None)


def has_sso(client: stigg.Stigg, customer_id: str = "acme", **params: Any) -> bool:
    return check(client, "feature-sso", customer_id, **params)[0]


def live(client: stigg.Stigg, customer_id: str = "acme") -> list[tuple[str, str]]:
    """(planId, status) of the customer's live subscriptions, oldest first."""
    found = client.v1.subscriptions.list(
        customer_id=customer_id, status=["NOT_STARTED", "IN_TRIAL", "ACTIVE"]
    )
    return [(s.plan_id, s.status) for s in found]


def updates(subscription: Subscription) -> list[tuple[str, str | None, datetime]]:
    """(type, target plan, when) of each scheduled future update."""
    return [
        (
            u.subscription_schedule_type,
            u.target_package.id if u.target_package else None,
            u.scheduled_execution_time,
        )
        for u in subscription.future_updates or []
    ]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error object of a refused request, after checking its status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    problem: dict[str, Any] = body["error"]
    assert {"code", "message", "field"} <= set(problem), problem
    assert problem["message"]
    return problem


def extra(model: Any, key: str) -> Any:
    """A field Tollgate sends that the Stigg client does not declare (kept as sent)."""
    return (model.model_extra or {})[key]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def republish(
    http: httpx.Client,
    segment: str,
    id: str,
    *,
    migration: str = "NEW_CUSTOMERS",
    fields: dict[str, Any] | None = None,
    entitlements: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Open a draft of a published plan or add-on, change it, and publish it."""
    drafted = http.post(f"/api/v1/{segment}/{id}/draft")
    assert drafted.status_code == 200, drafted.text
    if fields:
        patched = http.patch(f"/api/v1/{segment}/{id}", json=fields)
        assert patched.status_code == 200, patched.text
    for feature, body in (entitlements or {}).items():
        changed = http.patch(
            f"/api/v1/{segment}/{id}/entitlements/{feature}", json={"type": "FEATURE", **body}
        )
        assert changed.status_code == 200, changed.text
    published = http.post(f"/api/v1/{segment}/{id}/publish", json={"migrationType": migration})
    assert published.status_code == 200, published.text

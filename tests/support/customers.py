"""Helpers for the customer tests: errors, checks, promotional grants, subscriptions."""

from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import stigg
from stigg.types.v1.customer_check_entitlement_response import DataFeature
from stigg.types.v1.customers.promotional_entitlement_create_params import (
    PromotionalEntitlement,
)
from stigg.types.v1.customers.promotional_entitlement_create_response import Data as Grant
from stigg.types.v1.subscription import Data as Subscription

# Years past the wall clock, so that no job running on the wall clock against the same
# database (a live server's background runner) can expire these grants or move these
# subscriptions before the test does.
T0 = datetime(2036, 1, 15, 9, 30, tzinfo=UTC)

Period = Literal["1 week", "1 month", "6 month", "1 year", "lifetime", "custom"]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error object of a refused request, after checking its status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    problem: dict[str, Any] = body["error"]
    assert problem["message"], problem
    return problem


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def check(client: stigg.Stigg, customer_id: str, feature_id: str, **params: Any) -> DataFeature:
    data = client.v1.customers.check_entitlement(customer_id, feature_id=feature_id, **params).data
    assert isinstance(data, DataFeature), data
    return data


def seats(client: stigg.Stigg, customer_id: str = "acme") -> object:
    """The customer's seat limit ("unlimited" when there is none), or why it has no seats."""
    data = check(client, customer_id, "feature-seats")
    if not data.is_granted:
        return data.access_denied_reason
    return "unlimited" if data.has_unlimited_usage else data.usage_limit


def subscribe(
    client: stigg.Stigg, customer_id: str = "acme", plan_id: str = "plan-free", **fields: Any
) -> Subscription:
    provisioned = client.v1.subscriptions.provision(
        customer_id=customer_id, plan_id=plan_id, **fields
    ).data
    assert provisioned.subscription is not None
    return client.v1.subscriptions.retrieve(provisioned.subscription.id).data


def promotion(
    feature_id: str,
    period: Period = "1 month",
    *,
    usage_limit: int | None = None,
    has_unlimited_usage: bool | None = None,
    has_soft_limit: bool | None = None,
    custom_end_date: datetime | None = None,
    is_visible: bool | None = None,
    reset_period: Literal["YEAR", "MONTH", "WEEK", "DAY", "HOUR"] | None = None,
    monthly_reset: Literal["SubscriptionStart", "StartOfTheMonth"] | None = None,
) -> PromotionalEntitlement:
    """One grant in the client's shape (it marks every field required, most nullable)."""
    return {
        "feature_id": feature_id,
        "period": period,
        "usage_limit": usage_limit,
        "has_unlimited_usage": has_unlimited_usage,
        "has_soft_limit": has_soft_limit,
        "custom_end_date": custom_end_date,
        "is_visible": is_visible,
        "enum_values": None,
        "reset_period": reset_period,
        "monthly_reset_period_configuration": (
            {"according_to": monthly_reset} if monthly_reset else None
        ),
        "weekly_reset_period_configuration": None,
        "yearly_reset_period_configuration": None,
    }


def grant(client: stigg.Stigg, customer_id: str, *grants: PromotionalEntitlement) -> list[Grant]:
    created = client.v1.customers.promotional_entitlements.create(
        customer_id, promotional_entitlements=list(grants)
    )
    return created.data

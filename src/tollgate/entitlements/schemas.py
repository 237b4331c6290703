"""Wire shapes of entitlement reads, for the OpenAPI document and for tests.

The routes build these answers as plain dicts (`wire.py`) to keep the check path fast."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from tollgate.entitlements.engine import DenyReason
from tollgate.http.schemas import Envelope, RequestModel, WireModel
from tollgate.http.types import JsonBool, JsonInt


class FeatureRef(WireModel):
    id: str
    display_name: str
    feature_status: Literal["NEW", "SUSPENDED", "ACTIVE"]
    feature_type: Literal["BOOLEAN", "NUMBER", "ENUM"]


class Grant(WireModel):
    source: Literal["PLAN", "ADDON", "PROMOTION"]
    id: str
    version_number: int | None
    subscription_id: str | None
    quantity: int
    usage_limit: int | None
    has_unlimited_usage: bool
    is_granted: bool
    effect: Literal["grants", "inherited", "adds", "overrides", "replaced", "revoked", "outweighed"]


class Explanation(WireModel):
    grants: list[Grant]


class EntitlementRead(WireModel):
    type: Literal["FEATURE"]
    is_granted: bool
    access_denied_reason: DenyReason | None
    feature: FeatureRef | None
    current_usage: float | None
    usage_limit: int | None
    has_unlimited_usage: bool | None
    reset_period: Literal["YEAR", "MONTH", "WEEK", "DAY", "HOUR"] | None
    usage_period_anchor: datetime | None
    usage_period_start: datetime | None
    usage_period_end: datetime | None
    valid_until: datetime | None
    entitlement_updated_at: datetime | None
    explain: Explanation | None = None


class CustomerEntitlements(WireModel):
    entitlements: list[EntitlementRead]
    access_denied_reason: (
        Literal[
            "CustomerNotFound",
            "NoActiveSubscription",
            "CustomerIsArchived",
            "CustomerResourceNotFound",
        ]
        | None
    )


CheckEnvelope = Envelope[EntitlementRead]
EntitlementsEnvelope = Envelope[CustomerEntitlements]


def _query(
    name: str, description: str, schema: dict[str, Any], required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


CHECK_PARAMETERS = [
    _query("featureId", "The feature to check", {"type": "string"}, required=True),
    _query(
        "requestedUsage",
        "Usage about to be consumed (NUMBER features); defaults to 1",
        {"type": "integer", "minimum": 0},
    ),
    _query(
        "requestedValues",
        "Comma-separated values that must all be allowed (ENUM features)",
        {"type": "string"},
    ),
    _query("resourceId", "Check within one resource of the customer", {"type": "string"}),
    _query(
        "explain",
        "Tollgate addition: list the grants behind the answer",
        {"type": "boolean"},
    ),
]


MAX_STATES = 200  # each may be computed from the database: keep one request's work bounded


class StateRequest(RequestModel):
    customer_id: Annotated[str, Field(min_length=1, max_length=255)]
    resource_id: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    min_version: Annotated[JsonInt, Field(ge=0, le=2**63 - 1)] = 0
    fresh: JsonBool = False


class StatesRequest(RequestModel):
    """Customers' states in one request (what `GET .../{id}/state` answers, for each)."""

    customers: Annotated[list[StateRequest], Field(min_length=1, max_length=MAX_STATES)]
    fresh_usage: JsonBool = False

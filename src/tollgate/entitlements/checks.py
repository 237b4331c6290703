"""One entitlement check, from its query parameters to its wire answer.

Shared by the routes (any request) and the warm path (`warm.py`, requests answered from
memory before the framework sees them), so both parse and answer exactly alike."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tollgate.entitlements import engine
from tollgate.entitlements.engine import FeatureInfo, Snapshot
from tollgate.entitlements.service import current_usage, describe_entitlements, is_metered
from tollgate.entitlements.usage_store import CustomerUsage
from tollgate.entitlements.wire import decision_wire
from tollgate.errors import InvalidValue, NotImplementedYet
from tollgate.http.params import flag

MAX_REQUESTED_USAGE = 2**53  # beyond this a JSON number loses integer precision
UNSUPPORTED = (
    "currencyId",
    "reserveAmount",
    "reservationId",
    "reservationExpiresAt",
    "reservationTtlSeconds",
    "reservationMetadata",
)


@dataclass(frozen=True, slots=True)
class CheckQuery:
    feature_ref: str
    requested_usage: int | None
    requested_values: list[str] | None
    resource_ref: str | None
    explain: bool


def parse_check_query(query: Mapping[str, str]) -> CheckQuery:
    for name in UNSUPPORTED:
        if name in query:
            raise NotImplementedYet(name, "credits and reservations are not supported yet")
    feature_ref = query.get("featureId")
    if not feature_ref:
        raise InvalidValue("give the feature to check in 'featureId'", field="featureId")
    raw_values = query.get("requestedValues")
    requested_values = None if raw_values is None else [v for v in raw_values.split(",") if v]
    return CheckQuery(
        feature_ref=feature_ref,
        requested_usage=_requested_usage(query.get("requestedUsage")),
        requested_values=requested_values,
        resource_ref=query.get("resourceId") or None,
        explain=is_explain(query),
    )


def is_explain(query: Mapping[str, str]) -> bool:
    return flag(query.get("explain"), field="explain")


def needs_usage(features: Mapping[str, FeatureInfo], feature_ref: str) -> bool:
    feature = features.get(feature_ref)
    return feature is not None and is_metered(feature)


def check_answer(
    snapshot: Snapshot,
    features: Mapping[str, FeatureInfo],
    query: CheckQuery,
    customer_usage: CustomerUsage,
) -> dict[str, Any]:
    """The `data` of a check's reply."""
    feature = features.get(query.feature_ref)
    usage = current_usage(snapshot, feature, customer_usage) if feature else 0
    decision = engine.check(
        snapshot,
        feature,
        requested_usage=query.requested_usage,
        requested_values=query.requested_values,
        current_usage=usage,
    )
    return decision_wire(snapshot, decision, feature, current_usage=usage, explain=query.explain)


def _requested_usage(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidValue(
            f"'requestedUsage' must be a whole number, got '{raw[:40]}'", field="requestedUsage"
        ) from None
    if not 0 <= value <= MAX_REQUESTED_USAGE:
        raise InvalidValue(
            f"'requestedUsage' must be between 0 and {MAX_REQUESTED_USAGE}", field="requestedUsage"
        )
    return value


def list_answer(
    snapshot: Snapshot,
    features: Mapping[str, FeatureInfo],
    customer_usage: CustomerUsage,
    *,
    explain: bool,
) -> dict[str, Any]:
    """The `data` of a reply listing every entitlement."""
    reason = engine.customer_reason(snapshot)
    return {
        "entitlements": describe_entitlements(snapshot, features, customer_usage, explain=explain),
        "accessDeniedReason": reason.value if reason else None,
    }

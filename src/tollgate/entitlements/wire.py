"""Entitlements in Stigg's wire shape, as plain dicts: the check path skips pydantic.

`schemas.py` declares the same shapes as models for the OpenAPI document; a test keeps the
two in step by validating these dicts against them."""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from tollgate.entitlements.engine import (
    Decision,
    Effective,
    FeatureInfo,
    Snapshot,
    customer_reason,
)


def feature_wire(feature: FeatureInfo) -> dict[str, Any]:
    return {
        "id": feature.ref_id,
        "displayName": feature.display_name,
        "featureStatus": feature.status,
        "featureType": feature.feature_type,
    }


def decision_wire(
    snapshot: Snapshot,
    decision: Decision,
    feature: FeatureInfo | None,
    *,
    current_usage: float,
    explain: bool = False,
) -> dict[str, Any]:
    entitlement = decision.entitlement
    wire: dict[str, Any] = {
        "type": "FEATURE",
        "isGranted": decision.is_granted,
        "accessDeniedReason": decision.reason.value if decision.reason else None,
        "feature": feature_wire(feature) if feature else None,
        "currentUsage": current_usage if _metered(feature) else None,
        **_terms(snapshot, entitlement),
    }
    if explain:
        wire["explain"] = {
            "grants": [c.as_wire() for c in entitlement.contributions] if entitlement else []
        }
    return wire


def _metered(feature: FeatureInfo | None) -> bool:
    return feature is not None and feature.feature_type == "NUMBER"


_NO_TERMS: dict[str, Any] = {
    "usageLimit": None,
    "hasUnlimitedUsage": None,
    "resetPeriod": None,
    "usagePeriodAnchor": None,
    "usagePeriodStart": None,
    "usagePeriodEnd": None,
    "validUntil": None,
    "entitlementUpdatedAt": None,
}


def _terms(snapshot: Snapshot, entitlement: Effective | None) -> dict[str, Any]:
    if entitlement is None:
        return _NO_TERMS
    rendered: dict[str, Any] | None = snapshot.wire_memo.get(entitlement.feature_ref)
    if rendered is None:
        rendered = snapshot.wire_memo[entitlement.feature_ref] = _terms_wire(entitlement)
    return rendered


def _terms_wire(entitlement: Effective) -> dict[str, Any]:
    return {
        "usageLimit": entitlement.usage_limit,
        "hasUnlimitedUsage": entitlement.has_unlimited_usage,
        "resetPeriod": entitlement.reset_period.value if entitlement.reset_period else None,
        "usagePeriodAnchor": _time(entitlement.usage_period_anchor),
        "usagePeriodStart": _time(entitlement.usage_period_start),
        "usagePeriodEnd": _time(entitlement.usage_period_end),
        "validUntil": _time(entitlement.valid_until),
        "entitlementUpdatedAt": _time(entitlement.updated_at),
    }


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def state_wire(
    snapshot: Snapshot,
    features: Mapping[str, FeatureInfo],
    current_usage: Callable[[FeatureInfo], float],
) -> dict[str, Any]:
    """All an SDK needs to decide any check of this customer itself: each entitlement's
    terms and usage, and when the answer would change with time alone (`refreshAt`)."""
    reason = customer_reason(snapshot)
    entitlements = []
    refresh_at = snapshot.expires_at
    for feature_ref in sorted(snapshot.entitlements):
        feature = features.get(feature_ref)
        if feature is None:
            continue
        entitlement = snapshot.entitlements[feature_ref]
        if entitlement.usage_period_end is not None:
            refresh_at = min(
                refresh_at or entitlement.usage_period_end, entitlement.usage_period_end
            )
        entitlements.append(
            {
                "featureId": feature_ref,
                "isGranted": entitlement.is_granted,
                "hasSoftLimit": entitlement.has_soft_limit,
                "enumValues": sorted(entitlement.enum_values)
                if entitlement.enum_values is not None
                else None,
                "currentUsage": current_usage(feature) if _metered(feature) else None,
                **_terms(snapshot, entitlement),
            }
        )
    return {
        "customerId": snapshot.customer_ref,
        "resourceId": snapshot.resource_ref,
        "accessDeniedReason": reason.value if reason else None,
        "hasSubscription": snapshot.has_subscription,
        "refreshAt": _time(refresh_at),
        "entitlements": entitlements,
    }


def sdk_feature_wire(feature: FeatureInfo) -> dict[str, Any]:
    return {**feature_wire(feature), "meterType": feature.meter_type}

"""Entitlements in Stigg's wire shape, as plain dicts: the check path skips pydantic.

`schemas.py` declares the same shapes as models for the OpenAPI document; a test keeps the
two in step by validating these dicts against them."""

from datetime import datetime
from typing import Any

from tollgate.entitlements.engine import Decision, Effective, FeatureInfo


def feature_wire(feature: FeatureInfo) -> dict[str, Any]:
    return {
        "id": feature.ref_id,
        "displayName": feature.display_name,
        "featureStatus": feature.status,
        "featureType": feature.feature_type,
    }


def decision_wire(
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
        **_terms_wire(entitlement),
    }
    if explain:
        wire["explain"] = {
            "grants": [c.as_wire() for c in entitlement.contributions] if entitlement else []
        }
    return wire


def _metered(feature: FeatureInfo | None) -> bool:
    return feature is not None and feature.feature_type == "NUMBER"


def _terms_wire(entitlement: Effective | None) -> dict[str, Any]:
    if entitlement is None:
        return {
            "usageLimit": None,
            "hasUnlimitedUsage": None,
            "resetPeriod": None,
            "usagePeriodAnchor": None,
            "usagePeriodStart": None,
            "usagePeriodEnd": None,
            "validUntil": None,
            "entitlementUpdatedAt": None,
        }
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

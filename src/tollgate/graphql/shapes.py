"""Tollgate's objects in the shapes of Stigg's GraphQL types, as plain dicts.

The edge JSON files are these dicts as they are; the GraphQL resolvers return them and let
the schema pick the fields a document asks for. One place per shape, so that the two
transports cannot drift apart."""

from datetime import datetime
from typing import Any

from tollgate.entitlements.engine import Effective, FeatureInfo
from tollgate.entitlements.reads import CustomerEntitlements

METER_TYPES = {"None": "None", "FLUCTUATING": "Fluctuating", "INCREMENTAL": "Incremental"}


def time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def feature_shape(feature: FeatureInfo) -> dict[str, Any]:
    return {
        "__typename": "EntitlementFeature",
        "id": feature.ref_id,
        "refId": feature.ref_id,
        "displayName": feature.display_name,
        "description": feature.description,
        "featureType": feature.feature_type,
        "meterType": METER_TYPES.get(feature.meter_type, "None"),
        "featureUnits": feature.units,
        "featureUnitsPlural": feature.units_plural,
        "featureStatus": feature.status,
        "unitTransformation": None,
        "additionalMetaData": None,
    }


def entitlement_shape(
    held: CustomerEntitlements, entitlement: Effective, feature: FeatureInfo
) -> dict[str, Any]:
    """An `Entitlement` the customer holds: the SDKs decide every check from these terms."""
    metered = feature.meter_type in ("FLUCTUATING", "INCREMENTAL")
    reset_period = entitlement.reset_period if metered else None
    return {
        "__typename": "Entitlement",
        "isGranted": True,
        "accessDeniedReason": None,
        "customerId": held.snapshot.customer_ref,
        "resourceId": held.snapshot.resource_ref,
        "usageLimit": entitlement.usage_limit,
        "hasUnlimitedUsage": entitlement.has_unlimited_usage,
        "hasSoftLimit": entitlement.has_soft_limit,
        "currentUsage": held.current_usage(feature) if metered else 0,
        "requestedUsage": None,
        "requestedValues": None,
        "enumValues": sorted(entitlement.enum_values) if entitlement.enum_values else None,
        "entitlementUpdatedAt": time(entitlement.updated_at),
        "usageUpdatedAt": None,
        "usagePeriodAnchor": time(entitlement.usage_period_anchor),
        "usagePeriodStart": time(entitlement.usage_period_start),
        "usagePeriodEnd": time(entitlement.usage_period_end),
        "nextResetDate": time(entitlement.usage_period_end) if reset_period else None,
        "resetPeriod": reset_period.value if reset_period else None,
        "resetPeriodConfiguration": None,
        "validUntil": time(entitlement.valid_until),
        "creditRate": None,
        "feature": feature_shape(feature),
    }


def entitlements_shape(held: CustomerEntitlements) -> list[dict[str, Any]]:
    """Only what the customer has: the SDKs take a listed entitlement as granted (an unknown,
    archived or unsubscribed customer has an empty list), so a revoked one is left out."""
    snapshot = held.snapshot
    if not snapshot.customer_found or snapshot.is_archived or not snapshot.resource_found:
        return []
    shapes = []
    for feature_ref in sorted(snapshot.entitlements):
        entitlement = snapshot.entitlements[feature_ref]
        feature = held.features.get(feature_ref)
        if feature is None or not entitlement.is_granted:
            continue
        shapes.append(entitlement_shape(held, entitlement, feature))
    return shapes


SDK_CONFIGURATION = {
    "__typename": "SdkConfiguration",
    # A DSN would make the browser SDK report its errors to Stigg's Sentry.
    "sentryDsn": None,
    "isWidgetWatermarkEnabled": False,
}

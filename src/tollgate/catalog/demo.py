"""The demo catalog of ARCHITECTURE.md section 8, seeded by `tollgate serve --demo`."""

from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from tollgate.catalog.enums import MigrationType, PackageKind
from tollgate.catalog.features.schemas import FeatureCreate
from tollgate.catalog.features.service import create_feature
from tollgate.catalog.models import Feature, Product
from tollgate.catalog.packages import entitlements, service
from tollgate.catalog.packages.schemas import (
    AddonCreate,
    AddonUpdate,
    EntitlementCreate,
    PlanCreate,
    PlanUpdate,
)
from tollgate.catalog.products.schemas import ProductCreate, ProductSettings, ProductUpdate
from tollgate.catalog.products.service import create_product, update_product

PRODUCT = "product-saas"

FEATURES: list[dict[str, Any]] = [
    {"id": "feature-sso", "displayName": "Single sign-on", "featureType": "BOOLEAN"},
    {
        "id": "feature-seats",
        "displayName": "Seats",
        "featureType": "NUMBER",
        "meterType": "FLUCTUATING",
        "featureUnits": "seat",
        "featureUnitsPlural": "seats",
    },
    {
        "id": "feature-active-users",
        "displayName": "Monthly active users",
        "featureType": "NUMBER",
        "meterType": "INCREMENTAL",
        "featureUnits": "active user",
        "featureUnitsPlural": "active users",
    },
    {
        "id": "feature-api-calls",
        "displayName": "API calls",
        "featureType": "NUMBER",
        "meterType": "INCREMENTAL",
        "featureUnits": "call",
        "featureUnitsPlural": "calls",
        "meter": {
            "aggregation": {"function": "COUNT"},
            "filters": [
                {"conditions": [{"field": "eventName", "operation": "EQUALS", "value": "api_call"}]}
            ],
        },
    },
]


def _limit(feature_id: str, limit: int | None, *, monthly: bool = False) -> dict[str, Any]:
    entitlement: dict[str, Any] = {"id": feature_id, "type": "FEATURE"}
    if limit is None:
        entitlement["hasUnlimitedUsage"] = True
    else:
        entitlement["usageLimit"] = limit
    if monthly:
        entitlement["resetPeriod"] = "MONTH"
    return entitlement


def _grants(seats: int | None, users: int | None, calls: int | None) -> list[dict[str, Any]]:
    return [
        _limit("feature-seats", seats),
        _limit("feature-active-users", users, monthly=True),
        _limit("feature-api-calls", calls, monthly=True),
    ]


def _flat(monthly: int, annually: int) -> dict[str, Any]:
    return {
        "billingModel": "FLAT_FEE",
        "pricePeriods": [
            {"billingPeriod": "MONTHLY", "price": {"amount": monthly, "currency": "usd"}},
            {"billingPeriod": "ANNUALLY", "price": {"amount": annually, "currency": "usd"}},
        ],
    }


def _users_overage(per_user: float) -> dict[str, Any]:
    price = {"amount": per_user, "currency": "usd"}
    return {
        "featureId": "feature-active-users",
        "pricePeriods": [
            {"billingPeriod": "MONTHLY", "price": price},
            {"billingPeriod": "ANNUALLY", "price": price},
        ],
    }


# Prices in USD, monthly and annually (two months free); active users beyond the plan's
# allowance cost ten cents each, billed at the renewal.
CHARGES: dict[str, dict[str, Any]] = {
    "plan-pro": {
        "pricingType": "PAID",
        "pricingModels": [_flat(49, 490)],
        "overagePricingModels": [_users_overage(0.1)],
        "overageBillingPeriod": "ON_SUBSCRIPTION_RENEWAL",
    },
    "plan-enterprise": {"pricingType": "PAID", "pricingModels": [_flat(199, 1_990)]},
    "addon-extra-seats": {"pricingType": "PAID", "pricingModels": [_flat(25, 250)]},
}

# Children restate the numbers they raise; the engine lets a child's entitlement win.
PLANS: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
    ({"id": "plan-free", "displayName": "Free", "pricingType": "FREE"}, _grants(3, 100, 1_000)),
    (
        {
            "id": "plan-pro",
            "displayName": "Pro",
            "pricingType": "PAID",
            "parentPlanId": "plan-free",
            "defaultTrialConfig": {
                "duration": 14,
                "units": "DAY",
                "trialEndBehavior": "CONVERT_TO_PAID",
            },
        },
        [{"id": "feature-sso", "type": "FEATURE"}, *_grants(20, 1_000, 100_000)],
    ),
    (
        {
            "id": "plan-enterprise",
            "displayName": "Enterprise",
            "pricingType": "PAID",
            "parentPlanId": "plan-pro",
        },
        _grants(None, None, None),
    ),
]
ADDON = {"id": "addon-extra-seats", "displayName": "10 extra seats", "pricingType": "PAID"}


def is_seeded(session: Session, *, environment_id: int) -> bool:
    """Any catalog object at all means the environment is not empty: leave it alone."""
    return bool(
        session.scalar(select(exists().where(Feature.environment_id == environment_id)))
        or session.scalar(select(exists().where(Product.environment_id == environment_id)))
    )


def seed(session: Session, *, environment_id: int, now: datetime) -> bool:
    """Seed the demo catalog into an empty environment at `now`; return whether anything
    was done."""
    if is_seeded(session, environment_id=environment_id):
        return False
    for feature in FEATURES:
        create_feature(
            session,
            environment_id=environment_id,
            data=FeatureCreate.model_validate(feature),
            now=now,
        )
    create_product(
        session,
        environment_id=environment_id,
        data=ProductCreate(id=PRODUCT, display_name="B2B SaaS"),
        now=now,
    )
    _package(
        session,
        environment_id,
        PackageKind.ADDON,
        AddonCreate.model_validate({**ADDON, "productId": PRODUCT}),
        [_limit("feature-seats", 10)],
        now=now,
    )
    # Parents come first in PLANS, so each is published before its children.
    for plan, grants in PLANS:
        _package(
            session,
            environment_id,
            PackageKind.PLAN,
            PlanCreate.model_validate({**plan, "productId": PRODUCT}),
            grants,
            addon_ids=(ADDON["id"],),
            now=now,
        )
    update_product(
        session,
        environment_id=environment_id,
        ref_id=PRODUCT,
        data=ProductUpdate(
            product_settings=ProductSettings(
                subscription_end_setup="DOWNGRADE_TO_FREE", downgrade_plan_id="plan-free"
            )
        ),
        now=now,
    )
    return True


def _package(
    session: Session,
    environment_id: int,
    kind: PackageKind,
    data: PlanCreate | AddonCreate,
    grants: list[dict[str, Any]],
    *,
    addon_ids: tuple[str, ...] = (),
    now: datetime,
) -> None:
    """Create, grant, offer add-ons, publish: what a person would do in that order."""
    service.create_package(session, environment_id=environment_id, kind=kind, data=data, now=now)
    entitlements.create_entitlements(
        session,
        environment_id=environment_id,
        kind=kind,
        ref_id=data.id,
        items=[EntitlementCreate.model_validate(grant) for grant in grants],
        now=now,
    )
    if addon_ids:
        service.update_package(
            session,
            environment_id=environment_id,
            kind=kind,
            ref_id=data.id,
            data=PlanUpdate(compatible_addon_ids=list(addon_ids)),
            now=now,
        )
    if data.id in CHARGES:
        service.update_package(
            session,
            environment_id=environment_id,
            kind=kind,
            ref_id=data.id,
            data=(PlanUpdate if kind is PackageKind.PLAN else AddonUpdate).model_validate(
                {"charges": CHARGES[data.id]}
            ),
            now=now,
        )
    service.publish_package(
        session,
        environment_id=environment_id,
        kind=kind,
        ref_id=data.id,
        migration_type=MigrationType.NEW_CUSTOMERS,
        now=now,
    )

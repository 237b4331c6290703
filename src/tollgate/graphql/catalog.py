"""The published catalog in the shapes of Stigg's `Plan`, `Addon` and `Product`, for the
paywall, the portal and the checkout: what a pricing page shows, in its order.

Plans are listed lowest tier first, because the widgets take a plan's place in the list as
its rank ("Upgrade" to the right, "Downgrade" to the left): a plan comes after the plan it
extends, and plans at the same depth in the order they were created. Prices arrive with
the prices domain; until then `prices` is empty."""

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.enums import PackageKind, PackageStatus
from tollgate.catalog.models import Package, PackageEntitlement, PackageVersion, Product
from tollgate.catalog.packages import charges
from tollgate.catalog.packages.versions import latest_published
from tollgate.graphql.shapes import METER_TYPES, package_ref_shape
from tollgate.kit.money import wire_price


def published_plans(
    session: Session, *, environment_id: int, product_ref: str | None = None
) -> list[dict[str, Any]]:
    versions = _published(session, environment_id, PackageKind.PLAN, product_ref)
    addons = {
        package.ref_id: addon_shape(version, package)
        for package, version in _published(session, environment_id, PackageKind.ADDON, None)
    }
    by_id = {package.id: (package, version) for package, version in versions}
    plans = []
    for package, version in versions:
        parent = by_id.get(version.parent_package_id) if version.parent_package_id else None
        plans.append(
            (_depth(by_id, version), package.created_at, package.id, package, version, parent)
        )
    plans.sort(key=lambda plan: plan[:3])
    return [plan_shape(version, package, parent, addons) for *_, package, version, parent in plans]


def _depth(by_id: dict[int, tuple[Package, PackageVersion]], version: PackageVersion) -> int:
    depth, seen = 0, set()
    while version.parent_package_id in by_id and version.parent_package_id not in seen:
        seen.add(version.parent_package_id)
        version = by_id[version.parent_package_id][1]
        depth += 1
    return depth


def _published(
    session: Session, environment_id: int, kind: PackageKind, product_ref: str | None
) -> list[tuple[Package, PackageVersion]]:
    """Each live package of `kind` with its newest published version."""
    query = (
        select(Package, PackageVersion)
        .join(PackageVersion, PackageVersion.package_id == Package.id)
        .join(Product, Product.id == Package.product_id)
        .options(
            selectinload(Package.product),
            selectinload(PackageVersion.entitlements).selectinload(PackageEntitlement.feature),
        )
        .where(
            Package.environment_id == environment_id,
            Package.kind == kind,
            Package.archived_at.is_(None),
            Product.archived_at.is_(None),
            PackageVersion.status == PackageStatus.PUBLISHED,
        )
        .order_by(Package.id, PackageVersion.version_number.desc())
    )
    if product_ref is not None:
        query = query.where(Product.ref_id == product_ref)
    found: dict[int, tuple[Package, PackageVersion]] = {}  # newest first: the first one wins
    for package, version in session.execute(query).tuples():
        found.setdefault(package.id, (package, version))
    return list(found.values())


def product_shape(product: Product, plan_names: dict[str, str] | None = None) -> dict[str, Any]:
    settings = product.settings or {}
    downgrade = settings.get("downgradePlanId") or settings.get("downgrade_plan_id")
    return {
        "__typename": "Product",
        "id": product.ref_id,
        "refId": product.ref_id,
        "displayName": product.display_name,
        "description": product.description,
        "additionalMetaData": product.metadata_,
        "productSettings": {
            "__typename": "ProductSettings",
            "downgradePlan": package_ref_shape(downgrade, (plan_names or {}).get(downgrade), "Plan")
            if downgrade
            else None,
        },
    }


def package_entitlement_shape(row: PackageEntitlement) -> dict[str, Any]:
    feature = row.feature
    return {
        "__typename": "PackageEntitlement",
        "featureId": feature.ref_id,
        "usageLimit": row.usage_limit,
        "hasUnlimitedUsage": row.has_unlimited_usage,
        "hasSoftLimit": row.has_soft_limit,
        "resetPeriod": row.reset_period.value if row.reset_period else None,
        "hiddenFromWidgets": list(row.hidden_from_widgets or []),
        "isCustom": row.is_custom,
        "isGranted": row.is_granted,
        "displayNameOverride": row.display_name_override,
        "enumValues": row.enum_values,
        "description": row.description,
        "feature": {
            "__typename": "EntitlementFeature",
            "id": feature.ref_id,
            "refId": feature.ref_id,
            "featureType": feature.feature_type.value,
            "meterType": METER_TYPES.get(feature.meter_type.value, "None"),
            "featureUnits": feature.units,
            "featureUnitsPlural": feature.units_plural,
            "displayName": feature.display_name,
            "description": feature.description,
            "additionalMetaData": feature.metadata_,
        },
    }


def _entitlements(version: PackageVersion) -> list[dict[str, Any]]:
    rows = sorted(version.entitlements, key=lambda e: (e.order is None, e.order or 0, e.id))
    return [package_entitlement_shape(row) for row in rows]


def addon_shape(version: PackageVersion, package: Package) -> dict[str, Any]:
    return {
        "__typename": "Addon",
        "id": package.ref_id,
        "refId": package.ref_id,
        "billingId": version.billing_id,
        "displayName": version.display_name,
        "description": version.description,
        "additionalMetaData": version.metadata_,
        "entitlements": _entitlements(version),
        "prices": prices_shape(version, overage=False),
        "overagePrices": [],
        "pricingType": version.pricing_type.value if version.pricing_type else None,
        "maxQuantity": version.max_quantity,
        "dependencies": [],
        "hiddenFromWidgets": [],
    }


def plan_shape(
    version: PackageVersion,
    package: Package,
    parent: tuple[Package, PackageVersion] | None,
    addons: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    trial = version.default_trial_config
    return {
        "__typename": "Plan",
        "id": package.ref_id,
        "refId": package.ref_id,
        "displayName": version.display_name,
        "description": version.description,
        "billingId": version.billing_id,
        "versionNumber": version.version_number,
        "additionalMetaData": version.metadata_,
        "hiddenFromWidgets": [],
        "product": product_shape(package.product),
        "basePlan": package_ref_shape(parent[0].ref_id, parent[1].display_name, "Plan")
        if parent
        else None,
        "entitlements": _entitlements(version),
        "inheritedEntitlements": _entitlements(parent[1]) if parent else [],
        "compatibleAddons": [
            addons[ref] for ref in version.compatible_addon_ids or [] if ref in addons
        ],
        "compatiblePackageGroups": [],
        "prices": prices_shape(version, overage=False),
        "overagePrices": prices_shape(version, overage=True),
        "pricingType": version.pricing_type.value if version.pricing_type else None,
        "defaultTrialConfig": {
            "__typename": "DefaultTrialConfig",
            "duration": trial.get("duration"),
            "units": trial.get("units"),
            "budget": None,
            "trialEndBehavior": trial.get("trialEndBehavior"),
        }
        if trial
        else None,
    }


def plan_of_version(session: Session, version_id: int) -> dict[str, Any]:
    """The `Plan` of one plan version (the one a subscription holds, published or not)."""
    version = session.scalars(
        select(PackageVersion)
        .options(
            selectinload(PackageVersion.package).selectinload(Package.product),
            selectinload(PackageVersion.entitlements).selectinload(PackageEntitlement.feature),
        )
        .where(PackageVersion.id == version_id)
    ).one()
    parent = None
    if version.parent_package_id is not None:
        parent_package = session.get_one(Package, version.parent_package_id)
        parent_version = latest_published(session, package_id=parent_package.id)
        if parent_version is not None:
            parent = (parent_package, parent_version)
    return plan_shape(version, version.package, parent, addons={})


def prices_shape(version: PackageVersion, *, overage: bool) -> list[dict[str, Any]]:
    """The package's prices as the widgets read them: one per model and billing period."""
    return [
        {
            "__typename": "Price",
            "billingModel": row.billing_model,
            "billingPeriod": row.billing_period,
            "billingCadence": row.billing_cadence,
            "billingId": row.billing_id,
            "billingCountryCode": None,
            "blockSize": row.block_size,
            "creditRate": None,
            "maxUnitQuantity": row.max_unit_quantity,
            "minUnitQuantity": row.min_unit_quantity,
            "tiersMode": row.tiers_mode,
            "feature": {"__typename": "Feature", "id": row.feature_id, "refId": row.feature_id}
            if row.feature_id
            else None,
            "price": _money(row.price.amount, row.price.currency) if row.price else None,
            "tiers": [
                {
                    "__typename": "PriceTier",
                    "upTo": tier.up_to,
                    "unitPrice": _money(tier.unit_price.amount, tier.unit_price.currency)
                    if tier.unit_price
                    else None,
                    "flatPrice": _money(tier.flat_price.amount, tier.flat_price.currency)
                    if tier.flat_price
                    else None,
                }
                for tier in row.tiers
            ]
            if row.tiers
            else None,
        }
        for row in charges.charge_rows(version, overage=overage)
    ]


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"__typename": "Money", "amount": wire_price(amount), "currency": currency.upper()}

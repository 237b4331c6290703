"""What a subscription may hold: published plans and compatible add-ons, in allowed numbers."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.enums import PackageKind, PackageStatus, PricingType
from tollgate.catalog.models import Package, PackageVersion, Product
from tollgate.catalog.packages import versions
from tollgate.errors import InvalidValue
from tollgate.subscriptions.schemas import AddonQuantity


@dataclass(frozen=True, slots=True)
class Offered:
    package: Package
    version: PackageVersion


@dataclass(frozen=True, slots=True)
class OfferedAddon:
    package: Package
    version: PackageVersion
    quantity: int


def plan(session: Session, *, environment_id: int, ref_id: str, field: str = "planId") -> Offered:
    """The latest published version of a live plan."""
    return _published(session, environment_id, PackageKind.PLAN, ref_id, field)


def check_plan(session: Session, *, environment_id: int, ref_id: str, field: str) -> None:
    """What `plan` refuses, refused the same way, in one small read."""
    published = (
        select(PackageVersion.id)
        .where(
            PackageVersion.package_id == Package.id,
            PackageVersion.status == PackageStatus.PUBLISHED,
        )
        .exists()
    )
    found = session.execute(
        select(Package.archived_at, published).where(
            Package.environment_id == environment_id,
            Package.ref_id == ref_id,
            Package.kind == PackageKind.PLAN,
        )
    ).one_or_none()
    if found is None:
        raise _unoffered(PackageKind.PLAN, ref_id, field, _MISSING)
    if found[0] is not None:
        raise _unoffered(PackageKind.PLAN, ref_id, field, _ARCHIVED)
    if not found[1]:
        raise _unoffered(PackageKind.PLAN, ref_id, field, _UNPUBLISHED)


def _published(
    session: Session, environment_id: int, kind: PackageKind, ref_id: str, field: str
) -> Offered:
    package = session.scalar(
        select(Package)
        .options(selectinload(Package.product))
        .where(
            Package.environment_id == environment_id,
            Package.ref_id == ref_id,
            Package.kind == kind,
        )
    )
    if package is None:
        raise _unoffered(kind, ref_id, field, _MISSING)
    if package.archived_at is not None:
        raise _unoffered(kind, ref_id, field, _ARCHIVED)
    version = versions.latest_published(session, package_id=package.id)
    if version is None:
        raise _unoffered(kind, ref_id, field, _UNPUBLISHED)
    return Offered(package, version)


_MISSING = "does not exist"
_ARCHIVED = "is archived and offered to no one"
_UNPUBLISHED = "is not published yet"


def _unoffered(kind: PackageKind, ref_id: str, field: str, why: str) -> InvalidValue:
    return InvalidValue(f"{versions.noun(kind)} '{ref_id}' {why}", field=field)


def addons(
    session: Session, *, plan: Offered, requested: list[AddonQuantity], field: str = "addons"
) -> list[OfferedAddon]:
    """Each add-on published, compatible with the plan, within its max quantity, and with
    the add-ons it depends on present."""
    ids = [addon.id for addon in requested]
    if len(set(ids)) != len(ids):
        raise InvalidValue("list each add-on once, with its quantity", field=field)
    compatible = set(plan.version.compatible_addon_ids or [])
    offered = []
    for index, addon in enumerate(requested):
        where = f"{field}.{index}"
        found = _published(
            session, plan.package.environment_id, PackageKind.ADDON, addon.id, f"{where}.id"
        )
        if addon.id not in compatible:
            raise InvalidValue(
                f"add-on '{addon.id}' is not compatible with plan '{plan.package.ref_id}'",
                field=f"{where}.id",
            )
        maximum = found.version.max_quantity
        if maximum is not None and addon.quantity > maximum:
            raise InvalidValue(
                f"add-on '{addon.id}' allows at most {maximum}, not {addon.quantity}",
                field=f"{where}.quantity",
            )
        offered.append(OfferedAddon(found.package, found.version, addon.quantity))
    for index, item in enumerate(offered):
        missing = [d for d in item.version.dependencies or [] if d not in ids]
        if missing:
            raise InvalidValue(
                f"add-on '{item.package.ref_id}' needs add-on(s) {', '.join(missing)} as well",
                field=f"{field}.{index}.id",
            )
    return offered


def pricing_type(version: PackageVersion) -> PricingType:
    return version.pricing_type or PricingType.FREE


def is_downgrade(session: Session, *, current: PackageVersion, new: PackageVersion) -> bool:
    """Without prices to compare, a move is a downgrade when the new plan is one the current
    plan extends (its parent, grandparent...), or when it leaves a paid plan for a free one."""
    if current.package_id == new.package_id:
        return False
    if pricing_type(new) is PricingType.FREE and pricing_type(current) is not PricingType.FREE:
        return True
    return new.package_id in _ancestors(session, current)


def _ancestors(session: Session, version: PackageVersion) -> set[int]:
    found: set[int] = set()
    parent_id = version.parent_package_id
    while parent_id is not None and parent_id not in found:
        found.add(parent_id)
        parent = versions.latest_published(session, package_id=parent_id)
        parent_id = parent.parent_package_id if parent else None
    return found


def downgrade_plan(session: Session, product: Product) -> Offered | None:
    """The plan customers fall back to when a subscription of `product` ends, if any."""
    settings = product.settings or {}
    plan_ref = settings.get("downgradePlanId")
    if settings.get("subscriptionEndSetup") != "DOWNGRADE_TO_FREE" or not plan_ref:
        return None
    package = session.scalar(
        select(Package).where(
            Package.product_id == product.id,
            Package.ref_id == plan_ref,
            Package.archived_at.is_(None),
        )
    )
    if package is None:
        return None
    version = versions.latest_published(session, package_id=package.id)
    return Offered(package, version) if version is not None else None


def latest_version(session: Session, version: PackageVersion) -> PackageVersion:
    """The newest published version of the package `version` belongs to."""
    latest = versions.latest_published(session, package_id=version.package_id)
    return latest if latest is not None else version

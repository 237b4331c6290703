"""Consistency rules between packages: parents, add-ons, dependencies, references."""

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.catalog.enums import FeatureStatus, PackageKind
from tollgate.catalog.errors import Archived, NotPublished, StillInUse
from tollgate.catalog.models import Package, PackageVersion, Product
from tollgate.catalog.packages import versions
from tollgate.catalog.packages.versions import noun
from tollgate.errors import Conflict, InvalidValue

MAX_PARENT_DEPTH = 20


def _find(session: Session, *, environment_id: int, ref_id: str) -> Package | None:
    return session.scalar(
        select(Package).where(Package.environment_id == environment_id, Package.ref_id == ref_id)
    )


def parent_plan(session: Session, *, package: Package, parent_ref_id: str) -> Package:
    field = "parentPlanId"
    if parent_ref_id == package.ref_id:
        raise InvalidValue("a plan cannot extend itself", field=field)
    parent = _find(session, environment_id=package.environment_id, ref_id=parent_ref_id)
    if parent is None or parent.kind is not PackageKind.PLAN:
        raise InvalidValue(f"parent plan '{parent_ref_id}' does not exist", field=field)
    if parent.product_id != package.product_id:
        raise InvalidValue(f"parent plan '{parent_ref_id}' belongs to another product", field=field)
    if parent.archived_at is not None:
        raise InvalidValue(f"parent plan '{parent_ref_id}' is archived", field=field)
    _check_no_cycle(session, package=package, parent=parent)
    return parent


def _check_no_cycle(session: Session, *, package: Package, parent: Package) -> None:
    chain = _parent_chain(session, parent, version_of=versions.newest)
    if any(ancestor.id == package.id for ancestor in chain):
        raise InvalidValue(
            f"plan '{parent.ref_id}' already extends '{package.ref_id}'; "
            "parents cannot form a cycle",
            field="parentPlanId",
        )
    if len(chain) == MAX_PARENT_DEPTH:
        raise InvalidValue(
            f"plans extend each other more than {MAX_PARENT_DEPTH} deep", field="parentPlanId"
        )


def _check_published_ancestry(session: Session, *, package: Package, parent: Package) -> None:
    """Published parents must not lead back to `package`: the live chain must end."""
    chain = _parent_chain(session, parent, version_of=versions.latest_published)
    if any(ancestor.id == package.id for ancestor in chain):
        raise Conflict(
            f"publishing would make '{package.ref_id}' its own ancestor through "
            f"'{parent.ref_id}'; change one of their parents first",
            field="parentPlanId",
        )
    if len(chain) == MAX_PARENT_DEPTH:
        raise Conflict(f"published plans extend each other more than {MAX_PARENT_DEPTH} deep")


def _parent_chain(
    session: Session,
    start: Package,
    *,
    version_of: Callable[..., PackageVersion | None],
) -> list[Package]:
    """`start` and its ancestors, following the parent that `version_of` picks in each
    package; at most MAX_PARENT_DEPTH of them, so a chain of that length did not end."""
    chain: list[Package] = []
    current: Package | None = start
    while current is not None and len(chain) < MAX_PARENT_DEPTH:
        chain.append(current)
        version = version_of(session, package_id=current.id)
        parent_id = version.parent_package_id if version else None
        current = session.get(Package, parent_id) if parent_id else None
    return chain


def sibling_addon(session: Session, *, package: Package, ref_id: str, field: str) -> Package:
    addon = _find(session, environment_id=package.environment_id, ref_id=ref_id)
    if addon is None or addon.kind is not PackageKind.ADDON:
        raise InvalidValue(f"add-on '{ref_id}' does not exist", field=field)
    if addon.product_id != package.product_id:
        raise InvalidValue(f"add-on '{ref_id}' belongs to another product", field=field)
    if addon.archived_at is not None:
        raise InvalidValue(f"add-on '{ref_id}' is archived", field=field)
    return addon


def _require_published(session: Session, package: Package, *, what: str, field: str) -> None:
    if package.archived_at is not None:
        raise Archived(what, package.ref_id, field=field)
    if versions.latest_published(session, package_id=package.id) is None:
        raise NotPublished(what, package.ref_id, field=field)


def publishable(session: Session, *, package: Package, version: PackageVersion) -> None:
    """Everything a version names must be live before customers can buy it."""
    product = session.get(Product, package.product_id)
    if product is not None and product.archived_at is not None:
        raise Archived("product", product.ref_id, field="productId")
    if version.parent_package_id is not None:
        parent = session.get(Package, version.parent_package_id)
        assert parent is not None
        _require_published(session, parent, what="parent plan", field="parentPlanId")
        _check_published_ancestry(session, package=package, parent=parent)
    for field, ids in (
        ("compatibleAddonIds", version.compatible_addon_ids or []),
        ("dependencies", version.dependencies or []),
    ):
        for ref_id in ids:
            addon = sibling_addon(session, package=package, ref_id=ref_id, field=field)
            _require_published(session, addon, what="add-on", field=field)
    for entitlement in version.entitlements:
        if entitlement.feature.status is FeatureStatus.SUSPENDED:
            raise Conflict(
                f"feature '{entitlement.feature.ref_id}' is archived; remove its entitlement "
                "or unarchive it",
                field="entitlements",
            )


def not_referenced(
    session: Session, *, package: Package, action: str, include_archived: bool = False
) -> None:
    """Refuse with a 409 that names whoever still points at `package`.

    Archived packages count too when `package` is about to be deleted: their versions
    still name it."""
    users = _referrers(session, package, include_archived=include_archived)
    if users:
        raise StillInUse(
            f"cannot {action}: {noun(package.kind)} '{package.ref_id}' is used by "
            f"{', '.join(users[:10])}"
        )


def _referrers(session: Session, package: Package, *, include_archived: bool) -> list[str]:
    users: list[str] = []
    query = (
        select(Package, PackageVersion)
        .join(PackageVersion, PackageVersion.package_id == Package.id)
        .where(Package.environment_id == package.environment_id, Package.id != package.id)
        .order_by(Package.id, PackageVersion.version_number)
    )
    if not include_archived:
        query = query.where(Package.archived_at.is_(None))
    others = session.execute(query)
    for other, version in others:
        label = f"{noun(other.kind)} '{other.ref_id}' (version {version.version_number})"
        if version.parent_package_id == package.id:
            users.append(f"{label} as its parent")
        if package.ref_id in (version.compatible_addon_ids or []):
            users.append(f"{label} as a compatible add-on")
        if package.ref_id in (version.dependencies or []):
            users.append(f"{label} as a dependency")
    if package.kind is PackageKind.PLAN:
        product = session.get(Product, package.product_id)
        settings = product.settings if product else {}
        for key in ("downgradePlanId", "subscriptionStartPlanId"):
            if settings.get(key) == package.ref_id and product is not None:
                users.append(f"product '{product.ref_id}' as its {key}")
    return users

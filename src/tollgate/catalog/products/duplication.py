"""Duplicating a product with its plans and add-ons under new ids."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.announcements import Change
from tollgate.catalog.models import Package, PackageEntitlement, PackageVersion, Product
from tollgate.catalog.packages.service import announce_package, copy_version
from tollgate.catalog.products.schemas import ProductDuplicate
from tollgate.catalog.products.service import announce_product, get_product
from tollgate.db.errors import flush_unique
from tollgate.errors import InvalidValue

MAX_ID_LENGTH = 255


def copied_id(ref_id: str, target_product_id: str) -> str:
    """Plans and add-ons of the copy are named `<their id>-<new product id>`."""
    copied = f"{ref_id}-{target_product_id}"
    if len(copied) > MAX_ID_LENGTH:
        raise InvalidValue(
            f"the copy of '{ref_id}' would be named '{copied[:40]}...', longer than "
            f"{MAX_ID_LENGTH} characters; choose a shorter targetId",
            field="targetId",
        )
    return copied


def duplicate_product(
    session: Session,
    *,
    environment_id: int,
    ref_id: str,
    data: ProductDuplicate,
    now: datetime,
) -> Product:
    """Copy the product, and every plan and add-on that is not archived, version by version.

    Published versions stay published and drafts stay drafts, so the copy sells exactly
    what the original sells; references between its packages point inside the copy."""
    source = get_product(session, environment_id=environment_id, ref_id=ref_id)
    target = Product(
        environment_id=environment_id,
        ref_id=data.target_id,
        display_name=data.display_name or source.display_name,
        description=data.description
        if "description" in data.model_fields_set
        else source.description,
        metadata_=dict(source.metadata_),
        is_multiple_subscriptions=source.is_multiple_subscriptions,
        usage_reset_cutoff_rule=source.usage_reset_cutoff_rule,
    )
    session.add(target)
    flush_unique(session, kind="product", ref_id=data.target_id)
    packages = list(
        session.scalars(
            select(Package)
            .where(Package.product_id == source.id, Package.archived_at.is_(None))
            .order_by(Package.id)
        )
    )
    new_ids = {package.id: copied_id(package.ref_id, data.target_id) for package in packages}
    copies = {
        package.id: _copy_package(session, package, target, new_ids[package.id], now)
        for package in packages
    }
    source_ref_ids = {package.ref_id for package in packages}
    for package in packages:
        _copy_versions(session, package, copies, source_ref_ids, data.target_id)
    target.settings = _remap_settings(source.settings or {}, data.target_id, source_ref_ids)
    session.flush()
    announce_product(session, target, Change.CREATED, now)
    for copy in copies.values():
        announce_package(session, copy, Change.CREATED, now)
    return target


def _copy_package(
    session: Session, package: Package, target: Product, new_ref_id: str, now: datetime
) -> Package:
    copy = Package(
        environment_id=package.environment_id,
        ref_id=new_ref_id,
        kind=package.kind,
        product_id=target.id,
        created_at=now,
    )
    session.add(copy)
    flush_unique(session, kind=package.kind.lower(), ref_id=new_ref_id)
    return copy


def _copy_versions(
    session: Session,
    package: Package,
    copies: dict[int, Package],
    copied_ref_ids: set[str],
    target_id: str,
) -> None:
    sources = session.scalars(
        select(PackageVersion)
        .options(selectinload(PackageVersion.entitlements).selectinload(PackageEntitlement.feature))
        .where(PackageVersion.package_id == package.id)
        .order_by(PackageVersion.version_number)
    )
    for source in sources:
        version = copy_version(
            source, package_id=copies[package.id].id, version_number=source.version_number
        )
        version.status = source.status
        version.published_at = source.published_at
        if source.parent_package_id in copies:
            version.parent_package_id = copies[source.parent_package_id].id
        version.compatible_addon_ids = _remap(
            source.compatible_addon_ids, copied_ref_ids, target_id
        )
        version.dependencies = _remap(source.dependencies, copied_ref_ids, target_id)
        session.add(version)


def _remap(ref_ids: list[str] | None, copied: set[str], target_id: str) -> list[str] | None:
    if ref_ids is None:
        return None
    return [copied_id(ref_id, target_id) if ref_id in copied else ref_id for ref_id in ref_ids]


def _remap_settings(
    settings: dict[str, object], target_id: str, copied: set[str]
) -> dict[str, object]:
    remapped = dict(settings)
    for key in ("downgradePlanId", "subscriptionStartPlanId"):
        value = remapped.get(key)
        if isinstance(value, str) and value in copied:
            remapped[key] = copied_id(value, target_id)
    return remapped

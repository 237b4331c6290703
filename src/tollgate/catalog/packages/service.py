"""The lifecycle of plans and add-ons: create, edit the draft, publish, archive."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.announcements import Change, announce, package_kind
from tollgate.catalog.enums import MigrationType, PackageKind, PackageStatus
from tollgate.catalog.errors import Archived
from tollgate.catalog.feed import record_catalog_change
from tollgate.catalog.models import Feature, Package, PackageEntitlement, PackageVersion, Product
from tollgate.catalog.packages import charges, checks, versions
from tollgate.catalog.packages.charges import Charges
from tollgate.catalog.packages.schemas import (
    AddonCreate,
    AddonRead,
    AddonUpdate,
    EntitlementRef,
    PackageCreate,
    PackageUpdate,
    PlanCreate,
    PlanRead,
    PlanUpdate,
    RemovedDraft,
    TrialConfig,
)
from tollgate.catalog.packages.versions import noun
from tollgate.db.errors import flush_unique
from tollgate.errors import InvalidValue, NotFound
from tollgate.kit.filters import CreatedAtRange, range_conditions
from tollgate.kit.pagination import Cursors, PageRequest, paginate

# Names, descriptions and metadata are not part of what a customer buys, so they may be
# edited on a published version; everything else (the billing id included: it ties the
# version to a price in the payment provider) goes through a draft.
_COSMETIC_FIELDS = {"display_name", "description", "metadata"}


def create_package(
    session: Session,
    *,
    environment_id: int,
    kind: PackageKind,
    data: PackageCreate,
    now: datetime,
) -> PackageVersion:
    product = _live_product(session, environment_id=environment_id, ref_id=data.product_id)
    if data.status is PackageStatus.ARCHIVED:
        raise InvalidValue(f"{noun(kind)}s cannot be created archived", field="status")
    package = Package(
        environment_id=environment_id,
        ref_id=data.id,
        kind=kind,
        product_id=product.id,
        created_at=now,
    )
    session.add(package)
    flush_unique(session, kind=noun(kind), ref_id=data.id)
    version = PackageVersion(
        package_id=package.id,
        version_number=1,
        status=PackageStatus.DRAFT,
        display_name=data.display_name,
        description=data.description,
        billing_id=data.billing_id,
        metadata_=data.metadata or {},
        pricing_type=data.pricing_type,
        compatible_addon_ids=[] if kind is PackageKind.PLAN else None,
        dependencies=[] if kind is PackageKind.ADDON else None,
    )
    if isinstance(data, PlanCreate):
        _set_trial(version, data.default_trial_config)
        if data.parent_plan_id is not None:
            version.parent_package_id = checks.parent_plan(
                session, package=package, parent_ref_id=data.parent_plan_id
            ).id
    if isinstance(data, AddonCreate):
        version.max_quantity = data.max_quantity
    session.add(version)
    session.flush()
    announce_package(session, package, Change.CREATED, now)
    if data.status is PackageStatus.PUBLISHED:
        publish_package(
            session,
            environment_id=environment_id,
            kind=kind,
            ref_id=data.id,
            migration_type=MigrationType.NEW_CUSTOMERS,
            now=now,
        )
    return version


def update_package(
    session: Session,
    *,
    environment_id: int,
    kind: PackageKind,
    ref_id: str,
    data: PackageUpdate,
    now: datetime,
) -> PackageVersion:
    package = versions.get_package(
        session, environment_id=environment_id, kind=kind, ref_id=ref_id, lock=True
    )
    given = data.model_fields_set
    if not given:
        return versions.newest(session, package_id=package.id)
    if isinstance(data, AddonUpdate) and "status" in given:
        raise InvalidValue(
            "change an add-on's status with POST /api/v1/addons/{id}/publish or /archive",
            field="status",
        )
    if given <= _COSMETIC_FIELDS:
        version = versions.draft_of(session, package_id=package.id) or versions.newest(
            session, package_id=package.id
        )
        if package.archived_at is not None:
            raise Archived(noun(kind), ref_id)
    else:
        version = versions.require_draft(session, package)
    _apply_cosmetic(version, data, given)
    if data.charges is not None:
        _apply_charges(session, package, version, data.charges)
    if isinstance(data, PlanUpdate):
        _apply_plan_fields(session, package, version, data, given)
    if isinstance(data, AddonUpdate):
        _apply_addon_fields(session, package, version, data, given)
    version.updated_at = now
    if version.status is not PackageStatus.DRAFT:  # a draft's edits wait for its publish
        announce_package(session, package, Change.UPDATED, now)
    return version


def create_draft(
    session: Session, *, environment_id: int, kind: PackageKind, ref_id: str
) -> PackageVersion:
    """Open a draft copied from the latest published version (idempotent)."""
    package = versions.get_package(
        session, environment_id=environment_id, kind=kind, ref_id=ref_id, lock=True
    )
    if package.archived_at is not None:
        raise Archived(noun(kind), ref_id)
    existing = versions.draft_of(session, package_id=package.id)
    if existing is not None:
        return existing
    source = versions.newest(session, package_id=package.id)
    draft = copy_version(source, package_id=package.id, version_number=source.version_number + 1)
    session.add(draft)
    session.flush()
    return draft


def copy_version(source: PackageVersion, *, package_id: int, version_number: int) -> PackageVersion:
    """A new DRAFT with the same contents and entitlements as `source`."""
    copied_columns = (
        "display_name",
        "description",
        "billing_id",
        "metadata_",
        "pricing_type",
        "charges",
        "parent_package_id",
        "default_trial_config",
        "compatible_addon_ids",
        "max_quantity",
        "dependencies",
    )
    version = PackageVersion(
        package_id=package_id,
        version_number=version_number,
        status=PackageStatus.DRAFT,
        **{column: getattr(source, column) for column in copied_columns},
    )
    version.entitlements = [copy_entitlement(entitlement) for entitlement in source.entitlements]
    return version


def copy_entitlement(source: PackageEntitlement) -> PackageEntitlement:
    skipped = {"id", "package_version_id", "created_at", "updated_at"}
    columns = [c.key for c in PackageEntitlement.__table__.columns if c.key not in skipped]
    return PackageEntitlement(**{column: getattr(source, column) for column in columns})


def remove_draft(
    session: Session, *, environment_id: int, kind: PackageKind, ref_id: str, now: datetime
) -> RemovedDraft:
    """Drop the draft; a package that was never published goes with it."""
    package = versions.get_package(
        session, environment_id=environment_id, kind=kind, ref_id=ref_id, lock=True
    )
    draft = versions.draft_of(session, package_id=package.id)
    if draft is None:
        raise NotFound(f"draft of {noun(kind)}", ref_id)
    if versions.latest_published(session, package_id=package.id) is None:
        checks.not_referenced(
            session, package=package, action="remove its only draft", include_archived=True
        )
        announce_package(session, package, Change.DELETED, now)
        session.delete(draft)
        session.flush()
        session.delete(package)
    else:
        session.delete(draft)
    session.flush()
    return RemovedDraft(id=ref_id)


def publish_package(
    session: Session,
    *,
    environment_id: int,
    kind: PackageKind,
    ref_id: str,
    migration_type: MigrationType,
    now: datetime,
) -> Package:
    """Turn the draft into the newest immutable version. Moving subscribers to it
    (ALL_CUSTOMERS) is the subscriptions domain's part of a publish: the route calls it."""
    package = versions.get_package(
        session, environment_id=environment_id, kind=kind, ref_id=ref_id, lock=True
    )
    draft = versions.require_draft(session, package)
    checks.publishable(session, package=package, version=draft)
    draft.status = PackageStatus.PUBLISHED
    # Stamped under the package's lock, so it follows every edit of the draft: `now` was
    # read before waiting for the lock, and an edit that held it may carry a later one.
    # Every edit stamps the draft's `updated_at`, so the later of the two follows them all.
    draft.published_at = max(now, draft.updated_at)
    draft.migration_type = migration_type
    session.flush()
    # A plan includes its parent's latest published version, so a publish can change what
    # customers of other plans hold: every snapshot of the environment is recomputed.
    record_catalog_change(session, environment_id)
    announce_package(session, package, Change.UPDATED, now)
    return package


def archive_package(
    session: Session, *, environment_id: int, kind: PackageKind, ref_id: str, now: datetime
) -> PackageVersion:
    package = versions.get_package(
        session, environment_id=environment_id, kind=kind, ref_id=ref_id, lock=True
    )
    if package.archived_at is None:
        checks.not_referenced(session, package=package, action="archive it")
        package.archived_at = now
        announce_package(session, package, Change.DELETED, now)
    return versions.newest(session, package_id=package.id)


def list_packages(
    session: Session,
    *,
    environment_id: int,
    kind: PackageKind,
    page: PageRequest,
    created_at: CreatedAtRange,
    product_ref_id: str | None = None,
    statuses: list[PackageStatus] | None = None,
) -> tuple[Sequence[Package], Cursors]:
    query = (
        select(Package)
        .options(selectinload(Package.product))
        .where(Package.environment_id == environment_id, Package.kind == kind)
        .where(
            *range_conditions(Package.created_at, created_at),
        )
    )
    if product_ref_id is not None:
        query = query.join(Product).where(Product.ref_id == product_ref_id)
    if statuses:
        query = query.where(_status_condition(set(statuses)))
    return paginate(session, query, Package.id, page)


def _status_condition(statuses: set[PackageStatus]) -> Any:
    def has_version(status: PackageStatus) -> Any:
        return exists().where(
            PackageVersion.package_id == Package.id, PackageVersion.status == status
        )

    conditions = []
    if PackageStatus.ARCHIVED in statuses:
        conditions.append(Package.archived_at.is_not(None))
    for status in statuses - {PackageStatus.ARCHIVED}:
        conditions.append(Package.archived_at.is_(None) & has_version(status))
    return or_(*conditions)


def to_read(session: Session, package: Package) -> PlanRead | AddonRead:
    """The package as reads present it: its draft if it has one, else its latest version."""
    version = versions.newest(session, package_id=package.id)
    latest = versions.latest_version_numbers(session, [package.id]).get(package.id)
    common: dict[str, Any] = {
        "id": package.ref_id,
        "display_name": version.display_name,
        "description": version.description,
        "billing_id": version.billing_id,
        "metadata": version.metadata_,
        "pricing_type": version.pricing_type,
        "product_id": package.product.ref_id,
        "status": PackageStatus.ARCHIVED if package.archived_at else version.status,
        "version_number": version.version_number,
        "is_latest": version.status is PackageStatus.PUBLISHED and version.version_number == latest,
        "entitlements": [EntitlementRef(id=e.feature.ref_id) for e in version.entitlements],
        "created_at": package.created_at,
        "updated_at": version.updated_at,
    }
    if package.kind is PackageKind.PLAN:
        return PlanRead(
            **common,
            parent_plan_id=_ref_of(session, version.parent_package_id),
            default_trial_config=(
                TrialConfig.model_validate(version.default_trial_config)
                if version.default_trial_config
                else None
            ),
            compatible_addon_ids=version.compatible_addon_ids or [],
        )
    return AddonRead(
        **common, max_quantity=version.max_quantity, dependencies=version.dependencies or []
    )


def _ref_of(session: Session, package_id: int | None) -> str | None:
    if package_id is None:
        return None
    return session.scalar(select(Package.ref_id).where(Package.id == package_id))


def _live_product(session: Session, *, environment_id: int, ref_id: str) -> Product:
    # Locked so the product cannot be archived while a package is added to it.
    product = session.scalar(
        select(Product)
        .where(Product.environment_id == environment_id, Product.ref_id == ref_id)
        .with_for_update()
    )
    if product is None:
        raise InvalidValue(f"product '{ref_id}' does not exist", field="productId")
    if product.archived_at is not None:
        raise InvalidValue(f"product '{ref_id}' is archived", field="productId")
    return product


def _set_trial(version: PackageVersion, trial: TrialConfig | None) -> None:
    version.default_trial_config = trial.model_dump(by_alias=True) if trial else None


def _apply_cosmetic(version: PackageVersion, data: PackageUpdate, given: set[str]) -> None:
    if "display_name" in given:
        if data.display_name is None:
            raise InvalidValue("'displayName' cannot be null", field="displayName")
        version.display_name = data.display_name
    if "description" in given:
        version.description = data.description
    if "metadata" in given:
        version.metadata_ = data.metadata or {}
    if "billing_id" in given:
        version.billing_id = data.billing_id


def _apply_charges(
    session: Session, package: Package, version: PackageVersion, data: Charges
) -> None:
    named = charges.feature_ids(data)
    features = {
        feature.ref_id: feature
        for feature in session.scalars(
            select(Feature).where(
                Feature.environment_id == package.environment_id,
                Feature.ref_id.in_(named),
            )
        )
    }
    charges.apply(version, data, features)


def _apply_plan_fields(
    session: Session, package: Package, version: PackageVersion, data: PlanUpdate, given: set[str]
) -> None:
    if "default_trial_config" in given:
        _set_trial(version, data.default_trial_config)
    if "parent_plan_id" in given:
        version.parent_package_id = (
            checks.parent_plan(session, package=package, parent_ref_id=data.parent_plan_id).id
            if data.parent_plan_id is not None
            else None
        )
    if "compatible_addon_ids" in given:
        addon_ids = _unique(data.compatible_addon_ids or [], field="compatibleAddonIds")
        for addon_id in addon_ids:
            checks.sibling_addon(
                session, package=package, ref_id=addon_id, field="compatibleAddonIds"
            )
        version.compatible_addon_ids = addon_ids


def _apply_addon_fields(
    session: Session, package: Package, version: PackageVersion, data: AddonUpdate, given: set[str]
) -> None:
    if "max_quantity" in given:
        version.max_quantity = data.max_quantity
    if "dependencies" in given:
        dependency_ids = _unique(data.dependencies or [], field="dependencies")
        for addon_id in dependency_ids:
            if addon_id == package.ref_id:
                raise InvalidValue("an add-on cannot depend on itself", field="dependencies")
            checks.sibling_addon(session, package=package, ref_id=addon_id, field="dependencies")
        version.dependencies = dependency_ids


def _unique(ids: list[str], *, field: str) -> list[str]:
    if len(set(ids)) != len(ids):
        raise InvalidValue(f"'{field}' lists an id more than once", field=field)
    return ids


def announce_package(session: Session, package: Package, change: Change, now: datetime) -> None:
    """`plan.*` or `addon.*`, carrying the package as reads present it."""
    announce(
        session,
        environment_id=package.environment_id,
        kind=package_kind(package.kind),
        change=change,
        read=lambda: _read_loaded(session, package),
        now=now,
    )


def _read_loaded(session: Session, package: Package) -> PlanRead | AddonRead:
    # The package's product, not loaded on a package written in this transaction.
    session.scalars(
        select(Package).options(selectinload(Package.product)).where(Package.id == package.id)
    ).one()
    return to_read(session, package)

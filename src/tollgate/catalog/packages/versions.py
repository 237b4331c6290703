"""Finding packages and the versions that matter: the draft, the latest published."""

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tollgate.catalog.enums import PackageKind, PackageStatus
from tollgate.catalog.errors import Archived, DraftRequired
from tollgate.catalog.models import Package, PackageEntitlement, PackageVersion
from tollgate.db.lookup import get_by_ref


def noun(kind: PackageKind) -> str:
    return "plan" if kind is PackageKind.PLAN else "add-on"


def path_segment(kind: PackageKind) -> str:
    return "plans" if kind is PackageKind.PLAN else "addons"


def get_package(
    session: Session, *, environment_id: int, kind: PackageKind, ref_id: str, lock: bool = False
) -> Package:
    """Find a package; `lock` holds its row until commit, so concurrent edits, publishes
    and archives of one package take turns (SELECT ... FOR UPDATE on PostgreSQL)."""
    return get_by_ref(
        session,
        Package,
        environment_id=environment_id,
        ref_id=ref_id,
        noun=noun(kind),
        lock=lock,
        where=[Package.kind == kind],
        options=[selectinload(Package.product)],
    )


def _newest_version(
    session: Session, package_id: int, status: PackageStatus | None = None
) -> PackageVersion | None:
    query = (
        select(PackageVersion)
        .options(selectinload(PackageVersion.entitlements).selectinload(PackageEntitlement.feature))
        .where(PackageVersion.package_id == package_id)
        .order_by(PackageVersion.version_number.desc())
        .limit(1)
    )
    if status is not None:
        query = query.where(PackageVersion.status == status)
    return session.scalar(query)


def latest_published(session: Session, *, package_id: int) -> PackageVersion | None:
    return _newest_version(session, package_id, PackageStatus.PUBLISHED)


def draft_of(session: Session, *, package_id: int) -> PackageVersion | None:
    return _newest_version(session, package_id, PackageStatus.DRAFT)


def newest(session: Session, *, package_id: int) -> PackageVersion:
    """The version a read presents: the draft if there is one, else the latest published."""
    version = _newest_version(session, package_id)
    assert version is not None, "a package always has a version"
    return version


def require_draft(session: Session, package: Package) -> PackageVersion:
    if package.archived_at is not None:
        raise Archived(noun(package.kind), package.ref_id)
    draft = draft_of(session, package_id=package.id)
    if draft is None:
        raise DraftRequired(
            noun(package.kind), package.ref_id, path_segment=path_segment(package.kind)
        )
    return draft


def latest_version_numbers(session: Session, package_ids: list[int]) -> dict[int, int]:
    """Newest published version number of each package, for `isLatest`."""
    rows = session.execute(
        select(PackageVersion.package_id, PackageVersion.version_number).where(
            PackageVersion.package_id.in_(package_ids),
            PackageVersion.status == PackageStatus.PUBLISHED,
        )
    )
    latest: dict[int, int] = {}
    for package_id, number in rows:
        latest[package_id] = max(number, latest.get(package_id, 0))
    return latest

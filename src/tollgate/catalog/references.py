"""Who uses what in the catalog, so nothing in use is archived or broken."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.catalog.enums import PackageKind
from tollgate.catalog.models import Package, PackageEntitlement, PackageVersion


@dataclass(frozen=True, slots=True)
class PackageRef:
    kind: PackageKind
    ref_id: str
    version_number: int

    def __str__(self) -> str:
        noun = "plan" if self.kind is PackageKind.PLAN else "add-on"
        return f"{noun} '{self.ref_id}' (version {self.version_number})"


def describe(references: list[PackageRef], *, at_most: int = 5) -> str:
    shown = ", ".join(str(reference) for reference in references[:at_most])
    hidden = len(references) - at_most
    return shown + (f" and {hidden} more" if hidden > 0 else "")


def packages_using_feature(session: Session, *, feature_id: int) -> list[PackageRef]:
    """Versions of packages not archived whose entitlements name the feature."""
    rows = session.execute(
        select(Package.kind, Package.ref_id, PackageVersion.version_number)
        .join(PackageVersion, PackageVersion.package_id == Package.id)
        .join(PackageEntitlement, PackageEntitlement.package_version_id == PackageVersion.id)
        .where(PackageEntitlement.feature_id == feature_id, Package.archived_at.is_(None))
        .order_by(Package.id, PackageVersion.version_number)
    )
    return [PackageRef(PackageKind(kind), ref_id, number) for kind, ref_id, number in rows]


def enum_values_in_use(session: Session, *, feature_id: int) -> set[str]:
    values: set[str] = set()
    for enum_values in session.scalars(
        select(PackageEntitlement.enum_values).where(PackageEntitlement.feature_id == feature_id)
    ):
        values.update(enum_values or [])
    return values

"""Entitlements of a plan or add-on: what each feature grants. Edited on drafts only."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic.alias_generators import to_camel
from sqlalchemy.orm import Session

from tollgate.catalog.enums import (
    EntitlementBehavior,
    FeatureStatus,
    FeatureType,
    MeterType,
    PackageKind,
    ResetPeriod,
)
from tollgate.catalog.features.service import get_feature
from tollgate.catalog.models import Feature, PackageEntitlement, PackageVersion
from tollgate.catalog.packages import versions
from tollgate.catalog.packages.schemas import (
    EntitlementCreate,
    EntitlementFields,
    EntitlementRead,
    EntitlementUpdate,
    ResetAnchor,
)
from tollgate.catalog.packages.versions import noun
from tollgate.errors import Conflict, InvalidValue, NotFound, NotImplementedYet

_RESET_CONFIGURATIONS = {
    "monthly_reset_period_configuration": ResetPeriod.MONTH,
    "weekly_reset_period_configuration": ResetPeriod.WEEK,
    "yearly_reset_period_configuration": ResetPeriod.YEAR,
}
_CREDIT_FIELDS = ("amount", "cadence", "dependency_feature_id")


class EntitlementTerms(Protocol):
    """What a grant says about its feature: a package entitlement or a promotion."""

    usage_limit: int | None
    has_unlimited_usage: bool
    has_soft_limit: bool
    reset_period: ResetPeriod | None
    reset_period_configuration: dict[str, Any] | None
    enum_values: list[str] | None


@dataclass(frozen=True, slots=True)
class Located:
    version: PackageVersion
    kind: PackageKind
    ref_id: str


def _draft(session: Session, *, environment_id: int, kind: PackageKind, ref_id: str) -> Located:
    package = versions.get_package(
        session, environment_id=environment_id, kind=kind, ref_id=ref_id, lock=True
    )
    return Located(versions.require_draft(session, package), kind, ref_id)


def list_entitlements(
    session: Session, *, environment_id: int, kind: PackageKind, ref_id: str
) -> list[PackageEntitlement]:
    """Entitlements of the version reads present: the draft if any, else the latest."""
    package = versions.get_package(session, environment_id=environment_id, kind=kind, ref_id=ref_id)
    return list(versions.newest(session, package_id=package.id).entitlements)


def create_entitlements(
    session: Session,
    *,
    environment_id: int,
    kind: PackageKind,
    ref_id: str,
    items: list[EntitlementCreate],
    now: datetime,
) -> list[PackageEntitlement]:
    located = _draft(session, environment_id=environment_id, kind=kind, ref_id=ref_id)
    taken = {entitlement.feature.ref_id for entitlement in located.version.entitlements}
    created = []
    for index, item in enumerate(items):
        where = f"entitlements.{index}"
        _refuse_credit(item, where)
        if item.id in taken:
            raise Conflict(
                f"{noun(kind)} '{ref_id}' already has an entitlement to feature '{item.id}'; "
                "update it instead",
                field=f"{where}.id",
            )
        taken.add(item.id)
        feature = usable_feature(
            session, environment_id=environment_id, ref_id=item.id, field=f"{where}.id"
        )
        entitlement = PackageEntitlement(
            feature_id=feature.id,
            behavior=EntitlementBehavior.INCREMENT,
            has_unlimited_usage=False,
            has_soft_limit=False,
            is_granted=True,
            is_custom=False,
            hidden_from_widgets=[],
        )
        entitlement.feature = feature
        _apply(entitlement, item, item.model_fields_set)
        check_terms(entitlement, feature, where)
        located.version.entitlements.append(entitlement)
        created.append(entitlement)
        if feature.status is FeatureStatus.NEW:
            feature.status = FeatureStatus.ACTIVE
    located.version.updated_at = now
    session.flush()
    return created


def update_entitlement(
    session: Session,
    *,
    environment_id: int,
    kind: PackageKind,
    ref_id: str,
    feature_ref_id: str,
    data: EntitlementUpdate,
    now: datetime,
) -> PackageEntitlement:
    located = _draft(session, environment_id=environment_id, kind=kind, ref_id=ref_id)
    entitlement = _find(located, feature_ref_id)
    _refuse_credit(data, "body")
    given = set(data.model_fields_set)
    # Setting one of limit / unlimited clears the other, so a switch is a single call.
    if data.has_unlimited_usage and "usage_limit" not in given:
        entitlement.usage_limit = None
    if data.usage_limit is not None and "has_unlimited_usage" not in given:
        entitlement.has_unlimited_usage = False
    _apply(entitlement, data, given)
    check_terms(entitlement, entitlement.feature, "body")
    entitlement.updated_at = located.version.updated_at = now
    session.flush()
    return entitlement


def delete_entitlement(
    session: Session,
    *,
    environment_id: int,
    kind: PackageKind,
    ref_id: str,
    feature_ref_id: str,
    now: datetime,
) -> PackageEntitlement:
    located = _draft(session, environment_id=environment_id, kind=kind, ref_id=ref_id)
    entitlement = _find(located, feature_ref_id)
    located.version.entitlements.remove(entitlement)
    located.version.updated_at = now
    session.flush()
    return entitlement


def to_read(entitlement: PackageEntitlement) -> EntitlementRead:
    anchor = entitlement.reset_period_configuration
    return EntitlementRead(
        id=entitlement.feature.ref_id,
        behavior=entitlement.behavior,
        description=entitlement.description,
        display_name_override=entitlement.display_name_override,
        enum_values=entitlement.enum_values,
        has_soft_limit=entitlement.has_soft_limit,
        has_unlimited_usage=entitlement.has_unlimited_usage,
        hidden_from_widgets=entitlement.hidden_from_widgets,
        is_custom=entitlement.is_custom,
        is_granted=entitlement.is_granted,
        order=entitlement.order,
        reset_period=entitlement.reset_period,
        reset_period_configuration=ResetAnchor.model_validate(anchor) if anchor else None,
        usage_limit=entitlement.usage_limit,
        created_at=entitlement.created_at,
        updated_at=entitlement.updated_at,
    )


def _find(located: Located, feature_ref_id: str) -> PackageEntitlement:
    for entitlement in located.version.entitlements:
        if entitlement.feature.ref_id == feature_ref_id:
            return entitlement
    raise NotFound(
        f"entitlement of {noun(located.kind)} '{located.ref_id}' to feature", feature_ref_id
    )


def _refuse_credit(item: EntitlementFields, where: str) -> None:
    if item.type == "CREDIT":
        raise NotImplementedYet(f"{where}.type", "CREDIT entitlements need credits")
    for field in _CREDIT_FIELDS:
        if getattr(item, field) is not None:
            name = to_camel(field)
            raise InvalidValue(
                f"'{name}' applies to CREDIT entitlements only", field=f"{where}.{name}"
            )


def usable_feature(session: Session, *, environment_id: int, ref_id: str, field: str) -> Feature:
    """A feature that may be granted: it exists and is not archived (locked)."""
    try:
        feature = get_feature(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    except NotFound:
        raise InvalidValue(f"feature '{ref_id}' does not exist", field=field) from None
    if feature.status is FeatureStatus.SUSPENDED:
        raise InvalidValue(f"feature '{ref_id}' is archived", field=field)
    return feature


def _apply(entitlement: PackageEntitlement, data: EntitlementFields, given: set[str]) -> None:
    simple = (
        "behavior",
        "description",
        "display_name_override",
        "enum_values",
        "has_soft_limit",
        "has_unlimited_usage",
        "hidden_from_widgets",
        "is_custom",
        "is_granted",
        "order",
        "reset_period",
        "usage_limit",
    )
    not_nullable = {
        "behavior",
        "has_soft_limit",
        "has_unlimited_usage",
        "is_custom",
        "is_granted",
        "hidden_from_widgets",
    }
    for field in simple:
        if field not in given:
            continue
        value = getattr(data, field)
        if value is None and field in not_nullable:
            raise InvalidValue(f"'{to_camel(field)}' cannot be null", field=to_camel(field))
        setattr(entitlement, field, value)
    configuration = reset_configuration(data)
    if configuration is not None or "reset_period" in given:
        entitlement.reset_period_configuration = configuration


def reset_configuration(data: Any) -> dict[str, Any] | None:
    """The one reset anchor a request gives (monthly, weekly or yearly), as stored."""
    configurations = [field for field in _RESET_CONFIGURATIONS if getattr(data, field) is not None]
    if len(configurations) > 1:
        raise InvalidValue("give at most one reset period configuration", field=configurations[1])
    if not configurations:
        return None
    stored: dict[str, Any] = getattr(data, configurations[0]).model_dump(by_alias=True)
    stored["period"] = _RESET_CONFIGURATIONS[configurations[0]].value
    return stored


def check_terms(entitlement: EntitlementTerms, feature: Feature, where: str) -> None:
    """The entitlement must make sense for its feature's type and meter."""
    if feature.feature_type is FeatureType.BOOLEAN:
        _refuse_set(
            entitlement,
            feature,
            where,
            "usage_limit",
            "reset_period",
            "reset_period_configuration",
            "enum_values",
        )
        if entitlement.has_unlimited_usage or entitlement.has_soft_limit:
            raise InvalidValue(
                f"feature '{feature.ref_id}' is BOOLEAN; limits do not apply", field=where
            )
    elif feature.feature_type is FeatureType.ENUM:
        _refuse_set(
            entitlement, feature, where, "usage_limit", "reset_period", "reset_period_configuration"
        )
        _check_enum_values(entitlement, feature, where)
    else:
        _check_number(entitlement, feature, where)


def _refuse_set(entitlement: EntitlementTerms, feature: Feature, where: str, *fields: str) -> None:
    for field in fields:
        if getattr(entitlement, field) is not None:
            name = to_camel(field)
            raise InvalidValue(
                f"'{name}' does not apply to a {feature.feature_type} feature",
                field=f"{where}.{name}",
            )


def _check_enum_values(entitlement: EntitlementTerms, feature: Feature, where: str) -> None:
    allowed = {value["value"] for value in feature.enum_configuration or []}
    values = entitlement.enum_values or []
    if not values:
        raise InvalidValue(
            f"feature '{feature.ref_id}' is ENUM; give the granted enumValues",
            field=f"{where}.enumValues",
        )
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise InvalidValue(
            f"enumValues {', '.join(unknown)} are not in the enumConfiguration of "
            f"feature '{feature.ref_id}'",
            field=f"{where}.enumValues",
        )


def _check_number(entitlement: EntitlementTerms, feature: Feature, where: str) -> None:
    _refuse_set(entitlement, feature, where, "enum_values")
    if entitlement.has_unlimited_usage == (entitlement.usage_limit is not None):
        raise InvalidValue(
            f"feature '{feature.ref_id}' is NUMBER; give exactly one of usageLimit or "
            "hasUnlimitedUsage: true",
            field=f"{where}.usageLimit",
        )
    if entitlement.reset_period is not None and feature.meter_type is not MeterType.INCREMENTAL:
        raise InvalidValue(
            f"feature '{feature.ref_id}' is not INCREMENTAL; only counters reset",
            field=f"{where}.resetPeriod",
        )
    configuration = entitlement.reset_period_configuration
    if configuration is not None and configuration.get("period") != entitlement.reset_period:
        raise InvalidValue(
            f"a {configuration.get('period', '').lower()}ly reset configuration needs "
            f"resetPeriod {configuration.get('period')}",
            field=f"{where}.resetPeriod",
        )

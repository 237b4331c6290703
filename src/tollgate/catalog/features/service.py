"""The rules of features: shapes that make sense, and no archiving of what is in use."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.catalog import references
from tollgate.catalog.announcements import Change, announce
from tollgate.catalog.enums import FeatureStatus, FeatureType, MeterType
from tollgate.catalog.errors import StillInUse
from tollgate.catalog.features.schemas import (
    EnumValue,
    FeatureCreate,
    FeatureRead,
    FeatureUpdate,
    Meter,
    MeterCondition,
    UnitTransformation,
)
from tollgate.catalog.feed import record_catalog_change
from tollgate.catalog.models import Feature
from tollgate.db.errors import flush_unique
from tollgate.db.lookup import get_by_ref
from tollgate.errors import InvalidValue
from tollgate.kit.filters import CreatedAtRange, range_conditions
from tollgate.kit.pagination import Cursors, PageRequest, paginate

_VALUELESS_OPERATIONS = {"IS_NULL", "IS_NOT_NULL"}
_FIELDLESS_AGGREGATIONS = {"COUNT"}


def get_feature(
    session: Session, *, environment_id: int, ref_id: str, lock: bool = False
) -> Feature:
    """Find a feature; `lock` holds its row so archiving and granting it take turns."""
    return get_by_ref(
        session, Feature, environment_id=environment_id, ref_id=ref_id, noun="feature", lock=lock
    )


def list_features(
    session: Session,
    *,
    environment_id: int,
    page: PageRequest,
    created_at: CreatedAtRange,
    ref_id: str | None = None,
    feature_types: list[FeatureType] | None = None,
    meter_types: list[MeterType] | None = None,
    statuses: list[FeatureStatus] | None = None,
) -> tuple[Sequence[Feature], Cursors]:
    query = select(Feature).where(
        Feature.environment_id == environment_id,
        *range_conditions(Feature.created_at, created_at),
    )
    if ref_id is not None:
        query = query.where(Feature.ref_id == ref_id)
    if feature_types:
        query = query.where(Feature.feature_type.in_(feature_types))
    if meter_types:
        query = query.where(Feature.meter_type.in_(meter_types))
    if statuses:
        query = query.where(Feature.status.in_(statuses))
    return paginate(session, query, Feature.id, page)


def create_feature(
    session: Session, *, environment_id: int, data: FeatureCreate, now: datetime
) -> Feature:
    if data.feature_status is FeatureStatus.SUSPENDED:
        raise InvalidValue(
            "a feature cannot be created SUSPENDED; create it, then archive it",
            field="featureStatus",
        )
    _check_shape(
        feature_type=data.feature_type,
        meter_type=data.meter_type,
        enum_configuration=data.enum_configuration,
        meter=data.meter,
        unit_transformation=data.unit_transformation,
    )
    feature = Feature(
        environment_id=environment_id,
        ref_id=data.id,
        display_name=data.display_name,
        description=data.description,
        feature_type=data.feature_type,
        meter_type=data.meter_type,
        status=data.feature_status,
        units=data.feature_units,
        units_plural=data.feature_units_plural,
        metadata_=data.metadata,
    )
    _store_configuration(feature, data.enum_configuration, data.meter, data.unit_transformation)
    session.add(feature)
    flush_unique(session, kind="feature", ref_id=data.id)
    record_catalog_change(session, environment_id)
    _announce(session, feature, Change.CREATED, now)
    return feature


def update_feature(
    session: Session, *, environment_id: int, ref_id: str, data: FeatureUpdate, now: datetime
) -> Feature:
    feature = get_feature(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    current = to_read(feature)
    given = data.model_fields_set
    enum_configuration = (
        data.enum_configuration if "enum_configuration" in given else current.enum_configuration
    )
    meter = data.meter if "meter" in given else current.meter
    transformation = (
        data.unit_transformation if "unit_transformation" in given else current.unit_transformation
    )
    _check_shape(
        feature_type=feature.feature_type,
        meter_type=feature.meter_type,
        enum_configuration=enum_configuration,
        meter=meter,
        unit_transformation=transformation,
    )
    if "enum_configuration" in given:
        _check_enum_values_kept(session, feature, enum_configuration or [])
    if "display_name" in given:
        if data.display_name is None:
            raise InvalidValue("'displayName' cannot be null", field="displayName")
        feature.display_name = data.display_name
    if "description" in given:
        feature.description = data.description
    if "feature_units" in given:
        feature.units = data.feature_units
    if "feature_units_plural" in given:
        feature.units_plural = data.feature_units_plural
    if "metadata" in given:
        feature.metadata_ = data.metadata or {}
    _store_configuration(feature, enum_configuration, meter, transformation)
    # Flush now so the column's onupdate stamps updated_at before the reply is built.
    session.flush()
    record_catalog_change(session, environment_id)
    _announce(session, feature, Change.UPDATED, now)
    return feature


def archive_feature(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> Feature:
    feature = get_feature(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    users = references.packages_using_feature(session, feature_id=feature.id)
    if users:
        raise StillInUse(
            f"feature '{ref_id}' is still granted by {references.describe(users)}; "
            "remove those entitlements (or archive those packages) first"
        )
    if feature.status is not FeatureStatus.SUSPENDED:
        feature.status = FeatureStatus.SUSPENDED
        session.flush()
        record_catalog_change(session, environment_id)
        _announce(session, feature, Change.DELETED, now)
    return feature


def unarchive_feature(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> Feature:
    feature = get_feature(session, environment_id=environment_id, ref_id=ref_id, lock=True)
    if feature.status is FeatureStatus.SUSPENDED:
        feature.status = FeatureStatus.NEW
        session.flush()
        record_catalog_change(session, environment_id)
        _announce(session, feature, Change.UPDATED, now)
    return feature


def _announce(session: Session, feature: Feature, change: Change, now: datetime) -> None:
    announce(
        session,
        environment_id=feature.environment_id,
        kind="feature",
        change=change,
        read=lambda: to_read(feature),
        now=now,
    )


def to_read(feature: Feature) -> FeatureRead:
    return FeatureRead(
        id=feature.ref_id,
        display_name=feature.display_name,
        description=feature.description,
        feature_type=feature.feature_type,
        meter_type=feature.meter_type,
        feature_status=feature.status,
        feature_units=feature.units,
        feature_units_plural=feature.units_plural,
        metadata=feature.metadata_,
        enum_configuration=(
            [EnumValue.model_validate(value) for value in feature.enum_configuration]
            if feature.enum_configuration is not None
            else None
        ),
        meter=Meter.model_validate(feature.meter) if feature.meter else None,
        unit_transformation=(
            UnitTransformation.model_validate(feature.unit_transformation)
            if feature.unit_transformation
            else None
        ),
        created_at=feature.created_at,
        updated_at=feature.updated_at,
    )


def _store_configuration(
    feature: Feature,
    enum_configuration: list[EnumValue] | None,
    meter: Meter | None,
    unit_transformation: UnitTransformation | None,
) -> None:
    feature.enum_configuration = (
        [value.model_dump(by_alias=True) for value in enum_configuration]
        if enum_configuration is not None
        else None
    )
    feature.meter = meter.model_dump(by_alias=True, exclude_none=True) if meter else None
    feature.unit_transformation = (
        unit_transformation.model_dump(by_alias=True) if unit_transformation else None
    )


def _check_shape(
    *,
    feature_type: FeatureType,
    meter_type: MeterType,
    enum_configuration: list[EnumValue] | None,
    meter: Meter | None,
    unit_transformation: UnitTransformation | None,
) -> None:
    if feature_type is not FeatureType.NUMBER and meter_type is not MeterType.NONE:
        raise InvalidValue(
            f"a {feature_type} feature cannot be metered; meterType must be 'None'",
            field="meterType",
        )
    _check_enum_configuration(feature_type, enum_configuration)
    if meter is not None:
        if meter_type is MeterType.NONE:
            raise InvalidValue(
                "an event meter needs a metered feature (meterType FLUCTUATING or INCREMENTAL)",
                field="meter",
            )
        _check_meter(meter)
    if unit_transformation is not None and feature_type is not FeatureType.NUMBER:
        raise InvalidValue(
            "unitTransformation applies to NUMBER features only", field="unitTransformation"
        )


def _check_enum_configuration(
    feature_type: FeatureType, enum_configuration: list[EnumValue] | None
) -> None:
    if feature_type is not FeatureType.ENUM:
        if enum_configuration:
            raise InvalidValue(
                "enumConfiguration applies to ENUM features only", field="enumConfiguration"
            )
        return
    if not enum_configuration:
        raise InvalidValue(
            "an ENUM feature needs a non-empty enumConfiguration", field="enumConfiguration"
        )
    values = [value.value for value in enum_configuration]
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        raise InvalidValue(
            f"enumConfiguration repeats the value(s) {', '.join(duplicates)}",
            field="enumConfiguration",
        )


def _check_meter(meter: Meter) -> None:
    aggregation = meter.aggregation
    if aggregation.function in _FIELDLESS_AGGREGATIONS:
        if aggregation.field:
            raise InvalidValue("COUNT aggregation takes no field", field="meter.aggregation.field")
    elif not aggregation.field:
        raise InvalidValue(
            f"{aggregation.function} aggregation needs a field to aggregate",
            field="meter.aggregation.field",
        )
    for f_index, meter_filter in enumerate(meter.filters):
        for c_index, condition in enumerate(meter_filter.conditions):
            _check_condition(condition, f"meter.filters.{f_index}.conditions.{c_index}")


def _check_condition(condition: MeterCondition, where: str) -> None:
    if condition.operation in _VALUELESS_OPERATIONS:
        if condition.value is not None or condition.values:
            raise InvalidValue(f"{condition.operation} takes no value", field=where)
    elif condition.operation == "IN":
        if not condition.values:
            raise InvalidValue("IN needs a non-empty 'values' list", field=f"{where}.values")
    elif condition.value is None:
        raise InvalidValue(f"{condition.operation} needs a 'value'", field=f"{where}.value")


def _check_enum_values_kept(
    session: Session, feature: Feature, enum_configuration: list[EnumValue]
) -> None:
    kept = {value.value for value in enum_configuration}
    used = references.enum_values_in_use(session, feature_id=feature.id)
    dropped = sorted(used - kept)
    if dropped:
        raise StillInUse(
            f"enumConfiguration drops {', '.join(dropped)}, still granted by entitlements of "
            f"feature '{feature.ref_id}'",
            field="enumConfiguration",
        )

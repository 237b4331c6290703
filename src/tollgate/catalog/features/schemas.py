from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from tollgate.catalog.enums import FeatureStatus, FeatureType, MeterType
from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import (
    MAX_INT,
    Description,
    DisplayName,
    JsonInt,
    Metadata,
    RefId,
    ShortText,
)

ConditionOperation = Literal[
    "EQUALS",
    "NOT_EQUALS",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "IS_NULL",
    "IS_NOT_NULL",
    "CONTAINS",
    "STARTS_WITH",
    "ENDS_WITH",
    "IN",
]
AggregationFunction = Literal["SUM", "MAX", "MIN", "AVG", "COUNT", "UNIQUE"]


class EnumValue(RequestModel):
    display_name: DisplayName
    value: Annotated[str, Field(min_length=1, max_length=255)]


class MeterAggregation(RequestModel):
    function: AggregationFunction
    field: ShortText | None = None


class MeterCondition(RequestModel):
    field: Annotated[str, Field(min_length=1, max_length=255)]
    operation: ConditionOperation
    value: ShortText | None = None
    values: Annotated[list[ShortText], Field(max_length=100)] | None = None


class MeterFilter(RequestModel):
    conditions: Annotated[list[MeterCondition], Field(min_length=1, max_length=20)]


class Meter(RequestModel):
    """Filters are ORed; the conditions inside one filter are ANDed."""

    aggregation: MeterAggregation
    filters: Annotated[list[MeterFilter], Field(min_length=1, max_length=20)]


class UnitTransformation(RequestModel):
    divide: Annotated[JsonInt, Field(ge=1, le=MAX_INT)]
    feature_units: ShortText | None = None
    feature_units_plural: ShortText | None = None
    round: Literal["UP", "DOWN"] = "DOWN"


class FeatureCreate(RequestModel):
    id: RefId
    display_name: DisplayName
    feature_type: FeatureType
    description: Description | None = None
    enum_configuration: Annotated[list[EnumValue], Field(max_length=100)] | None = None
    feature_status: FeatureStatus = FeatureStatus.NEW
    feature_units: ShortText | None = None
    feature_units_plural: ShortText | None = None
    metadata: Metadata = Field(default_factory=dict)
    meter: Meter | None = None
    meter_type: MeterType = MeterType.NONE
    unit_transformation: UnitTransformation | None = None


class FeatureUpdate(RequestModel):
    description: Description | None = None
    display_name: DisplayName | None = None
    enum_configuration: Annotated[list[EnumValue], Field(max_length=100)] | None = None
    feature_units: ShortText | None = None
    feature_units_plural: ShortText | None = None
    metadata: Metadata | None = None
    meter: Meter | None = None
    unit_transformation: UnitTransformation | None = None


class FeatureRead(WireModel):
    id: str
    display_name: str
    description: str | None
    feature_type: FeatureType
    meter_type: MeterType
    feature_status: FeatureStatus
    feature_units: str | None
    feature_units_plural: str | None
    metadata: dict[str, str]
    enum_configuration: list[EnumValue] | None
    meter: Meter | None
    unit_transformation: UnitTransformation | None
    created_at: datetime
    updated_at: datetime

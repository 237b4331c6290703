"""Wire shapes of usage reports, events and history (the `stigg` client's types)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import CustomerId, JsonBool, JsonFloat, Moment, RefId
from tollgate.usage.models import UpdateBehavior

MAX_BATCH = 1_000
Key = Annotated[str, Field(min_length=1, max_length=255)]
Dimensions = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=64)],
        Annotated[str, StringConstraints(max_length=255)] | float | bool,
    ],
    Field(
        max_length=20,
        description="At most 20 entries; keys up to 64 characters, text values up to 255",
    ),
]


class UsageCreate(RequestModel):
    customer_id: CustomerId
    feature_id: RefId
    value: JsonFloat = Field(
        description="Rounded half away from zero to 5 decimal places. Fractional values "
        "must be below ±34,359,738,368; totals are kept up to ±92,233,720,368,547."
    )
    created_at: Moment | None = None
    dimensions: Dimensions | None = None
    idempotency_key: Key | None = None
    resource_id: Key | None = None
    update_behavior: UpdateBehavior = UpdateBehavior.DELTA
    enforce_limit: JsonBool = Field(
        False,
        description="Tollgate only: count this report only if the customer's usage stays "
        "within its limit, decided atomically; otherwise the whole batch is refused with "
        "409 and `accessDeniedReason` RequestedUsageExceedingLimit.",
    )


class UsageBatch(RequestModel):
    usages: Annotated[list[UsageCreate], Field(min_length=1, max_length=MAX_BATCH)]


class MeasurementRead(WireModel):
    id: str
    customer_id: str
    feature_id: str
    resource_id: str | None
    value: float
    current_usage: float
    created_at: datetime
    timestamp: datetime
    usage_period_start: datetime | None
    usage_period_end: datetime | None
    next_reset_date: datetime | None


class MeasurementsEnvelope(WireModel):
    data: list[MeasurementRead]


class MeasurementsV2(WireModel):
    usages: list[MeasurementRead]


class MeasurementsV2Envelope(WireModel):
    data: MeasurementsV2


class EventCreate(RequestModel):
    customer_id: CustomerId
    event_name: Key
    idempotency_key: Key
    dimensions: Dimensions = Field(default_factory=dict)
    resource_id: Key | None = None
    timestamp: Moment | None = None
    enforce_limit: JsonBool = Field(
        False,
        description="Tollgate only: store this event only if every usage it adds stays within "
        "the customer's limit, decided atomically (a UNIQUE meter's value already counted in "
        "the period adds nothing and passes); otherwise the whole batch is refused with 409 "
        "and `accessDeniedReason` RequestedUsageExceedingLimit.",
    )


class EventBatch(RequestModel):
    events: Annotated[list[EventCreate], Field(min_length=1, max_length=MAX_BATCH)]


class EventsAccepted(WireModel):
    data: dict[str, int]


class HistoryMarker(WireModel):
    timestamp: datetime
    type: Literal["PERIODIC_RESET", "SUBSCRIPTION_CHANGE_RESET"]


class HistoryPoint(WireModel):
    timestamp: datetime
    value: float
    is_reset_point: bool


class HistoryTag(WireModel):
    key: str
    value: str


class HistorySeries(WireModel):
    points: list[HistoryPoint]
    tags: list[HistoryTag]


class History(WireModel):
    markers: list[HistoryMarker]
    series: list[HistorySeries]


class HistoryEnvelope(WireModel):
    data: History

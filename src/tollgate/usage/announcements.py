"""Webhooks the usage domain emits: `measurement.reported` and `entitlement.usage_exceeded`."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from tollgate.kit.amounts import from_units
from tollgate.webhooks import outbox
from tollgate.webhooks.event_types import EventType


class Reported(Protocol):
    """A report as it was counted (`reports.Measurement`)."""

    @property
    def customer_ref(self) -> str: ...

    def as_wire(self) -> dict[str, Any]: ...


class Measured(Protocol):
    """What was measured (a report's `Measurement`)."""

    @property
    def customer_ref(self) -> str: ...
    @property
    def feature_ref(self) -> str: ...
    @property
    def resource_ref(self) -> str | None: ...
    @property
    def period_start(self) -> datetime: ...
    @property
    def period_end(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Crossing:
    """A counter whose usage first reached its limit in this period."""

    measured: Measured
    usage_limit: int
    usage_units: int


def announce_measurements(
    session: Session,
    environment_id: int,
    rows: Sequence[dict[str, Any]],
    applied: Sequence[Reported],
    now: datetime,
) -> None:
    """A `measurement.reported` webhook for every report counted."""
    outbox.emit_many(
        session,
        environment_id=environment_id,
        events=[
            outbox.Event(
                EventType.MEASUREMENT_REPORTED,
                _measured(measurement, from_units(row["change"])),
                measurement.customer_ref,
            )
            for row, measurement in zip(rows, applied, strict=True)
        ],
        now=now,
    )


def _measured(measurement: Reported, change: float) -> dict[str, Any]:
    """The report as the usage API answers it, plus Stigg's nested ids. The report's own
    time is `measuredAt`: `timestamp` is the event's, which receivers order events by."""
    wire = measurement.as_wire()
    wire["measuredAt"] = wire.pop("timestamp")
    resource = wire["resourceId"]
    return {
        **wire,
        "currentChange": change,
        "customer": {"id": wire["customerId"]},
        "feature": {"id": wire["featureId"]},
        "resource": {"id": resource} if resource else None,
    }


def announce_exceeded(
    session: Session, environment_id: int, crossings: Sequence[Crossing], now: datetime
) -> None:
    """An `entitlement.usage_exceeded` webhook for each crossing."""
    events = [
        outbox.Event(EventType.USAGE_EXCEEDED, _exceeded(c), c.measured.customer_ref)
        for c in crossings
    ]
    outbox.emit_many(session, environment_id=environment_id, events=events, now=now)


def _exceeded(crossing: Crossing) -> dict[str, Any]:
    measured = crossing.measured
    return {
        "customer": {"id": measured.customer_ref},
        "feature": {"id": measured.feature_ref},
        "resource": {"id": measured.resource_ref} if measured.resource_ref else None,
        "usageLimit": crossing.usage_limit,
        "currentUsage": from_units(crossing.usage_units),
        "thresholdPercentage": 100,
        "usagePeriodStart": measured.period_start if measured.period_end else None,
        "usagePeriodEnd": measured.period_end,
    }

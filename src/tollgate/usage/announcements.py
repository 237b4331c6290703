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


@dataclass(frozen=True, slots=True)
class Crossing:
    """A counter whose usage first reached its limit in this period."""

    customer_ref: str
    feature_ref: str
    resource_ref: str | None
    usage_limit: int
    usage_units: int
    period_start: datetime
    period_end: datetime | None


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
                {**measurement.as_wire(), "currentChange": from_units(row["change"])},
                measurement.customer_ref,
            )
            for row, measurement in zip(rows, applied, strict=True)
        ],
        now=now,
    )


def announce_exceeded(
    session: Session, environment_id: int, crossings: Sequence[Crossing], now: datetime
) -> None:
    """An `entitlement.usage_exceeded` webhook for each crossing."""
    events = [
        outbox.Event(
            EventType.USAGE_EXCEEDED,
            {
                "customer": {"id": c.customer_ref},
                "feature": {"id": c.feature_ref},
                "resource": {"id": c.resource_ref} if c.resource_ref else None,
                "usageLimit": c.usage_limit,
                "currentUsage": from_units(c.usage_units),
                "thresholdPercentage": 100,
                "usagePeriodStart": c.period_start if c.period_end else None,
                "usagePeriodEnd": c.period_end,
            },
            c.customer_ref,
        )
        for c in crossings
    ]
    outbox.emit_many(session, environment_id=environment_id, events=events, now=now)

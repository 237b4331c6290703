"""Usage reports, raw events and usage history, as the `stigg` client calls them."""

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Query, Response

from tollgate.entitlements.deps import Snapshots
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.http.deps import CustomerReadPrincipal, DbSession, Now, WritePrincipal
from tollgate.http.routing import api_router
from tollgate.http.types import MAX_BATCH_BODY_BYTES, Moment
from tollgate.kit.amounts import AmountOutOfRange, to_units
from tollgate.usage import events, history, reports
from tollgate.usage.errors import UsageRefused
from tollgate.usage.schemas import (
    EventBatch,
    EventsAccepted,
    HistoryEnvelope,
    MeasurementsEnvelope,
    MeasurementsV2Envelope,
    UsageBatch,
)

usage_router = api_router(prefix="/api/v1/usage", tags=["usage"])
usage_v2_router = api_router(prefix="/api/v2/usage", tags=["usage"])
events_router = api_router(prefix="/api/v1/events", tags=["usage"])


@usage_router.post("", response_model=MeasurementsEnvelope, max_body_size=MAX_BATCH_BODY_BYTES)
def report_usage(
    body: UsageBatch, snapshots: Snapshots, session: DbSession, principal: WritePrincipal, now: Now
) -> Response:
    """Report usage of metered features (DELTA adds, SET replaces the total).

    A batch is counted whole or not at all. An `idempotencyKey` stands for the report it
    was first sent with, in this environment, for 7 days: the same report sent again
    (same customer, feature, resource, update behavior, value and dimensions; `createdAt`
    aside) is not counted again, and its answer is the original one, even when both were
    sent at the same moment. A key sent with any other report, or twice with different
    reports in one batch, refuses the batch with 409 `idempotency_key_reused`, naming the
    item, the key and the customer and feature it stands for."""
    measured = _report(body, snapshots, session, principal.environment_id, now)
    return _json({"data": measured})


@usage_v2_router.post("", response_model=MeasurementsV2Envelope, max_body_size=MAX_BATCH_BODY_BYTES)
def report_usage_v2(
    body: UsageBatch, snapshots: Snapshots, session: DbSession, principal: WritePrincipal, now: Now
) -> Response:
    """Report usage of metered features; the same as v1, in v2's reply shape.

    Idempotency keys work as in v1: the same report sent again under its key gets the
    original answer and is not counted again; another report under that key refuses the
    batch with 409 `idempotency_key_reused`."""
    measured = _report(body, snapshots, session, principal.environment_id, now)
    return _json({"data": {"usages": measured}})


@events_router.post("", response_model=EventsAccepted, max_body_size=MAX_BATCH_BODY_BYTES)
def report_events(
    body: EventBatch, snapshots: Snapshots, session: DbSession, principal: WritePrincipal, now: Now
) -> Response:
    """Store raw events; every feature whose meter matches one counts it at once.

    A batch is stored whole or not at all. An `idempotencyKey` stands for the event it was
    first sent with, in this environment, for 7 days: the same event sent again (same
    customer, event name, resource and dimensions; `timestamp` aside) is not stored again
    and counts as a duplicate, even when both were sent at the same moment. A key sent with
    any other event, or twice with different events in one batch, refuses the batch with
    409 `idempotency_key_reused`, naming the item, the key and the customer and event it
    stands for.

    An event with `enforceLimit` is stored only if every counter it moves stays within the
    customer's limit, decided atomically; a UNIQUE meter's value already counted in the
    period moves nothing and passes. Otherwise the whole batch is refused with 409
    `usage_limit_exceeded`, its reason, current usage and limit."""
    batch = [
        events.EventReport(
            customer_ref=e.customer_id,
            event_name=e.event_name,
            idempotency_key=e.idempotency_key,
            dimensions=e.dimensions,
            resource_ref=e.resource_id,
            timestamp=e.timestamp,
            enforce_limit=e.enforce_limit,
        )
        for e in body.events
    ]
    stored = events.report_events(
        session,
        snapshots,
        environment_id=principal.environment_id,
        events=batch,
        now=now,
    )
    return _json({"data": {"accepted": stored.count, "duplicates": len(batch) - stored.count}})


@usage_router.get("/{customer_id}/history/{feature_id}", response_model=HistoryEnvelope)
def get_usage_history(
    customer_id: str,
    feature_id: str,
    snapshots: Snapshots,
    session: DbSession,
    principal: CustomerReadPrincipal,
    now: Now,
    start_date: Annotated[Moment, Query(alias="startDate")],
    end_date: Annotated[Moment | None, Query(alias="endDate")] = None,
    group_by: Annotated[str | None, Query(alias="groupBy")] = None,
    resource_id: Annotated[str | None, Query(alias="resourceId")] = None,
) -> Response:
    """A customer's usage of a metered feature over time, one series per `groupBy` value
    of the reports' (or events') dimensions, restarting at each usage period."""
    found = history.usage_history(
        session,
        snapshots,
        environment_id=principal.environment_id,
        customer_ref=customer_id,
        feature_ref=feature_id,
        start=start_date,
        end=end_date or now,
        group_by=group_by or None,
        resource_ref=resource_id or None,
    )
    return _json({"data": found})


def _report(
    body: UsageBatch,
    snapshots: SnapshotStore,
    session: DbSession,
    environment_id: int,
    now: datetime,
) -> list[dict[str, Any]]:
    batch = []
    problems = []
    for index, usage in enumerate(body.usages):
        try:
            value = to_units(usage.value)
        except AmountOutOfRange as exc:
            problems.append({"field": f"usages[{index}].value", "message": str(exc)})
            continue
        batch.append(
            reports.UsageReport(
                customer_ref=usage.customer_id,
                feature_ref=usage.feature_id,
                value=value,
                behavior=usage.update_behavior,
                created_at=usage.created_at,
                dimensions=usage.dimensions,
                idempotency_key=usage.idempotency_key,
                resource_ref=usage.resource_id,
                enforce_limit=usage.enforce_limit,
            )
        )
    if problems:
        raise UsageRefused(problems)
    measured = reports.report_usage(
        session,
        snapshots,
        environment_id=environment_id,
        reports=batch,
        now=now,
    )
    return [m.as_wire() for m in measured]


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_UTC_Z), media_type="application/json")

"""`GET /api/v1/sdk/stream`: an environment's changes as Server-Sent Events.

Events name what changed, never the new state (read `/api/v1/sdk/customers/{id}/state`):

    event: ready     data: {}                      the stream is live from here
    event: customer  data: {"customerId": ..., "version": n}
                                                   what the customer holds changed; its
                                                   entitlements are now at version n
    event: usage     data: {"customerId": ...}     the customer's usage moved
    event: catalog   data: {}                      features or published versions changed
    event: ping      data: {}                      nothing happened for 15 s
    event: reset     data: {}                      changes may have been missed: read again
                                                   everything you keep

Every event but `reset` carries an `id`: the position to resume from.

A client that reconnects sends the last id it saw in `Last-Event-ID` and receives what it
missed, from whichever server process it reaches; if that is older than the change log
keeps (an hour), it gets `reset` instead."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import Header, Request
from fastapi.responses import StreamingResponse

from tollgate.db.changelog import LoggedChange
from tollgate.db.changes import ChangeKind
from tollgate.environments.service import hash_key
from tollgate.http.components import app_components
from tollgate.http.deps import WritePrincipal
from tollgate.http.params import whole_number
from tollgate.http.routing import api_router
from tollgate.streams.follower import LogFollower

router = api_router(prefix="/api/v1/sdk", tags=["sdk"])

HEARTBEAT_SECONDS = 15.0
_RETRY = b"retry: 1000\n\n"  # how long an EventSource waits before reconnecting (ms)
_EVENT_NAMES = {
    ChangeKind.CUSTOMER.value: "customer",
    ChangeKind.USAGE.value: "usage",
    ChangeKind.ENVIRONMENT.value: "catalog",
}


@router.get("/stream", response_class=StreamingResponse)
async def stream_changes(
    request: Request,
    principal: WritePrincipal,
    last_event_id: Annotated[
        str | None,
        Header(description="The last event id received, to resume after a disconnection"),
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events naming each customer, usage and catalog change of the key's
    environment, as they commit (server keys only)."""
    resume_from = whole_number(last_event_id, field="Last-Event-ID")
    follower = app_components(request.app).get(LogFollower)
    key_hash = hash_key(request.headers["x-api-key"])  # WritePrincipal checked it is there
    events = _events(follower, principal.environment_id, key_hash, resume_from)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def _events(
    follower: LogFollower, environment_id: int, key_hash: str, resume_from: int | None
) -> AsyncIterator[bytes]:
    subscription = await follower.subscribe(environment_id, key_hash)
    try:
        yield _RETRY
        if resume_from is not None:
            backlog = await follower.backlog(subscription, resume_from)
            if backlog is None:
                yield _event("reset", {})
            for entry in backlog or ():
                yield _entry(entry, min(entry.id, subscription.position))
        yield _event("ready", {}, event_id=subscription.position)
        while not subscription.overflowed:
            try:
                delivery = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                # Carries the position, so a client of a quiet environment can still
                # resume (instead of starting over) after the log has moved on.
                yield _event("ping", {}, event_id=follower.low_water)
                continue
            if subscription.revoked:
                return  # its key no longer opens it; a reconnection is answered 401
            if delivery is not None:
                yield _entry(*delivery)
        yield _event("reset", {})  # too far behind: read everything again
    finally:
        follower.unsubscribe(subscription)


def _entry(entry: LoggedChange, event_id: int) -> bytes:
    name = _EVENT_NAMES[entry.kind]
    data: dict[str, str | int] = {}
    if entry.kind == ChangeKind.CUSTOMER.value:
        data = {"customerId": entry.customer_ref, "version": entry.version}
    elif entry.kind == ChangeKind.USAGE.value:
        data = {"customerId": entry.customer_ref}
    return _event(name, data, event_id=event_id)


def _event(name: str, data: dict[str, str | int], *, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"

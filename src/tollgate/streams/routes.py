"""`GET /api/v1/sdk/stream`: an environment's changes as Server-Sent Events.

Events name what changed, never the new state (read `/api/v1/sdk/customers/{id}/state`):

    event: ready     id: the position now          the stream is live from here
    event: customer  data: {"customerId": ...}     what the customer holds changed
    event: usage     data: {"customerId": ...}     the customer's usage moved
    event: catalog   data: {}                      features or published versions changed
    event: reset     data: {}                      changes may have been missed: read again
                                                   everything you keep

A client that reconnects sends the last id it saw in `Last-Event-ID` and receives what it
missed, from whichever server process it reaches; if that is older than the change log
keeps (an hour), it gets `reset` instead."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from tollgate.db import changelog
from tollgate.db.changelog import LoggedChange
from tollgate.db.changes import ChangeKind
from tollgate.db.engine import unit_of_work
from tollgate.errors import InvalidValue
from tollgate.http.deps import WritePrincipal
from tollgate.streams.follower import BATCH, LogFollower, Subscription

router = APIRouter(prefix="/api/v1/sdk", tags=["sdk"])

HEARTBEAT_SECONDS = 15.0
_RETRY = b"retry: 1000\n\n"  # how long an EventSource waits before reconnecting (ms)
_HEARTBEAT = b": keep-alive\n\n"
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
    resume_from = _parse_event_id(last_event_id)
    follower: LogFollower = request.app.state.streams
    sessions = request.app.state.read_sessions
    events = _events(sessions, follower, principal.environment_id, resume_from)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def _parse_event_id(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidValue(
            f"Last-Event-ID must be an event id this stream sent, got '{raw[:40]}'",
            field="Last-Event-ID",
        )
    return int(raw)


async def _events(
    sessions: sessionmaker[Session],
    follower: LogFollower,
    environment_id: int,
    resume_from: int | None,
) -> AsyncIterator[bytes]:
    subscription = await follower.subscribe(environment_id)
    try:
        yield _RETRY
        if resume_from is not None:
            backlog = await run_in_threadpool(_backlog, sessions, subscription, resume_from)
            if backlog is None:
                yield _event("reset", {})
            for entry in backlog or ():
                yield _entry(entry)
        yield _event("ready", {}, event_id=subscription.position)
        while not subscription.overflowed:
            try:
                entry = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield _HEARTBEAT
                continue
            yield _entry(entry)
        yield _event("reset", {})  # too far behind: read everything again
    finally:
        follower.unsubscribe(subscription)


def _backlog(
    sessions: sessionmaker[Session], subscription: Subscription, after: int
) -> list[LoggedChange] | None:
    """What the stream missed after id `after`, up to its live position; None when the log
    no longer holds all of it."""
    entries: list[LoggedChange] = []
    with unit_of_work(sessions) as session:
        if not changelog.holds_everything_after(session, after):
            return None
        while True:
            page = changelog.read_after(
                session, after, limit=BATCH, environment_id=subscription.environment_id
            )
            page = [entry for entry in page if entry.id <= subscription.position]
            entries.extend(page)
            if len(page) < BATCH:
                return entries
            after = page[-1].id


def _entry(entry: LoggedChange) -> bytes:
    name = _EVENT_NAMES[entry.kind]
    data = {} if entry.kind == ChangeKind.ENVIRONMENT.value else {"customerId": entry.customer_ref}
    return _event(name, data, event_id=entry.id)


def _event(name: str, data: dict[str, str], *, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"

"""Events become messages in the transaction of the change that caused them.

`emit` writes one message per enabled endpoint that listens to the event's type. A change
that rolls back takes its messages with it; one that commits owes them until delivered."""

import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tollgate.webhooks.models import MessageStatus, WebhookEndpoint, WebhookMessage

# Set on a session that wrote messages; after its commit, this process's dispatchers are
# told, so that they send at once instead of at their next poll.
_OWED = "tollgate.webhooks_owed"
_owed_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def when_owed(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener` after each commit (in this process) that owes messages; returns
    what stops it. Another process's commits are found by its poll."""
    with _listeners_lock:
        _owed_listeners.append(listener)

    def stop() -> None:
        with _listeners_lock:
            if listener in _owed_listeners:
                _owed_listeners.remove(listener)

    return stop


@sa_event.listens_for(Session, "after_commit")
def _tell_dispatchers(session: Session) -> None:
    if session.info.pop(_OWED, False):
        for listener in list(_owed_listeners):
            listener()


@sa_event.listens_for(Session, "after_rollback")
def _owe_nothing(session: Session) -> None:
    session.info.pop(_OWED, None)


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    entity: dict[str, Any]  # the object's fields, JSON-ready, Stigg's flat shape
    ordering_key: str  # messages of one key reach an endpoint in order (a customer)


def is_wanted(session: Session, environment_id: int, event_type: str) -> bool:
    """Whether an enabled endpoint listens to `event_type` (before costly payloads)."""
    endpoints = _enabled_endpoints(session, environment_id)
    return any(_listens(types, event_type) for _, types in endpoints)


def emit(
    session: Session,
    *,
    environment_id: int,
    event_type: str,
    entity: dict[str, Any],
    ordering_key: str,
    now: datetime,
    endpoint_id: int | None = None,
) -> int:
    """Owe one event to every endpoint that listens (or only to `endpoint_id`)."""
    event = Event(event_type, entity, ordering_key)
    return emit_many(
        session, environment_id=environment_id, events=[event], now=now, endpoint_id=endpoint_id
    )


def emit_many(
    session: Session,
    *,
    environment_id: int,
    events: Sequence[Event],
    now: datetime,
    endpoint_id: int | None = None,
) -> int:
    """Owe each event to every endpoint that listens to its type; returns how many
    messages were written."""
    if not events:
        return 0
    endpoints = _enabled_endpoints(session, environment_id, only=endpoint_id)
    if not endpoints:
        return 0
    stamp = now.isoformat().replace("+00:00", "Z")
    messages = []
    for event in events:
        message_id = f"msg_{secrets.token_hex(12)}"
        payload = _json_ready(
            {"type": event.type, "messageId": message_id, "timestamp": stamp, **event.entity}
        )
        messages += [
            {
                "environment_id": environment_id,
                "endpoint_id": endpoint,
                "ref_id": message_id,
                "event_type": event.type,
                "ordering_key": event.ordering_key,
                "payload": payload,
                "status": MessageStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint, types in endpoints
            if endpoint_id is not None or _listens(types, event.type)
        ]
    if messages:
        # One multi-row insert, in the order the events happened (ids keep that order).
        session.execute(insert(WebhookMessage), messages)
        session.info[_OWED] = True
    return len(messages)


def _enabled_endpoints(
    session: Session, environment_id: int, *, only: int | None = None
) -> list[tuple[int, list[str] | None]]:
    """(id, event types or None for all) of the environment's enabled endpoints."""
    query = select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
        WebhookEndpoint.environment_id == environment_id, WebhookEndpoint.is_enabled
    )
    if only is not None:
        query = query.where(WebhookEndpoint.id == only)
    return [(row.id, row.event_types) for row in session.execute(query)]


def _listens(types: list[str] | None, event_type: str) -> bool:
    return types is None or event_type in types


def _json_ready(payload: dict[str, Any]) -> dict[str, Any]:
    """Datetimes and the like as the wire writes them (ISO 8601, UTC as Z)."""
    ready: dict[str, Any] = orjson.loads(orjson.dumps(payload, option=orjson.OPT_UTC_Z))
    return ready

"""Delivery's database side: leasing owed messages, recording what their attempts did.

A worker leases the messages that may go now (due, not leased by a live worker, their
endpoint enabled, and no earlier message of the same ordering key still owed to the same
endpoint) with `FOR UPDATE SKIP LOCKED`, so several workers never take the same message.
The lease is committed before sending and each outcome after it, in the lease's name; a
worker killed mid-delivery loses nothing: its lease expires and another worker sends the
message again, with the same `webhook-id`, so receivers can drop the duplicate. Sending is
`webhooks.dispatcher`'s part."""

import logging
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from secrets import token_hex
from typing import Any

from sqlalchemy import Row, Select, bindparam, exists, insert, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql.elements import BindParameter
from standardwebhooks import Webhook

from tollgate.db.engine import unit_of_work
from tollgate.webhooks.models import (
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from tollgate.webhooks.sender import Outcome

log = logging.getLogger("tollgate.webhooks")

CANDIDATES = 100  # owed messages looked at per lease
# Waits after each failed attempt: 4.2 days in all (3.3 at the least, with jitter), then
# the message is given up.
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    *[timedelta(hours=12)] * 7,
]
DISABLE_AFTER = timedelta(days=5)  # of failing without a single success
# Rendered into the SQL, not bound, so the planners can use the partial index of pending
# messages (`models.WebhookMessage`).
PENDING: BindParameter[str] = bindparam(
    "pending", MessageStatus.PENDING.value, literal_execute=True
)


@dataclass(frozen=True, slots=True)
class Leased:
    message_id: int
    ref_id: str
    payload: dict[str, object]
    endpoint_id: int
    url: str
    secrets: tuple[str, ...]
    stigg_secret: str | None
    lease_token: str  # marks the leased row, so only this lease may record its outcome


@dataclass(frozen=True, slots=True)
class Attempt:
    message: Leased
    outcome: Outcome
    at: datetime  # when it began; its retry is counted from then


def lease(
    sessions: sessionmaker[Session],
    now: datetime,
    *,
    duration: timedelta,
    room: Callable[[int], int],
    skip: Collection[int] = (),
    exclude: Collection[int] = (),
    limit: int = CANDIDATES,
) -> list[Leased]:
    """Lease up to `limit` messages that may go now, at most `room(endpoint id)` of each
    endpoint, none of the endpoints in `skip` nor the messages in `exclude`; each is
    leased for `duration`."""
    with unit_of_work(sessions) as session:
        rows = session.execute(_owed_heads(now, skip, exclude)).all()
        taken: Counter[int] = Counter()
        kept: list[Row[Any]] = []
        for row in rows:
            endpoint_id = row[3]
            if len(kept) < limit and taken[endpoint_id] < room(endpoint_id):
                taken[endpoint_id] += 1
                kept.append(row)
        if not kept:
            return []
        token = token_hex(16)
        session.execute(
            update(WebhookMessage)
            .where(WebhookMessage.id.in_([row[0] for row in kept]))
            .values(lease_until=now + duration, lease_token=token)
            .execution_options(synchronize_session=False)
        )
        return [_leased(*row, token=token, now=now) for row in kept]


def _owed_heads(now: datetime, skip: Collection[int], exclude: Collection[int]) -> Select[Any]:
    """The messages that may go now, oldest first, locked (others' locks skipped)."""
    m = WebhookMessage
    earlier = aliased(WebhookMessage)
    endpoint = WebhookEndpoint
    blocked = exists().where(
        earlier.endpoint_id == m.endpoint_id,
        earlier.ordering_key == m.ordering_key,
        earlier.status == PENDING,
        earlier.id < m.id,
    )
    query = (
        select(
            m.id,
            m.ref_id,
            m.payload,
            endpoint.id,
            endpoint.url,
            endpoint.secret,
            endpoint.previous_secret,
            endpoint.previous_secret_until,
            endpoint.send_stigg_secret,
        )
        .join(endpoint, endpoint.id == m.endpoint_id)
        .where(
            m.status == PENDING,
            m.next_attempt_at <= now,
            or_(m.lease_until.is_(None), m.lease_until < now),
            endpoint.is_enabled,
            ~blocked,
        )
        .order_by(m.id)
        .limit(CANDIDATES)
        .with_for_update(of=m, skip_locked=True)
    )
    if skip:
        query = query.where(m.endpoint_id.not_in(list(skip)))
    if exclude:
        query = query.where(m.id.not_in(list(exclude)))
    return query


def _leased(
    message_id: int,
    ref_id: str,
    payload: dict[str, object],
    endpoint_id: int,
    url: str,
    secret: str,
    previous_secret: str | None,
    previous_secret_until: datetime | None,
    send_stigg_secret: bool,
    *,
    token: str,
    now: datetime,
) -> Leased:
    signing = [secret]
    if previous_secret and (previous_secret_until or now) > now:
        signing.append(previous_secret)
    return Leased(
        message_id=message_id,
        ref_id=ref_id,
        payload=payload,
        endpoint_id=endpoint_id,
        url=url,
        secrets=tuple(signing),
        stigg_secret=secret if send_stigg_secret else None,
        lease_token=token,
    )


def signed_headers(
    message_ref: str, body: bytes, secrets: tuple[str, ...], at: datetime
) -> dict[str, str]:
    """Standard Webhooks headers; every live secret signs, so a rotation breaks nobody."""
    text = body.decode()
    signatures = " ".join(Webhook(secret).sign(message_ref, at, text) for secret in secrets)
    return {
        "content-type": "application/json",
        "webhook-id": message_ref,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


def record(
    sessions: sessionmaker[Session],
    attempts: list[Attempt],
    now: datetime,
    jitter: Callable[[], float],
) -> int:
    """Record attempts in one transaction; how many delivered. A message whose lease was
    lost (it expired and another worker took the message over) is left to that worker."""
    if not attempts:
        return 0
    by_id = {attempt.message.message_id: attempt for attempt in attempts}
    m = WebhookMessage
    with unit_of_work(sessions) as session:
        # Endpoints before messages, the order in which deleting an endpoint locks them.
        endpoints = session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_({a.message.endpoint_id for a in attempts}))
            .order_by(WebhookEndpoint.id)
            .with_for_update()
        ).all()
        rows = session.execute(
            select(m.id, m.endpoint_id, m.attempts, m.next_attempt_at, m.lease_token)
            .where(m.id.in_(by_id))
            .order_by(m.id)
            .with_for_update()
        ).all()
        owned = [row for row in rows if row.lease_token == by_id[row.id].message.lease_token]
        if not owned:
            return 0
        session.execute(
            update(m),
            [
                _settled(row.id, row.attempts, row.next_attempt_at, by_id[row.id], jitter)
                for row in owned
            ],
        )
        session.execute(
            insert(WebhookAttempt),
            [
                {
                    "message_id": row.id,
                    "attempted_at": by_id[row.id].at,
                    "status_code": by_id[row.id].outcome.status_code,
                    "error": by_id[row.id].outcome.error,
                    "duration_ms": by_id[row.id].outcome.duration_ms,
                }
                for row in owned
            ],
        )
        for endpoint in endpoints:
            mine = [by_id[row.id].outcome for row in owned if row.endpoint_id == endpoint.id]
            _judge(endpoint, mine, now)
    return sum(by_id[row.id].outcome.delivered for row in owned)


def renew(sessions: sessionmaker[Session], messages: list[Leased], until: datetime) -> None:
    """Extend the leases of messages still held (waiting their turn, or out)."""
    _set_leases(sessions, messages, until)


def release(sessions: sessionmaker[Session], messages: list[Leased]) -> None:
    """Give up leases whose messages were not sent, or whose sending was interrupted, so
    they may go at once (an interrupted one perhaps twice: same `webhook-id`)."""
    _set_leases(sessions, messages, None)


def _set_leases(
    sessions: sessionmaker[Session], messages: list[Leased], until: datetime | None
) -> None:
    """Set the leases of these messages that are still theirs (a lease's token)."""
    if not messages:
        return
    by_token: dict[str, list[int]] = {}
    for message in messages:
        by_token.setdefault(message.lease_token, []).append(message.message_id)
    m = WebhookMessage
    with unit_of_work(sessions) as session:
        for token, ids in by_token.items():
            session.execute(
                update(m)
                .where(m.id.in_(ids), m.lease_token == token)
                .values(lease_until=until, lease_token=token if until else None)
                .execution_options(synchronize_session=False)
            )


def _settled(
    message_id: int,
    attempts: int,
    next_attempt_at: datetime,
    attempt: Attempt,
    jitter: Callable[[], float],
) -> dict[str, object]:
    """The message's columns after one more attempt: delivered, retried later, or given up."""
    outcome = attempt.outcome
    attempts += 1
    status = MessageStatus.PENDING
    if outcome.delivered:
        status = MessageStatus.DELIVERED
    elif outcome.status_code == 410 or attempts > len(RETRY_DELAYS):
        status = MessageStatus.FAILED
    else:
        next_attempt_at = attempt.at + RETRY_DELAYS[attempts - 1] * (0.8 + 0.4 * jitter())
    return {
        "id": message_id,
        "attempts": attempts,
        "status": status,
        "next_attempt_at": next_attempt_at,
        "delivered_at": attempt.at if outcome.delivered else None,
        "last_error": None if outcome.delivered else outcome.error or f"HTTP {outcome.status_code}",
        "lease_until": None,
        "lease_token": None,
    }


def _judge(endpoint: WebhookEndpoint, outcomes: list[Outcome], now: datetime) -> None:
    """The endpoint after some attempts: 410 Gone, or days without a success, disable it."""
    if any(outcome.status_code == 410 for outcome in outcomes):
        _disable(endpoint, "the endpoint answered 410 Gone")
    elif any(outcome.delivered for outcome in outcomes):
        endpoint.failing_since = None
    elif outcomes:
        endpoint.failing_since = endpoint.failing_since or now
        if now - endpoint.failing_since >= DISABLE_AFTER:
            _disable(endpoint, f"every delivery failed for {DISABLE_AFTER.days} days")


def _disable(endpoint: WebhookEndpoint, reason: str) -> None:
    endpoint.is_enabled = False
    endpoint.disabled_reason = reason
    log.warning("webhook endpoint disabled", extra={"endpoint": endpoint.ref_id, "why": reason})


def redeliver(session: Session, *, messages: list[WebhookMessage], now: datetime) -> int:
    """Owe these messages again, now (their ids and payloads unchanged)."""
    for message in messages:
        message.status = MessageStatus.PENDING
        message.next_attempt_at = now
        message.lease_until = message.lease_token = None
    return len(messages)

"""Delivering owed messages: leased, signed, retried with backoff, in order per customer.

Each pass leases the messages that may go now — due, not leased by a live worker, their
endpoint enabled, and no earlier message of the same ordering key still owed to the same
endpoint — with `FOR UPDATE SKIP LOCKED`, so several workers never take the same message.
The lease is committed before sending and the batch's outcomes after it; a worker killed
mid-batch loses nothing: its lease expires and another worker sends the batch's messages
again, with the same `webhook-id`s, so receivers can drop the duplicates."""

import logging
import math
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from secrets import token_hex

import httpx
import orjson
from sqlalchemy import bindparam, exists, insert, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql.elements import BindParameter
from standardwebhooks import Webhook

from tollgate.db.engine import unit_of_work
from tollgate.jobs.runner import Job
from tollgate.webhooks.models import (
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

log = logging.getLogger("tollgate.webhooks")

TIMEOUT_SECONDS = 10.0
BATCH = 100
SENDERS = 16  # requests in flight at once, each to a different customer or endpoint
# A lease outlasts sending its whole batch even if every receiver times out, so a live
# worker's messages are never taken over; a dead worker's wait this long.
LEASE = timedelta(seconds=math.ceil(BATCH / SENDERS) * TIMEOUT_SECONDS + 60)
MAX_BATCHES_PER_PASS = 20
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
class _Leased:
    message_id: int
    ref_id: str
    payload: dict[str, object]
    endpoint_id: int
    url: str
    secrets: tuple[str, ...]
    stigg_secret: str | None


@dataclass(frozen=True, slots=True)
class _Lease:
    token: str  # marks the leased rows, so only this lease may record their outcomes
    messages: list[_Leased]


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver_due(
    sessions: sessionmaker[Session],
    now: datetime,
    *,
    client: httpx.Client,
    jitter: Callable[[], float] = random.random,
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Send every message that may go now; returns how many were delivered.

    `now` schedules (leases, retries); signatures carry `wall_clock`'s moment of sending,
    which receivers compare with their own clocks."""
    delivered = 0
    started = time.monotonic()
    with ThreadPoolExecutor(SENDERS, thread_name_prefix="tollgate-webhook") as senders:
        # A delivery can unblock the next message of its customer, so lease again until
        # nothing may go; bounded, so the other jobs of the pass get their turn.
        for _ in range(MAX_BATCHES_PER_PASS):
            # `now` was read when the pass began; a long pass must not lease, or schedule
            # retries, as if no time had gone by.
            now += timedelta(seconds=time.monotonic() - started)
            started = time.monotonic()
            lease = _lease(sessions, now)
            if not lease.messages:
                break
            # A batch holds at most one message per endpoint and ordering key (the head of
            # each), so its messages may go at once without breaking any order.
            outcomes = list(
                senders.map(lambda message: _send(client, message, wall_clock()), lease.messages)
            )
            _record(sessions, lease, outcomes, now, jitter)
            delivered += sum(outcome.delivered for outcome in outcomes)
    return delivered


def delivery_job(client: httpx.Client) -> Job:
    def run(sessions: sessionmaker[Session], now: datetime) -> int:
        return deliver_due(sessions, now, client=client)

    return Job("webhooks.deliver", run)


def _lease(sessions: sessionmaker[Session], now: datetime) -> _Lease:
    m = WebhookMessage
    earlier = aliased(WebhookMessage)
    endpoint = WebhookEndpoint
    token = token_hex(16)
    with unit_of_work(sessions) as session:
        blocked = exists().where(
            earlier.endpoint_id == m.endpoint_id,
            earlier.ordering_key == m.ordering_key,
            earlier.status == PENDING,
            earlier.id < m.id,
        )
        rows = session.execute(
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
            .limit(BATCH)
            .with_for_update(of=m, skip_locked=True)
        ).all()
        if not rows:
            return _Lease(token, [])
        session.execute(
            update(m)
            .where(m.id.in_([row[0] for row in rows]))
            .values(lease_until=now + LEASE, lease_token=token)
            .execution_options(synchronize_session=False)
        )
        return _Lease(token, [_leased(*row, now=now) for row in rows])


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
    now: datetime,
) -> _Leased:
    signing = [secret]
    if previous_secret and (previous_secret_until or now) > now:
        signing.append(previous_secret)
    return _Leased(
        message_id=message_id,
        ref_id=ref_id,
        payload=payload,
        endpoint_id=endpoint_id,
        url=url,
        secrets=tuple(signing),
        stigg_secret=secret if send_stigg_secret else None,
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


def _send(client: httpx.Client, message: _Leased, sent_at: datetime) -> _Outcome:
    body = orjson.dumps(message.payload)
    headers = signed_headers(message.ref_id, body, message.secrets, sent_at)
    if message.stigg_secret:
        headers["stigg-webhooks-secret"] = message.stigg_secret
    started = time.monotonic()
    try:
        response = client.post(message.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return _Outcome(None, f"{type(exc).__name__}: {exc}"[:500], elapsed)
    elapsed = int((time.monotonic() - started) * 1000)
    error = None if 200 <= response.status_code < 300 else response.text[:500]
    return _Outcome(response.status_code, error, elapsed)


def _record(
    sessions: sessionmaker[Session],
    lease: _Lease,
    outcomes: list[_Outcome],
    now: datetime,
    jitter: Callable[[], float],
) -> None:
    """Record a batch's attempts in one transaction. A message whose lease was lost (it
    expired and another worker took the message over) is left to that worker."""
    sent = {
        message.message_id: outcome
        for message, outcome in zip(lease.messages, outcomes, strict=True)
    }
    m = WebhookMessage
    with unit_of_work(sessions) as session:
        # Endpoints before messages, the order in which deleting an endpoint locks them.
        endpoints = session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_({message.endpoint_id for message in lease.messages}))
            .order_by(WebhookEndpoint.id)
            .with_for_update()
        ).all()
        owned = session.execute(
            select(m.id, m.endpoint_id, m.attempts, m.next_attempt_at)
            .where(m.id.in_(sent), m.lease_token == lease.token)
            .order_by(m.id)
            .with_for_update()
        ).all()
        if not owned:
            return
        session.execute(
            update(m),
            [
                _settled(row.id, row.attempts, row.next_attempt_at, sent[row.id], now, jitter)
                for row in owned
            ],
        )
        session.execute(
            insert(WebhookAttempt),
            [
                {
                    "message_id": row.id,
                    "attempted_at": now,
                    "status_code": sent[row.id].status_code,
                    "error": sent[row.id].error,
                    "duration_ms": sent[row.id].duration_ms,
                }
                for row in owned
            ],
        )
        for endpoint in endpoints:
            _judge(endpoint, [sent[row.id] for row in owned if row.endpoint_id == endpoint.id], now)


def _settled(
    message_id: int,
    attempts: int,
    next_attempt_at: datetime,
    outcome: _Outcome,
    now: datetime,
    jitter: Callable[[], float],
) -> dict[str, object]:
    """The message's columns after one more attempt: delivered, retried later, or given up."""
    attempts += 1
    status = MessageStatus.PENDING
    if outcome.delivered:
        status = MessageStatus.DELIVERED
    elif outcome.status_code == 410 or attempts > len(RETRY_DELAYS):
        status = MessageStatus.FAILED
    else:
        next_attempt_at = now + RETRY_DELAYS[attempts - 1] * (0.8 + 0.4 * jitter())
    return {
        "id": message_id,
        "attempts": attempts,
        "status": status,
        "next_attempt_at": next_attempt_at,
        "delivered_at": now if outcome.delivered else None,
        "last_error": None if outcome.delivered else outcome.error or f"HTTP {outcome.status_code}",
        "lease_until": None,
        "lease_token": None,
    }


def _judge(endpoint: WebhookEndpoint, outcomes: list[_Outcome], now: datetime) -> None:
    """The endpoint after a batch: 410 Gone, or days without a success, disable it."""
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

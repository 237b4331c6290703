"""Delivering owed messages: leased, signed, retried with backoff, in order per customer.

Each pass leases the messages that may go now — due, not leased by a live worker, their
endpoint enabled, and no earlier message of the same ordering key still owed to the same
endpoint — with `FOR UPDATE SKIP LOCKED`, so several workers never take the same message.
The lease is committed before sending; a worker killed mid-delivery loses nothing: its
lease expires and another worker sends the message again, with the same `webhook-id`, so
receivers can drop the duplicate."""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, aliased, sessionmaker
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
BATCH = 50
# A lease outlasts sending its whole batch even if every receiver times out, so a live
# worker's messages are never taken over; a dead worker's wait this long.
LEASE = timedelta(seconds=BATCH * TIMEOUT_SECONDS + 60)
MAX_BATCHES_PER_PASS = 20
# Waits after each failed attempt: about 3.6 days in all, then the message is given up.
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
    *[timedelta(hours=12)] * 5,
]
DISABLE_AFTER = timedelta(days=5)  # of failing without a single success


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
    # A delivery can unblock the next message of its customer, so lease again until
    # nothing may go; bounded, so the other jobs of the pass get their turn.
    for _ in range(MAX_BATCHES_PER_PASS):
        # `now` was read when the pass began; a long pass must not lease, or schedule
        # retries, as if no time had gone by.
        now += timedelta(seconds=time.monotonic() - started)
        started = time.monotonic()
        leased = _lease(sessions, now)
        if not leased:
            return delivered
        disabled: set[int] = set()
        for message in leased:
            if message.endpoint_id in disabled:
                _release(sessions, message)  # its endpoint was disabled during this pass
                continue
            outcome = _send(client, message, wall_clock())
            if not _record(sessions, message, outcome, now, jitter):
                disabled.add(message.endpoint_id)
            delivered += outcome.delivered
    return delivered


def delivery_job(client: httpx.Client) -> Job:
    def run(sessions: sessionmaker[Session], now: datetime) -> int:
        return deliver_due(sessions, now, client=client)

    return Job("webhooks.deliver", run)


def _lease(sessions: sessionmaker[Session], now: datetime) -> list[_Leased]:
    earlier = aliased(WebhookMessage)
    m = WebhookMessage
    with unit_of_work(sessions) as session:
        blocked = exists().where(
            earlier.endpoint_id == m.endpoint_id,
            earlier.ordering_key == m.ordering_key,
            earlier.status == MessageStatus.PENDING,
            earlier.id < m.id,
        )
        rows = session.execute(
            select(m, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == m.endpoint_id)
            .where(
                m.status == MessageStatus.PENDING,
                m.next_attempt_at <= now,
                or_(m.lease_until.is_(None), m.lease_until < now),
                WebhookEndpoint.is_enabled,
                ~blocked,
            )
            .order_by(m.id)
            .limit(BATCH)
            .with_for_update(of=m, skip_locked=True)
        ).all()
        leased = []
        for message, endpoint in rows:
            message.lease_until = now + LEASE
            leased.append(_leased(message, endpoint, now))
        return leased


def _leased(message: WebhookMessage, endpoint: WebhookEndpoint, now: datetime) -> _Leased:
    signing = [endpoint.secret]
    if endpoint.previous_secret and (endpoint.previous_secret_until or now) > now:
        signing.append(endpoint.previous_secret)
    return _Leased(
        message_id=message.id,
        ref_id=message.ref_id,
        payload=message.payload,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        secrets=tuple(signing),
        stigg_secret=endpoint.secret if endpoint.send_stigg_secret else None,
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
    message: _Leased,
    outcome: _Outcome,
    now: datetime,
    jitter: Callable[[], float],
) -> bool:
    """Record the attempt; False when the endpoint is (now) disabled or gone."""
    with unit_of_work(sessions) as session:
        row = session.get(WebhookMessage, message.message_id, with_for_update=True)
        endpoint = session.get(WebhookEndpoint, message.endpoint_id, with_for_update=True)
        if row is None or endpoint is None:
            return False  # the endpoint was deleted meanwhile
        session.add(
            WebhookAttempt(
                message_id=row.id,
                attempted_at=now,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        row.attempts += 1
        row.lease_until = None
        if outcome.delivered:
            row.status = MessageStatus.DELIVERED
            row.delivered_at = now
            row.last_error = None
            endpoint.failing_since = None
            return True
        row.last_error = outcome.error or f"HTTP {outcome.status_code}"
        if outcome.status_code == 410:
            row.status = MessageStatus.FAILED
            _disable(endpoint, "the endpoint answered 410 Gone")
            return False
        endpoint.failing_since = endpoint.failing_since or now
        if now - endpoint.failing_since >= DISABLE_AFTER:
            _disable(endpoint, f"every delivery failed for {DISABLE_AFTER.days} days")
        if row.attempts > len(RETRY_DELAYS):
            row.status = MessageStatus.FAILED
        else:
            delay = RETRY_DELAYS[row.attempts - 1]
            row.next_attempt_at = now + delay * (0.8 + 0.4 * jitter())
        return endpoint.is_enabled


def _release(sessions: sessionmaker[Session], message: _Leased) -> None:
    with unit_of_work(sessions) as session:
        row = session.get(WebhookMessage, message.message_id, with_for_update=True)
        if row is not None:
            row.lease_until = None


def _disable(endpoint: WebhookEndpoint, reason: str) -> None:
    endpoint.is_enabled = False
    endpoint.disabled_reason = reason
    log.warning("webhook endpoint disabled", extra={"endpoint": endpoint.ref_id, "why": reason})


def redeliver(session: Session, *, messages: list[WebhookMessage], now: datetime) -> int:
    """Owe these messages again, now (their ids and payloads unchanged)."""
    for message in messages:
        message.status = MessageStatus.PENDING
        message.next_attempt_at = now
        message.lease_until = None
    return len(messages)

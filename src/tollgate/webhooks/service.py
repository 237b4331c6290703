"""Webhook endpoints: create, change, rotate secrets, and look at what was sent."""

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tollgate.db.lookup import get_by_ref
from tollgate.kit.pagination import Cursors, PageRequest, paginate
from tollgate.webhooks import delivery, outbox
from tollgate.webhooks.event_types import EventType
from tollgate.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from tollgate.webhooks.schemas import EndpointCreate, EndpointRead, EndpointUpdate, MessageRead
from tollgate.webhooks.targets import TargetRules

ROTATION_GRACE = timedelta(hours=24)  # the old secret keeps signing this long


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(
    session: Session,
    *,
    environment_id: int,
    data: EndpointCreate,
    now: datetime,
    targets: TargetRules,
) -> WebhookEndpoint:
    targets.check_url(str(data.url))
    endpoint = WebhookEndpoint(
        environment_id=environment_id,
        ref_id=f"we_{secrets.token_hex(10)}",
        url=str(data.url),
        description=data.description,
        event_types=[str(t) for t in data.event_types] if data.event_types is not None else None,
        is_enabled=True,
        secret=new_secret(),
        send_stigg_secret=data.send_stigg_secret,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint(session: Session, *, environment_id: int, ref_id: str) -> WebhookEndpoint:
    return get_by_ref(
        session,
        WebhookEndpoint,
        environment_id=environment_id,
        ref_id=ref_id,
        noun="webhook endpoint",
        field="id",
    )


def list_endpoints(session: Session, *, environment_id: int) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.environment_id == environment_id)
            .order_by(WebhookEndpoint.id)
        )
    )


def endpoint_summaries(
    session: Session, *, environment_id: int
) -> list[tuple[WebhookEndpoint, int, int]]:
    """Each endpoint with how many messages it is owed and how many failed."""
    counts: dict[tuple[int, MessageStatus], int] = {
        (endpoint_id, status): count
        for endpoint_id, status, count in session.execute(
            select(WebhookMessage.endpoint_id, WebhookMessage.status, func.count())
            .where(WebhookMessage.environment_id == environment_id)
            .group_by(WebhookMessage.endpoint_id, WebhookMessage.status)
        )
    }
    return [
        (
            endpoint,
            counts.get((endpoint.id, MessageStatus.PENDING), 0),
            counts.get((endpoint.id, MessageStatus.FAILED), 0),
        )
        for endpoint in list_endpoints(session, environment_id=environment_id)
    ]


def update_endpoint(
    session: Session,
    *,
    environment_id: int,
    ref_id: str,
    data: EndpointUpdate,
    now: datetime,
    targets: TargetRules,
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, environment_id=environment_id, ref_id=ref_id)
    given = data.model_fields_set
    if "url" in given and data.url is not None:
        targets.check_url(str(data.url))
        endpoint.url = str(data.url)
    if "description" in given:
        endpoint.description = data.description
    if "event_types" in given:
        types = data.event_types
        endpoint.event_types = [str(t) for t in types] if types is not None else None
    if "send_stigg_secret" in given and data.send_stigg_secret is not None:
        endpoint.send_stigg_secret = data.send_stigg_secret
    if "is_enabled" in given and data.is_enabled is not None:
        endpoint.is_enabled = data.is_enabled
        if data.is_enabled:
            endpoint.disabled_reason = None
            endpoint.failing_since = None
        else:
            endpoint.disabled_reason = "disabled through the API"
    endpoint.updated_at = now
    return endpoint


def delete_endpoint(session: Session, *, environment_id: int, ref_id: str) -> None:
    session.delete(get_endpoint(session, environment_id=environment_id, ref_id=ref_id))


def rotate_secret(
    session: Session, *, environment_id: int, ref_id: str, now: datetime
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, environment_id=environment_id, ref_id=ref_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + ROTATION_GRACE
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    return endpoint


def send_test_event(session: Session, *, environment_id: int, ref_id: str, now: datetime) -> None:
    endpoint = get_endpoint(session, environment_id=environment_id, ref_id=ref_id)
    outbox.emit(
        session,
        environment_id=environment_id,
        event_type=EventType.TEST,
        entity={"endpointId": endpoint.ref_id},
        ordering_key=f"test:{endpoint.ref_id}",
        now=now,
        endpoint_id=endpoint.id,
    )


def list_messages(
    session: Session,
    *,
    environment_id: int,
    ref_id: str,
    status: MessageStatus | None,
    page: PageRequest,
) -> tuple[Sequence[WebhookMessage], Cursors]:
    """The endpoint's messages, oldest first, a page at a time."""
    endpoint = get_endpoint(session, environment_id=environment_id, ref_id=ref_id)
    query = select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint.id)
    if status is not None:
        query = query.where(WebhookMessage.status == status)
    return paginate(session, query, WebhookMessage.id, page)


def get_message(
    session: Session, *, environment_id: int, ref_id: str, message_ref: str
) -> WebhookMessage:
    endpoint = get_endpoint(session, environment_id=environment_id, ref_id=ref_id)
    return get_by_ref(
        session,
        WebhookMessage,
        environment_id=environment_id,
        ref_id=message_ref,
        noun="webhook message",
        where=[WebhookMessage.endpoint_id == endpoint.id],
        field="messageId",
    )


def list_attempts(session: Session, *, message: WebhookMessage) -> list[WebhookAttempt]:
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.message_id == message.id)
            .order_by(WebhookAttempt.id)
        )
    )


def redeliver_failed_messages(
    session: Session, *, environment_id: int, ref_id: str, since: datetime, now: datetime
) -> int:
    endpoint = get_endpoint(session, environment_id=environment_id, ref_id=ref_id)
    failed = list(
        session.scalars(
            select(WebhookMessage).where(
                WebhookMessage.endpoint_id == endpoint.id,
                WebhookMessage.status == MessageStatus.FAILED,
                WebhookMessage.created_at >= since,
            )
        )
    )
    return delivery.redeliver(session, messages=failed, now=now)


def to_read(endpoint: WebhookEndpoint) -> EndpointRead:
    return EndpointRead(
        id=endpoint.ref_id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=endpoint.event_types,
        is_enabled=endpoint.is_enabled,
        disabled_reason=endpoint.disabled_reason,
        send_stigg_secret=endpoint.send_stigg_secret,
        failing_since=endpoint.failing_since,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def message_read(message: WebhookMessage) -> MessageRead:
    return MessageRead(
        id=message.ref_id,
        event_type=message.event_type,
        status=message.status,
        attempts=message.attempts,
        next_attempt_at=message.next_attempt_at
        if message.status is MessageStatus.PENDING
        else None,
        last_error=message.last_error,
        created_at=message.created_at,
        delivered_at=message.delivered_at,
        payload=message.payload,
    )

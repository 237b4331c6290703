"""Tollgate's own webhook API (Stigg has none under this path). Server keys only: an
endpoint's secret is shown when it is created or rotated."""

from typing import Annotated

from fastapi import Depends, Query, status

from tollgate.http.components import component
from tollgate.http.deps import DbSession, Now, WritePrincipal
from tollgate.http.params import page_request
from tollgate.http.routing import api_router
from tollgate.http.schemas import Envelope, Page, page_of
from tollgate.http.types import Moment
from tollgate.kit.pagination import PageRequest
from tollgate.webhooks import delivery, service
from tollgate.webhooks.models import MessageStatus
from tollgate.webhooks.schemas import (
    AttemptRead,
    EndpointCreate,
    EndpointRead,
    EndpointUpdate,
    EndpointWithSecret,
    MessageRead,
    Redelivered,
)
from tollgate.webhooks.targets import TargetRules

router = api_router(prefix="/api/v1/webhooks", tags=["webhooks"])


Targets = Annotated[TargetRules, Depends(component(TargetRules))]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_webhook_endpoint(
    body: EndpointCreate, session: DbSession, principal: WritePrincipal, now: Now, targets: Targets
) -> Envelope[EndpointWithSecret]:
    """Send events to a URL, signed with a secret shown once, here. The URL's host must be
    publicly routable (`422` on `url` otherwise), unless the installation allows private
    targets."""
    endpoint = service.create_endpoint(
        session, environment_id=principal.environment_id, data=body, now=now, targets=targets
    )
    read = service.to_read(endpoint)
    return Envelope(data=EndpointWithSecret(**read.model_dump(), secret=endpoint.secret))


@router.get("")
def list_webhook_endpoints(
    session: DbSession, principal: WritePrincipal
) -> Envelope[list[EndpointRead]]:
    endpoints = service.list_endpoints(session, environment_id=principal.environment_id)
    return Envelope(data=[service.to_read(e) for e in endpoints])


@router.get("/{endpoint_id}")
def get_webhook_endpoint(
    endpoint_id: str, session: DbSession, principal: WritePrincipal
) -> Envelope[EndpointRead]:
    endpoint = service.get_endpoint(
        session, environment_id=principal.environment_id, ref_id=endpoint_id
    )
    return Envelope(data=service.to_read(endpoint))


@router.patch("/{endpoint_id}")
def update_webhook_endpoint(
    endpoint_id: str,
    body: EndpointUpdate,
    session: DbSession,
    principal: WritePrincipal,
    now: Now,
    targets: Targets,
) -> Envelope[EndpointRead]:
    """Change the URL (checked as on creation), description or events; `isEnabled`
    disables or re-enables it."""
    endpoint = service.update_endpoint(
        session,
        environment_id=principal.environment_id,
        ref_id=endpoint_id,
        data=body,
        now=now,
        targets=targets,
    )
    return Envelope(data=service.to_read(endpoint))


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook_endpoint(
    endpoint_id: str, session: DbSession, principal: WritePrincipal
) -> None:
    """Delete the endpoint and everything still owed to it."""
    service.delete_endpoint(session, environment_id=principal.environment_id, ref_id=endpoint_id)


@router.post("/{endpoint_id}/rotate-secret")
def rotate_webhook_secret(
    endpoint_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[EndpointWithSecret]:
    """A new secret; the old one keeps signing too for 24 hours."""
    endpoint = service.rotate_secret(
        session, environment_id=principal.environment_id, ref_id=endpoint_id, now=now
    )
    read = service.to_read(endpoint)
    return Envelope(data=EndpointWithSecret(**read.model_dump(), secret=endpoint.secret))


@router.post("/{endpoint_id}/test", status_code=status.HTTP_202_ACCEPTED)
def send_test_event(
    endpoint_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> None:
    """Owe the endpoint a `test` event, delivered like any other."""
    service.send_test_event(
        session, environment_id=principal.environment_id, ref_id=endpoint_id, now=now
    )


@router.get("/{endpoint_id}/messages")
def list_webhook_messages(
    endpoint_id: str,
    session: DbSession,
    principal: WritePrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    message_status: Annotated[MessageStatus | None, Query(alias="status")] = None,
) -> Page[MessageRead]:
    """The endpoint's messages, oldest first; `after`/`before` cursors page through them."""
    messages, cursors = service.list_messages(
        session,
        environment_id=principal.environment_id,
        ref_id=endpoint_id,
        status=message_status,
        page=page,
    )
    return page_of([service.message_read(m) for m in messages], cursors)


@router.get("/{endpoint_id}/messages/{message_id}/attempts")
def list_webhook_attempts(
    endpoint_id: str, message_id: str, session: DbSession, principal: WritePrincipal
) -> Envelope[list[AttemptRead]]:
    message = service.get_message(
        session, environment_id=principal.environment_id, ref_id=endpoint_id, message_ref=message_id
    )
    attempts = service.list_attempts(session, message=message)
    return Envelope(
        data=[
            AttemptRead(
                attempted_at=a.attempted_at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
            for a in attempts
        ]
    )


@router.post("/{endpoint_id}/messages/{message_id}/redeliver")
def redeliver_webhook_message(
    endpoint_id: str, message_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[Redelivered]:
    """Send this message again (same `webhook-id`), now."""
    message = service.get_message(
        session, environment_id=principal.environment_id, ref_id=endpoint_id, message_ref=message_id
    )
    return Envelope(
        data=Redelivered(redelivered=delivery.redeliver(session, messages=[message], now=now))
    )


@router.post("/{endpoint_id}/redeliver-failed")
def redeliver_failed_messages(
    endpoint_id: str,
    session: DbSession,
    principal: WritePrincipal,
    now: Now,
    since: Annotated[Moment, Query(description="Failed messages created since then")],
) -> Envelope[Redelivered]:
    """Send again every message that failed since a time."""
    count = service.redeliver_failed_messages(
        session, environment_id=principal.environment_id, ref_id=endpoint_id, since=since, now=now
    )
    return Envelope(data=Redelivered(redelivered=count))

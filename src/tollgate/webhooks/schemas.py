"""Wire shapes of Tollgate's webhook endpoints and messages (Tollgate's own API)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AnyHttpUrl, Field, UrlConstraints

from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import Description, JsonBool
from tollgate.webhooks.event_types import EventType
from tollgate.webhooks.models import MessageStatus

Url = Annotated[AnyHttpUrl, UrlConstraints(max_length=2_048)]
EventTypes = Annotated[list[EventType], Field(max_length=len(EventType))]


class EndpointCreate(RequestModel):
    url: Url
    description: Description | None = None
    event_types: EventTypes | None = Field(
        None, description="The events to send; omitted or null: every event."
    )
    send_stigg_secret: JsonBool = Field(
        False,
        description="Also send the secret in `Stigg-Webhooks-Secret`, for receivers written "
        "for Stigg. Standard Webhooks signatures are always sent.",
    )


class EndpointUpdate(RequestModel):
    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    send_stigg_secret: JsonBool | None = None
    is_enabled: JsonBool | None = None


class EndpointRead(WireModel):
    id: str
    url: str
    description: str | None
    event_types: list[str] | None
    is_enabled: bool
    disabled_reason: str | None
    send_stigg_secret: bool
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointRead):
    secret: str = Field(description="Verify signatures with it (Standard Webhooks `whsec_`).")


class MessageRead(WireModel):
    id: str
    event_type: str
    status: MessageStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class AttemptRead(WireModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class Redelivered(WireModel):
    redelivered: int

"""Webhook endpoints, the messages owed to them (the outbox), and delivery attempts."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.db.base import Base, BigIntPK, TimestampMixin, UTCDateTime, enum_column


class MessageStatus(StrEnum):
    PENDING = "PENDING"  # owed: waiting for its turn, its time, or a retry
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"  # gave up after the retry schedule, or the endpoint said 410 Gone


class WebhookEndpoint(TimestampMixin, Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (UniqueConstraint("environment_id", "ref_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    ref_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    event_types: Mapped[list[str] | None] = mapped_column(JSON)  # None: every event
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    # After a rotation the old secret signs too, for a while, so receivers can switch.
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    send_stigg_secret: Mapped[bool] = mapped_column(Boolean, default=False)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())


# The partial indexes' predicate: only messages still owed.
_OWED = text(f"status = '{MessageStatus.PENDING.value}'")


class WebhookMessage(Base):
    """One event owed to one endpoint. Messages of one ordering key (a customer) reach an
    endpoint in id order: a later one waits while an earlier one is owed."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        # Only owed messages: the worker walks them in id order and asks, for each, whether
        # an earlier one of its key is still owed; delivered history costs it nothing.
        Index(
            "ix_webhook_messages_owed",
            "endpoint_id",
            "ordering_key",
            "id",
            sqlite_where=_OWED,
            postgresql_where=_OWED,
        ),
        Index(
            "ix_webhook_messages_owed_in_order",
            "id",
            sqlite_where=_OWED,
            postgresql_where=_OWED,
        ),
        Index(None, "endpoint_id", "id"),  # an endpoint's messages, in order
        Index(None, "ref_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    ref_id: Mapped[str] = mapped_column(String(64))  # the webhook-id header, kept on retries
    event_type: Mapped[str] = mapped_column(String(64))
    ordering_key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32))  # whose lease it is
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)

"""The logins the Auth0 Action reported, kept for their idempotency keys' window."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.db.base import Base, BigIntPK, UTCDateTime


class Auth0Login(Base):
    """One login as decided: a retry under its key within the window gets `answer` back.

    Written in the transaction that provisioned and counted, so a committed login always
    has its answer."""

    __tablename__ = "auth0_logins"
    __table_args__ = (
        UniqueConstraint("environment_id", "idempotency_key"),
        Index(None, "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    # Who logged in: the same key sent for another user or organization is refused.
    user_ref: Mapped[str] = mapped_column(String(255))
    organization_ref: Mapped[str] = mapped_column(String(255))  # "" without one
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    logged_in_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())

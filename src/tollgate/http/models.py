"""The table behind `Idempotency-Key`: POST requests whose answers a retry gets back."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.db.base import Base, BigIntPK, UTCDateTime

OPERATION_LENGTH = 1024


class IdempotentRequest(Base):
    """A POST with an `Idempotency-Key`, claimed in the transaction of the work it did and
    holding its answer; kept 24 hours."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # What the request was (method and path) and a digest of its query and body: the same
    # key with anything else is a conflict, not a retry.
    operation: Mapped[str] = mapped_column(String(OPERATION_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The answer; written in the same transaction as the claim, so a committed claim
    # always has one.
    status_code: Mapped[int | None] = mapped_column(Integer)
    media_type: Mapped[str | None] = mapped_column(String(128))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

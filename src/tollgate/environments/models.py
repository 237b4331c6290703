from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.db.base import Base, BigIntPK, UTCDateTime, enum_column, utcnow


class KeyKind(StrEnum):
    SERVER = "server"  # full access to its environment
    CLIENT = "client"  # read-only, safe to ship to a browser


class Environment(Base):
    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Signs customer tokens (HMAC-SHA256 of a customer id) for client keys.
    signing_secret: Mapped[str] = mapped_column(String(128))
    # Set only in an environment seeded by `serve --demo`: its demo keys are derived from
    # it, so every run can print the same keys. Never derived from signing_secret, whose
    # HMACs customers hold as tokens.
    demo_key_secret: Mapped[str | None] = mapped_column(String(128))
    # Development only: client keys may read any customer without a customer token.
    is_customer_token_optional: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # Browser origins (`https://app.example.com`, or `http://localhost:*` for any port) the
    # SDKs may call from with this environment's keys: CORS on /graphql and the edge paths.
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[KeyKind] = mapped_column(enum_column(KeyKind))
    # Only a prefix is kept in the clear, so a listing can name a key without revealing it.
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

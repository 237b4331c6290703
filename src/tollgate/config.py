"""Settings, read once at an entry point from `TOLLGATE_*` environment variables."""

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./tollgate.db"
# Limits on a request's head (request line and header fields), enforced by
# tollgate.http.server. 16 KiB is what h11 (uvicorn's other protocol) and Node.js allow: far
# above what API clients send (a key, a content type, a few proxy headers), still room for
# the cookies a browser may carry, and small enough that a flood of heads costs little.
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_HEADER_FIELDS = 100


def normalize_database_url(url: str) -> str:
    """Let users write plain `postgresql://` URLs; Tollgate always talks psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Every knob of a Tollgate process. Tests build `Settings(...)` directly."""

    model_config = SettingsConfigDict(env_prefix="TOLLGATE_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    # A second port answering the same API: Stigg's SDKs read their edge files from port
    # 3060 when pointed at localhost and given no `baseEdgeUri` (3060 in development).
    edge_port: int | None = Field(default=None, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    migrate_on_start: bool = True
    # `serve` runs the background jobs too unless this is off (then run `tollgate worker`).
    run_jobs: bool = True
    job_interval_seconds: float = 1.0
    # Request bodies larger than this are refused with 413 before they are read whole
    # (usage, event and import batches have limits of their own, sized to their items).
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    header_timeout_seconds: float = Field(default=DEFAULT_HEADER_TIMEOUT_SECONDS, gt=0)
    max_header_bytes: int = Field(default=DEFAULT_MAX_HEADER_BYTES, ge=1024)
    max_header_fields: int = Field(default=DEFAULT_MAX_HEADER_FIELDS, ge=1)
    # Webhooks may go to loopback, link-local and private addresses: for installations
    # whose receivers live on their own network. Off, such endpoints are refused.
    webhooks_allow_private_targets: bool = False
    # The whole of one webhook request: connecting, sending, and reading the answer's start.
    webhooks_delivery_deadline_seconds: float = Field(15.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_database_url(value)

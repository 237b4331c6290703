"""Settings, read once at an entry point from `TOLLGATE_*` environment variables."""

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./tollgate.db"


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
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    migrate_on_start: bool = True
    # `serve` runs the background jobs too unless this is off (then run `tollgate worker`).
    run_jobs: bool = True
    job_interval_seconds: float = 1.0
    # Webhooks may go to loopback, link-local and private addresses: for installations
    # whose receivers live on their own network. Off, such endpoints are refused.
    webhooks_allow_private_targets: bool = False
    # The whole of one webhook request: connecting, sending, and reading the answer's start.
    webhooks_delivery_deadline_seconds: float = Field(15.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_database_url(value)

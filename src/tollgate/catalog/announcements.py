"""Webhooks for catalog changes: `feature.*`, `product.*`, `plan.*`, `addon.*`.

Each carries the object as the API reads it (`GET` of the same object). Archiving says
`.deleted`, as Stigg does for archived customers. A package's draft edits say nothing
until they are published: only what customers can be given is announced."""

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy.orm import Session

from tollgate.catalog.enums import PackageKind
from tollgate.webhooks import outbox

# Catalog events of an environment reach an endpoint in the order they happened.
_ORDERING_KEY = "catalog"


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


def announce(
    session: Session,
    *,
    environment_id: int,
    kind: str,
    change: Change,
    read: Callable[[], BaseModel],
    now: datetime,
) -> None:
    """Owe `<kind>.<change>` (e.g. `feature.created`) carrying `read()`'s wire shape;
    `read` is called only if an endpoint listens."""
    event_type = f"{kind}.{change.value}"
    if not outbox.is_wanted(session, environment_id, event_type):
        return
    outbox.emit(
        session,
        environment_id=environment_id,
        event_type=event_type,
        entity=read().model_dump(mode="json", by_alias=True),
        ordering_key=_ORDERING_KEY,
        now=now,
    )


def package_kind(kind: PackageKind) -> str:
    return "plan" if kind is PackageKind.PLAN else "addon"

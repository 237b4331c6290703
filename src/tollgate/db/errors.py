"""Turning database constraint failures into domain errors at the edge of the database code."""

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tollgate.errors import AlreadyExists


def flush_unique(session: Session, *, kind: str, ref_id: str) -> None:
    """Flush a new row whose id must be unique; a duplicate becomes a 409 naming it."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(kind, ref_id) from exc

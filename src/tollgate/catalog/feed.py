"""What the catalog tells the change feed: an environment's catalog changed.

Features and published versions are what every snapshot is computed from, so a change to
either makes every cached snapshot of the environment stale once the transaction commits."""

from sqlalchemy.orm import Session

from tollgate.db.changes import Change, ChangeKind, record


def record_catalog_change(session: Session, environment_id: int) -> None:
    record(session, Change(ChangeKind.ENVIRONMENT, environment_id))

"""The change log: what committed transactions changed, kept for an hour so that streams
(the SDK's live updates) can be followed and resumed from any server process.

The change feed (`db.changes`) writes one row per changed customer or catalog in the
transaction of the change itself, so a row exists exactly when the change committed. Rows
say only *what* changed; a reader asks the API for the new state."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Index, Select, String, delete, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from tollgate.db.base import Base, BigIntPK, UTCDateTime, utcnow
from tollgate.db.engine import unit_of_work

# A stream resumed from further back than this starts over (it is told to resynchronise).
RETENTION = timedelta(hours=1)
_PRUNE_BATCH = 10_000


class ChangeLogEntry(Base):
    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_environment_id", "environment_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # No foreign key: the log outlives nothing and must never block deleting an environment.
    environment_id: Mapped[int]
    kind: Mapped[str] = mapped_column(String(1))  # a db.changes.ChangeKind value
    customer_ref: Mapped[str] = mapped_column(String(255))  # "" for the catalog
    # A customer change's new entitlements version: a reader asks for at least this one,
    # so a server process that has not yet heard of the change cannot answer from memory.
    version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


@dataclass(frozen=True, slots=True)
class LoggedChange:
    id: int
    environment_id: int
    kind: str
    customer_ref: str
    version: int


def write(session: Session, changes: Iterable[tuple[int, str, str, int]]) -> None:
    """Log (environment id, kind, customer ref, version) in `session`'s transaction."""
    now = utcnow()
    rows = [
        {"environment_id": e, "kind": k, "customer_ref": c, "version": v, "created_at": now}
        for e, k, c, v in dict.fromkeys(changes)
    ]
    if rows:
        session.execute(insert(ChangeLogEntry), rows)


def _entries() -> Select[tuple[int, int, str, str, int]]:
    """The columns of a LoggedChange, in its order."""
    return select(
        ChangeLogEntry.id,
        ChangeLogEntry.environment_id,
        ChangeLogEntry.kind,
        ChangeLogEntry.customer_ref,
        ChangeLogEntry.version,
    )


def read_after(
    session: Session, after_id: int, *, limit: int, environment_id: int | None = None
) -> list[LoggedChange]:
    """Entries past `after_id` in id order, of one environment or all."""
    query = _entries().where(ChangeLogEntry.id > after_id)
    if environment_id is not None:
        query = query.where(ChangeLogEntry.environment_id == environment_id)
    rows = session.execute(query.order_by(ChangeLogEntry.id).limit(limit)).all()
    return [LoggedChange(*row) for row in rows]


def read_ids(session: Session, ids: Sequence[int]) -> list[LoggedChange]:
    """The entries among `ids` that exist (now committed)."""
    if not ids:
        return []
    query = _entries().where(ChangeLogEntry.id.in_(ids))
    return [LoggedChange(*row) for row in session.execute(query.order_by(ChangeLogEntry.id))]


def last_id(session: Session) -> int:
    found = session.execute(select(ChangeLogEntry.id).order_by(ChangeLogEntry.id.desc()).limit(1))
    return found.scalar() or 0


def holds_everything_after(session: Session, entry_id: int) -> bool:
    """Whether every entry after `entry_id` is still kept, so a stream may resume there.
    Pruning removes a prefix of ids and always keeps the newest entry, so the log holds
    everything after `entry_id` when its oldest entry comes right after it or earlier; an
    id beyond the newest is from another database (restored, or replaced)."""
    oldest, newest = session.execute(
        select(func.min(ChangeLogEntry.id), func.max(ChangeLogEntry.id))
    ).one()
    if oldest is None:
        return entry_id == 0
    return bool(oldest <= entry_id + 1 and entry_id <= newest)


def prune(sessions: sessionmaker[Session], now: datetime) -> int:
    """Drop the entries up to the newest one older than RETENTION (a prefix of ids, so a
    clock that differs between writers cannot leave a gap), keeping the newest entry of
    all; a batch per transaction; how many went."""
    removed = 0
    with unit_of_work(sessions) as session:
        newest = last_id(session)
        horizon = session.execute(
            select(func.max(ChangeLogEntry.id)).where(ChangeLogEntry.created_at < now - RETENTION)
        ).scalar()
    if horizon is None:
        return 0
    bound = min(horizon, newest - 1)
    while True:
        with unit_of_work(sessions) as session:
            batch = (
                select(ChangeLogEntry.id)
                .where(ChangeLogEntry.id <= bound)
                .order_by(ChangeLogEntry.id)
                .limit(_PRUNE_BATCH)
            )
            result = session.execute(delete(ChangeLogEntry).where(ChangeLogEntry.id.in_(batch)))
            count: int = result.rowcount  # type: ignore[attr-defined]
        removed += count
        if count < _PRUNE_BATCH:
            return removed

"""Turning database constraint failures into domain errors at the edge of the database code."""

from collections.abc import Callable
from typing import TypeVar

from psycopg.errors import UniqueViolation
from sqlalchemy import Table, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tollgate.errors import AlreadyExists

T = TypeVar("T")


def flush_unique(session: Session, *, kind: str, ref_id: str) -> None:
    """Flush a new row whose id must be unique; a duplicate becomes a 409 naming it."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(kind, ref_id) from exc


def is_duplicate(error: IntegrityError, table: Table, columns: tuple[str, ...]) -> bool:
    """Whether `error` refused a row of `table` repeating the values of unique `columns`."""
    if isinstance(error.orig, UniqueViolation):
        return error.orig.diag.constraint_name == _unique_constraint(table, columns).name
    # SQLite names no constraint, only its columns.
    listed = ", ".join(f"{table.name}.{column}" for column in columns)
    return str(error.orig) == f"UNIQUE constraint failed: {listed}"


def _unique_constraint(table: Table, columns: tuple[str, ...]) -> UniqueConstraint:
    return next(
        constraint
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint) and tuple(constraint.columns.keys()) == columns
    )


def run_again_on_duplicate(
    session: Session,
    work: Callable[[], T],
    *,
    table: Table,
    columns: tuple[str, ...],
    attempts: int = 3,
) -> T:
    """Run `work` in a savepoint; if another transaction committed a row with the same
    unique `columns` after `work` had looked for it, roll back to the savepoint and run
    `work` again, which now sees that row (PostgreSQL reads what is committed at each
    statement, and a conflicting insert waits until its rival commits or rolls back).

    Each run again follows a rival's commit, so a few attempts suffice; past them the
    IntegrityError goes up (answered 409: a concurrent change, retry)."""
    for _ in range(attempts - 1):
        try:
            with session.begin_nested():
                return work()
        except IntegrityError as error:
            if not is_duplicate(error, table, columns):
                raise
    with session.begin_nested():
        return work()

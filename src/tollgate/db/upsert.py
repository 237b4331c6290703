"""Inserts that skip rows whose unique key is taken, on SQLite and PostgreSQL alike."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_missing(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows whose unique constraints are free; leave the others as they are.

    Callers sort `rows` by their unique key, so that concurrent transactions inserting
    overlapping rows wait for each other in one order and never deadlock."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).on_conflict_do_nothing(), list(rows))

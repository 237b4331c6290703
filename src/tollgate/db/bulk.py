"""Writing many rows at once, the fast way for each database.

PostgreSQL takes rows fastest through COPY; SQLite through one prepared INSERT run for
every row. Neither returns the new rows' ids, so ids are allocated first: from the table's
sequence on PostgreSQL, and past the largest id on SQLite (safe there: the caller holds
SQLite's single write lock for the whole transaction).

COPY runs on the driver's own connection, out of SQLAlchemy's sight, so its failures are
wrapped here as SQLAlchemy would wrap them (a duplicate is an `IntegrityError` on both
databases). Like any failed statement on PostgreSQL, a failed COPY aborts the transaction
until it is rolled back, or rolled back to a savepoint taken before it."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Table, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def allocate_ids(session: Session, table: Table, count: int) -> list[int]:
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": table.name, "n": count},
        )
        return [row[0] for row in rows]
    largest = session.scalar(select(func.coalesce(func.max(table.c.id), 0)))
    return list(range(int(largest or 0) + 1, int(largest or 0) + 1 + count))


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys (columns), ids included."""
    if not rows:
        return
    columns = list(rows[0])
    times: dict[datetime, str] = {}  # rows of a batch share most of their moments
    if session.get_bind().dialect.name != "postgresql":
        # Straight to the driver: SQLAlchemy's per-value bind processing costs more than
        # SQLite's insert itself. Values are stored as SQLAlchemy would store them.
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        session.connection().exec_driver_sql(
            f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
            [tuple(sqlite_param(row[column], times) for column in columns) for row in rows],
        )
        return
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    connection = session.connection().connection.driver_connection
    assert connection is not None
    lines = ["\t".join([_copy_text(row[column], times) for column in columns]) for row in rows]
    try:
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            # COPY's text format built here in one string: psycopg's per-row writer costs
            # several times as much for rows this simple.
            copy.write("\n".join(lines) + "\n")
    except psycopg.Error as error:
        wrapped = DBAPIError.instance(statement.as_string(connection), None, error, psycopg.Error)
        raise wrapped from error


def sqlite_param(value: Any, times: dict[datetime, str]) -> Any:
    """A value as SQLAlchemy would store it in SQLite; `times` memoizes formatted moments."""
    if isinstance(value, datetime):
        text = times.get(value)
        if text is None:
            # SQLAlchemy's SQLite DATETIME format, in UTC (see db.base.UTCDateTime).
            text = times[value] = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return text
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any, times: dict[datetime, str]) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        text = times.get(value)
        if text is None:
            text = times[value] = value.astimezone(UTC).isoformat()
        return text
    if isinstance(value, Enum):
        value = value.value
    elif isinstance(value, dict | list):
        value = json.dumps(value)
    return str(value).translate(_COPY_ESCAPES)


def update_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Update rows by id; every row gives the same columns."""
    if not rows:
        return
    columns = [column for column in rows[0] if column != "id"]
    if session.get_bind().dialect.name != "postgresql":
        assignments = ", ".join(f"{column} = ?" for column in columns)
        times: dict[datetime, str] = {}
        session.connection().exec_driver_sql(
            f"UPDATE {table.name} SET {assignments} WHERE id = ?",
            [
                (*(sqlite_param(row[column], times) for column in columns), row["id"])
                for row in rows
            ],
        )
        return
    # One statement whatever the row count: each column travels as one array.
    dialect = session.get_bind().dialect
    names = ["id", *columns]
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(dialect)}[])" for name in names
    )
    assignments = ", ".join(f"{column} = t.{column}" for column in columns)
    statement = (
        f"UPDATE {table.name} AS target SET {assignments} "
        f"FROM unnest({arrays}) AS t({', '.join(names)}) WHERE target.id = t.id"
    )
    session.execute(text(statement), {name: [row[name] for row in rows] for name in names})

"""Duplicates written in bulk: the same error on both databases, naming its constraint, and
a transaction that goes on once rolled back to a savepoint."""

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tollgate.db import bulk
from tollgate.db.engine import make_session_factory
from tollgate.db.errors import is_duplicate, run_again_on_duplicate
from tollgate.environments.models import Environment

TABLE: Table = Environment.__table__  # type: ignore[assignment]


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A write transaction, rolled back at the end."""
    with make_session_factory(engine)() as session:
        try:
            yield session
        finally:
            session.rollback()


def environment(row_id: int, name: str) -> dict[str, Any]:
    return {
        "id": row_id,
        "name": name,
        "signing_secret": "s",
        "demo_key_secret": None,
        "created_at": datetime.now(UTC),
    }


def names(session: Session, name: str) -> int:
    return int(session.scalar(select(func.count()).where(TABLE.c.name == name)) or 0)


class TestInsertRows:
    def test_a_duplicate_is_an_integrity_error_naming_its_columns(self, session: Session) -> None:
        name = f"dup-{secrets.token_hex(4)}"
        first, second = bulk.allocate_ids(session, TABLE, 2)
        bulk.insert_rows(session, TABLE, [environment(first, name)])
        with pytest.raises(IntegrityError) as raised, session.begin_nested():
            bulk.insert_rows(session, TABLE, [environment(second, name)])
        assert is_duplicate(raised.value, TABLE, ("name",))
        assert names(session, name) == 1  # the transaction goes on

    def test_another_constraint_is_not_that_duplicate(self, session: Session) -> None:
        (taken,) = bulk.allocate_ids(session, TABLE, 1)
        bulk.insert_rows(session, TABLE, [environment(taken, f"a-{secrets.token_hex(4)}")])
        with pytest.raises(IntegrityError) as raised, session.begin_nested():
            bulk.insert_rows(session, TABLE, [environment(taken, f"b-{secrets.token_hex(4)}")])
        assert not is_duplicate(raised.value, TABLE, ("name",))


class TestRunAgainOnDuplicate:
    def test_runs_again_from_the_savepoint(self, session: Session) -> None:
        name = f"dup-{secrets.token_hex(4)}"
        (taken,) = bulk.allocate_ids(session, TABLE, 1)
        bulk.insert_rows(session, TABLE, [environment(taken, name)])
        runs: list[int] = []

        def work() -> int:
            runs.append(names(session, name))
            if len(runs) == 1:  # as if it had not seen the rival's row
                (row_id,) = bulk.allocate_ids(session, TABLE, 1)
                bulk.insert_rows(session, TABLE, [environment(row_id, name)])
            return len(runs)

        assert run_again_on_duplicate(session, work, table=TABLE, columns=("name",)) == 2
        assert names(session, name) == 1

    def test_gives_up_after_its_attempts(self, session: Session) -> None:
        name = f"dup-{secrets.token_hex(4)}"
        (taken,) = bulk.allocate_ids(session, TABLE, 1)
        bulk.insert_rows(session, TABLE, [environment(taken, name)])
        runs: list[int] = []

        def work() -> None:
            runs.append(1)
            (row_id,) = bulk.allocate_ids(session, TABLE, 1)
            bulk.insert_rows(session, TABLE, [environment(row_id, name)])

        with pytest.raises(IntegrityError):
            run_again_on_duplicate(session, work, table=TABLE, columns=("name",), attempts=3)
        assert len(runs) == 3

"""The change feed announces what a transaction committed, and nothing of one rolled back."""

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tollgate.db.changes import Change, ChangeFeed, ChangeKind, record
from tollgate.db.engine import make_session_factory, unit_of_work


@pytest.fixture
def heard(engine: Engine) -> tuple[ChangeFeed, list[Change]]:
    feed = ChangeFeed()
    received: list[Change] = []
    feed.subscribe(received.extend, on_reset=lambda: None)
    return feed, received


class TestSavepoints:
    def test_a_savepoint_rolled_back_keeps_the_changes_recorded_before_it(
        self, engine: Engine, heard: tuple[ChangeFeed, list[Change]]
    ) -> None:
        feed, received = heard
        sessions = make_session_factory(engine)
        feed.attach(sessions, engine)
        before = Change(ChangeKind.KEYS, 1)
        with unit_of_work(sessions) as session:
            record(session, before)
            with pytest.raises(RuntimeError):
                _fail_in_a_savepoint(session)
        assert before in received

    def test_a_transaction_rolled_back_announces_nothing(
        self, engine: Engine, heard: tuple[ChangeFeed, list[Change]]
    ) -> None:
        feed, received = heard
        sessions = make_session_factory(engine)
        feed.attach(sessions, engine)
        with pytest.raises(RuntimeError):
            _record_then_fail(sessions)
        with unit_of_work(sessions) as session:
            session.execute(text("SELECT 1"))
        assert received == []


def _fail_in_a_savepoint(session: Session) -> None:
    with session.begin_nested():
        session.execute(text("SELECT 1"))
        raise RuntimeError("lost a race; the savepoint rolls back")


def _record_then_fail(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        record(session, Change(ChangeKind.KEYS, 1))
        session.execute(text("SELECT 1"))
        raise RuntimeError("rolled back")

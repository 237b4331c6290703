"""Engines and sessions for SQLite (default) and PostgreSQL (psycopg 3)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import Session, sessionmaker

# SQLite transactions: pysqlite's own BEGIN handling is switched off so that SQLAlchemy's
# "begin" event emits the BEGIN (the recipe of SQLAlchemy's pysqlite documentation). Writes
# begin IMMEDIATE, taking the write lock before their first read, so a rule checked by a read
# still holds when the write lands; reads begin DEFERRED and run beside the writer (WAL).
SQLITE_BEGIN = "sqlite_begin"

# How long a writer waits for its turn on SQLite before the request is answered 503.
WRITER_WAIT_SECONDS = 60

# Connections per process; requests beyond it wait for admission (see http.deps).
POOL_SIZE = 20


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class _SqliteWriters:
    """One write transaction at a time per process, queued on a lock.

    SQLite lets one writer in; the others wait in its busy handler, which polls and gives up
    after `busy_timeout`, so under load a write could fail although nothing was wrong.
    Queued here instead, writers wait their turn for as long as it takes. (Another process,
    such as the CLI, still meets the busy handler, which is rare and short.)"""

    _HELD = "tollgate.sqlite_writer"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def begin(self, connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        if mode == "IMMEDIATE":
            # Released by commit or rollback, perhaps on another thread: a plain Lock.
            if not self._lock.acquire(timeout=WRITER_WAIT_SECONDS):
                raise SATimeoutError(f"no turn to write within {WRITER_WAIT_SECONDS} s")
            connection.info[self._HELD] = True
        try:
            connection.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            self.end(connection)
            raise

    def end(self, connection: Connection) -> None:
        if connection.info.pop(self._HELD, False):
            self._lock.release()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build the process's one engine. Called at an entry point, never at import."""
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        pooling = {} if in_memory else {"pool_size": POOL_SIZE}
        engine = create_engine(
            url, connect_args={"check_same_thread": False}, **{**pooling, **kwargs}
        )
        writers = _SqliteWriters()
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", writers.begin)
        event.listen(engine, "commit", writers.end)
        event.listen(engine, "rollback", writers.end)
        return engine
    return create_engine(url, pool_pre_ping=True, **{"pool_size": POOL_SIZE, **kwargs})


def make_session_factory(engine: Engine, *, write: bool = True) -> sessionmaker[Session]:
    """Sessions for units of work that write (the default) or only read.

    On PostgreSQL both are the same; writers lock the rows their rules depend on with
    SELECT ... FOR UPDATE. On SQLite a writer's transaction takes the write lock at BEGIN."""
    bind = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE" if write else "DEFERRED"})
    return sessionmaker(bind, expire_on_commit=False, autoflush=False)


@dataclass(frozen=True, slots=True)
class SessionFactories:
    """An app's two session factories (see `make_session_factory`)."""

    read: sessionmaker[Session]
    write: sessionmaker[Session]


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

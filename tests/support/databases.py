"""The test databases: PostgreSQL found through the environment, a schema of its own per
run or test, dropped afterwards."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text

from tollgate.config import normalize_database_url
from tollgate.db.engine import make_engine

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return normalize_database_url(
        os.environ.get("TOLLGATE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    )


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    probe = create_engine(url)
    try:
        with probe.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL at {url} is unreachable ({type(exc).__name__})"
    finally:
        probe.dispose()
    return None


def require_postgres() -> str:
    url = postgres_url()
    problem = postgres_reachable(url)
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must run the PostgreSQL tests")
        pytest.skip(f"{problem}; set TOLLGATE_TEST_POSTGRES_URL to run the PostgreSQL tests")
    return url


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema, dropped afterwards, so runs and tests never see each other's rows."""
    schema = f"tollgate_test_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield schema
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def url_in_schema(url: str, schema: str) -> str:
    """A URL whose connections work in `schema` (libpq `options`), for other processes."""
    return f"{url}?options=-csearch_path%3D{schema}"


@contextmanager
def postgres_schema_engine(url: str) -> Iterator[Engine]:
    with postgres_schema(url) as schema:
        engine = make_engine(url_in_schema(url, schema))
        try:
            yield engine
        finally:
            engine.dispose()

"""Alembic migrations: they match the models, on both backends, and re-running is harmless."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

import tollgate.schema.migrate as migrate
from tollgate.db.engine import make_engine
from tollgate.schema.tables import Base


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    yield engine
    engine.dispose()


class TestDrift:
    def test_models_and_migrations_agree(self, engine: Engine) -> None:
        migrate.check(engine)

    def test_every_model_table_exists_after_upgrade(self, engine: Engine) -> None:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables


class TestUpgrade:
    def test_upgrade_is_idempotent(self, engine: Engine) -> None:
        migrate.upgrade(engine)
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
        migrate.check(engine)
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1

    def test_is_up_to_date_after_upgrade(self, engine: Engine) -> None:
        assert migrate.is_up_to_date(engine)

    def test_a_fresh_file_is_not_up_to_date_until_upgraded(self, empty_sqlite: Engine) -> None:
        assert not migrate.is_up_to_date(empty_sqlite)
        migrate.upgrade(empty_sqlite)
        assert migrate.is_up_to_date(empty_sqlite)
        migrate.check(empty_sqlite)
        migrate.upgrade(empty_sqlite)
        assert migrate.is_up_to_date(empty_sqlite)

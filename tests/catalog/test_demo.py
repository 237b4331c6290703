from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from tollgate.catalog import demo
from tollgate.catalog.models import Feature, Package, PackageEntitlement, PackageVersion
from tollgate.db.engine import make_session_factory, unit_of_work
from tollgate.environments.service import ensure_environment


def _counts(engine: Engine, environment_id: int) -> tuple[int, ...]:
    with make_session_factory(engine)() as session:
        return tuple(
            session.scalar(query) or 0
            for query in (
                select(func.count())
                .select_from(Feature)
                .where(Feature.environment_id == environment_id),
                select(func.count())
                .select_from(Package)
                .where(Package.environment_id == environment_id),
                select(func.count())
                .select_from(PackageEntitlement)
                .join(PackageVersion)
                .join(Package, Package.id == PackageVersion.package_id)
                .where(Package.environment_id == environment_id),
            )
        )


class TestDemoCatalog:
    def test_seeds_an_empty_environment_once(self, engine: Engine) -> None:
        factory = make_session_factory(engine)
        with unit_of_work(factory) as session:
            environment_id = ensure_environment(session, name=f"demo-{id(self)}").id
            assert demo.seed(session, environment_id=environment_id, now=datetime.now(UTC)) is True
        seeded = _counts(engine, environment_id)
        assert seeded == (4, 4, 11)
        with unit_of_work(factory) as session:
            assert demo.seed(session, environment_id=environment_id, now=datetime.now(UTC)) is False
        assert _counts(engine, environment_id) == seeded

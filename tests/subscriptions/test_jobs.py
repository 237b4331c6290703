"""The lifecycle job: exactly once with several workers on PostgreSQL, and `tollgate serve`
running it on its own."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import stigg
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tests.support import (
    START,
    live_server,
    make_tenant,
    postgres_schema,
    require_postgres,
    url_in_schema,
)
from tests.support.subscriptions import customer, get, subscribe
from tollgate.app import create_app
from tollgate.catalog import demo
from tollgate.config import Settings
from tollgate.customers.models import Customer
from tollgate.customers.schemas import CustomerCreate
from tollgate.customers.service import provision_customer
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments.service import ensure_environment
from tollgate.http.components import app_components
from tollgate.jobs.runner import JobRunner
from tollgate.kit.clock import ManualClock
from tollgate.schema import migrate
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.enums import SubscriptionStatus
from tollgate.subscriptions.jobs import advance_due_subscriptions
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.schemas import SubscriptionProvision

CUSTOMERS = 30
WORKERS = 4
TRIAL_END = START + timedelta(days=14)


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A migrated PostgreSQL schema of this test's own, so the job sees only its rows."""
    url = require_postgres()
    with postgres_schema(url) as schema:
        schema_url = url_in_schema(url, schema)
        engine = make_engine(schema_url)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        yield schema_url


def _seed_trials(sessions: sessionmaker[Session]) -> None:
    """The demo catalog and CUSTOMERS customers, each on pro's 14-day trial from START."""
    with unit_of_work(sessions) as session:
        environment_id = ensure_environment(session, name="jobs").id
        demo.seed(session, environment_id=environment_id, now=datetime.now(UTC))
        for n in range(CUSTOMERS):
            ref = f"customer-{n:02d}"
            provision_customer(
                session,
                environment_id=environment_id,
                data=CustomerCreate.model_validate({"id": ref}),
                now=START,
            )
            subscriptions.provision_subscription(
                session,
                environment_id=environment_id,
                data=SubscriptionProvision.model_validate(
                    {"customerId": ref, "planId": "plan-pro"}
                ),
                now=START,
            )


def _versions(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(select(Customer.ref_id, Customer.entitlements_version))
        return dict(rows.tuples().all())


def _subscriptions(sessions: sessionmaker[Session]) -> list[tuple[SubscriptionStatus, datetime]]:
    with sessions() as session:
        rows = session.execute(
            select(Subscription.status, Subscription.current_period_start).order_by(Subscription.id)
        )
        return list(rows.tuples().all())


def _run_workers(url: str, now: datetime) -> list[int]:
    """advance_due_subscriptions from WORKERS threads at once, each with its own engine."""
    engines = [make_engine(url) for _ in range(WORKERS)]
    start_together = threading.Barrier(WORKERS)
    counts = [0] * WORKERS
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            sessions = make_session_factory(engines[index])
            start_together.wait(timeout=30)
            counts[index] = advance_due_subscriptions(sessions, now)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a worker hung"
    finally:
        for engine in engines:
            engine.dispose()
    assert failures == []
    return counts


class TestExactlyOnceOnPostgres:
    def test_concurrent_workers_advance_each_subscription_once(self, fresh_postgres: str) -> None:
        setup = make_engine(fresh_postgres)
        try:
            sessions = make_session_factory(setup)
            _seed_trials(sessions)
            before = _versions(sessions)
            assert len(before) == CUSTOMERS
            assert {status for status, _ in _subscriptions(sessions)} == {
                SubscriptionStatus.IN_TRIAL
            }

            # Every trial ends: each subscription converts once, whoever takes it.
            counts = _run_workers(fresh_postgres, TRIAL_END + timedelta(minutes=1))
            assert sum(counts) == CUSTOMERS, counts
            assert _subscriptions(sessions) == [(SubscriptionStatus.ACTIVE, TRIAL_END)] * CUSTOMERS
            converted = _versions(sessions)
            assert {ref: converted[ref] - before[ref] for ref in before} == dict.fromkeys(before, 1)

            # Nothing is due any more: another round finds nothing to do.
            assert _run_workers(fresh_postgres, TRIAL_END + timedelta(minutes=2)) == [0] * WORKERS
            assert _versions(sessions) == converted

            # A month later every billing period turns over, once each.
            next_period = datetime(2026, 2, 19, 10, tzinfo=UTC)
            counts = _run_workers(fresh_postgres, next_period + timedelta(seconds=1))
            assert sum(counts) == CUSTOMERS, counts
            assert (
                _subscriptions(sessions) == [(SubscriptionStatus.ACTIVE, next_period)] * CUSTOMERS
            )
            rolled = _versions(sessions)
            assert {ref: rolled[ref] - converted[ref] for ref in before} == dict.fromkeys(before, 1)
        finally:
            setup.dispose()


class TestServeRunsJobs:
    def test_a_trial_converts_without_anyone_running_the_job(self, engine: Engine) -> None:
        clock = ManualClock(START)
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            run_jobs=True,
            job_interval_seconds=0.05,
        )
        app = create_app(settings, engine=engine, clock=clock)
        with live_server(app) as url:
            tenant = make_tenant(engine, url)
            with unit_of_work(make_session_factory(engine)) as session:
                environment = ensure_environment(session, name=tenant.name)
                demo.seed(session, environment_id=environment.id, now=datetime.now(UTC))
            with stigg.Stigg(api_key=tenant.server_key, base_url=url, max_retries=0) as client:
                customer(client)
                subscription = subscribe(client, plan_id="plan-pro")
                assert subscription.status == "IN_TRIAL"

                clock.set(TRIAL_END + timedelta(minutes=1))
                deadline = time.monotonic() + 10
                while (current := get(client, subscription.id)).status != "ACTIVE":
                    assert time.monotonic() < deadline, f"still {current.status} after 10 s"
                    time.sleep(0.02)
                assert current.current_billing_period_start == TRIAL_END
                assert app_components(app).get(JobRunner).passes > 0

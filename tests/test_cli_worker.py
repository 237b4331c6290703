"""`tollgate worker` as an operator runs it: a process carrying out what is due."""

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.support import start_worker
from tollgate.catalog import demo
from tollgate.customers import service as customers
from tollgate.customers.schemas import CustomerCreate
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments.service import ensure_environment
from tollgate.schema import migrate
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.enums import SubscriptionStatus
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.schemas import SubscriptionProvision


class TestWorker:
    def test_ends_a_trial_that_ended_while_nothing_ran_and_stops_on_sigterm(
        self, database_url: str, tmp_path: Path
    ) -> None:
        engine = make_engine(database_url)
        try:
            migrate.upgrade(engine)
            sessions = make_session_factory(engine)
            fifteen_days_ago = datetime.now(UTC) - timedelta(days=15)
            with unit_of_work(sessions) as session:
                environment = ensure_environment(session, name="development")
                demo.seed(session, environment_id=environment.id, now=datetime.now(UTC))
                customers.provision_customer(
                    session,
                    environment_id=environment.id,
                    data=CustomerCreate(id="acme"),
                    now=fifteen_days_ago,
                )
                subscription, _ = subscriptions.provision_subscription(
                    session,
                    environment_id=environment.id,
                    data=SubscriptionProvision(customer_id="acme", plan_id="plan-pro"),
                    now=fifteen_days_ago,
                )
                assert subscription.status is SubscriptionStatus.IN_TRIAL
            log = tmp_path / "worker.log"
            worker = start_worker(database_url, log)
            try:
                status = _await_status(sessions, SubscriptionStatus.ACTIVE)
            finally:
                worker.send_signal(signal.SIGTERM)
                exit_code = worker.wait(timeout=20)
            assert status is SubscriptionStatus.ACTIVE
            assert exit_code == 0
            assert "worker stopped" in log.read_text()
        finally:
            engine.dispose()


def _await_status(
    sessions: sessionmaker[Session], wanted: SubscriptionStatus
) -> SubscriptionStatus:
    """Poll the database, with a deadline, until the worker has done its work."""
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        with unit_of_work(sessions) as session:
            status = session.scalar(select(Subscription.status))
        if status is wanted:
            return status
        time.sleep(0.1)
    raise AssertionError(f"the worker never made the subscription {wanted}; it is {status}")

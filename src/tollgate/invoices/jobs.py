"""The renewal job: every paid subscription's current period gets its invoice."""

import logging
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from tollgate.db.engine import unit_of_work
from tollgate.invoices import service
from tollgate.jobs.runner import Job

log = logging.getLogger("tollgate.jobs")
BATCH = 200


def renew_due_subscriptions(sessions: sessionmaker[Session], now: datetime) -> int:
    """Invoice due periods a batch per transaction, each subscription in a savepoint of its
    own: one that fails is logged and left for the next run, the others go on."""
    renewed = 0
    failed: set[int] = set()
    while True:
        with unit_of_work(sessions) as session:
            due = service.due_for_renewal(session, now=now, limit=BATCH, skip=failed)
            for subscription in due:
                try:
                    with session.begin_nested():
                        service.renew(session, subscription, now=now)
                except Exception:
                    log.exception("renewal failed", extra={"id": subscription.id})
                    failed.add(subscription.id)
            renewed += len(due)
        if len(due) < BATCH:
            return renewed - len(failed)


JOBS = [Job("invoices.renew", renew_due_subscriptions)]

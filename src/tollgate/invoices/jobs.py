"""The renewal job: every paid subscription's current period gets its invoice."""

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from tollgate.db.engine import unit_of_work
from tollgate.invoices import renewals, service
from tollgate.jobs.runner import Job
from tollgate.subscriptions.models import Subscription

log = logging.getLogger("tollgate.jobs")
BATCH = 500


def renew_due_subscriptions(sessions: sessionmaker[Session], now: datetime) -> int:
    """Invoice due periods, then the last usage of subscriptions whose paid periods are
    over; a batch per transaction, each subscription in a savepoint of its own: one that
    fails is logged and left for the next run, the others go on."""
    return _each(sessions, now, service.due_for_renewal, renewals.renew_many, "renewal") + _each(
        sessions, now, service.due_for_closing, _close_many, "closing"
    )


def _close_many(session: Session, subscriptions: Sequence[Subscription], *, now: datetime) -> None:
    for subscription in subscriptions:
        service.close_out(session, subscription, now=now)


def _each(
    sessions: sessionmaker[Session],
    now: datetime,
    due: Callable[..., Sequence[Subscription]],
    work: Callable[..., None],
    name: str,
) -> int:
    """A batch per transaction, worked at once; if that fails, each subscription of it in
    a savepoint of its own: one that fails is logged and left for the next run."""
    done = 0
    failed: set[int] = set()
    while True:
        with unit_of_work(sessions) as session:
            batch = due(session, now=now, limit=BATCH, skip=failed)
            try:
                with session.begin_nested():
                    work(session, batch, now=now)
                done += len(batch)
            except Exception:
                for subscription in batch:
                    try:
                        with session.begin_nested():
                            work(session, [subscription], now=now)
                        done += 1
                    except Exception:
                        log.exception(f"{name} failed", extra={"id": subscription.id})
                        failed.add(subscription.id)
        if len(batch) < BATCH:
            return done


JOBS = [Job("invoices.renew", renew_due_subscriptions)]

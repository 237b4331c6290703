"""The lifecycle job: every subscription transition and grant expiry that is due."""

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from tollgate.customers import promotions
from tollgate.db.engine import unit_of_work
from tollgate.jobs.runner import Job
from tollgate.subscriptions import lifecycle
from tollgate.subscriptions.models import Subscription

log = logging.getLogger("tollgate.jobs")
BATCH = 100


def advance_due_subscriptions(sessions: sessionmaker[Session], now: datetime) -> int:
    """Advance every subscription whose next transition is due, each in its own transaction."""
    advanced = 0
    failed: set[int] = set()
    while True:
        with unit_of_work(sessions) as session:
            query = select(Subscription.id).where(Subscription.next_transition_at <= now)
            if failed:
                query = query.where(Subscription.id.not_in(failed))
            due = session.scalars(query.order_by(Subscription.next_transition_at).limit(BATCH))
            ids = list(due)
        if not ids:
            return advanced
        moved = 0
        for subscription_id in ids:
            try:
                moved += _advance_one(sessions, subscription_id, now)
            except Exception:
                log.exception("subscription transition failed", extra={"id": subscription_id})
                failed.add(subscription_id)
        advanced += moved
        if moved == 0:
            return advanced  # what is left is held by another worker, or failed


def _advance_one(sessions: sessionmaker[Session], subscription_id: int, now: datetime) -> int:
    with unit_of_work(sessions) as session:
        subscription = session.scalar(
            select(Subscription)
            .options(selectinload(Subscription.addons), selectinload(Subscription.schedules))
            .where(Subscription.id == subscription_id, Subscription.next_transition_at <= now)
            .with_for_update(skip_locked=True)
        )
        # Gone, no longer due (another worker did it) or locked by one: nothing to do here.
        if subscription is None:
            return 0
        lifecycle.advance(session, subscription, now=now)
        return 1


def expire_due_promotions(sessions: sessionmaker[Session], now: datetime) -> int:
    expired = 0
    while True:
        with unit_of_work(sessions) as session:
            count = promotions.expire_due_promotions(session, now=now, limit=BATCH)
        expired += count
        if count < BATCH:
            return expired


JOBS = [
    Job("subscriptions.advance", advance_due_subscriptions),
    Job("promotions.expire", expire_due_promotions),
]

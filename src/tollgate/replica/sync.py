"""Reading the source again: the first backfill, `tollgate replica resync`, and the repair
of gaps the audit finds.

A resync stamps what it writes with the source's time before it began reading, under the
same rule as events: a row that an event newer than that already changed keeps the event's
state, and any change the resync read too early to see arrives as a newer event."""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from tollgate.replica import store
from tollgate.replica import tables as t
from tollgate.replica.events import (
    customer_of,
    feature_of,
    scope_of_state,
    subscription_of,
)
from tollgate.replica.source import Source

log = logging.getLogger("tollgate.replica")

RESYNCED_AT = "resynced_at"  # the fact holding when the last resync began (source time)
BATCH = 100  # customers written per transaction
MESSAGES_KEPT = timedelta(days=7)  # message ids remembered against duplicates
Progress = Callable[[int, int | None], None]  # (customers done, customers in all if known)


@dataclass(frozen=True, slots=True)
class Resynced:
    customers: int
    at: datetime


def resync(
    sessions: sessionmaker[Session],
    source: Source,
    *,
    customer_ids: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> Resynced:
    """Read the features and the customers (all, or `customer_ids`) with their
    subscriptions, entitlements and usage from the source, and write them."""
    at = source.now()
    with sessions.begin() as session:
        for feature in source.features():
            store.apply_record(session, feature_of(feature), at=at)
    if customer_ids is None:
        customers: Iterable[dict[str, Any]] = source.customers()
        # One listing of every subscription instead of one request per customer.
        every: dict[str, list[dict[str, Any]]] = {}
        for subscription in source.subscriptions():
            every.setdefault(subscription["customerId"], []).append(subscription)
        held: dict[str, list[dict[str, Any]]] | None = every
    else:
        wanted = sorted(set(customer_ids))
        customers = (c for c in (source.customer(i) for i in wanted) if c is not None)
        held = None
    done = 0
    batch: list[dict[str, Any]] = []
    for customer in customers:
        batch.append(customer)
        if len(batch) == BATCH:
            _write(sessions, source, batch, held, at)
            done += len(batch)
            batch = []
            if progress:
                progress(done, None)
    if batch:
        _write(sessions, source, batch, held, at)
        done += len(batch)
    if progress:
        progress(done, done)
    with sessions.begin() as session:
        store.set_fact(session, RESYNCED_AT, resynced_fact(at))
    log.info("replica resynced", extra={"customers": done, "at": at.isoformat()})
    return Resynced(done, at)


def resynced_fact(at: datetime) -> str:
    """What the `RESYNCED_AT` fact holds after a resync that began at `at`."""
    return at.isoformat()


def _write(
    sessions: sessionmaker[Session],
    source: Source,
    customers: list[dict[str, Any]],
    held: dict[str, list[dict[str, Any]]] | None,
    at: datetime,
) -> None:
    """One batch of customers, each with its subscriptions and its scopes' states."""
    ids = [c["id"] for c in customers]
    subscriptions = {
        i: held.get(i, []) if held is not None else list(source.subscriptions(i)) for i in ids
    }
    scopes: list[tuple[str, str | None]] = []
    for customer_id in ids:
        resources = {s.get("resourceId") for s in subscriptions[customer_id]}
        scopes += [
            (customer_id, None),
            *((customer_id, r) for r in sorted(filter(None, resources))),
        ]
    states = source.states(scopes)
    with sessions.begin() as session:
        for customer in customers:
            store.apply_record(session, customer_of(customer), at=at)
        for customer_id in ids:
            for subscription in subscriptions[customer_id]:
                store.apply_record(session, subscription_of(subscription), at=at)
        for state in states:
            store.apply_record(session, scope_of_state(state), at=at)


def prune_messages(session: Session, now: datetime) -> None:
    """Forget message ids older than `MESSAGES_KEPT`: the source stops retrying long
    before, and any later copy is older than what is stored, so it changes nothing."""
    session.execute(delete(t.messages).where(t.messages.c.received_at < now - MESSAGES_KEPT))

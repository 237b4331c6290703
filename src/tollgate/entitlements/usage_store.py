"""Each customer's current usage, kept in memory for checks.

Loaded with one query the first time a customer's metered feature is checked, and dropped
whenever a committed change says that customer's usage moved (`db.changes`, from this
process or, through PostgreSQL NOTIFY, any other). A load that started before such a
change is not kept (the same epoch guard as `entitlements.snapshots`). Periods need no
invalidation: a counter is keyed by its period's start, and a check asks for the period
its snapshot is in now, so a new period reads zero until something is counted in it."""

import threading
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from tollgate.catalog.models import Feature
from tollgate.customers.models import Customer
from tollgate.db.changes import Change, ChangeFeed, ChangeKind
from tollgate.kit.amounts import from_units
from tollgate.kit.clock import Clock
from tollgate.usage.models import UsageCounter

CustomerKey = tuple[int, str]
UsageKey = tuple[str, str, datetime]  # feature, resource ("" for none), period start
DEFAULT_MAX_CUSTOMERS = 200_000


@dataclass(frozen=True, slots=True)
class CustomerUsage:
    values: dict[UsageKey, int | float] = field(default_factory=dict)

    def of(self, feature_ref: str, resource_ref: str | None, period_start: datetime) -> float:
        return self.values.get((feature_ref, resource_ref or "", period_start), 0)


NO_USAGE = CustomerUsage()


class UsageStore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        max_customers: int = DEFAULT_MAX_CUSTOMERS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._max_customers = max_customers
        self._lock = threading.Lock()
        self._usage: dict[CustomerKey, CustomerUsage] = {}
        self._epochs: dict[CustomerKey, int] = {}
        self._generation = 0  # moves on a reset, which may have missed any change

    def follow(self, feed: ChangeFeed) -> None:
        feed.subscribe(self.apply, on_reset=self.clear)

    def cached(self, environment_id: int, customer_ref: str) -> CustomerUsage | None:
        return self._usage.get((environment_id, customer_ref))

    def usage(self, environment_id: int, customer_ref: str) -> CustomerUsage:
        """The customer's current usage, read from the database when not in memory."""
        found = self._usage.get((environment_id, customer_ref))
        if found is not None:
            return found
        return self.reload(environment_id, customer_ref)

    def reload(self, environment_id: int, customer_ref: str) -> CustomerUsage:
        """The customer's usage read from the database now, whatever memory holds."""
        key = (environment_id, customer_ref)
        with self._lock:
            mark = (self._generation, self._epochs.get(key, 0))
        with self._sessions() as session:
            loaded = load(session, environment_id, customer_ref, self._clock.now())
        with self._lock:
            if (self._generation, self._epochs.get(key, 0)) == mark:
                if len(self._usage) >= self._max_customers:
                    del self._usage[next(iter(self._usage))]
                self._usage[key] = loaded
        return loaded

    def apply(self, changes: list[Change]) -> None:
        with self._lock:
            for change in changes:
                if change.kind is ChangeKind.USAGE:
                    key = (change.environment_id, change.customer_ref)
                    self._epochs[key] = self._epochs.get(key, 0) + 1
                    self._usage.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._usage.clear()


def load(session: Session, environment_id: int, customer_ref: str, now: datetime) -> CustomerUsage:
    c = UsageCounter
    rows = session.execute(
        select(Feature.ref_id, c.resource_ref, c.period_start, c.value)
        .join(Feature, Feature.id == c.feature_id)
        .join(Customer, Customer.id == c.customer_id)
        .where(
            Customer.environment_id == environment_id,
            Customer.ref_id == customer_ref,
            or_(c.period_end.is_(None), c.period_end > now),
        )
    )
    return CustomerUsage(
        {(feature, resource, start): from_units(value) for feature, resource, start, value in rows}
    )

"""How many paid subscriptions per second does the renewal job renew, next to a raw batched
insert of the same invoice rows?

    .venv/bin/python bench/renewals.py                         # SQLite, 10,000 subscriptions
    .venv/bin/python bench/renewals.py --database postgres --subscriptions 2000

For the database chosen (a fresh one: a SQLite file in a temporary directory, or a schema
of its own in PostgreSQL, dropped afterwards):

1. **Seed**, unmeasured: the demo catalog; one customer subscribed to Pro monthly (no
   trial) through `invoices.subscribing.provision`, which issues its opening invoice and
   billing cursor; 1,020 active users counted in its first period (Pro includes 1,000;
   each one beyond costs $0.10, billed in arrears). Then `--subscriptions - 1` copies of
   those rows in bulk (customer, subscription, billing cursor, usage counter), and every
   subscription moved into its second period, as the lifecycle job would.
2. **Renew**, measured: `invoices.jobs.renew_due_subscriptions` (what `tollgate serve`
   runs), which issues one invoice per subscription (Pro $49 in advance, 20 users of
   overage in arrears), then every open renewal invoice settled (the manual provider's
   `invoice/paid`), in batches of 200 per transaction.
3. **Raw baseline**, measured: the same number of invoices with the same two lines each,
   inserted with SQLAlchemy Core executemany in batches of 200 per transaction.

Checks afterwards: one renewal invoice per subscription, each of $51.00 and paid.

The last line is one JSON object: `{"renewals_per_s": .., "raw_per_s": .., "ratio": ..}`.
Goal (printed, not enforced): ratio >= 0.2.
"""

import argparse
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from check_throughput import fresh_database
from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, Table, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from usage_common import POSTGRES_URL, console, progress

from tollgate.catalog import demo
from tollgate.catalog.models import Feature
from tollgate.customers.models import Customer
from tollgate.customers.schemas import CustomerCreate
from tollgate.customers.service import provision_customer
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments.service import ensure_environment
from tollgate.invoices import service as invoices
from tollgate.invoices import subscribing
from tollgate.invoices.jobs import renew_due_subscriptions
from tollgate.invoices.models import (
    BillingCursor,
    BillingReason,
    Invoice,
    InvoiceLine,
    InvoiceState,
)
from tollgate.kit.amounts import SCALE
from tollgate.schema import migrate
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.schemas import SubscriptionProvision, TrialOverride
from tollgate.usage.models import UsageCounter

START = datetime(2027, 1, 5, 10, 0, tzinfo=UTC)
BATCH = 500
USERS = 1_020


def table(model: Any) -> Table:
    found: Table = model.__table__
    return found


def seed(engine: Engine, count: int) -> int:
    """The template and its copies; returns the environment's id."""
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        environment = ensure_environment(session, name="bench")
        demo.seed(session, environment_id=environment.id, now=START)
        environment_id = environment.id
        provision_customer(
            session, environment_id=environment_id, data=CustomerCreate(id="c-0"), now=START
        )
        subscribing.provision(
            session,
            environment_id=environment_id,
            data=SubscriptionProvision(
                customer_id="c-0",
                plan_id="plan-pro",
                trial_override_configuration=TrialOverride(is_trial=False),
            ),
            now=START,
        )
    with unit_of_work(sessions) as session:
        customer = _row(session, Customer, Customer.ref_id == "c-0")
        subscription = _row(session, Subscription, Subscription.customer_id == customer["id"])
        cursor = _row(session, BillingCursor, BillingCursor.subscription_id == subscription["id"])
        users = session.scalar(
            select(Feature.id).where(
                Feature.environment_id == environment_id, Feature.ref_id == "feature-active-users"
            )
        )
        session.execute(
            insert(table(UsageCounter)),
            [
                {
                    "environment_id": environment_id,
                    "customer_id": customer["id"],
                    "feature_id": users,
                    "resource_ref": "",
                    "period_start": subscription["current_period_start"],
                    "period_end": subscription["current_period_end"],
                    "value": USERS * SCALE,
                    "updated_at": START,
                }
            ],
        )
        counter = _row(session, UsageCounter, UsageCounter.customer_id == customer["id"])
    with progress() as bar:
        task = bar.add_task("copying subscriptions", total=count)
        bar.advance(task)
        for first in range(1, count, 1_000):
            indices = range(first, min(first + 1_000, count))
            with unit_of_work(sessions) as session:
                _copy(session, indices, customer, subscription, cursor, counter)
            bar.advance(task, len(indices))
    with unit_of_work(sessions) as session:
        # Into the second period, as the lifecycle job moves them.
        second = (START + relativedelta(months=1), START + relativedelta(months=2))
        session.execute(
            update(Subscription).values(
                current_period_start=second[0],
                current_period_end=second[1],
                next_transition_at=second[1],
            )
        )
    return environment_id


def _row(session: Session, model: Any, where: Any) -> dict[str, Any]:
    return dict(session.execute(select(table(model)).where(where)).mappings().one())


def _copy(
    session: Session,
    indices: range,
    customer: dict[str, Any],
    subscription: dict[str, Any],
    cursor: dict[str, Any],
    counter: dict[str, Any],
) -> None:
    def without_id(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
        return {**{k: v for k, v in row.items() if k != "id"}, **changes}

    customers = (
        session.execute(
            insert(table(Customer)).returning(table(Customer).c.id),
            [without_id(customer, ref_id=f"c-{i}") for i in indices],
        )
        .scalars()
        .all()
    )
    subscriptions = (
        session.execute(
            insert(table(Subscription)).returning(table(Subscription).c.id),
            [
                without_id(subscription, ref_id=f"s-{i}", customer_id=customer_id)
                for i, customer_id in zip(indices, customers, strict=True)
            ],
        )
        .scalars()
        .all()
    )
    session.execute(
        insert(table(BillingCursor)),
        [{**cursor, "subscription_id": s} for s in subscriptions],
    )
    session.execute(
        insert(table(UsageCounter)),
        [without_id(counter, customer_id=c) for c in customers],
    )


def renew(engine: Engine, count: int) -> float:
    sessions = make_session_factory(engine)
    now = START + relativedelta(months=1) + timedelta(minutes=1)
    started = time.perf_counter()
    renewed = renew_due_subscriptions(sessions, now)
    _settle(sessions, now)
    seconds = time.perf_counter() - started
    if renewed != count:
        raise SystemExit(f"renewed {renewed} subscriptions, not {count}")
    return seconds


def _settle(sessions: sessionmaker[Session], now: datetime) -> None:
    while True:
        with unit_of_work(sessions) as session:
            due = session.scalars(
                select(Invoice)
                .where(
                    Invoice.state == InvoiceState.OPEN,
                    Invoice.billing_reason == BillingReason.BILLING_CYCLE,
                )
                .limit(BATCH)
            ).all()
            invoices.settle(session, due, now=now)
        if len(due) < BATCH:
            return


def verify(engine: Engine, count: int) -> None:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Invoice.total, Invoice.state, func.count())
            .where(Invoice.billing_reason == BillingReason.BILLING_CYCLE)
            .group_by(Invoice.total, Invoice.state)
        ).all()
    if [tuple(row) for row in rows] != [(5100, InvoiceState.PAID.value, count)]:
        raise SystemExit(f"renewal invoices are not {count} paid invoices of $51.00: {rows}")


def raw_insert(engine: Engine, count: int, environment_id: int) -> float:
    """The same rows, written straight: an invoice and its two lines each."""
    with engine.connect() as connection:
        template = dict(
            connection.execute(
                select(table(Invoice)).where(Invoice.billing_reason == BillingReason.BILLING_CYCLE)
            )
            .mappings()
            .first()
            or {}
        )
        lines = [
            dict(row)
            for row in connection.execute(
                select(table(InvoiceLine)).where(InvoiceLine.invoice_id == template["id"])
            ).mappings()
        ]
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        with engine.begin() as connection:
            ids = (
                connection.execute(
                    insert(table(Invoice)).returning(table(Invoice).c.id),
                    [
                        {
                            **{k: v for k, v in template.items() if k != "id"},
                            "ref_id": f"in_raw_{first + i}_{secrets.token_hex(4)}",
                            "period_key": None,
                        }
                        for i in range(min(BATCH, count - first))
                    ],
                )
                .scalars()
                .all()
            )
            connection.execute(
                insert(table(InvoiceLine)),
                [
                    {**{k: v for k, v in line.items() if k != "id"}, "invoice_id": invoice_id}
                    for invoice_id in ids
                    for line in lines
                ],
            )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    count = args.subscriptions
    with fresh_database(args.postgres_url if args.database == "postgres" else None) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            environment_id = seed(engine, count)
            console.print(f"renewing {count:,} subscriptions on {args.database}...")
            renewal_seconds = renew(engine, count)
            verify(engine, count)
            raw_seconds = raw_insert(engine, count, environment_id)
        finally:
            engine.dispose()
    renewals_per_s = count / renewal_seconds
    raw_per_s = count / raw_seconds
    ratio = renewals_per_s / raw_per_s
    console.print(
        f"renewals: {renewals_per_s:,.0f}/s ({renewal_seconds:.1f} s); "
        f"raw insert of the same rows: {raw_per_s:,.0f}/s ({raw_seconds:.2f} s); "
        f"ratio {ratio:.3f} (goal >= 0.2)"
    )
    print(
        json.dumps(
            {
                "renewals_per_s": round(renewals_per_s, 1),
                "raw_per_s": round(raw_per_s, 1),
                "ratio": round(ratio, 4),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Renewing many subscriptions at once: what the renewal job does, a batch at a time.

The same bills as one renewal (`prices/bill.renewal`), with the reading and writing done
for the whole batch: the cursors, the versions billed, every counter of the closed periods
and what each plan includes in a few queries; the invoices, their lines and their webhooks
in one insert each. A period already invoiced (by another worker, or before a crash) is
skipped, as `service.issue` skips it one at a time."""

import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from tollgate.catalog.enums import MeterType
from tollgate.catalog.models import Feature, PackageVersion
from tollgate.customers.models import Customer, CustomerResource
from tollgate.invoices import balance, service
from tollgate.invoices.announcements import announce_issued
from tollgate.invoices.models import (
    BillingCursor,
    BillingReason,
    Invoice,
    InvoiceLine,
    InvoiceState,
)
from tollgate.prices import bill as bills
from tollgate.prices.bill import Bill, Terms
from tollgate.subscriptions import billing
from tollgate.subscriptions.lifecycle import billing_bounds
from tollgate.subscriptions.models import Subscription
from tollgate.usage.models import UsageCounter

# Core inserts: executemany in batches, without the ORM's per-row bookkeeping.
_INVOICES = cast(Table, Invoice.__table__)
_LINES = cast(Table, InvoiceLine.__table__)


@dataclass(frozen=True, slots=True)
class Planned:
    subscription: Subscription
    bill: Bill
    period_key: str


def renew_many(session: Session, subscriptions: Sequence[Subscription], *, now: datetime) -> None:
    """Open each subscription's due periods (their relations loaded, rows locked)."""
    cursors = {
        row.subscription_id: row.terms
        for row in session.execute(
            select(BillingCursor.subscription_id, BillingCursor.terms).where(
                BillingCursor.subscription_id.in_([s.id for s in subscriptions])
            )
        )
    }
    for subscription in subscriptions:
        if subscription.id not in cursors:
            service.open_subscription(session, subscription, now=now)  # its first period
    going = [s for s in subscriptions if s.id in cursors]
    if not going:
        return
    closed = _closed_terms(session, [cursors[s.id] for s in going])
    usage = _Usage.load(session, going, closed)
    planned: list[Planned] = []
    moved: list[dict[str, Any]] = []
    for subscription, last in zip(going, closed, strict=True):
        current = billing.terms_of(subscription)
        assert current is not None
        while last.period_start < current.period_start:
            start = last.period_end
            if start >= current.period_start:
                start, end = current.period_start, current.period_end
            else:  # a period the job missed
                anchor, period = subscription.billing_cycle_anchor, subscription.billing_period
                end = billing_bounds(anchor, period, start)[1]
            opening = replace(current, period_start=start, period_end=end)
            used, included = usage.of(subscription, last)
            drawn = bills.renewal(opening, last, used, included)
            if drawn.lines:
                planned.append(Planned(subscription, drawn, start.isoformat()))
            last = opening
        moved.append(
            {
                "subscription_id": subscription.id,
                "period_start": last.period_start,
                "period_end": last.period_end,
                "terms": service.terms_json(subscription, last),
            }
        )
    session.execute(update(BillingCursor), moved)  # by primary key, one executemany
    write(session, planned, reason=BillingReason.BILLING_CYCLE, now=now)


def write(
    session: Session, planned: Sequence[Planned], *, reason: BillingReason, now: datetime
) -> None:
    """Insert the planned invoices not issued yet, their lines, and their webhooks."""
    if not planned:
        return
    keys = [(p.subscription.id, p.period_key) for p in planned]
    issued = set(
        session.execute(
            select(Invoice.subscription_id, Invoice.period_key).where(
                tuple_(Invoice.subscription_id, Invoice.period_key).in_(keys)
            )
        ).tuples()
    )
    fresh = [p for p in planned if (p.subscription.id, p.period_key) not in issued]
    if not fresh:
        return
    credit = balance.credit(session, {p.subscription.customer_id for p in fresh})
    rows = [_invoice_row(p, reason, now, credit) for p in fresh]
    session.execute(insert(_INVOICES), rows)
    # Each (subscription, period) has one invoice: its id is found by that key.
    found = {
        (subscription_id, key): invoice_id
        for invoice_id, subscription_id, key in session.execute(
            select(Invoice.id, Invoice.subscription_id, Invoice.period_key).where(
                tuple_(Invoice.subscription_id, Invoice.period_key).in_(
                    [(p.subscription.id, p.period_key) for p in fresh]
                )
            )
        ).tuples()
    }
    ids = [found[(p.subscription.id, p.period_key)] for p in fresh]
    session.execute(
        insert(_LINES),
        [
            {
                "invoice_id": invoice_id,
                "position": position,
                "kind": line.kind,
                "description": line.description[:500],
                "feature_ref": line.feature_id,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "amount": line.amount,
                "period_start": p.bill.period_start,
                "period_end": p.bill.period_end,
            }
            for invoice_id, p in zip(ids, fresh, strict=True)
            for position, line in enumerate(p.bill.lines)
        ],
    )
    customers = _customer_refs(session, {p.subscription.customer_id for p in fresh})
    announce_issued(
        session,
        [
            (
                {**row, "id": invoice_id},
                customers[p.subscription.customer_id],
                p.subscription.ref_id,
            )
            for invoice_id, row, p in zip(ids, rows, fresh, strict=True)
        ],
        now=now,
    )


def _invoice_row(
    p: Planned, reason: BillingReason, now: datetime, credit: dict[tuple[int, str], int]
) -> dict[str, Any]:
    applied = balance.take(credit, p.subscription.customer_id, p.bill.currency, p.bill.total)
    due = max(p.bill.total - applied, 0)
    return {
        "environment_id": p.subscription.environment_id,
        "ref_id": f"in_{secrets.token_hex(10)}",
        "customer_id": p.subscription.customer_id,
        "subscription_id": p.subscription.id,
        "period_key": p.period_key,
        "billing_reason": reason,
        "state": InvoiceState.OPEN if due > 0 else InvoiceState.PAID,
        "state_reason": None,
        "currency": p.bill.currency,
        "subtotal": p.bill.subtotal,
        "discount": p.bill.discount,
        "tax": 0,
        "total": p.bill.total,
        "credit_applied": applied,
        "period_start": p.bill.period_start,
        "period_end": p.bill.period_end,
        "issued_at": now,
        "due_at": now,
        "paid_at": None if due > 0 else now,
        "payment_attempts": 0,
    }


def _closed_terms(session: Session, stored: list[dict[str, Any]]) -> list[Terms]:
    """The terms each cursor's period was billed on, their versions read at once."""
    ids = {
        version_id
        for terms in stored
        for version_id in [terms["planVersionId"], *(v for v, _ in terms["addons"])]
    }
    versions = {
        v.id: v for v in session.scalars(select(PackageVersion).where(PackageVersion.id.in_(ids)))
    }
    return [service.terms_from_json(terms, versions) for terms in stored]


def _customer_refs(session: Session, ids: set[int]) -> dict[int, str]:
    rows = session.execute(select(Customer.id, Customer.ref_id).where(Customer.id.in_(ids)))
    return dict(rows.tuples().all())


@dataclass
class _Usage:
    """Every counter the batch's closed periods may bill, and what each plan includes."""

    counters: dict[tuple[int, str], list[tuple[str, MeterType, datetime, int]]]
    resources: dict[int, str]
    included: dict[int, dict[str, Decimal | None]]

    @classmethod
    def load(cls, session: Session, going: Sequence[Subscription], closed: list[Terms]) -> "_Usage":
        features = set().union(*(service.usage_features(t.packages) for t in closed))
        resources = _resource_refs(session, {s.resource_id for s in going if s.resource_id})
        counters: dict[tuple[int, str], list[tuple[str, MeterType, datetime, int]]] = defaultdict(
            list
        )
        if features:
            earliest = min(t.period_start for t in closed)
            latest = max(t.period_end for t in closed)
            rows = session.execute(
                select(
                    UsageCounter.customer_id,
                    UsageCounter.resource_ref,
                    Feature.ref_id,
                    Feature.meter_type,
                    UsageCounter.period_start,
                    UsageCounter.value,
                )
                .join(Feature, Feature.id == UsageCounter.feature_id)
                .where(
                    UsageCounter.customer_id.in_({s.customer_id for s in going}),
                    Feature.ref_id.in_(features),
                    or_(
                        Feature.meter_type == MeterType.FLUCTUATING,
                        and_(
                            UsageCounter.period_start >= earliest,
                            UsageCounter.period_start < latest,
                        ),
                    ),
                )
                .order_by(UsageCounter.period_start)
            ).tuples()
            for customer_id, resource_ref, ref_id, meter_type, start, value in rows:
                counters[(customer_id, resource_ref)].append((ref_id, meter_type, start, value))
        plans = {t.plan.version_id for t in closed if t.plan.version_id is not None}
        included = {
            plan: service.included(session, plan, features) if features else {} for plan in plans
        }
        return cls(counters, resources, included)

    def of(
        self, subscription: Subscription, terms: Terms
    ) -> tuple[dict[str, Decimal], dict[str, Decimal | None]]:
        """As `service._usage_of` reads them for one subscription, from the batch's rows."""
        priced = service.usage_features(terms.packages)
        if not priced:
            return {}, {}
        resource = self.resources.get(subscription.resource_id or 0, "")
        rows = self.counters.get((subscription.customer_id, resource), [])
        usage = service.sum_usage(
            (ref_id, meter_type, value)
            for ref_id, meter_type, start, value in rows
            if ref_id in priced
            and (
                meter_type is MeterType.FLUCTUATING
                or terms.period_start <= start < terms.period_end
            )
        )
        plan = terms.plan.version_id or subscription.plan_version_id
        included = {k: v for k, v in self.included.get(plan, {}).items() if k in priced}
        return usage, included


def _resource_refs(session: Session, ids: set[int | None]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(CustomerResource.id, CustomerResource.ref_id).where(CustomerResource.id.in_(ids))
    )
    return dict(rows.tuples().all())

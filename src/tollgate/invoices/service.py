"""Issuing, reading and settling invoices.

Every invoice comes from a bill (`prices/bill.py`) and is written once: its lines and
totals never change; only its state moves (OPEN to PAID, VOID or UNCOLLECTIBLE). A
period's opening invoice is keyed by the period's start, so issuing it again (a retried
job, a crash between issuing and recording, two workers) finds the one already written.

`BillingCursor` remembers, per subscription, the last period opened and the terms it was
billed on: the renewal job bills that period's usage in arrears on those terms, then
opens the next period on the subscription's current ones."""

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, load_only, selectinload

from tollgate.catalog.enums import MeterType
from tollgate.catalog.models import Feature, PackageEntitlement, PackageVersion
from tollgate.customers.lookup import get_customer
from tollgate.customers.models import Customer, CustomerResource
from tollgate.errors import Conflict, NotFound
from tollgate.invoices import balance
from tollgate.invoices.announcements import announce, announce_paid, emit
from tollgate.invoices.models import (
    BillingCursor,
    BillingReason,
    Invoice,
    InvoiceLine,
    InvoiceState,
)
from tollgate.kit.amounts import SCALE
from tollgate.kit.pagination import Cursors, PageRequest, paginate
from tollgate.prices import bill as bills
from tollgate.prices.bill import Bill, Terms
from tollgate.prices.quote import Priced
from tollgate.subscriptions import billing
from tollgate.subscriptions.enums import (
    BILLED_STATUSES,
    BillingPeriod,
    SubscriptionStatus,
    TrialEndBehavior,
)
from tollgate.subscriptions.lifecycle import billing_bounds, pending_schedules
from tollgate.subscriptions.models import Subscription, SubscriptionAddon
from tollgate.subscriptions.service import Preview
from tollgate.usage.models import UsageCounter
from tollgate.webhooks.event_types import EventType

_LOADED = (
    selectinload(Subscription.plan_version),
    selectinload(Subscription.addons).selectinload(SubscriptionAddon.addon_version),
)
# What a renewal reads of a subscription (others load when touched): thousands are renewed
# at once, and reading every date of each costs more than the rest of the renewal.
_RENEWED = load_only(
    Subscription.environment_id,
    Subscription.ref_id,
    Subscription.customer_id,
    Subscription.resource_id,
    Subscription.plan_version_id,
    Subscription.status,
    Subscription.billing_period,
    Subscription.currency,
    Subscription.unit_quantities,
    Subscription.coupon,
    Subscription.billing_cycle_anchor,
    Subscription.current_period_start,
    Subscription.current_period_end,
)
_ENDED = (SubscriptionStatus.CANCELED, SubscriptionStatus.EXPIRED)


# -- issuing -------------------------------------------------------------------------------


def issue(
    session: Session,
    subscription: Subscription,
    drawn: Bill,
    *,
    reason: BillingReason,
    now: datetime,
    period_key: str | None = None,
) -> Invoice | None:
    """Write the bill as an invoice (None when it has no lines). With a `period_key`, a
    second call for the same period returns the invoice the first wrote."""
    if not drawn.lines:
        return None
    if period_key is not None:
        existing = _period_invoice(session, subscription.id, period_key)
        if existing is not None:
            return existing
    applied = balance.take(
        balance.credit(session, [subscription.customer_id]),
        subscription.customer_id,
        drawn.currency,
        drawn.total,
    )
    due = max(drawn.total - applied, 0)
    invoice = Invoice(
        environment_id=subscription.environment_id,
        ref_id=f"in_{secrets.token_hex(10)}",
        customer_id=subscription.customer_id,
        subscription_id=subscription.id,
        period_key=period_key,
        billing_reason=reason,
        state=InvoiceState.OPEN if due > 0 else InvoiceState.PAID,
        currency=drawn.currency,
        subtotal=drawn.subtotal,
        discount=drawn.discount,
        tax=0,
        total=drawn.total,
        credit_applied=applied,
        period_start=drawn.period_start,
        period_end=drawn.period_end,
        issued_at=now,
        due_at=now,
        paid_at=None if due > 0 else now,
    )
    invoice.lines = [
        InvoiceLine(
            position=position,
            kind=line.kind,
            description=line.description[:500],
            feature_ref=line.feature_id,
            quantity=str(line.quantity),
            unit_price=str(line.unit_price),
            amount=line.amount,
            period_start=drawn.period_start,
            period_end=drawn.period_end,
        )
        for position, line in enumerate(drawn.lines)
    ]
    try:
        with session.begin_nested():
            session.add(invoice)
            session.flush()
    except IntegrityError:
        # Another transaction issued this period's invoice first.
        session.expunge(invoice)
        found = _period_invoice(session, subscription.id, period_key) if period_key else None
        if found is None:
            raise
        return found
    announce(session, invoice, paid=invoice.state is InvoiceState.PAID, now=now)
    return invoice


def open_subscription(
    session: Session,
    subscription: Subscription,
    *,
    now: datetime,
    replaced: Sequence[tuple[Subscription, Terms]] = (),
) -> Invoice | None:
    """The first invoice of a subscription that has begun its first paid period (with
    credit for what it replaced mid-period, and the usage of that one so far)."""
    terms = _current_terms(session, subscription)
    if terms is None or subscription.status not in BILLED_STATUSES:
        return None
    old = next(((s, t) for s, t in replaced if t.currency == terms.currency), None)
    if old is None:
        drawn = bills.opening(terms, first=True)
    else:
        replaced_subscription, old_terms = old
        usage, included = _usage_of(session, replaced_subscription, old_terms, until=now)
        drawn = bills.change(
            old_terms, terms, at=now, new_plan=True, usage=usage, included=included
        )
        _close(session, replaced_subscription)
    invoice = issue(
        session,
        subscription,
        drawn,
        reason=BillingReason.SUBSCRIPTION_CREATION,
        period_key=_key(terms.period_start),
        now=now,
    )
    _move_cursor(session, subscription, terms)
    return invoice


def invoice_change(
    session: Session, subscription: Subscription, before: Terms | None, *, now: datetime
) -> Invoice | None:
    """A mid-period change of the same subscription (add-ons, quantities, billing period):
    the prorated difference now."""
    after = _current_terms(session, subscription)
    if before is None or after is None or subscription.status not in BILLED_STATUSES:
        return None
    if _same(before, after):
        return None
    usage, included = _usage_of(session, subscription, before, until=now)
    drawn = bills.change(before, after, at=now, new_plan=False, usage=usage, included=included)
    invoice = issue(session, subscription, drawn, reason=BillingReason.SUBSCRIPTION_UPDATE, now=now)
    _move_cursor(session, subscription, after)
    return invoice


def current_terms(session: Session, subscription: Subscription) -> Terms | None:
    """The subscription's terms now, for `invoice_change` to compare with afterwards."""
    return _current_terms(session, subscription)


# -- the renewal job -----------------------------------------------------------------------


def due_for_renewal(
    session: Session, *, now: datetime, limit: int, skip: set[int] | None = None
) -> Sequence[Subscription]:
    """Paid, active subscriptions whose current period has no invoice yet (locked; rows
    another worker holds are skipped)."""
    query = (
        select(Subscription)
        .outerjoin(BillingCursor, BillingCursor.subscription_id == Subscription.id)
        .where(
            Subscription.currency.is_not(None),
            Subscription.status.in_(BILLED_STATUSES),
            Subscription.current_period_start <= now,
            or_(
                BillingCursor.subscription_id.is_(None),
                and_(
                    BillingCursor.closed.is_(False),
                    BillingCursor.period_start < Subscription.current_period_start,
                ),
            ),
        )
        .order_by(Subscription.id)
        .limit(limit)
        .options(_RENEWED, *_LOADED)
        .with_for_update(of=Subscription, skip_locked=True)
    )
    if skip:
        query = query.where(Subscription.id.not_in(skip))
    return session.scalars(query).all()


def due_for_closing(
    session: Session, *, now: datetime, limit: int, skip: set[int] | None = None
) -> Sequence[Subscription]:
    """Subscriptions whose last paid period is over (they ended, or moved to a plan with no
    price) and whose usage in it is not billed yet."""
    query = (
        select(Subscription)
        .join(BillingCursor, BillingCursor.subscription_id == Subscription.id)
        .where(
            BillingCursor.closed.is_(False),
            or_(
                and_(
                    Subscription.status.in_(_ENDED),
                    Subscription.end_date.is_not(None),
                    Subscription.end_date <= now,
                ),
                and_(
                    Subscription.currency.is_(None),
                    Subscription.current_period_start >= BillingCursor.period_end,
                ),
            ),
        )
        .order_by(Subscription.id)
        .limit(limit)
        .options(*_LOADED)
        .with_for_update(of=Subscription, skip_locked=True)
    )
    if skip:
        query = query.where(Subscription.id.not_in(skip))
    return session.scalars(query).all()


def close_out(session: Session, subscription: Subscription, *, now: datetime) -> None:
    """Bill the usage of the subscription's last paid period in arrears, once."""
    cursor = session.get(BillingCursor, subscription.id, with_for_update=True)
    if cursor is None or cursor.closed:
        return
    closed = _terms_from_json(session, cursor.terms)
    until = closed.period_end
    if subscription.end_date is not None:
        until = min(until, max(subscription.end_date, closed.period_start))
    usage, included = _usage_of(session, subscription, closed, until=until)
    drawn = bills.closing(closed, usage, included, until=until)
    issue(
        session,
        subscription,
        drawn,
        reason=BillingReason.BILLING_CYCLE,
        period_key=f"final:{_key(closed.period_start)}",
        now=now,
    )
    cursor.closed = True


# -- reading and settling ------------------------------------------------------------------


def list_invoices(
    session: Session,
    *,
    environment_id: int,
    customer_ref: str,
    page: PageRequest,
    issued_after: datetime | None = None,
    issued_before: datetime | None = None,
    states: Sequence[InvoiceState] = (),
    newest_first: bool = False,
) -> tuple[Sequence[Invoice], Cursors]:
    customer = get_customer(session, environment_id=environment_id, ref_id=customer_ref)
    query = (
        select(Invoice)
        .where(Invoice.customer_id == customer.id)
        .options(selectinload(Invoice.lines))
    )
    if states:
        query = query.where(Invoice.state.in_(states))
    if issued_after is not None:
        query = query.where(Invoice.issued_at >= issued_after)
    if issued_before is not None:
        query = query.where(Invoice.issued_at <= issued_before)
    return paginate(session, query, Invoice.id, page, newest_first=newest_first)


def get_invoice(session: Session, *, environment_id: int, ref_id: str) -> Invoice:
    invoice = session.scalars(
        select(Invoice)
        .where(Invoice.environment_id == environment_id, Invoice.ref_id == ref_id)
        .options(selectinload(Invoice.lines))
    ).one_or_none()
    if invoice is None:
        raise NotFound("invoice", ref_id)
    return invoice


def mark_subscription_paid(
    session: Session, *, environment_id: int, subscription_ref: str, now: datetime
) -> Subscription:
    """Settle the subscription's open invoices (a payment taken outside any provider)."""
    subscription = session.scalars(
        select(Subscription).where(
            Subscription.environment_id == environment_id, Subscription.ref_id == subscription_ref
        )
    ).one_or_none()
    if subscription is None:
        raise NotFound("subscription", subscription_ref)
    open_invoices = session.scalars(
        select(Invoice)
        .where(Invoice.subscription_id == subscription.id, Invoice.state == InvoiceState.OPEN)
        .with_for_update()
    ).all()
    if not open_invoices:
        raise Conflict(f"subscription '{subscription_ref}' has no open invoice to mark paid")
    settle(session, open_invoices, now=now)
    return subscription


def settle(session: Session, invoices: Sequence[Invoice], *, now: datetime) -> None:
    """Mark open invoices paid, and announce it (`invoice.paid`). One UPDATE for them all;
    the objects in the session take the new values as they are (`evaluate`)."""
    settled = [invoice for invoice in invoices if invoice.state is InvoiceState.OPEN]
    if not settled:
        return
    session.execute(
        update(Invoice)
        .where(Invoice.id.in_([invoice.id for invoice in settled]))
        .values(state=InvoiceState.PAID, paid_at=now, next_payment_at=None)
        .execution_options(synchronize_session="evaluate")
    )
    announce_paid(session, settled, now=now)


def close_invoice(
    session: Session, *, environment_id: int, ref_id: str, state: InvoiceState, now: datetime
) -> Invoice:
    """Void an open invoice (issued in error: a correction is a new invoice) or give up on
    collecting it. Either reads as CANCELED, with the state as its reason."""
    invoice = get_invoice(session, environment_id=environment_id, ref_id=ref_id)
    session.refresh(invoice, with_for_update=True)
    if invoice.state is not InvoiceState.OPEN:
        raise Conflict(
            f"invoice '{ref_id}' is {invoice.state.value}: only an OPEN invoice can be closed"
        )
    close(session, invoice, state=state, now=now)
    return invoice


def close(session: Session, invoice: Invoice, *, state: InvoiceState, now: datetime) -> None:
    """Close an open invoice (locked by the caller), and announce it (`invoice.canceled`)."""
    invoice.state = state
    invoice.state_reason = state.value
    invoice.closed_at = now
    invoice.next_payment_at = None
    emit(session, invoice, [EventType.INVOICE_CANCELED], now=now)


def latest_invoice(session: Session, subscription_id: int) -> Invoice | None:
    return session.scalars(
        select(Invoice)
        .where(Invoice.subscription_id == subscription_id)
        .order_by(Invoice.id.desc())
        .limit(1)
    ).first()


# -- terms and usage -----------------------------------------------------------------------


def _current_terms(session: Session, subscription: Subscription) -> Terms | None:
    if subscription.currency is None:
        return None
    loaded = session.scalars(
        select(Subscription).where(Subscription.id == subscription.id).options(*_LOADED)
    ).one()
    return billing.terms_of(loaded)


def terms_json(subscription: Subscription, terms: Terms) -> dict[str, Any]:
    return {
        "planVersionId": subscription.plan_version_id,
        "addons": [[a.addon_version_id, a.quantity] for a in subscription.addons],
        "billingPeriod": terms.billing_period,
        "currency": terms.currency,
        "unitQuantities": dict(terms.unit_quantities),
        "coupon": subscription.coupon,
        "periodStart": terms.period_start.isoformat(),
        "periodEnd": terms.period_end.isoformat(),
    }


def _terms_from_json(session: Session, data: dict[str, Any]) -> Terms:
    ids = [data["planVersionId"], *(version_id for version_id, _ in data["addons"])]
    versions = {
        v.id: v for v in session.scalars(select(PackageVersion).where(PackageVersion.id.in_(ids)))
    }
    return terms_from_json(data, versions)


def terms_from_json(data: dict[str, Any], versions: dict[int, PackageVersion]) -> Terms:
    """Terms as a billing cursor keeps them, with the versions they name."""
    return Terms(
        plan=billing.priced(versions[data["planVersionId"]]),
        addons=[billing.priced(versions[v], q) for v, q in data["addons"]],
        billing_period=data["billingPeriod"],
        currency=data["currency"],
        unit_quantities=data["unitQuantities"],
        discount=billing.discount_of(data.get("coupon")),
        period_start=datetime.fromisoformat(data["periodStart"]),
        period_end=datetime.fromisoformat(data["periodEnd"]),
    )


def _move_cursor(session: Session, subscription: Subscription, terms: Terms) -> None:
    loaded = session.scalars(
        select(Subscription).where(Subscription.id == subscription.id).options(*_LOADED)
    ).one()
    cursor = session.get(BillingCursor, subscription.id, with_for_update=True)
    stored = terms_json(loaded, terms)
    if cursor is None:
        session.add(
            BillingCursor(
                subscription_id=subscription.id,
                period_start=terms.period_start,
                period_end=terms.period_end,
                terms=stored,
                closed=False,
            )
        )
    else:
        cursor.period_start = terms.period_start
        cursor.period_end = terms.period_end
        cursor.terms = stored
    session.flush()


def _close(session: Session, subscription: Subscription) -> None:
    cursor = session.get(BillingCursor, subscription.id, with_for_update=True)
    if cursor is not None:
        cursor.closed = True


def _usage_of(
    session: Session, subscription: Subscription, terms: Terms, *, until: datetime
) -> tuple[dict[str, Decimal], dict[str, Decimal | None]]:
    """The usage of each usage-priced feature in the terms' period up to `until`, and what
    the plan includes of each (None: unlimited)."""
    priced = usage_features(terms.packages)
    if not priced:
        return {}, {}
    resource_ref = ""
    if subscription.resource_id is not None:
        resource_ref = (
            session.scalar(
                select(CustomerResource.ref_id).where(
                    CustomerResource.id == subscription.resource_id
                )
            )
            or ""
        )
    rows = session.execute(
        select(Feature.ref_id, Feature.meter_type, UsageCounter.period_start, UsageCounter.value)
        .join(Feature, Feature.id == UsageCounter.feature_id)
        .where(
            UsageCounter.customer_id == subscription.customer_id,
            UsageCounter.resource_ref == resource_ref,
            Feature.environment_id == subscription.environment_id,
            Feature.ref_id.in_(priced),
            or_(
                Feature.meter_type == MeterType.FLUCTUATING,
                and_(
                    UsageCounter.period_start >= terms.period_start,
                    UsageCounter.period_start < until,
                ),
            ),
        )
        .order_by(UsageCounter.period_start)
    ).tuples()
    usage = sum_usage((ref_id, meter_type, value) for ref_id, meter_type, _, value in rows)
    # What the plan billed on included (not the plan the subscription may have moved to).
    plan = terms.plan.version_id or subscription.plan_version_id
    return usage, included(session, plan, priced)


def sum_usage(counters: Iterable[tuple[str, MeterType, int]]) -> dict[str, Decimal]:
    """Each feature's usage from its counters, oldest first: an incremental meter's counts
    add up; a fluctuating one is a level, which its latest counter holds."""
    usage: dict[str, Decimal] = {}
    for ref_id, meter_type, value in counters:
        amount = Decimal(value) / SCALE
        if meter_type is MeterType.FLUCTUATING:
            usage[ref_id] = amount
        else:
            usage[ref_id] = usage.get(ref_id, Decimal(0)) + amount
    return usage


def usage_features(packages: Sequence[Priced]) -> set[str]:
    found = set()
    for package in packages:
        if package.charges is None:
            continue
        for model in package.charges.pricing_models or []:
            if model.billing_model == "USAGE_BASED" and model.feature_id:
                found.add(model.feature_id)
        for extra in package.charges.overage_pricing_models or []:
            found.add(extra.feature_id)
    return found


def included(
    session: Session, plan_version_id: int, features: set[str]
) -> dict[str, Decimal | None]:
    rows = session.execute(
        select(
            Feature.ref_id, PackageEntitlement.usage_limit, PackageEntitlement.has_unlimited_usage
        )
        .join(Feature, Feature.id == PackageEntitlement.feature_id)
        .where(
            PackageEntitlement.package_version_id == plan_version_id,
            Feature.ref_id.in_(features),
        )
    ).tuples()
    return {ref_id: None if unlimited else Decimal(limit or 0) for ref_id, limit, unlimited in rows}


def _same(before: Terms, after: Terms) -> bool:
    return (
        before.billing_period == after.billing_period
        and before.currency == after.currency
        and dict(before.unit_quantities) == dict(after.unit_quantities)
        and [(p.name, p.quantity, p.charges) for p in before.packages]
        == [(p.name, p.quantity, p.charges) for p in after.packages]
        and before.period_start == after.period_start
    )


def _period_invoice(session: Session, subscription_id: int, period_key: str) -> Invoice | None:
    return session.scalars(
        select(Invoice).where(
            Invoice.subscription_id == subscription_id, Invoice.period_key == period_key
        )
    ).first()


def _key(moment: datetime) -> str:
    return moment.isoformat()


def customer_of(session: Session, invoice: Invoice) -> Customer:
    return session.get_one(Customer, invoice.customer_id)


# -- previews ------------------------------------------------------------------------------


def preview(session: Session, planned: Preview, *, now: datetime) -> tuple[Bill, Bill | None]:
    """What provisioning `planned` would invoice now, and at the next renewal: the same
    bills `open_subscription` and the renewal job will issue."""
    terms = planned.price_terms
    start, end = planned.period
    if terms.currency is None:
        return Bill("usd", start, end, []), None
    new = Terms(
        plan=billing.priced(planned.plan.version),
        addons=[billing.priced(a.version, a.quantity) for a in planned.addons],
        billing_period=planned.billing_period.value,
        currency=terms.currency,
        unit_quantities=terms.unit_quantities,
        period_start=start,
        period_end=end,
        discount=billing.discount_of(planned.coupon),
    )
    following = replace(
        new,
        period_start=end,
        period_end=billing_bounds(start, BillingPeriod(new.billing_period), end)[1],
    )
    recurring = bills.opening(following, first=False)
    if planned.is_scheduled or planned.in_trial or planned.start > now:
        return Bill(terms.currency, start, end, []), recurring
    replaced = [
        (old, old_terms)
        for old in planned.replacing
        if (old_terms := _current_terms(session, old)) is not None
        and old_terms.currency == terms.currency
        and old.status in BILLED_STATUSES
    ]
    if not replaced:
        return bills.opening(new, first=True), recurring
    old, old_terms = replaced[-1]
    usage, included = _usage_of(session, old, old_terms, until=now)
    immediate = bills.change(old_terms, new, at=now, new_plan=True, usage=usage, included=included)
    return immediate, recurring


def next_bill(session: Session, subscription: Subscription) -> Bill | None:
    """What the subscription's next period will charge in advance (usage in arrears comes
    on top): the portal's "next estimated bill", at the end of the current period (or
    trial). Its terms are those the updates scheduled by then (a downgrade at the period's
    end) make them, and a trial that converts is billed its first paid period. None for a
    free subscription, one that ends by then, or one moving to a plan with no price."""
    terms = _current_terms(session, subscription)
    in_trial = subscription.status is SubscriptionStatus.IN_TRIAL
    if terms is None:
        return None
    if in_trial:
        if (
            subscription.trial_end_date is None
            or subscription.trial_end_behavior is TrialEndBehavior.CANCEL_SUBSCRIPTION
        ):
            return None
        start = anchor = subscription.trial_end_date  # as lifecycle's trial end sets them
    elif subscription.status in BILLED_STATUSES:
        start, anchor = terms.period_end, subscription.billing_cycle_anchor
    else:
        return None
    if subscription.end_date is not None and subscription.end_date <= start:
        return None
    following = replace(terms, period_start=start)
    currency: str | None = terms.currency
    period = BillingPeriod(terms.billing_period)
    for scheduled in pending_schedules(subscription):  # in order, as lifecycle applies them
        if scheduled.scheduled_at > start:
            break
        target = scheduled.target  # what lifecycle.apply_schedule makes of the subscription
        if target.plan_version_id is not None:
            plan = billing.priced(session.get_one(PackageVersion, target.plan_version_id))
            following = replace(following, plan=plan, unit_quantities=dict(target.unit_quantities))
            currency = target.currency
        elif target.unit_quantities:
            following = replace(following, unit_quantities=dict(target.unit_quantities))
        if target.addons is not None:
            addons = [
                billing.priced(session.get_one(PackageVersion, a.version_id), a.quantity)
                for a in target.addons
            ]
            following = replace(following, addons=addons)
        if target.billing_period is not None:
            period, anchor = target.billing_period, scheduled.scheduled_at
    if currency is None:  # moving to a plan with no price
        return None
    following = replace(
        following,
        currency=currency,
        billing_period=period.value,
        period_end=billing_bounds(anchor, period, start)[1],
    )
    return bills.opening(following, first=in_trial)


def subscription_ref(session: Session, invoice: Invoice) -> str | None:
    if invoice.subscription_id is None:
        return None
    return session.scalar(
        select(Subscription.ref_id).where(Subscription.id == invoice.subscription_id)
    )


def exact(stored: str) -> Decimal:
    """A line's stored quantity or unit price, exactly."""
    return Decimal(stored)

"""Subscription changes that cost money, with their invoice, in one transaction.

Routes and the GraphQL surface call these instead of the subscriptions service directly
when a change can be billed: the change is made, then the invoice for it is issued from
the terms before and after (`prices/bill.py`), so a preview's amounts are the invoice's.
A subscription opened some other way (a login provisioning a plan, a trial converting, a
start date reached) is invoiced by the renewal job instead."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.customers.lookup import live_customer
from tollgate.customers.models import Customer
from tollgate.invoices import service as invoices
from tollgate.prices.bill import Terms
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.enums import BILLED_STATUSES
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.schemas import SubscriptionProvision, SubscriptionUpdate


def provision(
    session: Session, *, environment_id: int, data: SubscriptionProvision, now: datetime
) -> tuple[Subscription, bool]:
    # The customer first: what it holds is read for the credit, and two changes at once
    # (a double click at the checkout) must each see what the other made.
    live_customer(session, environment_id=environment_id, ref_id=data.customer_id)
    before = _paid_live(session, environment_id, data.customer_id)
    subscription, scheduled = subscriptions.provision_subscription(
        session, environment_id=environment_id, data=data, now=now
    )
    if not scheduled:
        replaced = [
            (old, terms)
            for old, terms in before
            if old.end_date is not None and old.end_date <= now
        ]
        invoices.open_subscription(session, subscription, now=now, replaced=replaced)
    return subscription, scheduled


def update(
    session: Session,
    *,
    environment_id: int,
    ref_id: str,
    data: SubscriptionUpdate,
    now: datetime,
) -> Subscription:
    # Locked (two changes at once bill in turn), and caught up on what was due, so that
    # the change is billed from the terms it really changes.
    current = subscriptions.subscription_to_change(
        session, environment_id=environment_id, ref_id=ref_id, now=now
    )
    before = invoices.current_terms(session, current)
    subscription = subscriptions.update_subscription(
        session, environment_id=environment_id, ref_id=ref_id, data=data, now=now
    )
    invoices.invoice_change(session, subscription, before, now=now)
    return subscription


def _paid_live(
    session: Session, environment_id: int, customer_ref: str
) -> list[tuple[Subscription, Terms]]:
    rows = session.scalars(
        select(Subscription)
        .join(Customer, Customer.id == Subscription.customer_id)
        .where(
            Customer.environment_id == environment_id,
            Customer.ref_id == customer_ref,
            Subscription.currency.is_not(None),
            Subscription.status.in_(BILLED_STATUSES),
        )
    ).all()
    found = []
    for subscription in rows:
        terms = invoices.current_terms(session, subscription)
        if terms is not None:
            found.append((subscription, terms))
    return found

"""Webhooks for invoices: `invoice.created`, `invoice.paid`, `invoice.payment_failed`,
`invoice.canceled`, each carrying the invoice as the API reads it."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.customers.models import Customer
from tollgate.invoices.models import Invoice, InvoiceState, invoice_number
from tollgate.kit.money import wire_amount
from tollgate.subscriptions.models import Subscription
from tollgate.webhooks import outbox
from tollgate.webhooks.event_types import EventType


def announce(session: Session, invoice: Invoice, *, paid: bool, now: datetime) -> None:
    types = [EventType.INVOICE_CREATED]
    if paid:
        types.append(EventType.INVOICE_PAID)
    emit(session, invoice, types, now=now)


def emit(session: Session, invoice: Invoice, types: list[EventType], *, now: datetime) -> None:
    wanted = [t for t in types if outbox.is_wanted(session, invoice.environment_id, t)]
    if not wanted:
        return
    payload = shape(session, invoice)
    for event_type in wanted:
        outbox.emit(
            session,
            environment_id=invoice.environment_id,
            event_type=event_type,
            entity=payload,
            ordering_key=payload["customer"]["id"],
            now=now,
        )


def announce_issued(
    session: Session,
    issued: Sequence[tuple[dict[str, Any], str, str | None]],
    *,
    now: datetime,
) -> None:
    """`invoice.created` (and `invoice.paid` for one settled at once) for invoices written
    in bulk: (row, customer id, subscription id) each."""
    if not issued:
        return
    environment_id = issued[0][0]["environment_id"]
    wanted = {
        t
        for t in (EventType.INVOICE_CREATED, EventType.INVOICE_PAID)
        if outbox.is_wanted(session, environment_id, t)
    }
    events = []
    for row, customer_ref, subscription_ref in issued:
        payload = _shape(row, customer_ref, subscription_ref)
        types = [EventType.INVOICE_CREATED]
        if row["state"] is InvoiceState.PAID:
            types.append(EventType.INVOICE_PAID)
        events += [outbox.Event(t, payload, customer_ref) for t in types if t in wanted]
    outbox.emit_many(session, environment_id=environment_id, events=events, now=now)


def announce_paid(session: Session, invoices: Sequence[Invoice], *, now: datetime) -> None:
    """`invoice.paid` for each of `invoices`, of one environment."""
    if not invoices:
        return
    environment_id = invoices[0].environment_id
    if not outbox.is_wanted(session, environment_id, EventType.INVOICE_PAID):
        return
    customers = dict(
        session.execute(
            select(Customer.id, Customer.ref_id).where(
                Customer.id.in_({i.customer_id for i in invoices})
            )
        )
        .tuples()
        .all()
    )
    subscriptions = dict(
        session.execute(
            select(Subscription.id, Subscription.ref_id).where(
                Subscription.id.in_({i.subscription_id for i in invoices if i.subscription_id})
            )
        )
        .tuples()
        .all()
    )
    events = [
        outbox.Event(
            EventType.INVOICE_PAID,
            _shape(
                _row(invoice),
                customers[invoice.customer_id],
                subscriptions.get(invoice.subscription_id or 0),
            ),
            customers[invoice.customer_id],
        )
        for invoice in invoices
    ]
    outbox.emit_many(session, environment_id=environment_id, events=events, now=now)


def _row(invoice: Invoice) -> dict[str, Any]:
    return {column.key: getattr(invoice, column.key) for column in Invoice.__table__.columns}


def shape(session: Session, invoice: Invoice) -> dict[str, Any]:
    """The invoice as its webhooks carry it."""
    customer_ref = session.scalar(select(Customer.ref_id).where(Customer.id == invoice.customer_id))
    subscription_ref = (
        session.scalar(
            select(Subscription.ref_id).where(Subscription.id == invoice.subscription_id)
        )
        if invoice.subscription_id
        else None
    )
    return _shape(_row(invoice), customer_ref or "", subscription_ref)


def _shape(row: dict[str, Any], customer_ref: str, subscription_ref: str | None) -> dict[str, Any]:
    currency = row["currency"]
    state = wire_state(row["state"])
    return {
        "entityId": str(row["id"]),
        "id": row["ref_id"],
        "invoiceNumber": invoice_number(row["id"]),
        "state": state,
        "stateReason": row["state_reason"],
        "billingReason": row["billing_reason"].value,
        "currency": currency,
        "subtotal": wire_amount(row["subtotal"], currency),
        "discount": wire_amount(row["discount"], currency),
        "total": wire_amount(row["total"], currency),
        "creditApplied": wire_amount(row["credit_applied"], currency),
        "amountDue": wire_amount(max(row["total"] - row["credit_applied"], 0), currency)
        if state == "OPEN"
        else 0,
        "periodStart": row["period_start"],
        "periodEnd": row["period_end"],
        "issueDate": row["issued_at"],
        "paidDate": row["paid_at"],
        "customer": {"id": customer_ref},
        "subscription": {"id": subscription_ref} if subscription_ref else None,
    }


def wire_state(state: InvoiceState) -> Literal["OPEN", "PAID", "CANCELED"]:
    """OPEN, PAID, or CANCELED (a voided or uncollectible invoice, with its reason)."""
    if state is InvoiceState.OPEN:
        return "OPEN"
    if state is InvoiceState.PAID:
        return "PAID"
    return "CANCELED"

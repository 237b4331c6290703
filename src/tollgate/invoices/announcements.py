"""Webhooks for invoices: `invoice.created`, `invoice.paid`, `invoice.payment_failed`,
`invoice.canceled`, each carrying the invoice as the API reads it."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.customers.models import Customer
from tollgate.invoices.models import Invoice
from tollgate.kit.money import wire_amount
from tollgate.subscriptions.models import Subscription
from tollgate.webhooks import outbox
from tollgate.webhooks.event_types import EventType


def announce(
    session: Session, invoice: Invoice, *, paid: bool, now: datetime, created: bool = True
) -> None:
    types = [EventType.INVOICE_CREATED] if created else []
    if paid:
        types.append(EventType.INVOICE_PAID)
    emit(session, invoice, types, now=now)


def emit(session: Session, invoice: Invoice, types: list[EventType], *, now: datetime) -> None:
    wanted = [t for t in types if outbox.is_wanted(session, invoice.environment_id, t)]
    if not wanted:
        return
    payload = _payload(session, invoice)
    for event_type in wanted:
        outbox.emit(
            session,
            environment_id=invoice.environment_id,
            event_type=event_type,
            entity=payload,
            ordering_key=payload["customer"]["id"],
            now=now,
        )


def _payload(session: Session, invoice: Invoice) -> dict[str, Any]:
    customer_ref = session.scalar(select(Customer.ref_id).where(Customer.id == invoice.customer_id))
    subscription_ref = (
        session.scalar(
            select(Subscription.ref_id).where(Subscription.id == invoice.subscription_id)
        )
        if invoice.subscription_id
        else None
    )
    return {
        "entityId": str(invoice.id),
        "id": invoice.ref_id,
        "invoiceNumber": invoice.number,
        "state": wire_state(invoice),
        "stateReason": invoice.state_reason,
        "billingReason": invoice.billing_reason.value,
        "currency": invoice.currency,
        "subtotal": wire_amount(invoice.subtotal, invoice.currency),
        "total": wire_amount(invoice.total, invoice.currency),
        "amountDue": wire_amount(max(invoice.total, 0), invoice.currency)
        if wire_state(invoice) == "OPEN"
        else 0,
        "periodStart": invoice.period_start,
        "periodEnd": invoice.period_end,
        "issueDate": invoice.issued_at,
        "paidDate": invoice.paid_at,
        "customer": {"id": customer_ref},
        "subscription": {"id": subscription_ref} if subscription_ref else None,
    }


def wire_state(invoice: Invoice) -> str:
    """OPEN, PAID, or CANCELED (a voided or uncollectible invoice, with its reason)."""
    if invoice.state.value in ("OPEN", "PAID"):
        return invoice.state.value
    return "CANCELED"

"""A failed payment attempt: `invoice.payment_failed` (the invoice as its other webhooks
carry it) and, for a subscription's invoice, `subscription.payment_failed` (the
subscription as its other webhooks carry it), each with the attempt that failed and when
the next one is (none after the last)."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tollgate.invoices.announcements import shape
from tollgate.invoices.models import Invoice
from tollgate.payments.models import Payment, PaymentStatus
from tollgate.subscriptions.announcements import subscription_entity
from tollgate.subscriptions.models import Subscription
from tollgate.webhooks import outbox
from tollgate.webhooks.event_types import EventType


def announce_failure(
    session: Session,
    invoice: Invoice,
    payment: Payment,
    subscription: Subscription | None,
    *,
    now: datetime,
) -> None:
    attempt = {
        "attempt": payment.attempt,
        "status": payment.status.value,
        "failureCode": payment.failure_code,
        "failureMessage": payment.failure_message,
        "requiresAction": payment.status is PaymentStatus.REQUIRES_ACTION,
        "billingId": payment.provider_payment_id,
        "nextAttemptAt": invoice.next_payment_at,
    }
    events = []
    if outbox.is_wanted(session, invoice.environment_id, EventType.INVOICE_PAYMENT_FAILED):
        entity = {**shape(session, invoice), "payment": attempt}
        events.append(outbox.Event(EventType.INVOICE_PAYMENT_FAILED, entity, _customer(entity)))
    wanted = outbox.is_wanted(
        session, invoice.environment_id, EventType.SUBSCRIPTION_PAYMENT_FAILED
    )
    if subscription is not None and wanted:
        entity = {
            **subscription_entity(session, subscription),
            "invoice": {"id": invoice.ref_id},
            "payment": attempt,
        }
        events.append(
            outbox.Event(EventType.SUBSCRIPTION_PAYMENT_FAILED, entity, _customer(entity))
        )
    outbox.emit_many(session, environment_id=invoice.environment_id, events=events, now=now)


def _customer(entity: dict[str, Any]) -> str:
    ref: str = entity["customer"]["id"]
    return ref

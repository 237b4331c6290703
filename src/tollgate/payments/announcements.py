"""`invoice.payment_failed`: the invoice as its other webhooks carry it, with the attempt
that failed and when the next one is (none after the last)."""

from datetime import datetime

from sqlalchemy.orm import Session

from tollgate.invoices.announcements import shape
from tollgate.invoices.models import Invoice
from tollgate.payments.models import Payment
from tollgate.webhooks import outbox
from tollgate.webhooks.event_types import EventType


def announce_failure(
    session: Session, invoice: Invoice, payment: Payment, *, now: datetime
) -> None:
    if not outbox.is_wanted(session, invoice.environment_id, EventType.INVOICE_PAYMENT_FAILED):
        return
    entity = shape(session, invoice)
    entity["payment"] = {
        "attempt": payment.attempt,
        "status": payment.status.value,
        "failureCode": payment.failure_code,
        "failureMessage": payment.failure_message,
        "requiresAction": payment.status.value == "REQUIRES_ACTION",
        "billingId": payment.provider_payment_id,
        "nextAttemptAt": invoice.next_payment_at,
    }
    outbox.emit(
        session,
        environment_id=invoice.environment_id,
        event_type=EventType.INVOICE_PAYMENT_FAILED,
        entity=entity,
        ordering_key=entity["customer"]["id"],
        now=now,
    )

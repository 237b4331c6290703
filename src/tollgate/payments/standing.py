"""Where a subscription's payments stand, as its read shows them: its latest invoice, and
`paymentCollection` (NOT_REQUIRED, PROCESSING, FAILED or ACTION_REQUIRED)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.invoices.announcements import wire_state
from tollgate.invoices.models import Invoice, InvoiceState, amount_due, pdf_path
from tollgate.invoices.service import latest_invoice
from tollgate.kit.money import wire_amount
from tollgate.payments.collection import latest_payment
from tollgate.payments.models import Payment, PaymentProvider, PaymentStatus
from tollgate.subscriptions.enums import PaymentCollectionMethod
from tollgate.subscriptions.schemas import LatestInvoice, PaymentCollection, SubscriptionRead

_COLLECTION: dict[PaymentStatus, PaymentCollection] = {
    PaymentStatus.PENDING: "PROCESSING",
    PaymentStatus.SUCCEEDED: "NOT_REQUIRED",
    PaymentStatus.FAILED: "FAILED",
    PaymentStatus.REQUIRES_ACTION: "ACTION_REQUIRED",
}


def with_standing(
    session: Session, read: SubscriptionRead, subscription_id: int
) -> SubscriptionRead:
    invoice = latest_invoice(session, subscription_id)
    if invoice is None:
        return read
    payment = latest_payment(session, invoice.id)
    charged = read.payment_collection_method is PaymentCollectionMethod.CHARGE
    return read.model_copy(
        update={
            "latest_invoice": LatestInvoice(
                billing_id=invoice.ref_id,
                created_at=invoice.issued_at,
                requires_action=payment is not None
                and payment.status is PaymentStatus.REQUIRES_ACTION,
                status=wire_state(invoice.state),
                amount_due=wire_amount(amount_due(invoice), invoice.currency),
                billing_reason=invoice.billing_reason.value,
                currency=invoice.currency,
                pdf_url=pdf_path(invoice.ref_id),
                total=wire_amount(invoice.total, invoice.currency),
                payment_secret=payment.client_secret
                if payment is not None and invoice.state is InvoiceState.OPEN
                else None,
            ),
            "payment_collection": _collection(session, invoice, payment)
            if charged
            else "NOT_REQUIRED",
        }
    )


def _collection(session: Session, invoice: Invoice, payment: Payment | None) -> PaymentCollection:
    if invoice.state is not InvoiceState.OPEN or amount_due(invoice) <= 0:
        return "NOT_REQUIRED"
    if payment is not None:
        return _COLLECTION[payment.status]
    charged = session.scalar(
        select(PaymentProvider.id).where(
            PaymentProvider.environment_id == invoice.environment_id,
            PaymentProvider.connected_at <= invoice.issued_at,
        )
    )
    return "PROCESSING" if charged is not None else "NOT_REQUIRED"

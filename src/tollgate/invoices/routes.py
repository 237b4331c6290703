"""The invoices API: a customer's invoices, one invoice and its PDF, and settling a
subscription's open invoices by hand (`invoice/paid`, Stigg's path)."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import Depends, Query, Response
from sqlalchemy.orm import Session

from tollgate.errors import NotImplementedYet
from tollgate.http.deps import DbSession, Now, ReadPrincipal, WritePrincipal
from tollgate.http.params import enum_list, page_request, query_moment
from tollgate.http.routing import api_router
from tollgate.http.schemas import Envelope, Page, page_of
from tollgate.invoices import pdf, service
from tollgate.invoices.announcements import wire_state
from tollgate.invoices.models import Invoice, InvoiceState, amount_due, pdf_path
from tollgate.invoices.schemas import InvoiceRead, LineItem, MarkedPaid
from tollgate.kit.money import wire_amount, wire_price
from tollgate.kit.pagination import PageRequest

router = api_router(prefix="/api/v1", tags=["invoices"])


class _Wire(StrEnum):
    OPEN = "OPEN"
    PAID = "PAID"
    CANCELED = "CANCELED"


# The client's states, and the stored ones each stands for.
_STATES = {
    "OPEN": [InvoiceState.OPEN],
    "PAID": [InvoiceState.PAID],
    "CANCELED": [InvoiceState.VOID, InvoiceState.UNCOLLECTIBLE],
}


@router.get("/customers/{customer_id}/invoices")
def list_invoices(
    customer_id: str,
    session: DbSession,
    principal: ReadPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    issued_after: str | None = Query(None, alias="issuedAfter", max_length=64),
    issued_before: str | None = Query(None, alias="issuedBefore", max_length=64),
    state_in: str | None = Query(None, alias="stateIn", max_length=64),
    order_by: Literal["issueDate", "dueDate", "total"] | None = Query(None, alias="orderBy"),
    order_dir: Literal["ASC", "DESC"] | None = Query(None, alias="orderDir"),
    contract_external_id: str | None = Query(None, alias="contractExternalId", max_length=255),
) -> Page[InvoiceRead]:
    """The customer's invoices, oldest first or (`orderDir=DESC`) newest first, by issue
    date (the due date is the same). Ordering by total is not supported."""
    principal.require_customer(customer_id)
    if order_by == "total":
        raise NotImplementedYet("orderBy", "invoices are listed by issue date")
    if contract_external_id is not None:
        raise NotImplementedYet("contractExternalId", "Tollgate has no contracts")
    states = [
        stored
        for name in enum_list(state_in, _Wire, field="stateIn") or []
        for stored in _STATES[name.value]
    ]
    invoices, cursors = service.list_invoices(
        session,
        environment_id=principal.environment_id,
        customer_ref=customer_id,
        page=page,
        issued_after=_moment(issued_after, "issuedAfter"),
        issued_before=_moment(issued_before, "issuedBefore"),
        states=states,
        newest_first=order_dir == "DESC",
    )
    return page_of([to_read(invoice, customer_id, session) for invoice in invoices], cursors)


@router.get("/invoices/{invoice_id}")
def get_invoice(
    invoice_id: str, session: DbSession, principal: ReadPrincipal
) -> Envelope[InvoiceRead]:
    """One invoice (Tollgate addition)."""
    invoice = service.get_invoice(
        session, environment_id=principal.environment_id, ref_id=invoice_id
    )
    customer_ref = service.customer_of(session, invoice).ref_id
    principal.require_customer(customer_ref)
    return Envelope[InvoiceRead](data=to_read(invoice, customer_ref, session))


@router.get("/invoices/{invoice_id}/pdf", response_class=Response)
def download_invoice(invoice_id: str, session: DbSession, principal: ReadPrincipal) -> Response:
    """The invoice as a PDF (Tollgate addition)."""
    invoice = service.get_invoice(
        session, environment_id=principal.environment_id, ref_id=invoice_id
    )
    customer_ref = service.customer_of(session, invoice).ref_id
    principal.require_customer(customer_ref)
    document = pdf.render(invoice, customer_ref=customer_ref)
    return Response(
        document,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"'},
    )


@router.post("/invoices/{invoice_id}/void")
def void_invoice(
    invoice_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[InvoiceRead]:
    """Void an open invoice issued in error (Tollgate addition); it reads as CANCELED."""
    return _closed(session, principal.environment_id, invoice_id, InvoiceState.VOID, now)


@router.post("/invoices/{invoice_id}/mark-uncollectible")
def mark_uncollectible(
    invoice_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[InvoiceRead]:
    """Give up collecting an open invoice (Tollgate addition); it reads as CANCELED."""
    return _closed(session, principal.environment_id, invoice_id, InvoiceState.UNCOLLECTIBLE, now)


def _closed(
    session: Session, environment_id: int, invoice_id: str, state: InvoiceState, now: datetime
) -> Envelope[InvoiceRead]:
    invoice = service.close_invoice(
        session, environment_id=environment_id, ref_id=invoice_id, state=state, now=now
    )
    customer_ref = service.customer_of(session, invoice).ref_id
    return Envelope[InvoiceRead](data=to_read(invoice, customer_ref, session))


@router.post("/subscriptions/{subscription_id}/invoice/paid")
def mark_invoice_paid(
    subscription_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[MarkedPaid]:
    """Mark the subscription's open invoices paid: a payment taken outside any provider."""
    subscription = service.mark_subscription_paid(
        session, environment_id=principal.environment_id, subscription_ref=subscription_id, now=now
    )
    return Envelope[MarkedPaid](data=MarkedPaid(id=subscription.ref_id))


def _moment(raw: str | None, field: str) -> datetime | None:
    return None if raw is None else query_moment(raw, field=field)


def to_read(invoice: Invoice, customer_ref: str, session: Session) -> InvoiceRead:
    currency = invoice.currency
    subscription_ref = service.subscription_ref(session, invoice)
    return InvoiceRead(
        invoice_id=invoice.ref_id,
        invoice_number=invoice.number,
        customer_external_id=customer_ref,
        currency=currency,
        state=wire_state(invoice.state),
        state_reason=invoice.state_reason
        or (invoice.state.value if invoice.state in _STATES["CANCELED"] else None),
        subtotal=wire_amount(invoice.subtotal, currency),
        discount=wire_amount(invoice.discount, currency),
        tax=wire_amount(invoice.tax, currency),
        total=wire_amount(invoice.total, currency),
        issue_date=invoice.issued_at,
        due_date=invoice.due_at,
        paid_date=invoice.paid_at,
        line_items=[
            LineItem(
                amount=wire_amount(line.amount, currency),
                description=line.description,
                quantity=float(line.quantity),
                unit_price=wire_price(service.exact(line.unit_price)),
            )
            for line in invoice.lines
        ],
        billing_reason=invoice.billing_reason.value,
        subscription_id=subscription_ref,
        billing_period_start=invoice.period_start,
        billing_period_end=invoice.period_end,
        credit_applied=wire_amount(invoice.credit_applied, currency),
        amount_due=wire_amount(amount_due(invoice), currency),
        pdf_url=pdf_path(invoice.ref_id),
    )

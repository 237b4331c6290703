"""The invoices API's wire shapes, as the client reads a customer's invoices."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from tollgate.http.schemas import WireModel


class LineItem(WireModel):
    amount: float
    description: str
    product_external_id: str | None = None
    quantity: float
    unit_price: float


class InvoiceRead(WireModel):
    invoice_id: str
    invoice_number: str | None
    invoice_external_id: str | None = None
    customer_external_id: str
    contract_external_id: str | None = None
    currency: str
    state: Literal["OPEN", "PAID", "CANCELED"]
    subtotal: float
    discount: float
    tax: float
    total: float
    issue_date: datetime
    due_date: datetime | None
    paid_date: datetime | None
    line_items: list[LineItem]
    state_reason: str | None = Field(
        None, description="Tollgate addition: why a CANCELED invoice was (VOID, UNCOLLECTIBLE)"
    )
    billing_reason: str = Field(description="Tollgate addition: what issued it")
    subscription_id: str | None = Field(None, description="Tollgate addition")
    billing_period_start: datetime = Field(description="Tollgate addition")
    billing_period_end: datetime = Field(description="Tollgate addition")
    credit_applied: float = Field(
        0, description="Tollgate addition: taken from the customer's credit"
    )
    amount_due: float = Field(0, description="Tollgate addition: what is still owed")
    pdf_url: str = Field(description="Tollgate addition: the PDF, with the same key")


class MarkedPaid(WireModel):
    id: str

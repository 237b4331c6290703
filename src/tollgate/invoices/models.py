"""Invoices and their lines: immutable once issued, except for their payment state.

Amounts are whole minor units of the invoice's currency; a line's quantity and unit price
are exact decimal strings (a unit price may be finer than a minor unit). A period's opening
invoice carries a `period_key` (the period's start), unique per subscription, so issuing it
twice (a retried job, two workers) writes one invoice."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tollgate.db.base import Base, BigIntPK, UTCDateTime, enum_column


class InvoiceState(StrEnum):
    OPEN = "OPEN"
    PAID = "PAID"
    VOID = "VOID"  # canceled before payment: a correction is a new invoice
    UNCOLLECTIBLE = "UNCOLLECTIBLE"  # given up on after the last payment attempt


class BillingReason(StrEnum):
    SUBSCRIPTION_CREATION = "SUBSCRIPTION_CREATION"
    BILLING_CYCLE = "BILLING_CYCLE"
    SUBSCRIPTION_UPDATE = "SUBSCRIPTION_UPDATE"
    MANUAL = "MANUAL"


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("environment_id", "ref_id"),
        UniqueConstraint("subscription_id", "period_key"),
        Index("ix_invoices_customer_issued", "customer_id", "issued_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    ref_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="SET NULL")
    )
    period_key: Mapped[str | None] = mapped_column(String(40))
    billing_reason: Mapped[BillingReason] = mapped_column(enum_column(BillingReason))
    state: Mapped[InvoiceState] = mapped_column(enum_column(InvoiceState))
    state_reason: Mapped[str | None] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    tax: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger)
    # Taken from the customer's credit (what earlier invoices with a negative total left):
    # what is due is `total - credit_applied`.
    credit_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payment_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_payment_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    provider_payment_id: Mapped[str | None] = mapped_column(String(255))

    lines: Mapped[list["InvoiceLine"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="InvoiceLine.position"
    )

    @property
    def number(self) -> str:
        return invoice_number(self.id)


def amount_due(invoice: "Invoice") -> int:
    """What the customer still owes on an open invoice."""
    if invoice.state is not InvoiceState.OPEN:
        return 0
    return max(invoice.total - invoice.credit_applied, 0)


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(500))
    feature_ref: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[str] = mapped_column(String(48))
    unit_price: Mapped[str] = mapped_column(String(48))
    amount: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())


class BillingCursor(Base):
    """How far a subscription has been invoiced, and on what terms.

    `period_start` is the start of the last period whose opening invoice was issued;
    `terms` what that period was billed on (plan and add-on versions, quantities, currency),
    so its usage can be billed in arrears on the same terms after the plan has changed.
    `closed`: the subscription ended and its last usage was billed."""

    __tablename__ = "billing_cursors"

    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)


def pdf_path(ref_id: str) -> str:
    """Where an invoice's PDF is downloaded (`pdfUrl`)."""
    return f"/api/v1/invoices/{ref_id}/pdf"


def invoice_number(invoice_id: int) -> str:
    """An invoice's number on paper: from its row's id, so numbers never repeat and need no
    counter of their own."""
    return f"TG-{invoice_id:07d}"

"""An environment's payment provider, and every attempt to collect an invoice.

An environment without a `PaymentProvider` row is on the manual provider: its invoices
are settled by `invoice/paid` or given up on by hand. With one, the collection job charges
each open invoice through it.

A `Payment` row is written, and committed, before the provider is asked for anything:
whatever happens after (a crash, a lost answer, a job run twice), the next run finds the
row and finishes that attempt instead of starting another. `idempotency_key` is unique
and is what the provider is given, so it dedupes too where it can."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Exists,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    exists,
)
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from tollgate.db.base import Base, BigIntPK, UTCDateTime, enum_column


class Vendor(StrEnum):
    STRIPE = "STRIPE"


class PaymentProvider(Base):
    """How an environment takes payments: its Stripe account. One per environment."""

    __tablename__ = "payment_providers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), unique=True
    )
    # The integration's id on the wire (`integrationId`, `integrations[].id`), and the last
    # part of the URL Stripe posts its webhooks to: unguessable, unique across environments.
    ref_id: Mapped[str] = mapped_column(String(64), unique=True)
    vendor: Mapped[Vendor] = mapped_column(enum_column(Vendor))
    secret_key: Mapped[str] = mapped_column(String(255))
    webhook_secret: Mapped[str | None] = mapped_column(String(255))
    # The account's publishable key (pk_...): browsers load Stripe.js with it to collect a
    # card (the checkout widget's Stripe Elements). Public by design; None: no card
    # collection in the browser.
    publishable_key: Mapped[str | None] = mapped_column(String(255))
    # Where the provider's API is: None for Stripe itself (a stand-in's URL in tests).
    api_base: Mapped[str | None] = mapped_column(String(255))
    # Days to wait before each retry of a failed payment; after the last, the product's
    # rules decide (cancel, or the downgrade plan).
    retry_days: Mapped[list[int]] = mapped_column(JSON)
    # Invoices issued from this moment on are charged through it; older ones stay manual.
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentStatus(StrEnum):
    PENDING = "PENDING"  # written; the provider's answer is not known yet
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REQUIRES_ACTION = "REQUIRES_ACTION"  # the customer must authenticate (3-D Secure)


class Payment(Base):
    """One attempt to collect an invoice."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("invoice_id", "attempt"),
        Index("ix_payments_provider_payment_id", "provider_payment_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[PaymentStatus] = mapped_column(enum_column(PaymentStatus))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method_id: Mapped[str] = mapped_column(String(255))
    # The provider's id of the payment (a Stripe PaymentIntent), once it answered.
    provider_payment_id: Mapped[str | None] = mapped_column(String(255))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    # Only while it waits for the customer to authenticate: what their browser confirms it
    # with (the PaymentIntent's client secret).
    client_secret: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


def attempt_under_way(invoice_id: ColumnElement[int] | InstrumentedAttribute[int]) -> Exists:
    """Whether the invoice has a payment attempt not yet settled (PENDING): it keeps the
    invoice's lease, and the amount it holds is not due again."""
    return exists().where(Payment.invoice_id == invoice_id, Payment.status == PaymentStatus.PENDING)

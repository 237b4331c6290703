"""Collecting open invoices through the environment's provider (the `payments.collect`
job), and what a payment's outcome does to its invoice and subscription.

An attempt goes in steps, each one's result committed before the provider is asked for
the next (gateway.py says why):

1. under the invoice's lock, the attempt is written (PENDING) and the invoice leased for
   `LEASE`, so no other run touches it meanwhile;
2. the provider creates the payment, which charges nothing; its id is written, unless
   another run wrote one first (then ours is canceled);
3. the provider confirms it, which charges; the outcome is written.

A run that finds an attempt still PENDING once its lease is over (a crash, a lost answer)
takes it up where it stopped: it asks for the outcome of the payment it knows, and
confirms it only if it never was. A payment that waits for the customer to authenticate
is canceled before the next attempt, so two can never both go through.

A failed attempt puts the subscription in PAYMENT_PENDING (it keeps its access) and the
invoice is tried again after the provider's `retry_days`; after the last retry the
invoice is given up on (UNCOLLECTIBLE) and the product's rules end the subscription."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from tollgate.customers.models import Customer
from tollgate.db.engine import unit_of_work
from tollgate.invoices import service as invoices
from tollgate.invoices.models import Invoice, InvoiceState, amount_due
from tollgate.payments.announcements import announce_failure
from tollgate.payments.errors import ProviderError
from tollgate.payments.gateway import Gateway, Outcome
from tollgate.payments.models import Payment, PaymentProvider, PaymentStatus
from tollgate.payments.providers import gateway, of_environment
from tollgate.subscriptions import lifecycle
from tollgate.subscriptions.enums import PaymentCollectionMethod, SubscriptionStatus
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.service import get_subscription

log = logging.getLogger("tollgate.payments")

LEASE = timedelta(minutes=10)  # longer than any attempt's requests can take
POLL = timedelta(hours=1)  # a payment still processing is asked about again after this
BATCH = 100
NO_PAYMENT_METHOD = (
    "the customer has no payment method: attach one with POST /api/v1/customers/{id}/payment-method"
)


@dataclass(frozen=True, slots=True)
class _Charge:
    """What steps 2 and 3 need, read under the lock of step 1."""

    payment_id: int
    key: str
    provider_payment_id: str | None
    resumed: bool
    amount: int
    currency: str
    billing_id: str
    payment_method_id: str
    invoice_ref: str


@dataclass(frozen=True, slots=True)
class _Abandon:
    """A payment still waiting for the customer's action: cancel it before trying again."""

    payment_id: int
    provider_payment_id: str


# -- the job -------------------------------------------------------------------------------


def collect_due(sessions: sessionmaker[Session], now: datetime) -> int:
    """Try every invoice that is due, of every environment connected to a provider."""
    with unit_of_work(sessions) as session:
        connected = session.scalars(select(PaymentProvider)).all()
    done = 0
    for found in connected:
        with unit_of_work(sessions) as session:
            due = session.scalars(
                _due(found.environment_id, found.connected_at, now).limit(BATCH)
            ).all()
            waiting = session.execute(_waiting_on_closed(found.environment_id).limit(BATCH)).all()
        if not due and not waiting:
            continue  # the usual pass: no client for the provider is made
        provider = gateway(found)
        for payment_id, provider_payment_id in waiting:
            try:
                _call_off(sessions, provider, payment_id, provider_payment_id, now=now)
            except Exception:
                log.exception("payment not called off", extra={"payment_id": payment_id})
        for invoice_id in due:
            try:
                done += collect(sessions, provider, invoice_id, now=now)
            except Exception:
                # Left as it is: the lease runs out and a later run takes it up again.
                log.exception("payment attempt stopped", extra={"invoice_id": invoice_id})
    return done


def _due(environment_id: int, connected_at: datetime, now: datetime) -> Select[tuple[int]]:
    return (
        select(Invoice.id)
        .outerjoin(Subscription, Subscription.id == Invoice.subscription_id)
        .where(
            Invoice.environment_id == environment_id,
            Invoice.state == InvoiceState.OPEN,
            Invoice.issued_at >= connected_at,
            Invoice.total > Invoice.credit_applied,
            _is_due(now),
            # A subscription paid by invoice (or not through Tollgate) is never charged.
            or_(
                Subscription.payment_collection_method.is_(None),
                Subscription.payment_collection_method == PaymentCollectionMethod.CHARGE,
            ),
        )
        .order_by(Invoice.id)
    )


def _waiting_on_closed(environment_id: int) -> Select[tuple[int, str | None]]:
    """Payments still waiting for the customer whose invoice was closed meanwhile (voided,
    say): they must never go through now."""
    return (
        select(Payment.id, Payment.provider_payment_id)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(
            Payment.environment_id == environment_id,
            Payment.status == PaymentStatus.REQUIRES_ACTION,
            Invoice.state != InvoiceState.OPEN,
        )
        .order_by(Payment.id)
    )


def _call_off(
    sessions: sessionmaker[Session],
    provider: Gateway,
    payment_id: int,
    provider_payment_id: str | None,
    *,
    now: datetime,
) -> Outcome:
    """Cancel a payment waiting for the customer, and record what became of it."""
    assert provider_payment_id is not None  # a payment waits only once the provider has it
    outcome = provider.cancel_payment(provider_payment_id)
    _record(sessions, payment_id, outcome, now=now)
    return outcome


def _is_due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Invoice.payment_attempts == 0, Invoice.next_payment_at.is_(None)),
        Invoice.next_payment_at <= now,
    )


def collect(
    sessions: sessionmaker[Session], provider: Gateway, invoice_id: int, *, now: datetime
) -> bool:
    """One attempt at the invoice, if it is due; whether one was made."""
    with unit_of_work(sessions) as session:
        step = _begin(session, invoice_id, now=now)
    if isinstance(step, _Abandon):
        outcome = _call_off(sessions, provider, step.payment_id, step.provider_payment_id, now=now)
        if outcome.status is PaymentStatus.SUCCEEDED:
            return True  # the customer authenticated after all
        with unit_of_work(sessions) as session:
            step = _begin(session, invoice_id, now=now)
    if not isinstance(step, _Charge):
        return step is True
    payment_id = step.provider_payment_id
    if payment_id is None:
        try:
            payment_id = provider.create_payment(
                key=step.key,
                amount=step.amount,
                currency=step.currency,
                billing_id=step.billing_id,
                payment_method_id=step.payment_method_id,
                metadata={"tollgate_invoice": step.invoice_ref, "tollgate_payment": step.key},
            )
        except ProviderError as error:
            if not error.refused:
                raise  # an outage: the lease runs out and a later run tries again
            # Refused for good (an amount it does not take, say): a failed attempt, so the
            # schedule and the product's rules go on rather than this for ever.
            refused = Outcome("", PaymentStatus.FAILED, failure_code="provider_refused")
            _record(sessions, step.payment_id, refused, now=now, message=error.message)
            return True
        with unit_of_work(sessions) as session:
            if not _note_payment_id(session, step.payment_id, payment_id):
                provider.cancel_payment(payment_id)  # another run's payment goes on instead
                return False
    known = provider.payment_outcome(payment_id) if step.resumed else None
    outcome = (
        known
        if known is not None and known.confirmed
        else provider.confirm_payment(payment_id, key=step.key)
    )
    if outcome.awaiting_capture:  # a checkout's hold whose capture was cut short
        outcome = provider.capture_payment(payment_id, key=step.key, amount=step.amount)
    _record(sessions, step.payment_id, outcome, now=now)
    return True


def _begin(session: Session, invoice_id: int, *, now: datetime) -> _Charge | _Abandon | bool:
    """Step 1, under the invoice's lock: the attempt to make (or take up), or False when
    the invoice is not due (any more), or True when the attempt failed at once."""
    invoice = session.scalars(
        select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.state == InvoiceState.OPEN, _is_due(now))
        .with_for_update(skip_locked=True)
    ).one_or_none()
    if invoice is None or amount_due(invoice) <= 0:
        return False
    latest = latest_payment(session, invoice.id)
    if latest is not None and latest.status is PaymentStatus.REQUIRES_ACTION:
        assert latest.provider_payment_id is not None
        return _Abandon(latest.id, latest.provider_payment_id)
    invoice.next_payment_at = now + LEASE
    customer = session.get_one(Customer, invoice.customer_id)
    if latest is not None and latest.status is PaymentStatus.PENDING:
        return _charge(latest, invoice, customer, resumed=True)
    method = (customer.default_payment_method or {}).get("billingId")
    invoice.payment_attempts += 1
    payment = Payment(
        environment_id=invoice.environment_id,
        invoice_id=invoice.id,
        attempt=invoice.payment_attempts,
        idempotency_key=f"tg_{invoice.ref_id}_{invoice.payment_attempts}",
        status=PaymentStatus.PENDING,
        amount=amount_due(invoice),
        currency=invoice.currency,
        payment_method_id=method or "",
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    if not customer.billing_id or not method:
        failed = Outcome("", PaymentStatus.FAILED, failure_code="no_payment_method")
        record(session, payment, failed, now=now, message=NO_PAYMENT_METHOD)
        return True
    return _charge(payment, invoice, customer, resumed=False)


def _charge(payment: Payment, invoice: Invoice, customer: Customer, *, resumed: bool) -> _Charge:
    return _Charge(
        payment_id=payment.id,
        key=payment.idempotency_key,
        provider_payment_id=payment.provider_payment_id,
        resumed=resumed,
        amount=payment.amount,
        currency=payment.currency,
        billing_id=customer.billing_id or "",
        payment_method_id=payment.payment_method_id,
        invoice_ref=invoice.ref_id,
    )


def latest_payment(session: Session, invoice_id: int) -> Payment | None:
    """The invoice's last attempt, if there was one."""
    return session.scalars(
        select(Payment).where(Payment.invoice_id == invoice_id).order_by(Payment.attempt.desc())
    ).first()


def _note_payment_id(session: Session, payment_id: int, provider_payment_id: str) -> bool:
    """Step 2's record: the provider's id, unless another run wrote one first."""
    written = session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.provider_payment_id.is_(None))
        .values(provider_payment_id=provider_payment_id)
    )
    return bool(written.rowcount)  # type: ignore[attr-defined]


# -- outcomes ------------------------------------------------------------------------------


def record(
    session: Session,
    payment: Payment,
    outcome: Outcome,
    *,
    now: datetime,
    message: str | None = None,
) -> None:
    """What the provider said of a payment (its confirmation's answer, a later look, or
    its webhook), applied once: a payment that ended already is left as it is."""
    invoice = session.scalars(
        select(Invoice).where(Invoice.id == payment.invoice_id).with_for_update()
    ).one()
    session.refresh(payment)  # as it is now that its invoice is locked
    before = payment.status
    if before in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED):
        return
    if outcome.status is PaymentStatus.PENDING:
        if invoice.state is InvoiceState.OPEN:
            invoice.next_payment_at = now + POLL  # processing: its webhook, or a look then
        return
    if outcome.status is before:
        return
    payment.updated_at = now
    payment.status = outcome.status
    payment.failure_code = outcome.failure_code
    payment.failure_message = message or outcome.failure_message
    payment.client_secret = outcome.client_secret
    if outcome.status is PaymentStatus.SUCCEEDED:
        _paid(session, invoice, now=now)
    elif before is PaymentStatus.PENDING:
        # Failed, or waiting for the customer: counts as a failed attempt. (A payment that
        # waited for the customer and then failed was counted already.)
        _failed(session, invoice, payment, now=now)


def _record(
    sessions: sessionmaker[Session],
    payment_id: int,
    outcome: Outcome,
    *,
    now: datetime,
    message: str | None = None,
) -> None:
    """`record`, in a transaction of its own."""
    with unit_of_work(sessions) as session:
        record(session, session.get_one(Payment, payment_id), outcome, now=now, message=message)


def _paid(session: Session, invoice: Invoice, *, now: datetime) -> None:
    if invoice.state is not InvoiceState.OPEN:
        log.warning(
            "payment succeeded for an invoice no longer open",
            extra={"invoice": invoice.ref_id, "state": invoice.state.value},
        )
        return
    invoices.settle(session, [invoice], now=now)
    session.flush()
    subscription = _subscription(session, invoice)
    if subscription is None or subscription.status is not SubscriptionStatus.PAYMENT_PENDING:
        return
    still_failing = session.scalar(
        select(Invoice.id).where(
            Invoice.subscription_id == subscription.id,
            Invoice.state == InvoiceState.OPEN,
            Invoice.payment_attempts > 0,
        )
    )
    if still_failing is None:
        subscription.status = SubscriptionStatus.ACTIVE
        lifecycle.refresh(session, subscription, now=now)


def _failed(session: Session, invoice: Invoice, payment: Payment, *, now: datetime) -> None:
    if invoice.state is not InvoiceState.OPEN:
        return
    provider = of_environment(session, invoice.environment_id)
    retry_days = provider.retry_days if provider is not None else []
    retries_left = invoice.payment_attempts <= len(retry_days)
    invoice.next_payment_at = (
        now + timedelta(days=retry_days[invoice.payment_attempts - 1]) if retries_left else None
    )
    subscription = _subscription(session, invoice)
    if retries_left:
        if subscription is not None and subscription.status is SubscriptionStatus.ACTIVE:
            subscription.status = SubscriptionStatus.PAYMENT_PENDING
            lifecycle.refresh(session, subscription, now=now)
        announce_failure(session, invoice, payment, subscription, now=now)
        return
    announce_failure(session, invoice, payment, subscription, now=now)
    invoices.close(session, invoice, state=InvoiceState.UNCOLLECTIBLE, now=now)
    if subscription is not None and subscription.status in (
        SubscriptionStatus.ACTIVE,
        SubscriptionStatus.PAYMENT_PENDING,
    ):
        lifecycle.end_unpaid(session, subscription, now=now)


def _subscription(session: Session, invoice: Invoice) -> Subscription | None:
    if invoice.subscription_id is None:
        return None
    ref_id = session.scalar(
        select(Subscription.ref_id).where(Subscription.id == invoice.subscription_id)
    )
    if ref_id is None:
        return None
    return get_subscription(
        session, environment_id=invoice.environment_id, ref_id=ref_id, lock=True
    )

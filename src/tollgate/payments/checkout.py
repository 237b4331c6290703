"""The checkout: a customer changes their own subscription and pays for it on the spot
(Stigg's `applySubscription`, which the checkout widget sends from the customer's browser).

A change that costs money now is paid for before it is made. The amount the preview gives is
held on the customer's card (Stripe reserves it; nothing moves), then the change, its invoice
and the payment are written in one transaction, then the payment is captured. So:
- a declined card changes nothing, and its message goes back to the widget; a new card
  the widget just collected becomes the customer's default only with the change it paid
  for, so a declined one leaves the card on file as it was;
- the hold is confirmed with the customer present (they are at the checkout); a card that
  asks them to authenticate is refused, as the checkout cannot ask yet;
- a crash after the hold but before the write leaves only a hold, which Stripe lets lapse
  (after 7 days): no money moves for a change that was not made;
- a crash after the write, or a capture whose answer is lost, leaves a payment the
  collection job captures, or finds captured, once its lease is over (`collect`);
- a write that fails (the price changed meanwhile, say) releases the hold, unless its
  payment turns out written down after all (the commit's answer was lost): the change
  stands then, and the collection job captures it;
- two checkouts of one customer at once (a double click) take turns on the customer's row
  (`subscribing.provision`): the second is billed for what the first left.
A change that costs nothing now (a trial, a scheduled downgrade, a free plan), or an
environment on the manual provider, is made as `POST /api/v1/subscriptions` makes it."""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tollgate.catalog.enums import PricingType
from tollgate.customers.lookup import live_customer
from tollgate.db.engine import unit_of_work
from tollgate.errors import Conflict, InvalidValue, PermissionDenied
from tollgate.invoices import service as invoices
from tollgate.invoices import subscribing
from tollgate.invoices.models import Invoice, InvoiceState, amount_due
from tollgate.payments import methods, providers
from tollgate.payments.collection import LEASE, NO_PAYMENT_METHOD, record
from tollgate.payments.errors import PaymentDeclined, ProviderError
from tollgate.payments.gateway import Card, Gateway, Outcome
from tollgate.payments.models import Payment, PaymentStatus, attempt_under_way
from tollgate.payments.schemas import PaymentMethodAttach
from tollgate.subscriptions import provisioning
from tollgate.subscriptions import service as subscriptions
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.schemas import (
    SubscriptionPreview,
    SubscriptionProvision,
    SubscriptionTerms,
)

log = logging.getLogger(__name__)

_MOVED = (
    "the price of this change moved while it was being paid for; nothing was charged: "
    "preview it again"
)
UNPAID_FROM_BROWSER = (
    "this change costs money now, and this environment takes no payments through a provider: "
    "make it with a server key (POST /api/v1/subscriptions), or connect Stripe"
)


@dataclass(frozen=True, slots=True)
class _Captured:
    id: int
    amount: int


@dataclass(frozen=True, slots=True)
class _Hold:
    """An amount reserved on the customer's card for the change about to be made."""

    payment_id: str
    key: str
    amount: int
    currency: str
    payment_method_id: str


def apply(
    sessions: sessionmaker[Session],
    *,
    environment_id: int,
    data: SubscriptionProvision,
    payment_method_id: str | None,
    now: datetime,
    from_browser: bool = False,
) -> str:
    """Make the change, paid for first when it costs money now; the subscription's id.
    `payment_method_id` (a card the widget just collected) pays for it, and becomes the
    customer's default with the change: a declined new card leaves the card on file as it
    was. `from_browser` (a client key with the customer's token): a change that costs
    money now must be paid through a provider, or anyone could give themselves a plan."""
    with unit_of_work(sessions) as session:
        if from_browser:
            _refuse_new_resource(session, environment_id, data)
        hold_for = _amount_due_now(session, environment_id, data, now=now)
    if hold_for is not None and from_browser and not hold_for.charged:
        raise PermissionDenied(UNPAID_FROM_BROWSER)
    card = None
    if payment_method_id is not None:
        with unit_of_work(sessions) as session:
            card = _add_card(session, environment_id, data.customer_id, payment_method_id, now=now)
    if hold_for is None or not hold_for.charged:
        with unit_of_work(sessions) as session:
            subscription, _ = subscribing.provision(
                session, environment_id=environment_id, data=data, now=now
            )
            if from_browser:
                _nothing_unpaid(session, subscription)  # else rolled back
            _make_default(session, environment_id, data.customer_id, card, now=now)
            return subscription.ref_id
    gateway, hold = _hold(sessions, environment_id, data.customer_id, hold_for, card=card, now=now)
    try:
        with unit_of_work(sessions) as session:
            _make_default(session, environment_id, data.customer_id, card, now=now)
            ref_id, payment = _make_change(session, environment_id, data, hold, now=now)
    except BaseException:
        if _hold_in_use(sessions, hold) is False:
            _release(gateway, hold)  # nothing was changed
        # else the commit went through though its answer was lost (or it cannot be told):
        # the payment is written down, and the collection job captures it.
        raise
    if payment is None:  # the customer's credit covered it all
        _release(gateway, hold)
        return ref_id
    try:
        outcome = gateway.capture_payment(hold.payment_id, key=hold.key, amount=payment.amount)
    except ProviderError:
        # The change is made and its payment written down: the collection job captures it
        # (or finds it captured) once the lease is over. Meanwhile it reads PROCESSING.
        log.warning("a checkout's capture is left to the collection job", exc_info=True)
        return ref_id
    with unit_of_work(sessions) as session:
        record(session, session.get_one(Payment, payment.id), outcome, now=now)
    return ref_id


def _refuse_new_resource(
    session: Session, environment_id: int, data: SubscriptionProvision
) -> None:
    """A page changes the plan of a resource its customer has; a new resource (a site, a
    workspace) is the product's to create, from its server, with whatever limits it keeps."""
    if data.resource_id is None:
        return
    customer = live_customer(session, environment_id=environment_id, ref_id=data.customer_id)
    if provisioning.existing_resource(session, customer, data.resource_id) is None:
        raise PermissionDenied(
            f"customer '{data.customer_id}' has no resource '{data.resource_id}': "
            "a new resource is subscribed from your server (a server key)",
            field="resourceId",
        )


def _hold_in_use(sessions: sessionmaker[Session], hold: _Hold) -> bool | None:
    """Whether a payment was written down for the hold (then the change stands); None
    when the database cannot say."""
    try:
        with unit_of_work(sessions) as session:
            found = session.scalar(select(Payment.id).where(Payment.idempotency_key == hold.key))
    except Exception:
        log.warning("could not tell whether a checkout's change was made", exc_info=True)
        return None
    return found is not None


def _nothing_unpaid(session: Session, subscription: Subscription) -> None:
    """What a browser made without paying must owe nothing: the preview can differ from
    the write (a custom plan has no price to preview; a due transition the write catches
    up on), so the write itself is checked before it commits."""
    if subscription.pricing_type is PricingType.CUSTOM:
        raise PermissionDenied(
            "a custom plan is arranged with your team: subscribe to it with a server key"
        )
    owed = session.scalars(
        select(Invoice).where(
            Invoice.subscription_id == subscription.id, Invoice.state == InvoiceState.OPEN
        )
    ).all()
    if any(amount_due(invoice) > 0 for invoice in owed):
        raise PermissionDenied(UNPAID_FROM_BROWSER)


def _release(gateway: Gateway, hold: _Hold) -> None:
    try:
        gateway.cancel_payment(hold.payment_id)
    except ProviderError:  # the hold lapses by itself: nothing is lost but tidiness
        log.warning("could not release a checkout's hold", extra={"payment": hold.payment_id})


def _add_card(
    session: Session,
    environment_id: int,
    customer_ref: str,
    payment_method_id: str,
    *,
    now: datetime,
) -> Card:
    provider = providers.required(session, environment_id)
    _, card = methods.add_card(
        session,
        environment_id=environment_id,
        customer_ref=customer_ref,
        data=PaymentMethodAttach(
            integration_id=provider.ref_id,
            payment_method_id=payment_method_id,
            vendor_identifier=provider.vendor.value,
        ),
        now=now,
    )
    return card


def _make_default(
    session: Session, environment_id: int, customer_ref: str, card: Card | None, *, now: datetime
) -> None:
    if card is not None:
        customer = live_customer(session, environment_id=environment_id, ref_id=customer_ref)
        methods.make_default(session, customer, card, now=now)


@dataclass(frozen=True, slots=True)
class _Due:
    amount: int  # minor units
    currency: str
    charged: bool  # through the environment's provider (else settled by hand)


def _amount_due_now(
    session: Session, environment_id: int, data: SubscriptionProvision, *, now: datetime
) -> _Due | None:
    """What the change would invoice at once; None when nothing."""
    terms = data.model_dump(include=set(SubscriptionTerms.model_fields))
    preview = subscriptions.preview_subscription(
        session,
        environment_id=environment_id,
        data=SubscriptionPreview.model_validate(terms),
        now=now,
    )
    immediate, _ = invoices.preview(session, preview, now=now)
    if immediate.total <= 0:
        return None
    charged = providers.of_environment(session, environment_id) is not None
    return _Due(immediate.total, immediate.currency, charged)


def _hold(
    sessions: sessionmaker[Session],
    environment_id: int,
    customer_ref: str,
    due: _Due,
    *,
    card: Card | None,
    now: datetime,
) -> tuple[Gateway, _Hold]:
    """Reserve the amount on the new card, else on the customer's default one;
    `PaymentDeclined` with the provider's words if it is refused."""
    with unit_of_work(sessions) as session:
        provider = providers.required(session, environment_id)
        customer = live_customer(session, environment_id=environment_id, ref_id=customer_ref)
        on_file = (customer.default_payment_method or {}).get("billingId")
        method = card.payment_method_id if card is not None else on_file
        if not customer.billing_id or not method:
            raise InvalidValue(NO_PAYMENT_METHOD, field="paymentMethodId")
        gateway, billing_id = providers.gateway(provider), customer.billing_id
    key = f"tg_checkout_{secrets.token_hex(12)}"
    payment_id = gateway.create_payment(
        key=key,
        amount=due.amount,
        currency=due.currency,
        billing_id=billing_id,
        payment_method_id=method,
        metadata={"tollgate_checkout": key, "tollgate_customer": customer_ref},
        hold=True,
    )
    outcome = gateway.confirm_payment(payment_id, key=key, customer_present=True)
    if not outcome.awaiting_capture:
        # A refused new card stays attached at Stripe, unused: detaching it could take away
        # the card another checkout of the customer (a double click) is making the default.
        gateway.cancel_payment(payment_id)
        raise PaymentDeclined(_refusal(outcome))
    return gateway, _Hold(payment_id, key, due.amount, due.currency, method)


def _refusal(outcome: Outcome) -> str:
    if outcome.status is PaymentStatus.REQUIRES_ACTION:
        return (
            "the card asks the customer to authenticate, which the checkout cannot do yet: "
            "use another card"
        )
    if outcome.failure_message:
        return outcome.failure_message
    return f"Stripe did not hold the amount ({outcome.failure_code or outcome.status.value})"


def _make_change(
    session: Session,
    environment_id: int,
    data: SubscriptionProvision,
    hold: _Hold,
    *,
    now: datetime,
) -> tuple[str, _Captured | None]:
    """The change and its invoice, with the held payment as the invoice's first attempt
    for what is due (the hold, less any credit the customer has): the subscription's id
    and the payment to capture, if any."""
    subscription, scheduled = subscribing.provision(
        session, environment_id=environment_id, data=data, now=now
    )
    if scheduled:  # priced as a change now, made as one for later: something moved meanwhile
        raise Conflict(_MOVED)
    # The subscription is new, so its one open invoice is the one just issued for it.
    invoice = session.scalars(
        select(Invoice)
        .where(
            Invoice.subscription_id == subscription.id,
            Invoice.state == InvoiceState.OPEN,
            ~attempt_under_way(Invoice.id),
        )
        .order_by(Invoice.id.desc())
        .with_for_update()
    ).first()
    due = amount_due(invoice) if invoice is not None else 0
    if invoice is None or due <= 0:
        return subscription.ref_id, None
    if due > hold.amount or invoice.currency != hold.currency:
        raise Conflict(_MOVED)
    invoice.payment_attempts += 1
    invoice.next_payment_at = now + LEASE  # the capture below, or the collection job after it
    payment = Payment(
        environment_id=environment_id,
        invoice_id=invoice.id,
        attempt=invoice.payment_attempts,
        idempotency_key=hold.key,
        status=PaymentStatus.PENDING,
        amount=due,
        currency=hold.currency,
        payment_method_id=hold.payment_method_id,
        provider_payment_id=hold.payment_id,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    log.info(
        "checkout paid by a hold",
        extra={"subscription": subscription.ref_id, "invoice": invoice.ref_id},
    )
    return subscription.ref_id, _Captured(payment.id, due)

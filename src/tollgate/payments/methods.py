"""A customer's payment method, kept at the environment's provider: attaching one (the
customer is created there first, and linked), removing it, collecting one in the browser
with a setup intent."""

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tollgate.customers.announcements import announce_customers
from tollgate.customers.lookup import get_customer, live_customer
from tollgate.customers.models import Customer
from tollgate.errors import Conflict, InvalidValue
from tollgate.invoices.models import Invoice, InvoiceState
from tollgate.payments import providers
from tollgate.payments.errors import ProviderError
from tollgate.payments.gateway import Card, Gateway, SetupIntent
from tollgate.payments.models import PaymentProvider, attempt_under_way
from tollgate.payments.schemas import PaymentMethodAttach
from tollgate.webhooks.event_types import EventType


def attach(
    session: Session,
    *,
    environment_id: int,
    customer_ref: str,
    data: PaymentMethodAttach,
    now: datetime,
) -> Customer:
    """Make the payment method the customer's default for every later charge. Invoices
    whose payment failed are tried again with it at once."""
    customer, card = _attach_at_provider(session, environment_id, customer_ref, data)
    make_default(session, customer, card, billing_currency=data.billing_currency, now=now)
    return customer


def add_card(
    session: Session,
    *,
    environment_id: int,
    customer_ref: str,
    data: PaymentMethodAttach,
    now: datetime,
) -> tuple[Customer, Card]:
    """Attach the payment method to the customer at the provider, without making it the
    default yet (the checkout first holds a payment on it); `PaymentDeclined` when the
    provider refuses the card."""
    customer, card = _attach_at_provider(session, environment_id, customer_ref, data)
    _announce_if_changed(session, customer, now=now)  # linked to the provider just now
    return customer, card


def _attach_at_provider(
    session: Session, environment_id: int, customer_ref: str, data: PaymentMethodAttach
) -> tuple[Customer, Card]:
    provider = providers.required(session, environment_id)
    if data.vendor_identifier != provider.vendor.value:
        raise InvalidValue(
            f"this environment takes payments through {provider.vendor.value}, "
            f"not {data.vendor_identifier}",
            field="vendorIdentifier",
        )
    if data.integration_id != provider.ref_id:
        raise InvalidValue(
            f"integration '{data.integration_id}' is not this environment's: "
            f"its {provider.vendor.value} integration is '{provider.ref_id}'",
            field="integrationId",
        )
    customer = live_customer(session, environment_id=environment_id, ref_id=customer_ref)
    gateway = providers.gateway(provider)
    billing_id = _billing_id(customer, provider, gateway)
    card = gateway.attach_payment_method(
        billing_id=billing_id, payment_method_id=data.payment_method_id
    )
    return customer, card


def make_default(
    session: Session,
    customer: Customer,
    card: Card,
    *,
    billing_currency: str | None = None,
    now: datetime,
) -> None:
    """The card (attached by `add_card`) pays every later charge; invoices whose payment
    failed are tried again with it at once."""
    customer.default_payment_method = card.wire()
    if billing_currency is not None:
        customer.billing_currency = billing_currency
    session.execute(
        update(Invoice)
        .where(
            Invoice.customer_id == customer.id,
            Invoice.state == InvoiceState.OPEN,
            Invoice.payment_attempts > 0,
            Invoice.next_payment_at > now,
            ~attempt_under_way(Invoice.id),  # it keeps its lease
        )
        .values(next_payment_at=now)
        .execution_options(synchronize_session=False)
    )
    customer.updated_at = now
    announce_customers(session, [(EventType.CUSTOMER_UPDATED, customer)], now=now)


def _announce_if_changed(session: Session, customer: Customer, *, now: datetime) -> None:
    if session.is_modified(customer):
        customer.updated_at = now
        announce_customers(session, [(EventType.CUSTOMER_UPDATED, customer)], now=now)


def detach(session: Session, *, environment_id: int, customer_ref: str, now: datetime) -> Customer:
    """Remove the default payment method, at the provider too. Later charges fail until
    another is attached."""
    provider = providers.required(session, environment_id)
    customer = get_customer(session, environment_id=environment_id, ref_id=customer_ref, lock=True)
    method = (customer.default_payment_method or {}).get("billingId")
    if not method:
        raise Conflict(f"customer '{customer_ref}' has no payment method to remove")
    try:
        providers.gateway(provider).detach_payment_method(method)
    except ProviderError as error:
        if not error.refused:
            raise
        # Stripe has it attached no more (or never had it): nothing to undo there.
    customer.default_payment_method = None
    customer.updated_at = now
    announce_customers(session, [(EventType.CUSTOMER_UPDATED, customer)], now=now)
    return customer


def setup_intent(
    session: Session, *, environment_id: int, customer_ref: str, now: datetime
) -> tuple[SetupIntent, PaymentProvider, str]:
    """A setup intent for the customer (created at the provider first if need be): the
    page confirms it with the card, then attaches the payment method it gives."""
    provider = providers.required(session, environment_id)
    customer = live_customer(session, environment_id=environment_id, ref_id=customer_ref)
    gateway = providers.gateway(provider)
    billing_id = _billing_id(customer, provider, gateway)
    _announce_if_changed(session, customer, now=now)
    return gateway.create_setup_intent(billing_id=billing_id), provider, billing_id


def _billing_id(customer: Customer, provider: PaymentProvider, gateway: Gateway) -> str:
    """The customer's id at the provider: the one it has (a `billingId` given when it was
    provisioned names an existing provider customer), else a new one; linked either way."""
    billing_id = customer.billing_id or gateway.create_customer(
        customer_id=customer.ref_id, email=customer.email, name=customer.name
    )
    customer.billing_id = billing_id
    link = {
        "id": provider.ref_id,
        "syncedEntityId": billing_id,
        "vendorIdentifier": provider.vendor.value,
    }
    others = [
        i
        for i in customer.integrations or []
        if i.get("vendorIdentifier") != link["vendorIdentifier"]
    ]
    if link not in (customer.integrations or []):
        customer.integrations = [*others, link]
    return billing_id

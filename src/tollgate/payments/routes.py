"""The payments API: a customer's payment method (Stigg's paths), a setup intent to
collect one (Tollgate addition), and the endpoint Stripe posts its webhooks to."""

from fastapi import Depends, Header, Request, status
from sqlalchemy import select

from tollgate.customers.schemas import CustomerRead
from tollgate.customers.service import to_read
from tollgate.http.deps import DbSession, Now, WritePrincipal
from tollgate.http.routing import api_router
from tollgate.http.schemas import Envelope
from tollgate.payments import methods, providers
from tollgate.payments.collection import record
from tollgate.payments.models import Payment
from tollgate.payments.schemas import PaymentMethodAttach, SetupIntentRead

router = api_router(prefix="/api/v1/customers", tags=["payments"])
# Outside /api/: Stripe signs its webhooks rather than sending an API key.
provider_webhooks = api_router(prefix="/webhooks", tags=["payments"])


@router.post("/{customer_id}/payment-method")
def attach_payment_method(
    customer_id: str,
    body: PaymentMethodAttach,
    session: DbSession,
    principal: WritePrincipal,
    now: Now,
) -> Envelope[CustomerRead]:
    """Attach a payment method (a Stripe `pm_...`) to the customer at the environment's
    provider, creating and linking the customer there first if need be; it becomes the
    default for every later charge. A card the provider declines is a 402; an environment
    on the manual provider, or another integration's id, a 422."""
    customer = methods.attach(
        session,
        environment_id=principal.environment_id,
        customer_ref=customer_id,
        data=body,
        now=now,
    )
    return Envelope(data=to_read(customer))


@router.delete("/{customer_id}/payment-method")
def detach_payment_method(
    customer_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[CustomerRead]:
    """Remove the customer's payment method (detached at the provider too)."""
    customer = methods.detach(
        session, environment_id=principal.environment_id, customer_ref=customer_id, now=now
    )
    return Envelope(data=to_read(customer))


@router.post("/{customer_id}/payment-method/setup-intent", status_code=status.HTTP_201_CREATED)
def create_setup_intent(
    customer_id: str, session: DbSession, principal: WritePrincipal, now: Now
) -> Envelope[SetupIntentRead]:
    """A Stripe setup intent for the customer (Tollgate addition): confirm its
    `clientSecret` with Stripe.js in the browser, then attach the payment method it gives."""
    intent, provider, billing_id = methods.setup_intent(
        session, environment_id=principal.environment_id, customer_ref=customer_id, now=now
    )
    return Envelope(
        data=SetupIntentRead(
            id=intent.id,
            client_secret=intent.client_secret,
            integration_id=provider.ref_id,
            billing_id=billing_id,
        )
    )


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@provider_webhooks.post("/stripe/{integration_id}")
def receive_stripe_webhook(
    integration_id: str,
    session: DbSession,
    now: Now,
    payload: bytes = Depends(_raw_body),
    signature: str | None = Header(None, alias="Stripe-Signature"),
) -> dict[str, bool]:
    """Stripe's webhooks: set this URL on the Stripe dashboard, and its signing secret on
    the integration. A payment's event, once its signature verifies, makes Tollgate read
    that payment's outcome from Stripe and apply it (once, however often it is sent)."""
    provider = providers.by_ref(session, integration_id)
    gateway = providers.gateway(provider)
    event = gateway.parse_event(payload, signature)
    if event.payment_id is not None:
        payment = session.scalar(
            select(Payment).where(
                Payment.environment_id == provider.environment_id,
                Payment.provider_payment_id == event.payment_id,
            )
        )
        if payment is not None:  # else not a payment of Tollgate's
            record(session, payment, gateway.payment_outcome(event.payment_id), now=now)
    return {"received": True}

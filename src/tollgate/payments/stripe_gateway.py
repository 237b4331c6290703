"""The Stripe provider, through Stripe's own Python library.

Payments are PaymentIntents on the customer's card, created unconfirmed and then
confirmed `off_session` (the customer is not there when a renewal is charged), or on
session at the checkout, where the customer is. Both
requests carry an idempotency key of Tollgate's, which Stripe dedupes on; Tollgate does
not rely on it (see gateway.py). The library's own retries are off: a failed request is
retried by the next run of the collection job, from what Tollgate wrote down."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import stripe

from tollgate.payments.errors import InvalidSignature, PaymentDeclined, ProviderError
from tollgate.payments.gateway import Card, Outcome, ProviderEvent, SetupIntent
from tollgate.payments.models import PaymentStatus

_STATUS = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "processing": PaymentStatus.PENDING,
    "requires_capture": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "requires_payment_method": PaymentStatus.FAILED,  # the last attempt was declined
    "canceled": PaymentStatus.FAILED,
}
TIMEOUT_SECONDS = 20


class StripeGateway:
    def __init__(self, *, secret_key: str, webhook_secret: str | None, api_base: str | None):
        self._webhook_secret = webhook_secret
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
        )

    # -- customers and their cards ------------------------------------------------------

    def create_customer(self, *, customer_id: str, email: str | None, name: str | None) -> str:
        params: dict[str, Any] = {"metadata": {"tollgate_customer_id": customer_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        with _answers("creating the customer"):
            return self._client.v1.customers.create(params).id  # type: ignore[arg-type]

    def attach_payment_method(self, *, billing_id: str, payment_method_id: str) -> Card:
        with _answers(f"attaching payment method '{payment_method_id}'"):
            method = self._client.v1.payment_methods.attach(
                payment_method_id, {"customer": billing_id}
            )
        card = method.card
        return Card(
            payment_method_id=method.id,
            brand=card.brand if card else None,
            last4=card.last4 if card else None,
            exp_month=card.exp_month if card else None,
            exp_year=card.exp_year if card else None,
        )

    def detach_payment_method(self, payment_method_id: str) -> None:
        with _answers(f"detaching payment method '{payment_method_id}'"):
            self._client.v1.payment_methods.detach(payment_method_id)

    def create_setup_intent(self, *, billing_id: str) -> SetupIntent:
        with _answers("creating a setup intent"):
            intent = self._client.v1.setup_intents.create(
                {
                    "customer": billing_id,
                    "usage": "off_session",
                    "allowed_payment_method_types": ["card"],
                }
            )
        return SetupIntent(id=intent.id, client_secret=intent.client_secret or "")

    # -- payments -----------------------------------------------------------------------

    def create_payment(
        self,
        *,
        key: str,
        amount: int,
        currency: str,
        billing_id: str,
        payment_method_id: str,
        metadata: dict[str, str],
        hold: bool = False,
    ) -> str:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": billing_id,
            "payment_method": payment_method_id,
            "allowed_payment_method_types": ["card"],
            "metadata": metadata,
        }
        if hold:
            params["capture_method"] = "manual"
        with _answers("creating a payment"):
            intent = self._client.v1.payment_intents.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"{key}-create"},
            )
        return intent.id

    def confirm_payment(
        self, payment_id: str, *, key: str, customer_present: bool = False
    ) -> Outcome:
        try:
            intent = self._client.v1.payment_intents.confirm(
                payment_id,
                {"off_session": not customer_present},
                {"idempotency_key": f"{key}-confirm"},
            )
        except stripe.CardError as error:
            return _declined(payment_id, error)
        except stripe.InvalidRequestError as error:
            # Confirmed already (by a run that lost the answer): what did it come to? If it
            # was not, Stripe refused the confirmation itself, and will again.
            known = self.payment_outcome(payment_id)
            if known.confirmed:
                return known
            return Outcome(
                payment_id,
                PaymentStatus.FAILED,
                failure_code="provider_refused",
                failure_message=f"Stripe refused confirming the payment: {_message(error)}",
            )
        except stripe.StripeError as error:
            raise _provider_error("confirming a payment", error) from error
        return _outcome(intent)

    def capture_payment(self, payment_id: str, *, key: str, amount: int | None = None) -> Outcome:
        params = {"amount_to_capture": amount} if amount is not None else {}
        try:
            intent = self._client.v1.payment_intents.capture(
                payment_id,
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"{key}-capture"},
            )
        except stripe.InvalidRequestError:
            return self.payment_outcome(payment_id)  # captured already, or the hold lapsed
        except stripe.StripeError as error:
            raise _provider_error("capturing a payment", error) from error
        return _outcome(intent)

    def payment_outcome(self, payment_id: str) -> Outcome:
        with _answers(f"reading payment '{payment_id}'"):
            return _outcome(self._client.v1.payment_intents.retrieve(payment_id))

    def cancel_payment(self, payment_id: str) -> Outcome:
        try:
            intent = self._client.v1.payment_intents.cancel(payment_id)
        except stripe.InvalidRequestError:
            return self.payment_outcome(payment_id)  # it can no longer be canceled
        except stripe.StripeError as error:
            raise _provider_error("canceling a payment", error) from error
        return _outcome(intent)

    # -- webhooks -----------------------------------------------------------------------

    def parse_event(self, payload: bytes, signature: str | None) -> ProviderEvent:
        if not self._webhook_secret:
            raise InvalidSignature("this Stripe integration has no webhook secret to verify with")
        try:
            event = stripe.Webhook.construct_event(payload, signature or "", self._webhook_secret)
        except (ValueError, stripe.SignatureVerificationError) as error:
            raise InvalidSignature(f"the Stripe-Signature does not verify: {error}") from error
        subject = event.data.object.to_dict()
        is_payment = subject.get("object") == "payment_intent"
        return ProviderEvent(
            id=event.id, type=event.type, payment_id=subject.get("id") if is_payment else None
        )


def _outcome(intent: stripe.PaymentIntent) -> Outcome:
    if intent.status == "requires_confirmation":
        return Outcome(intent.id, PaymentStatus.PENDING, confirmed=False)
    status = _STATUS.get(intent.status, PaymentStatus.PENDING)
    error = intent.last_payment_error
    if status is PaymentStatus.FAILED and error is not None:
        return Outcome(intent.id, status, failure_code=error.code, failure_message=error.message)
    if status is PaymentStatus.FAILED:
        return Outcome(intent.id, status, failure_code=intent.status)
    if status is PaymentStatus.REQUIRES_ACTION:
        return Outcome(intent.id, status, client_secret=intent.client_secret)
    return Outcome(intent.id, status, awaiting_capture=intent.status == "requires_capture")


def _declined(payment_id: str, error: stripe.CardError) -> Outcome:
    return Outcome(
        payment_id,
        PaymentStatus.FAILED,
        failure_code=error.code or "card_declined",
        failure_message=error.user_message or str(error),
    )


@contextmanager
def _answers(doing: str) -> Iterator[None]:
    """Stripe's errors as Tollgate's: a refused card is a 402, anything else a 502 that
    says what Stripe said."""
    try:
        yield
    except stripe.CardError as error:
        raise PaymentDeclined(f"Stripe declined the card {doing}: {_message(error)}") from error
    except stripe.StripeError as error:
        raise _provider_error(doing, error) from error


def _provider_error(doing: str, error: stripe.StripeError) -> ProviderError:
    return ProviderError(
        f"Stripe refused {doing}: {_message(error)}",
        refused=isinstance(error, stripe.InvalidRequestError),
    )


def _message(error: stripe.StripeError) -> str:
    return error.user_message or str(error) or type(error).__name__

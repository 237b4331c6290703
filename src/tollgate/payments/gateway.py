"""What Tollgate asks of a payment provider, whichever it is.

A payment is taken in two steps: `create_payment` only records the intent to charge (no
money moves), `confirm_payment` charges. Tollgate writes down the provider's id of the
payment between the two, so a charge only ever happens for a payment it knows the id of:
after a crash it asks for that payment's outcome, or confirms it, and never charges twice.
A payment created but whose id was lost with a crash is never confirmed, so never
charges."""

from dataclasses import dataclass
from typing import Protocol

from tollgate.payments.models import PaymentStatus


@dataclass(frozen=True, slots=True)
class Card:
    """A payment method as the customer's read shows it (`defaultPaymentMethod`)."""

    payment_method_id: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None

    def wire(self) -> dict[str, object]:
        return {
            "billingId": self.payment_method_id,
            "type": "CARD",
            "cardBrand": self.brand,
            "cardLast4Digits": self.last4,
            "cardExpiryMonth": self.exp_month,
            "cardExpiryYear": self.exp_year,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where a payment stands at the provider. `confirmed` is False for one created but
    not yet confirmed (no money moved)."""

    payment_id: str
    status: PaymentStatus
    confirmed: bool = True
    failure_code: str | None = None
    failure_message: str | None = None
    # What the customer's browser confirms the payment with (Stripe.js's
    # `confirmCardPayment`), while it waits for them to authenticate.
    client_secret: str | None = None
    # A held payment (created with `hold`) the card has authorized: the money is reserved,
    # and moves when `capture_payment` is called.
    awaiting_capture: bool = False


@dataclass(frozen=True, slots=True)
class SetupIntent:
    """A card to collect in the browser (Stripe.js's `confirmCardSetup`)."""

    id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A webhook the provider sent, verified: its type, and the payment it is about."""

    id: str
    type: str
    payment_id: str | None


class Gateway(Protocol):
    def create_customer(self, *, customer_id: str, email: str | None, name: str | None) -> str:
        """The provider's id of a new customer record."""
        ...

    def attach_payment_method(self, *, billing_id: str, payment_method_id: str) -> Card:
        """Attach to the customer; raises `PaymentDeclined` when the card is refused."""
        ...

    def detach_payment_method(self, payment_method_id: str) -> None: ...

    def create_setup_intent(self, *, billing_id: str) -> SetupIntent: ...

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
        """The provider's id of a new payment, not confirmed: nothing is charged yet. With
        `hold`, confirming only reserves the amount on the card (`awaiting_capture`)."""
        ...

    def confirm_payment(
        self, payment_id: str, *, key: str, customer_present: bool = False
    ) -> Outcome:
        """Charge (or, for a held payment, reserve); a declined card is an outcome (FAILED),
        not an error. `customer_present`: the customer is at the checkout, rather than
        being charged while away (a renewal), which the card's bank may weigh."""
        ...

    def capture_payment(self, payment_id: str, *, key: str, amount: int | None = None) -> Outcome:
        """Take the money a held payment reserved (`amount` of it, else all)."""
        ...

    def payment_outcome(self, payment_id: str) -> Outcome: ...

    def cancel_payment(self, payment_id: str) -> Outcome:
        """Cancel a payment that has not succeeded; its outcome if it did meanwhile."""
        ...

    def parse_event(self, payload: bytes, signature: str | None) -> ProviderEvent:
        """A webhook's event, once its signature verifies; `InvalidSignature` if not."""
        ...

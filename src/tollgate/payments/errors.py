"""What can go wrong with a payment provider, as the API answers it."""

from tollgate.errors import BadRequest, TollgateError


class PaymentDeclined(TollgateError):
    """The provider refused the card (attaching it, or charging it)."""

    status_code = 402
    code = "payment_declined"


class ProviderError(TollgateError):
    """The provider refused the request or could not be reached: the message says which.
    `refused`: it understood the request and said no, so sending it again would fail
    again (unlike a timeout, an outage, or a key it does not take)."""

    status_code = 502
    code = "payment_provider_error"

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class InvalidSignature(BadRequest):
    """A webhook whose signature does not verify with the integration's secret."""

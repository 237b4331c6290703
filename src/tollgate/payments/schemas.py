"""The payments API's bodies: attaching a payment method (the Stigg client's shape), and
a setup intent to collect one."""

from tollgate.customers.schemas import Currency, VendorIdentifier
from tollgate.http.schemas import RequestModel, WireModel
from tollgate.http.types import ShortText


class PaymentMethodAttach(RequestModel):
    integration_id: ShortText
    payment_method_id: ShortText
    vendor_identifier: VendorIdentifier
    billing_currency: Currency | None = None


class SetupIntentRead(WireModel):
    id: str
    client_secret: str
    integration_id: str
    billing_id: str

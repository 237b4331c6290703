"""Customer tokens: a client key plus a token shows one customer's data only.

The token is the scheme Stigg's front-end components send: `HMAC-SHA256 <customerId>:<hex>`,
the hex being HMAC-SHA256 of the customer id under the environment's signing secret. A
SaaS backend signs it for the customer it has logged in; the browser cannot forge one."""

import hashlib
import hmac

from tollgate.errors import AuthenticationFailed

SCHEME = "HMAC-SHA256 "
HEADER = "X-CUSTOMER-TOKEN"
# The header Stigg's JavaScript SDKs send the same token in; accepted wherever HEADER is.
SDK_HEADER = "X-CUSTOMER-KEY"


def sent_token(token: str | None, sdk_token: str | None) -> str | None:
    """The customer token a request sent, in either header; two different ones are refused."""
    if token is not None and sdk_token is not None and token != sdk_token:
        raise AuthenticationFailed(
            f"{HEADER} and {SDK_HEADER} carry different customer tokens: send one", field=HEADER
        )
    return token if token is not None else sdk_token


def customer_token(customer_id: str, signing_secret: str) -> str:
    digest = hmac.new(signing_secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()
    return f"{SCHEME}{customer_id}:{digest}"


def verified_customer(token: str, signing_secret: str) -> str:
    """The customer a token was signed for, or AuthenticationFailed saying what is wrong."""
    customer_id, separator, _digest = token.removeprefix(SCHEME).rpartition(":")
    if not token.startswith(SCHEME) or not separator or not customer_id:
        raise AuthenticationFailed(
            f"{HEADER} must look like 'HMAC-SHA256 <customerId>:<hex>'", field=HEADER
        )
    if not hmac.compare_digest(customer_token(customer_id, signing_secret), token):
        raise AuthenticationFailed(
            f"{HEADER} is not signed with this environment's signing secret (rotated?)",
            field=HEADER,
        )
    return customer_id

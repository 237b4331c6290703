"""Customer tokens: what a browser sends beside a client key to read one customer's data."""

import hashlib
import hmac


def customer_token(customer_id: str, signing_secret: str) -> str:
    """The token for `customer_id`, signed with the environment's signing secret (shown by
    `tollgate keys signing-secret`): ``HMAC-SHA256 <customerId>:<hex>``.

    Make it on your server and hand it to the browser of that customer only:
    ``headers = {"X-API-KEY": client_key, "X-CUSTOMER-TOKEN": customer_token(id, secret)}``"""
    digest = hmac.new(signing_secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()
    return f"HMAC-SHA256 {customer_id}:{digest}"

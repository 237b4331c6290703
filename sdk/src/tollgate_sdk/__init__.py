"""tollgate-sdk: Tollgate's Python SDK.

    from tollgate_sdk import Tollgate

    tollgate = Tollgate(api_key="tg_server_...", base_url="http://127.0.0.1:8000")
    if tollgate.get_boolean_entitlement("org-1", "feature-sso").has_access:
        ...
    tollgate.report_usage("org-1", "feature-active-users", 1)

Checks answer from a local cache kept live by the server's stream, count the usage this
process reported before the server acknowledged it, and answer configured fallbacks when
the server cannot be reached. `WebhookReceiver` verifies Tollgate's webhooks in your app.
See README.md for the whole tour."""

from tollgate_sdk._client import AsyncTollgate, Tollgate
from tollgate_sdk._errors import (
    APIError,
    AuthenticationError,
    BadRequest,
    Conflict,
    NotFound,
    PermissionDenied,
    ServerError,
    ServerUnreachable,
    TollgateError,
)
from tollgate_sdk._tokens import customer_token
from tollgate_sdk._types import (
    AccessDeniedReason,
    BooleanEntitlement,
    Entitlement,
    EnumEntitlement,
    Fallback,
    MeteredEntitlement,
    NumericEntitlement,
    Source,
)
from tollgate_sdk.webhooks import WebhookReceiver, WebhookRejected, WebhookReplayed

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AccessDeniedReason",
    "AsyncTollgate",
    "AuthenticationError",
    "BadRequest",
    "BooleanEntitlement",
    "Conflict",
    "Entitlement",
    "EnumEntitlement",
    "Fallback",
    "MeteredEntitlement",
    "NotFound",
    "NumericEntitlement",
    "PermissionDenied",
    "ServerError",
    "ServerUnreachable",
    "Source",
    "Tollgate",
    "TollgateError",
    "WebhookReceiver",
    "WebhookRejected",
    "WebhookReplayed",
    "__version__",
    "customer_token",
]

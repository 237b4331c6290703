"""Who calls the SDK-facing API: the same keys and customer-token rules as the REST API,
read from a request's headers or from a socket's `connection_init` payload."""

from collections.abc import Mapping

from tollgate.environments.service import Principal
from tollgate.environments.tokens import HEADER as TOKEN_HEADER
from tollgate.environments.tokens import SDK_HEADER, sent_token
from tollgate.http.components import Components
from tollgate.http.gate import cached_principal


async def sdk_principal(parts: Components, headers: Mapping[str, str]) -> Principal:
    """`headers` with lower-case names. A browser's origin must be one the key's environment
    allows; a customer token (in either header) limits the key to its customer."""
    principal = await cached_principal(parts, headers.get("x-api-key"))
    principal.require_origin(headers.get("origin"))
    token = sent_token(headers.get(TOKEN_HEADER.lower()), headers.get(SDK_HEADER.lower()))
    return principal.with_customer_token(token)


def lower_case(headers: Mapping[str, object]) -> dict[str, str]:
    """Header names as sent inside a JSON payload (any case), lower-cased; non-strings out."""
    return {name.lower(): value for name, value in headers.items() if isinstance(value, str)}

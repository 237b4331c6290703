"""Browser origins an environment's keys may be used from.

Browsers send the page's origin with every cross-origin request; the SDK paths (`/graphql`
and the edge JSON) answer any origin's CORS preflight, because a preflight carries no key,
and then refuse a request whose origin the key's environment does not list. A request
without an `Origin` header (a backend, the Node SDK, curl) is not a browser's and passes."""

from urllib.parse import urlsplit

from tollgate.errors import InvalidValue

ANY_PORT = ":*"


def normalized_origin(text: str) -> str:
    """`scheme://host[:port]` in lower case, or `scheme://host:*` for every port of a host
    (handy for development servers); InvalidValue saying what is wrong otherwise."""
    candidate = text.strip().lower().rstrip("/")
    any_port = candidate.endswith(ANY_PORT)
    parts = urlsplit(candidate.removesuffix(ANY_PORT) if any_port else candidate)
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        parts = parts._replace(scheme="")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
        or (any_port and parts.port is not None)
    ):
        raise InvalidValue(
            f"'{text}' is not an origin: give scheme and host, and a port or ':*' for any "
            f"port, with nothing after them (https://app.example.com, http://localhost:*)",
            field="origin",
        )
    return candidate


def is_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    origin = origin.lower()
    if origin in allowed:
        return True
    host, _, port = origin.rpartition(":")
    return port.isdigit() and f"{host}{ANY_PORT}" in allowed

"""Errors the SDK raises. Checks never raise; provisioning and `flush` may.

TollgateError
├── ServerUnreachable        the server could not be reached (connect, timeout)
└── APIError                 the server answered with an error; `.status`, `.body`
    ├── BadRequest           400, 422: the request said something invalid
    ├── AuthenticationError  401: no key, or a wrong one
    ├── PermissionDenied     403: the key may not do this
    ├── NotFound             404
    ├── Conflict             409
    └── ServerError          5xx
"""

from typing import Any


class TollgateError(Exception):
    """Base of every error this SDK raises."""


class ServerUnreachable(TollgateError):
    """The server could not be reached, or did not answer in time."""


class APIError(TollgateError):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.body = body


class BadRequest(APIError):
    """400 or 422: the request said something invalid; `.message` says what."""


class AuthenticationError(APIError):
    """401: no API key, or one the server does not know (revoked?)."""


class PermissionDenied(APIError):
    """403: the key may not do this (a client key writing, or another customer's data)."""


class NotFound(APIError):
    """404: no such customer, plan or other object."""


class Conflict(APIError):
    """409: it exists already, or clashes with the object's state."""


class ServerError(APIError):
    """5xx: the server failed; a Tollgate bug worth reporting."""


def error_for(status: int, body: Any) -> APIError:
    message = _message(body) or f"HTTP {status}"
    kind = {
        400: BadRequest,
        401: AuthenticationError,
        403: PermissionDenied,
        404: NotFound,
        409: Conflict,
        422: BadRequest,
    }.get(status, ServerError if status >= 500 else APIError)
    return kind(status, message, body)


def _message(body: Any) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        for key in ("message", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return None

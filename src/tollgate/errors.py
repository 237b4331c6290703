"""The error tree of Tollgate's services.

Services raise these; the HTTP layer renders every one of them in the same wire shape
(ARCHITECTURE.md section 3). Each class carries its HTTP status so one handler suffices.

    TollgateError (500)
    ├── BadRequest (400)          malformed input: a bad cursor, unparseable JSON
    ├── AuthenticationFailed (401) no API key, or one Tollgate does not know
    ├── PermissionDenied (403)    a known key that may not do this
    ├── NotFound (404)            an id that does not exist in this environment
    ├── Conflict (409)            a duplicate id, or a state that forbids the change
    └── InvalidValue (422)        well-formed input whose values break a rule

The payments domain adds its own (`payments/errors.py`): a card the provider declines
(402), and a provider that refuses or cannot be reached (502)."""

from typing import Any, ClassVar


class TollgateError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self, message: str, *, field: str | None = None, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details  # one entry per problem, when a request has several


class BadRequest(TollgateError):
    status_code = 400
    code = "bad_request"


class AuthenticationFailed(TollgateError):
    status_code = 401
    code = "unauthenticated"


class PermissionDenied(TollgateError):
    status_code = 403
    code = "permission_denied"


class NotFound(TollgateError):
    status_code = 404
    code = "not_found"

    def __init__(self, kind: str, ref_id: str, *, field: str | None = None) -> None:
        super().__init__(f"{kind} '{ref_id}' was not found", field=field)
        self.kind = kind
        self.ref_id = ref_id


class Conflict(TollgateError):
    status_code = 409
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"

    def __init__(self, kind: str, ref_id: str) -> None:
        super().__init__(f"{kind} '{ref_id}' already exists", field="id")
        self.kind = kind
        self.ref_id = ref_id


class InvalidValue(TollgateError):
    status_code = 422
    code = "invalid_value"


class NotImplementedYet(InvalidValue):
    """A field the Stigg client can send that would change money or access if ignored."""

    code = "not_implemented"

    def __init__(self, field: str, detail: str = "") -> None:
        extra = f": {detail}" if detail else ""
        super().__init__(f"'{field}' is not supported by Tollgate yet{extra}", field=field)

"""GraphQL errors as Stigg's SDKs read them: HTTP 200, `errors[].message`, and
`errors[].extensions.code` with the platform's PascalCase code names."""

from typing import Any

from graphql import GraphQLError
from pydantic import ValidationError

from tollgate.errors import (
    AlreadyExists,
    AuthenticationFailed,
    Conflict,
    InvalidValue,
    NotFound,
    PermissionDenied,
    TollgateError,
)
from tollgate.http.errors import validation_details

_NOT_FOUND_CODES = {
    "customer": "CustomerNotFound",
    "plan": "PlanNotFound",
    "add-on": "AddonNotFound",
    "addon": "AddonNotFound",
    "feature": "FeatureNotFound",
    "subscription": "SubscriptionNotFound",
    "product": "ProductNotFound",
    "promotional entitlement": "PromotionalEntitlementNotFoundError",
}


def code_of(error: BaseException | None) -> str:
    if isinstance(error, AuthenticationFailed):
        return "Unauthenticated"
    if isinstance(error, PermissionDenied):
        return "IdentityForbidden"
    if isinstance(error, NotFound):
        return _NOT_FOUND_CODES.get(error.kind, "EntityNotFound")
    if isinstance(error, AlreadyExists):
        return "DuplicatedEntityNotAllowed"
    if isinstance(error, InvalidValue | ValidationError):
        return "BadUserInput"
    if isinstance(error, Conflict):
        return "InvalidArgumentError"
    if isinstance(error, TollgateError) and error.status_code < 500:
        return "BadUserInput"
    if error is None:  # the document itself: syntax, unknown fields, wrong variables
        return "GRAPHQL_VALIDATION_FAILED"
    return "InternalServerError"


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    original = error.original_error
    formatted: dict[str, Any] = {"message": _message(error, original)}
    if error.path:
        formatted["path"] = error.path
    extensions: dict[str, Any] = {"code": code_of(original)}
    if isinstance(original, TollgateError):
        if original.field:
            extensions["field"] = original.field
        if original.details:
            extensions["details"] = original.details
    formatted["extensions"] = extensions
    return formatted


def _message(error: GraphQLError, original: BaseException | None) -> str:
    if isinstance(original, ValidationError):
        return "; ".join(f"{p['field']}: {p['message']}" for p in validation_details(original))
    if isinstance(original, TollgateError):
        return original.message
    if original is not None:
        return "internal error; the server's log has the details"
    return error.message


def error_answer(error: TollgateError) -> dict[str, Any]:
    """A whole request refused before any document ran (a bad key, a foreign origin)."""
    return {
        "data": None,
        "errors": [format_error(GraphQLError(error.message, original_error=error))],
    }

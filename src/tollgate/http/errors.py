"""One error shape for every failure:

    {"error": {"code": "conflict", "message": "feature 'x' already exists", "field": "id"}}

Validation failures list every problem under `details`. A 5xx means a Tollgate bug.
"""

import logging
import re
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.routing import compile_path

from tollgate.errors import TollgateError
from tollgate.http.idempotency import IdempotentReplay

log = logging.getLogger("tollgate.http")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_value",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, message: str, *, field: str | None = None, details: Any = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, "field": field}
    if details is not None:
        body["details"] = details
    headers = {}
    if 400 <= status < 500 and status not in (408, 429):
        # The Stigg client retries 409s by default; these will not change on retry.
        headers["x-should-retry"] = "false"
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def too_large_message(limit: int | None) -> str:
    return f"the request body is larger than the {limit or 0:,} bytes this endpoint accepts"


def _field_of(location: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_details(exc: RequestValidationError | ValidationError) -> list[dict[str, str]]:
    """Each problem pydantic found, as `{field, message}`."""
    details = []
    for error in exc.errors():
        field = _field_of(tuple(error.get("loc", ())))
        message = error.get("msg", "invalid value")
        if error.get("type") == "extra_forbidden":
            message = "unknown field; Tollgate does not accept it here"
        details.append({"field": field, "message": message})
    return details


async def _on_tollgate_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TollgateError)
    return error_response(
        exc.status_code, exc.code, exc.message, field=exc.field, details=exc.details
    )


async def _on_replay(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    return exc.response


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return error_response(400, "bad_request", "request body is not valid JSON")
    details = validation_details(exc)
    message = "; ".join(f"{detail['field']}: {detail['message']}" for detail in details)
    first_field = details[0]["field"] if details else None
    return error_response(422, "invalid_value", message, field=first_field, details=details)


async def _on_http_exception(
    allowed_methods: "_AllowedMethods", request: Request, exc: Exception
) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    message = str(exc.detail)
    if exc.status_code == 413:
        message = too_large_message(request.scope.get(MAX_BODY_SIZE_SCOPE_KEY))
    response = error_response(exc.status_code, code, message)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["allow"] = allowed_methods(request.url.path)
    return response


class _AllowedMethods:
    """Every method of a path. (Starlette's 405 names only those of the first route
    matching the path, while a path's GET and POST are routes of their own.)"""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._table: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, path: str) -> str:
        if self._table is None:  # the OpenAPI document is complete once requests arrive
            paths = self._app.openapi()["paths"]
            self._table = [
                (compile_path(route)[0], ", ".join(method.upper() for method in sorted(ops)))
                for route, ops in paths.items()
            ]
        for pattern, methods in self._table:
            if pattern.match(path):
                return methods
        return ""


async def _on_unstorable(_request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the schemas let through (a NUL byte in a path or query
    # string, say): bad input, not a bug, and nothing was stored.
    log.info("database refused a value: %s", exc)
    return error_response(
        422, "invalid_value", "a value in the request cannot be stored (for example a NUL byte)"
    )


async def _on_integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    # Services turn the constraint failures they expect into named errors; one that still
    # reaches here lost a race with a concurrent request, and nothing of it was stored.
    log.info("constraint failed: %s", exc)
    return error_response(
        409, "conflict", "the request conflicts with a concurrent change; nothing was stored"
    )


async def _on_database_busy(_request: Request, exc: Exception) -> JSONResponse:
    # Lock waits that timed out, a pool with no free connection, a database restarting:
    # nothing was stored, and the same request may well succeed in a moment.
    log.warning("database unavailable or busy: %s", exc)
    response = error_response(
        503, "unavailable", "the database is busy or unreachable; nothing was stored, retry"
    )
    response.headers["Retry-After"] = "1"
    return response


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; this is a Tollgate bug")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TollgateError, _on_tollgate_error)
    app.add_exception_handler(IdempotentReplay, _on_replay)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(
        StarletteHTTPException, partial(_on_http_exception, _AllowedMethods(app))
    )
    app.add_exception_handler(DataError, _on_unstorable)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(OperationalError, _on_database_busy)
    app.add_exception_handler(PoolTimeout, _on_database_busy)
    app.add_exception_handler(Exception, _on_unexpected)

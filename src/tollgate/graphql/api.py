"""`POST /graphql` and the live socket on `GET /graphql` (graphql-transport-ws), on one
executable schema: `schema.graphql` (Stigg's type, field and argument names) bound to the
resolvers of `operations.py` and `live.py`.

The key is checked from the headers before the body is read, as everywhere. Errors are
answered as the SDKs read them: HTTP 200 with `errors[].extensions.code`. A body may be a
JSON array of operations (the browser SDK batches its check reports): each runs on its own
and the answers come back in order."""

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from ariadne import ScalarType, load_schema_from_path, make_executable_schema
from ariadne import graphql as execute
from ariadne.asgi import GraphQL
from ariadne.asgi.handlers import GraphQLTransportWSHandler
from fastapi import APIRouter, Request, Response
from graphql import GraphQLError, GraphQLSchema
from pydantic import ValidationError
from starlette.websockets import WebSocket

from tollgate.environments.service import hash_key
from tollgate.errors import AuthenticationFailed, BadRequest, NotImplementedYet, TollgateError

# `pages` adds the widgets' resolvers to the same root types as `operations`.
from tollgate.graphql import pages  # noqa: F401
from tollgate.graphql.auth import lower_case, sdk_principal
from tollgate.graphql.context import Caller, caller_for
from tollgate.graphql.errors import error_answer, format_error
from tollgate.graphql.live import subscription
from tollgate.graphql.operations import mutation, query
from tollgate.http.components import app_components

log = logging.getLogger("tollgate.graphql")


class _ServerFaultsOnly(logging.Filter):
    """ariadne logs every error of a result; a caller's mistake (a bad document, variable or
    value, a refusal) is answered, not logged. Tollgate's own failures still are."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, GraphQLError):
            return True
        original = error.original_error
        return original is not None and not isinstance(original, TollgateError | ValidationError)


log.addFilter(_ServerFaultsOnly())
MAX_BATCH = 50  # operations in one array body (the browser SDK sends up to 25)

datetime_scalar = ScalarType("DateTime")
json_scalar = ScalarType("JSON")


@datetime_scalar.serializer
def _serialize_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


@datetime_scalar.value_parser
def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a DateTime is an ISO-8601 string with its zone")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"'{value}' has no zone: add Z or an offset")
    return parsed


def build_schema() -> GraphQLSchema:
    type_defs = load_schema_from_path(str(Path(__file__).with_name("schema.graphql")))
    schema = make_executable_schema(
        type_defs, query, mutation, subscription, datetime_scalar, json_scalar
    )
    # The SDKs can send more than Tollgate does yet (credits, transfers, payment sessions):
    # those answer an error that says so, never a silent null.
    for root in (schema.query_type, schema.mutation_type):
        assert root is not None
        for name, field in root.fields.items():
            if field.resolve is None:
                field.resolve = _not_yet(name)
    return schema


def _not_yet(name: str) -> Callable[..., Any]:
    def refuse(*_: Any, **__: Any) -> Any:
        raise NotImplementedYet(name, "Tollgate does not offer it yet")

    return refuse


SCHEMA = build_schema()
router = APIRouter(tags=["graphql"], include_in_schema=False)


@router.post("/graphql")
async def graphql_http(request: Request) -> Response:
    """Stigg's GraphQL API, for the documents its SDKs send."""
    parts = app_components(request.app)
    try:
        principal = await sdk_principal(parts, request.headers)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise BadRequest(
                "the body is not JSON: send {query, variables, operationName}"
            ) from exc
    except TollgateError as error:
        return _json(error_answer(error))
    caller = caller_for(principal, parts)
    if isinstance(body, list):
        if len(body) > MAX_BATCH:
            return _json(error_answer(BadRequest(f"send at most {MAX_BATCH} operations at once")))
        return _json([await _run(caller, operation) for operation in body])
    return _json(await _run(caller, body))


async def _run(caller: Caller, operation: Any) -> dict[str, Any]:
    _success, answer = await execute(
        SCHEMA,
        operation,
        context_value=caller,
        error_formatter=format_error,
        logger="tollgate.graphql",
    )
    return answer


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


class SdkSocket(GraphQLTransportWSHandler):
    """graphql-transport-ws, authenticated from `connection_init`: the Node SDK sends its
    headers there (`{headers: {X-API-KEY, ...}}`), none on the upgrade itself."""

    async def handle_websocket_connection_init_message(
        self, websocket: WebSocket, message: dict[str, Any], client_context: Any
    ) -> None:
        payload = message.get("payload") or {}
        headers = payload.get("headers") if isinstance(payload, dict) else None
        sent = lower_case(headers if isinstance(headers, dict) else payload)
        if "origin" in websocket.headers:
            sent["origin"] = websocket.headers["origin"]
        parts = app_components(websocket.app)
        try:
            principal = await sdk_principal(parts, sent)
        except TollgateError as error:
            # "Invalid API key" is the reason that stops the SDK from reconnecting.
            reason = "Invalid API key" if isinstance(error, AuthenticationFailed) else error.message
            await websocket.close(code=4403, reason=reason[:120])
            return
        websocket.scope["tollgate.caller"] = caller_for(
            principal, parts, key_hash=hash_key(sent["x-api-key"])
        )
        await super().handle_websocket_connection_init_message(websocket, message, client_context)


def _socket_context(websocket: Any, _data: Any) -> Caller:
    caller: Caller = websocket.scope["tollgate.caller"]
    return caller


live_socket = GraphQL(
    SCHEMA,
    context_value=_socket_context,
    error_formatter=format_error,
    websocket_handler=SdkSocket(),
    logger="tollgate.graphql",
)

"""The replica's HTTP surface: `/webhook`, `/check-access`, `/graphql`, `/graphiql`,
`/healthz`. Plain Starlette: the check is the hot path and answers from memory."""

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollgate.replica import store
from tollgate.replica.events import BadEvent
from tollgate.replica.graphql import graphql_app
from tollgate.replica.memory import Asked, answer
from tollgate.replica.service import Replica, Unauthenticated
from tollgate.replica.sync import RESYNCED_AT

MAX_BODY_BYTES = 1 << 20


def create_replica_app(replica: Replica) -> Starlette:
    """The app; at startup it registers, backfills and starts the audit (`Replica.start`)."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(replica.start)
        try:
            yield
        finally:
            await run_in_threadpool(replica.stop)

    graphql = graphql_app()
    guarded = _Guarded(replica, graphql)
    app = Starlette(
        routes=[
            Route("/webhook", _webhook, methods=["POST"]),
            Route("/check-access", _check_access, methods=["POST"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/graphql", guarded, methods=["GET", "POST"]),
            Route("/graphiql", guarded, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.replica = replica
    app.state.graphql_context = {"memory": replica.memory, "now": replica.now}
    return app


async def _webhook(request: Request) -> Response:
    replica: Replica = request.app.state.replica
    body = await _body(request)
    if body is None:
        return _error(413, "the body is larger than 1 MiB", "body")
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        replica.verify(body, headers)
    except Unauthenticated as refused:
        return _error(401, str(refused), "webhook-signature")
    try:
        payload = orjson.loads(body)
        outcome = await run_in_threadpool(replica.receive, payload, headers.get("webhook-id"))
    except orjson.JSONDecodeError:
        return _error(400, "the body is not JSON", "body")
    except BadEvent as bad:
        return _error(400, str(bad), bad.field)
    except SQLAlchemyError:
        # Nothing was committed: the sender retries.
        return _error(503, "the replica's database failed; send it again", "database")
    return _json(200, {"applied": outcome.applied.value})


async def _check_access(request: Request) -> Response:
    replica: Replica = request.app.state.replica
    if not _authorized(replica, request):
        return _unauthorized()
    body = await _body(request)
    if body is None:
        return _error(413, "the body is larger than 1 MiB", "body")
    try:
        asked = _asked(orjson.loads(body))
    except orjson.JSONDecodeError:
        return _error(400, "the body is not JSON", "body")
    except BadEvent as bad:
        return _error(400, str(bad), bad.field)
    view = replica.memory.cached(asked.customer_id)
    if view is None:
        view = await run_in_threadpool(replica.memory.load, asked.customer_id)
    status, body = answer(view, replica.memory.features(), asked, replica.now())
    return Response(body, status_code=status, media_type="application/json")


async def _body(request: Request) -> bytes | None:
    """The request's body, or None past `MAX_BODY_BYTES` (read no further than that)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _asked(body: Any) -> Asked:
    if not isinstance(body, dict):
        raise BadEvent("the body must be a JSON object", field="body")
    for name in ("customerId", "featureId"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise BadEvent(f"{name} is required (a non-empty string)", field=name)
    resource = body.get("resourceId")
    if resource is not None and (not isinstance(resource, str) or not resource):
        raise BadEvent("resourceId must be a non-empty string when given", field="resourceId")
    usage = body.get("requestedUsage")
    if usage is not None and (isinstance(usage, bool) or not isinstance(usage, int) or usage < 0):
        raise BadEvent("requestedUsage must be a whole number, 0 or more", field="requestedUsage")
    values = body.get("requestedValues")
    if values is not None and (
        not isinstance(values, list) or not all(isinstance(v, str) for v in values)
    ):
        raise BadEvent("requestedValues must be a list of strings", field="requestedValues")
    return Asked(
        body["customerId"],
        body["featureId"],
        resource,
        usage,
        frozenset(values) if values is not None else None,
    )


async def _healthz(request: Request) -> Response:
    replica: Replica = request.app.state.replica
    latest, resynced = await run_in_threadpool(_latest, replica)
    now = replica.now()
    health = replica.health
    received = latest.received_at if latest else None
    event_at = latest.event_at if latest else None
    return _json(
        200,
        {
            "status": "ok",
            "lastEventAt": event_at,
            "lastReceivedAt": received,
            # How late the newest delivery arrived after its event, and how long ago.
            "lagSeconds": (received - event_at).total_seconds() if received and event_at else None,
            "sinceLastEventSeconds": (now - received).total_seconds() if received else None,
            "resyncedAt": resynced,
            "source": {
                "url": replica.settings.source_url,
                "reachable": health.reachable,
                "pendingMessages": health.pending,
                "checkedAt": health.checked_at,
                "error": health.error,
                "repairedCustomers": health.repaired,
            },
        },
    )


def _latest(replica: Replica) -> tuple[Any, Any]:
    with replica.reads() as session:
        return store.latest_message(session), store.fact(session, RESYNCED_AT)


class _Guarded:
    """The GraphQL app behind the access token, when there is one. (A class: Starlette
    routes hand an ASGI object the raw request, where a function would get a Request.)"""

    def __init__(self, replica: Replica, inner: Any) -> None:
        self._replica = replica
        self._inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # GraphiQL's page (a GET) is open; queries (POSTs) need the token.
        asks = scope["type"] == "http" and scope["method"] != "GET"
        if asks and not _authorized(self._replica, Request(scope)):
            await _unauthorized()(scope, receive, send)
            return
        await self._inner(scope, receive, send)


def _unauthorized() -> Response:
    return _error(401, "send Authorization: Bearer <the replica's access token>", "authorization")


def _authorized(replica: Replica, request: Request) -> bool:
    token = replica.settings.access_token
    if not token:
        return True
    sent = request.headers.get("authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


def _json(status: int, content: dict[str, Any]) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def _error(status: int, message: str, field: str) -> Response:
    return _json(status, {"error": message, "field": field})

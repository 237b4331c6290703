"""Who may send a body: the API key is checked from the headers before any of it is read.

FastAPI reads a request's body before it runs the dependencies that authenticate it, so
without this an anonymous client could make the server read (up to the body limit) and
parse whatever it sends. Requests with a missing or unknown key are answered 401 here,
with the body left unread; the routes then authenticate again as usual."""

import anyio
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollgate.db.engine import SessionFactories, unit_of_work
from tollgate.environments.cache import KeyCache
from tollgate.environments.service import Principal, authenticate
from tollgate.errors import AuthenticationFailed
from tollgate.http.components import Components, app_components
from tollgate.http.errors import error_response, too_large_message

_WITHOUT_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


async def cached_principal(parts: Components, raw_key: str | None) -> Principal:
    """The key's principal, from memory when the key was seen lately, else from the
    database (admitted like any unit of work); AuthenticationFailed when there is none."""
    keys = parts.get(KeyCache)
    principal = keys.get(raw_key) if raw_key else None
    if principal is not None:
        return principal
    try:
        async with parts.get(anyio.Semaphore):
            sessions = parts.get(SessionFactories).read
            principal = await run_in_threadpool(_authenticate, sessions, raw_key)
    except AuthenticationFailed:
        if raw_key:
            keys.forget(raw_key)
        raise
    assert raw_key is not None  # authenticate refuses a missing key
    keys.put(raw_key, principal)
    return principal


def _authenticate(sessions: sessionmaker[Session], raw_key: str | None) -> Principal:
    with unit_of_work(sessions) as session:
        return authenticate(session, raw_key=raw_key)


class KeyBeforeBody:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in _WITHOUT_BODY
            or not scope["path"].startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            await cached_principal(app_components(request.app), request.headers.get("x-api-key"))
        except AuthenticationFailed as refused:
            response = error_response(401, refused.code, refused.message)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, _too_large_as_json(scope, send))


def _too_large_as_json(scope: Scope, send: Send) -> Send:
    """Starlette's body limit answers a body announced too large in plain text; answer in
    the house's error shape instead, naming the limit."""
    replacing = False

    async def sending(message: Message) -> None:
        nonlocal replacing
        if message["type"] == "http.response.start" and message["status"] == 413:
            replacing = True
            limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
            response = error_response(413, "too_large", too_large_message(limit))
            await response(scope, _nothing, send)
        elif not replacing:
            await send(message)

    return sending


async def _nothing() -> Message:
    return {"type": "http.disconnect"}

"""Request dependencies: one unit of work per request, and the calling key."""

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Annotated

import anyio
from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from tollgate.db.engine import SessionFactories, unit_of_work
from tollgate.environments.service import Principal, authenticate
from tollgate.environments.tokens import HEADER as TOKEN_HEADER
from tollgate.environments.tokens import SDK_HEADER, sent_token
from tollgate.errors import PermissionDenied
from tollgate.http import idempotency
from tollgate.http.components import app_components
from tollgate.kit.clock import Clock

_api_key_header = APIKeyHeader(name="X-API-KEY", auto_error=False)


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _admission(request: Request) -> AsyncIterator[None]:
    """Wait on the event loop, holding no thread, until a unit of work may start.

    A sync unit of work hops between worker threads (open, route, commit) while it holds a
    connection and, for writes, row locks. If every worker thread were taken by requests
    waiting for those locks or for a pooled connection, the holder could never get a thread
    back to commit. Admitting fewer units than there are threads and pooled connections
    keeps that from happening."""
    async with app_components(request.app).get(anyio.Semaphore):
        yield


def get_session(
    request: Request, _admitted: None = Depends(_admission, scope="function")
) -> Iterator[Session]:
    """Commit when the route returns (with the answer an `Idempotency-Key` keeps), roll
    back when it raises."""
    sessions = app_components(request.app).get(SessionFactories)
    factory = sessions.read if request.method in _READ_METHODS else sessions.write
    with unit_of_work(factory) as session:
        yield session
        idempotency.remember(request, session)


# scope="function" commits before the response is sent, so a failed commit is reported.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def any_key(
    session: DbSession,
    api_key: str | None = Depends(_api_key_header),
    environment: str | None = Header(
        None,
        alias="X-ENVIRONMENT-ID",
        description="Optional; when sent it must name the key's own environment",
    ),
    customer_token: str | None = Header(
        None,
        alias=TOKEN_HEADER,
        description="Optional `HMAC-SHA256 <customerId>:<hex>`: only that customer's data",
    ),
    sdk_customer_token: str | None = Header(
        None, alias=SDK_HEADER, description=f"The same as {TOKEN_HEADER} (Stigg's SDKs send it)"
    ),
) -> Principal:
    token = sent_token(customer_token, sdk_customer_token)
    principal = authenticate(session, raw_key=api_key).with_customer_token(token)
    # The Stigg client can name an environment; a key only ever acts in its own, so a
    # request that asks for another is refused rather than quietly served from this one.
    if environment is not None and environment != principal.environment_name:
        raise PermissionDenied(
            f"this API key belongs to environment '{principal.environment_name}', but "
            f"X-ENVIRONMENT-ID asks for '{environment}'"
        )
    return principal


# The dependencies below do no I/O: async, so FastAPI runs them on the event loop instead
# of sending each to a worker thread and back (a hop per dependency, per request).


async def server_key(principal: Annotated[Principal, Depends(any_key)]) -> Principal:
    principal.require_write()
    return principal


async def customer_reader(
    customer_id: str, principal: Annotated[Principal, Depends(any_key)]
) -> Principal:
    """For routes under `/{customer_id}`: a customer token reads its own customer only."""
    principal.require_customer(customer_id)
    return principal


async def current_time(request: Request) -> datetime:
    """The app's clock (a fixed one in tests), read once per request."""
    # mypy takes no protocol for a `type[T]` (python/mypy#4717); `Components.add` checked
    # that the part is a Clock.
    return app_components(request.app).get(Clock).now()  # type: ignore[type-abstract]


Now = Annotated[datetime, Depends(current_time)]
ReadPrincipal = Annotated[Principal, Depends(any_key)]
CustomerReadPrincipal = Annotated[Principal, Depends(customer_reader)]
WritePrincipal = Annotated[Principal, Depends(server_key)]


async def claim_idempotency_key(
    request: Request,
    session: DbSession,
    principal: WritePrincipal,
    now: Now,
    key: str | None = Header(
        None,
        alias=idempotency.HEADER,
        pattern=idempotency.KEY_PATTERN,
        description="Optional, 1-255 printable ASCII characters: a retry with the same key "
        "and request within 24 hours gets the first answer back instead of running again",
    ),
) -> None:
    """For routes that change something: a retry with the same `Idempotency-Key` gets the
    first answer back instead of running again."""
    if key is not None:
        await idempotency.claim(request, session, principal.environment_id, key, now)

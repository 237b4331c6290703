"""Request dependencies: one unit of work per request, and the calling key."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from tollgate.db.engine import unit_of_work
from tollgate.environments.models import KeyKind
from tollgate.environments.service import Principal, authenticate
from tollgate.errors import PermissionDenied

_api_key_header = APIKeyHeader(name="X-API-KEY", auto_error=False)


def get_session(request: Request) -> Iterator[Session]:
    """Commit when the route returns, roll back when it raises."""
    with unit_of_work(request.app.state.session_factory) as session:
        yield session


# scope="function" commits before the response is sent, so a failed commit is reported.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def any_key(session: DbSession, api_key: str | None = Depends(_api_key_header)) -> Principal:
    return authenticate(session, raw_key=api_key)


def server_key(principal: Annotated[Principal, Depends(any_key)]) -> Principal:
    if principal.key_kind is not KeyKind.SERVER:
        raise PermissionDenied("this endpoint needs a server API key; client keys are read-only")
    return principal


ReadPrincipal = Annotated[Principal, Depends(any_key)]
WritePrincipal = Annotated[Principal, Depends(server_key)]

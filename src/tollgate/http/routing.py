"""The route class of every API router: what every route does besides its own work."""

import inspect
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute, APIRouter

from tollgate.http import idempotency
from tollgate.http.deps import WritePrincipal, claim_idempotency_key


class TollgateRoute(APIRoute):
    """POSTs that change something honour `Idempotency-Key` (see `http.idempotency`), and
    every route's answer is kept on the request so that the unit of work can remember it
    with what it commits."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if "POST" in (kwargs.get("methods") or ()) and changes_something(endpoint):
            kwargs["dependencies"] = [
                *(kwargs.get("dependencies") or ()),
                Depends(claim_idempotency_key),
            ]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            response = await handler(request)
            idempotency.keep_answer(request, response)
            return response

        return answer


def changes_something(endpoint: Callable[..., Any]) -> bool:
    """Routes that change something are those that need a server key (client keys are
    read-only): preview and bulk reads are POSTs too, but change nothing."""
    parameters = inspect.signature(endpoint, eval_str=True).parameters.values()
    return any(parameter.annotation is WritePrincipal for parameter in parameters)


def api_router(*, prefix: str, tags: list[str | Enum]) -> APIRouter:
    """A router of the API: its routes are TollgateRoutes."""
    return APIRouter(prefix=prefix, tags=tags, route_class=TollgateRoute)

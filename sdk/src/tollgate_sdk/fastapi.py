"""FastAPI: gate a route on a feature.

    from tollgate_sdk.fastapi import require_feature

    sso = require_feature(tollgate, "feature-sso", customer_id=lambda request: request.state.org)

    @app.get("/sso", dependencies=[Depends(sso)])
    async def sso_settings(): ...

A denied request gets 403 with `{"detail": {"code": "feature_not_granted", "featureId": ...,
"accessDeniedReason": ..., "message": ...}}` (FastAPI's own error shape); a route that takes
the dependency's value receives the answer."""

import inspect
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from tollgate_sdk._client import AsyncTollgate, Tollgate
from tollgate_sdk._gate import Answer, check, denial


def require_feature(
    client: Tollgate | AsyncTollgate,
    feature_id: str,
    *,
    customer_id: Callable[[Request], str | Awaitable[str | None] | None],
    requested_usage: float | None = None,
) -> Callable[[Request], Awaitable[Answer]]:
    """A dependency that lets a request through only when its customer (`customer_id` of
    the request; may be async) is granted `feature_id` (and `requested_usage` more of it)."""

    async def dependency(request: Request) -> Answer:
        found = customer_id(request)
        customer = await found if inspect.isawaitable(found) else found
        answer = await _answer(client, customer, feature_id, requested_usage)
        body = denial(feature_id, answer)
        if body is not None:
            raise HTTPException(status_code=403, detail=body["error"])
        assert answer is not None  # granted
        return answer

    return dependency


async def _answer(
    client: Tollgate | AsyncTollgate,
    customer: str | None,
    feature_id: str,
    requested_usage: float | None,
) -> Answer | None:
    if isinstance(client, Tollgate) or not customer:
        if isinstance(client, Tollgate) and customer and not client.is_cached(customer):
            # The first check of a customer waits for the server: not on the event loop.
            return await run_in_threadpool(check, client, customer, feature_id, requested_usage)
        return check(client, customer, feature_id, requested_usage)
    if requested_usage is None:
        return await client.get_boolean_entitlement(customer, feature_id)
    return await client.get_metered_entitlement(
        customer, feature_id, requested_usage=requested_usage
    )

"""Django: gate a view on a feature.

    from tollgate_sdk.django import feature_required

    @feature_required(tollgate, "feature-sso", customer_id=lambda request: request.user.org_id)
    def sso_settings(request): ...

A denied request gets 403 with `{"error": {"code": "feature_not_granted", "featureId": ...,
"accessDeniedReason": ..., "message": ...}}`."""

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse

from tollgate_sdk._client import Tollgate
from tollgate_sdk._gate import Answer, check, denial

View = TypeVar("View", bound=Callable[..., Any])


def feature_required(
    client: Tollgate,
    feature_id: str,
    *,
    customer_id: Callable[[HttpRequest], str | None],
    requested_usage: float | None = None,
) -> Callable[[View], View]:
    """Let the view (sync or async) run only when the request's customer
    (`customer_id(request)`) is granted `feature_id` (and `requested_usage` more of it)."""

    def decorate(view: View) -> View:
        if inspect.iscoroutinefunction(view):
            # `customer_id` may use the ORM (request.user...), which Django allows only off
            # the event loop, like the first check of a customer, which waits for Tollgate.
            def check_request(request: HttpRequest) -> Answer | None:
                return check(client, customer_id(request), feature_id, requested_usage)

            checked = sync_to_async(check_request)

            @functools.wraps(view)
            async def gated_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                body = denial(feature_id, await checked(request))
                if body is not None:
                    return JsonResponse(body, status=403)
                return await view(request, *args, **kwargs)

            return cast(View, gated_async)

        @functools.wraps(view)
        def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            answer = check(client, customer_id(request), feature_id, requested_usage)
            body = denial(feature_id, answer)
            if body is not None:
                return JsonResponse(body, status=403)
            return view(request, *args, **kwargs)

        return cast(View, gated)

    return decorate

"""Flask: gate a view on a feature.

    from tollgate_sdk.flask import feature_required

    @app.get("/sso")
    @feature_required(tollgate, "feature-sso", customer_id=lambda: session.get("org"))
    def sso_settings(): ...

A denied request gets 403 with `{"error": {"code": "feature_not_granted", "featureId": ...,
"accessDeniedReason": ..., "message": ...}}`."""

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import jsonify

from tollgate_sdk._client import Tollgate
from tollgate_sdk._gate import check, denial

View = TypeVar("View", bound=Callable[..., Any])


def feature_required(
    client: Tollgate,
    feature_id: str,
    *,
    customer_id: Callable[[], str | None],
    requested_usage: float | None = None,
) -> Callable[[View], View]:
    """Let the view run only when the customer `customer_id()` names (read it from the
    request context) is granted `feature_id` (and `requested_usage` more of it)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def gated(*args: Any, **kwargs: Any) -> Any:
            answer = check(client, customer_id(), feature_id, requested_usage)
            body = denial(feature_id, answer)
            if body is not None:
                return jsonify(body), 403
            return view(*args, **kwargs)

        return cast(View, gated)

    return decorate

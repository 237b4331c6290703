"""Entitlement reads: the hottest path of the product.

These routes take the request object and build their answer by hand: when the key and the
customer's snapshot are in memory, a check is a few dict lookups and one `orjson.dumps`,
with no database, no thread hop and no pydantic (the OpenAPI document still describes
them, from `schemas.py`). On a miss, the database is read on a worker thread, admitted like
any other unit of work."""

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from tollgate.db.engine import unit_of_work
from tollgate.entitlements import engine
from tollgate.entitlements.engine import FeatureInfo, Snapshot
from tollgate.entitlements.schemas import CHECK_PARAMETERS, CheckEnvelope, EntitlementsEnvelope
from tollgate.entitlements.service import current_usage, entitlement_list
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.wire import decision_wire
from tollgate.environments.cache import KeyCache
from tollgate.environments.service import Principal, authenticate
from tollgate.errors import InvalidValue, NotImplementedYet, PermissionDenied

router = APIRouter(prefix="/api/v1/customers", tags=["entitlements"])

T = TypeVar("T")
MAX_REQUESTED_USAGE = 2**53  # beyond this a JSON number loses integer precision
_UNSUPPORTED = (
    "currencyId",
    "reserveAmount",
    "reservationId",
    "reservationExpiresAt",
    "reservationTtlSeconds",
    "reservationMetadata",
)


@router.get(
    "/{customer_id}/entitlements/check",
    response_model=CheckEnvelope,
    openapi_extra={"parameters": CHECK_PARAMETERS},
)
async def check_entitlement(customer_id: str, request: Request) -> Response:
    """May this customer (or one of its resources) use a feature, and how much is left?

    Denials are answers, not errors: `isGranted` is false and `accessDeniedReason` says
    why. `explain=true` adds the grants (plan versions, add-ons, promotions) behind it."""
    principal = await _principal(request)
    query = request.query_params
    for name in _UNSUPPORTED:
        if name in query:
            raise NotImplementedYet(name, "credits and reservations are not supported yet")
    feature_ref = query.get("featureId")
    if not feature_ref:
        raise InvalidValue("give the feature to check in 'featureId'", field="featureId")
    requested_usage = _requested_usage(query.get("requestedUsage"))
    raw_values = query.get("requestedValues")
    requested_values = [v for v in raw_values.split(",") if v] if raw_values is not None else None
    store: SnapshotStore = request.app.state.snapshots
    resource_ref = query.get("resourceId") or None
    snapshot = await _snapshot(request, store, principal.environment_id, customer_id, resource_ref)
    features = await _features(request, store, principal.environment_id)
    feature = features.get(feature_ref)
    usage = current_usage(snapshot, feature) if feature else 0
    decision = engine.check(
        snapshot,
        feature,
        requested_usage=requested_usage,
        requested_values=requested_values,
        current_usage=usage,
    )
    explain = query.get("explain") in ("true", "1")
    body = decision_wire(decision, feature, current_usage=usage, explain=explain)
    return _json({"data": body})


@router.get(
    "/{customer_id}/entitlements",
    response_model=EntitlementsEnvelope,
    openapi_extra={"parameters": CHECK_PARAMETERS[-2:]},
)
async def list_entitlements(customer_id: str, request: Request) -> Response:
    """Everything a customer (or one of its resources) is entitled to now."""
    principal = await _principal(request)
    store: SnapshotStore = request.app.state.snapshots
    resource_ref = request.query_params.get("resourceId") or None
    explain = request.query_params.get("explain") in ("true", "1")
    snapshot = await _snapshot(request, store, principal.environment_id, customer_id, resource_ref)
    features = await _features(request, store, principal.environment_id)
    reason = engine.customer_reason(snapshot)
    data = {
        "entitlements": entitlement_list(snapshot, features, explain=explain),
        "accessDeniedReason": reason.value if reason else None,
    }
    return _json({"data": data})


async def _check_fast(request: Request) -> Response:
    return await check_entitlement(request.path_params["customer_id"], request)


async def _list_fast(request: Request) -> Response:
    return await list_entitlements(request.path_params["customer_id"], request)


# The same endpoints as plain Starlette routes, for the app to place ahead of FastAPI's:
# FastAPI's matching walks every included router and resolves each route's parameters,
# several times the cost of the check itself. FastAPI's routes stay for the OpenAPI document.
FAST_ROUTES = [
    Route("/api/v1/customers/{customer_id}/entitlements/check", _check_fast, methods=["GET"]),
    Route("/api/v1/customers/{customer_id}/entitlements", _list_fast, methods=["GET"]),
]


def _requested_usage(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidValue(
            f"'requestedUsage' must be a whole number, got '{raw[:40]}'", field="requestedUsage"
        ) from None
    if not 0 <= value <= MAX_REQUESTED_USAGE:
        raise InvalidValue(
            f"'requestedUsage' must be between 0 and {MAX_REQUESTED_USAGE}", field="requestedUsage"
        )
    return value


async def _principal(request: Request) -> Principal:
    raw_key = request.headers.get("x-api-key")
    keys: KeyCache = request.app.state.keys
    principal = keys.get(raw_key) if raw_key else None
    if principal is None:
        principal = await _admitted(request, _authenticate, request, raw_key)
        if raw_key:
            keys.put(raw_key, principal)
    environment = request.headers.get("x-environment-id")
    if environment is not None and environment != principal.environment_name:
        raise PermissionDenied(
            f"this API key belongs to environment '{principal.environment_name}', but "
            f"X-ENVIRONMENT-ID asks for '{environment}'"
        )
    return principal


def _authenticate(request: Request, raw_key: str | None) -> Principal:
    with unit_of_work(request.app.state.read_sessions) as session:
        return authenticate(session, raw_key=raw_key)


async def _snapshot(
    request: Request,
    store: SnapshotStore,
    environment_id: int,
    customer_ref: str,
    resource_ref: str | None,
) -> Snapshot:
    found = store.cached(environment_id, customer_ref, resource_ref)
    if found is not None:
        return found
    return await _admitted(request, store.snapshot, environment_id, customer_ref, resource_ref)


async def _features(
    request: Request, store: SnapshotStore, environment_id: int
) -> dict[str, FeatureInfo]:
    found = store.cached_features(environment_id)
    if found is not None:
        return found
    return await _admitted(request, store.features, environment_id)


async def _admitted(request: Request, function: Callable[..., T], *args: Any) -> T:
    """Run blocking database work on a worker thread, admitted like a unit of work."""
    async with request.app.state.admission:
        return await run_in_threadpool(function, *args)


def _json(content: dict[str, Any]) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")

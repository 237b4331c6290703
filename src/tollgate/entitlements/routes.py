"""Entitlement reads: the hottest path of the product.

Warm checks (key, snapshot, features and usage in memory) are answered by `warm.py` before the
framework sees them. What reaches these routes needs the database: it is read on a worker
thread, admitted like any other unit of work, and the answer is built by the same
`checks.py` as the warm path's, by hand with orjson (no pydantic; the OpenAPI document still
describes the replies, from `schemas.py`)."""

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request, Response

from tollgate.entitlements import reads
from tollgate.entitlements.checks import check_answer, is_explain, list_answer, parse_check_query
from tollgate.entitlements.engine import FeatureInfo, Snapshot
from tollgate.entitlements.schemas import (
    CHECK_PARAMETERS,
    CheckEnvelope,
    EntitlementsEnvelope,
    StateRequest,
    StatesRequest,
)
from tollgate.entitlements.service import current_usage
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.usage_store import CustomerUsage, UsageStore
from tollgate.entitlements.wire import sdk_feature_wire, state_wire
from tollgate.environments.service import Principal
from tollgate.environments.tokens import HEADER as TOKEN_HEADER
from tollgate.environments.tokens import SDK_HEADER, sent_token
from tollgate.errors import PermissionDenied
from tollgate.http.components import Components, app_components
from tollgate.http.gate import cached_principal
from tollgate.http.params import flag, whole_number
from tollgate.http.routing import api_router

router = api_router(prefix="/api/v1/customers", tags=["entitlements"])
# Tollgate's own: what the SDK (tollgate-sdk) loads to answer checks from memory.
sdk_router = api_router(prefix="/api/v1/sdk", tags=["sdk"])

T = TypeVar("T")


@router.get(
    "/{customer_id}/entitlements/check",
    response_model=CheckEnvelope,
    openapi_extra={"parameters": CHECK_PARAMETERS},
)
async def check_entitlement(customer_id: str, request: Request) -> Response:
    """May this customer (or one of its resources) use a feature, and how much is left?

    Denials are answers, not errors: `isGranted` is false and `accessDeniedReason` says
    why. `explain=true` adds the grants (plan versions, add-ons, promotions) behind it."""
    parts = app_components(request.app)
    principal = await _principal(parts, request)
    principal.require_customer(customer_id)
    query = parse_check_query(request.query_params)
    store = parts.get(SnapshotStore)
    environment_id = principal.environment_id
    snapshot = await reads.snapshot(parts, store, environment_id, customer_id, query.resource_ref)
    features = await reads.features(parts, store, environment_id)
    usage = await reads.usage(parts, environment_id, customer_id)
    return _json({"data": check_answer(snapshot, features, query, usage)})


@router.get(
    "/{customer_id}/entitlements",
    response_model=EntitlementsEnvelope,
    openapi_extra={"parameters": CHECK_PARAMETERS[-2:]},
)
async def list_entitlements(customer_id: str, request: Request) -> Response:
    """Everything a customer (or one of its resources) is entitled to now."""
    parts = app_components(request.app)
    principal = await _principal(parts, request)
    principal.require_customer(customer_id)
    store = parts.get(SnapshotStore)
    resource_ref = request.query_params.get("resourceId") or None
    snapshot = await reads.snapshot(
        parts, store, principal.environment_id, customer_id, resource_ref
    )
    features = await reads.features(parts, store, principal.environment_id)
    usage = await reads.usage(parts, principal.environment_id, customer_id)
    answer = list_answer(snapshot, features, usage, explain=is_explain(request.query_params))
    return _json({"data": answer})


@sdk_router.get("/customers/{customer_id}/state")
async def get_customer_state(customer_id: str, request: Request) -> Response:
    """A customer's (or, with `resourceId`, one resource's) entitlements with their full
    terms and current usage, from which tollgate-sdk decides every check itself. Follow
    `/api/v1/sdk/stream` to learn when to read it again: after a `customer` event send its
    `version` as `minVersion`, after a `usage` event `freshUsage=true`, after `catalog` or
    `reset` `fresh=true`, so that a server process that has not heard of the change yet
    reads the database instead of memory."""
    parts = app_components(request.app)
    principal = await _principal(parts, request)
    principal.require_customer(customer_id)
    params = request.query_params
    wanted = StateRequest.model_construct(  # its parts are checked here
        customer_id=customer_id,
        resource_id=params.get("resourceId") or None,
        min_version=whole_number(params.get("minVersion"), field="minVersion") or 0,
        fresh=flag(params.get("fresh"), field="fresh"),
    )
    fresh_usage = flag(params.get("freshUsage"), field="freshUsage")
    states = await reads.admitted(
        parts, _states_of, parts, principal.environment_id, [wanted], fresh_usage
    )
    return _json({"data": states[0]})


@sdk_router.post("/states")
async def get_customer_states(body: StatesRequest, request: Request) -> Response:
    """What `GET /api/v1/sdk/customers/{id}/state` answers, for up to 200 customers (or
    resources) in one request, in the order asked: how tollgate-sdk reads again every
    customer a burst of changes touched."""
    parts = app_components(request.app)
    principal = await _principal(parts, request)
    for wanted in body.customers:
        principal.require_customer(wanted.customer_id)
    states = await reads.admitted(
        parts, _states_of, parts, principal.environment_id, body.customers, body.fresh_usage
    )
    return _json({"data": states})


def _states_of(
    parts: Components, environment_id: int, wanted: list[StateRequest], fresh_usage: bool
) -> list[dict[str, Any]]:
    """Each customer's state, from memory unless the request says memory may be behind a
    change the stream announced (`minVersion`, `fresh`, `freshUsage`): then from the
    database. Blocking: runs on a worker thread."""
    store = parts.get(SnapshotStore)
    usage_store = parts.get(UsageStore)
    if any(item.fresh for item in wanted):
        features = store.reload_features(environment_id)
    else:
        features = store.features(environment_id)
    states = []
    for item in wanted:
        customer_ref, resource_ref = item.customer_id, item.resource_id
        snapshot = store.snapshot(environment_id, customer_ref, resource_ref)
        if item.fresh or snapshot.version < item.min_version:
            snapshot = store.recompute(environment_id, customer_ref, resource_ref)
        if item.fresh or fresh_usage:
            usage = usage_store.reload(environment_id, customer_ref)
        else:
            usage = usage_store.usage(environment_id, customer_ref)
        states.append(state_wire(snapshot, features, _usage_of(snapshot, usage)))
    return states


def _usage_of(snapshot: Snapshot, usage: CustomerUsage) -> Callable[[FeatureInfo], float]:
    return lambda feature: current_usage(snapshot, feature, usage)


@sdk_router.get("/features")
async def list_sdk_features(request: Request) -> Response:
    """Every feature of the key's environment with its type and meter type, unpaged: what
    tollgate-sdk needs to tell an unknown feature from one a customer lacks. `fresh=true`
    reads the database instead of memory (after a `catalog` event)."""
    parts = app_components(request.app)
    principal = await _principal(parts, request)
    store = parts.get(SnapshotStore)
    if flag(request.query_params.get("fresh"), field="fresh"):
        features = await reads.admitted(parts, store.reload_features, principal.environment_id)
    else:
        features = await reads.features(parts, store, principal.environment_id)
    return _json({"data": [sdk_feature_wire(features[ref]) for ref in sorted(features)]})


async def _principal(parts: Components, request: Request) -> Principal:
    principal = await cached_principal(parts, request.headers.get("x-api-key"))
    environment = request.headers.get("x-environment-id")
    if environment is not None and environment != principal.environment_name:
        raise PermissionDenied(
            f"this API key belongs to environment '{principal.environment_name}', but "
            f"X-ENVIRONMENT-ID asks for '{environment}'"
        )
    token = sent_token(request.headers.get(TOKEN_HEADER), request.headers.get(SDK_HEADER))
    return principal.with_customer_token(token)


def _json(content: dict[str, Any]) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")

"""The edge JSON: the files Stigg's SDKs read with plain GETs (`baseEdgeUri`), each the
`{"data": ...}` of the GraphQL query it stands for, answered from memory like warm checks.

The Node SDK without its socket reads `entitlements.json` for every check, so the customer's
file is built from the same in-memory snapshot, features and usage as the REST checks."""

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from tollgate.entitlements.reads import customer_entitlements
from tollgate.graphql.auth import sdk_principal
from tollgate.graphql.shapes import SDK_CONFIGURATION, entitlements_shape
from tollgate.http.components import app_components

router = APIRouter(prefix="/v1", tags=["edge"], include_in_schema=False)


@router.get("/config/client-sdk-configuration.json")
@router.get("/config/server-sdk-configuration.json")
async def sdk_configuration(request: Request) -> Response:
    """What the SDKs read first: it also tells them whether their key is good (401)."""
    await sdk_principal(app_components(request.app), request.headers)
    return _json({"sdkConfiguration": SDK_CONFIGURATION})


@router.get("/c/{customer_id}/entitlements.json")
async def customer_entitlements_file(customer_id: str, request: Request) -> Response:
    """`GetEntitlements`: what the customer (or `resourceId`) holds, with usage."""
    parts = app_components(request.app)
    principal = await sdk_principal(parts, request.headers)
    principal.require_customer(customer_id)
    resource_ref = request.query_params.get("resourceId") or None
    held = await customer_entitlements(parts, principal.environment_id, customer_id, resource_ref)
    return _json({"entitlements": entitlements_shape(held)})


def _json(data: dict[str, Any]) -> Response:
    return Response(orjson.dumps({"data": data}), media_type="application/json")

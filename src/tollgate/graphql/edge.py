"""The edge JSON: the files Stigg's SDKs read with plain GETs (`baseEdgeUri`), each the
`{"data": ...}` of the GraphQL query it stands for, answered from memory like warm checks.

The Node SDK without its socket reads `entitlements.json` for every check, so the customer's
file is built from the same in-memory snapshot, features and usage as the REST checks."""

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tollgate.customers.models import Customer
from tollgate.entitlements.reads import customer_entitlements
from tollgate.graphql.auth import sdk_principal
from tollgate.graphql.catalog import published_plans
from tollgate.graphql.context import caller_for
from tollgate.graphql.operations import subscriptions_of
from tollgate.graphql.pages import paywall_shape
from tollgate.graphql.shapes import SDK_CONFIGURATION, entitlements_shape, slim_subscription
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


@router.get("/c/{customer_id}/subscriptions.json")
async def customer_subscriptions_file(customer_id: str, request: Request) -> Response:
    """`GetActiveSubscriptionsList`: the customer's live subscriptions, slim."""
    parts = app_components(request.app)
    principal = await sdk_principal(parts, request.headers)
    principal.require_customer(customer_id)
    params = request.query_params
    wanted = params.getlist("resourceIds") or params.getlist("resourceId") or None

    def read(session: Session) -> list[dict[str, Any]]:
        customer = session.scalar(
            select(Customer).where(
                Customer.environment_id == principal.environment_id,
                Customer.ref_id == customer_id,
            )
        )
        if customer is None:
            return []
        return [
            slim_subscription(s) for s in subscriptions_of(session, customer, resource_refs=wanted)
        ]

    listed = await caller_for(principal, parts).read(read)
    return _json({"getActiveSubscriptions": listed})


@router.get("/paywall.json")
@router.get("/p/{product_id}/paywall.json")
async def paywall_file(request: Request, product_id: str | None = None) -> Response:
    """`GetPaywall` without a customer: the public pricing page."""
    parts = app_components(request.app)
    principal = await sdk_principal(parts, request.headers)

    def read(session: Session) -> dict[str, Any]:
        plans = published_plans(
            session, environment_id=principal.environment_id, product_ref=product_id
        )
        return paywall_shape(plans, None, None)

    return _json({"paywall": await caller_for(principal, parts).read(read)})


def _json(data: dict[str, Any]) -> Response:
    return Response(orjson.dumps({"data": data}), media_type="application/json")

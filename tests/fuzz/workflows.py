"""Schemathesis hooks for the stateful run of tests/fuzz/test_openapi.py (SCHEMATHESIS_HOOKS):
they let its scenarios chain real workflows, such as create a customer, provision a
subscription, report usage, check an entitlement, cancel. The per-operation run uses none.

Where scenarios start. Schemathesis starts a scenario at an operation it trusts to succeed
with random data, and distrusts one with an input naming a resource that no operation
creates. Every Tollgate operation but the SDK's has the optional `X-ENVIRONMENT-ID` header,
and customers and subscriptions take ids from outside Tollgate (`couponId`, `billingId`), so
it would keep one start, `GET /api/v1/sdk/features`, and never reach a customer. Here creating
(a POST with no id in its path) and listing start scenarios too.

What requests hold. A random subscription body almost always sets one of the Stigg fields
that Tollgate refuses by name until checkout exists, random plan or feature ids name nothing,
and random `X-CUSTOMER-TOKEN` (or `X-CUSTOMER-KEY`) or `X-ENVIRONMENT-ID` headers are
refused: provisioning would never succeed and no chain would go past it. Requests here
leave those fields and headers out and often use the demo catalog's ids. The per-operation
run still sends everything.
"""

from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi import stateful
from schemathesis.specs.openapi.stateful.dependencies import DependencyGraph

from tollgate.catalog import demo

Operation = APIOperation[Any, Any, Any, Any]
_classify = stateful.classify_root_transitions


def _is_collection(operation: Operation) -> bool:
    return operation.method in ("get", "post") and not operation.path_parameters


def _collections_start_too(
    operations: list[Operation],
    transitions: stateful.ApiTransitions,
    graph: DependencyGraph,
) -> stateful.RootTransitions:
    roots = _classify(operations, transitions, graph)
    roots.reliable |= {
        op.label for op in operations if op.label in roots.fallback and _is_collection(op)
    }
    return roots


stateful.classify_root_transitions = _collections_start_too

# Refused with 422 `not_implemented` when given a value (prices, coupons, checkout).
NOT_IMPLEMENTED = frozenset(
    {
        "appliedCoupon",
        "awaitPaymentConfirmation",
        "budget",
        "charges",
        "checkoutOptions",
        "couponId",
        "minimumSpend",
        "payingCustomerId",
        "priceOverrides",
        "promotionCode",
        "unitQuantity",
    }
)
# A subscription's own `entitlements` are custom ones, refused too; a plan's are its terms.
NOT_IMPLEMENTED_IN_SUBSCRIPTIONS = NOT_IMPLEMENTED | {"entitlements"}
SCOPING_HEADERS = ("X-CUSTOMER-TOKEN", "X-CUSTOMER-KEY", "X-ENVIRONMENT-ID")
KNOWN_VALUES: dict[str, list[str]] = {
    "planId": [plan["id"] for plan, _ in demo.PLANS],
    "addonId": [demo.ADDON["id"]],
    "featureId": [feature["id"] for feature in demo.FEATURES],
    "productId": [demo.PRODUCT],
    "billingCurrency": ["usd", "eur"],
}


def _with_known_values(value: Any, draw: st.DrawFn) -> Any:
    """`value` with each field of KNOWN_VALUES kept or swapped for a value Tollgate knows."""
    if isinstance(value, list):
        return [_with_known_values(item, draw) for item in value]
    if not isinstance(value, dict):
        return value
    changed = {}
    for key, item in value.items():
        choices = KNOWN_VALUES.get(key)
        if choices is not None and isinstance(item, str):
            changed[key] = draw(st.sampled_from([item, *choices]))
        else:
            changed[key] = _with_known_values(item, draw)
    return changed


@st.composite
def _workflow_body(draw: st.DrawFn, body: Any, *, refused: frozenset[str], creates: bool) -> Any:
    if not isinstance(body, dict):
        return _with_known_values(body, draw)
    body = {key: item for key, item in body.items() if key not in refused}
    if creates and isinstance(body.get("id"), str):
        # Generated ids repeat (the same few short strings): most creations would be 409s.
        body["id"] = draw(st.sampled_from([body["id"], f"fuzz-{draw(st.uuids()).hex[:12]}"]))
    return _with_known_values(body, draw)


@schemathesis.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    operation = context.operation
    if operation is None:
        return st.just(body)
    subscription = operation.path.startswith("/api/v1/subscriptions")
    refused = NOT_IMPLEMENTED_IN_SUBSCRIPTIONS if subscription else NOT_IMPLEMENTED
    return _workflow_body(body, refused=refused, creates=_is_collection(operation))


@schemathesis.hook
def map_headers(
    _context: schemathesis.HookContext, headers: dict[str, Any] | None
) -> dict[str, Any] | None:
    if headers is None:
        return None
    return {name: value for name, value in headers.items() if name not in SCOPING_HEADERS}

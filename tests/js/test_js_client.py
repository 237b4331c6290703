"""Stigg's browser SDK, `@stigg/js-client-sdk` (what `@stigg/react-sdk` runs on), in Node
against a live Tollgate: a client key with a customer token, as a page holds them."""

from typing import Any

import httpx
import pytest
import stigg
from sqlalchemy import Engine

from tests.graphql_api.test_edge import secret_of
from tests.js.runner import run_script
from tests.js.test_node_sdk import rest_check
from tests.support.servers import free_port
from tests.support.tenants import Tenant
from tests.support.usage import report, usage
from tollgate.environments.tokens import customer_token


def js_client(plan: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = run_script("js_client.mjs", plan)
    return answer


CHECKS = [
    ("feature-sso", "boolean", None),
    ("feature-seats", "metered", 13),  # 7 taken of 20: exactly the limit
    ("feature-seats", "metered", 14),
    ("feature-api-calls", "metered", 1),
    ("feature-unknown", "boolean", None),
]


@pytest.fixture
def acme(demo_client: stigg.Stigg, demo_tenant: Tenant) -> None:
    demo_client.v1.customers.provision(id="acme", name="Acme")
    demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
    demo_client.v1.customers.provision(id="globex")
    with demo_tenant.http() as http:
        assert report(http, usage("feature-seats", 7)).status_code == 200


def page(engine: Engine, tenant: Tenant, customer: str, token_for: str, **plan: Any) -> Any:
    """What a page of `customer` runs, holding a token signed for `token_for`."""
    return js_client(
        {
            "baseUri": tenant.base_url,
            "apiKey": tenant.client_key,
            "customerId": customer,
            "customerToken": customer_token(token_for, secret_of(engine, tenant)),
            **plan,
        }
    )


@pytest.mark.usefixtures("acme")
def test_checks_and_widget_reads_with_a_customer_token(engine: Engine, demo_tenant: Tenant) -> None:
    checks = [{"featureId": f, "kind": k, "requestedUsage": r} for f, k, r in CHECKS]
    reads = ["paywall", "portal", "subscriptions", "checkout", "customer", "fullSubscriptions"]
    reads += ["coupons", "refresh", "preview", "estimate", "history"]
    answer = page(engine, demo_tenant, "acme", "acme", checks=checks, reads=reads)
    assert answer["initialized"] == "ok"
    with demo_tenant.http() as http:
        for (feature, kind, requested), sdk in zip(CHECKS, answer["checks"], strict=True):
            rest = rest_check(http, "acme", feature, requested)
            assert sdk["isFallback"] is False, feature
            assert sdk["hasAccess"] is rest["isGranted"], feature
            if kind == "metered" and rest["isGranted"]:
                assert sdk["currentUsage"] == rest["currentUsage"], feature
                assert sdk["usageLimit"] == rest["usageLimit"], feature
    found = {name: read.get("ok") for name, read in answer["reads"].items()}
    assert set(found) == set(reads)
    failed = {name: read for name, read in answer["reads"].items() if "ok" not in read}
    assert failed == {}
    assert [p["id"] for p in found["paywall"]["plans"]] == [
        "plan-free",
        "plan-pro",
        "plan-enterprise",
    ]
    assert found["paywall"]["customer"]["id"] == "acme"
    assert [s["planName"] for s in found["portal"]["subscriptions"]] == ["Pro"]
    assert [s["plan"]["planId"] for s in found["subscriptions"]] == ["plan-pro"]
    assert found["checkout"]["plan"]["id"] == "plan-pro"
    assert found["customer"]["name"] == "Acme"
    assert [s["plan"]["id"] for s in found["fullSubscriptions"]] == ["plan-pro"]
    assert found["coupons"] == []
    assert "feature-sso" in {e["feature"]["id"] for e in found["refresh"]}
    assert found["preview"]["isPlanDowngrade"] is False
    assert found["preview"]["immediateInvoice"]["total"]["currency"] == "USD"
    assert found["estimate"]["total"]["amount"] == 0
    assert found["history"]["series"][0]["points"][-1]["value"] == 7


@pytest.mark.usefixtures("acme")
def test_a_token_for_another_customer_reads_nothing(engine: Engine, demo_tenant: Tenant) -> None:
    answer = page(
        engine,
        demo_tenant,
        "globex",
        "acme",
        fallback={"feature-sso": {"hasAccess": False}},
        checks=[{"featureId": "feature-sso", "kind": "boolean"}],
        reads=["portal"],
    )
    assert answer["initialized"] != "ok"
    assert "error" in answer["reads"]["portal"]
    (check,) = answer["checks"]
    assert check["hasAccess"] is False
    # What the SDK was told, as the server says it.
    token = customer_token("acme", secret_of(engine, demo_tenant))
    with httpx.Client(
        base_url=demo_tenant.base_url,
        headers={"X-API-KEY": demo_tenant.client_key, "X-CUSTOMER-KEY": token},
    ) as http:
        assert http.get("/v1/c/globex/entitlements.json").status_code == 403


def test_a_wrong_key_fails_initialization(demo_tenant: Tenant) -> None:
    answer = js_client(
        {
            "baseUri": demo_tenant.base_url,
            "apiKey": "tg_client_wrong",
            "customerId": "acme",
            "checks": [{"featureId": "feature-sso", "kind": "boolean"}],
        }
    )
    assert "Authentication failed" in answer["initialized"]
    assert answer["checks"][0]["hasAccess"] is False


def test_with_the_server_away_checks_answer_their_fallbacks_at_once() -> None:
    """The browser SDK's checks are synchronous: while it still tries to reach an absent
    server (it gives up after about a minute), each answers its fallback at once."""
    away = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    answer = js_client(
        {
            "baseUri": away,
            "apiKey": "tg_client_whatever",
            "customerId": "acme",
            "initTimeoutMs": 2000,
            "fallback": {"feature-sso": {"hasAccess": True}},
            "checks": [
                {"featureId": "feature-sso", "kind": "boolean"},
                {"featureId": "feature-seats", "kind": "metered", "requestedUsage": 1},
            ],
        }
    )
    assert answer["initialized"] != "ok"
    granted, unknown = answer["checks"]
    assert (granted["isFallback"], granted["hasAccess"]) == (True, True)
    assert (unknown["isFallback"], unknown["hasAccess"]) == (True, False)
    assert max(granted["ms"], unknown["ms"]) < 100

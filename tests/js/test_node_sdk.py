"""Stigg's own `@stigg/node-server-sdk` (pinned in tests/js/package-lock.json) against a live
Tollgate, with only its base URL changed: its checks must answer what Tollgate's REST checks
answer for the same customers, and fall back as the SDK promises when the key is wrong or
the server is away."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import stigg

from tests.support.servers import free_port
from tests.support.tenants import Tenant
from tests.support.usage import report, usage

HERE = Path(__file__).parent
SCRIPT = HERE / "node_sdk.mjs"


def node_sdk(plan: dict[str, Any], *, timeout: float = 60) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "@stigg" / "node-server-sdk").is_dir():
        reason = "node or tests/js/node_modules is missing: run `make setup`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must run the JavaScript SDKs' tests")
        pytest.skip(reason)
    finished = subprocess.run(
        [node, str(SCRIPT), json.dumps(plan)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=HERE,
    )
    assert finished.returncode == 0, finished.stderr
    answer: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return answer


# (customer, feature, kind, requested usage): each situation a check can meet.
CHECKS = [
    ("pro", "feature-sso", "boolean", None),
    ("free", "feature-sso", "boolean", None),  # not in the plan
    ("pro", "feature-seats", "metered", 13),  # 7 taken of 20: exactly the limit
    ("pro", "feature-seats", "metered", 14),  # one past it
    ("free", "feature-seats", "metered", 1),  # 3 taken of 3
    ("free", "feature-api-calls", "metered", 1_000),
    ("free", "feature-api-calls", "metered", 1_001),
    ("enterprise", "feature-seats", "metered", 1_000_000),  # unlimited
    ("nobody", "feature-sso", "boolean", None),
    ("archived", "feature-sso", "boolean", None),
    ("unsubscribed", "feature-seats", "metered", 1),
    ("pro", "feature-unknown", "boolean", None),
]


@pytest.fixture
def situations(demo_client: stigg.Stigg, demo_tenant: Tenant) -> None:
    for customer, plan in (("pro", "plan-pro"), ("free", "plan-free")):
        demo_client.v1.customers.provision(id=customer)
        demo_client.v1.subscriptions.provision(customer_id=customer, plan_id=plan)
    demo_client.v1.customers.provision(id="enterprise")
    demo_client.v1.subscriptions.provision(customer_id="enterprise", plan_id="plan-enterprise")
    for customer in ("archived", "unsubscribed"):
        demo_client.v1.customers.provision(id=customer)
    demo_client.v1.subscriptions.provision(customer_id="archived", plan_id="plan-pro")
    demo_client.v1.customers.archive("archived")
    with demo_tenant.http() as http:
        assert report(http, usage("feature-seats", 7, customerId="pro")).status_code == 200
        assert report(http, usage("feature-seats", 3, customerId="free")).status_code == 200


def rest_check(http: httpx.Client, customer: str, feature: str, requested: int | None) -> Any:
    params: dict[str, Any] = {"featureId": feature}
    if requested is not None:
        params["requestedUsage"] = requested
    answer = http.get(f"/api/v1/customers/{customer}/entitlements/check", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


@pytest.mark.usefixtures("situations")
def test_checks_answer_as_tollgates_own(demo_tenant: Tenant) -> None:
    sdk = node_sdk(
        {
            "baseUri": demo_tenant.base_url,
            "baseEdgeUri": demo_tenant.base_url,
            "apiKey": demo_tenant.server_key,
            "checks": [
                {"customerId": c, "featureId": f, "kind": k, "requestedUsage": r}
                for c, f, k, r in CHECKS
            ],
        }
    )
    assert sdk["initialized"] == "ok"
    with demo_tenant.http() as http:
        for (customer, feature, kind, requested), answer in zip(CHECKS, sdk["checks"], strict=True):
            rest = rest_check(http, customer, feature, requested)
            situation = f"{customer} / {feature} / {kind} {requested}"
            assert answer["isFallback"] is False, situation
            assert answer["hasAccess"] is rest["isGranted"], situation
            if rest["isGranted"] and kind != "boolean" and not rest["hasUnlimitedUsage"]:
                assert answer["usageLimit"] == rest["usageLimit"], situation
            if kind == "metered" and rest["isGranted"]:
                assert answer["currentUsage"] == rest["currentUsage"], situation
            # The SDK names its own reasons from the list it reads: a customer with nothing
            # listed (unknown, archived, without a subscription) is "CustomerNotFound" to it.
            expected = rest["accessDeniedReason"]
            if expected in ("CustomerIsArchived", "NoActiveSubscription"):
                expected = "CustomerNotFound"
            if expected == "FeatureNotFound":
                expected = "NoFeatureEntitlementInSubscription"
            assert answer["accessDeniedReason"] == (expected if not rest["isGranted"] else None), (
                situation
            )


def test_a_wrong_key_fails_initialization_and_checks_fall_back(demo_tenant: Tenant) -> None:
    sdk = node_sdk(
        {
            "baseUri": demo_tenant.base_url,
            "baseEdgeUri": demo_tenant.base_url,
            "apiKey": "tg_server_wrong",
            "fallback": {"feature-sso": {"hasAccess": True}},
            "checks": [{"customerId": "pro", "featureId": "feature-sso", "kind": "boolean"}],
        }
    )
    assert "Authentication failed" in sdk["initialized"]
    (check,) = sdk["checks"]
    assert check["isFallback"] is True
    assert check["hasAccess"] is True


def test_with_the_server_away_checks_answer_their_fallbacks_in_time() -> None:
    away = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sdk = node_sdk(
        {
            "baseUri": away,
            "baseEdgeUri": away,
            "apiKey": "tg_server_whatever",
            "waitForInitialization": False,
            "fallback": {"feature-sso": {"hasAccess": True}},
            "checks": [
                {"customerId": "pro", "featureId": "feature-sso", "kind": "boolean"},
                {"customerId": "pro", "featureId": "feature-seats", "kind": "metered"},
            ],
        },
        timeout=90,
    )
    granted, unknown = sdk["checks"]
    assert granted["isFallback"] is True
    assert granted["hasAccess"] is True
    assert unknown["isFallback"] is True
    assert unknown["hasAccess"] is False
    # The SDK's own timeouts bound the wait (its entitlement requests give up after 10 s).
    assert max(granted["ms"], unknown["ms"]) < 30_000

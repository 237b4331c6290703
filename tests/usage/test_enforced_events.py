"""Enforced events (`enforceLimit` on POST /api/v1/events): stored only within the limit.

A UNIQUE meter's value already counted in the period passes and changes nothing; a new one
passes only while the count stays within the limit, decided under the counters' lock."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support import Tenant, factories
from tests.support.usage import check

pytestmark = pytest.mark.usefixtures("acme")
LOGINS = "feature-logins"  # UNIQUE user_id over "login" events
CALLS = "feature-api-calls"  # the demo's meter: COUNT of api_call events, 1,000 a month


def unique_users(limit: int | None = 2, **terms: Any) -> dict[str, Any]:
    grant: dict[str, Any] = {"id": LOGINS, "type": "FEATURE", "resetPeriod": "MONTH", **terms}
    if limit is None:
        grant["hasUnlimitedUsage"] = True
    else:
        grant["usageLimit"] = limit
    return grant


@pytest.fixture
def logins(http: httpx.Client, acme: str) -> None:
    """`acme` on a plan with `LOGINS` at 2 a month."""
    subscribe(http, "plan-logins", unique_users(2))


def subscribe(http: httpx.Client, plan: str, grant: dict[str, Any]) -> None:
    """`acme` on a new plan `plan` granting `grant` (the feature made on first use)."""
    if http.get(f"/api/v1/features/{LOGINS}").status_code == 404:
        meter = {
            "aggregation": {"function": "UNIQUE", "field": "user_id"},
            "filters": [
                {"conditions": [{"field": "eventName", "operation": "EQUALS", "value": "login"}]}
            ],
        }
        factories.feature(http, id=LOGINS, meterType="INCREMENTAL", meter=meter)
    factories.plan(http, id=plan, entitlements=[grant], publish=True)
    subscribed = http.post("/api/v1/subscriptions", json={"customerId": "acme", "planId": plan})
    assert subscribed.status_code == 200, subscribed.text


def send(http: httpx.Client, *events: dict[str, Any]) -> httpx.Response:
    return http.post("/api/v1/events", json={"events": list(events)})


def login(user: str, key: str, **fields: Any) -> dict[str, Any]:
    return {
        "customerId": "acme",
        "eventName": "login",
        "idempotencyKey": key,
        "dimensions": {"user_id": user},
        "enforceLimit": True,
        **fields,
    }


def used(http: httpx.Client, feature: str = LOGINS) -> float:
    return float(check(http, feature)["currentUsage"])


@pytest.mark.usefixtures("logins")
class TestUniqueValues:
    def test_new_values_pass_while_they_fit(self, http: httpx.Client) -> None:
        sent = send(http, login("ann", "k1"), login("bob", "k2"))
        assert sent.status_code == 200, sent.text
        assert used(http) == 2

    def test_a_new_value_past_the_limit_refuses_the_batch(self, http: httpx.Client) -> None:
        send(http, login("ann", "k1"), login("bob", "k2"))
        refused = send(http, login("ann", "k3"), login("cy", "k4"))
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "usage_limit_exceeded"
        assert error["field"] == "events[1]"
        detail = error["details"][0]
        assert detail["accessDeniedReason"] == "RequestedUsageExceedingLimit"
        assert (detail["currentUsage"], detail["usageLimit"]) == (2, 2)
        assert (detail["customerId"], detail["featureId"]) == ("acme", LOGINS)
        assert "3 of a limit of 2" in error["message"]
        # Nothing of the batch was stored: its keys are still free.
        again = send(http, {**login("ann", "k3"), "enforceLimit": False})
        assert again.json()["data"] == {"accepted": 1, "duplicates": 0}

    def test_a_value_counted_this_period_passes_at_the_limit(self, http: httpx.Client) -> None:
        send(http, login("ann", "k1"), login("bob", "k2"))
        sent = send(http, login("ann", "k3"), login("bob", "k4"))
        assert sent.status_code == 200, sent.text
        assert used(http) == 2

    def test_one_batch_may_fill_the_limit_but_not_pass_it(self, http: httpx.Client) -> None:
        refused = send(http, login("ann", "k1"), login("bob", "k2"), login("cy", "k3"))
        assert refused.status_code == 409
        assert refused.json()["error"]["field"] == "events[2]"
        assert used(http) == 0

    def test_unenforced_events_count_past_the_limit(self, http: httpx.Client) -> None:
        users = [{**login(u, f"k-{u}"), "enforceLimit": False} for u in ("a", "b", "c")]
        assert send(http, *users).status_code == 200
        assert used(http) == 3


class TestOtherTerms:
    def test_soft_limits_never_refuse(self, http: httpx.Client) -> None:
        subscribe(http, "plan-soft", unique_users(1, hasSoftLimit=True))
        assert send(http, login("ann", "k1"), login("bob", "k2")).status_code == 200
        assert used(http) == 2

    def test_unlimited_usage_never_refuses(self, http: httpx.Client) -> None:
        subscribe(http, "plan-unlimited", unique_users(None))
        assert send(http, *[login(f"u{i}", f"k{i}") for i in range(5)]).status_code == 200

    def test_no_entitlement_refuses_with_its_reason(self, http: httpx.Client) -> None:
        subscribe(http, "plan-logins", unique_users(2))
        http.post("/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-free"})
        refused = send(http, login("ann", "k1"))
        assert refused.status_code == 409
        reason = refused.json()["error"]["details"][0]["accessDeniedReason"]
        assert reason == "NoFeatureEntitlementInSubscription"

    def test_counting_meters_are_enforced_too(self, http: httpx.Client) -> None:
        calls = [
            {"customerId": "acme", "eventName": "api_call", "idempotencyKey": f"c{i}"}
            for i in range(999)
        ]
        assert send(http, *calls).status_code == 200
        last = {"customerId": "acme", "eventName": "api_call", "enforceLimit": True}
        assert send(http, {**last, "idempotencyKey": "c-last"}).status_code == 200
        assert send(http, {**last, "idempotencyKey": "c-over"}).status_code == 409
        assert used(http, CALLS) == 1_000

    def test_an_event_no_meter_counts_passes(self, http: httpx.Client) -> None:
        other = {"customerId": "acme", "eventName": "page_view", "idempotencyKey": "p1"}
        assert send(http, {**other, "enforceLimit": True}).status_code == 200


class TestContention:
    @pytest.mark.usefixtures("logins")
    def test_racing_new_values_at_the_limit_let_exactly_one_in(
        self, http: httpx.Client, demo_tenant: Tenant
    ) -> None:
        send(http, login("ann", "k0"))  # one place left

        def arrive(n: int) -> int:
            with demo_tenant.http() as own:
                return send(own, login(f"user-{n}", f"race-{n}")).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(arrive, range(8)))
        assert sorted(statuses) == [200] + [409] * 7
        assert used(http) == 2

"""Raw events: stored once per key, counted by matching meters at once, over HTTP."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
import stigg

from tests.support import Clocked, factories
from tests.support.usage import check, customer

pytestmark = pytest.mark.usefixtures("acme")
CALLS = "feature-api-calls"  # the demo's meter: COUNT of events named api_call


def send(http: httpx.Client, *events: dict[str, Any]) -> httpx.Response:
    return http.post("/api/v1/events", json={"events": list(events)})


def event(key: str, name: str = "api_call", **fields: Any) -> dict[str, Any]:
    return {"customerId": "acme", "eventName": name, "idempotencyKey": key, **fields}


class TestCounting:
    def test_matching_events_count_at_once(self, http: httpx.Client) -> None:
        sent = send(http, event("e1"), event("e2"), event("e3", name="login"))
        assert sent.status_code == 200, sent.text
        assert sent.json()["data"] == {"accepted": 3, "duplicates": 0}
        assert check(http, CALLS)["currentUsage"] == 2

    def test_a_key_seen_before_is_not_counted_again(self, http: httpx.Client) -> None:
        send(http, event("e1"), event("e1"))
        again = send(http, event("e1"), event("e2"))
        assert again.json()["data"] == {"accepted": 1, "duplicates": 1}
        assert check(http, CALLS)["currentUsage"] == 2

    def test_keys_are_forgotten_after_seven_days(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        send(http, event("e1"))
        clocked.clock.advance(timedelta(days=7, seconds=1))
        send(http, event("e1"))
        assert check(http, CALLS)["currentUsage"] in (1, 2)  # 2 unless the month turned
        assert send(http, event("e1")).json()["data"]["duplicates"] == 1

    def test_an_event_dated_in_an_earlier_period(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        start = check(http, CALLS)["usagePeriodStart"]
        clocked.clock.advance(timedelta(days=40))
        send(http, event("old", timestamp=start), event("new"))
        assert check(http, CALLS)["currentUsage"] == 1

    def test_the_stigg_client(self, demo_client: stigg.Stigg, http: httpx.Client) -> None:
        demo_client.v1.events.report(
            events=[{"customer_id": "acme", "event_name": "api_call", "idempotency_key": "s1"}]
        )
        assert check(http, CALLS)["currentUsage"] == 1

    def test_a_limit_is_reached_by_events(self, http: httpx.Client) -> None:
        send(http, *[event(f"k{i}") for i in range(1_000)])
        answer = check(http, CALLS)
        assert (answer["currentUsage"], answer["isGranted"]) == (1_000, False)
        assert answer["accessDeniedReason"] == "RequestedUsageExceedingLimit"


class TestKeysAreBoundToTheirEvent:
    """A key stands for one event: used again for another, it is refused (409)."""

    def test_a_retry_without_its_timestamp_is_a_duplicate(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        send(http, event("e1", timestamp="2026-01-05T09:00:00Z", dimensions={"n": 1}))
        clocked.clock.advance(timedelta(minutes=3))
        again = send(http, event("e1", dimensions={"n": 1.0}))
        assert again.json()["data"] == {"accepted": 0, "duplicates": 1}
        assert check(http, CALLS)["currentUsage"] == 1

    def test_another_customer_is_refused(self, http: httpx.Client) -> None:
        customer(http, "bravo")
        send(http, event("e1"))
        refused = send(
            http, {**event("e2"), "customerId": "bravo"}, {**event("e1"), "customerId": "bravo"}
        )
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert (error["code"], error["field"]) == (
            "idempotency_key_reused",
            "events[1].idempotencyKey",
        )
        assert error["message"] == (
            "events[1].idempotencyKey: idempotency key 'e1' already stands for another event "
            "(customer 'acme', event 'api_call'); this one differs in customerId, so the "
            "batch was not stored. Send a different event under a key of its own"
        )
        (detail,) = error["details"]
        assert detail["idempotencyKey"] == "e1"
        assert detail["firstUsedFor"] == {
            "customerId": "acme",
            "eventName": "api_call",
            "resourceId": None,
        }
        assert detail["differs"] == ["customerId"]
        assert check(http, CALLS, customer_id="bravo")["currentUsage"] == 0  # e2 neither
        assert check(http, CALLS)["currentUsage"] == 1

    @pytest.mark.parametrize(
        ("changed", "differs"),
        [
            ({"eventName": "login"}, "eventName"),
            ({"dimensions": {"route": "/a"}}, "dimensions"),
            ({"resourceId": "site-1"}, "resourceId"),
        ],
    )
    def test_a_different_event_is_refused(
        self, http: httpx.Client, changed: dict[str, object], differs: str
    ) -> None:
        send(http, event("e1"))
        refused = send(http, {**event("e1"), **changed})
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["details"][0]["differs"] == [differs]
        assert check(http, CALLS)["currentUsage"] == 1

    def test_two_events_under_one_key_in_a_batch_are_refused(self, http: httpx.Client) -> None:
        refused = send(http, event("e1"), event("e2"), event("e1", name="login"))
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["field"] == "events[2].idempotencyKey"
        assert "events[0]" in error["message"]
        assert check(http, CALLS)["currentUsage"] == 0


class TestMeters:
    @pytest.mark.parametrize(
        ("function", "expected"),
        [("SUM", 4_500), ("MAX", 2_000), ("MIN", 500), ("AVG", 1_125), ("UNIQUE", 3)],
    )
    def test_each_aggregation(self, http: httpx.Client, function: str, expected: float) -> None:
        factories.feature(
            http,
            id="feature-bytes",
            meterType="INCREMENTAL",
            meter={
                "aggregation": {"function": function, "field": "bytes"},
                "filters": [
                    {"conditions": [{"field": "eventName", "operation": "EQUALS", "value": "io"}]}
                ],
            },
        )
        grant = {"id": "feature-bytes", "type": "FEATURE", "hasUnlimitedUsage": True}
        factories.plan(http, id="plan-io", entitlements=[grant], publish=True)
        subscribed = http.post(
            "/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-io"}
        )
        assert subscribed.status_code == 200, subscribed.text
        sizes = [1_000, 2_000, 500, 1_000]
        send(
            http,
            *[event(f"io{i}", name="io", dimensions={"bytes": b}) for i, b in enumerate(sizes)],
            event("other", name="login", dimensions={"bytes": 9_999}),
        )
        assert check(http, "feature-bytes")["currentUsage"] == expected

    def test_unit_transformation_rounds_as_asked(self, http: httpx.Client) -> None:
        factories.feature(
            http,
            id="feature-gb",
            meterType="FLUCTUATING",
            meter={
                "aggregation": {"function": "SUM", "field": "bytes"},
                "filters": [{"conditions": [{"field": "bytes", "operation": "IS_NOT_NULL"}]}],
            },
            unitTransformation={"divide": 1_000, "round": "UP"},
        )
        grant = {"id": "feature-gb", "type": "FEATURE", "usageLimit": 10}
        factories.plan(http, id="plan-gb", entitlements=[grant], publish=True)
        http.post("/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-gb"})
        send(http, event("b1", name="upload", dimensions={"bytes": 2_500}))
        assert check(http, "feature-gb")["currentUsage"] == 3


class TestRefused:
    def test_unknown_customers_refuse_the_batch(self, http: httpx.Client) -> None:
        refused = send(http, event("e1"), {**event("e2"), "customerId": "nobody"})
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "events[1].customerId"
        assert check(http, CALLS)["currentUsage"] == 0

    def test_an_idempotency_key_is_required(self, http: httpx.Client) -> None:
        refused = send(http, {"customerId": "acme", "eventName": "api_call"})
        assert refused.status_code == 422
        assert "idempotencyKey" in refused.json()["error"]["field"]

"""Usage reports: DELTA and SET, idempotency, all-or-nothing batches, periods."""

from datetime import datetime, timedelta

import httpx
import pytest
import stigg

from tests.support import Clocked
from tests.support.usage import check, customer, report, usage

pytestmark = pytest.mark.usefixtures("acme")
USERS = "feature-active-users"
SEATS = "feature-seats"


class TestDeltaAndSet:
    def test_deltas_add_up_and_checks_see_them(self, http: httpx.Client) -> None:
        first = report(http, usage(USERS, 30))
        assert first.status_code == 200, first.text
        assert first.json()["data"][0]["currentUsage"] == 30
        second = report(http, usage(USERS, 12.5), usage(USERS, 7.5))
        assert [m["currentUsage"] for m in second.json()["data"]] == [42.5, 50]
        answer = check(http, USERS, requestedUsage=50)
        assert (answer["currentUsage"], answer["isGranted"]) == (50, True)
        answer = check(http, USERS, requestedUsage=51)
        assert answer["isGranted"] is False
        assert answer["accessDeniedReason"] == "RequestedUsageExceedingLimit"

    def test_set_replaces_the_total(self, http: httpx.Client) -> None:
        report(http, usage(SEATS, 2))
        answered = report(http, usage(SEATS, 1, updateBehavior="SET"), usage(SEATS, 1))
        assert [m["currentUsage"] for m in answered.json()["data"]] == [1, 2]
        assert check(http, SEATS)["currentUsage"] == 2

    def test_fractions_are_kept_to_five_places(self, http: httpx.Client) -> None:
        answered = report(http, usage(USERS, 0.1), usage(USERS, 0.2), usage(USERS, 1.000004))
        assert answered.json()["data"][-1]["currentUsage"] == 1.3

    def test_the_v2_shape(self, http: httpx.Client) -> None:
        answered = report(http, usage(USERS, 3), version=2)
        assert answered.status_code == 200, answered.text
        (measurement,) = answered.json()["data"]["usages"]
        assert measurement["currentUsage"] == 3
        assert measurement["nextResetDate"] == measurement["usagePeriodEnd"]

    def test_the_stigg_client(self, demo_client: stigg.Stigg) -> None:
        with pytest.warns(
            DeprecationWarning, match="deprecated"
        ):  # the client steers to v2, but v1 still works
            answered = demo_client.v1.usage.report(
                usages=[{"customer_id": "acme", "feature_id": USERS, "value": 4}]
            )
        assert answered.data[0].current_usage == 4
        assert answered.data[0].usage_period_end is not None
        v2 = demo_client.v2.usage.report(
            usages=[{"customer_id": "acme", "feature_id": USERS, "value": 1}]
        )
        assert v2.data.usages[0].current_usage == 5


class TestIdempotency:
    def test_a_retry_gets_the_original_answer(self, http: httpx.Client) -> None:
        first = report(http, usage(USERS, 5, idempotencyKey="k-1"))
        report(http, usage(USERS, 2))
        retry = report(http, usage(USERS, 5, idempotencyKey="k-1"))
        assert retry.json() == first.json()
        assert check(http, USERS)["currentUsage"] == 7

    def test_a_key_twice_in_one_batch_counts_once(self, http: httpx.Client) -> None:
        answered = report(
            http, usage(USERS, 5, idempotencyKey="k-2"), usage(USERS, 5, idempotencyKey="k-2")
        )
        data = answered.json()["data"]
        assert data[0] == data[1]
        assert check(http, USERS)["currentUsage"] == 5

    def test_keys_are_forgotten_after_seven_days(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        report(http, usage(SEATS, 1, idempotencyKey="k-3"))
        clocked.clock.advance(timedelta(days=7, seconds=1))
        report(http, usage(SEATS, 1, idempotencyKey="k-3"))
        assert check(http, SEATS)["currentUsage"] == 2

    def test_a_retry_may_spell_its_dimensions_differently(self, http: httpx.Client) -> None:
        first = report(http, usage(USERS, 5, idempotencyKey="k-4", dimensions={"a": 1, "b": "x"}))
        retry = report(
            http, usage(USERS, 5.000001, idempotencyKey="k-4", dimensions={"b": "x", "a": 1.0})
        )
        assert retry.status_code == 200, retry.text
        assert retry.json() == first.json()
        assert check(http, USERS)["currentUsage"] == 5


class TestKeysAreBoundToTheirReport:
    """A key stands for one report: used again for anything else, it is refused (409)."""

    def test_another_customer_is_refused_and_sees_nothing_of_the_first(
        self, http: httpx.Client
    ) -> None:
        customer(http, "bravo")
        first = report(http, usage(USERS, 5, idempotencyKey="k-1"))
        assert first.status_code == 200, first.text
        refused = report(
            http,
            usage(USERS, 1, customerId="bravo", idempotencyKey="k-2"),
            usage(USERS, 5, customerId="bravo", idempotencyKey="k-1"),
        )
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "idempotency_key_reused"
        assert error["field"] == "usages[1].idempotencyKey"
        assert error["message"] == (
            "usages[1].idempotencyKey: idempotency key 'k-1' already stands for another report "
            f"(customer 'acme', feature '{USERS}'); this one differs in customerId, so the "
            "batch was not counted. Send a different report under a key of its own"
        )
        (detail,) = error["details"]
        assert detail["idempotencyKey"] == "k-1"
        assert detail["firstUsedFor"] == {
            "customerId": "acme",
            "featureId": USERS,
            "resourceId": None,
        }
        assert detail["differs"] == ["customerId"]
        assert first.json()["data"][0]["id"] not in refused.text
        assert check(http, USERS, customer_id="bravo")["currentUsage"] == 0  # k-2 neither
        assert check(http, USERS)["currentUsage"] == 5

    @pytest.mark.parametrize(
        ("changed", "differs"),
        [
            ({"featureId": SEATS}, "featureId"),
            ({"value": 6}, "value"),
            ({"updateBehavior": "SET"}, "updateBehavior"),
            ({"dimensions": {"region": "eu"}}, "dimensions"),
            ({"resourceId": "site-1"}, "resourceId"),
        ],
    )
    def test_a_different_report_is_refused(
        self, http: httpx.Client, changed: dict[str, object], differs: str
    ) -> None:
        site = {"customerId": "acme", "planId": "plan-free", "resourceId": "site-1"}
        assert http.post("/api/v1/subscriptions", json=site).status_code == 200
        report(http, usage(USERS, 5, idempotencyKey="k-1"))
        refused = report(http, {**usage(USERS, 5, idempotencyKey="k-1"), **changed}, version=2)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["details"][0]["differs"] == [differs]
        assert check(http, USERS)["currentUsage"] == 5
        assert check(http, SEATS)["currentUsage"] == 0

    def test_two_reports_under_one_key_in_a_batch_are_refused(self, http: httpx.Client) -> None:
        refused = report(
            http,
            usage(USERS, 5, idempotencyKey="k-1"),
            usage(USERS, 1),
            usage(USERS, 6, idempotencyKey="k-1"),
        )
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert (error["code"], error["field"]) == (
            "idempotency_key_reused",
            "usages[2].idempotencyKey",
        )
        assert "usages[0]" in error["message"]
        assert check(http, USERS)["currentUsage"] == 0


class TestRefused:
    @pytest.mark.parametrize(
        ("bad", "field", "words"),
        [
            (usage(USERS, 1, customerId="nobody"), "usages[1].customerId", "not found"),
            (usage("feature-nope", 1), "usages[1].featureId", "not found"),
            (usage("feature-sso", 1), "usages[1].featureId", "not metered"),
            (usage("feature-api-calls", 1), "usages[1].featureId", "/api/v1/events"),
            (usage(USERS, 2**53), "usages[1].value", "beyond"),
            (usage(USERS, 2**36 + 0.5), "usages[1].value", "fraction"),
            (usage(SEATS, -1, updateBehavior="SET"), "usages[1].value", "negative"),
            (usage(SEATS, -1), "usages[1].value", "below zero"),
            (usage(USERS, 1, resourceId="site-9"), "usages[1].resourceId", "no resource"),
        ],
    )
    def test_a_bad_item_refuses_the_whole_batch(
        self, http: httpx.Client, bad: dict[str, object], field: str, words: str
    ) -> None:
        refused = report(http, usage(USERS, 1), bad)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["field"] == field
        assert words in error["message"]
        assert check(http, USERS)["currentUsage"] == 0

    def test_every_bad_item_is_named(self, http: httpx.Client) -> None:
        refused = report(http, usage("feature-nope", 1), usage(USERS, 1, customerId="nobody"))
        fields = [d["field"] for d in refused.json()["error"]["details"]]
        assert fields == ["usages[0].featureId", "usages[1].customerId"]

    def test_an_archived_customer(self, http: httpx.Client) -> None:
        assert http.post("/api/v1/customers/acme/archive").status_code == 200
        refused = report(http, usage(USERS, 1))
        assert refused.status_code == 422
        assert "archived" in refused.json()["error"]["message"]


class TestPeriods:
    def test_a_new_month_starts_from_zero(self, http: httpx.Client, clocked: Clocked) -> None:
        report(http, usage(USERS, 60), usage(SEATS, 2))
        before = check(http, USERS)
        clocked.clock.set(datetime.fromisoformat(before["usagePeriodEnd"]))
        after = check(http, USERS)
        assert after["currentUsage"] == 0
        assert after["usagePeriodStart"] == before["usagePeriodEnd"]
        assert check(http, SEATS)["currentUsage"] == 2  # seats never reset

    def test_a_report_dated_last_month_counts_there(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        start = check(http, USERS)["usagePeriodStart"]
        clocked.clock.advance(timedelta(days=40))
        report(http, usage(USERS, 9, createdAt=start))
        assert check(http, USERS)["currentUsage"] == 0

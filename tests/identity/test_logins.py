"""POST /api/v1/integrations/auth0/logins: provision, subscribe and count a login, in one
transaction, idempotent and race-free at the limit."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.identity.conftest import MAU, TEAM_LIMIT, decided, login_body, report_login
from tests.support import Clocked, Tenant, factories
from tests.support.usage import check


def usage_of(http: httpx.Client, customer: str) -> float:
    return float(check(http, MAU, customer_id=customer)["currentUsage"])


def subscriptions_of(http: httpx.Client, customer: str) -> list[dict[str, Any]]:
    found = http.get("/api/v1/subscriptions", params={"customerId": customer})
    assert found.status_code == 200, found.text
    return list(found.json()["data"])


def fill(http: httpx.Client, organization: str, users: int) -> None:
    for n in range(users):
        body = login_body(f"auth0|u{n}", f"fill-{n}", organization=organization, mode="B2B")
        assert decided(http, body)["decision"] == "ALLOW"


class TestFirstLogin:
    def test_a_new_user_becomes_a_customer_on_its_plan_and_is_counted(
        self, http: httpx.Client
    ) -> None:
        answer = decided(http, login_body("auth0|ann", "t1"))
        assert (answer["decision"], answer["customerId"], answer["reason"]) == (
            "ALLOW",
            "auth0|ann",
            None,
        )
        (customer,) = answer["customers"]
        assert (customer["kind"], customer["isNew"]) == ("USER", True)
        assert customer["activeUsers"] == {
            "usage": 1,
            "usageLimit": TEAM_LIMIT,
            "hasUnlimitedUsage": False,
            "hasSoftLimit": False,
            "isNewActiveUser": True,
            "counted": True,
        }
        (subscription,) = subscriptions_of(http, "auth0|ann")
        assert (subscription["id"], subscription["planId"]) == (
            customer["subscriptionId"],
            "plan-team",
        )
        stored = http.get("/api/v1/customers/auth0|ann").json()["data"]
        assert (stored["email"], stored["name"]) == ("ann@example.com", "auth0|ann")
        assert usage_of(http, "auth0|ann") == 1

    def test_an_email_a_customer_may_not_hold_is_left_out(self, http: httpx.Client) -> None:
        body = login_body("auth0|ann", "t1")
        body["user"]["email"] = "ann at example"  # Auth0 keeps what its connection gave
        assert decided(http, body)["decision"] == "ALLOW"
        assert http.get("/api/v1/customers/auth0|ann").json()["data"]["email"] is None

    def test_an_existing_customer_is_not_subscribed_again(self, http: httpx.Client) -> None:
        http.post("/api/v1/customers", json={"id": "org_acme"})
        http.post("/api/v1/subscriptions", json={"customerId": "org_acme", "planId": "plan-pro"})
        answer = decided(http, login_body("auth0|ann", "t1", organization="org_acme", mode="B2B"))
        assert answer["customers"][0]["isNew"] is False
        assert answer["customers"][0]["subscriptionId"] is None
        assert [s["planId"] for s in subscriptions_of(http, "org_acme")] == ["plan-pro"]
        assert answer["customers"][0]["activeUsers"]["usageLimit"] == 1_000

    def test_both_mode_counts_the_user_and_the_organization(self, http: httpx.Client) -> None:
        answer = decided(http, login_body("auth0|ann", "t1", organization="org_a", mode="BOTH"))
        assert [(c["customerId"], c["kind"]) for c in answer["customers"]] == [
            ("auth0|ann", "USER"),
            ("org_a", "ORGANIZATION"),
        ]
        assert answer["customerId"] == "org_a"
        assert (usage_of(http, "auth0|ann"), usage_of(http, "org_a")) == (1, 1)

    def test_b2c_mode_leaves_the_organization_alone(self, http: httpx.Client) -> None:
        decided(http, login_body("auth0|ann", "t1", organization="org_a", mode="B2C"))
        assert http.get("/api/v1/customers/org_a").status_code == 404

    def test_a_customer_without_a_plan_is_created_bare(self, http: httpx.Client) -> None:
        body = login_body("auth0|ann", "t1", plans={}, enforceLimit=False)
        answer = decided(http, body)
        assert answer["customers"][0]["subscriptionId"] is None
        assert subscriptions_of(http, "auth0|ann") == []


class TestCounting:
    def test_a_user_is_counted_once_a_month(self, http: httpx.Client, clocked: Clocked) -> None:
        decided(http, login_body("auth0|ann", "t1"))
        again = decided(http, login_body("auth0|ann", "t2"))
        assert again["customers"][0]["activeUsers"]["isNewActiveUser"] is False
        assert usage_of(http, "auth0|ann") == 1
        clocked.clock.advance(timedelta(days=32))
        later = decided(http, login_body("auth0|ann", "t3"))
        assert later["customers"][0]["activeUsers"]["isNewActiveUser"] is True
        assert usage_of(http, "auth0|ann") == 1

    def test_a_late_login_counts_in_the_period_it_happened_in(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        fill(http, "org_a", 1)
        happened = clocked.clock.now() + timedelta(days=1)
        clocked.clock.advance(timedelta(days=32))
        late = login_body(
            "auth0|late",
            "late-1",
            organization="org_a",
            mode="B2B",
            loggedInAt=happened.isoformat(),
        )
        assert decided(http, late)["customers"][0]["activeUsers"]["usage"] == 2
        assert usage_of(http, "org_a") == 0  # this month is untouched

    def test_a_login_dated_in_the_future_is_refused(self, http: httpx.Client) -> None:
        body = login_body("auth0|ann", "t1", loggedInAt="2030-01-01T00:00:00Z")
        refused = report_login(http, body)
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "loggedInAt"


class TestLimit:
    def test_a_new_user_past_the_limit_is_denied_and_not_counted(self, http: httpx.Client) -> None:
        fill(http, "org_a", TEAM_LIMIT)
        denied = decided(http, login_body("auth0|new", "t9", organization="org_a", mode="B2B"))
        assert (denied["decision"], denied["reason"]) == ("DENY", "RequestedUsageExceedingLimit")
        assert "limit of 3 active users" in denied["message"]
        figures = denied["customers"][0]["activeUsers"]
        assert (figures["usage"], figures["usageLimit"], figures["counted"]) == (3, 3, False)
        assert usage_of(http, "org_a") == TEAM_LIMIT
        known = decided(http, login_body("auth0|u0", "t10", organization="org_a", mode="B2B"))
        assert known["decision"] == "ALLOW"

    def test_the_next_month_lets_the_new_user_in(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        fill(http, "org_a", TEAM_LIMIT)
        clocked.clock.advance(timedelta(days=32))
        answer = decided(http, login_body("auth0|new", "t9", organization="org_a", mode="B2B"))
        assert answer["decision"] == "ALLOW"

    def test_without_enforcement_the_login_passes_and_counts(self, http: httpx.Client) -> None:
        fill(http, "org_a", TEAM_LIMIT)
        body = login_body("auth0|new", "t9", organization="org_a", mode="B2B", enforceLimit=False)
        assert decided(http, body)["decision"] == "ALLOW"
        assert usage_of(http, "org_a") == TEAM_LIMIT + 1

    def test_only_the_active_users_limit_denies_a_login(self, http: httpx.Client) -> None:
        meter = {
            "aggregation": {"function": "COUNT"},
            "filters": [
                {
                    "conditions": [
                        {"field": "eventName", "operation": "EQUALS", "value": "auth0-login"}
                    ]
                }
            ],
        }
        factories.feature(http, id="feature-logins", meterType="INCREMENTAL", meter=meter)
        grants = [
            {"id": MAU, "type": "FEATURE", "usageLimit": TEAM_LIMIT, "resetPeriod": "MONTH"},
            {"id": "feature-logins", "type": "FEATURE", "usageLimit": 1, "resetPeriod": "MONTH"},
        ]
        factories.plan(http, id="plan-counted", entitlements=grants, publish=True)
        plans = {"organization": "plan-counted"}
        for n in range(3):  # three logins of one user: past feature-logins' limit of 1
            body = login_body("auth0|ann", f"c{n}", organization="org_c", mode="B2B", plans=plans)
            assert decided(http, body)["decision"] == "ALLOW"
        assert check(http, "feature-logins", customer_id="org_c")["currentUsage"] == 3

    def test_unlimited_plans_never_deny(self, http: httpx.Client) -> None:
        plans = {"organization": "plan-enterprise"}
        for n in range(5):
            body = login_body(f"auth0|u{n}", f"e{n}", organization="org_e", mode="B2B", plans=plans)
            assert decided(http, body)["decision"] == "ALLOW"

    def test_a_customer_without_a_subscription_is_denied_with_the_reason(
        self, http: httpx.Client
    ) -> None:
        http.post("/api/v1/customers", json={"id": "org_bare"})
        denied = decided(http, login_body("auth0|ann", "t1", organization="org_bare", mode="B2B"))
        assert (denied["decision"], denied["reason"]) == ("DENY", "NoActiveSubscription")

    def test_one_denied_customer_denies_a_both_mode_login_and_counts_neither(
        self, http: httpx.Client
    ) -> None:
        fill(http, "org_a", TEAM_LIMIT)
        body = login_body("auth0|new", "t9", organization="org_a", mode="BOTH")
        assert decided(http, body)["decision"] == "DENY"
        assert usage_of(http, "auth0|new") == 0  # created, kept, and not counted
        assert usage_of(http, "org_a") == TEAM_LIMIT


class TestArchived:
    def test_an_archived_customer_is_denied_and_not_revived(self, http: httpx.Client) -> None:
        decided(http, login_body("auth0|ann", "t1", organization="org_a", mode="B2B"))
        assert http.post("/api/v1/customers/org_a/archive").status_code == 200
        denied = decided(http, login_body("auth0|bob", "t2", organization="org_a", mode="B2B"))
        assert (denied["decision"], denied["reason"]) == ("DENY", "CustomerIsArchived")
        assert denied["customers"][0]["activeUsers"] is None
        assert http.get("/api/v1/customers/org_a").json()["data"]["archivedAt"] is not None

    def test_without_enforcement_it_is_let_in_and_nothing_counted(self, http: httpx.Client) -> None:
        decided(http, login_body("auth0|ann", "t1", organization="org_a", mode="B2B"))
        http.post("/api/v1/customers/org_a/archive")
        body = login_body("auth0|bob", "t2", organization="org_a", mode="B2B", enforceLimit=False)
        answer = decided(http, body)
        assert answer["decision"] == "ALLOW"
        assert "not counted" in answer["message"]


class TestIdempotency:
    def test_the_same_key_gets_the_first_answer_and_counts_nothing_again(
        self, http: httpx.Client
    ) -> None:
        first = decided(http, login_body("auth0|ann", "t1", organization="org_a", mode="B2B"))
        again = decided(http, login_body("auth0|ann", "t1", organization="org_a", mode="B2B"))
        assert again == {**first, "replayed": True}
        assert usage_of(http, "org_a") == 1

    def test_a_denial_is_remembered_too(self, http: httpx.Client) -> None:
        fill(http, "org_a", TEAM_LIMIT)
        body = login_body("auth0|new", "t9", organization="org_a", mode="B2B")
        assert decided(http, body)["decision"] == "DENY"
        assert decided(http, body)["decision"] == "DENY"

    def test_a_key_sent_for_another_login_is_refused(self, http: httpx.Client) -> None:
        decided(http, login_body("auth0|ann", "t1"))
        reused = report_login(http, login_body("auth0|bob", "t1"))
        assert reused.status_code == 409
        error = reused.json()["error"]
        assert (error["code"], error["field"]) == ("idempotency_key_reused", "idempotencyKey")
        assert http.get("/api/v1/customers/auth0|bob").status_code == 404

    def test_keys_are_forgotten_after_seven_days(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        decided(http, login_body("auth0|ann", "t1"))
        clocked.clock.advance(timedelta(days=7, minutes=1))
        assert clocked.run_jobs()["auth0.logins.prune"] >= 1
        assert decided(http, login_body("auth0|ann", "t1"))["replayed"] is False


class TestMissedLogins:
    def test_each_is_counted_once_in_its_own_period_without_enforcement(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        fill(http, "org_a", TEAM_LIMIT)
        missed = {
            "organization": {"id": "org_a"},
            "loggedInAt": clocked.clock.now().isoformat(),
            "idempotencyKey": "missed-1",
        }
        body = login_body("auth0|new", "t9", organization="org_b", mode="B2B")
        answer = decided(http, {**body, "missedLogins": [missed]})
        assert answer["missedLogins"] == [
            {
                "idempotencyKey": "missed-1",
                "decision": "ALLOW",
                "message": answer["missedLogins"][0]["message"],
            }
        ]
        assert usage_of(http, "org_a") == TEAM_LIMIT + 1  # it happened: never denied
        again = login_body("auth0|new", "t10", organization="org_b", mode="B2B")
        decided(http, {**again, "missedLogins": [missed]})
        assert usage_of(http, "org_a") == TEAM_LIMIT + 1

    def test_a_user_let_in_earlier_this_period_is_not_denied_at_the_limit(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        fill(http, "org_a", TEAM_LIMIT - 1)
        missed = {
            "organization": {"id": "org_a"},
            "loggedInAt": clocked.clock.now().isoformat(),
            "idempotencyKey": "missed-1",
        }  # the Action let auth0|late in while Tollgate was down
        fill(http, "org_a", TEAM_LIMIT)  # meanwhile the last place went to auth0|u2
        body = login_body("auth0|late", "t9", organization="org_a", mode="B2B")
        answer = decided(http, {**body, "missedLogins": [missed]})
        assert answer["decision"] == "ALLOW", answer
        assert answer["customers"][0]["activeUsers"]["isNewActiveUser"] is False
        assert usage_of(http, "org_a") == TEAM_LIMIT + 1

    def test_one_denied_while_its_answer_was_lost_is_counted_when_replayed(
        self, http: httpx.Client, clocked: Clocked
    ) -> None:
        fill(http, "org_a", TEAM_LIMIT)
        body = login_body("auth0|late", "lost-1", organization="org_a", mode="B2B")
        assert decided(http, body)["decision"] == "DENY"  # the Action timed out: let in
        missed = {
            "organization": {"id": "org_a"},
            "loggedInAt": clocked.clock.now().isoformat(),
            "idempotencyKey": "lost-1",
        }
        again = login_body("auth0|late", "t10", organization="org_a", mode="B2B")
        answer = decided(http, {**again, "missedLogins": [missed]})
        assert answer["missedLogins"][0]["decision"] == "ALLOW"
        assert answer["decision"] == "ALLOW"  # a known user by now
        assert usage_of(http, "org_a") == TEAM_LIMIT + 1
        replayed = decided(http, {**again, "missedLogins": [missed]})
        assert replayed["missedLogins"][0]["decision"] == "ALLOW"
        assert usage_of(http, "org_a") == TEAM_LIMIT + 1  # counted once

    def test_a_bad_one_is_reported_and_does_not_fail_the_login(self, http: httpx.Client) -> None:
        missed = {"loggedInAt": "2026-01-05T09:00:00Z", "idempotencyKey": "missed-1"}
        body = login_body("auth0|ann", "t1", organization="org_a", mode="B2B")
        answer = decided(http, {**body, "missedLogins": [missed]})
        assert answer["decision"] == "ALLOW"
        (reported,) = answer["missedLogins"]
        assert reported["decision"] == "ERROR"
        assert "organization" in reported["message"]


class TestRefusedConfiguration:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"initialPlans": {"user": "plan-nope"}}, "initialPlans.user"),
            (
                {"initialPlans": {"organization": "plan-nope"}, "mode": "BOTH"},
                "initialPlans.organization",
            ),
            ({"featureId": "feature-nope"}, "featureId"),
            ({"featureId": "feature-active-users"}, "featureId"),  # reported, no meter
            ({"featureId": "feature-api-calls"}, "featureId"),  # a COUNT meter
            ({"eventName": "signup"}, "eventName"),
            ({"mode": "B2B"}, "organization"),
        ],
    )
    def test_is_a_422_naming_the_field_and_changes_nothing(
        self, http: httpx.Client, change: dict[str, Any], field: str
    ) -> None:
        refused = report_login(http, {**login_body("auth0|ann", "t1"), **change})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == field
        assert http.get("/api/v1/customers/auth0|ann").status_code == 404

    def test_a_client_key_may_not_report_logins(self, mau_tenant: Tenant) -> None:
        with mau_tenant.http(key=mau_tenant.client_key) as client:
            assert report_login(client, login_body("auth0|ann", "t1")).status_code == 403


class TestRaces:
    def test_first_logins_into_a_new_organization_make_one_customer_and_deny_none(
        self, http: httpx.Client, mau_tenant: Tenant
    ) -> None:
        def arrive(n: int) -> dict[str, Any]:
            with mau_tenant.http() as own:
                body = login_body(f"auth0|u{n}", f"r{n}", organization="org_new", mode="B2B")
                return decided(own, body)

        with ThreadPoolExecutor(TEAM_LIMIT) as pool:
            answers = list(pool.map(arrive, range(TEAM_LIMIT)))
        assert [a["decision"] for a in answers] == ["ALLOW"] * TEAM_LIMIT
        assert sum(a["customers"][0]["isNew"] for a in answers) == 1
        assert len(subscriptions_of(http, "org_new")) == 1
        assert usage_of(http, "org_new") == TEAM_LIMIT

    def test_new_users_racing_for_the_last_place_let_exactly_one_in(
        self, http: httpx.Client, mau_tenant: Tenant
    ) -> None:
        fill(http, "org_a", TEAM_LIMIT - 1)

        def arrive(n: int) -> str:
            with mau_tenant.http() as own:
                body = login_body(f"auth0|new{n}", f"n{n}", organization="org_a", mode="B2B")
                return str(decided(own, body)["decision"])

        with ThreadPoolExecutor(6) as pool:
            decisions = sorted(pool.map(arrive, range(6)))
        assert decisions == ["ALLOW"] + ["DENY"] * 5
        assert usage_of(http, "org_a") == TEAM_LIMIT

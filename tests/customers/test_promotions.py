import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import stigg
from stigg.types.v1.customer_retrieve_entitlements_response import DataEntitlementFeature

from tests.support import Clocked, Tenant
from tests.support.customers import (
    T0,
    Period,
    check,
    error,
    grant,
    iso,
    promotion,
    seats,
    subscribe,
)

ENDS: dict[Period, datetime | None] = {
    "1 week": datetime(2036, 1, 22, 9, 30, tzinfo=UTC),
    "1 month": datetime(2036, 2, 15, 9, 30, tzinfo=UTC),
    "6 month": datetime(2036, 7, 15, 9, 30, tzinfo=UTC),
    "1 year": datetime(2037, 1, 15, 9, 30, tzinfo=UTC),
    "lifetime": None,
}
CUSTOM_END = datetime(2036, 4, 1, tzinfo=UTC)
PATH = "/api/v1/customers/acme/promotional-entitlements"


@pytest.fixture
def acme(demo: stigg.Stigg) -> str:
    """A customer on the demo's free plan (3 seats, no SSO)."""
    demo.v1.customers.provision(id="acme", name="Acme")
    subscribe(demo, "acme", "plan-free")
    return "acme"


def listed(client: stigg.Stigg, customer_id: str = "acme", **filters: Any) -> list[Any]:
    return list(client.v1.customers.promotional_entitlements.list(customer_id, **filters))


def summary(client: stigg.Stigg, **filters: Any) -> list[tuple[str, str]]:
    """(featureId, status) of each of acme's grants, oldest first."""
    return [(p.feature_id, p.status) for p in listed(client, **filters)]


def names_item(problem: dict[str, Any], index: int, name: str) -> bool:
    """Whether the error's field is `name` of grant `index` (either path style)."""
    pattern = rf"promotionalEntitlements(\.{index}\.|\[{index}\]\.){name}"
    return re.fullmatch(pattern, problem["field"] or "") is not None


def grant_body(**grant: Any) -> dict[str, Any]:
    return {"promotionalEntitlements": [{"featureId": "feature-seats", "usageLimit": 50, **grant}]}


class TestGrant:
    @pytest.mark.parametrize("period", list(ENDS))
    def test_each_period_ends_where_the_clock_says(
        self, demo: stigg.Stigg, demo_tenant: Tenant, acme: str, period: Period
    ) -> None:
        [granted] = grant(demo, acme, promotion("feature-seats", period, usage_limit=50))
        assert granted.feature_id == "feature-seats"
        assert granted.status == "Active"
        assert granted.period == period
        assert granted.start_date == T0
        assert granted.end_date == ENDS[period]
        assert (granted.usage_limit, granted.has_unlimited_usage) == (50, False)
        assert granted.has_soft_limit is False
        assert granted.is_visible is True
        assert granted.environment_id == demo_tenant.name
        assert granted.created_at == granted.updated_at == T0

        [stored] = listed(demo)
        assert stored.model_dump() == granted.model_dump()
        assert check(demo, acme, "feature-seats").valid_until == ENDS[period]

    def test_a_custom_period_ends_on_the_given_date(self, demo: stigg.Stigg, acme: str) -> None:
        paris = timezone(timedelta(hours=2))
        end = datetime(2036, 4, 1, 2, 0, tzinfo=paris)
        [granted] = grant(
            demo, acme, promotion("feature-seats", "custom", usage_limit=50, custom_end_date=end)
        )
        assert granted.period == "custom"
        assert granted.end_date == CUSTOM_END
        assert check(demo, acme, "feature-seats").valid_until == CUSTOM_END

    def test_several_features_at_once(self, demo: stigg.Stigg, acme: str) -> None:
        granted = grant(
            demo,
            acme,
            promotion("feature-sso", "1 week", is_visible=False),
            promotion("feature-seats", "lifetime", has_unlimited_usage=True),
        )
        assert [(g.feature_id, g.period, g.end_date, g.is_visible) for g in granted] == [
            ("feature-sso", "1 week", ENDS["1 week"], False),
            ("feature-seats", "lifetime", None, True),
        ]
        assert summary(demo) == [("feature-sso", "Active"), ("feature-seats", "Active")]

    def test_a_metered_grant_keeps_its_reset_period(self, demo: stigg.Stigg, acme: str) -> None:
        [granted] = grant(
            demo,
            acme,
            promotion(
                "feature-api-calls",
                "1 year",
                usage_limit=5_000,
                reset_period="MONTH",
                monthly_reset="StartOfTheMonth",
            ),
        )
        assert granted.reset_period == "MONTH"
        assert granted.reset_period_configuration is not None
        assert granted.reset_period_configuration.according_to == "StartOfTheMonth"
        calls = check(demo, acme, "feature-api-calls")
        assert (calls.usage_limit, calls.reset_period) == (5_000, "MONTH")
        assert calls.usage_period_start == datetime(2036, 1, 1, tzinfo=UTC)
        assert calls.usage_period_end == datetime(2036, 2, 1, tzinfo=UTC)

    def test_a_customer_without_subscriptions_gets_the_granted_feature(
        self, demo: stigg.Stigg
    ) -> None:
        demo.v1.customers.provision(id="acme")
        grant(demo, "acme", promotion("feature-sso", "1 month"))
        sso = check(demo, "acme", "feature-sso")
        assert (sso.is_granted, sso.access_denied_reason) == (True, None)
        assert sso.valid_until == ENDS["1 month"]
        assert seats(demo) == "NoActiveSubscription"
        everything = demo.v1.customers.retrieve_entitlements("acme").data
        assert everything.access_denied_reason is None
        granted = [
            e.feature.id
            for e in everything.entitlements
            if isinstance(e, DataEntitlementFeature) and e.feature and e.is_granted
        ]
        assert granted == ["feature-sso"]


class TestGrantRefused:
    def test_custom_needs_an_end_date(self, demo_http: httpx.Client, demo: stigg.Stigg) -> None:
        demo.v1.customers.provision(id="acme")
        problem = error(demo_http.post(PATH, json=grant_body(period="custom")), 422)
        assert names_item(problem, 0, "customEndDate"), problem
        with pytest.raises(stigg.UnprocessableEntityError):
            grant(demo, "acme", promotion("feature-seats", "custom", usage_limit=50))
        assert listed(demo) == []

    @pytest.mark.parametrize("period", ["1 week", "1 month", "lifetime"])
    def test_an_end_date_needs_the_custom_period(
        self, demo_http: httpx.Client, demo: stigg.Stigg, period: str
    ) -> None:
        demo.v1.customers.provision(id="acme")
        body = grant_body(period=period, customEndDate=iso(CUSTOM_END))
        problem = error(demo_http.post(PATH, json=body), 422)
        assert names_item(problem, 0, "customEndDate"), problem
        assert period in problem["message"]
        assert listed(demo) == []

    @pytest.mark.parametrize(
        "end", [iso(T0 - timedelta(days=1)), iso(T0), "2036-04-01T00:00:00", "soon"]
    )
    def test_a_custom_end_date_must_be_a_future_moment(
        self, demo_http: httpx.Client, demo: stigg.Stigg, end: str
    ) -> None:
        demo.v1.customers.provision(id="acme")
        body = grant_body(period="custom", customEndDate=end)
        problem = error(demo_http.post(PATH, json=body), 422)
        assert names_item(problem, 0, "customEndDate"), problem
        assert listed(demo) == []

    def test_an_unknown_period_is_refused(self, demo_http: httpx.Client, demo: stigg.Stigg) -> None:
        demo.v1.customers.provision(id="acme")
        problem = error(demo_http.post(PATH, json=grant_body(period="2 weeks")), 422)
        assert names_item(problem, 0, "period"), problem

    def test_an_unknown_feature_is_refused_and_nothing_is_granted(
        self, demo_http: httpx.Client, demo: stigg.Stigg
    ) -> None:
        demo.v1.customers.provision(id="acme")
        body = {
            "promotionalEntitlements": [
                {"featureId": "feature-sso", "period": "1 week"},
                {"featureId": "feature-nope", "period": "1 week"},
            ]
        }
        problem = error(demo_http.post(PATH, json=body), 422)
        assert names_item(problem, 1, "featureId"), problem
        assert "feature-nope" in problem["message"]
        with pytest.raises(stigg.UnprocessableEntityError):
            grant(demo, "acme", promotion("feature-nope", "1 week"))
        assert listed(demo) == []
        assert check(demo, "acme", "feature-sso").is_granted is False

    def test_terms_must_fit_the_feature(self, demo_http: httpx.Client, demo: stigg.Stigg) -> None:
        demo.v1.customers.provision(id="acme")
        cases: list[tuple[dict[str, Any], str]] = [
            ({"featureId": "feature-sso", "usageLimit": 5}, "usageLimit"),
            ({"featureId": "feature-seats", "usageLimit": None}, "usageLimit"),
            ({"featureId": "feature-seats", "usageLimit": -1}, "usageLimit"),
            ({"featureId": "feature-seats", "resetPeriod": "MONTH"}, "resetPeriod"),
        ]
        for fields, name in cases:
            body = grant_body(period="1 week", **fields)
            problem = error(demo_http.post(PATH, json=body), 422)
            assert problem["field"].endswith(name), (fields, problem)
        assert listed(demo) == []

    def test_a_feature_granted_twice_in_one_request_is_refused(
        self, demo_http: httpx.Client, demo: stigg.Stigg
    ) -> None:
        demo.v1.customers.provision(id="acme")
        seat = {"featureId": "feature-seats", "period": "1 week", "usageLimit": 5}
        body = {"promotionalEntitlements": [seat, {**seat, "usageLimit": 9}]}
        problem = error(demo_http.post(PATH, json=body), 422)
        assert problem["field"] == "promotionalEntitlements"
        assert "feature-seats" in problem["message"]
        assert listed(demo) == []

    def test_an_archived_customer_gets_no_grant(
        self, demo_http: httpx.Client, demo: stigg.Stigg
    ) -> None:
        demo.v1.customers.provision(id="acme")
        demo.v1.customers.archive("acme")
        with pytest.raises(stigg.ConflictError):
            grant(demo, "acme", promotion("feature-sso", "1 week"))
        problem = error(demo_http.post(PATH, json=grant_body(period="1 week")), 409)
        assert problem["code"] == "customer_archived"
        assert listed(demo) == []

    def test_an_unknown_customer_is_not_found(self, demo: stigg.Stigg) -> None:
        with pytest.raises(stigg.NotFoundError):
            grant(demo, "nobody", promotion("feature-sso", "1 week"))
        with pytest.raises(stigg.NotFoundError):
            listed(demo, "nobody")

    def test_a_client_key_may_not_grant_or_revoke(
        self, demo_tenant: Tenant, demo: stigg.Stigg, acme: str
    ) -> None:
        grant(demo, acme, promotion("feature-sso", "1 week"))
        with demo_tenant.http(key=demo_tenant.client_key) as browser:
            granting = browser.post(PATH, json=grant_body(period="lifetime"))
            revoking = browser.delete(f"{PATH}/feature-sso")
        assert error(granting, 403)["code"] == "permission_denied"
        assert error(revoking, 403)["code"] == "permission_denied"
        assert summary(demo) == [("feature-sso", "Active")]
        assert seats(demo) == 3


class TestFieldPaths:
    def test_the_rules_name_an_item_as_the_schema_does(
        self, demo_http: httpx.Client, demo: stigg.Stigg
    ) -> None:
        # A schema error names grant 0 "promotionalEntitlements.0.period", as the catalog's
        # rules do ("entitlements.0.usageLimit"); the promotion rules should say it alike.
        demo.v1.customers.provision(id="acme")
        schema = error(demo_http.post(PATH, json=grant_body(period="2 weeks")), 422)
        assert schema["field"] == "promotionalEntitlements.0.period"
        rules = error(demo_http.post(PATH, json=grant_body(period="custom")), 422)
        assert rules["field"] == "promotionalEntitlements.0.customEndDate"


class TestReplace:
    def test_a_new_grant_for_the_feature_replaces_the_old(
        self, demo: stigg.Stigg, clocked: Clocked, acme: str
    ) -> None:
        grant(demo, acme, promotion("feature-seats", "1 week", usage_limit=50))
        later = T0 + timedelta(hours=1)
        clocked.clock.set(later)
        [again] = grant(demo, acme, promotion("feature-seats", "1 month", usage_limit=80))
        assert (again.period, again.start_date) == ("1 month", later)
        assert again.end_date == datetime(2036, 2, 15, 10, 30, tzinfo=UTC)

        [only] = listed(demo)
        assert (only.feature_id, only.status, only.usage_limit) == ("feature-seats", "Active", 80)
        assert only.end_date == again.end_date
        data = check(demo, acme, "feature-seats")
        assert (data.usage_limit, data.valid_until) == (80, again.end_date)

    def test_granting_after_a_revoke_makes_it_active_again(
        self, demo: stigg.Stigg, acme: str
    ) -> None:
        grant(demo, acme, promotion("feature-sso", "1 week"))
        demo.v1.customers.promotional_entitlements.revoke("feature-sso", id=acme)
        assert summary(demo) == [("feature-sso", "Expired")]
        grant(demo, acme, promotion("feature-sso", "lifetime"))
        [only] = listed(demo)
        assert (only.status, only.period, only.end_date) == ("Active", "lifetime", None)
        assert check(demo, acme, "feature-sso").is_granted is True

    def test_other_features_keep_their_grants(self, demo: stigg.Stigg, acme: str) -> None:
        grant(demo, acme, promotion("feature-sso", "1 week"))
        grant(demo, acme, promotion("feature-seats", "1 week", usage_limit=50))
        assert summary(demo) == [("feature-sso", "Active"), ("feature-seats", "Active")]
        assert check(demo, acme, "feature-sso").is_granted is True


class TestCheck:
    def test_a_grant_raises_the_plans_limit(self, demo: stigg.Stigg, acme: str) -> None:
        assert seats(demo) == 3
        grant(demo, acme, promotion("feature-seats", "1 month", usage_limit=50))
        data = check(demo, acme, "feature-seats")
        assert (data.is_granted, data.usage_limit, data.has_unlimited_usage) == (True, 50, False)
        assert data.valid_until == ENDS["1 month"]
        assert check(demo, acme, "feature-seats", requested_usage=50).is_granted is True
        over = check(demo, acme, "feature-seats", requested_usage=51)
        assert over.access_denied_reason == "RequestedUsageExceedingLimit"

    def test_an_unlimited_grant_lifts_the_limit(self, demo: stigg.Stigg, acme: str) -> None:
        grant(demo, acme, promotion("feature-seats", "1 week", has_unlimited_usage=True))
        data = check(demo, acme, "feature-seats", requested_usage=1_000_000)
        assert (data.is_granted, data.has_unlimited_usage) == (True, True)
        assert data.usage_limit is None
        assert data.valid_until == ENDS["1 week"]

    def test_a_soft_limit_is_counted_but_never_refuses(self, demo: stigg.Stigg, acme: str) -> None:
        [granted] = grant(
            demo, acme, promotion("feature-seats", "1 week", usage_limit=5, has_soft_limit=True)
        )
        assert granted.has_soft_limit is True
        data = check(demo, acme, "feature-seats", requested_usage=100)
        assert (data.is_granted, data.usage_limit) == (True, 5)

    def test_a_grant_adds_a_feature_the_plan_lacks(self, demo: stigg.Stigg, acme: str) -> None:
        before = check(demo, acme, "feature-sso")
        assert before.access_denied_reason == "NoFeatureEntitlementInSubscription"
        grant(demo, acme, promotion("feature-sso", "6 month"))
        after = check(demo, acme, "feature-sso")
        assert (after.is_granted, after.valid_until) == (True, ENDS["6 month"])

    def test_a_less_generous_grant_does_not_lower_the_plans_limit(
        self, demo: stigg.Stigg, acme: str
    ) -> None:
        # Stigg is "generous": when the subscription grants more than the promotion, the
        # subscription's value prevails (docs: managing customers' promotional entitlements).
        grant(demo, acme, promotion("feature-seats", "1 month", usage_limit=1))
        assert seats(demo) == 3
        assert check(demo, acme, "feature-seats", requested_usage=3).is_granted is True

    def test_an_archived_customer_is_denied_despite_its_grants(
        self, demo: stigg.Stigg, acme: str
    ) -> None:
        grant(demo, acme, promotion("feature-sso", "lifetime"))
        demo.v1.customers.archive("acme")
        assert check(demo, acme, "feature-sso").access_denied_reason == "CustomerIsArchived"
        demo.v1.customers.unarchive("acme")
        # The grant outlives the archive; the subscription does not.
        assert check(demo, acme, "feature-sso").is_granted is True
        assert seats(demo) == "NoActiveSubscription"


class TestRevoke:
    def test_revoking_expires_the_grant_now_and_the_plan_applies_again(
        self, demo: stigg.Stigg, clocked: Clocked, acme: str
    ) -> None:
        grant(demo, acme, promotion("feature-seats", "1 month", usage_limit=50))
        assert seats(demo) == 50
        moment = T0 + timedelta(hours=2)
        clocked.clock.set(moment)

        revoked = demo.v1.customers.promotional_entitlements.revoke("feature-seats", id=acme).data
        assert (revoked.feature_id, revoked.status) == ("feature-seats", "Expired")
        assert revoked.end_date == moment
        assert revoked.updated_at == moment
        assert seats(demo) == 3
        assert check(demo, acme, "feature-seats").valid_until is None
        [stored] = listed(demo)
        assert stored.model_dump() == revoked.model_dump()

    def test_revoking_a_lifetime_grant_gives_it_an_end(self, demo: stigg.Stigg, acme: str) -> None:
        grant(demo, acme, promotion("feature-sso", "lifetime"))
        revoked = demo.v1.customers.promotional_entitlements.revoke("feature-sso", id=acme).data
        assert (revoked.status, revoked.end_date) == ("Expired", T0)
        assert check(demo, acme, "feature-sso").is_granted is False

    def test_nothing_to_revoke_is_not_found(
        self, demo: stigg.Stigg, demo_http: httpx.Client, acme: str
    ) -> None:
        with pytest.raises(stigg.NotFoundError):
            demo.v1.customers.promotional_entitlements.revoke("feature-sso", id=acme)
        problem = error(demo_http.delete(f"{PATH}/feature-sso"), 404)
        assert "feature-sso" in problem["message"]
        with pytest.raises(stigg.NotFoundError):
            demo.v1.customers.promotional_entitlements.revoke("feature-nope", id=acme)
        with pytest.raises(stigg.NotFoundError):
            demo.v1.customers.promotional_entitlements.revoke("feature-sso", id="nobody")

    def test_revoking_twice_is_not_found_the_second_time(
        self, demo: stigg.Stigg, acme: str
    ) -> None:
        grant(demo, acme, promotion("feature-sso", "1 week"))
        demo.v1.customers.promotional_entitlements.revoke("feature-sso", id=acme)
        with pytest.raises(stigg.NotFoundError):
            demo.v1.customers.promotional_entitlements.revoke("feature-sso", id=acme)
        assert summary(demo) == [("feature-sso", "Expired")]


class TestExpiry:
    def test_the_check_falls_back_at_the_end_and_the_job_marks_it_expired(
        self, demo: stigg.Stigg, clocked: Clocked, acme: str
    ) -> None:
        [granted] = grant(demo, acme, promotion("feature-seats", "1 week", usage_limit=50))
        end = ENDS["1 week"]
        assert end is not None
        assert seats(demo) == 50  # a snapshot that holds the grant is now in memory

        clocked.clock.set(end - timedelta(seconds=1))
        assert seats(demo) == 50
        clocked.clock.set(end)
        assert seats(demo) == 3  # at once, before any job has run
        assert summary(demo) == [("feature-seats", "Active")]

        clocked.clock.set(end + timedelta(minutes=1))
        assert clocked.run_jobs()["promotions.expire"] >= 1
        [expired] = listed(demo)
        assert (expired.status, expired.end_date) == ("Expired", end)
        assert expired.start_date == granted.start_date
        assert seats(demo) == 3
        assert summary(demo, status=["Active"]) == []

    def test_a_custom_grant_ends_on_its_date(
        self, demo: stigg.Stigg, clocked: Clocked, acme: str
    ) -> None:
        grant(demo, acme, promotion("feature-sso", "custom", custom_end_date=CUSTOM_END))
        clocked.clock.set(CUSTOM_END - timedelta(microseconds=1))
        assert check(demo, acme, "feature-sso").is_granted is True
        clocked.clock.set(CUSTOM_END)
        denied = check(demo, acme, "feature-sso")
        assert denied.access_denied_reason == "NoFeatureEntitlementInSubscription"

    def test_a_lifetime_grant_never_expires(
        self, demo: stigg.Stigg, clocked: Clocked, acme: str
    ) -> None:
        grant(demo, acme, promotion("feature-seats", "lifetime", usage_limit=50))
        clocked.clock.set(T0 + timedelta(days=3650))
        clocked.run_jobs()
        assert summary(demo) == [("feature-seats", "Active")]
        data = check(demo, acme, "feature-seats")
        assert data.usage_limit == 50

    def test_an_expired_grant_can_be_granted_again(
        self, demo: stigg.Stigg, clocked: Clocked, acme: str
    ) -> None:
        grant(demo, acme, promotion("feature-seats", "1 week", usage_limit=50))
        later = T0 + timedelta(days=8)
        clocked.clock.set(later)
        clocked.run_jobs()
        assert summary(demo) == [("feature-seats", "Expired")]
        [again] = grant(demo, acme, promotion("feature-seats", "1 week", usage_limit=60))
        assert (again.status, again.start_date) == ("Active", later)
        assert summary(demo) == [("feature-seats", "Active")]
        assert seats(demo) == 60


class TestList:
    def test_filters_by_status(self, demo: stigg.Stigg, acme: str) -> None:
        grant(
            demo,
            acme,
            promotion("feature-seats", "1 week", usage_limit=50),
            promotion("feature-sso", "lifetime"),
        )
        demo.v1.customers.promotional_entitlements.revoke("feature-sso", id=acme)

        assert summary(demo, status=["Expired"]) == [("feature-sso", "Expired")]
        assert summary(demo, status=["Active"]) == [("feature-seats", "Active")]
        assert summary(demo, status=["Paused"]) == []
        both = [("feature-seats", "Active"), ("feature-sso", "Expired")]
        assert summary(demo, status=["Active", "Expired"]) == both
        assert summary(demo) == both

    def test_an_unknown_status_is_refused(self, demo_http: httpx.Client, acme: str) -> None:
        problem = error(demo_http.get(PATH, params={"status": "Active,Gone"}), 422)
        assert problem["field"] == "status"
        assert "Gone" in problem["message"]

    def test_pages_and_filters_by_creation_time(
        self, demo: stigg.Stigg, clocked: Clocked, acme: str
    ) -> None:
        features = ["feature-sso", "feature-seats", "feature-api-calls"]
        for index, feature in enumerate(features):
            clocked.clock.set(T0 + timedelta(hours=index))
            limit = None if feature == "feature-sso" else 10
            grant(demo, acme, promotion(feature, "1 year", usage_limit=limit))

        page = demo.v1.customers.promotional_entitlements.list(acme, limit=2)
        assert [p.feature_id for p in page.data] == features[:2]
        assert page.pagination is not None
        assert page.pagination.next is not None
        rest = demo.v1.customers.promotional_entitlements.list(
            acme, limit=2, after=page.pagination.next
        )
        assert [p.feature_id for p in rest.data] == features[2:]

        def created(**bounds: Any) -> list[str]:
            return [p.feature_id for p in listed(demo, created_at=bounds)]

        assert created(gte=T0 + timedelta(hours=1)) == features[1:]
        assert created(gt=T0 + timedelta(hours=1)) == features[2:]
        assert created(lt=T0 + timedelta(hours=1)) == features[:1]
        assert created(lte=T0 + timedelta(hours=1)) == features[:2]

    def test_only_the_customers_own_grants(self, demo: stigg.Stigg, acme: str) -> None:
        demo.v1.customers.provision(id="globex")
        grant(demo, acme, promotion("feature-sso", "1 week"))
        grant(demo, "globex", promotion("feature-seats", "1 week", usage_limit=9))
        assert summary(demo) == [("feature-sso", "Active")]
        assert [p.feature_id for p in listed(demo, "globex")] == ["feature-seats"]
        assert seats(demo, "globex") == 9

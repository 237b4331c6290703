"""POST /api/v1/subscriptions: what a new subscription holds, and what is refused."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import stigg
from stigg.types.v1.subscription_provision_response import (
    DataEntitlementUnionObjectVariant0 as FeatureEntitlement,
)

from tests.support import START, factories
from tests.support.subscriptions import (
    customer,
    error,
    extra,
    get,
    has_sso,
    iso,
    republish,
    seats,
    subscribe,
)

MONTH_LATER = datetime(2026, 2, 5, 10, 0, tzinfo=UTC)


class TestNewSubscription:
    def test_free_plan_starts_active_with_a_monthly_period_from_now(
        self, demo_client: stigg.Stigg
    ) -> None:
        customer(demo_client)
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-free"
        ).data
        assert (provisioned.status, provisioned.is_scheduled) == ("SUCCESS", False)
        subscription = provisioned.subscription
        assert subscription is not None
        assert provisioned.id == subscription.id
        assert subscription.id.startswith("subscription-plan-free-")
        assert (subscription.customer_id, subscription.plan_id) == ("acme", "plan-free")
        assert (subscription.status, subscription.pricing_type) == ("ACTIVE", "FREE")
        assert subscription.payment_collection == "NOT_REQUIRED"
        assert subscription.start_date == START
        assert subscription.billing_cycle_anchor == START
        assert subscription.current_billing_period_start == START
        assert subscription.current_billing_period_end == MONTH_LATER
        assert subscription.trial_end_date is None
        assert subscription.trial is None
        assert (subscription.end_date, subscription.cancellation_date) == (None, None)
        assert subscription.cancel_reason is None
        assert subscription.addons == []
        assert subscription.future_updates == []
        assert subscription.resource_id is None
        # The answer carries the customer's entitlements as they are after the change.
        granted = {
            e.feature.id: e.usage_limit
            for e in provisioned.entitlements or []
            if isinstance(e, FeatureEntitlement) and e.feature is not None and e.is_granted
        }
        assert granted == {
            "feature-seats": 3,
            "feature-active-users": 100,
            "feature-api-calls": 1000,
        }
        assert seats(demo_client) == 3
        retrieved = get(demo_client, subscription.id)
        assert (retrieved.id, retrieved.status) == (subscription.id, "ACTIVE")
        assert (extra(retrieved, "billingPeriod"), extra(retrieved, "planVersion")) == (
            "MONTHLY",
            1,
        )

    def test_annual_billing_period_lasts_a_year(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-free", billing_period="ANNUALLY")
        assert extra(subscription, "billingPeriod") == "ANNUALLY"
        assert subscription.current_billing_period_end == datetime(2027, 1, 5, 10, tzinfo=UTC)

    def test_given_id_metadata_and_billing_id_are_kept(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        subscription = subscribe(
            demo_client,
            plan_id="plan-enterprise",
            id="sub-acme-1",
            metadata={"crm": "42"},
            billing_id="bill-7",
        )
        assert subscription.id == "sub-acme-1"
        assert (subscription.metadata, subscription.billing_id) == ({"crm": "42"}, "bill-7")
        assert (subscription.status, subscription.pricing_type) == ("ACTIVE", "PAID")
        assert seats(demo_client) == "unlimited"

    def test_an_id_already_taken_is_a_conflict(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client, "acme")
        customer(demo_client, "globex")
        subscribe(demo_client, "acme", plan_id="plan-free", id="sub-1")
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={"customerId": "globex", "planId": "plan-free", "id": "sub-1"},
        )
        problem = error(response, 409)
        assert problem["code"] == "already_exists"
        assert "sub-1" in problem["message"]
        # Nothing was left behind for globex.
        assert list(demo_client.v1.subscriptions.list(customer_id="globex")) == []

    def test_moments_in_other_offsets_are_kept_as_utc(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "acme",
                "planId": "plan-free",
                "startDate": "2026-01-08T12:00:00+02:00",
            },
        )
        assert response.status_code == 200, response.text
        subscription = response.json()["data"]["subscription"]
        assert subscription["startDate"] == "2026-01-08T10:00:00Z"
        assert subscription["currentBillingPeriodEnd"] == "2026-02-08T10:00:00Z"

    def test_an_id_taken_by_the_subscription_it_replaces_changes_nothing(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        subscribe(demo_client, plan_id="plan-free", id="sub-1")
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={"customerId": "acme", "planId": "plan-pro", "id": "sub-1"},
        )
        assert error(response, 409)["code"] == "already_exists"
        kept = get(demo_client, "sub-1")
        assert (kept.plan_id, kept.status, kept.end_date) == ("plan-free", "ACTIVE", None)
        assert seats(demo_client) == 3

    def test_a_start_in_the_past_gives_the_period_containing_now(
        self, demo_client: stigg.Stigg
    ) -> None:
        customer(demo_client)
        started = START - timedelta(days=40)
        subscription = subscribe(demo_client, plan_id="plan-free", start_date=started)
        assert subscription.status == "ACTIVE"
        assert subscription.start_date == started
        assert subscription.current_billing_period_start == datetime(2025, 12, 26, 10, tzinfo=UTC)
        assert subscription.current_billing_period_end == datetime(2026, 1, 26, 10, tzinfo=UTC)


class TestRefusals:
    def test_unknown_customer_is_not_found(self, demo_http: httpx.Client) -> None:
        response = demo_http.post(
            "/api/v1/subscriptions", json={"customerId": "nobody", "planId": "plan-free"}
        )
        assert error(response, 404)["code"] == "not_found"

    def test_archived_customer_is_refused(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        demo_client.v1.customers.archive("acme")
        response = demo_http.post(
            "/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-free"}
        )
        assert error(response, 409)["code"] == "customer_archived"

    @pytest.mark.parametrize(
        ("plan_id", "words"),
        [("plan-nope", "does not exist"), ("plan-draft", "not published")],
    )
    def test_plan_must_exist_and_be_published(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, plan_id: str, words: str
    ) -> None:
        factories.plan(demo_http, id="plan-draft", entitlements=[factories.seats(1)])
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions", json={"customerId": "acme", "planId": plan_id}
        )
        problem = error(response, 422)
        assert (problem["code"], problem["field"]) == ("invalid_value", "planId")
        assert words in problem["message"]

    def test_an_archived_plan_is_offered_to_no_one(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        factories.plan(demo_http, id="plan-old", entitlements=[factories.seats(1)], publish=True)
        assert demo_http.post("/api/v1/plans/plan-old/archive").status_code == 200
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-old"}
        )
        problem = error(response, 422)
        assert problem["field"] == "planId"
        assert "archived" in problem["message"]

    @pytest.mark.parametrize(
        "field", ["startDate", "cancellationDate", "trialOverrideConfiguration.trialEndDate"]
    )
    def test_moments_need_a_time_zone(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, field: str
    ) -> None:
        customer(demo_client)
        naive = "2026-03-01T00:00:00"
        body: dict[str, object] = {"customerId": "acme", "planId": "plan-pro"}
        if field == "trialOverrideConfiguration.trialEndDate":
            body["trialOverrideConfiguration"] = {"isTrial": True, "trialEndDate": naive}
        else:
            body[field] = naive
        problem = error(demo_http.post("/api/v1/subscriptions", json=body), 422)
        assert problem["field"] == field
        assert demo_client.v1.subscriptions.list(customer_id="acme").data == []

    def test_cancellation_date_must_follow_the_start(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "acme",
                "planId": "plan-free",
                "cancellationDate": iso(START - timedelta(days=1)),
            },
        )
        assert error(response, 422)["field"] == "cancellationDate"

    def test_unknown_body_fields_are_named(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={"customerId": "acme", "planId": "plan-free", "seatCount": 4},
        )
        assert error(response, 422)["field"] == "seatCount"


class TestTrials:
    def test_default_trial_of_the_plan(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-pro")
        trial_end = START + timedelta(days=14)
        assert (subscription.status, subscription.pricing_type) == ("IN_TRIAL", "PAID")
        assert subscription.trial_end_date == trial_end
        assert subscription.trial is not None
        assert subscription.trial.trial_end_behavior == "CONVERT_TO_PAID"
        assert subscription.current_billing_period_start == START
        assert subscription.current_billing_period_end == trial_end
        assert subscription.billing_cycle_anchor == trial_end
        assert has_sso(demo_client)
        assert seats(demo_client) == 20

    def test_once_per_customer_and_product(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client, "acme")
        customer(demo_client, "globex")
        first = subscribe(demo_client, "acme", plan_id="plan-pro")
        demo_client.v1.subscriptions.cancel(first.id, cancellation_time="IMMEDIATE")
        again = subscribe(demo_client, "acme", plan_id="plan-pro")
        assert (again.status, again.trial_end_date, again.trial) == ("ACTIVE", None, None)
        assert again.current_billing_period_end == MONTH_LATER
        # Another customer still gets its own trial.
        assert subscribe(demo_client, "globex", plan_id="plan-pro").status == "IN_TRIAL"

    def test_a_free_plan_first_does_not_use_up_the_trial(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        subscribe(demo_client, plan_id="plan-free")
        assert subscribe(demo_client, plan_id="plan-pro").status == "IN_TRIAL"

    def test_override_can_skip_the_trial(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        subscription = subscribe(
            demo_client, plan_id="plan-pro", trial_override_configuration={"is_trial": False}
        )
        assert (subscription.status, subscription.trial_end_date) == ("ACTIVE", None)
        assert subscription.billing_cycle_anchor == START
        assert subscription.current_billing_period_end == MONTH_LATER

    def test_override_sets_end_and_behavior_on_a_plan_without_a_trial(
        self, demo_client: stigg.Stigg
    ) -> None:
        customer(demo_client)
        trial_end = START + timedelta(days=3, hours=5)
        subscription = subscribe(
            demo_client,
            plan_id="plan-enterprise",
            trial_override_configuration={
                "is_trial": True,
                "trial_end_date": trial_end,
                "trial_end_behavior": "CANCEL_SUBSCRIPTION",
            },
        )
        assert subscription.status == "IN_TRIAL"
        assert subscription.trial_end_date == trial_end
        assert subscription.trial is not None
        assert subscription.trial.trial_end_behavior == "CANCEL_SUBSCRIPTION"
        assert subscription.current_billing_period_end == trial_end

    def test_override_without_an_end_uses_the_plans_duration_again(
        self, demo_client: stigg.Stigg
    ) -> None:
        customer(demo_client)
        first = subscribe(demo_client, plan_id="plan-pro")
        demo_client.v1.subscriptions.cancel(first.id, cancellation_time="IMMEDIATE")
        # An explicit override gives a trial even to a customer who had one.
        again = subscribe(
            demo_client, plan_id="plan-pro", trial_override_configuration={"is_trial": True}
        )
        assert again.status == "IN_TRIAL"
        assert again.trial_end_date == START + timedelta(days=14)
        assert again.trial is not None
        assert again.trial.trial_end_behavior == "CONVERT_TO_PAID"

    def test_override_without_an_end_on_a_plan_without_a_trial_is_refused(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "acme",
                "planId": "plan-free",
                "trialOverrideConfiguration": {"isTrial": True},
            },
        )
        problem = error(response, 422)
        assert problem["field"] == "trialOverrideConfiguration.trialEndDate"

    def test_override_ending_before_the_start_is_refused(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "acme",
                "planId": "plan-pro",
                "trialOverrideConfiguration": {
                    "isTrial": True,
                    "trialEndDate": iso(START - timedelta(hours=1)),
                },
            },
        )
        assert error(response, 422)["field"] == "trialOverrideConfiguration.trialEndDate"

    def test_a_month_long_default_trial(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        republish(
            demo_http,
            "plans",
            "plan-pro",
            fields={"defaultTrialConfig": {"duration": 1, "units": "MONTH"}},
        )
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-pro")
        assert subscription.trial_end_date == MONTH_LATER
        assert subscription.trial is not None
        assert subscription.trial.trial_end_behavior == "CONVERT_TO_PAID"


class TestAddons:
    def test_addon_quantities_add_to_the_plan(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        subscription = subscribe(
            demo_client, plan_id="plan-pro", addons=[{"id": "addon-extra-seats", "quantity": 2}]
        )
        assert [(a.id, a.quantity) for a in subscription.addons or []] == [("addon-extra-seats", 2)]
        assert seats(demo_client) == 40
        assert seats(demo_client, requested_usage=41) == "RequestedUsageExceedingLimit"

    def test_incompatible_addon_is_refused_by_field(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        factories.addon(
            demo_http, id="addon-orphan", entitlements=[factories.seats(1)], publish=True
        )
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "acme",
                "planId": "plan-pro",
                "addons": [
                    {"id": "addon-extra-seats", "quantity": 1},
                    {"id": "addon-orphan", "quantity": 1},
                ],
            },
        )
        problem = error(response, 422)
        assert problem["field"] == "addons.1.id"
        assert "addon-orphan" in problem["message"]
        assert "compatible" in problem["message"]
        assert demo_client.v1.subscriptions.list(customer_id="acme").data == []

    def test_unknown_addon_is_refused_by_field(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "acme",
                "planId": "plan-pro",
                "addons": [{"id": "addon-nope", "quantity": 1}],
            },
        )
        assert error(response, 422)["field"] == "addons.0.id"

    def test_max_quantity_is_enforced(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        republish(demo_http, "addons", "addon-extra-seats", fields={"maxQuantity": 3})
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "acme",
                "planId": "plan-pro",
                "addons": [{"id": "addon-extra-seats", "quantity": 4}],
            },
        )
        problem = error(response, 422)
        assert problem["field"] == "addons.0.quantity"
        assert "3" in problem["message"]
        at_max = subscribe(
            demo_client, plan_id="plan-pro", addons=[{"id": "addon-extra-seats", "quantity": 3}]
        )
        assert [(a.id, a.quantity) for a in at_max.addons or []] == [("addon-extra-seats", 3)]

    def test_dependencies_must_be_present(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        factories.addon(
            demo_http,
            id="addon-sso-audit",
            entitlements=[{"id": "feature-sso", "type": "FEATURE"}],
        )
        patched = demo_http.patch(
            "/api/v1/addons/addon-sso-audit", json={"dependencies": ["addon-extra-seats"]}
        )
        assert patched.status_code == 200, patched.text
        published = demo_http.post(
            "/api/v1/addons/addon-sso-audit/publish", json={"migrationType": "NEW_CUSTOMERS"}
        )
        assert published.status_code == 200, published.text
        republish(
            demo_http,
            "plans",
            "plan-free",
            fields={"compatibleAddonIds": ["addon-extra-seats", "addon-sso-audit"]},
        )
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={
                "customerId": "acme",
                "planId": "plan-free",
                "addons": [{"id": "addon-sso-audit", "quantity": 1}],
            },
        )
        problem = error(response, 422)
        assert problem["field"] == "addons.0.id"
        assert "addon-extra-seats" in problem["message"]
        both = subscribe(
            demo_client,
            plan_id="plan-free",
            addons=[
                {"id": "addon-sso-audit", "quantity": 1},
                {"id": "addon-extra-seats", "quantity": 1},
            ],
        )
        assert {a.id for a in both.addons or []} == {"addon-sso-audit", "addon-extra-seats"}
        assert has_sso(demo_client)
        assert seats(demo_client) == 13

    @pytest.mark.parametrize(
        ("addons", "field"),
        [
            (
                [
                    {"id": "addon-extra-seats", "quantity": 1},
                    {"id": "addon-extra-seats", "quantity": 2},
                ],
                "addons",
            ),
            ([{"id": "addon-extra-seats", "quantity": 0}], "addons.0.quantity"),
            ([{"id": "addon-extra-seats"}], "addons.0.quantity"),
        ],
    )
    def test_malformed_addon_lists_are_refused(
        self,
        demo_client: stigg.Stigg,
        demo_http: httpx.Client,
        addons: list[dict[str, object]],
        field: str,
    ) -> None:
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions",
            json={"customerId": "acme", "planId": "plan-pro", "addons": addons},
        )
        assert error(response, 422)["field"] == field

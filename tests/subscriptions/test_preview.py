"""POST /api/v1/subscriptions/preview: what provisioning would do, without doing it."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stigg

from tests.support import START, Clocked
from tests.support.subscriptions import customer, error, get, subscribe

MONTH_LATER = datetime(2026, 2, 5, 10, tzinfo=UTC)


def _entitlements(http: httpx.Client, **body: Any) -> dict[str, object]:
    """Tollgate's `entitlements` addition of a preview: feature -> limit, or the reason."""
    response = http.post("/api/v1/subscriptions/preview", json=body)
    assert response.status_code == 200, response.text
    found: dict[str, object] = {}
    for entitlement in response.json()["data"]["entitlements"]:
        feature = entitlement["feature"]["id"]
        if not entitlement["isGranted"]:
            found[feature] = entitlement["accessDeniedReason"]
        elif entitlement["hasUnlimitedUsage"]:
            found[feature] = "unlimited"
        else:
            found[feature] = entitlement["usageLimit"]
    return found


class TestNewCustomer:
    def test_a_plan_with_addons(self, demo_client: stigg.Stigg, demo_http: httpx.Client) -> None:
        customer(demo_client)
        preview = demo_client.v1.subscriptions.preview(
            customer_id="acme",
            plan_id="plan-pro",
            addons=[{"id": "addon-extra-seats", "quantity": 1}],
        ).data
        assert (preview.is_plan_downgrade, preview.has_scheduled_updates) == (False, False)
        assert preview.billing_period_range is not None
        assert (preview.billing_period_range.start, preview.billing_period_range.end) == (
            START,
            MONTH_LATER,
        )
        assert (preview.immediate_invoice.total, preview.immediate_invoice.sub_total) == (0, 0)
        assert _entitlements(
            demo_http,
            customerId="acme",
            planId="plan-pro",
            addons=[{"id": "addon-extra-seats", "quantity": 1}],
        ) == {
            "feature-sso": None,
            "feature-seats": 30,
            "feature-active-users": 1000,
            "feature-api-calls": 100_000,
        }
        # Nothing was provisioned.
        assert demo_client.v1.subscriptions.list(customer_id="acme").data == []

    def test_annual_and_a_later_start(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        starts = START + timedelta(days=10)
        preview = demo_client.v1.subscriptions.preview(
            customer_id="acme",
            plan_id="plan-free",
            billing_period="ANNUALLY",
            start_date=starts,
        ).data
        assert preview.billing_period_range is not None
        assert (preview.billing_period_range.start, preview.billing_period_range.end) == (
            starts,
            datetime(2027, 1, 15, 10, tzinfo=UTC),
        )

    def test_the_unlimited_plan(self, demo_client: stigg.Stigg, demo_http: httpx.Client) -> None:
        customer(demo_client)
        entitlements = _entitlements(demo_http, customerId="acme", planId="plan-enterprise")
        assert entitlements["feature-seats"] == "unlimited"


class TestCustomerWithASubscription:
    def test_a_downgrade_is_flagged_and_would_be_scheduled(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        preview = demo_client.v1.subscriptions.preview(customer_id="acme", plan_id="plan-pro").data
        assert (preview.is_plan_downgrade, preview.has_scheduled_updates) == (True, True)
        immediate = demo_client.v1.subscriptions.preview(
            customer_id="acme", plan_id="plan-pro", schedule_strategy="IMMEDIATE"
        ).data
        assert (immediate.is_plan_downgrade, immediate.has_scheduled_updates) == (True, False)
        assert _entitlements(demo_http, customerId="acme", planId="plan-pro")["feature-seats"] == 20
        # The preview changed nothing.
        assert get(demo_client, enterprise.id).future_updates == []

    def test_an_upgrade_is_not_a_downgrade(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        subscribe(demo_client, plan_id="plan-free")
        preview = demo_client.v1.subscriptions.preview(
            customer_id="acme", plan_id="plan-enterprise"
        ).data
        assert (preview.is_plan_downgrade, preview.has_scheduled_updates) == (False, False)

    def test_resources_are_judged_on_their_own(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        subscribe(demo_client, plan_id="plan-enterprise", resource_id="ws-1")
        on_resource = demo_client.v1.subscriptions.preview(
            customer_id="acme", plan_id="plan-pro", resource_id="ws-1"
        ).data
        at_customer = demo_client.v1.subscriptions.preview(
            customer_id="acme", plan_id="plan-pro"
        ).data
        assert on_resource.is_plan_downgrade is True
        assert at_customer.is_plan_downgrade is False

    def test_the_period_range_is_of_the_moment_asked(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        clocked.clock.set(START + timedelta(days=3))
        preview = demo_client.v1.subscriptions.preview(customer_id="acme", plan_id="plan-free").data
        assert preview.billing_period_range is not None
        assert preview.billing_period_range.start == START + timedelta(days=3)


class TestRefusals:
    def test_unknown_customer(self, demo_http: httpx.Client) -> None:
        response = demo_http.post(
            "/api/v1/subscriptions/preview", json={"customerId": "nobody", "planId": "plan-pro"}
        )
        assert error(response, 404)["code"] == "not_found"

    def test_unknown_plan_and_bad_addons(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions/preview", json={"customerId": "acme", "planId": "plan-nope"}
        )
        assert error(response, 422)["field"] == "planId"
        response = demo_http.post(
            "/api/v1/subscriptions/preview",
            json={
                "customerId": "acme",
                "planId": "plan-pro",
                "addons": [{"id": "addon-nope", "quantity": 1}],
            },
        )
        assert error(response, 422)["field"] == "addons.0.id"

    def test_a_start_date_needs_a_time_zone(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        response = demo_http.post(
            "/api/v1/subscriptions/preview",
            json={"customerId": "acme", "planId": "plan-pro", "startDate": "2026-03-01T00:00:00"},
        )
        assert error(response, 422)["field"] == "startDate"

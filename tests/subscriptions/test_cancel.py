"""POST /api/v1/subscriptions/{id}/cancel: now, at the end of the billing period, or on a
date; then the product's downgrade plan."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import stigg
from stigg.types.v1.subscription import Data as Subscription

from tests.support import START, Clocked, factories
from tests.support.subscriptions import (
    customer,
    error,
    get,
    has_sso,
    iso,
    live,
    seats,
    subscribe,
    updates,
)

PERIOD_END = datetime(2026, 2, 5, 10, tzinfo=UTC)


def _pro(client: stigg.Stigg, customer_id: str = "acme") -> Subscription:
    customer(client, customer_id)
    return subscribe(
        client, customer_id, plan_id="plan-pro", trial_override_configuration={"is_trial": False}
    )


class TestAtTheEndOfTheBillingPeriod:
    def test_is_the_default_and_the_downgrade_plan_follows(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client)
        clocked.clock.set(START + timedelta(days=3))
        cancelled = demo_client.v1.subscriptions.cancel(subscription.id).data
        assert cancelled.status == "ACTIVE"
        assert (cancelled.end_date, cancelled.cancellation_date) == (PERIOD_END, PERIOD_END)
        assert cancelled.effective_end_date == PERIOD_END
        assert cancelled.cancel_reason == "ScheduledCancellation"
        assert has_sso(demo_client)
        sso = demo_client.v1.customers.check_entitlement("acme", feature_id="feature-sso").data
        assert getattr(sso, "valid_until", None) == PERIOD_END

        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        assert not has_sso(demo_client)
        clocked.run_jobs()
        ended = get(demo_client, subscription.id)
        assert (ended.status, ended.end_date) == ("CANCELED", PERIOD_END)
        free = demo_client.v1.subscriptions.list(customer_id="acme", plan_id="plan-free").data
        assert [(s.status, s.start_date) for s in free] == [("ACTIVE", PERIOD_END)]
        assert seats(demo_client) == 3

    def test_drops_updates_that_would_come_at_or_after_the_end(
        self, demo_client: stigg.Stigg
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
        assert updates(get(demo_client, enterprise.id)) == [("DOWNGRADE", "plan-pro", PERIOD_END)]
        cancelled = demo_client.v1.subscriptions.cancel(
            enterprise.id, cancellation_time="END_OF_BILLING_PERIOD"
        ).data
        assert cancelled.future_updates == []
        assert cancelled.end_date == PERIOD_END

    def test_during_a_trial_ends_with_the_trial(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        trial = subscribe(demo_client, plan_id="plan-pro")
        trial_end = START + timedelta(days=14)
        cancelled = demo_client.v1.subscriptions.cancel(trial.id).data
        assert (cancelled.status, cancelled.end_date) == ("IN_TRIAL", trial_end)
        clocked.clock.set(trial_end + timedelta(seconds=1))
        clocked.run_jobs()
        assert get(demo_client, trial.id).status == "CANCELED"
        assert live(demo_client) == [("plan-free", "ACTIVE")]


class TestImmediately:
    def test_ends_now_and_the_downgrade_plan_starts_now(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client)
        now = START + timedelta(days=2)
        clocked.clock.set(now)
        cancelled = demo_client.v1.subscriptions.cancel(
            subscription.id, cancellation_time="IMMEDIATE"
        ).data
        assert cancelled.status == "CANCELED"
        assert (cancelled.end_date, cancelled.cancellation_date) == (now, now)
        assert cancelled.cancel_reason == "Immediate"
        assert live(demo_client) == [("plan-free", "ACTIVE")]
        assert not has_sso(demo_client)
        assert seats(demo_client) == 3

    def test_revoke_entitlements_ends_access_now(self, demo_client: stigg.Stigg) -> None:
        subscription = _pro(demo_client)
        cancelled = demo_client.v1.subscriptions.cancel(
            subscription.id,
            cancellation_action="REVOKE_ENTITLEMENTS",
            cancellation_time="END_OF_BILLING_PERIOD",
        ).data
        assert cancelled.status == "CANCELED"
        assert cancelled.end_date == START
        assert not has_sso(demo_client)

    def test_when_the_product_says_so_by_default(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        changed = demo_http.patch(
            "/api/v1/products/product-saas",
            json={
                "productSettings": {
                    "subscriptionCancellationTime": "IMMEDIATE",
                    "subscriptionEndSetup": "DOWNGRADE_TO_FREE",
                    "downgradePlanId": "plan-free",
                }
            },
        )
        assert changed.status_code == 200, changed.text
        subscription = _pro(demo_client)
        cancelled = demo_client.v1.subscriptions.cancel(subscription.id).data
        assert (cancelled.status, cancelled.end_date) == ("CANCELED", START)

    def test_without_a_downgrade_plan_nothing_follows(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        changed = demo_http.patch(
            "/api/v1/products/product-saas",
            json={"productSettings": {"subscriptionEndSetup": "CANCEL_SUBSCRIPTION"}},
        )
        assert changed.status_code == 200, changed.text
        subscription = _pro(demo_client)
        demo_client.v1.subscriptions.cancel(subscription.id, cancellation_time="IMMEDIATE")
        assert live(demo_client) == []
        assert seats(demo_client) == "NoActiveSubscription"

    def test_cancelling_the_downgrade_plan_itself_starts_nothing_new(
        self, demo_client: stigg.Stigg
    ) -> None:
        customer(demo_client)
        free = subscribe(demo_client, plan_id="plan-free")
        demo_client.v1.subscriptions.cancel(free.id, cancellation_time="IMMEDIATE")
        assert live(demo_client) == []

    def test_a_subscription_not_yet_started_ends_at_once(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        starts = START + timedelta(days=5)
        later = subscribe(demo_client, plan_id="plan-enterprise", start_date=starts)
        cancelled = demo_client.v1.subscriptions.cancel(later.id).data
        assert cancelled.status == "CANCELED"
        clocked.clock.set(starts + timedelta(days=1))
        assert seats(demo_client) != "unlimited"

    def test_a_resource_falls_back_to_the_downgrade_plan_on_its_own(
        self, demo_client: stigg.Stigg
    ) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-pro", resource_id="ws-1")
        demo_client.v1.subscriptions.cancel(subscription.id, cancellation_time="IMMEDIATE")
        found = demo_client.v1.subscriptions.list(customer_id="acme", status=["ACTIVE"])
        assert [(s.plan_id, s.resource_id) for s in found] == [("plan-free", "ws-1")]
        assert seats(demo_client, resource_id="ws-1") == 3
        assert seats(demo_client) == "NoActiveSubscription"


class TestOnADate:
    def test_ends_on_the_date(self, demo_client: stigg.Stigg, clocked: Clocked) -> None:
        subscription = _pro(demo_client)
        ends = START + timedelta(days=7, hours=3)
        cancelled = demo_client.v1.subscriptions.cancel(
            subscription.id, cancellation_time="SPECIFIC_DATE", end_date=ends
        ).data
        assert (cancelled.status, cancelled.end_date, cancelled.cancellation_date) == (
            "ACTIVE",
            ends,
            ends,
        )
        clocked.clock.set(ends - timedelta(seconds=1))
        assert has_sso(demo_client)
        clocked.clock.set(ends + timedelta(seconds=1))
        assert not has_sso(demo_client)
        clocked.run_jobs()
        ended = get(demo_client, subscription.id)
        assert (ended.status, ended.end_date) == ("CANCELED", ends)
        assert live(demo_client) == [("plan-free", "ACTIVE")]

    def test_a_date_after_the_period_lets_the_period_roll_first(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client)
        ends = datetime(2026, 3, 20, tzinfo=UTC)
        demo_client.v1.subscriptions.cancel(
            subscription.id, cancellation_time="SPECIFIC_DATE", end_date=ends
        )
        clocked.clock.set(datetime(2026, 3, 1, tzinfo=UTC))
        clocked.run_jobs()
        rolled = get(demo_client, subscription.id)
        assert (rolled.status, rolled.current_billing_period_start) == ("ACTIVE", PERIOD_END)
        clocked.clock.set(ends + timedelta(seconds=1))
        clocked.run_jobs()
        assert get(demo_client, subscription.id).status == "CANCELED"

    @pytest.mark.parametrize(
        "body",
        [
            {"cancellationTime": "SPECIFIC_DATE"},
            {"cancellationTime": "IMMEDIATE", "endDate": iso(START + timedelta(days=3))},
            {"endDate": iso(START + timedelta(days=3))},
            {"cancellationTime": "SPECIFIC_DATE", "endDate": iso(START - timedelta(days=1))},
            {"cancellationTime": "SPECIFIC_DATE", "endDate": "2026-02-01T00:00:00"},
        ],
    )
    def test_refused_dates_name_end_date(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, body: dict[str, str]
    ) -> None:
        subscription = _pro(demo_client)
        response = demo_http.post(f"/api/v1/subscriptions/{subscription.id}/cancel", json=body)
        assert error(response, 422)["field"] == "endDate"
        unchanged = get(demo_client, subscription.id)
        assert (unchanged.status, unchanged.end_date) == ("ACTIVE", None)


class TestEndedSubscriptions:
    def test_cancelling_twice_is_a_conflict(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        subscription = _pro(demo_client)
        demo_client.v1.subscriptions.cancel(subscription.id, cancellation_time="IMMEDIATE")
        response = demo_http.post(f"/api/v1/subscriptions/{subscription.id}/cancel", json={})
        problem = error(response, 409)
        assert problem["code"] == "subscription_ended"
        assert subscription.id in problem["message"]

    def test_an_expired_trial_cannot_be_cancelled(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        customer(demo_client)
        trial = subscribe(
            demo_client,
            plan_id="plan-pro",
            trial_override_configuration={
                "is_trial": True,
                "trial_end_behavior": "CANCEL_SUBSCRIPTION",
            },
        )
        clocked.clock.set(START + timedelta(days=15))
        clocked.run_jobs()
        assert get(demo_client, trial.id).status == "EXPIRED"
        response = demo_http.post(
            f"/api/v1/subscriptions/{trial.id}/cancel", json={"cancellationTime": "IMMEDIATE"}
        )
        assert error(response, 409)["code"] == "subscription_ended"

    def test_a_scheduled_cancellation_can_be_brought_forward(
        self, demo_client: stigg.Stigg
    ) -> None:
        subscription = _pro(demo_client)
        demo_client.v1.subscriptions.cancel(subscription.id)
        now = demo_client.v1.subscriptions.cancel(
            subscription.id, cancellation_time="IMMEDIATE"
        ).data
        assert (now.status, now.end_date, now.cancel_reason) == ("CANCELED", START, "Immediate")


class TestOtherProducts:
    def test_cancelling_in_one_product_leaves_the_other(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        factories.product(demo_http, id="product-reports")
        factories.plan(
            demo_http,
            id="plan-reports",
            product_id="product-reports",
            entitlements=[{"id": "feature-sso", "type": "FEATURE"}],
            publish=True,
        )
        customer(demo_client)
        reports = subscribe(demo_client, plan_id="plan-reports")
        subscribe(demo_client, plan_id="plan-free")
        demo_client.v1.subscriptions.cancel(reports.id, cancellation_time="IMMEDIATE")
        assert live(demo_client) == [("plan-free", "ACTIVE")]
        assert not has_sso(demo_client)

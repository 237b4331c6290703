"""Provisioning beside or over what a customer holds: upgrades replace at once, downgrades
wait for the end of the billing period, products with several subscriptions add, and
resources keep their own."""

from datetime import UTC, datetime, timedelta

import httpx
import stigg

from tests.support import START, Clocked, factories
from tests.support.subscriptions import (
    check,
    customer,
    error,
    extra,
    get,
    has_sso,
    live,
    republish,
    seats,
    subscribe,
    updates,
)

PERIOD_END = datetime(2026, 2, 5, 10, tzinfo=UTC)


def _basic(http: httpx.Client) -> None:
    """A paid plan of product-saas that extends nothing."""
    factories.plan(
        http,
        id="plan-basic",
        pricingType="PAID",
        entitlements=[factories.seats(8)],
        publish=True,
    )


class TestUpgrades:
    def test_free_to_pro_replaces_at_once(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        free = subscribe(demo_client, plan_id="plan-free")
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-pro"
        ).data
        assert provisioned.is_scheduled is False
        assert provisioned.subscription is not None
        assert provisioned.subscription.id != free.id
        assert provisioned.subscription.status == "IN_TRIAL"
        old = get(demo_client, free.id)
        assert (old.status, old.cancel_reason, old.end_date) == (
            "CANCELED",
            "UPGRADE_OR_DOWNGRADE",
            START,
        )
        assert live(demo_client) == [("plan-pro", "IN_TRIAL")]
        assert has_sso(demo_client)

    def test_pro_to_enterprise_during_the_trial(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        pro = subscribe(demo_client, plan_id="plan-pro")
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        assert (enterprise.status, enterprise.trial_end_date) == ("ACTIVE", None)
        assert get(demo_client, pro.id).status == "CANCELED"
        assert live(demo_client) == [("plan-enterprise", "ACTIVE")]
        assert seats(demo_client) == "unlimited"

    def test_free_to_a_paid_plan_outside_the_family(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        _basic(demo_http)
        customer(demo_client)
        subscribe(demo_client, plan_id="plan-free")
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-basic"
        ).data
        assert provisioned.is_scheduled is False
        assert live(demo_client) == [("plan-basic", "ACTIVE")]
        assert seats(demo_client) == 8

    def test_between_unrelated_paid_plans_is_not_a_downgrade(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        _basic(demo_http)
        customer(demo_client)
        subscribe(demo_client, plan_id="plan-pro", trial_override_configuration={"is_trial": False})
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-basic"
        ).data
        assert provisioned.is_scheduled is False
        assert live(demo_client) == [("plan-basic", "ACTIVE")]


class TestDowngrades:
    def test_to_an_ancestor_waits_for_the_end_of_the_period(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(
            demo_client,
            plan_id="plan-enterprise",
            addons=[{"id": "addon-extra-seats", "quantity": 2}],
        )
        clocked.clock.set(START + timedelta(days=4))
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-pro"
        ).data
        assert (provisioned.is_scheduled, provisioned.id) == (True, enterprise.id)
        assert provisioned.subscription is not None
        assert provisioned.subscription.plan_id == "plan-enterprise"
        current = get(demo_client, enterprise.id)
        assert current.status == "ACTIVE"
        assert updates(current) == [("DOWNGRADE", "plan-pro", PERIOD_END)]
        assert seats(demo_client) == "unlimited"

        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        assert seats(demo_client) == 20
        clocked.run_jobs()
        after = get(demo_client, enterprise.id)
        assert (after.plan_id, after.status, after.pricing_type) == ("plan-pro", "ACTIVE", "PAID")
        assert after.addons == []  # the downgrade named no add-ons
        assert after.future_updates == []
        assert after.current_billing_period_start == PERIOD_END
        assert live(demo_client) == [("plan-pro", "ACTIVE")]
        assert seats(demo_client) == 20

    def test_paid_to_free_waits(self, demo_client: stigg.Stigg, demo_http: httpx.Client) -> None:
        _basic(demo_http)
        customer(demo_client)
        basic = subscribe(demo_client, plan_id="plan-basic")
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-free"
        ).data
        assert provisioned.is_scheduled is True
        assert updates(get(demo_client, basic.id)) == [("DOWNGRADE", "plan-free", PERIOD_END)]

    def test_the_new_plan_can_bring_addons_and_a_billing_period(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        demo_client.v1.subscriptions.provision(
            customer_id="acme",
            plan_id="plan-pro",
            billing_period="ANNUALLY",
            addons=[{"id": "addon-extra-seats", "quantity": 1}],
        )
        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        assert seats(demo_client) == 30
        clocked.run_jobs()
        after = get(demo_client, enterprise.id)
        assert after.plan_id == "plan-pro"
        assert [(a.id, a.quantity) for a in after.addons or []] == [("addon-extra-seats", 1)]
        assert extra(after, "billingPeriod") == "ANNUALLY"
        assert after.current_billing_period_start == PERIOD_END
        assert after.current_billing_period_end == datetime(2027, 2, 5, 10, tzinfo=UTC)

    def test_an_addon_kept_across_the_downgrade(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(
            demo_client,
            plan_id="plan-enterprise",
            addons=[{"id": "addon-extra-seats", "quantity": 1}],
        )
        demo_client.v1.subscriptions.provision(
            customer_id="acme",
            plan_id="plan-pro",
            addons=[{"id": "addon-extra-seats", "quantity": 1}],
        )
        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        clocked.run_jobs()
        after = get(demo_client, enterprise.id)
        assert (after.plan_id, after.future_updates) == ("plan-pro", [])
        assert [(a.id, a.quantity) for a in after.addons or []] == [("addon-extra-seats", 1)]
        assert seats(demo_client) == 30

    def test_immediate_replaces_at_once(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-free", schedule_strategy="IMMEDIATE"
        ).data
        assert provisioned.is_scheduled is False
        old = get(demo_client, enterprise.id)
        assert (old.status, old.cancel_reason) == ("CANCELED", "UPGRADE_OR_DOWNGRADE")
        assert live(demo_client) == [("plan-free", "ACTIVE")]
        assert seats(demo_client) == 3

    def test_a_second_downgrade_replaces_the_first(self, demo_client: stigg.Stigg) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        assert updates(get(demo_client, enterprise.id)) == [("DOWNGRADE", "plan-free", PERIOD_END)]

    def test_at_the_end_of_the_billing_month_of_an_annual_subscription(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise", billing_period="ANNUALLY")
        clocked.clock.set(datetime(2026, 3, 10, tzinfo=UTC))
        demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-pro", schedule_strategy="END_OF_BILLING_MONTH"
        )
        month_end = datetime(2026, 4, 5, 10, tzinfo=UTC)
        assert updates(get(demo_client, enterprise.id)) == [("DOWNGRADE", "plan-pro", month_end)]

    def test_refused_when_the_subscription_ends_first(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        demo_client.v1.subscriptions.cancel(
            enterprise.id, cancellation_time="SPECIFIC_DATE", end_date=START + timedelta(days=3)
        )
        response = demo_http.post(
            "/api/v1/subscriptions", json={"customerId": "acme", "planId": "plan-pro"}
        )
        assert error(response, 422)["field"] == "planId"

    def test_during_a_trial_waits_for_the_trial_end(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        pro = subscribe(demo_client, plan_id="plan-pro")
        trial_end = START + timedelta(days=14)
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        assert updates(get(demo_client, pro.id)) == [("DOWNGRADE", "plan-free", trial_end)]
        clocked.clock.set(trial_end + timedelta(seconds=1))
        clocked.run_jobs()
        after = get(demo_client, pro.id)
        assert (after.plan_id, after.status) == ("plan-free", "ACTIVE")
        assert after.current_billing_period_start == trial_end
        assert seats(demo_client) == 3


class TestSeveralSubscriptionsInAProduct:
    def test_each_provision_adds_one(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        factories.product(demo_http, id="product-multi", multipleSubscriptions=True)
        factories.plan(
            demo_http,
            id="plan-small",
            product_id="product-multi",
            entitlements=[factories.seats(5)],
            publish=True,
        )
        factories.plan(
            demo_http,
            id="plan-large",
            product_id="product-multi",
            entitlements=[factories.seats(9)],
            publish=True,
        )
        customer(demo_client)
        first = subscribe(demo_client, plan_id="plan-large")
        second = subscribe(demo_client, plan_id="plan-small")
        third = subscribe(demo_client, plan_id="plan-small")
        assert len({first.id, second.id, third.id}) == 3
        assert live(demo_client) == [
            ("plan-large", "ACTIVE"),
            ("plan-small", "ACTIVE"),
            ("plan-small", "ACTIVE"),
        ]
        # Independent grants: the most generous prevails.
        assert seats(demo_client) == 9
        demo_client.v1.subscriptions.cancel(first.id, cancellation_time="IMMEDIATE")
        assert seats(demo_client) == 5

    def test_products_do_not_replace_each_other(
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
        subscribe(demo_client, plan_id="plan-free")
        subscribe(demo_client, plan_id="plan-reports")
        assert live(demo_client) == [("plan-free", "ACTIVE"), ("plan-reports", "ACTIVE")]
        assert has_sso(demo_client)
        assert seats(demo_client) == 3


class TestResources:
    def test_a_resource_holds_its_own_subscription(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        customer_level = subscribe(demo_client, plan_id="plan-free")
        workspace = subscribe(demo_client, plan_id="plan-pro", resource_id="ws-1")
        assert workspace.resource_id == "ws-1"
        assert get(demo_client, customer_level.id).status == "ACTIVE"
        assert customer_level.resource_id is None

        # The customer alone sees its own subscriptions; a resource sees its own and the
        # customer's.
        assert not has_sso(demo_client)
        assert seats(demo_client) == 3
        assert has_sso(demo_client, resource_id="ws-1")
        assert seats(demo_client, resource_id="ws-1") == 20
        assert check(demo_client, "feature-sso", resource_id="ws-2") == (
            False,
            "CustomerResourceNotFound",
            None,
        )
        resources = demo_http.get("/api/v1/customers/acme/resources").json()["data"]
        assert [r["id"] for r in resources] == ["ws-1"]

    def test_subscriptions_of_one_resource_replace_each_other_only(
        self, demo_client: stigg.Stigg
    ) -> None:
        customer(demo_client)
        one = subscribe(demo_client, plan_id="plan-pro", resource_id="ws-1")
        two = subscribe(demo_client, plan_id="plan-free", resource_id="ws-2")
        upgraded = subscribe(demo_client, plan_id="plan-enterprise", resource_id="ws-2")
        assert get(demo_client, one.id).status == "IN_TRIAL"
        assert get(demo_client, two.id).status == "CANCELED"
        assert seats(demo_client, resource_id="ws-1") == 20
        assert seats(demo_client, resource_id="ws-2") == "unlimited"
        assert upgraded.resource_id == "ws-2"
        listed = demo_client.v1.subscriptions.list(customer_id="acme", resource_id="ws-2")
        assert [s.id for s in listed] == [two.id, upgraded.id]

    def test_a_downgrade_of_a_resource_is_scheduled_on_that_resource(
        self, demo_client: stigg.Stigg
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise", resource_id="ws-1")
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-pro", resource_id="ws-1"
        ).data
        assert (provisioned.is_scheduled, provisioned.id) == (True, enterprise.id)
        # The same plan at customer level is a new subscription, not a downgrade.
        customer_level = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-pro"
        ).data
        assert customer_level.is_scheduled is False
        assert customer_level.id != enterprise.id


class TestTrialFromACatalogChange:
    def test_a_plan_given_a_trial_later_offers_it_to_new_subscriptions(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        republish(
            demo_http,
            "plans",
            "plan-enterprise",
            fields={"defaultTrialConfig": {"duration": 30, "units": "DAY"}},
        )
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        assert enterprise.status == "IN_TRIAL"
        assert enterprise.trial_end_date == START + timedelta(days=30)

"""Moving subscriptions to the latest published versions: POST .../migrate, and publishing
with migrationType ALL_CUSTOMERS (NEW_CUSTOMERS leaves existing subscriptions alone)."""

from datetime import UTC, datetime, timedelta

import httpx
import stigg
from stigg.types.v1.subscription import Data as Subscription

from tests.support import Clocked
from tests.support.subscriptions import (
    customer,
    error,
    extra,
    get,
    republish,
    seats,
    subscribe,
    updates,
)

PERIOD_END = datetime(2026, 2, 5, 10, tzinfo=UTC)


def _pro(client: stigg.Stigg, customer_id: str = "acme", packs: int = 0) -> Subscription:
    customer(client, customer_id)
    addons = [{"id": "addon-extra-seats", "quantity": packs}] if packs else []
    return subscribe(
        client,
        customer_id,
        plan_id="plan-pro",
        addons=addons,
        trial_override_configuration={"is_trial": False},
    )


def _pro_with_25_seats(http: httpx.Client, migration: str = "NEW_CUSTOMERS") -> None:
    republish(
        http,
        "plans",
        "plan-pro",
        migration=migration,
        entitlements={"feature-seats": {"usageLimit": 25}},
    )


def _version(subscription: Subscription) -> int:
    version: int = extra(subscription, "planVersion")
    return version


class TestPublishingForNewCustomers:
    def test_existing_subscriptions_keep_their_version(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        old = _pro(demo_client, "acme")
        _pro_with_25_seats(demo_http)
        assert _version(get(demo_client, old.id)) == 1
        assert seats(demo_client, "acme") == 20
        new = _pro(demo_client, "globex")
        assert _version(new) == 2
        assert seats(demo_client, "globex") == 25


class TestMigrate:
    def test_immediately_by_default(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        subscription = _pro(demo_client)
        _pro_with_25_seats(demo_http)
        migrated = demo_client.v1.subscriptions.migrate(subscription.id).data
        assert (migrated.id, migrated.plan_id, _version(migrated)) == (
            subscription.id,
            "plan-pro",
            2,
        )
        assert migrated.future_updates == []
        assert seats(demo_client) == 25

    def test_addons_move_too(self, demo_client: stigg.Stigg, demo_http: httpx.Client) -> None:
        subscription = _pro(demo_client, packs=2)
        assert seats(demo_client) == 40
        republish(
            demo_http,
            "addons",
            "addon-extra-seats",
            entitlements={"feature-seats": {"usageLimit": 15}},
        )
        assert seats(demo_client) == 40
        migrated = demo_client.v1.subscriptions.migrate(
            subscription.id, subscription_migration_time="IMMEDIATE"
        ).data
        assert [(a.id, a.quantity) for a in migrated.addons or []] == [("addon-extra-seats", 2)]
        assert seats(demo_client) == 50

    def test_at_the_end_of_the_billing_period(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client)
        _pro_with_25_seats(demo_http)
        scheduled = demo_client.v1.subscriptions.migrate(
            subscription.id, subscription_migration_time="END_OF_BILLING_PERIOD"
        ).data
        assert _version(scheduled) == 1
        assert updates(scheduled) == [("MIGRATE_TO_LATEST", "plan-pro", PERIOD_END)]
        assert seats(demo_client) == 20

        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        assert seats(demo_client) == 25
        clocked.run_jobs()
        after = get(demo_client, subscription.id)
        assert _version(after) == 2
        assert after.future_updates == []
        assert after.current_billing_period_start == PERIOD_END

    def test_at_the_end_of_the_period_with_addons_already_latest(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client, packs=1)
        _pro_with_25_seats(demo_http)
        demo_client.v1.subscriptions.migrate(
            subscription.id, subscription_migration_time="END_OF_BILLING_PERIOD"
        )
        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        clocked.run_jobs()
        after = get(demo_client, subscription.id)
        assert (_version(after), after.future_updates) == (2, [])
        assert [(a.id, a.quantity) for a in after.addons or []] == [("addon-extra-seats", 1)]
        assert seats(demo_client) == 35

    def test_on_the_latest_version_changes_nothing(self, demo_client: stigg.Stigg) -> None:
        subscription = _pro(demo_client, packs=1)
        migrated = demo_client.v1.subscriptions.migrate(subscription.id).data
        assert _version(migrated) == 1
        assert [(a.id, a.quantity) for a in migrated.addons or []] == [("addon-extra-seats", 1)]
        assert seats(demo_client) == 30

    def test_an_ended_subscription_is_a_conflict(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        subscription = _pro(demo_client)
        demo_client.v1.subscriptions.cancel(subscription.id, cancellation_time="IMMEDIATE")
        _pro_with_25_seats(demo_http)
        response = demo_http.post(f"/api/v1/subscriptions/{subscription.id}/migrate", json={})
        assert error(response, 409)["code"] == "subscription_ended"
        assert _version(get(demo_client, subscription.id)) == 1


class TestPublishingForAllCustomers:
    def test_live_subscriptions_move_at_once(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        active = _pro(demo_client, "acme")
        customer(demo_client, "globex")
        trial = subscribe(demo_client, "globex", plan_id="plan-pro")
        customer(demo_client, "initech")
        ended = subscribe(demo_client, "initech", plan_id="plan-pro")
        demo_client.v1.subscriptions.cancel(ended.id, cancellation_time="IMMEDIATE")

        _pro_with_25_seats(demo_http, migration="ALL_CUSTOMERS")
        assert _version(get(demo_client, active.id)) == 2
        assert _version(get(demo_client, trial.id)) == 2
        assert get(demo_client, trial.id).status == "IN_TRIAL"
        assert _version(get(demo_client, ended.id)) == 1
        assert seats(demo_client, "acme") == 25
        assert seats(demo_client, "globex") == 25

    def test_an_addon_moves_every_holder(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        _pro(demo_client, packs=2)
        republish(
            demo_http,
            "addons",
            "addon-extra-seats",
            migration="ALL_CUSTOMERS",
            entitlements={"feature-seats": {"usageLimit": 15}},
        )
        assert seats(demo_client) == 50

    def test_a_waiting_downgrade_lands_on_the_new_version(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
        _pro_with_25_seats(demo_http, migration="ALL_CUSTOMERS")
        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        clocked.run_jobs()
        after = get(demo_client, enterprise.id)
        assert (after.plan_id, _version(after)) == ("plan-pro", 2)
        assert seats(demo_client) == 25

    def test_a_waiting_addon_decrease_keeps_the_new_version(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client, packs=3)
        demo_client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 1}]
        )
        republish(
            demo_http,
            "addons",
            "addon-extra-seats",
            migration="ALL_CUSTOMERS",
            entitlements={"feature-seats": {"usageLimit": 15}},
        )
        assert seats(demo_client) == 65  # 20 + 3 x 15
        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        assert seats(demo_client) == 35  # 20 + 1 x 15: the new version, one pack
        clocked.run_jobs()
        assert seats(demo_client) == 35

    def test_customers_of_other_plans_are_untouched(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        customer(demo_client)
        free = subscribe(demo_client, plan_id="plan-free")
        _pro_with_25_seats(demo_http, migration="ALL_CUSTOMERS")
        assert (get(demo_client, free.id).plan_id, _version(get(demo_client, free.id))) == (
            "plan-free",
            1,
        )
        assert seats(demo_client) == 3

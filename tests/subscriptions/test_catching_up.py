"""Requests that arrive after something fell due but before the job ran act on the
subscription as it is by then, never on the state the job has yet to catch up on."""

from datetime import UTC, datetime, timedelta

import httpx
import stigg

from tests.support import START, Clocked
from tests.support.subscriptions import customer, error, get, live, seats, subscribe

PERIOD_END = datetime(2026, 2, 5, 10, tzinfo=UTC)


class TestBeforeTheJobRuns:
    def test_cancelling_at_period_end_uses_the_present_period(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-free")
        clocked.clock.set(datetime(2026, 3, 10, tzinfo=UTC))
        cancelled = demo_client.v1.subscriptions.cancel(subscription.id).data
        assert cancelled.status == "ACTIVE"
        assert cancelled.current_billing_period_start == datetime(2026, 3, 5, 10, tzinfo=UTC)
        assert cancelled.end_date == datetime(2026, 4, 5, 10, tzinfo=UTC)

    def test_cancelling_after_a_due_downgrade_cancels_the_new_plan(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
        clocked.clock.set(PERIOD_END + timedelta(days=1))
        cancelled = demo_client.v1.subscriptions.cancel(
            enterprise.id, cancellation_time="IMMEDIATE"
        ).data
        assert (cancelled.plan_id, cancelled.status) == ("plan-pro", "CANCELED")
        assert live(demo_client) == [("plan-free", "ACTIVE")]

    def test_changing_a_trial_that_already_expired_is_a_conflict(
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
        response = demo_http.patch(
            f"/api/v1/subscriptions/{trial.id}",
            json={"addons": [{"id": "addon-extra-seats", "quantity": 1}]},
        )
        assert error(response, 409)["code"] == "subscription_ended"
        clocked.run_jobs()
        assert get(demo_client, trial.id).status == "EXPIRED"

    def test_provisioning_after_an_expired_trial_replaces_the_downgrade_plan(
        self, demo_client: stigg.Stigg, clocked: Clocked
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
        paid = subscribe(demo_client, plan_id="plan-pro")
        # The trial was used up: this one is paid from the start.
        assert (paid.status, paid.trial_end_date) == ("ACTIVE", None)
        assert get(demo_client, trial.id).status == "EXPIRED"
        free = demo_client.v1.subscriptions.list(customer_id="acme", plan_id="plan-free").data
        assert [(s.status, s.cancel_reason) for s in free] == [("CANCELED", "UPGRADE_OR_DOWNGRADE")]
        assert live(demo_client) == [("plan-pro", "ACTIVE")]
        assert seats(demo_client) == 20


class TestADueAddonDecrease:
    def test_a_request_after_it_fell_due_applies_it_first(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscription = subscribe(
            demo_client,
            plan_id="plan-pro",
            addons=[{"id": "addon-extra-seats", "quantity": 3}],
            trial_override_configuration={"is_trial": False},
        )
        demo_client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 1}]
        )
        clocked.clock.set(PERIOD_END + timedelta(days=1))
        response = demo_http.patch(
            f"/api/v1/subscriptions/{subscription.id}", json={"metadata": {"seen": "yes"}}
        )
        assert response.status_code == 200, response.text
        updated = response.json()["data"]
        assert updated["addons"] == [{"id": "addon-extra-seats", "quantity": 1}]
        assert updated["futureUpdates"] == []
        assert updated["metadata"] == {"seen": "yes"}


class TestUpgradeOverAWaitingDowngrade:
    def test_the_waiting_downgrade_goes_with_the_old_subscription(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        pro = subscribe(demo_client, plan_id="plan-pro")
        demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        old = get(demo_client, pro.id)
        assert (old.status, old.future_updates) == ("CANCELED", [])
        clocked.clock.set(START + timedelta(days=20))
        clocked.run_jobs()
        assert live(demo_client) == [("plan-enterprise", "ACTIVE")]
        assert get(demo_client, enterprise.id).plan_id == "plan-enterprise"
        assert seats(demo_client) == "unlimited"


class TestArchivedCustomer:
    def test_archiving_ends_every_live_subscription(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        workspace = subscribe(demo_client, plan_id="plan-pro", resource_id="ws-1")
        own = subscribe(demo_client, plan_id="plan-free")
        clocked.clock.set(START + timedelta(days=2))
        demo_client.v1.customers.archive("acme")
        for subscription_id in (workspace.id, own.id):
            ended = get(demo_client, subscription_id)
            assert (ended.status, ended.cancel_reason) == ("CANCELED", "CustomerArchived")
            assert ended.end_date == START + timedelta(days=2)
        # No downgrade plan for an archived customer.
        assert live(demo_client) == []

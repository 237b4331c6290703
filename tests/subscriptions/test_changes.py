"""PATCH /api/v1/subscriptions/{id} and DELETE .../future-update/schedule: increases now,
decreases at the end of the billing period unless IMMEDIATE, and undoing what waits."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stigg
from stigg.types.v1.subscription import Data as Subscription

from tests.support import START, Clocked
from tests.support.subscriptions import (
    customer,
    error,
    extra,
    get,
    has_sso,
    iso,
    live,
    seats,
    subscribe,
    updates,
)

PERIOD_END = datetime(2026, 2, 5, 10, tzinfo=UTC)
NO_TRIAL = {"is_trial": False}


def _pro(client: stigg.Stigg, packs: int = 0, **fields: Any) -> Subscription:
    """acme on pro, past its trial, with `packs` of extra seats."""
    customer(client)
    addons = [{"id": "addon-extra-seats", "quantity": packs}] if packs else []
    return subscribe(
        client,
        plan_id="plan-pro",
        addons=addons,
        trial_override_configuration=NO_TRIAL,
        **fields,
    )


def _packs(subscription: Subscription) -> list[tuple[str, int]]:
    return [(a.id, a.quantity) for a in subscription.addons or []]


class TestAddonChanges:
    def test_an_increase_applies_at_once(self, demo_client: stigg.Stigg) -> None:
        subscription = _pro(demo_client, packs=1)
        assert seats(demo_client) == 30
        updated = demo_client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 3}]
        ).data
        assert _packs(updated) == [("addon-extra-seats", 3)]
        assert updated.future_updates == []
        assert seats(demo_client) == 50

    def test_adding_a_first_addon_applies_at_once(self, demo_client: stigg.Stigg) -> None:
        subscription = _pro(demo_client)
        updated = demo_client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 1}]
        ).data
        assert _packs(updated) == [("addon-extra-seats", 1)]
        assert seats(demo_client) == 30

    def test_a_decrease_waits_for_the_end_of_the_period(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client, packs=3)
        clocked.clock.set(START + timedelta(days=5))
        updated = demo_client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 1}]
        ).data
        assert _packs(updated) == [("addon-extra-seats", 3)]
        assert updates(updated) == [("ADDON", None, PERIOD_END)]
        assert updated.future_updates is not None
        assert updated.future_updates[0].schedule_status == "SCHEDULED"
        assert seats(demo_client) == 50

        # At the period's end the decrease holds in checks, then the job makes it so.
        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        assert seats(demo_client) == 30
        clocked.run_jobs()
        after = get(demo_client, subscription.id)
        assert _packs(after) == [("addon-extra-seats", 1)]
        assert after.future_updates == []
        assert after.current_billing_period_start == PERIOD_END
        assert after.current_billing_period_end == datetime(2026, 3, 5, 10, tzinfo=UTC)
        assert seats(demo_client) == 30

    def test_removing_every_addon_is_a_decrease(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client, packs=2)
        updated = demo_client.v1.subscriptions.update(subscription.id, addons=[]).data
        assert _packs(updated) == [("addon-extra-seats", 2)]
        assert updates(updated) == [("ADDON", None, PERIOD_END)]
        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        clocked.run_jobs()
        assert _packs(get(demo_client, subscription.id)) == []
        assert seats(demo_client) == 20

    def test_immediate_decrease(self, demo_client: stigg.Stigg) -> None:
        subscription = _pro(demo_client, packs=3)
        updated = demo_client.v1.subscriptions.update(
            subscription.id,
            addons=[{"id": "addon-extra-seats", "quantity": 1}],
            schedule_strategy="IMMEDIATE",
        ).data
        assert _packs(updated) == [("addon-extra-seats", 1)]
        assert updated.future_updates == []
        assert seats(demo_client) == 30

    def test_a_later_increase_replaces_a_waiting_decrease(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client, packs=3)
        demo_client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 1}]
        )
        # The list is sent in full: the customer now asks for four packs, from now on.
        updated = demo_client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 4}]
        ).data
        assert _packs(updated) == [("addon-extra-seats", 4)]
        assert updated.future_updates == []
        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        assert seats(demo_client) == 60
        clocked.run_jobs()
        assert _packs(get(demo_client, subscription.id)) == [("addon-extra-seats", 4)]

    def test_a_new_decrease_replaces_the_waiting_one(self, demo_client: stigg.Stigg) -> None:
        subscription = _pro(demo_client, packs=3)
        demo_client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 2}]
        )
        updated = demo_client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 1}]
        ).data
        assert updates(updated) == [("ADDON", None, PERIOD_END)]

    def test_addons_are_checked_like_at_provision(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        subscription = _pro(demo_client, packs=1)
        response = demo_http.patch(
            f"/api/v1/subscriptions/{subscription.id}",
            json={"addons": [{"id": "addon-nope", "quantity": 1}]},
        )
        assert error(response, 422)["field"] == "addons.0.id"
        assert _packs(get(demo_client, subscription.id)) == [("addon-extra-seats", 1)]


class TestBillingPeriodChanges:
    def test_monthly_to_annually_applies_at_once(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client)
        now = START + timedelta(days=10)
        clocked.clock.set(now)
        updated = demo_client.v1.subscriptions.update(
            subscription.id, billing_period="ANNUALLY"
        ).data
        assert extra(updated, "billingPeriod") == "ANNUALLY"
        assert updated.billing_cycle_anchor == now
        assert updated.current_billing_period_start == now
        assert updated.current_billing_period_end == datetime(2027, 1, 15, 10, tzinfo=UTC)
        assert updated.future_updates == []

    def test_annually_to_monthly_waits_for_the_end_of_the_period(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client, billing_period="ANNUALLY")
        year_end = datetime(2027, 1, 5, 10, tzinfo=UTC)
        updated = demo_client.v1.subscriptions.update(
            subscription.id, billing_period="MONTHLY"
        ).data
        assert extra(updated, "billingPeriod") == "ANNUALLY"
        assert updates(updated) == [("BILLING_PERIOD", None, year_end)]
        clocked.clock.set(year_end + timedelta(seconds=1))
        clocked.run_jobs()
        after = get(demo_client, subscription.id)
        assert extra(after, "billingPeriod") == "MONTHLY"
        assert after.billing_cycle_anchor == year_end
        assert after.current_billing_period_start == year_end
        assert after.current_billing_period_end == datetime(2027, 2, 5, 10, tzinfo=UTC)
        assert after.future_updates == []

    def test_annually_to_monthly_immediately(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client, billing_period="ANNUALLY")
        now = START + timedelta(days=3)
        clocked.clock.set(now)
        updated = demo_client.v1.subscriptions.update(
            subscription.id, billing_period="MONTHLY", schedule_strategy="IMMEDIATE"
        ).data
        assert extra(updated, "billingPeriod") == "MONTHLY"
        assert updated.current_billing_period_start == now
        assert updated.current_billing_period_end == datetime(2026, 2, 8, 10, tzinfo=UTC)
        assert updated.future_updates == []

    def test_billing_cycle_anchor_now_restarts_the_period(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client)
        now = START + timedelta(days=7)
        clocked.clock.set(now)
        updated = demo_client.v1.subscriptions.update(
            subscription.id, billing_cycle_anchor="NOW"
        ).data
        assert updated.billing_cycle_anchor == now
        assert updated.current_billing_period_start == now
        assert updated.current_billing_period_end == datetime(2026, 2, 12, 10, tzinfo=UTC)


class TestOtherFields:
    def test_metadata_is_replaced_whole(self, demo_client: stigg.Stigg) -> None:
        subscription = _pro(demo_client, metadata={"a": "1", "b": "2"})
        updated = demo_client.v1.subscriptions.update(subscription.id, metadata={"c": "3"}).data
        assert updated.metadata == {"c": "3"}
        assert get(demo_client, subscription.id).metadata == {"c": "3"}

    def test_an_empty_patch_changes_nothing(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        subscription = _pro(demo_client, packs=1, metadata={"a": "1"})
        response = demo_http.patch(f"/api/v1/subscriptions/{subscription.id}", json={})
        assert response.status_code == 200, response.text
        after = get(demo_client, subscription.id)
        assert (after.metadata, _packs(after)) == ({"a": "1"}, [("addon-extra-seats", 1)])

    def test_moving_the_trial_end(self, demo_client: stigg.Stigg, clocked: Clocked) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-pro")
        new_end = START + timedelta(days=20)
        updated = demo_client.v1.subscriptions.update(subscription.id, trial_end_date=new_end).data
        assert (updated.status, updated.trial_end_date) == ("IN_TRIAL", new_end)
        assert updated.current_billing_period_end == new_end
        clocked.clock.set(START + timedelta(days=15))
        clocked.run_jobs()
        assert get(demo_client, subscription.id).status == "IN_TRIAL"
        clocked.clock.set(new_end + timedelta(seconds=1))
        clocked.run_jobs()
        converted = get(demo_client, subscription.id)
        assert (converted.status, converted.billing_cycle_anchor) == ("ACTIVE", new_end)

    def test_trial_end_only_for_a_trial_and_in_the_future(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        active = _pro(demo_client)
        response = demo_http.patch(
            f"/api/v1/subscriptions/{active.id}",
            json={"trialEndDate": iso(START + timedelta(days=3))},
        )
        assert error(response, 422)["field"] == "trialEndDate"
        customer(demo_client, "globex")
        trial = subscribe(demo_client, "globex", plan_id="plan-pro")
        response = demo_http.patch(
            f"/api/v1/subscriptions/{trial.id}",
            json={"trialEndDate": iso(START - timedelta(days=1))},
        )
        assert error(response, 422)["field"] == "trialEndDate"


class TestCancellationDate:
    def test_setting_then_clearing_it(self, demo_client: stigg.Stigg, clocked: Clocked) -> None:
        subscription = _pro(demo_client)
        ends = START + timedelta(days=20)
        scheduled = demo_client.v1.subscriptions.update(
            subscription.id, cancellation_date=ends
        ).data
        assert (scheduled.status, scheduled.end_date, scheduled.cancellation_date) == (
            "ACTIVE",
            ends,
            ends,
        )
        assert scheduled.cancel_reason == "ScheduledCancellation"

        undone = demo_client.v1.subscriptions.update(subscription.id, cancellation_date=None).data
        assert (undone.end_date, undone.cancellation_date, undone.cancel_reason) == (
            None,
            None,
            None,
        )
        clocked.clock.set(ends + timedelta(days=1))
        assert has_sso(demo_client)
        clocked.run_jobs()
        assert get(demo_client, subscription.id).status == "ACTIVE"
        assert live(demo_client) == [("plan-pro", "ACTIVE")]

    def test_clearing_undoes_a_cancellation_at_period_end(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        subscription = _pro(demo_client)
        demo_client.v1.subscriptions.cancel(subscription.id)
        demo_client.v1.subscriptions.update(subscription.id, cancellation_date=None)
        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        clocked.run_jobs()
        assert get(demo_client, subscription.id).status == "ACTIVE"
        assert has_sso(demo_client)


class TestCancellingScheduledUpdates:
    def test_a_scheduled_downgrade_is_dropped(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        enterprise = subscribe(demo_client, plan_id="plan-enterprise")
        scheduled = demo_client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
        assert scheduled.data.is_scheduled is True
        assert updates(get(demo_client, enterprise.id)) == [("DOWNGRADE", "plan-pro", PERIOD_END)]

        dropped = demo_client.v1.subscriptions.future_update.cancel_schedule(enterprise.id)
        assert dropped.data.id == enterprise.id
        assert get(demo_client, enterprise.id).future_updates == []

        clocked.clock.set(PERIOD_END + timedelta(seconds=1))
        assert seats(demo_client) == "unlimited"
        clocked.run_jobs()
        after = get(demo_client, enterprise.id)
        assert (after.plan_id, after.status) == ("plan-enterprise", "ACTIVE")
        assert after.current_billing_period_start == PERIOD_END

    def test_addon_and_billing_period_changes_are_dropped_together(
        self, demo_client: stigg.Stigg
    ) -> None:
        subscription = _pro(demo_client, packs=2, billing_period="ANNUALLY")
        demo_client.v1.subscriptions.update(
            subscription.id,
            billing_period="MONTHLY",
            addons=[{"id": "addon-extra-seats", "quantity": 1}],
        )
        assert {u[0] for u in updates(get(demo_client, subscription.id))} == {
            "BILLING_PERIOD",
            "ADDON",
        }
        demo_client.v1.subscriptions.future_update.cancel_schedule(subscription.id)
        after = get(demo_client, subscription.id)
        assert after.future_updates == []
        assert _packs(after) == [("addon-extra-seats", 2)]
        assert extra(after, "billingPeriod") == "ANNUALLY"

    def test_nothing_waits_for_payment(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        subscription = _pro(demo_client)
        response = demo_http.delete(
            f"/api/v1/subscriptions/{subscription.id}/future-update/pending-payment"
        )
        assert error(response, 404)["code"] == "not_found"


class TestRefusedChanges:
    def test_an_ended_subscription_cannot_change(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        subscription = _pro(demo_client)
        demo_client.v1.subscriptions.cancel(subscription.id, cancellation_time="IMMEDIATE")
        response = demo_http.patch(
            f"/api/v1/subscriptions/{subscription.id}", json={"metadata": {"a": "1"}}
        )
        problem = error(response, 409)
        assert problem["code"] == "subscription_ended"
        assert subscription.id in problem["message"]

    def test_a_cancellation_date_in_the_past_names_the_field_sent(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client
    ) -> None:
        subscription = _pro(demo_client)
        response = demo_http.patch(
            f"/api/v1/subscriptions/{subscription.id}",
            json={"cancellationDate": iso(START - timedelta(days=1))},
        )
        assert error(response, 422)["field"] == "cancellationDate"
        assert get(demo_client, subscription.id).end_date is None

    def test_unknown_subscription(self, demo_http: httpx.Client) -> None:
        for response in (
            demo_http.patch("/api/v1/subscriptions/sub-nope", json={"metadata": {}}),
            demo_http.get("/api/v1/subscriptions/sub-nope"),
            demo_http.post("/api/v1/subscriptions/sub-nope/cancel", json={}),
            demo_http.post("/api/v1/subscriptions/sub-nope/migrate", json={}),
            demo_http.delete("/api/v1/subscriptions/sub-nope/future-update/schedule"),
        ):
            assert error(response, 404)["code"] == "not_found"

"""A customer's whole life on the demo catalog, through the official Stigg client, with the
answer to every check at every step. Time moves by the test's clock; jobs run when told."""

from datetime import timedelta
from typing import Any

import stigg

from tests.support import START, Clocked


def check(client: stigg.Stigg, feature: str, **params: Any) -> tuple[bool, str | None, object]:
    data = client.v1.customers.check_entitlement("acme", feature_id=feature, **params).data
    return data.is_granted, data.access_denied_reason, getattr(data, "usage_limit", None)


class TestWholeLife:
    def test_trial_conversion_addon_downgrade_cancel(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        client = demo_client
        assert check(client, "feature-sso") == (False, "CustomerNotFound", None)

        client.v1.customers.provision(id="acme", name="Acme", email="it@acme.test")
        assert check(client, "feature-sso") == (False, "NoActiveSubscription", None)

        # Pro with its 14-day trial.
        provisioned = client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
        subscription = provisioned.data.subscription
        assert subscription is not None
        assert subscription.status == "IN_TRIAL"
        assert subscription.trial_end_date == START + timedelta(days=14)
        assert check(client, "feature-sso") == (True, None, None)
        assert check(client, "feature-seats") == (True, None, 20)
        assert check(client, "feature-seats", requested_usage=21) == (
            False,
            "RequestedUsageExceedingLimit",
            20,
        )

        # The trial ends and converts; the billing period starts at the trial's end.
        clocked.clock.set(START + timedelta(days=14, minutes=1))
        assert clocked.run_jobs()["subscriptions.advance"] >= 1  # other tests share the database
        retrieved = client.v1.subscriptions.retrieve(subscription.id).data
        assert retrieved.status == "ACTIVE"
        assert retrieved.current_billing_period_start == START + timedelta(days=14)
        assert check(client, "feature-sso") == (True, None, None)

        # Upgrade with two packs of extra seats: at once.
        updated = client.v1.subscriptions.update(
            subscription.id, addons=[{"id": "addon-extra-seats", "quantity": 2}]
        ).data
        assert [(a.id, a.quantity) for a in updated.addons or []] == [("addon-extra-seats", 2)]
        assert check(client, "feature-seats") == (True, None, 40)

        # Downgrade to free: scheduled for the end of the billing period.
        downgrade = client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-free")
        assert downgrade.data.is_scheduled is True
        pending = client.v1.subscriptions.retrieve(subscription.id).data
        assert [
            (u.subscription_schedule_type, u.target_package.id if u.target_package else None)
            for u in pending.future_updates or []
        ] == [("DOWNGRADE", "plan-free")]
        assert check(client, "feature-sso") == (True, None, None)

        # The period ends: the downgrade happens even before the job runs, then the job.
        period_end = pending.current_billing_period_end
        assert period_end is not None
        clocked.clock.set(period_end + timedelta(seconds=1))
        assert check(client, "feature-sso") == (False, "NoFeatureEntitlementInSubscription", None)
        assert check(client, "feature-seats") == (True, None, 3)
        clocked.run_jobs()
        on_free = client.v1.subscriptions.retrieve(subscription.id).data
        assert on_free.plan_id == "plan-free"
        assert on_free.future_updates == []

        # Back to pro (an upgrade: a new subscription now, no second trial), then cancel.
        upgraded = client.v1.subscriptions.provision(customer_id="acme", plan_id="plan-pro")
        pro = upgraded.data.subscription
        assert pro is not None
        assert pro.status == "ACTIVE"
        assert client.v1.subscriptions.retrieve(subscription.id).data.status == "CANCELED"
        assert check(client, "feature-sso") == (True, None, None)
        cancelled = client.v1.subscriptions.cancel(pro.id).data
        assert cancelled.status == "ACTIVE"
        assert cancelled.end_date == pro.current_billing_period_end

        # At period end it ends, and the product's downgrade plan takes over.
        assert cancelled.end_date is not None
        clocked.clock.set(cancelled.end_date + timedelta(seconds=1))
        clocked.run_jobs()
        assert client.v1.subscriptions.retrieve(pro.id).data.status == "CANCELED"
        live = client.v1.subscriptions.list(customer_id="acme", status=["ACTIVE"])
        assert [s.plan_id for s in live] == ["plan-free"]
        assert check(client, "feature-sso") == (False, "NoFeatureEntitlementInSubscription", None)
        assert check(client, "feature-seats") == (True, None, 3)

"""Time passing: trial ends, future starts, scheduled ends and billing periods rolling over.

Checks answer from the subscription's dates at once; the job makes the stored status
catch up. Counts returned by the job are not asserted: it serves every environment."""

from datetime import UTC, datetime, timedelta

import httpx
import stigg
from stigg.types.v1.subscription import Data as Subscription

from tests.support import START, Clocked, factories
from tests.support.subscriptions import (
    customer,
    get,
    has_sso,
    live,
    republish,
    seats,
    subscribe,
)

TRIAL_END = START + timedelta(days=14)


class TestTrialConvertsToPaid:
    def test_becomes_active_with_the_billing_anchor_at_the_trial_end(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-pro")

        clocked.clock.set(TRIAL_END - timedelta(seconds=1))
        clocked.run_jobs()
        assert get(demo_client, subscription.id).status == "IN_TRIAL"

        clocked.clock.set(TRIAL_END + timedelta(minutes=1))
        assert has_sso(demo_client)
        assert seats(demo_client) == 20
        clocked.run_jobs()
        converted = get(demo_client, subscription.id)
        assert converted.status == "ACTIVE"
        assert converted.billing_cycle_anchor == TRIAL_END
        assert converted.current_billing_period_start == TRIAL_END
        assert converted.current_billing_period_end == datetime(2026, 2, 19, 10, tzinfo=UTC)
        assert converted.trial_end_date == TRIAL_END
        assert converted.cancel_reason is None
        assert live(demo_client) == [("plan-pro", "ACTIVE")]
        assert has_sso(demo_client)

    def test_the_next_periods_count_from_the_trial_end(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-pro")
        clocked.clock.set(datetime(2026, 3, 20, tzinfo=UTC))
        clocked.run_jobs()
        later = get(demo_client, subscription.id)
        assert later.status == "ACTIVE"
        assert later.current_billing_period_start == datetime(2026, 3, 19, 10, tzinfo=UTC)
        assert later.current_billing_period_end == datetime(2026, 4, 19, 10, tzinfo=UTC)


class TestTrialEndsTheSubscription:
    def test_expires_then_the_downgrade_plan_starts(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscription = subscribe(
            demo_client,
            plan_id="plan-pro",
            trial_override_configuration={
                "is_trial": True,
                "trial_end_behavior": "CANCEL_SUBSCRIPTION",
            },
        )
        assert subscription.trial_end_date == TRIAL_END
        assert has_sso(demo_client)

        # The trial is over: access ends at once, before the job has run.
        clocked.clock.set(TRIAL_END + timedelta(minutes=1))
        assert not has_sso(demo_client)
        assert seats(demo_client) == "NoActiveSubscription"

        clocked.run_jobs()
        expired = get(demo_client, subscription.id)
        assert (expired.status, expired.cancel_reason) == ("EXPIRED", "TRIAL_ENDED")
        assert expired.end_date == TRIAL_END
        assert live(demo_client) == [("plan-free", "ACTIVE")]
        free = demo_client.v1.subscriptions.list(customer_id="acme", plan_id="plan-free").data
        assert [s.start_date for s in free] == [TRIAL_END]
        assert seats(demo_client) == 3
        assert demo_client.v1.customers.check_entitlement(
            "acme", feature_id="feature-sso"
        ).data.access_denied_reason == ("NoFeatureEntitlementInSubscription")

    def test_the_plans_default_behavior_is_used(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        republish(
            demo_http,
            "plans",
            "plan-pro",
            fields={
                "defaultTrialConfig": {
                    "duration": 7,
                    "units": "DAY",
                    "trialEndBehavior": "CANCEL_SUBSCRIPTION",
                }
            },
        )
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-pro")
        assert subscription.trial is not None
        assert subscription.trial.trial_end_behavior == "CANCEL_SUBSCRIPTION"
        clocked.clock.set(START + timedelta(days=7, seconds=1))
        clocked.run_jobs()
        assert get(demo_client, subscription.id).status == "EXPIRED"

    def test_without_a_downgrade_plan_nothing_follows(
        self, demo_client: stigg.Stigg, demo_http: httpx.Client, clocked: Clocked
    ) -> None:
        factories.product(demo_http, id="product-solo")
        factories.plan(
            demo_http,
            id="plan-solo",
            product_id="product-solo",
            entitlements=[factories.seats(7)],
            publish=True,
        )
        customer(demo_client)
        subscription = subscribe(
            demo_client,
            plan_id="plan-solo",
            trial_override_configuration={
                "is_trial": True,
                "trial_end_date": START + timedelta(days=2),
                "trial_end_behavior": "CANCEL_SUBSCRIPTION",
            },
        )
        assert seats(demo_client) == 7
        clocked.clock.set(START + timedelta(days=2, seconds=1))
        clocked.run_jobs()
        assert get(demo_client, subscription.id).status == "EXPIRED"
        assert live(demo_client) == []
        assert seats(demo_client) == "NoActiveSubscription"


class TestFutureStart:
    def test_not_started_until_the_start_and_granted_from_that_moment(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        starts = START + timedelta(days=3)
        provisioned = demo_client.v1.subscriptions.provision(
            customer_id="acme", plan_id="plan-free", start_date=starts
        ).data
        assert provisioned.is_scheduled is False
        assert provisioned.subscription is not None
        subscription = get(demo_client, provisioned.subscription.id)
        assert subscription.status == "NOT_STARTED"
        assert subscription.start_date == starts
        assert subscription.current_billing_period_start == starts
        assert subscription.current_billing_period_end == datetime(2026, 2, 8, 10, tzinfo=UTC)
        assert seats(demo_client) == "NoActiveSubscription"

        clocked.clock.set(starts - timedelta(seconds=1))
        assert seats(demo_client) == "NoActiveSubscription"

        # Checks grant from the start moment, before the job has run.
        clocked.clock.set(starts)
        assert seats(demo_client) == 3
        assert get(demo_client, subscription.id).status == "NOT_STARTED"
        clocked.run_jobs()
        assert get(demo_client, subscription.id).status == "ACTIVE"
        assert live(demo_client) == [("plan-free", "ACTIVE")]

    def test_a_trial_plan_starts_in_trial(self, demo_client: stigg.Stigg, clocked: Clocked) -> None:
        customer(demo_client)
        starts = START + timedelta(days=3)
        subscription = subscribe(demo_client, plan_id="plan-pro", start_date=starts)
        assert subscription.status == "NOT_STARTED"
        assert subscription.trial_end_date == starts + timedelta(days=14)
        assert not has_sso(demo_client)
        clocked.clock.set(starts + timedelta(hours=1))
        assert has_sso(demo_client)
        clocked.run_jobs()
        started = get(demo_client, subscription.id)
        assert started.status == "IN_TRIAL"
        assert started.current_billing_period_start == starts
        assert started.current_billing_period_end == starts + timedelta(days=14)

    def test_one_job_run_carries_out_every_step_that_is_due(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        starts = START + timedelta(days=3)
        subscription = subscribe(demo_client, plan_id="plan-pro", start_date=starts)
        trial_end = starts + timedelta(days=14)
        clocked.clock.set(trial_end + timedelta(days=1))
        clocked.run_jobs()
        done = get(demo_client, subscription.id)
        assert done.status == "ACTIVE"
        assert done.billing_cycle_anchor == trial_end
        assert done.current_billing_period_start == trial_end
        assert done.current_billing_period_end == datetime(2026, 2, 22, 10, tzinfo=UTC)

    def test_a_trial_that_ends_the_subscription_expires_in_the_same_job_run(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        starts = START + timedelta(days=3)
        subscription = _future_trial_that_cancels(demo_client, starts)
        clocked.clock.set(starts + timedelta(days=15))
        clocked.run_jobs()
        expired = get(demo_client, subscription.id)
        assert (expired.status, expired.cancel_reason) == ("EXPIRED", "TRIAL_ENDED")
        assert expired.end_date == starts + timedelta(days=14)
        assert live(demo_client) == [("plan-free", "ACTIVE")]

    def test_checks_end_a_not_yet_started_trial_that_cancels_at_its_end(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        starts = START + timedelta(days=3)
        _future_trial_that_cancels(demo_client, starts)
        clocked.clock.set(starts + timedelta(days=1))
        assert has_sso(demo_client)
        # The trial is over and no job has run: checks must not grant what the job is about
        # to take away (as they already do for a trial that the job did start).
        clocked.clock.set(starts + timedelta(days=15))
        assert not has_sso(demo_client)


def _future_trial_that_cancels(client: stigg.Stigg, starts: datetime) -> Subscription:
    return subscribe(
        client,
        plan_id="plan-pro",
        start_date=starts,
        trial_override_configuration={
            "is_trial": True,
            "trial_end_behavior": "CANCEL_SUBSCRIPTION",
        },
    )


class TestScheduledEnd:
    def test_a_cancellation_date_given_at_provision(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        ends = START + timedelta(days=10)
        subscription = subscribe(demo_client, plan_id="plan-enterprise", cancellation_date=ends)
        assert subscription.status == "ACTIVE"
        assert (subscription.end_date, subscription.cancellation_date) == (ends, ends)
        assert subscription.cancel_reason == "ScheduledCancellation"
        assert seats(demo_client) == "unlimited"

        clocked.clock.set(ends + timedelta(seconds=1))
        assert seats(demo_client) == "NoActiveSubscription"
        clocked.run_jobs()
        ended = get(demo_client, subscription.id)
        assert (ended.status, ended.cancel_reason, ended.end_date) == (
            "CANCELED",
            "ScheduledCancellation",
            ends,
        )
        assert live(demo_client) == [("plan-free", "ACTIVE")]
        assert seats(demo_client) == 3


class TestPeriodRollover:
    def test_month_end_anchor_keeps_its_day(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        anchor = datetime(2026, 1, 31, 12, tzinfo=UTC)
        clocked.clock.set(anchor)
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-free")
        assert subscription.current_billing_period_end == datetime(2026, 2, 28, 12, tzinfo=UTC)

        clocked.clock.set(datetime(2026, 2, 28, 12, 0, 1, tzinfo=UTC))
        clocked.run_jobs()
        february = get(demo_client, subscription.id)
        assert february.current_billing_period_start == datetime(2026, 2, 28, 12, tzinfo=UTC)
        assert february.current_billing_period_end == datetime(2026, 3, 31, 12, tzinfo=UTC)

        clocked.clock.set(datetime(2026, 3, 31, 12, 0, 1, tzinfo=UTC))
        clocked.run_jobs()
        march = get(demo_client, subscription.id)
        assert march.current_billing_period_start == datetime(2026, 3, 31, 12, tzinfo=UTC)
        assert march.current_billing_period_end == datetime(2026, 4, 30, 12, tzinfo=UTC)
        assert march.billing_cycle_anchor == anchor
        assert march.status == "ACTIVE"

    def test_several_periods_pass_in_one_job_run(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-free")
        clocked.clock.set(datetime(2026, 6, 20, tzinfo=UTC))
        clocked.run_jobs()
        june = get(demo_client, subscription.id)
        assert june.current_billing_period_start == datetime(2026, 6, 5, 10, tzinfo=UTC)
        assert june.current_billing_period_end == datetime(2026, 7, 5, 10, tzinfo=UTC)
        # Nothing more is due: running again changes nothing.
        clocked.run_jobs()
        assert get(demo_client, subscription.id) == june

    def test_the_period_turns_exactly_at_its_end(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-free")
        clocked.clock.set(datetime(2026, 2, 5, 10, tzinfo=UTC))
        clocked.run_jobs()
        turned = get(demo_client, subscription.id)
        assert turned.current_billing_period_start == datetime(2026, 2, 5, 10, tzinfo=UTC)
        assert turned.current_billing_period_end == datetime(2026, 3, 5, 10, tzinfo=UTC)

    def test_an_annual_leap_day_anchor(self, demo_client: stigg.Stigg, clocked: Clocked) -> None:
        anchor = datetime(2028, 2, 29, 9, tzinfo=UTC)
        clocked.clock.set(anchor)
        customer(demo_client)
        subscription = subscribe(demo_client, plan_id="plan-free", billing_period="ANNUALLY")
        assert subscription.current_billing_period_end == datetime(2029, 2, 28, 9, tzinfo=UTC)
        clocked.clock.set(datetime(2032, 3, 1, tzinfo=UTC))
        clocked.run_jobs()
        later = get(demo_client, subscription.id)
        assert later.current_billing_period_start == datetime(2032, 2, 29, 9, tzinfo=UTC)
        assert later.current_billing_period_end == datetime(2033, 2, 28, 9, tzinfo=UTC)

    def test_monthly_usage_periods_follow_the_subscription(
        self, demo_client: stigg.Stigg, clocked: Clocked
    ) -> None:
        customer(demo_client)
        subscribe(demo_client, plan_id="plan-free")
        clocked.clock.set(datetime(2026, 3, 10, tzinfo=UTC))
        clocked.run_jobs()
        calls = demo_client.v1.customers.check_entitlement(
            "acme", feature_id="feature-api-calls"
        ).data
        assert calls.is_granted
        assert getattr(calls, "usage_period_start", None) == datetime(2026, 3, 5, 10, tzinfo=UTC)
        assert getattr(calls, "usage_period_end", None) == datetime(2026, 4, 5, 10, tzinfo=UTC)

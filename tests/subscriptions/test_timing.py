"""The one rule for when a change takes effect: increases now, decreases at the end of the
current billing period unless IMMEDIATE, and a plan change at the end of the billing month
when asked."""

from datetime import UTC, datetime

import pytest

from tollgate.subscriptions.enums import BillingPeriod, ScheduleStrategy, ScheduleType
from tollgate.subscriptions.models import Subscription
from tollgate.subscriptions.timing import scheduled_for

ANCHOR = datetime(2026, 1, 5, 10, tzinfo=UTC)
NOW = datetime(2026, 3, 20, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 5, 10, tzinfo=UTC)
MONTH_END = datetime(2026, 4, 5, 10, tzinfo=UTC)
KINDS = [
    ScheduleType.DOWNGRADE,
    ScheduleType.BILLING_PERIOD,
    ScheduleType.ADDON,
    ScheduleType.MIGRATE_TO_LATEST,
]


def _annual() -> Subscription:
    return Subscription(
        billing_period=BillingPeriod.ANNUALLY,
        billing_cycle_anchor=ANCHOR,
        current_period_start=ANCHOR,
        current_period_end=YEAR_END,
    )


@pytest.mark.parametrize("change", KINDS)
@pytest.mark.parametrize("strategy", [None, *ScheduleStrategy])
def test_an_increase_applies_now(change: ScheduleType, strategy: ScheduleStrategy | None) -> None:
    assert (
        scheduled_for(_annual(), change=change, decrease=False, strategy=strategy, now=NOW) is None
    )


@pytest.mark.parametrize("change", KINDS)
def test_a_decrease_waits_for_the_period_end_unless_immediate(change: ScheduleType) -> None:
    def when(strategy: ScheduleStrategy | None) -> datetime | None:
        return scheduled_for(_annual(), change=change, decrease=True, strategy=strategy, now=NOW)

    assert when(None) == YEAR_END
    assert when(ScheduleStrategy.END_OF_BILLING_PERIOD) == YEAR_END
    assert when(ScheduleStrategy.IMMEDIATE) is None


def test_only_a_plan_change_honours_the_billing_month() -> None:
    month = ScheduleStrategy.END_OF_BILLING_MONTH
    ends = {
        change: scheduled_for(_annual(), change=change, decrease=True, strategy=month, now=NOW)
        for change in KINDS
    }
    assert ends == {
        ScheduleType.DOWNGRADE: MONTH_END,
        ScheduleType.BILLING_PERIOD: YEAR_END,
        ScheduleType.ADDON: YEAR_END,
        ScheduleType.MIGRATE_TO_LATEST: YEAR_END,
    }

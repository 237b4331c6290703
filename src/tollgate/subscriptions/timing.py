"""The one rule for when a change to a live subscription takes effect: now, or scheduled
for the end of its current billing period.

Plan changes, billing period changes, add-on changes and migrations all ask
`scheduled_for`; an answer of None means the change applies now."""

from datetime import datetime

from tollgate.subscriptions.enums import BillingPeriod, ScheduleStrategy, ScheduleType
from tollgate.subscriptions.lifecycle import billing_bounds
from tollgate.subscriptions.models import Subscription


def scheduled_for(
    subscription: Subscription,
    *,
    change: ScheduleType,
    decrease: bool,
    strategy: ScheduleStrategy | None,
    now: datetime,
) -> datetime | None:
    """When a change of kind `change` to `subscription` takes effect, or None for now.

    An increase applies now. A decrease (a lower plan, fewer add-ons, a shorter billing
    period, or a migration, which may grant less) waits for the end of the current billing
    period unless the caller asks for IMMEDIATE. A plan change asked for at the end of the
    billing month waits for the end of the month counted from the billing cycle anchor;
    the other kinds of change keep the period's end for that strategy."""
    if not decrease or strategy is ScheduleStrategy.IMMEDIATE:
        return None
    if change is ScheduleType.DOWNGRADE and strategy is ScheduleStrategy.END_OF_BILLING_MONTH:
        return billing_bounds(subscription.billing_cycle_anchor, BillingPeriod.MONTHLY, now)[1]
    return subscription.current_period_end

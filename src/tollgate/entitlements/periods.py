"""Which usage period a moment belongs to, for one feature and entitlement.

INCREMENTAL features with a reset period count per period, anchored as the entitlement
says; everything else (FLUCTUATING levels such as seats, and counters without a reset) has
one period that never ends, starting at `NEVER`."""

from datetime import UTC, datetime

from tollgate.entitlements.engine import Effective
from tollgate.kit.periods import bounds

NEVER = datetime(1970, 1, 1, tzinfo=UTC)
INCREMENTAL = "INCREMENTAL"


def usage_period(
    meter_type: str, entitlement: Effective | None, at: datetime
) -> tuple[datetime, datetime | None]:
    """The [start, end) of the usage period containing `at`; end None when it never ends."""
    if (
        entitlement is not None
        and entitlement.usage_period_start is not None
        and entitlement.usage_period_end is not None
        and entitlement.usage_period_start <= at < entitlement.usage_period_end
        and meter_type == INCREMENTAL
        and entitlement.reset_period is not None
    ):
        return entitlement.usage_period_start, entitlement.usage_period_end  # the usual case
    if (
        meter_type == INCREMENTAL
        and entitlement is not None
        and entitlement.reset_period is not None
        and entitlement.usage_period_anchor is not None
    ):
        return bounds(entitlement.usage_period_anchor, entitlement.reset_period, at)
    return NEVER, None


def current_period_start(meter_type: str, entitlement: Effective | None) -> datetime:
    """The start of the period a snapshot's entitlement is in now (its own bounds)."""
    if (
        meter_type == INCREMENTAL
        and entitlement is not None
        and entitlement.reset_period is not None
        and entitlement.usage_period_start is not None
    ):
        return entitlement.usage_period_start
    return NEVER

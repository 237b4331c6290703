"""Calendar periods: billing periods and usage reset periods, from an anchor.

Periods are counted from the anchor each time (anchor + n months), never stepped from the
previous boundary, so a subscription started on 31 January renews on 28/29 February and
then on 31 March again instead of drifting to the 28th."""

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from dateutil.relativedelta import relativedelta


class Period(StrEnum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    YEAR = "YEAR"


_WEEKDAYS = {
    "EveryMonday": 0,
    "EveryTuesday": 1,
    "EveryWednesday": 2,
    "EveryThursday": 3,
    "EveryFriday": 4,
    "EverySaturday": 5,
    "EverySunday": 6,
}


def step(period: Period, count: int) -> relativedelta:
    match period:
        case Period.HOUR:
            return relativedelta(hours=count)
        case Period.DAY:
            return relativedelta(days=count)
        case Period.WEEK:
            return relativedelta(weeks=count)
        case Period.MONTH:
            return relativedelta(months=count)
        case Period.YEAR:
            return relativedelta(years=count)


def _approximate_length(period: Period) -> timedelta:
    return {
        Period.HOUR: timedelta(hours=1),
        Period.DAY: timedelta(days=1),
        Period.WEEK: timedelta(weeks=1),
        Period.MONTH: timedelta(days=30.436875),
        Period.YEAR: timedelta(days=365.2425),
    }[period]


def bounds(anchor: datetime, period: Period, now: datetime) -> tuple[datetime, datetime]:
    """The period [start, end) that contains `now`, counting whole periods from `anchor`.

    Before the anchor, the first period (starting at the anchor) is returned."""
    if now < anchor:
        return anchor, anchor + step(period, 1)
    # Jump close to the answer, then correct: month lengths vary by a few days.
    index = max(0, int((now - anchor) / _approximate_length(period)) - 1)
    while anchor + step(period, index + 1) <= now:
        index += 1
    while index > 0 and anchor + step(period, index) > now:
        index -= 1
    return anchor + step(period, index), anchor + step(period, index + 1)


def reset_anchor(
    subscription_start: datetime, period: Period, according_to: str | None
) -> datetime:
    """Where a usage reset period is counted from, by its `accordingTo` configuration."""
    start = subscription_start.astimezone(UTC)
    if according_to == "StartOfTheMonth" and period is Period.MONTH:
        return start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if according_to in _WEEKDAYS and period is Period.WEEK:
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        days_back = (midnight.weekday() - _WEEKDAYS[according_to]) % 7
        return midnight - timedelta(days=days_back)
    return start

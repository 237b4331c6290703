"""Calendar periods counted from an anchor: boundaries, month ends, and reset anchors."""

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tollgate.kit.periods import Period, bounds, reset_anchor, step


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def reference_bounds(anchor: datetime, period: Period, now: datetime) -> tuple[datetime, datetime]:
    """The same answer found independently: the largest n with anchor + n periods <= now,
    by bisection over whole periods."""
    low, high = 0, 1
    while anchor + step(period, high) <= now:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if anchor + step(period, middle) <= now:
            low = middle
        else:
            high = middle
    return anchor + step(period, low), anchor + step(period, low + 1)


class TestStep:
    @pytest.mark.parametrize(
        ("period", "expected"),
        [
            (Period.HOUR, at(2024, 1, 31, 11)),
            (Period.DAY, at(2024, 2, 2, 9)),
            (Period.WEEK, at(2024, 2, 14, 9)),
            (Period.MONTH, at(2024, 3, 31, 9)),
            (Period.YEAR, at(2026, 1, 31, 9)),
        ],
    )
    def test_two_steps_of_each_period(self, period: Period, expected: datetime) -> None:
        assert at(2024, 1, 31, 9) + step(period, 2) == expected


class TestMonthEndAnchors:
    def test_january_31st_renews_on_the_last_day_of_february_in_a_leap_year(self) -> None:
        anchor = at(2024, 1, 31, 9)
        assert bounds(anchor, Period.MONTH, at(2024, 2, 15)) == (anchor, at(2024, 2, 29, 9))

    def test_january_31st_renews_on_february_28th_in_a_common_year(self) -> None:
        anchor = at(2023, 1, 31, 9)
        assert bounds(anchor, Period.MONTH, at(2023, 2, 15)) == (anchor, at(2023, 2, 28, 9))

    def test_after_february_the_period_returns_to_the_31st(self) -> None:
        anchor = at(2023, 1, 31, 9)
        assert bounds(anchor, Period.MONTH, at(2023, 3, 1)) == (
            at(2023, 2, 28, 9),
            at(2023, 3, 31, 9),
        )

    def test_a_thirty_day_month_ends_on_the_30th_and_the_next_returns_to_the_31st(self) -> None:
        anchor = at(2023, 1, 31, 9)
        assert bounds(anchor, Period.MONTH, at(2023, 4, 15)) == (
            at(2023, 3, 31, 9),
            at(2023, 4, 30, 9),
        )
        assert bounds(anchor, Period.MONTH, at(2023, 5, 15)) == (
            at(2023, 4, 30, 9),
            at(2023, 5, 31, 9),
        )

    def test_a_year_of_periods_never_drifts(self) -> None:
        anchor = at(2023, 1, 31, 9)
        ends = []
        moment = anchor
        for _ in range(12):
            _, end = bounds(anchor, Period.MONTH, moment)
            ends.append(end)
            moment = end
        assert [end.day for end in ends] == [28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31]
        assert ends[-1] == at(2024, 1, 31, 9)

    def test_the_30th_renews_on_february_29th_then_the_30th(self) -> None:
        anchor = at(2024, 1, 30)
        assert bounds(anchor, Period.MONTH, at(2024, 3, 1)) == (at(2024, 2, 29), at(2024, 3, 30))


class TestLeapYears:
    def test_a_yearly_period_from_february_29th_ends_on_february_28th(self) -> None:
        anchor = at(2024, 2, 29, 12)
        assert bounds(anchor, Period.YEAR, at(2024, 6, 1)) == (anchor, at(2025, 2, 28, 12))

    def test_a_yearly_period_from_february_29th_returns_to_the_29th_in_leap_years(
        self,
    ) -> None:
        anchor = at(2024, 2, 29, 12)
        assert bounds(anchor, Period.YEAR, at(2027, 6, 1)) == (
            at(2027, 2, 28, 12),
            at(2028, 2, 29, 12),
        )
        assert bounds(anchor, Period.YEAR, at(2028, 3, 1)) == (
            at(2028, 2, 29, 12),
            at(2029, 2, 28, 12),
        )

    def test_a_daily_period_covers_february_29th(self) -> None:
        anchor = at(2024, 2, 1, 6)
        assert bounds(anchor, Period.DAY, at(2024, 2, 29, 7)) == (
            at(2024, 2, 29, 6),
            at(2024, 3, 1, 6),
        )

    def test_2100_is_not_a_leap_year(self) -> None:
        anchor = at(2096, 2, 29)
        assert bounds(anchor, Period.YEAR, at(2100, 3, 1)) == (at(2100, 2, 28), at(2101, 2, 28))


class TestShortPeriods:
    def test_weeks_count_seven_days_from_the_anchor(self) -> None:
        anchor = at(2024, 1, 3, 10)  # a Wednesday
        assert bounds(anchor, Period.WEEK, at(2024, 1, 20)) == (
            at(2024, 1, 17, 10),
            at(2024, 1, 24, 10),
        )

    def test_days_keep_the_anchors_time_of_day(self) -> None:
        anchor = at(2024, 1, 3, 10, 45)
        assert bounds(anchor, Period.DAY, at(2024, 1, 9, 8)) == (
            at(2024, 1, 8, 10, 45),
            at(2024, 1, 9, 10, 45),
        )

    def test_hours_keep_the_anchors_minutes(self) -> None:
        anchor = at(2024, 1, 3, 10, 45)
        assert bounds(anchor, Period.HOUR, at(2024, 1, 5, 8, 10)) == (
            at(2024, 1, 5, 7, 45),
            at(2024, 1, 5, 8, 45),
        )

    def test_a_year_is_twelve_months_from_the_anchor(self) -> None:
        anchor = at(2020, 7, 4, 3)
        assert bounds(anchor, Period.YEAR, at(2023, 7, 4, 2)) == (
            at(2022, 7, 4, 3),
            at(2023, 7, 4, 3),
        )


class TestBeforeTheAnchor:
    @pytest.mark.parametrize("period", list(Period))
    def test_before_the_anchor_the_first_period_is_returned(self, period: Period) -> None:
        anchor = at(2024, 5, 31, 12)
        start, end = bounds(anchor, period, at(2019, 1, 1))
        assert (start, end) == (anchor, anchor + step(period, 1))

    def test_one_microsecond_before_the_anchor(self) -> None:
        anchor = at(2024, 5, 31, 12)
        now = anchor - timedelta(microseconds=1)
        assert bounds(anchor, Period.MONTH, now) == (anchor, at(2024, 6, 30, 12))


class TestBoundaries:
    @pytest.mark.parametrize("period", list(Period))
    def test_the_anchor_itself_starts_the_first_period(self, period: Period) -> None:
        anchor = at(2024, 1, 31, 9)
        assert bounds(anchor, period, anchor) == (anchor, anchor + step(period, 1))

    @pytest.mark.parametrize("period", list(Period))
    def test_a_periods_end_belongs_to_the_next_period(self, period: Period) -> None:
        anchor = at(2024, 1, 31, 9)
        end = anchor + step(period, 3)
        assert bounds(anchor, period, end) == (end, anchor + step(period, 4))

    @pytest.mark.parametrize("period", list(Period))
    def test_one_microsecond_before_an_end_is_still_in_the_period(self, period: Period) -> None:
        anchor = at(2024, 1, 31, 9)
        end = anchor + step(period, 3)
        assert bounds(anchor, period, end - timedelta(microseconds=1)) == (
            anchor + step(period, 2),
            end,
        )


class TestFarFuture:
    def test_monthly_two_hundred_years_on_lands_on_the_anchor_day(self) -> None:
        anchor = at(2024, 1, 31, 9)
        assert bounds(anchor, Period.MONTH, at(2224, 2, 10)) == (
            at(2224, 1, 31, 9),
            at(2224, 2, 29, 9),
        )

    def test_yearly_two_hundred_years_on(self) -> None:
        anchor = at(2024, 2, 29)
        assert bounds(anchor, Period.YEAR, at(2224, 2, 28, 23)) == (
            at(2223, 2, 28),
            at(2224, 2, 29),
        )

    def test_hourly_two_hundred_years_on(self) -> None:
        anchor = at(2024, 1, 1, 0, 30)
        assert bounds(anchor, Period.HOUR, at(2224, 7, 1, 5, 29)) == (
            at(2224, 7, 1, 4, 30),
            at(2224, 7, 1, 5, 30),
        )

    @pytest.mark.parametrize("period", list(Period))
    def test_two_hundred_years_on_matches_counting(self, period: Period) -> None:
        anchor = at(2024, 1, 31, 9, 15)
        now = at(2224, 3, 1, 9, 14)
        assert bounds(anchor, period, now) == reference_bounds(anchor, period, now)


class TestEveryPeriodContainsNow:
    """A property checked over many anchors and moments, with a fixed seed."""

    ANCHOR_DAYS = (1, 15, 28, 29, 30, 31)

    def anchors(self, rng: random.Random) -> list[datetime]:
        chosen = [at(2024, 2, 29, 23, 59), at(2023, 12, 31, 0, 0), at(2024, 1, 31, 9, 30)]
        for _ in range(24):
            year, month = rng.randint(1990, 2060), rng.choice([1, 3, 5, 7, 8, 10, 12])
            chosen.append(
                datetime(
                    year,
                    month,
                    rng.choice(self.ANCHOR_DAYS),
                    rng.randint(0, 23),
                    rng.randint(0, 59),
                    rng.randint(0, 59),
                    rng.randint(0, 999_999),
                    tzinfo=UTC,
                )
            )
        return chosen

    @pytest.mark.parametrize("period", list(Period))
    def test_start_le_now_lt_end_and_periods_tile(self, period: Period) -> None:
        rng = random.Random(f"periods-{period}")
        horizon = {
            Period.HOUR: timedelta(days=400),
            Period.DAY: timedelta(days=4000),
            Period.WEEK: timedelta(days=20000),
            Period.MONTH: timedelta(days=80000),
            Period.YEAR: timedelta(days=80000),
        }[period]
        for anchor in self.anchors(rng):
            for _ in range(12):
                now = anchor + timedelta(seconds=rng.uniform(0, horizon.total_seconds()))
                start, end = bounds(anchor, period, now)
                assert start <= now < end, (anchor, now)
                assert (start, end) == reference_bounds(anchor, period, now), (anchor, now)
                next_start, _ = bounds(anchor, period, end)
                assert next_start == end, (anchor, now)
                if start > anchor:
                    _, previous_end = bounds(anchor, period, start - timedelta(microseconds=1))
                    assert previous_end == start, (anchor, now)


class TestResetAnchor:
    START = at(2024, 3, 13, 15, 20)  # a Wednesday

    @pytest.mark.parametrize("according_to", [None, "SubscriptionStart", "Unknown"])
    @pytest.mark.parametrize("period", list(Period))
    def test_by_default_periods_count_from_the_subscription_start(
        self, period: Period, according_to: str | None
    ) -> None:
        assert reset_anchor(self.START, period, according_to) == self.START

    def test_start_of_the_month_is_midnight_on_the_first(self) -> None:
        assert reset_anchor(self.START, Period.MONTH, "StartOfTheMonth") == at(2024, 3, 1)

    @pytest.mark.parametrize("period", [Period.HOUR, Period.DAY, Period.WEEK, Period.YEAR])
    def test_start_of_the_month_only_applies_to_monthly_periods(self, period: Period) -> None:
        assert reset_anchor(self.START, period, "StartOfTheMonth") == self.START

    @pytest.mark.parametrize(
        ("according_to", "expected"),
        [
            ("EveryMonday", at(2024, 3, 11)),
            ("EveryTuesday", at(2024, 3, 12)),
            ("EveryWednesday", at(2024, 3, 13)),
            ("EveryThursday", at(2024, 3, 7)),
            ("EveryFriday", at(2024, 3, 8)),
            ("EverySaturday", at(2024, 3, 9)),
            ("EverySunday", at(2024, 3, 10)),
        ],
    )
    def test_a_weekday_is_midnight_on_the_latest_such_day(
        self, according_to: str, expected: datetime
    ) -> None:
        anchor = reset_anchor(self.START, Period.WEEK, according_to)
        assert anchor == expected
        assert anchor <= self.START < anchor + timedelta(weeks=1)

    @pytest.mark.parametrize("period", [Period.HOUR, Period.DAY, Period.MONTH, Period.YEAR])
    def test_a_weekday_only_applies_to_weekly_periods(self, period: Period) -> None:
        assert reset_anchor(self.START, period, "EveryMonday") == self.START

    def test_the_anchor_is_taken_in_utc(self) -> None:
        start = datetime(2024, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=5)))
        anchor = reset_anchor(start, Period.MONTH, "StartOfTheMonth")
        assert anchor == at(2024, 2, 1)
        assert anchor.tzinfo is UTC

    def test_a_subscription_start_anchor_is_returned_in_utc(self) -> None:
        start = datetime(2024, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=5)))
        anchor = reset_anchor(start, Period.MONTH, None)
        assert anchor == start
        assert anchor.tzinfo is UTC

    def test_start_of_the_month_periods_follow_the_calendar(self) -> None:
        anchor = reset_anchor(self.START, Period.MONTH, "StartOfTheMonth")
        assert bounds(anchor, Period.MONTH, at(2024, 5, 31, 23)) == (at(2024, 5, 1), at(2024, 6, 1))

    def test_weekly_periods_from_a_weekday_start_on_that_weekday(self) -> None:
        anchor = reset_anchor(self.START, Period.WEEK, "EverySunday")
        start, end = bounds(anchor, Period.WEEK, at(2024, 4, 3, 12))
        assert (start, end) == (at(2024, 3, 31), at(2024, 4, 7))
        assert start.weekday() == 6

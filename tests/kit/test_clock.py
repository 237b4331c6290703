"""The clocks Tollgate is handed: the system's, and a manual one for tests."""

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tollgate.kit.clock import Clock, ManualClock, SystemClock

START = datetime(2024, 1, 31, 9, 30, tzinfo=UTC)
PLUS_FIVE = timezone(timedelta(hours=5))


class TestSystemClock:
    def test_now_is_aware_utc_and_current(self) -> None:
        before = datetime.now(UTC)
        now = SystemClock().now()
        after = datetime.now(UTC)
        assert now.tzinfo is UTC
        assert before <= now <= after


class TestManualClockStart:
    def test_now_is_the_start_until_moved(self) -> None:
        clock = ManualClock(START)
        assert clock.now() == START
        assert clock.now() == START

    def test_an_aware_start_in_another_zone_is_kept_in_utc(self) -> None:
        clock = ManualClock(datetime(2024, 1, 31, 14, 30, tzinfo=PLUS_FIVE))
        assert clock.now() == START
        assert clock.now().tzinfo is UTC

    def test_a_naive_start_is_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            ManualClock(datetime(2024, 1, 31, 9, 30))

    def test_it_is_a_clock(self) -> None:
        clocks: list[Clock] = [ManualClock(START), SystemClock()]
        assert all(clock.now().tzinfo is UTC for clock in clocks)


class TestManualClockAdvance:
    def test_advance_moves_and_returns_the_new_time(self) -> None:
        clock = ManualClock(START)
        assert clock.advance(timedelta(days=1, hours=2)) == START + timedelta(days=1, hours=2)
        assert clock.now() == START + timedelta(days=1, hours=2)

    def test_advances_accumulate(self) -> None:
        clock = ManualClock(START)
        clock.advance(timedelta(minutes=30))
        clock.advance(timedelta(minutes=45))
        assert clock.now() == START + timedelta(minutes=75)

    def test_advance_can_go_back(self) -> None:
        clock = ManualClock(START)
        clock.advance(timedelta(hours=-3))
        assert clock.now() == START - timedelta(hours=3)

    def test_concurrent_advances_are_all_counted(self) -> None:
        clock = ManualClock(START)

        def tick() -> None:
            for _ in range(1000):
                clock.advance(timedelta(seconds=1))

        threads = [threading.Thread(target=tick) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert clock.now() == START + timedelta(seconds=8000)


class TestManualClockSet:
    def test_set_moves_to_the_moment(self) -> None:
        clock = ManualClock(START)
        later = START + timedelta(days=400)
        clock.set(later)
        assert clock.now() == later

    def test_set_can_move_back(self) -> None:
        clock = ManualClock(START)
        earlier = START - timedelta(days=1)
        clock.set(earlier)
        assert clock.now() == earlier

    def test_set_keeps_utc(self) -> None:
        clock = ManualClock(START)
        clock.set(datetime(2024, 2, 1, 5, 0, tzinfo=PLUS_FIVE))
        assert clock.now() == datetime(2024, 2, 1, 0, 0, tzinfo=UTC)
        assert clock.now().tzinfo is UTC

    def test_a_naive_moment_is_refused(self) -> None:
        clock = ManualClock(START)
        with pytest.raises(ValueError, match="aware"):
            clock.set(datetime(2024, 2, 1, 0, 0))
        assert clock.now() == START

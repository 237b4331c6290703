"""The app's parts are reached by type, and only a part of that type is kept under it."""

from datetime import UTC, datetime

import anyio
import pytest

from tollgate.http.components import Components
from tollgate.kit.clock import Clock, ManualClock


class TestComponents:
    def test_answers_each_part_by_its_class_or_the_interface_it_was_added_under(self) -> None:
        parts = Components()
        clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
        semaphore = anyio.Semaphore(2)
        parts.add(clock, kind=Clock)
        parts.add(semaphore, kind=anyio.Semaphore)
        parts.add("settings")
        assert parts.get(Clock) is clock  # type: ignore[type-abstract]
        assert parts.get(anyio.Semaphore) is semaphore
        assert parts.get(str) == "settings"

    def test_refuses_a_part_that_is_not_of_the_kind_named(self) -> None:
        with pytest.raises(TypeError, match="is not a Semaphore"):
            Components().add("not a semaphore", kind=anyio.Semaphore)

    def test_refuses_a_second_part_of_one_kind(self) -> None:
        parts = Components()
        parts.add("first")
        with pytest.raises(ValueError, match="a str was added already"):
            parts.add("second")
        assert parts.get(str) == "first"

    def test_names_a_missing_part(self) -> None:
        with pytest.raises(LookupError, match="the app has no int"):
            Components().get(int)

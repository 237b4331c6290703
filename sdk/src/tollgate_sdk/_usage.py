"""Usage and events waiting to be sent, and what this process reported but the server has
not yet acknowledged (metered checks count it).

Every item gets its idempotency key when it is queued, so sending it again after a timeout
or an outage never counts it twice."""

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

UsageKey = tuple[str, str | None, str]  # customer, resource, feature


@dataclass(slots=True, eq=False)  # compared by identity
class Report:
    key: UsageKey
    set_to: bool  # update behavior SET rather than DELTA
    value: float
    body: dict[str, Any]  # as POST /api/v1/usage takes it
    sent: int = 0  # how many times it was posted
    refused: bool = False  # the server refused it as invalid: dropped, never sent again


Local = tuple[float | None, float]  # the value of the last SET (None: none), deltas after it


def counted_with(local: Local | None, acknowledged: float) -> float:
    """The usage a check counts: the server's count, then what it has not acknowledged.
    Read `local` before `acknowledged`: the sender updates the count before it forgets the
    reports, so a check racing it counts a batch twice (denying early), never not at all."""
    if local is None:
        return acknowledged
    set_to, delta = local
    return (acknowledged if set_to is None else set_to) + delta


class UsageBuffer:
    def __init__(self, max_items: int) -> None:
        self._max = max_items
        self._lock = threading.Lock()
        self._reports: deque[Report] = deque()  # waiting to be sent, oldest first
        self._events: deque[dict[str, Any]] = deque()
        self._unacknowledged: dict[UsageKey, deque[Report]] = {}  # queued or on their way
        # Per key: the value the last SET gave (None: no SET), plus the deltas after it.
        # Read without the lock by cached metered checks (a dict read is atomic).
        self.local_values: dict[UsageKey, Local] = {}

    def add_report(self, report: Report) -> bool:
        with self._lock:
            if self._size() >= self._max:
                return False
            self._reports.append(report)
            self._unacknowledged.setdefault(report.key, deque()).append(report)
            set_to, delta = self.local_values.get(report.key, (None, 0.0))
            if report.set_to:
                self.local_values[report.key] = (report.value, 0.0)
            else:
                self.local_values[report.key] = (set_to, delta + report.value)
            return True

    def add_event(self, event: dict[str, Any]) -> bool:
        with self._lock:
            if self._size() >= self._max:
                return False
            self._events.append(event)
            return True

    def take_reports(self, limit: int) -> list[Report]:
        with self._lock:
            return [self._reports.popleft() for _ in range(min(limit, len(self._reports)))]

    def take_events(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return [self._events.popleft() for _ in range(min(limit, len(self._events)))]

    def put_back_reports(self, reports: list[Report]) -> None:
        """Reports that could not be sent go first in line again, in their order."""
        with self._lock:
            self._reports.extendleft(reversed(reports))

    def put_back_events(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self._events.extendleft(reversed(events))

    def settle(self, reports: list[Report]) -> None:
        """These reports are counted by the server (or refused for good): stop adding them."""
        with self._lock:
            touched = set()
            for report in reports:
                waiting = self._unacknowledged.get(report.key)
                if waiting and waiting[0] is report:  # the usual case: settled in order
                    waiting.popleft()
                elif waiting and report in waiting:
                    waiting.remove(report)
                touched.add(report.key)
            for key in touched:
                self._recount(key)

    def _recount(self, key: UsageKey) -> None:
        waiting = self._unacknowledged.get(key)
        if not waiting:
            self._unacknowledged.pop(key, None)
            self.local_values.pop(key, None)
            return
        set_to: float | None = None
        delta = 0.0
        for report in waiting:
            if report.set_to:
                set_to, delta = report.value, 0.0
            else:
                delta += report.value
        self.local_values[key] = (set_to, delta)

    def _size(self) -> int:
        return len(self._reports) + len(self._events)

    @property
    def waiting(self) -> int:
        """Items not yet sent."""
        return self._size()

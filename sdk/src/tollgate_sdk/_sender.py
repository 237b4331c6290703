"""The usage sender: queues usage reports and events, and sends them in batches on a
thread of its own, retrying with backoff until the server has them."""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from tollgate_sdk._cache import CacheKey, CustomerState, EntitlementCache
from tollgate_sdk._errors import error_for
from tollgate_sdk._http import parse_body, response_body
from tollgate_sdk._usage import Report, UsageBuffer

log = logging.getLogger("tollgate_sdk")

BATCH = 1000  # the server's largest usage or event batch
MAX_SEND_BACKOFF = 30.0

Item = TypeVar("Item")
# Replies that say nothing about the items: a revoked key (fixed by the operator), a clash
# with a concurrent change (409), a timeout, throttling.
_TRY_AGAIN = frozenset({401, 403, 408, 409, 425, 429})
# ...but this 409 refuses items for good: an idempotency key sent with another report (or
# event) than the one it stands for.
_KEY_REUSED = "idempotency_key_reused"


class UsageSender:
    def __init__(
        self,
        http: httpx.Client,
        cache: EntitlementCache,
        *,
        max_buffered: int,
        flush_interval: float,
        refresh: Callable[[CacheKey], None],
    ) -> None:
        self.http = http
        self.cache = cache
        self.usage = UsageBuffer(max_buffered)
        self.dropped = 0  # reports and events given up on (refused by the server, or no room)
        self._flush_interval = flush_interval
        self._refresh = refresh
        self._send_now = threading.Event()
        self._closing = threading.Event()
        self._sending = threading.Lock()  # one batch on its way at a time
        self._in_flight = 0
        self._thread = threading.Thread(target=self._send_loop, name="tollgate-sdk-sender")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (what is queued stays, for a last `flush`)."""
        self._closing.set()
        self._send_now.set()
        self._thread.join(timeout=5)

    def queue_usage(
        self,
        customer_id: str,
        feature_id: str,
        value: float,
        *,
        resource_id: str | None,
        set_to: bool,
        dimensions: Mapping[str, str | float | bool] | None,
        idempotency_key: str | None,
    ) -> str:
        key = idempotency_key or uuid.uuid4().hex
        body: dict[str, Any] = {
            "customerId": customer_id,
            "featureId": feature_id,
            "value": value,
            "updateBehavior": "SET" if set_to else "DELTA",
            "idempotencyKey": key,
            # Counted in the period it happened in, however late it is sent.
            "createdAt": _now_wire(),
        }
        if resource_id is not None:
            body["resourceId"] = resource_id
        if dimensions:
            body["dimensions"] = dict(dimensions)
        report = Report((customer_id, resource_id, feature_id), set_to, value, body)
        self._queue(lambda: self.usage.add_report(report), "usage report", customer_id)
        return key

    def queue_event(
        self,
        customer_id: str,
        event_name: str,
        *,
        resource_id: str | None,
        dimensions: Mapping[str, str | float | bool] | None,
        idempotency_key: str | None,
    ) -> str:
        key = idempotency_key or uuid.uuid4().hex
        body: dict[str, Any] = {
            "customerId": customer_id,
            "eventName": event_name,
            "idempotencyKey": key,
            "dimensions": dict(dimensions or {}),
            "timestamp": _now_wire(),
        }
        if resource_id is not None:
            body["resourceId"] = resource_id
        self._queue(lambda: self.usage.add_event(body), "event", customer_id)
        return key

    def _queue(self, add: Callable[[], bool], what: str, customer_id: str) -> None:
        """Queue an item (`add` says whether there was room); a full batch goes at once."""
        if self._closing.is_set() or not add():
            self._lost(what, customer_id)
        elif self.usage.waiting >= BATCH:
            self._send_now.set()

    def _lost(self, what: str, customer_id: str) -> None:
        self.dropped += 1
        why = (
            "the client is closed"
            if self._closing.is_set()
            else f"the buffer is full ({self.waiting} items wait for the server)"
        )
        log.error("Tollgate %s of customer %s dropped: %s", what, customer_id, why)

    @property
    def waiting(self) -> int:
        """Items the server has not yet taken: queued, or sent and not yet answered."""
        return self.usage.waiting + self._in_flight

    def flush(self, timeout: float) -> bool:
        """Send everything queued (after any batch already on its way); whether it all
        reached the server within `timeout`."""
        deadline = time.monotonic() + timeout
        while self.waiting:
            if not self._sending.acquire(timeout=max(deadline - time.monotonic(), 0)):
                break
            try:
                sent = self._send_some()
            finally:
                self._sending.release()
            if time.monotonic() >= deadline:
                break
            if not sent:
                time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
        return self.waiting == 0

    def _send_loop(self) -> None:
        backoff = self._flush_interval
        while not self._closing.is_set():
            self._send_now.wait(backoff)
            self._send_now.clear()
            if self._closing.is_set():
                return
            with self._sending:
                sent = self._send_some()
            grown = min(max(backoff * 2, 1.0), MAX_SEND_BACKOFF)
            backoff = self._flush_interval if sent else grown

    def _send_some(self) -> bool:
        """Send queued usage and events until none wait; False if the server could not take
        them now (they stay queued, first in line). Called holding `_sending`, so batches
        go one at a time, in order."""
        while True:
            reports = self.usage.take_reports(BATCH)
            if reports and not self._attempt(
                reports, self._send_reports, self.usage.put_back_reports
            ):
                return False
            events = self.usage.take_events(BATCH)
            if events and not self._attempt(events, self._send_events, self.usage.put_back_events):
                return False
            if not reports and not events:
                return True

    def _attempt(
        self,
        items: list[Item],
        send: Callable[[list[Item]], bool],
        put_back: Callable[[list[Item]], None],
    ) -> bool:
        """Send a batch; if the server could not take it, it goes first in line again.
        Sending an item twice is safe (idempotency keys), so a batch whose fate is unclear,
        or whose invalid items were being sent one by one, goes back whole."""
        self._in_flight = len(items)
        try:
            if send(items):
                return True
        except Exception:
            log.exception("Tollgate usage sender failed; the batch waits to be sent again")
        finally:
            self._in_flight = 0
        put_back(items)
        return False

    def _send_reports(self, reports: list[Report]) -> bool:
        reports = [report for report in reports if not report.refused]  # a batch put back
        if not reports:
            return True
        # The states the answers will update, as they are now: one read again meanwhile
        # may already count these reports and more (see `_counted`).
        states = {key: self.cache.get(key) for key in {r.key[:2] for r in reports}}
        for report in reports:
            report.sent += 1
        response = self._post("/api/v1/usage", {"usages": [r.body for r in reports]})
        if response is None:
            return False
        if response.status_code >= 400:
            return self._refused(reports, response)
        for report, answer in zip(reports, parse_body(response), strict=True):
            self._counted(report, answer, states.get(report.key[:2]))
        self.usage.settle(reports)
        return True

    def _refused(self, reports: list[Report], response: httpx.Response) -> bool:
        """A batch refused as invalid: send its reports one by one, so only the invalid ones
        are dropped."""
        if len(reports) > 1:
            return all(self._send_reports([report]) for report in reports)
        reports[0].refused = True
        self.dropped += 1
        self.usage.settle(reports)
        log.error(
            "Tollgate refused a usage report (%s), dropped: %s",
            error_for(response.status_code, response_body(response)).message,
            reports[0].body,
        )
        return True

    def _counted(
        self, report: Report, answer: Mapping[str, Any], before: CustomerState | None
    ) -> None:
        """Take the server's count from its answer, so checks need not wait for the stream.
        A report sent again is answered with the count of its first time, so only a first
        sending's answer counts. If the state was read again while the report was on its
        way, that reading may hold a newer count (other processes' usage) or an older one
        (read before the report landed): take the answer and read the state once more."""
        key = report.key[:2]
        state = self.cache.get(key)
        terms = state.terms.get(report.key[2]) if state else None
        if terms is None:
            return
        period_start = answer.get("usagePeriodStart")
        current = terms.usage_period_start
        same_period = (current.isoformat() if current else None) == _iso(period_start)
        if report.sent == 1 and same_period:
            terms.current_usage = answer.get("currentUsage") or 0
        if report.sent > 1 or not same_period or state is not before:
            self._refresh((report.key[0], report.key[1]))

    def _send_events(self, events: list[dict[str, Any]]) -> bool:
        response = self._post("/api/v1/events", {"events": events})
        if response is None:
            return False
        if response.status_code < 400:
            return True
        if len(events) > 1:
            return all(self._send_events([event]) for event in events)
        self.dropped += 1
        log.error("Tollgate refused an event, dropped: %s (%s)", events[0], response.text)
        return True

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response | None:
        """The server's reply, or None when it could not take the batch now (unreachable,
        failing, busy, or refusing the key): the batch waits and is sent again. Only a
        reply that the items themselves are invalid comes back, to drop them."""
        try:
            response = self.http.post(path, json=body)
        except httpx.TransportError as error:
            log.warning("Tollgate unreachable (%s): usage and events wait", error)
            return None
        status = response.status_code
        if (status in _TRY_AGAIN and _error_code(response) != _KEY_REUSED) or status >= 500:
            log.log(
                logging.ERROR if status in (401, 403) else logging.WARNING,
                "Tollgate answered %d (%s): usage and events wait",
                status,
                error_for(status, response_body(response)).message,
            )
            return None
        return response


def _error_code(response: httpx.Response) -> str | None:
    body = response_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _now_wire() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _iso(raw: str | None) -> str | None:
    return datetime.fromisoformat(raw).isoformat() if raw else None

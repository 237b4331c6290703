"""The loader: reads customers' states and the features from the server into the cache.

A customer's first check loads it at once (`load_now`); everything else runs on one daemon
thread: customers the stream says changed, states whose `refreshAt` passed, prefetches, and
loads that failed, tried again once the server answers. Jobs that wait together go to the
server as one `POST /states`."""

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tollgate_sdk._cache import (
    CacheKey,
    CustomerState,
    EntitlementCache,
    FeatureDef,
    parse_features,
    parse_state,
)
from tollgate_sdk._errors import APIError, ServerUnreachable, TollgateError
from tollgate_sdk._http import FEATURES_PATH, STATES_PATH, parse_body, state_path

log = logging.getLogger("tollgate_sdk")

STATES_BATCH = 200  # the most customers the server reads in one request
OFFLINE_SECONDS = 5.0  # after a failed load, checks answer without asking for this long
MAX_REMEMBERED_CHANGES = 100_000
# A job is a customer's cache key, or one of these.
_ALL = ("", None)  # re-read every cached customer and the features
_FEATURES = ("", "features")
_STOP = ("", "stop")


class Loader:
    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        cache: EntitlementCache,
        *,
        on_features: Callable[[dict[str, FeatureDef]], None],
    ) -> None:
        self.http = http
        self.base_url = base_url
        self.cache = cache
        self._on_features = on_features
        self.features_loaded = threading.Event()
        self._offline_until = 0.0
        # When (in a count of change events) each customer last changed, so a load that
        # raced a change is read again. Forgotten wholesale when large: `_floor` then
        # stands for every forgotten customer, as if all had just changed.
        self._sequence = 0
        self._changed_at: dict[str, int] = {}
        self._floor = 0
        self._versions: dict[str, int] = {}  # the latest entitlements version announced
        self._failed: set[tuple[str, str | None]] = set()  # loads to try again
        self._loads: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._queued: set[tuple[str, str | None]] = set()
        self._queued_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._load_loop, name="tollgate-sdk-loader")
        self._thread.daemon = True

    def start(self) -> None:
        self.schedule(_FEATURES)
        self._thread.start()

    def stop(self) -> None:
        """Take no more jobs; `join` then ends the thread."""
        self._stopping.set()

    def join(self) -> None:
        self._loads.put(_STOP)
        self._thread.join(timeout=5)

    # --- a customer's first check -----------------------------------------------------

    def load_now(self, key: CacheKey) -> CustomerState | None:
        """A customer's first check: load it now (None when the server cannot say)."""
        seen = self.begin_load()
        if seen is None:
            return None
        try:
            if not self.features_loaded.is_set():
                self._load_features()
            data = self._get(state_path(key[0]), self.state_params(key))
        except TollgateError as error:
            self.note_failure(error)
            return None
        return self.keep(key, data, seen)

    def begin_load(self) -> int | None:
        """Before loading a customer: None while loads are paused after a failure, else
        the value `keep` needs to tell whether a change raced the load."""
        if time.monotonic() < self._offline_until:
            return None
        return self._sequence

    def state_params(self, key: CacheKey) -> dict[str, str]:
        """The query of a first load (`GET .../state`); see `_refresh_item`."""
        params = {"resourceId": key[1]} if key[1] is not None else {}
        version = self._versions.get(key[0])
        if version:
            params["minVersion"] = str(version)
        if key[0] in self._changed_at:
            params["freshUsage"] = "true"
        return params

    def keep(self, key: CacheKey, data: Any, seen: int) -> CustomerState:
        """Cache a state read from the server; if a change event came while it was being
        read, it may predate that change, so read it again in the background."""
        state = parse_state(data, loaded_at=seen)
        self.cache.put(state)
        if self._last_change(key[0]) > seen:
            self.schedule(key)
        return state

    def _last_change(self, customer_id: str) -> int:
        """When (in the count of change events) the customer last changed, as far as this
        process knows: the floor stands for every customer at once."""
        return max(self._changed_at.get(customer_id, 0), self._floor)

    def set_features(self, data: Any) -> None:
        self._on_features(parse_features(data))
        self.features_loaded.set()
        for state in self.cache.states():
            state.forget_answers()

    def note_failure(self, error: TollgateError) -> None:
        """A load failed. When the server as a whole cannot answer (unreachable, failing,
        or refusing the key), checks answer the cache or fallbacks without asking again
        for a while, so an outage neither slows them nor floods the log."""
        if isinstance(error, ServerUnreachable):
            log.warning("Tollgate unreachable: %s; checks answer the cache or fallbacks", error)
        else:
            log.error("Tollgate refused to load entitlements: %s", error)
        if isinstance(error, ServerUnreachable) or (
            isinstance(error, APIError) and (error.status in (401, 403) or error.status >= 500)
        ):
            self._offline_until = time.monotonic() + OFFLINE_SECONDS

    def is_offline(self) -> bool:
        return time.monotonic() < self._offline_until

    # --- what the stream announces ----------------------------------------------------

    def customer_changed(self, customer_id: str, version: object) -> None:
        # What a load reads (the version) is written before the count a load compares
        # (`keep`) moves, so a load that saw the new count also saw the version.
        changed = self._sequence + 1
        if len(self._changed_at) >= MAX_REMEMBERED_CHANGES:
            self._changed_at.clear()
            self._floor = changed
        if isinstance(version, int) and version > self._versions.get(customer_id, 0):
            self._versions[customer_id] = version
        self._changed_at[customer_id] = changed
        self._sequence = changed
        for key in self.cache.keys_of(customer_id):
            self.schedule(key)

    def everything_changed(self) -> None:
        """The catalog changed, or changes may have been missed: every customer (and the
        features) is read again, from the database rather than any server's memory."""
        changed = self._sequence + 1
        self._floor = changed
        self._sequence = changed
        self.schedule(_ALL)

    # --- the thread -------------------------------------------------------------------

    def schedule(self, job: tuple[str, str | None]) -> None:
        with self._queued_lock:
            if job in self._queued:
                return
            self._queued.add(job)
        self._loads.put(job)

    def _load_loop(self) -> None:
        while True:
            try:
                jobs = [self._loads.get(timeout=OFFLINE_SECONDS)]
            except queue.Empty:
                self._retry_failed()
                continue
            # Whatever else waits goes in the same round: a burst of changes becomes one
            # request for all the customers it touched.
            while len(jobs) < STATES_BATCH:
                try:
                    jobs.append(self._loads.get_nowait())
                except queue.Empty:
                    break
            with self._queued_lock:
                self._queued.difference_update(jobs)
            if _STOP in jobs or self._stopping.is_set():
                return
            for job in jobs:
                if job in (_FEATURES, _ALL):
                    self._attempt([job], self._load_features_or_all)
            customers = [job for job in jobs if job not in (_FEATURES, _ALL)]
            if customers:
                self._attempt(customers, self._load_states)

    def _attempt(self, jobs: list[CacheKey], load: Callable[[list[CacheKey]], None]) -> None:
        try:
            load(jobs)
        except Exception as error:
            # Never given up: a customer left as it was could answer wrongly until it
            # next changes. Tried again once loads resume.
            self._failed.update(jobs)
            if isinstance(error, TollgateError):
                self.note_failure(error)
            else:
                log.exception("Tollgate SDK could not refresh %s", jobs)
        else:
            self._retry_failed()

    def _retry_failed(self) -> None:
        if self._failed and not self.is_offline():
            failed, self._failed = self._failed, set()
            for job in failed:
                self.schedule(job)

    def _load_features_or_all(self, jobs: list[CacheKey]) -> None:
        if jobs == [_ALL]:
            self._load_features(fresh=True)
            for key in self.cache.all_keys():
                self.schedule(key)
        else:
            self._load_features()

    def _load_states(self, keys: list[CacheKey]) -> None:
        seen = self._sequence
        if not self.features_loaded.is_set():
            self._load_features()
        body = {"customers": [self._refresh_item(key) for key in keys], "freshUsage": True}
        try:
            response = self.http.post(STATES_PATH, json=body)
        except httpx.TransportError as error:
            raise ServerUnreachable(f"{self.base_url}: {error}") from error
        for key, data in zip(keys, parse_body(response), strict=True):
            self.keep(key, data, seen)

    def _refresh_item(self, key: CacheKey) -> dict[str, Any]:
        """What to ask so that a server process that has not yet heard of a change the
        stream announced reads the database instead of its memory: at least the version
        announced (and usage from the database: the request says so for every refresh);
        everything when the catalog changed since the cached state was read."""
        item: dict[str, Any] = {"customerId": key[0], "resourceId": key[1]}
        item["minVersion"] = self._versions.get(key[0], 0)
        cached = self.cache.get(key)
        item["fresh"] = bool(self._floor) and (cached is None or cached.loaded_at < self._floor)
        return item

    def _load_features(self, *, fresh: bool = False) -> None:
        self.set_features(self._get(FEATURES_PATH, {"fresh": "true"} if fresh else {}))

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        try:
            response = self.http.get(path, params=params)
        except httpx.TransportError as error:
            raise ServerUnreachable(f"{self.base_url}: {error}") from error
        return parse_body(response)

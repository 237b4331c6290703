"""What `Tollgate` and `AsyncTollgate` share: the cache and how it is kept live, the usage
buffer and its sender, the answers, the fallbacks.

Background work runs on three daemon threads in both clients (the stream, the loader that
re-reads changed customers, the usage sender), so it never competes with an application's
event loop and a check never waits for it."""

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tollgate_sdk._cache import (
    FOREVER,
    CacheKey,
    CustomerState,
    EntitlementCache,
    FeatureDef,
    Gauge,
    decide,
    parse_features,
    parse_state,
)
from tollgate_sdk._errors import APIError, ServerUnreachable, TollgateError
from tollgate_sdk._http import FEATURES_PATH, STATES_PATH, parse_body, state_path
from tollgate_sdk._sender import UsageSender
from tollgate_sdk._stream import ServerEvent, StreamFollower
from tollgate_sdk._types import (
    AccessDeniedReason,
    BooleanEntitlement,
    Entitlement,
    EnumEntitlement,
    Fallback,
    MeteredEntitlement,
    NumericEntitlement,
    Source,
)
from tollgate_sdk._usage import counted_with

log = logging.getLogger("tollgate_sdk")

STATES_BATCH = 200  # the most customers the server reads in one request
OFFLINE_SECONDS = 5.0  # after a failed load, checks answer without asking for this long
MAX_REMEMBERED_CHANGES = 100_000
# Looking up an enum member costs ~70 ns; the cached metered path reads these instead.
_CACHE = Source.CACHE
_EXCEEDING = AccessDeniedReason.REQUESTED_USAGE_EXCEEDING_LIMIT
_ALL = ("", None)  # the loader's job for "re-read every cached customer and the features"
_FEATURES = ("", "features")
_STOP = ("", "stop")


class Core:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        fallback_entitlements: Mapping[str, Fallback] | None,
        max_customers: int,
        max_buffered_usage: int,
        flush_interval: float,
        timeout: float,
        live_updates: bool,
        transport: httpx.BaseTransport | None,
    ) -> None:
        if not api_key:
            raise ValueError("give a Tollgate server API key (tollgate keys create)")
        self.base_url = base_url.rstrip("/")
        self.headers = {"X-API-KEY": api_key, "user-agent": "tollgate-sdk-python"}
        self.timeout = timeout
        self.http = self._client(transport)
        self.cache = EntitlementCache(max_customers)
        self.features: dict[str, FeatureDef] = {}
        self.features_loaded = threading.Event()
        self.live = threading.Event()
        self._fallbacks = dict(fallback_entitlements or {})
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
        self._closed = threading.Event()
        self._loader = threading.Thread(target=self._load_loop, name="tollgate-sdk-loader")
        self._loader.daemon = True
        self.sender = UsageSender(
            self.http,
            self.cache,
            max_buffered=max_buffered_usage,
            flush_interval=flush_interval,
            refresh=self._schedule,
        )
        self.usage = self.sender.usage
        self._stream = (
            StreamFollower(
                self._client(transport), on_event=self._on_event, on_disconnect=self.live.clear
            )
            if live_updates
            else None
        )

    def _client(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=self.timeout, transport=transport
        )

    def start(self) -> None:
        self._schedule(_FEATURES)
        self._loader.start()
        self.sender.start()
        if self._stream is not None:
            self._stream.start()

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.features_loaded.wait(timeout):
            return False
        return self._stream is None or self.live.wait(max(deadline - time.monotonic(), 0))

    # --- answers -------------------------------------------------------------------

    def state_for(self, key: CacheKey) -> tuple[CustomerState | None, Source]:
        """The cached state, else one loaded now (None when the server cannot be reached)."""
        state = self.cache.get(key)
        if state is not None:
            self.notice_time(state)
            return state, Source.CACHE
        return self.load_now(key), Source.SERVER

    @staticmethod
    def is_due(state: CustomerState) -> bool:
        return state.refresh_at <= time.time()

    def notice_time(self, state: CustomerState) -> None:
        if state.refresh_at <= time.time():
            state.refresh_at = FOREVER  # read it again once, not on every check meanwhile
            self._schedule((state.customer_id, state.resource_id))

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

    def keep(self, key: CacheKey, data: Any, seen: int) -> CustomerState:
        """Cache a state read from the server; if a change event came while it was being
        read, it may predate that change, so read it again in the background."""
        state = parse_state(data, loaded_at=seen)
        self.cache.put(state)
        if self._last_change(key[0]) > seen:
            self._schedule(key)
        return state

    def _last_change(self, customer_id: str) -> int:
        """When (in the count of change events) the customer last changed, as far as this
        process knows: the floor stands for every customer at once."""
        return max(self._changed_at.get(customer_id, 0), self._floor)

    def boolean(
        self, state: CustomerState | None, source: Source, feature_id: str
    ) -> BooleanEntitlement:
        if state is None:
            fallback = self._fallbacks.get(feature_id)
            granted = fallback is not None and fallback.has_access
            return BooleanEntitlement(
                feature_id, granted, _fallback_reason(granted), Source.FALLBACK
            )
        feature = self.features.get(feature_id)
        if feature is not None and feature.is_metered:
            metered = self.metered(state, source, feature_id, None)
            return BooleanEntitlement(
                feature_id, metered.has_access, metered.access_denied_reason, source
            )
        granted, reason, _ = decide(state, feature)
        answer = BooleanEntitlement(feature_id, granted, reason, source)
        if source is Source.CACHE:
            state.booleans[feature_id] = answer
        return answer

    def numeric(
        self, state: CustomerState | None, source: Source, feature_id: str
    ) -> NumericEntitlement:
        if state is None:
            fallback = self._fallbacks.get(feature_id) or Fallback(has_access=False)
            return NumericEntitlement(
                feature_id,
                fallback.has_access,
                _fallback_reason(fallback.has_access),
                Source.FALLBACK,
                fallback.usage_limit,
                fallback.is_unlimited,
            )
        granted, reason, terms = decide(state, self.features.get(feature_id))
        return NumericEntitlement(
            feature_id,
            granted,
            reason,
            source,
            terms.usage_limit if terms else None,
            terms.is_unlimited if terms else False,
        )

    def metered(
        self,
        state: CustomerState | None,
        source: Source,
        feature_id: str,
        requested_usage: float | None,
    ) -> MeteredEntitlement:
        requested = 1 if requested_usage is None else requested_usage
        if state is None:
            return self._metered_fallback(feature_id, requested)
        feature = self.features.get(feature_id)
        terms = state.terms.get(feature_id)
        usage = 0.0
        if terms is not None and feature is not None and feature.is_metered:
            local = self.usage.local_values.get((state.customer_id, state.resource_id, feature_id))
            counted = terms.current_usage if time.time() < terms.period_ends_at else 0
            usage = counted_with(local, counted)
        granted, reason, terms = decide(
            state, feature, requested_usage=requested_usage, current_usage=usage
        )
        if (
            source is Source.CACHE
            and terms is not None
            and feature is not None
            and feature.is_metered
            and (granted or reason is AccessDeniedReason.REQUESTED_USAGE_EXCEEDING_LIMIT)
        ):
            key = (state.customer_id, state.resource_id, feature_id)
            state.gauges[feature_id] = Gauge(feature_id, key, terms)
        return MeteredEntitlement(
            feature_id=feature_id,
            has_access=granted,
            access_denied_reason=reason,
            source=source,
            usage_limit=terms.usage_limit if terms else None,
            is_unlimited=terms.is_unlimited if terms else False,
            has_soft_limit=terms.has_soft_limit if terms else False,
            current_usage=usage,
            requested_usage=requested,
            reset_period=terms.reset_period if terms else None,
            usage_period_start=terms.usage_period_start if terms else None,
            usage_period_end=terms.usage_period_end if terms else None,
        )

    def gauged(self, gauge: Gauge, requested_usage: float | None, now: float) -> MeteredEntitlement:
        """A cached metered check of a granted feature: `metered`'s answer, made faster."""
        terms = gauge.terms
        local = self.usage.local_values.get(gauge.key)  # before the count: see counted_with
        counted = counted_with(local, terms.current_usage if now < terms.period_ends_at else 0)
        requested = 1 if requested_usage is None else requested_usage
        granted = gauge.unbounded or counted + requested <= gauge.limit
        return MeteredEntitlement(
            gauge.feature_id,
            granted,
            None if granted else _EXCEEDING,
            _CACHE,
            terms.usage_limit,
            terms.is_unlimited,
            terms.has_soft_limit,
            counted,
            requested,
            terms.reset_period,
            terms.usage_period_start,
            terms.usage_period_end,
        )

    def _metered_fallback(self, feature_id: str, requested: float) -> MeteredEntitlement:
        fallback = self._fallbacks.get(feature_id) or Fallback(has_access=False)
        limit = fallback.usage_limit
        granted = fallback.has_access and (
            fallback.is_unlimited or limit is None or requested <= limit
        )
        return MeteredEntitlement(
            feature_id=feature_id,
            has_access=granted,
            access_denied_reason=_fallback_reason(granted),
            source=Source.FALLBACK,
            usage_limit=limit,
            is_unlimited=fallback.is_unlimited,
            has_soft_limit=False,
            current_usage=0,
            requested_usage=requested,
            reset_period=None,
            usage_period_start=None,
            usage_period_end=None,
        )

    def enum(
        self,
        state: CustomerState | None,
        source: Source,
        feature_id: str,
        requested_values: frozenset[str] | None,
    ) -> EnumEntitlement:
        if state is None:
            fallback = self._fallbacks.get(feature_id) or Fallback(has_access=False)
            values = fallback.enum_values or frozenset()
            granted = fallback.has_access and (
                requested_values is None or values.issuperset(requested_values)
            )
            return EnumEntitlement(
                feature_id,
                granted,
                _fallback_reason(granted),
                Source.FALLBACK,
                values,
                requested_values,
            )
        granted, reason, terms = decide(
            state, self.features.get(feature_id), requested_values=requested_values
        )
        values = (terms.enum_values if terms else None) or frozenset()
        return EnumEntitlement(feature_id, granted, reason, source, values, requested_values)

    def every(self, state: CustomerState | None, source: Source) -> list[Entitlement]:
        """Each feature the customer is entitled to, answered as its own kind of check."""
        if state is None:
            return [self.typed(None, source, feature_id) for feature_id in sorted(self._fallbacks)]
        return [self.typed(state, source, feature_id) for feature_id in sorted(state.terms)]

    def typed(self, state: CustomerState | None, source: Source, feature_id: str) -> Entitlement:
        feature = self.features.get(feature_id)
        fallback = self._fallbacks.get(feature_id)
        if (feature is not None and feature.is_metered) or (
            feature is None and fallback is not None and fallback.usage_limit is not None
        ):
            return self.metered(state, source, feature_id, None)
        if feature is not None and feature.feature_type == "NUMBER":
            return self.numeric(state, source, feature_id)
        if (feature is not None and feature.feature_type == "ENUM") or (
            feature is None and fallback is not None and fallback.enum_values is not None
        ):
            return self.enum(state, source, feature_id, None)
        return self.boolean(state, source, feature_id)

    def report_failure(self, kind: str, feature_id: str) -> None:
        """A check answers its fallback even if this SDK has a bug; said loudly."""
        log.exception("Tollgate %s check of %s failed; answering the fallback", kind, feature_id)

    # --- keeping the cache live -------------------------------------------------------

    def _on_event(self, event: ServerEvent) -> None:
        if event.name in ("customer", "usage"):
            customer_id = event.data.get("customerId")
            if isinstance(customer_id, str):
                self._customer_changed(customer_id, event.data.get("version"))
        elif event.name in ("catalog", "reset"):
            self._everything_changed()
        elif event.name == "ready":
            assert self._stream is not None
            if not self._stream.resumed:
                # A fresh stream knows nothing of what changed before it: read it all again.
                self._everything_changed()
            self.live.set()

    def _customer_changed(self, customer_id: str, version: object) -> None:
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
            self._schedule(key)

    def _everything_changed(self) -> None:
        """The catalog changed, or changes may have been missed: every customer (and the
        features) is read again, from the database rather than any server's memory."""
        changed = self._sequence + 1
        self._floor = changed
        self._sequence = changed
        self._schedule(_ALL)

    def forget_customer(self, customer_id: str) -> None:
        """This process changed the customer: its next check reads it from the server."""
        self.cache.drop(customer_id)

    def prefetch(self, key: CacheKey) -> None:
        self._schedule(key)

    def _schedule(self, job: tuple[str, str | None]) -> None:
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
            if _STOP in jobs or self._closed.is_set():
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
                self._schedule(job)

    def _load_features_or_all(self, jobs: list[CacheKey]) -> None:
        if jobs == [_ALL]:
            self._load_features(fresh=True)
            for key in self.cache.all_keys():
                self._schedule(key)
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

    def _load_features(self, *, fresh: bool = False) -> None:
        self.set_features(self._get(FEATURES_PATH, {"fresh": "true"} if fresh else {}))

    def set_features(self, data: Any) -> None:
        self.features = parse_features(data)
        self.features_loaded.set()
        for state in self.cache.states():
            state.forget_answers()

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        try:
            response = self.http.get(path, params=params)
        except httpx.TransportError as error:
            raise ServerUnreachable(f"{self.base_url}: {error}") from error
        return parse_body(response)

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

    # --- the end -----------------------------------------------------------------------

    def close(self, flush_timeout: float) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._stream is not None:
            self._stream.stop()
        self.live.clear()
        self.sender.stop()
        if not self.sender.flush(flush_timeout):
            log.error(
                "Tollgate could not be reached to deliver %d usage reports and events; they "
                "are lost",
                self.sender.waiting,
            )
        self._loads.put(_STOP)
        self._loader.join(timeout=5)
        # Last: both clients may share a transport given by the caller, which closing
        # either would close.
        if self._stream is not None:
            self._stream.http.close()
        self.http.close()


def _fallback_reason(granted: bool) -> AccessDeniedReason | None:
    return None if granted else AccessDeniedReason.UNKNOWN

"""`Tollgate` and `AsyncTollgate`: the two faces of one SDK (see `_core` for the engine:
`_answers` answers checks, `_loader` keeps the cache live)."""

import asyncio
import atexit
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from tollgate_sdk._answers import Answers
from tollgate_sdk._cache import CustomerState
from tollgate_sdk._core import Core
from tollgate_sdk._errors import ServerUnreachable, TollgateError
from tollgate_sdk._http import FEATURES_PATH, parse_body, state_path
from tollgate_sdk._types import (
    BooleanEntitlement,
    Entitlement,
    EnumEntitlement,
    Fallback,
    MeteredEntitlement,
    NumericEntitlement,
    Source,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
Dimensions = Mapping[str, str | float | bool]


class _Base:
    """The checks and usage calls, identical in both clients: none of them waits for the
    network once a customer is cached."""

    _core: Core
    _answers: Answers  # the core's, held here too: a check reaches it in one lookup

    def report_usage(
        self,
        customer_id: str,
        feature_id: str,
        value: float,
        *,
        resource_id: str | None = None,
        update_behavior: str = "DELTA",
        dimensions: Dimensions | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Queue a usage report (sent within `flush_interval`, in batches, retried until
        the server has it); returns its idempotency key. Metered checks in this process
        count it at once. ``tollgate.report_usage("org-1", "feature-active-users", 1)``"""
        if update_behavior not in ("DELTA", "SET"):
            raise ValueError("update_behavior is 'DELTA' (add) or 'SET' (replace)")
        return self._core.sender.queue_usage(
            customer_id,
            feature_id,
            value,
            resource_id=resource_id,
            set_to=update_behavior == "SET",
            dimensions=dimensions,
            idempotency_key=idempotency_key,
        )

    def report_event(
        self,
        customer_id: str,
        event_name: str,
        *,
        dimensions: Dimensions | None = None,
        resource_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Queue a raw event for the server's meters; returns its idempotency key.
        ``tollgate.report_event("org-1", "api_call", dimensions={"route": "/search"})``"""
        return self._core.sender.queue_event(
            customer_id,
            event_name,
            resource_id=resource_id,
            dimensions=dimensions,
            idempotency_key=idempotency_key,
        )

    def is_cached(self, customer_id: str, *, resource_id: str | None = None) -> bool:
        """Whether checks of this customer answer from memory (without a request)."""
        return self._core.cache.get((customer_id, resource_id)) is not None

    @property
    def is_live(self) -> bool:
        """Whether the stream is connected, so cached answers follow changes as they happen."""
        return self._core.live.is_set()

    @property
    def usage_waiting(self) -> int:
        """Usage reports and events queued and not yet taken by the server."""
        return self._core.sender.waiting

    @property
    def usage_dropped(self) -> int:
        """Reports and events given up on: refused as invalid, or no room in the buffer."""
        return self._core.sender.dropped


def _customer_body(
    customer_id: str,
    name: str | None,
    email: str | None,
    billing_id: str | None,
    metadata: Mapping[str, str] | None,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    fields = {"name": name, "email": email, "billingId": billing_id, "metadata": metadata}
    return {"id": customer_id, **{k: v for k, v in fields.items() if v is not None}, **extra}


def _subscription_body(
    customer_id: str,
    plan_id: str,
    billing_period: str | None,
    addons: Mapping[str, int] | None,
    resource_id: str | None,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {"customerId": customer_id, "planId": plan_id}
    if billing_period is not None:
        body["billingPeriod"] = billing_period
    if addons:
        body["addons"] = [{"addonId": a, "quantity": q} for a, q in addons.items()]
    if resource_id is not None:
        body["resourceId"] = resource_id
    return {**body, **extra}


class Tollgate(_Base):
    """Tollgate's client for threaded code (Django, Flask, scripts).

    ``tollgate = Tollgate(api_key="tg_server_...", base_url="http://127.0.0.1:8000")``

    Each customer's entitlements are loaded on its first check and then kept live by a
    stream from the server; checks answer from memory and never raise. Usage is batched
    and sent in the background. Close it (or use it as a context manager) to send what is
    still queued; it is also closed at interpreter exit."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        fallback_entitlements: Mapping[str, Fallback] | None = None,
        max_customers: int = 10_000,
        max_buffered_usage: int = 100_000,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        live_updates: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = Core(
            api_key=api_key,
            base_url=base_url,
            fallback_entitlements=fallback_entitlements,
            max_customers=max_customers,
            max_buffered_usage=max_buffered_usage,
            flush_interval=flush_interval,
            timeout=timeout,
            live_updates=live_updates,
            transport=transport,
        )
        self._answers = self._core.answers
        self._core.start()
        atexit.register(self.close)

    def wait_for_initialization(self, timeout: float = 10.0) -> bool:
        """Wait until the features are loaded and the stream is live; whether they were."""
        return self._core.wait_ready(timeout)

    def get_boolean_entitlement(
        self, customer_id: str, feature_id: str, *, resource_id: str | None = None
    ) -> BooleanEntitlement:
        """May this customer use the feature?
        ``if tollgate.get_boolean_entitlement("org-1", "feature-sso").has_access: ...``"""
        answers = self._answers
        try:
            state = answers.cache.get((customer_id, resource_id))
            if state is not None:
                answer = state.booleans.get(feature_id)
                if answer is not None and not answers.is_due(state):
                    return answer
                answers.notice_time(state)
                return answers.boolean(state, Source.CACHE, feature_id)
            state = self._core.loader.load_now((customer_id, resource_id))
            return answers.boolean(state, Source.SERVER, feature_id)
        except Exception:
            answers.report_failure("boolean", feature_id)
            return answers.boolean(None, Source.FALLBACK, feature_id)

    def get_numeric_entitlement(
        self, customer_id: str, feature_id: str, *, resource_id: str | None = None
    ) -> NumericEntitlement:
        """The number a customer's plan sets for a configuration feature (``.value``)."""
        answers = self._answers
        try:
            state, source = answers.state_for((customer_id, resource_id))
            return answers.numeric(state, source, feature_id)
        except Exception:
            answers.report_failure("numeric", feature_id)
            return answers.numeric(None, Source.FALLBACK, feature_id)

    def get_metered_entitlement(
        self,
        customer_id: str,
        feature_id: str,
        *,
        requested_usage: float | None = None,
        resource_id: str | None = None,
    ) -> MeteredEntitlement:
        """Is there room for `requested_usage` more (1 if not given)?
        ``tollgate.get_metered_entitlement("org-1", "feature-seats", requested_usage=2)``"""
        answers = self._answers
        try:
            state = answers.cache.get((customer_id, resource_id))
            if state is not None:
                gauge = state.gauges.get(feature_id)
                now = time.time()
                if gauge is not None and state.refresh_at > now:
                    return answers.gauged(gauge, requested_usage, now)
            state, source = answers.state_for((customer_id, resource_id))
            return answers.metered(state, source, feature_id, requested_usage)
        except Exception:
            answers.report_failure("metered", feature_id)
            return answers.metered(None, Source.FALLBACK, feature_id, requested_usage)

    def get_enum_entitlement(
        self,
        customer_id: str,
        feature_id: str,
        *,
        requested_values: Iterable[str] | None = None,
        resource_id: str | None = None,
    ) -> EnumEntitlement:
        """Are all of `requested_values` among the values granted?"""
        answers = self._answers
        requested = frozenset(requested_values) if requested_values is not None else None
        try:
            state, source = answers.state_for((customer_id, resource_id))
            return answers.enum(state, source, feature_id, requested)
        except Exception:
            answers.report_failure("enum", feature_id)
            return answers.enum(None, Source.FALLBACK, feature_id, requested)

    def get_entitlements(
        self, customer_id: str, *, resource_id: str | None = None
    ) -> list[Entitlement]:
        """Every feature the customer is entitled to, each answered as its kind of check."""
        answers = self._answers
        try:
            state, source = answers.state_for((customer_id, resource_id))
            return answers.every(state, source)
        except Exception:
            answers.report_failure("list", "*")
            return answers.every(None, Source.FALLBACK)

    def prefetch(self, customer_ids: Iterable[str], *, resource_id: str | None = None) -> None:
        """Load these customers in the background, so their first checks are cached too."""
        for customer_id in customer_ids:
            self._core.prefetch((customer_id, resource_id))

    def provision_customer(
        self,
        customer_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        billing_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a customer (the server's reply's `data`; more wire fields in `extra`).
        Raises the `APIError` the server's answer says, or `ServerUnreachable`."""
        body = _customer_body(customer_id, name, email, billing_id, metadata, extra)
        return self._post("/api/v1/customers", body, customer_id)

    def provision_subscription(
        self,
        customer_id: str,
        plan_id: str,
        *,
        billing_period: str | None = None,
        addons: Mapping[str, int] | None = None,
        resource_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Subscribe a customer to a plan (add-on ids to quantities in `addons`); the
        server's reply's `data`. The customer's next check in this process reads it from
        the server."""
        body = _subscription_body(customer_id, plan_id, billing_period, addons, resource_id, extra)
        return self._post("/api/v1/subscriptions", body, customer_id)

    def _post(self, path: str, body: Mapping[str, Any], customer_id: str) -> dict[str, Any]:
        try:
            response = self._core.http.post(path, json=body)
        except httpx.TransportError as error:
            raise ServerUnreachable(f"{self._core.base_url}: {error}") from error
        data: dict[str, Any] = parse_body(response)
        self._core.forget_customer(customer_id)
        return data

    def flush(self, timeout: float = 10.0) -> bool:
        """Send every queued report and event now; whether all reached the server."""
        return self._core.sender.flush(timeout)

    def close(self, flush_timeout: float = 10.0) -> None:
        """Stop the stream and send what is queued (waiting at most `flush_timeout`)."""
        atexit.unregister(self.close)
        self._core.close(flush_timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncTollgate(_Base):
    """Tollgate's client for asyncio code (FastAPI, Starlette), the twin of `Tollgate`.

    ``tollgate = AsyncTollgate(api_key="tg_server_...", base_url="http://127.0.0.1:8000")``

    Checks of cached customers answer at once; a customer's first check loads it with an
    `httpx.AsyncClient`, never blocking the event loop. The stream and the usage sender
    run on background threads, so they never compete with the loop."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        fallback_entitlements: Mapping[str, Fallback] | None = None,
        max_customers: int = 10_000,
        max_buffered_usage: int = 100_000,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        live_updates: bool = True,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = Core(
            api_key=api_key,
            base_url=base_url,
            fallback_entitlements=fallback_entitlements,
            max_customers=max_customers,
            max_buffered_usage=max_buffered_usage,
            flush_interval=flush_interval,
            timeout=timeout,
            live_updates=live_updates,
            transport=transport,
        )
        self._answers = self._core.answers
        self._http = httpx.AsyncClient(
            base_url=self._core.base_url,
            headers=self._core.headers,
            timeout=timeout,
            transport=async_transport,
        )
        self._core.start()
        atexit.register(self._core.close, 10.0)

    async def wait_for_initialization(self, timeout: float = 10.0) -> bool:
        """Wait until the features are loaded and the stream is live; whether they were."""
        return await asyncio.to_thread(self._core.wait_ready, timeout)

    async def _state(
        self, customer_id: str, resource_id: str | None
    ) -> tuple[CustomerState | None, Source]:
        """As `Answers.state_for`, loading a customer without blocking the event loop."""
        answers, loader = self._answers, self._core.loader
        key = (customer_id, resource_id)
        state = answers.cache.get(key)
        if state is not None:
            answers.notice_time(state)
            return state, Source.CACHE
        seen = loader.begin_load()
        if seen is None:
            return None, Source.FALLBACK
        try:
            if not loader.features_loaded.is_set():
                loader.set_features(await self._get(FEATURES_PATH, {}))
            data = await self._get(state_path(customer_id), loader.state_params(key))
        except TollgateError as error:
            loader.note_failure(error)
            return None, Source.FALLBACK
        return loader.keep(key, data, seen), Source.SERVER

    async def _get(self, path: str, params: Mapping[str, str]) -> Any:
        try:
            response = await self._http.get(path, params=params)
        except httpx.TransportError as error:
            raise ServerUnreachable(f"{self._core.base_url}: {error}") from error
        return parse_body(response)

    async def get_boolean_entitlement(
        self, customer_id: str, feature_id: str, *, resource_id: str | None = None
    ) -> BooleanEntitlement:
        """May this customer use the feature?
        ``if (await tollgate.get_boolean_entitlement("org-1", "feature-sso")).has_access:``"""
        answers = self._answers
        try:
            state, source = await self._state(customer_id, resource_id)
            return answers.boolean(state, source, feature_id)
        except Exception:
            answers.report_failure("boolean", feature_id)
            return answers.boolean(None, Source.FALLBACK, feature_id)

    async def get_numeric_entitlement(
        self, customer_id: str, feature_id: str, *, resource_id: str | None = None
    ) -> NumericEntitlement:
        """The number a customer's plan sets for a configuration feature (``.value``)."""
        answers = self._answers
        try:
            state, source = await self._state(customer_id, resource_id)
            return answers.numeric(state, source, feature_id)
        except Exception:
            answers.report_failure("numeric", feature_id)
            return answers.numeric(None, Source.FALLBACK, feature_id)

    async def get_metered_entitlement(
        self,
        customer_id: str,
        feature_id: str,
        *,
        requested_usage: float | None = None,
        resource_id: str | None = None,
    ) -> MeteredEntitlement:
        """Is there room for `requested_usage` more (1 if not given)?"""
        answers = self._answers
        try:
            state, source = await self._state(customer_id, resource_id)
            return answers.metered(state, source, feature_id, requested_usage)
        except Exception:
            answers.report_failure("metered", feature_id)
            return answers.metered(None, Source.FALLBACK, feature_id, requested_usage)

    async def get_enum_entitlement(
        self,
        customer_id: str,
        feature_id: str,
        *,
        requested_values: Iterable[str] | None = None,
        resource_id: str | None = None,
    ) -> EnumEntitlement:
        """Are all of `requested_values` among the values granted?"""
        answers = self._answers
        requested = frozenset(requested_values) if requested_values is not None else None
        try:
            state, source = await self._state(customer_id, resource_id)
            return answers.enum(state, source, feature_id, requested)
        except Exception:
            answers.report_failure("enum", feature_id)
            return answers.enum(None, Source.FALLBACK, feature_id, requested)

    async def get_entitlements(
        self, customer_id: str, *, resource_id: str | None = None
    ) -> list[Entitlement]:
        """Every feature the customer is entitled to, each answered as its kind of check."""
        answers = self._answers
        try:
            state, source = await self._state(customer_id, resource_id)
            return answers.every(state, source)
        except Exception:
            answers.report_failure("list", "*")
            return answers.every(None, Source.FALLBACK)

    def prefetch(self, customer_ids: Iterable[str], *, resource_id: str | None = None) -> None:
        """Load these customers in the background, so their first checks are cached too."""
        for customer_id in customer_ids:
            self._core.prefetch((customer_id, resource_id))

    async def provision_customer(
        self,
        customer_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        billing_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a customer (the server's reply's `data`; more wire fields in `extra`)."""
        body = _customer_body(customer_id, name, email, billing_id, metadata, extra)
        return await self._post("/api/v1/customers", body, customer_id)

    async def provision_subscription(
        self,
        customer_id: str,
        plan_id: str,
        *,
        billing_period: str | None = None,
        addons: Mapping[str, int] | None = None,
        resource_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Subscribe a customer to a plan; the server's reply's `data`."""
        body = _subscription_body(customer_id, plan_id, billing_period, addons, resource_id, extra)
        return await self._post("/api/v1/subscriptions", body, customer_id)

    async def _post(self, path: str, body: Mapping[str, Any], customer_id: str) -> dict[str, Any]:
        try:
            response = await self._http.post(path, json=body)
        except httpx.TransportError as error:
            raise ServerUnreachable(f"{self._core.base_url}: {error}") from error
        data: dict[str, Any] = parse_body(response)
        self._core.forget_customer(customer_id)
        return data

    async def flush(self, timeout: float = 10.0) -> bool:
        """Send every queued report and event now; whether all reached the server."""
        return await asyncio.to_thread(self._core.sender.flush, timeout)

    async def aclose(self, flush_timeout: float = 10.0) -> None:
        """Stop the stream and send what is queued (waiting at most `flush_timeout`)."""
        atexit.unregister(self._core.close)
        await asyncio.to_thread(self._core.close, flush_timeout)
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

"""What `Tollgate` and `AsyncTollgate` share, put together: the cache, the loader that keeps
it live (`_loader`), the answers to checks (`_answers`), the usage sender, and the stream
that tells the loader what changed.

Background work runs on three daemon threads in both clients (the stream, the loader that
re-reads changed customers, the usage sender), so it never competes with an application's
event loop and a check never waits for it."""

import logging
import threading
import time
from collections.abc import Mapping

import httpx

from tollgate_sdk._answers import Answers
from tollgate_sdk._cache import CacheKey, EntitlementCache, FeatureDef
from tollgate_sdk._loader import Loader
from tollgate_sdk._sender import UsageSender
from tollgate_sdk._stream import ServerEvent, StreamFollower
from tollgate_sdk._types import Fallback

log = logging.getLogger("tollgate_sdk")


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
        self.live = threading.Event()
        self._closed = threading.Event()
        self.loader = Loader(self.http, self.base_url, self.cache, on_features=self._use_features)
        self.sender = UsageSender(
            self.http,
            self.cache,
            max_buffered=max_buffered_usage,
            flush_interval=flush_interval,
            refresh=self.loader.schedule,
        )
        self.answers = Answers(self.cache, self.loader, self.sender.usage, fallback_entitlements)
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

    def _use_features(self, features: dict[str, FeatureDef]) -> None:
        # The answers come after the loader (they ask it for first loads), so this is
        # looked up when the features arrive.
        self.answers.use_features(features)

    def start(self) -> None:
        self.loader.start()
        self.sender.start()
        if self._stream is not None:
            self._stream.start()

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.loader.features_loaded.wait(timeout):
            return False
        return self._stream is None or self.live.wait(max(deadline - time.monotonic(), 0))

    def _on_event(self, event: ServerEvent) -> None:
        if event.name in ("customer", "usage"):
            customer_id = event.data.get("customerId")
            if isinstance(customer_id, str):
                self.loader.customer_changed(customer_id, event.data.get("version"))
        elif event.name in ("catalog", "reset"):
            self.loader.everything_changed()
        elif event.name == "ready":
            assert self._stream is not None
            if not self._stream.resumed:
                # A fresh stream knows nothing of what changed before it: read it all again.
                self.loader.everything_changed()
            self.live.set()

    def forget_customer(self, customer_id: str) -> None:
        """This process changed the customer: its next check reads it from the server."""
        self.cache.drop(customer_id)

    def prefetch(self, key: CacheKey) -> None:
        self.loader.schedule(key)

    def close(self, flush_timeout: float) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self.loader.stop()
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
        self.loader.join()
        # Last: both clients may share a transport given by the caller, which closing
        # either would close.
        if self._stream is not None:
            self._stream.http.close()
        self.http.close()

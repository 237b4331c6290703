"""API keys remembered in memory for the hot check path.

A key revoked by another process on PostgreSQL is forgotten at once (its NOTIFY reaches
every process); on SQLite, where the CLI that revokes it is another process with no way to
tell the server, a remembered key is trusted for at most `TTL_SECONDS`."""

import threading
import time
from collections.abc import Callable

from tollgate.db.changes import Change, ChangeFeed, ChangeKind
from tollgate.environments.service import Principal

TTL_SECONDS = 5.0
_MAX_KEYS = 10_000


class KeyCache:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._keys: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def follow(self, feed: ChangeFeed) -> None:
        feed.subscribe(self.apply, on_reset=self.clear)

    def get(self, raw_key: str) -> Principal | None:
        entry = self._keys.get(raw_key)
        if entry is None or entry[1] < self._monotonic():
            return None
        return entry[0]

    def put(self, raw_key: str, principal: Principal) -> None:
        with self._lock:
            if len(self._keys) >= _MAX_KEYS:
                self._keys.clear()
            self._keys[raw_key] = (principal, self._monotonic() + TTL_SECONDS)

    def apply(self, changes: list[Change]) -> None:
        if any(change.kind is ChangeKind.KEYS for change in changes):
            self.clear()

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

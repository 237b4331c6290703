"""API keys remembered in memory for the hot check path.

A key revoked by another process on PostgreSQL is forgotten at once (its NOTIFY reaches
every process); on SQLite, where the CLI that revokes it is another process with no way to
tell the server, a remembered key is trusted for at most `TTL_SECONDS` (plus one refresh).

When a key's time is up, the first request to ask takes the refresh (it is told the key is
unknown, authenticates against the database and `put`s the answer) while the others keep
the last answer for `REFRESH_SECONDS`: otherwise every request in flight would miss at
once and queue for the database together."""

import threading
import time
from collections.abc import Callable

from tollgate.db.changes import Change, ChangeFeed, ChangeKind
from tollgate.environments.service import Principal

TTL_SECONDS = 5.0
REFRESH_SECONDS = 1.0
_MAX_KEYS = 10_000


class KeyCache:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._keys: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def follow(self, feed: ChangeFeed) -> None:
        feed.subscribe(self.apply, on_reset=self.clear)

    def peek(self, raw_key: str) -> Principal | None:
        """The key's principal while it may be trusted; never claims a refresh."""
        entry = self._keys.get(raw_key)
        if entry is None or entry[1] <= self._monotonic():
            return None
        return entry[0]

    def get(self, raw_key: str) -> Principal | None:
        """The key's principal; None when unknown, or when this caller should refresh it."""
        entry = self._keys.get(raw_key)
        if entry is None:
            return None
        now = self._monotonic()
        if now < entry[1]:
            return entry[0]
        with self._lock:
            current = self._keys.get(raw_key)
            if current is not entry:  # refreshed, claimed or forgotten meanwhile
                return current[0] if current is not None else None
            self._keys[raw_key] = (entry[0], now + REFRESH_SECONDS)
        return None

    def put(self, raw_key: str, principal: Principal) -> None:
        with self._lock:
            if len(self._keys) >= _MAX_KEYS:
                self._keys.clear()
            self._keys[raw_key] = (principal, self._monotonic() + TTL_SECONDS)

    def forget(self, raw_key: str) -> None:
        """Drop a key the database refused, so nobody keeps its last answer."""
        with self._lock:
            self._keys.pop(raw_key, None)

    def apply(self, changes: list[Change]) -> None:
        if any(change.kind is ChangeKind.KEYS for change in changes):
            self.clear()

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

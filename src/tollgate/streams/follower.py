"""Follows the change log for every stream this process serves.

One reader per process, however many streams are open: it reads the log when the change
feed says something committed (here, or through PostgreSQL NOTIFY in another process), and
at least every POLL_SECONDS (changes made by a process that sends no NOTIFY, such as the CLI
on SQLite), then hands each entry to the streams of its environment.

PostgreSQL gives a row its id when it is inserted but shows it only when its transaction
commits, so id 7 can become visible after id 8 was read. Ids skipped over are remembered as
holes and looked for again for HOLE_SECONDS (longer than any Tollgate transaction runs); a
hole that never fills was a transaction that rolled back. For the same reason the id a
stream sends with an event is never above the lowest open hole (the *low-water mark*): a
client resuming from it is sent again whatever committed late below it, at the price of an
occasional duplicate, which only makes it read a customer once more."""

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from tollgate.db import changelog
from tollgate.db.changelog import LoggedChange
from tollgate.db.changes import LOGGED, Change, ChangeFeed, ChangeKind
from tollgate.db.engine import unit_of_work
from tollgate.environments import service as environments

log = logging.getLogger("tollgate.streams")

POLL_SECONDS = 1.0
KEY_CHECK_SECONDS = 2.0  # a revoked key's streams end within this (plus a poll)
HOLE_SECONDS = 30.0
BATCH = 1000
MAX_HOLES = 10_000  # a larger jump (a sequence skipping ahead after a crash) is not a hole
START_WINDOW = 200  # ids before the newest that may still be committing at start
QUEUE_SIZE = 10_000  # a stream this far behind is told to resynchronise instead

T = TypeVar("T")
Delivery = tuple[LoggedChange, int]  # an entry, and the event id to send it with


class Subscription:
    """What one open stream receives: entries of its environment, in the order read, or
    None when it must look at its flags (its key was revoked)."""

    def __init__(self, environment_id: int, key_hash: str, position: int, horizon: int) -> None:
        self.environment_id = environment_id
        self.key_hash = key_hash  # of the API key that opened it
        self.position = position  # the low-water mark when it subscribed
        # The highest id read when it subscribed: entries up to here reach it only through
        # its backlog (live, it receives what is read after, and holes as they fill).
        self.horizon = horizon
        self.queue: asyncio.Queue[Delivery | None] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False
        self.revoked = False

    def offer(self, delivery: Delivery) -> None:
        try:
            self.queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.overflowed = True

    def revoke(self) -> None:
        """Its key was revoked: the stream ends as soon as it next reads its queue."""
        self.revoked = True
        with contextlib.suppress(asyncio.QueueFull):  # a full queue is read soon anyway
            self.queue.put_nowait(None)


class LogFollower:
    """The process's reader of the change log, shared by its open streams."""

    def __init__(self, sessions: sessionmaker[Session], admission: anyio.Semaphore) -> None:
        self._sessions = sessions
        self._admission = admission
        self._subscriptions: set[Subscription] = set()
        self._last: int | None = None  # the highest id read; None until first read
        self._holes: dict[int, float] = {}  # id -> when it was first missed (monotonic)
        self.low_water = 0  # no entry at or below it can still appear
        # Reads run on worker threads; a subscription may restart reading meanwhile.
        self._reading = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._keys_checked = -math.inf  # when the open streams' keys were last checked

    def follow(self, feed: ChangeFeed) -> None:
        feed.subscribe(self._on_changes, on_reset=self._wake)

    async def subscribe(self, environment_id: int, key_hash: str) -> Subscription:
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._woken = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="tollgate-log-follower")
        async with self._starting:
            # With no stream open the log is not read, so the position is stale: start again.
            if self._last is None or not self._subscriptions:
                await self._in_thread(self._start_reading)
        subscription = Subscription(environment_id, key_hash, self.low_water, self._last or 0)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    async def backlog(self, subscription: Subscription, after: int) -> list[LoggedChange] | None:
        """What a stream resuming after id `after` missed, up to its horizon; None
        when the log no longer holds all of it, or when it is too much to send (the stream
        then tells the client to read everything again)."""
        return await self._in_thread(self._read_backlog, subscription, after)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _on_changes(self, changes: list[Change]) -> None:
        # Called on whichever thread committed or heard the change.
        if any(change.kind is ChangeKind.KEYS for change in changes):
            self._keys_checked = -math.inf  # a key may have been revoked: look now
            self._wake()
        elif any(change.kind in LOGGED for change in changes):
            self._wake()

    def _wake(self) -> None:
        loop, woken = self._loop, self._woken
        if loop is not None and woken is not None and not loop.is_closed():
            loop.call_soon_threadsafe(woken.set)

    async def _run(self) -> None:
        assert self._woken is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), POLL_SECONDS)
            self._woken.clear()
            if not self._subscriptions:
                continue
            try:
                await self._end_revoked()
                entries, more, low_water = await self._in_thread(self._read)
            except Exception:
                log.exception("could not read the change log; trying again")
                continue
            for entry in entries:
                delivery = (entry, min(entry.id, low_water))
                for subscription in list(self._subscriptions):
                    if subscription.environment_id == entry.environment_id:
                        subscription.offer(delivery)
            # Published only now: a ping must not carry a position ahead of the entries
            # just read, before they are in the streams' queues.
            self.low_water = low_water
            if more:
                self._woken.set()

    async def _end_revoked(self) -> None:
        """End the streams whose key was revoked: at once when a revocation is heard of
        through the change feed, within KEY_CHECK_SECONDS otherwise (the CLI on SQLite)."""
        if time.monotonic() - self._keys_checked < KEY_CHECK_SECONDS:
            return
        self._keys_checked = time.monotonic()
        subscriptions = list(self._subscriptions)
        live = await self._in_thread(self._live_keys, {s.key_hash for s in subscriptions})
        for subscription in subscriptions:
            if subscription.key_hash not in live:
                subscription.revoke()

    def _live_keys(self, key_hashes: set[str]) -> set[str]:
        with unit_of_work(self._sessions) as session:
            return environments.list_live_key_hashes(session, key_hashes)

    def _start_reading(self) -> None:
        """Start from the newest entry; ids missing among the entries just before it may
        belong to transactions still committing, so they start as holes."""
        with self._reading:
            with unit_of_work(self._sessions) as session:
                last = changelog.last_id(session)
                start = max(last - START_WINDOW, 0)
                recent = changelog.read_after(session, start, limit=BATCH)
            self._holes = {}
            # Entries committed since `last` was read are left for the next read.
            self._note_skipped(start, [e for e in recent if e.id <= last], time.monotonic())
            self._last = last
            self.low_water = self._low_water()

    def _read(self) -> tuple[list[LoggedChange], bool, int]:
        """Entries committed since the last read (late ones included), whether more wait,
        and the low-water mark after them."""
        with self._reading:
            now = time.monotonic()
            last = self._last or 0
            with unit_of_work(self._sessions) as session:
                filled = changelog.read_ids(session, sorted(self._holes))
                fresh = changelog.read_after(session, last, limit=BATCH)
            for entry in filled:
                del self._holes[entry.id]
            self._note_skipped(last, fresh, now)
            if fresh:
                self._last = fresh[-1].id
            self._holes = {i: seen for i, seen in self._holes.items() if now - seen < HOLE_SECONDS}
            return filled + fresh, len(fresh) == BATCH, self._low_water()

    def _note_skipped(self, after: int, entries: list[LoggedChange], now: float) -> None:
        """Remember as holes the ids missing between `after` and each of `entries` (read
        in id order): they may belong to transactions still committing."""
        expected = after + 1
        for entry in entries:
            if entry.id - expected <= MAX_HOLES:
                self._holes.update(dict.fromkeys(range(expected, entry.id), now))
            expected = entry.id + 1

    def _low_water(self) -> int:
        return min(self._holes) - 1 if self._holes else self._last or 0

    def _read_backlog(self, subscription: Subscription, after: int) -> list[LoggedChange] | None:
        entries: list[LoggedChange] = []
        with unit_of_work(self._sessions) as session:
            cursor = after
            while len(entries) <= QUEUE_SIZE:
                page = changelog.read_after(
                    session, cursor, limit=BATCH, environment_id=subscription.environment_id
                )
                entries.extend(entry for entry in page if entry.id <= subscription.horizon)
                if len(page) < BATCH or page[-1].id > subscription.horizon:
                    break
                cursor = page[-1].id
            # Checked after reading: a prune meanwhile would otherwise go unnoticed.
            complete = changelog.holds_everything_after(session, after)
        return entries if complete and len(entries) <= QUEUE_SIZE else None

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        async with self._admission:
            return await run_in_threadpool(function, *args)

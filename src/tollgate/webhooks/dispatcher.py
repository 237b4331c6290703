"""Sending owed webhooks, on an event loop of its own, apart from the lifecycle jobs.

A slow endpoint must delay nobody: not the other endpoints, not the trial ends and
cancellations of `jobs.runner`. So delivery runs on a thread of its own (an asyncio loop)
and never waits for a batch to finish. A worker holds leased messages per endpoint (up to
`QUEUED_PER_ENDPOINT`) and sends them through at most `PER_ENDPOINT` senders per endpoint
(`IN_FLIGHT` in all), each taking the endpoint's next message as soon as its request ends;
answers are recorded, and more messages leased, every few milliseconds, many at a time.
Every request is bounded by a total deadline (`webhooks.sender`). An endpoint that times
out, cannot be reached or says it is overloaded is paused (2 s, doubling up to 5 minutes
while it stays unwell) and its waiting messages given back, so that many customers'
messages do not pile onto it; they wait, keeping their order and their retries.

Held messages, senders and pauses belong to one worker; several workers share the outbox
through leases (`webhooks.delivery`)."""

import contextlib
import logging
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import anyio
import anyio.to_thread
import orjson
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal
from sqlalchemy.orm import Session, sessionmaker

from tollgate.kit.clock import Clock
from tollgate.webhooks import delivery, outbox
from tollgate.webhooks.delivery import Attempt, Leased
from tollgate.webhooks.sender import Outcome, Sender
from tollgate.webhooks.targets import TargetRules

log = logging.getLogger("tollgate.webhooks")

PER_ENDPOINT = 4  # requests out to one endpoint at once, per worker
# Messages of one endpoint a worker holds (out, or next in line); it takes more when it
# holds half as many, so that a busy endpoint costs a database round trip per many sends.
QUEUED_PER_ENDPOINT = 32
IN_FLIGHT = 64  # requests out at once, per worker
HELD = 4 * IN_FLIGHT  # messages a worker holds in all
# While requests are out, answers are recorded (and more messages leased) this often at
# most, many at a time, rather than one database round trip per answer.
GATHER_SECONDS = 0.01
# After a nudge, messages are looked for again this often, this many times.
NUDGE_RECHECK_SECONDS = 0.02
NUDGE_RECHECKS = 10
# A lease outlasts a request (its deadline) and the recording of its outcome; the leases
# of held messages are renewed while they wait their turn. A live worker's messages are
# never taken over; a dead worker's are when their lease runs out.
LEASE_MARGIN = timedelta(seconds=60)
RENEW_EVERY = LEASE_MARGIN / 3
PAUSE_FIRST = timedelta(seconds=2)
PAUSE_MOST = timedelta(minutes=5)
STOP_WAIT_SECONDS = 10

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Pause:
    strikes: int  # unwell outcomes in a row, counting each pause once
    until: datetime


class _Held:
    """The messages one run holds: leased and waiting their turn, or out; and the outcomes
    not recorded yet."""

    def __init__(self, now: datetime) -> None:
        self.leased = 0
        self.renewed_at = now  # the held messages' leases were last extended then
        self.queued: dict[int, deque[Leased]] = {}  # by endpoint
        self.sending: dict[int, Leased] = {}  # by message
        self.out: Counter[int] = Counter()  # requests out, by endpoint
        self.lanes: Counter[int] = Counter()  # senders working, by endpoint
        # Endpoints found unwell since the last settle: nothing more goes to them until it
        # decides whether to pause them.
        self.suspect: set[int] = set()
        self._finished: list[Attempt] = []
        self._changed = anyio.Event()
        self.rechecks = 0  # quick looks left after a nudge

    @property
    def count(self) -> int:
        return len(self.sending) + sum(len(queue) for queue in self.queued.values())

    def all(self) -> list[Leased]:
        return [*self.sending.values(), *(m for queue in self.queued.values() for m in queue)]

    def of(self, endpoint: int) -> int:
        return self.out[endpoint] + len(self.queued.get(endpoint, ()))

    @property
    def idle(self) -> bool:
        """Nothing held, and every outcome recorded."""
        return not self.count and not self._finished

    def hold(self, messages: list[Leased]) -> None:
        self.leased += len(messages)
        for message in messages:
            self.queued.setdefault(message.endpoint_id, deque()).append(message)

    def next_for(self, endpoint: int) -> Leased | None:
        """The endpoint's next message, now out; None when none waits."""
        if endpoint in self.suspect:
            return None
        queue = self.queued.get(endpoint)
        if not queue:
            self.queued.pop(endpoint, None)
            return None
        message = queue.popleft()
        self.sending[message.message_id] = message
        self.out[endpoint] += 1
        return message

    def drop(self, endpoint: int) -> list[Leased]:
        """The endpoint's waiting messages, no longer held."""
        return list(self.queued.pop(endpoint, ()))

    def end(self, attempt: Attempt) -> None:
        endpoint = attempt.message.endpoint_id
        del self.sending[attempt.message.message_id]
        _less(self.out, endpoint)
        if attempt.outcome.endpoint_unwell:
            self.suspect.add(endpoint)
        self._finished.append(attempt)
        self._changed.set()

    def nudge(self) -> None:
        """New messages are owed: stop waiting, and look again a few times soon after (a
        commit is not always visible to the dispatcher's connection the moment it is told;
        seen on PostgreSQL)."""
        self.rechecks = NUDGE_RECHECKS
        self._changed.set()

    def take_finished(self) -> list[Attempt]:
        finished, self._finished = self._finished, []
        self.suspect.clear()
        if self._changed.is_set():
            self._changed = anyio.Event()
        return finished

    async def wait(self) -> None:
        """Until a request ends (at once if one ended since `take_finished`)."""
        await self._changed.wait()


class Dispatcher:
    """One worker's webhook sender. `start()` runs it until `close()`; `run_once()` sends
    what may go now and waits for the answers (for tests and tools)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        rules: TargetRules,
        *,
        deadline_seconds: float,
        interval_seconds: float = 1.0,
        jitter: Callable[[], float] = random.random,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.lease = timedelta(seconds=deadline_seconds) + LEASE_MARGIN
        self._sessions = sessions
        self._clock = clock
        self._sender = Sender(rules, deadline_seconds=deadline_seconds, connections=IN_FLIGHT)
        self._interval = interval_seconds
        self._jitter = jitter
        # Signatures carry the moment of sending, which receivers compare with their clocks.
        self._wall_clock = wall_clock
        self._pauses: dict[int, _Pause] = {}
        self._boot = threading.Lock()
        self._thread: threading.Thread | None = None
        self._portal: BlockingPortal | None = None
        self._forever: anyio.CancelScope | None = None
        self._stopped: anyio.Event | None = None
        self._database: anyio.CapacityLimiter | None = None
        self._held: _Held | None = None  # what the running loop holds (to nudge it)
        self._stop_listening: Callable[[], None] | None = None

    # -- from other threads ---------------------------------------------------------------

    def start(self) -> None:
        """Deliver continuously, on this dispatcher's thread, until `close()`; at once when
        this process commits new messages, else at each poll."""
        portal = self._loop()
        portal.start_task_soon(self._run_forever)
        self._stop_listening = outbox.when_owed(self._nudge)

    def _nudge(self) -> None:
        portal = self._portal
        if portal is None:
            return
        # RuntimeError: stopping, or called from the loop itself (which is awake anyway).
        with contextlib.suppress(RuntimeError):
            portal.start_task_soon(self._nudged)

    async def _nudged(self) -> None:
        if self._held is not None:
            self._held.nudge()

    def run_once(self, now: datetime | None = None, *, most: int | None = None) -> int:
        """Send every message that may go at `now` (the clock's by default), and those
        that their delivery lets go, until none may (or `most` were sent); how many were
        delivered."""
        return self._loop().call(self._drain, now or self._clock.now(), most)

    def close(self) -> None:
        """Stop: requests still out are abandoned and their messages' leases given up."""
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        with self._boot:
            portal, thread = self._portal, self._thread
            self._portal = self._thread = None
        if portal is None or thread is None:
            return
        portal.call(self._stop_forever)
        portal.call(self._sender.aclose)
        portal.call(portal.stop, True)
        thread.join(timeout=STOP_WAIT_SECONDS)

    def _loop(self) -> BlockingPortal:
        with self._boot:
            if self._portal is None:
                self._portal, self._thread = _start_loop()
            return self._portal

    # -- on the dispatcher's loop ---------------------------------------------------------

    async def _drain(self, start: datetime, most: int | None) -> int:
        began = time.monotonic()
        return await self._run(
            lambda: start + timedelta(seconds=time.monotonic() - began), most=most
        )

    async def _run_forever(self) -> None:
        self._stopped = anyio.Event()
        with anyio.CancelScope() as self._forever:
            try:
                while True:
                    try:
                        await self._run(self._clock.now, forever=True)
                    except Exception:
                        log.exception("webhook delivery stopped by an error; starting again")
                        await anyio.sleep(self._interval)
            finally:
                self._stopped.set()

    async def _stop_forever(self) -> None:
        if self._forever is not None and self._stopped is not None:
            self._forever.cancel()
            await self._stopped.wait()

    async def _run(
        self, now: Callable[[], datetime], *, forever: bool = False, most: int | None = None
    ) -> int:
        held = self._held = _Held(now())
        delivered = 0
        try:
            async with anyio.create_task_group() as tasks:
                while True:
                    try:
                        delivered += await self._settle(held, now())
                        leased = await self._lease(held, now(), most)
                    except Exception:
                        if not forever:
                            raise
                        log.exception("webhook delivery failed; trying again")
                        leased = 0
                    self._open_lanes(tasks, held, now)
                    if leased:
                        continue
                    if not forever and held.idle:
                        break
                    wait = self._interval if forever else None
                    if held.rechecks:
                        held.rechecks -= 1
                        wait = NUDGE_RECHECK_SECONDS
                    await self._wait(held, wait)
        finally:
            # Stopped (or failed): record what was answered, give back what was not.
            with anyio.CancelScope(shield=True):
                delivered += await self._settle(held, now())
                await self._db(delivery.release, self._sessions, held.all())
        return delivered

    async def _wait(self, held: _Held, most_seconds: float | None) -> None:
        """Until a request ends, then a moment more while others are out, so that their
        answers are recorded together; at most `most_seconds`, and never past a renewal."""
        with anyio.move_on_after(min(most_seconds or math.inf, RENEW_EVERY.total_seconds())):
            await held.wait()
        if held.sending:
            await anyio.sleep(GATHER_SECONDS)

    async def _settle(self, held: _Held, now: datetime) -> int:
        finished = held.take_finished()
        if not finished:
            return 0
        by_endpoint: dict[int, list[Outcome]] = {}
        for attempt in finished:
            by_endpoint.setdefault(attempt.message.endpoint_id, []).append(attempt.outcome)
        paused = [e for e, outcomes in by_endpoint.items() if self._pause(e, outcomes, now)]
        # A paused endpoint's waiting messages go back, for whoever's turn it is next.
        waiting = [message for endpoint in paused for message in held.drop(endpoint)]
        delivered = await self._db(delivery.record, self._sessions, finished, now, self._jitter)
        await self._db(delivery.release, self._sessions, waiting)
        return delivered

    async def _lease(self, held: _Held, now: datetime, most: int | None) -> int:
        if now - held.renewed_at >= RENEW_EVERY:
            held.renewed_at = now
            await self._db(delivery.renew, self._sessions, held.all(), now + self.lease)
        free = HELD - held.count
        if most is not None:
            free = min(free, most - held.leased)
        if free <= 0:
            return 0
        paused = {endpoint for endpoint, pause in self._pauses.items() if pause.until > now}
        holding = {endpoint: held.of(endpoint) for endpoint in {*held.out, *held.queued}}
        stocked = {e for e, n in holding.items() if n > QUEUED_PER_ENDPOINT // 2}
        leased = await self._db(
            delivery.lease,
            self._sessions,
            now,
            duration=self.lease,
            room=lambda endpoint: QUEUED_PER_ENDPOINT - holding.get(endpoint, 0),
            skip=stocked | paused,
            limit=free,
            # Held already, whatever their lease says (a clock moved ahead may have ended it).
            exclude={message.message_id for message in held.all()},
        )
        held.hold(leased)
        return len(leased)

    def _open_lanes(self, tasks: TaskGroup, held: _Held, now: Callable[[], datetime]) -> None:
        """A sender per request that may go out now, up to PER_ENDPOINT per endpoint."""
        lanes = sum(held.lanes.values())
        for endpoint, queue in list(held.queued.items()):
            if endpoint in held.suspect:
                continue
            wanted = min(PER_ENDPOINT, len(queue) + held.out[endpoint]) - held.lanes[endpoint]
            for _ in range(min(wanted, IN_FLIGHT - lanes)):
                held.lanes[endpoint] += 1
                lanes += 1
                tasks.start_soon(self._lane, held, endpoint, now)

    async def _lane(self, held: _Held, endpoint: int, now: Callable[[], datetime]) -> None:
        """Send the endpoint's waiting messages one after another, until none waits or the
        endpoint was found unwell (the next settle may pause it)."""
        try:
            while (message := held.next_for(endpoint)) is not None:
                began = now()
                held.end(Attempt(message, await self._send(message), began))
        finally:
            _less(held.lanes, endpoint)

    async def _send(self, message: Leased) -> Outcome:
        try:
            body = orjson.dumps(message.payload)
            sent_at = self._wall_clock()
            headers = delivery.signed_headers(message.ref_id, body, message.secrets, sent_at)
            if message.stigg_secret:
                headers["stigg-webhooks-secret"] = message.stigg_secret
            return await self._sender.post(message.url, body, headers)
        except Exception as error:
            # A failed attempt like any other, rather than the end of every delivery.
            log.exception("webhook not sent", extra={"message": message.ref_id})
            return Outcome(None, f"not sent: {type(error).__name__}", 0)

    def _pause(self, endpoint: int, outcomes: list[Outcome], now: datetime) -> bool:
        """Pause an endpoint that was unwell, longer each time; a well answer ends the
        pauses. Requests already out when a pause begins do not lengthen it. Whether the
        endpoint is paused now."""
        pause = self._pauses.get(endpoint)
        if not all(outcome.endpoint_unwell for outcome in outcomes):
            self._pauses.pop(endpoint, None)
            return False
        if pause is None or pause.until <= now:
            strikes = pause.strikes + 1 if pause else 1
            length = min(PAUSE_MOST, PAUSE_FIRST * 2 ** (strikes - 1))
            self._pauses[endpoint] = _Pause(strikes, now + length)
        return True

    async def _db(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Database work, off the loop (so answers keep arriving), one at a time."""
        if self._database is None:
            self._database = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(
            partial(function, *args, **kwargs), limiter=self._database
        )


def _less(counts: Counter[int], key: int) -> None:
    """One less; a count that reaches nothing is forgotten (endpoints come and go)."""
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]


def _start_loop() -> tuple[BlockingPortal, threading.Thread]:
    """An event loop on a thread of its own, and a portal into it."""
    ready = threading.Event()
    box: list[BlockingPortal] = []

    async def host() -> None:
        async with BlockingPortal() as portal:
            box.append(portal)
            ready.set()
            await portal.sleep_until_stopped()

    thread = threading.Thread(target=anyio.run, args=(host,), name="tollgate-webhooks", daemon=True)
    thread.start()
    ready.wait()
    return box[0], thread

"""How fast does one worker deliver webhooks, and do they all arrive, in order, when the
receiver fails?

    .venv/bin/python bench/webhook_throughput.py                      # SQLite, then PostgreSQL
    .venv/bin/python bench/webhook_throughput.py --database sqlite --events 20000

For each database (a fresh SQLite file in a temporary directory, or a PostgreSQL schema of
its own, dropped afterwards), migrated, two runs, each in an environment of its own with
one enabled endpoint pointing at a local receiver:

1. **Emit** `--events` (default 10,000) events over `--customers` (default 500) customers,
   drawn at random (seeded), through `outbox.emit_many` in transactions of 1,000. Each
   event's entity is `{"customer": "c-0017", "seq": n}` (n = 1, 2, ... per customer) and its
   ordering key the customer. Timed apart from delivery.
2. **Deliver** with one worker: a loop calling `Dispatcher.run_once(now, most=2000)` (one
   dispatcher, as `tollgate worker` runs it) with `now` the wall clock plus an offset, until
   the outbox owes nothing. Whenever a pass delivers nothing while messages are still owed
   (their retries are due later: RETRY_DELAYS start at 5 s and grow to hours), the offset
   grows by `--advance-minutes` (default 10) instead of sleeping.

Run 1 (clean): the receiver answers 200 to everything; its wall time gives deliveries/s
(goal: 500/s or more, printed, not enforced).

Run 2 (failures): the receiver answers 500 to a random `--fail-rate` (default 30%) of the
requests, and once a third of the events are delivered it goes down for `--down-minutes`
(default 60) of the worker's time (wall clock plus offset, so the outage spans retries the
way a real one would): 503 to everything for the first half, then it stops listening
(connections refused, and a request arriving on an open connection is dropped without an
answer) for the second half.

The receiver is a bare HTTP/1.1 server on asyncio (uvloop) in a process of its own on
127.0.0.1, so it costs the worker no CPU; it checks each request's Standard Webhooks
signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`) and records its
`webhook-id`, customer, seq and the status it answered. After each run:

- delivered: distinct `webhook-id`s answered 200; must equal the events emitted, and equal
  the messages DELIVERED in `webhook_messages` (none PENDING or FAILED);
- order violations: a 200 answered to a customer's seq not above the seq of its previous
  200 (a message retried after a 500 counts once, when it gets its 200); must be 0;
- also checked: every customer's seqs 1..n delivered (none missing), no `webhook-id`
  answered 200 twice, no request sent for a seq while an earlier seq of its customer was
  still owed, every signature valid.

The last line is one JSON object (deliveries/s of run 1; the counts of run 2):

    {"sqlite": {"deliveries_per_s": .., "delivered": .., "emitted": .., "order_violations": ..},
     "postgres": {...}}

The exit status is 1 when a check fails in either run on any database.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import orjson
from check_throughput import free_port
from rich.markup import escape
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from usage_common import (
    HOST,
    Database,
    add_database_arguments,
    busy_cpu_seconds,
    console,
    database_choices,
    fresh,
    own_cpu_seconds,
    progress,
    run_async,
)

from tollgate.config import Settings
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments.service import ensure_environment
from tollgate.kit.clock import SystemClock
from tollgate.schema import migrate
from tollgate.webhooks import outbox
from tollgate.webhooks.dispatcher import Dispatcher
from tollgate.webhooks.event_types import EventType
from tollgate.webhooks.models import MessageStatus, WebhookAttempt, WebhookMessage
from tollgate.webhooks.schemas import EndpointCreate
from tollgate.webhooks.service import create_endpoint
from tollgate.webhooks.targets import TargetRules

EMIT_BATCH = 1_000  # events per transaction
GOAL_PER_S = 500
DOWN_AFTER = 1 / 3  # of the events delivered, the receiver goes down
DROPPED = 0  # the status recorded for a request dropped without an answer
MAX_WALL_SECONDS = 900.0  # per delivery run, then it stops and fails
MAX_OFFSET = timedelta(days=10)  # of simulated time, likewise
PASS = 2_000  # messages sent at most per pass, so the outage begins near its mark
PRIVATE_ALLOWED = TargetRules(allow_private=True)  # the receiver listens on 127.0.0.1

OK = 200
RESPONSES = {
    200: b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    400: b"HTTP/1.1 400 Bad Request\r\ncontent-length: 13\r\n\r\nbad signature",
    500: b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 6\r\n\r\nfailed",
    503: b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\ndown",
}

# (webhook-id, customer, seq, status answered), in the order the receiver answered.
Record = tuple[str, str, int, int]


@dataclass(frozen=True)
class Options:
    events: int
    customers: int
    fail_rate: float
    down_minutes: float
    advance_minutes: float
    seed: int
    max_seconds: float


# -- the receiver (a process of its own) -------------------------------------------------


@dataclass(frozen=True)
class Mode:
    secret: str  # the endpoint's whsec_... secret
    fail_rate: float  # answer 500 to this share of the requests, at random
    seed: int


@dataclass
class Report:
    records: list[Record]
    bad_signatures: int
    unreadable: int  # bodies without a customer and seq


class _ReceiverState:
    def __init__(self) -> None:
        self.key = b""
        self.fail_rate = 0.0
        self.rng = random.Random(0)
        self.records: list[Record] = []
        self.bad_signatures = 0
        self.unreadable = 0
        self.outage: str | None = None  # None, "503" or "refuse"
        self.transports: set[asyncio.Transport] = set()

    def configure(self, mode: Mode) -> None:
        self.key = base64.b64decode(mode.secret.removeprefix("whsec_") + "==")
        self.fail_rate = mode.fail_rate
        self.rng = random.Random(mode.seed)
        self.records = []
        self.bad_signatures = 0
        self.unreadable = 0
        self.outage = None

    def answer(self, headers: dict[bytes, bytes], body: bytes) -> bytes | None:
        """The response to write, or None to drop the connection without one."""
        message_id = headers.get(b"webhook-id", b"").decode(errors="replace")
        try:
            event: Any = orjson.loads(body)
            customer, seq = str(event["customer"]), int(event["seq"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.unreadable += 1
            customer, seq = "?", -1
        if self.outage == "refuse":
            self.records.append((message_id, customer, seq, DROPPED))
            return None
        if self.outage == "503":
            status = 503
        elif not self._signed(message_id, headers, body):
            self.bad_signatures += 1
            status = 400
        elif self.rng.random() < self.fail_rate:
            status = 500
        else:
            status = OK
        self.records.append((message_id, customer, seq, status))
        return RESPONSES[status]

    def _signed(self, message_id: str, headers: dict[bytes, bytes], body: bytes) -> bool:
        stamp = headers.get(b"webhook-timestamp", b"")
        signed = message_id.encode() + b"." + stamp + b"." + body
        expected = base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest())
        given = headers.get(b"webhook-signature", b"").split()
        return any(hmac.compare_digest(part.partition(b",")[2], expected) for part in given)

    def report(self) -> Report:
        return Report(self.records, self.bad_signatures, self.unreadable)


class _ReceiverProtocol(asyncio.Protocol):
    def __init__(self, state: _ReceiverState) -> None:
        self.state = state
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.state.transports.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.state.transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            headers: dict[bytes, bytes] = {}
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            total = end + 4 + int(headers.get(b"content-length", b"0"))
            if len(self.buffer) < total:
                return
            body, self.buffer = self.buffer[end + 4 : total], self.buffer[total:]
            response = self.state.answer(headers, body)
            if response is None:
                self.transport.abort()
                return
            self.transport.write(response)


def _receiver_main(port: int, control: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    run_async(_receive(port, control))


async def _receive(port: int, control: Connection) -> None:
    """Serve on `port`; obey the parent's commands on `control` (one answer each)."""
    loop = asyncio.get_running_loop()
    state = _ReceiverState()
    stopped: asyncio.Future[None] = loop.create_future()
    tasks: set[asyncio.Task[None]] = set()

    async def listen() -> asyncio.Server:
        return await loop.create_server(
            lambda: _ReceiverProtocol(state), HOST, port, reuse_address=True
        )

    server = await listen()

    def relisten() -> None:
        async def start() -> None:
            nonlocal server
            server = await listen()
            state.outage = None
            reply(None)

        task = loop.create_task(start())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_command() -> None:
        try:
            command, argument = control.recv()
        except EOFError:  # the parent is gone
            command, argument = "stop", None
        if command == "configure":
            state.configure(argument)
        elif command == "outage" and argument == "refuse":
            server.close()  # connections are refused from now on
            for transport in list(state.transports):
                transport.abort()
            state.outage = "refuse"
        elif command == "outage" and argument is None and state.outage == "refuse":
            relisten()  # answers once listening again
            return
        elif command == "outage":
            state.outage = argument
        elif command == "report":
            reply(state.report())
            return
        elif command == "stop":
            loop.remove_reader(control.fileno())
            if not stopped.done():
                stopped.set_result(None)
            return
        reply(None)

    def reply(answer: object) -> None:
        # The loop watching the pipe made it non-blocking; a long answer (the report) must
        # be written whole, so write it blocking (the parent is waiting to read it).
        os.set_blocking(control.fileno(), True)
        control.send(answer)

    loop.add_reader(control.fileno(), on_command)
    reply("ready")
    await stopped
    server.close()


class Receiver:
    """The receiver process, driven over a pipe."""

    def __init__(self) -> None:
        self.port = free_port()
        context = multiprocessing.get_context("spawn")  # no engines or sockets inherited
        self._control, child = context.Pipe()
        self.process = context.Process(
            target=_receiver_main, args=(self.port, child), name="webhook-receiver", daemon=True
        )
        self.process.start()
        child.close()
        if not self._control.poll(60) or self._control.recv() != "ready":
            raise SystemExit("the webhook receiver did not start")

    def _ask(self, command: str, argument: object = None) -> Any:
        self._control.send((command, argument))
        if not self._control.poll(60):
            raise SystemExit(f"the webhook receiver did not answer {command!r}")
        return self._control.recv()

    def configure(self, mode: Mode) -> None:
        self._ask("configure", mode)

    def outage(self, kind: str | None) -> None:
        """ "503": answer 503 to everything; "refuse": stop listening; None: back to normal."""
        self._ask("outage", kind)

    def report(self) -> Report:
        report: Report = self._ask("report")
        return report

    def cpu_seconds(self) -> float:
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return float("nan")
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        with suppress(OSError, EOFError):
            self._control.send(("stop", None))
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


# -- emitting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Emitted:
    environment_id: int
    endpoint_id: int
    secret: str
    events: int
    per_customer: dict[str, int]  # customer -> how many events (seq 1..n)
    seconds: float


def emit(sessions: sessionmaker[Session], environment: str, url: str, options: Options) -> Emitted:
    """One environment with one endpoint at `url`, and the events owed to it."""
    now = datetime.now(UTC)
    with unit_of_work(sessions) as session:
        environment_id = ensure_environment(session, name=environment).id
        endpoint = create_endpoint(
            session,
            environment_id=environment_id,
            data=EndpointCreate.model_validate({"url": url}),
            now=now,
            targets=PRIVATE_ALLOWED,
        )
        endpoint_id, secret = endpoint.id, endpoint.secret
    rng = random.Random(options.seed)
    customers = [f"c-{index:04d}" for index in range(options.customers)]
    seqs: Counter[str] = Counter()
    events = []
    for _ in range(options.events):
        customer = rng.choice(customers)
        seqs[customer] += 1
        entity = {"customer": customer, "seq": seqs[customer]}
        events.append(outbox.Event(EventType.CUSTOMER_UPDATED, entity, customer))
    written = 0
    started = time.perf_counter()
    for start in range(0, len(events), EMIT_BATCH):
        with unit_of_work(sessions) as session:
            written += outbox.emit_many(
                session,
                environment_id=environment_id,
                events=events[start : start + EMIT_BATCH],
                now=datetime.now(UTC),
            )
    seconds = time.perf_counter() - started
    if written != options.events:
        raise SystemExit(f"emit_many wrote {written:,} messages for {options.events:,} events")
    console.print(
        f"  emitted {written:,} events over {len(seqs):,} customers in "
        f"{-(-written // EMIT_BATCH)} transactions: {seconds:.2f} s, {written / seconds:,.0f}/s"
    )
    return Emitted(environment_id, endpoint_id, secret, written, dict(seqs), seconds)


# -- delivering --------------------------------------------------------------------------


@dataclass
class Driven:
    seconds: float = 0.0  # wall time of the delivery loop
    delivered: int = 0  # what run_once returned, summed
    passes: int = 0
    advances: int = 0  # times the simulated clock was moved ahead
    offset: timedelta = timedelta(0)
    cpu: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


def owed(engine: Engine, endpoint_id: int) -> int:
    with engine.connect() as connection:
        count = connection.scalar(
            select(func.count()).where(
                WebhookMessage.endpoint_id == endpoint_id,
                WebhookMessage.status == MessageStatus.PENDING,
            )
        )
    return int(count or 0)


def drive(
    engine: Engine,
    sessions: sessionmaker[Session],
    emitted: Emitted,
    receiver: Receiver,
    options: Options,
    outage: timedelta | None,
    label: str,
) -> Driven:
    """One worker: pass after pass until nothing is owed; the simulated clock jumps ahead
    `--advance-minutes` whenever a pass delivers nothing. With `outage`, the receiver goes
    down (503, then refusing) once a third of the events are delivered, for that long of
    the worker's time."""
    driven = Driven()
    advance = timedelta(minutes=options.advance_minutes)
    jitter: Callable[[], float] = random.Random(options.seed).random
    down_at = int(emitted.events * DOWN_AFTER)
    down: tuple[datetime, datetime] | None = None  # (when 503 gives way to refusing, end)
    phase: str | None = None
    cpu_start = own_cpu_seconds(), receiver.cpu_seconds(), busy_cpu_seconds()
    dispatcher = Dispatcher(
        sessions,
        SystemClock(),
        PRIVATE_ALLOWED,
        deadline_seconds=Settings().webhooks_delivery_deadline_seconds,
        jitter=jitter,
    )
    with progress() as bar:
        task = bar.add_task(label, total=emitted.events)
        started = time.perf_counter()
        while True:
            now = datetime.now(UTC) + driven.offset
            if outage is not None and down is None and driven.delivered >= down_at:
                down = (now + outage / 2, now + outage)
                phase = "503"
                receiver.outage(phase)
                bar.console.print(f"  receiver down at {driven.delivered:,} delivered: 503 ...")
            if down is not None and phase == "503" and now >= down[0]:
                phase = "refuse"
                receiver.outage(phase)
                bar.console.print(f"  ... then refusing connections (clock {driven.offset} ahead)")
            if down is not None and phase == "refuse" and now >= down[1]:
                phase = None
                receiver.outage(None)
                bar.console.print(f"  ... and up again (clock {driven.offset} ahead)")
            delivered = dispatcher.run_once(now, most=PASS)
            driven.passes += 1
            driven.delivered += delivered
            bar.update(task, completed=driven.delivered)
            if delivered:
                continue
            if owed(engine, emitted.endpoint_id) == 0:
                break
            if time.perf_counter() - started > options.max_seconds:
                driven.problems.append(f"still owed after {options.max_seconds:.0f} s; stopped")
                break
            if driven.offset > MAX_OFFSET:
                driven.problems.append(f"still owed {driven.offset} ahead of the clock; stopped")
                break
            driven.offset += advance
            driven.advances += 1
        driven.seconds = time.perf_counter() - started
    if phase is not None:
        receiver.outage(None)
    own, received, everyone = (
        end - begin
        for begin, end in zip(
            cpu_start, (own_cpu_seconds(), receiver.cpu_seconds(), busy_cpu_seconds()), strict=True
        )
    )
    seconds = driven.seconds
    driven.cpu = (
        f"CPU: worker {own / seconds:.0%}, receiver {received / seconds:.0%}, database and "
        f"others {max(0.0, everyone - own - received) / seconds:.0%} (of {os.cpu_count()} cores)"
    )
    return driven


# -- checking ----------------------------------------------------------------------------


@dataclass
class Checked:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    delivered: int = 0  # distinct webhook-ids answered 200
    duplicates: int = 0  # 200s beyond the first for one webhook-id
    order_violations: int = 0
    early: int = 0  # requests for a seq while an earlier seq of the customer was owed
    missing: int = 0  # seqs never answered 200
    database: Counter[str] = field(default_factory=Counter)  # status -> messages
    attempts: Counter[str] = field(default_factory=Counter)  # webhook_attempts by answer
    problems: list[str] = field(default_factory=list)


def check(engine: Engine, emitted: Emitted, report: Report) -> Checked:
    checked = Checked(requests=len(report.records))
    last: dict[str, int] = {}  # customer -> seq of its latest 200
    seen: set[str] = set()
    delivered_seqs: dict[str, set[int]] = {}
    for message_id, customer, seq, status in report.records:
        checked.statuses[status] += 1
        previous = last.get(customer, 0)
        if seq > previous + 1:
            checked.early += 1
        if status != OK:
            continue
        if message_id in seen:
            checked.duplicates += 1
        seen.add(message_id)
        if seq <= previous:
            checked.order_violations += 1
        last[customer] = max(previous, seq)
        delivered_seqs.setdefault(customer, set()).add(seq)
    checked.delivered = len(seen)
    checked.missing = sum(
        len(set(range(1, count + 1)) - delivered_seqs.get(customer, set()))
        for customer, count in emitted.per_customer.items()
    )
    with engine.connect() as connection:
        rows = connection.execute(
            select(WebhookMessage.status, func.count())
            .where(WebhookMessage.endpoint_id == emitted.endpoint_id)
            .group_by(WebhookMessage.status)
        )
        checked.database.update({str(status): int(count) for status, count in rows})
        attempts = connection.execute(
            select(WebhookAttempt.status_code, func.count())
            .join(WebhookMessage, WebhookMessage.id == WebhookAttempt.message_id)
            .where(WebhookMessage.endpoint_id == emitted.endpoint_id)
            .group_by(WebhookAttempt.status_code)
        )
        checked.attempts.update(
            {"no answer" if code is None else str(code): int(count) for code, count in attempts}
        )
        database_ids = set(
            connection.scalars(
                select(WebhookMessage.ref_id).where(
                    WebhookMessage.endpoint_id == emitted.endpoint_id,
                    WebhookMessage.status == MessageStatus.DELIVERED,
                )
            )
        )
    problems = checked.problems
    if checked.delivered != emitted.events:
        problems.append(f"{checked.delivered:,} delivered for {emitted.events:,} emitted")
    if checked.order_violations:
        problems.append(f"{checked.order_violations:,} order violation(s)")
    if checked.missing:
        problems.append(f"{checked.missing:,} event(s) never answered 200")
    if checked.duplicates:
        problems.append(f"{checked.duplicates:,} webhook-id(s) answered 200 more than once")
    if checked.early:
        problems.append(
            f"{checked.early:,} request(s) sent while an earlier message of the same customer "
            "was still owed"
        )
    if report.bad_signatures or report.unreadable:
        problems.append(
            f"{report.bad_signatures:,} bad signature(s), "
            f"{report.unreadable:,} body(ies) without customer and seq"
        )
    if checked.database[MessageStatus.DELIVERED] != emitted.events or len(checked.database) != 1:
        problems.append(f"webhook_messages by status: {dict(checked.database)}")
    answered = sum(n for status, n in checked.statuses.items() if status != DROPPED)
    if checked.attempts.total() - checked.attempts["no answer"] != answered:
        problems.append(
            f"webhook_attempts records {dict(checked.attempts)}; the receiver answered "
            f"{answered:,} requests"
        )
    if database_ids != seen:
        problems.append(
            f"DELIVERED in the database but never answered 200: {len(database_ids - seen):,}; "
            f"answered 200 but not DELIVERED: {len(seen - database_ids):,}"
        )
    return checked


# -- one database ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    emitted: Emitted
    driven: Driven
    checked: Checked

    @property
    def problems(self) -> list[str]:
        return self.driven.problems + self.checked.problems


@dataclass(frozen=True)
class Result:
    database: str
    clean: Run
    failing: Run

    @property
    def problems(self) -> list[str]:
        return [f"run 1: {problem}" for problem in self.clean.problems] + [
            f"run 2: {problem}" for problem in self.failing.problems
        ]


def one_run(
    engine: Engine,
    sessions: sessionmaker[Session],
    receiver: Receiver,
    options: Options,
    *,
    failing: bool,
) -> Run:
    environment = "bench-webhooks-failing" if failing else "bench-webhooks-clean"
    url = f"http://{HOST}:{receiver.port}/hooks/{environment}"
    emitted = emit(sessions, environment, url, options)
    fail_rate = options.fail_rate if failing else 0.0
    receiver.configure(Mode(emitted.secret, fail_rate, options.seed))
    outage = timedelta(minutes=options.down_minutes) if failing else None
    label = "delivering, failures" if failing else "delivering"
    driven = drive(engine, sessions, emitted, receiver, options, outage, label)
    checked = check(engine, emitted, receiver.report())
    _print_run(emitted, driven, checked, failing)
    return Run(emitted, driven, checked)


def run_database(database: Database, receiver: Receiver, options: Options) -> Result:
    console.rule(f"[bold]{database.name}")
    with fresh(database) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            sessions = make_session_factory(engine)
            console.print("[bold]run 1[/]: the receiver answers 200 to everything")
            clean = one_run(engine, sessions, receiver, options, failing=False)
            console.print(
                f"[bold]run 2[/]: the receiver fails {options.fail_rate:.0%} at random and is "
                f"down {options.down_minutes:g} min (503, then refusing) from "
                f"{DOWN_AFTER:.0%} delivered"
            )
            failing = one_run(engine, sessions, receiver, options, failing=True)
        finally:
            engine.dispose()
    result = Result(database.name, clean, failing)
    for problem in result.problems:
        console.print(f"  [red]problem:[/] {escape(problem)}")
    return result


def _print_run(emitted: Emitted, driven: Driven, checked: Checked, failing: bool) -> None:
    statuses = ", ".join(
        f"{'dropped' if status == DROPPED else status} {count:,}"
        for status, count in sorted(checked.statuses.items())
    )
    goal = ""
    if not failing:
        met = driven.per_s >= GOAL_PER_S
        goal = f" ({'[green]meets[/]' if met else '[red]below[/]'} the goal of {GOAL_PER_S}/s)"
    console.print(
        f"  [bold]{driven.delivered:,} delivered in {driven.seconds:.2f} s: "
        f"{driven.per_s:,.0f} deliveries/s[/]{goal}; {checked.requests:,} requests "
        f"({statuses}), {driven.passes:,} passes"
        + (f", clock moved {driven.advances} times, {driven.offset} in all" if failing else "")
    )
    attempts = ", ".join(
        f"{answer} {count:,}" for answer, count in sorted(checked.attempts.items())
    )
    console.print(f"    webhook_attempts: {attempts}; {driven.cpu}")
    verdict = "[green]ok[/]" if not (driven.problems or checked.problems) else "[red]FAILED[/]"
    console.print(
        f"  {verdict}: {checked.delivered:,} delivered of {emitted.events:,} emitted, "
        f"{checked.order_violations:,} order violations, {checked.missing:,} missing, "
        f"{checked.duplicates:,} duplicates, {checked.early:,} sent early; database "
        f"{dict(checked.database)}"
    )


# -- main --------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(
        description="Webhook deliveries per second with one worker, and delivery through "
        "failures and an outage: every event, in order per customer."
    )
    add_database_arguments(parser)
    parser.add_argument("--events", type=int, default=10_000, help="events emitted per run")
    parser.add_argument("--customers", type=int, default=500, help="ordering keys")
    parser.add_argument(
        "--fail-rate", type=float, default=0.3, help="share answered 500 in run 2 (default 0.3)"
    )
    parser.add_argument(
        "--down-minutes",
        type=float,
        default=60.0,
        help="outage in run 2, of the worker's (simulated) time (default 60)",
    )
    parser.add_argument(
        "--advance-minutes",
        type=float,
        default=10.0,
        help="the simulated clock's jump when a pass delivers nothing (default 10)",
    )
    parser.add_argument("--seed", type=int, default=1, help="for customers, failures, jitter")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=MAX_WALL_SECONDS,
        help=f"give up a delivery run after this long (default {MAX_WALL_SECONDS:.0f})",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.customers < 1:
        parser.error("--events and --customers must be positive")
    if not 0 <= args.fail_rate < 1:
        parser.error("--fail-rate must be at least 0 and below 1")
    if args.down_minutes < 0 or args.advance_minutes <= 0:
        parser.error("--down-minutes must not be negative, --advance-minutes must be positive")
    options = Options(
        events=args.events,
        customers=args.customers,
        fail_rate=args.fail_rate,
        down_minutes=args.down_minutes,
        advance_minutes=args.advance_minutes,
        seed=args.seed,
        max_seconds=args.max_seconds,
    )
    return args, options


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))
    args, options = _parse(argv)
    databases = database_choices(args)
    receiver = Receiver()
    try:
        results = [run_database(database, receiver, options) for database in databases]
    finally:
        receiver.stop()
    console.rule("[bold]summary")
    for result in results:
        verdict = "ok" if not result.problems else "FAILED"
        failing = result.failing
        console.print(
            f"  {result.database}: {result.clean.driven.per_s:,.0f} deliveries/s (goal "
            f"{GOAL_PER_S}); with failures {failing.checked.delivered:,} delivered of "
            f"{failing.emitted.events:,} emitted, {failing.checked.order_violations:,} order "
            f"violations: {verdict}"
        )
    final = {
        result.database: {
            "deliveries_per_s": round(result.clean.driven.per_s, 1),
            "delivered": result.failing.checked.delivered,
            "emitted": result.failing.emitted.events,
            "order_violations": result.failing.checked.order_violations,
        }
        for result in results
    }
    console.file.flush()
    print(json.dumps(final), flush=True)
    if any(result.problems for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

"""What the two usage benchmarks share: databases, seeding, the server, a raw HTTP client.

`ingest_throughput.py` and `enforce_contention.py` run on SQLite, PostgreSQL or both. Each
run gets a fresh database the way `check_throughput.py` makes one (a SQLite file in a
temporary directory; a PostgreSQL schema of its own, dropped afterwards), seeded by its
seeder (the demo catalog, a server key, customers on plan-free, plan-pro and
plan-enterprise in turn), and Tollgate served by the same uvicorn command.

The HTTP client is a bare HTTP/1.1 keep-alive connection on asyncio streams (uvloop when
installed): requests are bytes built ahead of time and only the status line, the
Content-Length and the body are read back, so the client costs little of a 2-core machine.
"""

import argparse
import asyncio
import math
import os
import resource
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from check_throughput import (
    ENVIRONMENT,
    HOST,
    TOLLGATE_SERVER,
    Options,
    Server,
    busy_cpu_seconds,
    console,
    fresh_database,
    serve,
)
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import OperationalError

from tollgate.catalog.models import Feature
from tollgate.config import normalize_database_url
from tollgate.customers.models import Customer
from tollgate.db.engine import make_engine, make_session_factory
from tollgate.entitlements.engine import Effective
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.environments.models import Environment
from tollgate.kit.amounts import SCALE
from tollgate.kit.clock import SystemClock
from tollgate.usage.models import UsageCounter, UsageRecord

__all__ = [
    "DATABASES",
    "HOST",
    "POSTGRES_URL",
    "SCALE",
    "Cpu",
    "Database",
    "HttpConnection",
    "Ids",
    "Server",
    "Totals",
    "add_database_arguments",
    "busy_cpu_seconds",
    "console",
    "database_choices",
    "database_engine",
    "entitlement",
    "fresh",
    "get_request",
    "lookup_ids",
    "own_cpu_seconds",
    "percentile_ms",
    "post_request",
    "print_log_tail",
    "progress",
    "run_async",
    "serve_tollgate",
    "server_problems",
    "usage_totals",
]

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DATABASES = ("sqlite", "postgres")
T = TypeVar("T")


@dataclass(frozen=True)
class Database:
    name: str  # "sqlite" or "postgres"
    url: str | None  # None: a fresh SQLite file


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        choices=[*DATABASES, "both"],
        default="both",
        help="where to run (default both, SQLite first)",
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_URL,
        help=f"PostgreSQL to run on, in a schema of its own dropped afterwards "
        f"(default {POSTGRES_URL})",
    )


def database_choices(args: argparse.Namespace) -> list[Database]:
    names = DATABASES if args.database == "both" else (args.database,)
    return [Database(name, args.postgres_url if name == "postgres" else None) for name in names]


@contextmanager
def fresh(database: Database) -> Iterator[str]:
    """A URL of an empty database (see `check_throughput.fresh_database`)."""
    if database.url is not None:
        probe = create_engine(normalize_database_url(database.url))
        try:
            with probe.connect():
                pass
        except OperationalError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0]
            raise SystemExit(f"PostgreSQL at {database.url} is not reachable: {first}") from None
        finally:
            probe.dispose()
    with fresh_database(database.url) as url:
        yield url


# -- the database, read directly ---------------------------------------------------------


@dataclass(frozen=True)
class Ids:
    environment: int
    feature: int
    customers: dict[str, int]  # ref -> primary key


def lookup_ids(engine: Engine, feature_ref: str, customer_refs: list[str]) -> Ids:
    with engine.connect() as connection:
        environment = connection.scalar(
            select(Environment.id).where(Environment.name == ENVIRONMENT)
        )
        assert environment is not None
        feature = connection.scalar(
            select(Feature.id).where(
                Feature.environment_id == environment, Feature.ref_id == feature_ref
            )
        )
        assert feature is not None
        customers: dict[str, int] = {}
        wanted = list(customer_refs)
        for start in range(0, len(wanted), 1_000):
            rows = connection.execute(
                select(Customer.ref_id, Customer.id).where(
                    Customer.environment_id == environment,
                    Customer.ref_id.in_(wanted[start : start + 1_000]),
                )
            )
            customers.update({row.ref_id: row.id for row in rows})
    missing = set(wanted) - set(customers)
    if missing:
        raise SystemExit(f"{len(missing)} customer(s) were not seeded, e.g. {min(missing)}")
    return Ids(environment, feature, customers)


def entitlement(
    engine: Engine, environment_id: int, customer_ref: str, feature_ref: str
) -> Effective:
    """The customer's entitlement to the feature now, as Tollgate computes it."""
    sessions = make_session_factory(engine, write=False)
    store = SnapshotStore(sessions, SystemClock())
    with sessions() as session:
        snapshot = store.compute(session, environment_id, customer_ref, None)
    found = snapshot.entitlements.get(feature_ref)
    if found is None:
        raise SystemExit(f"{customer_ref} has no entitlement to {feature_ref}")
    return found


@dataclass(frozen=True)
class Totals:
    counted: int  # sum of the counters' values, in units (not scaled)
    remainder: int  # what the sum has beyond whole units (must be 0 here)
    counters: int
    periods: int  # distinct period starts among the counters
    records: int
    recorded: int  # sum of the records' changes, in units


def usage_totals(engine: Engine, feature_id: int) -> Totals:
    c, r = UsageCounter, UsageRecord
    with engine.connect() as connection:
        value, counters, periods = connection.execute(
            select(
                func.coalesce(func.sum(c.value), 0),
                func.count(),
                func.count(func.distinct(c.period_start)),
            ).where(c.feature_id == feature_id)
        ).one()
        records, changed = connection.execute(
            select(func.count(), func.coalesce(func.sum(r.change), 0)).where(
                r.feature_id == feature_id
            )
        ).one()
    return Totals(
        counted=int(value) // SCALE,
        remainder=int(value) % SCALE,
        counters=int(counters),
        periods=int(periods),
        records=int(records),
        recorded=int(changed) // SCALE,
    )


def database_engine(url: str) -> Engine:
    """An engine configured as Tollgate's (SQLite: WAL, synchronous NORMAL, BEGIN IMMEDIATE)."""
    return make_engine(url)


# -- the server --------------------------------------------------------------------------


@contextmanager
def serve_tollgate(url: str, captured_log: list[str]) -> Iterator[Server]:
    """Tollgate on `url` as `check_throughput.py` serves it; its log lines are copied into
    `captured_log` when it stops (the log file itself is removed)."""
    env = {
        "TOLLGATE_DATABASE_URL": url,
        "TOLLGATE_RUN_JOBS": "false",
        "TOLLGATE_LOG_LEVEL": "warning",
    }
    options = Options(seconds=0.0, concurrency=0, database_url=None, pin=False)
    with serve("Tollgate", TOLLGATE_SERVER, env, "/healthz", options) as server:
        try:
            yield server
        finally:
            captured_log.extend(server.log_lines())


def server_problems(lines: list[str]) -> list[str]:
    """Log lines that report a failure (tracebacks, records at level error or above)."""
    markers = ("Traceback", '"level": "error"', '"level": "critical"', " 500 ")
    return [line for line in lines if any(marker in line for marker in markers)]


def print_log_tail(lines: list[str], count: int = 40) -> None:
    if not lines:
        return
    console.print(f"  server log ({len(lines)} line(s)), last {min(count, len(lines))}:")
    for line in lines[-count:]:
        console.print(f"    {line}", markup=False)


# -- CPU ---------------------------------------------------------------------------------


def own_cpu_seconds() -> float:
    """CPU time of this process (every thread) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Cpu:
    """CPU used between `start` and `stop`: the server, this process, and everyone else."""

    server: Server | None = None
    _start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seconds: float = 0.0
    server_cores: float = float("nan")
    client_cores: float = 0.0
    other_cores: float = 0.0

    def _sample(self) -> tuple[float, float, float]:
        server = self.server.cpu_seconds() if self.server is not None else 0.0
        return server, own_cpu_seconds(), busy_cpu_seconds()

    def start(self) -> None:
        self._start = self._sample()

    def stop(self, seconds: float) -> None:
        end = self._sample()
        server, client, everyone = (b - a for a, b in zip(self._start, end, strict=True))
        self.seconds = seconds
        self.server_cores = server / seconds if self.server is not None else float("nan")
        self.client_cores = client / seconds
        self.other_cores = max(0.0, everyone - server - client) / seconds  # noise < 0

    def describe(self, others: str) -> str:
        parts = []
        if self.server is not None:
            parts.append(f"server {self.server_cores:.0%}")
        parts.append(f"this process {self.client_cores:.0%}")
        parts.append(f"{others} {self.other_cores:.0%}")
        return "CPU: " + ", ".join(parts) + f" (of {os.cpu_count()} cores)"


# -- HTTP --------------------------------------------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection, one request in flight at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Write one whole request (head and body); read the status and body back."""
        assert self._reader is not None
        assert self._writer is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 "):
            raise ConnectionError(f"unexpected response head: {head[:200]!r}")
        lowered = head.lower()
        start = lowered.find(b"\r\ncontent-length:")
        if start < 0:
            raise ConnectionError(f"response without Content-Length: {head[:200]!r}")
        start += len(b"\r\ncontent-length:")
        end = lowered.find(b"\r\n", start)
        body = await self._reader.readexactly(int(lowered[start:end]))
        return int(head[9:12]), body


def post_request(host: str, port: int, path: str, api_key: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-KEY: {api_key}\r\n"
        f"Content-Type: application/json\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_request(host: str, port: int, path: str, api_key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-KEY: {api_key}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


def percentile_ms(latencies_s: list[float], fraction: float) -> float:
    """The nearest-rank percentile of latencies in seconds, in milliseconds (NaN if none)."""
    if not latencies_s:
        return float("nan")
    ordered = sorted(latencies_s)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank] * 1000


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] installs it; plain asyncio costs more CPU
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


# -- output ------------------------------------------------------------------------------


def progress() -> Progress:
    return Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    )

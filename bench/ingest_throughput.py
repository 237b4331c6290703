"""How many usage reports per second does Tollgate count, next to raw SQL doing the same?

    .venv/bin/python bench/ingest_throughput.py                       # SQLite, then PostgreSQL
    .venv/bin/python bench/ingest_throughput.py --database sqlite --seconds 20

For each database: seed a fresh one (the demo catalog, 3 x `--customers` customers on
plan-free, plan-pro and plan-enterprise in turn; the plan-enterprise ones, unlimited
`feature-active-users`, are the ones reported on), then

1. **Raw baseline**: the same batches written straight into Tollgate's tables with
   SQLAlchemy Core on an engine configured as Tollgate's, no server: per batch, in one
   transaction, one insert-or-increment of the batch's counters (`INSERT ... ON CONFLICT
   DO UPDATE SET value = value + excluded.value RETURNING`, rows in key order) and one
   executemany insert of its `usage_records` rows (usage_after filled in from the
   returned totals). `--raw-concurrency` connections (default 1) write at once.
2. The usage tables are emptied, so both runs start from the same state.
3. **API**: Tollgate served by uvicorn (`servers.py:tollgate_app`, as in
   `check_throughput.py`); `--concurrency` keep-alive connections (default 4), each
   POSTing `/api/v1/usage` batches of `--batch` DELTA reports of 1 to
   `feature-active-users`, unique idempotency keys, random customers; one request in
   flight per connection. Bodies are orjson-encoded before the clock starts.

Both runs warm up the same way, unmeasured: one batch per group of `--batch` customers
(every customer once, so each has its counter and Tollgate has each snapshot cached),
then 2 s at full load; then `--seconds` measured. Afterwards the counters must hold
exactly one unit per report acknowledged (and per usage_records row), in one period.

The last line is one JSON object:

    {"sqlite": {"api_per_s": .., "raw_per_s": .., "ratio": ..}, "postgres": {...}}

Goals (printed, not enforced): ratio >= 0.3, and >= 20,000 reports/s on PostgreSQL.
"""

import argparse
import asyncio
import json
import math
import random
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from check_throughput import PLANS, customer_id, seed
from rich.markup import escape
from sqlalchemy import Connection, Engine, Table, text
from usage_common import (
    HOST,
    SCALE,
    Cpu,
    Database,
    HttpConnection,
    Ids,
    Totals,
    add_database_arguments,
    console,
    database_choices,
    database_engine,
    entitlement,
    fresh,
    lookup_ids,
    percentile_ms,
    post_request,
    print_log_tail,
    run_async,
    serve_tollgate,
    server_problems,
    usage_totals,
)

from tollgate.entitlements.periods import usage_period
from tollgate.usage.models import UpdateBehavior, UsageRecord

FEATURE = "feature-active-users"
PLAN = "plan-enterprise"  # unlimited active users
WARMUP_SECONDS = 2.0
USAGE_PATH = "/api/v1/usage"
GOAL_RATIO = 0.3
GOAL_POSTGRES_PER_S = 20_000
# Batches prepared ahead: enough for this rate during warm-up, and for three times the
# warm-up's rate during the measurement.
WARMUP_RATE_CAP = 60_000
HEADROOM = 3.0
DRAWS_SEED = 1  # both runs report on the same customers in the same order
MAX_ATTEMPTS = 10  # per batch, when the server answers 503 (database busy)


@dataclass(frozen=True)
class Options:
    seconds: float
    batch: int
    concurrency: int
    raw_concurrency: int
    customers: int


@dataclass
class Phase:
    """One timed phase: reports (rows) acknowledged, batches, time, latencies."""

    reports: int = 0
    batches: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    busy_answers: list[str] = field(default_factory=list)  # 503s, retried
    ran_out: bool = False

    def absorb(self, other: "Phase") -> None:
        """Count another (unmeasured) phase's reports and trouble as this one's."""
        self.reports += other.reports
        self.errors += other.errors
        self.busy_answers += other.busy_answers

    @property
    def per_s(self) -> float:
        return self.reports / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, fraction: float) -> float:
        return percentile_ms(self.latencies, fraction)


@dataclass
class Result:
    database: str
    api: Phase
    raw: Phase
    api_cpu: Cpu
    raw_cpu: Cpu
    exact: bool
    problems: list[str]

    @property
    def ratio(self) -> float:
        return self.api.per_s / self.raw.per_s if self.raw.per_s else 0.0


class Draws:
    """Random customers (indices) for batches, drawn ahead of time."""

    def __init__(self, customers: int, batch: int, seed_value: int) -> None:
        self._rng = random.Random(seed_value)
        self._population = range(customers)
        self.batch = batch

    def every_customer_once(self) -> list[list[int]]:
        order = list(self._population)
        self._rng.shuffle(order)
        return [order[i : i + self.batch] for i in range(0, len(order), self.batch)]

    def random(self, batches: int) -> list[list[int]]:
        return [self._rng.choices(self._population, k=self.batch) for _ in range(batches)]

    def for_rate(self, per_s: float, seconds: float, concurrency: int) -> list[list[int]]:
        return self.random(int(per_s * seconds / self.batch) + 2 * concurrency + 2)


# -- raw baseline ------------------------------------------------------------------------


UPSERT_TAIL = (
    " ON CONFLICT (customer_id, feature_id, resource_ref, period_start) DO UPDATE SET "
    "value = usage_counters.value + excluded.value, updated_at = excluded.updated_at "
    "RETURNING customer_id, value"
)
# SQLite: one multi-row upsert of the batch's counters, one executemany of its records.
SQLITE_UPSERT_HEAD = (
    "INSERT INTO usage_counters (environment_id, customer_id, feature_id, resource_ref, "
    "period_start, period_end, value, event_count, event_sum, unique_count, updated_at) VALUES "
)
SQLITE_COUNTER_ROW = "(?, ?, ?, '', ?, ?, ?, 0, 0, 0, ?)"
SQLITE_INSERT = (
    "INSERT INTO usage_records (environment_id, customer_id, feature_id, resource_ref, "
    "idempotency_key, behavior, value, change, usage_after, period_start, period_end, "
    "dimensions, created_at, recorded_at) "
    "VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# PostgreSQL: the same two statements, each row's own values sent as arrays (unnest), which
# psycopg sends far faster than thousands of placeholders or an executemany.
POSTGRES_UPSERT = (
    "INSERT INTO usage_counters (environment_id, customer_id, feature_id, resource_ref, "
    "period_start, period_end, value, event_count, event_sum, unique_count, updated_at) "
    "SELECT %(environment_id)s, u.customer_id, %(feature_id)s, '', %(period_start)s, "
    "%(period_end)s, u.value, 0, 0, 0, %(now)s "
    "FROM unnest(%(customers)s::bigint[], %(values)s::bigint[]) AS u(customer_id, value) "
    "ORDER BY u.customer_id" + UPSERT_TAIL
)
POSTGRES_INSERT = (
    "INSERT INTO usage_records (environment_id, customer_id, feature_id, resource_ref, "
    "idempotency_key, behavior, value, change, usage_after, period_start, period_end, "
    "dimensions, created_at, recorded_at) "
    "SELECT %(environment_id)s, u.customer_id, %(feature_id)s, '', u.key, %(behavior)s, "
    "%(value)s, %(value)s, u.after, %(period_start)s, %(period_end)s, %(dimensions)s, "
    "%(now)s, %(now)s "
    "FROM unnest(%(customers)s::bigint[], %(keys)s::text[], %(afters)s::bigint[]) "
    "AS u(customer_id, key, after)"
)


class RawWriter:
    """A batch straight into Tollgate's tables, in one transaction, through the driver.

    Per batch: one insert-or-increment of the batch's counters, in key order (`INSERT ...
    ON CONFLICT DO UPDATE SET value = value + excluded.value RETURNING`), then one insert of
    its records, each with the total after it (from the returned totals), as the API's
    records have. Values are what SQLAlchemy would send for the API's rows (each column
    type's own bind processor, applied once per batch to the values all rows share)."""

    def __init__(self, engine: Engine, ids: Ids, refs: list[str], period: Any) -> None:
        self._dialect = engine.dialect
        self._postgres = engine.dialect.name == "postgresql"
        self._records = _table(UsageRecord)
        self._environment = ids.environment
        self._feature = ids.feature
        self._pks = [ids.customers[ref] for ref in refs]
        self._period_start, self._period_end = period
        self._keys = 0
        self._lock = threading.Lock()

    def _next_keys(self, count: int) -> int:
        with self._lock:
            first = self._keys
            self._keys += count
            return first

    def _shared(self, now: datetime) -> dict[str, Any]:
        """The values every row of a batch shares, as SQLAlchemy would send them."""
        values = {
            "environment_id": self._environment,
            "feature_id": self._feature,
            "behavior": UpdateBehavior.DELTA,
            "value": SCALE,
            "period_start": self._period_start,
            "period_end": self._period_end,
            "dimensions": None,
            "created_at": now,
        }
        bound = {}
        for name, value in values.items():
            column_type = self._records.c[name].type.dialect_impl(self._dialect)
            processor = column_type.bind_processor(self._dialect)
            bound[name] = processor(value) if processor is not None else value
        bound["now"] = bound.pop("created_at")
        return bound

    def write(self, connection: Connection, draw: list[int]) -> int:
        pks = [self._pks[index] for index in draw]
        deltas = sorted(Counter(pks).items())
        shared = self._shared(datetime.now(UTC))
        first_key = self._next_keys(len(pks))
        keys = [f"raw-{first_key + position}" for position in range(len(pks))]
        with connection.begin():
            totals = self._increment(connection, shared, deltas)
            after = [0] * len(pks)
            for position in range(len(pks) - 1, -1, -1):  # the last report sees the total
                pk = pks[position]
                after[position] = totals[pk]
                totals[pk] -= SCALE
            self._insert(connection, shared, pks, keys, after)
        return len(pks)

    def _increment(
        self, connection: Connection, shared: dict[str, Any], deltas: list[tuple[int, int]]
    ) -> dict[int, int]:
        if self._postgres:
            parameters = {
                **shared,
                "customers": [pk for pk, _count in deltas],
                "values": [count * SCALE for _pk, count in deltas],
            }
            returned = connection.exec_driver_sql(POSTGRES_UPSERT, parameters)
        else:
            row = (shared["environment_id"], shared["feature_id"])
            period = (shared["period_start"], shared["period_end"])
            values = [
                value
                for pk, count in deltas
                for value in (*row[:1], pk, *row[1:], *period, count * SCALE, shared["now"])
            ]
            statement = SQLITE_UPSERT_HEAD + ", ".join([SQLITE_COUNTER_ROW] * len(deltas))
            returned = connection.exec_driver_sql(statement + UPSERT_TAIL, tuple(values))
        return {int(pk): int(value) for pk, value in returned}

    def _insert(
        self,
        connection: Connection,
        shared: dict[str, Any],
        pks: list[int],
        keys: list[str],
        after: list[int],
    ) -> None:
        if self._postgres:
            parameters = {**shared, "customers": pks, "keys": keys, "afters": after}
            connection.exec_driver_sql(POSTGRES_INSERT, parameters)
            return
        s = shared
        connection.exec_driver_sql(
            SQLITE_INSERT,
            [
                (
                    s["environment_id"],
                    pk,
                    s["feature_id"],
                    key,
                    s["behavior"],
                    s["value"],
                    s["value"],
                    usage_after,
                    s["period_start"],
                    s["period_end"],
                    s["dimensions"],
                    s["now"],
                    s["now"],
                )
                for pk, key, usage_after in zip(pks, keys, after, strict=True)
            ],
        )


def raw_phase(
    engine: Engine, writer: RawWriter, draws: list[list[int]], concurrency: int, seconds: float
) -> Phase:
    """`concurrency` threads, a connection each, writing batches until `seconds` pass."""
    phase = Phase()
    pending = iter(draws)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def work() -> None:
        with engine.connect() as connection:
            while time.perf_counter() < deadline:
                with lock:
                    draw = next(pending, None)
                if draw is None:
                    phase.ran_out = True
                    return
                started = time.perf_counter()
                try:
                    written = writer.write(connection, draw)
                except Exception as exc:
                    phase.errors.append(f"{type(exc).__name__}: {exc}"[:1000])
                    return
                with lock:
                    phase.reports += written
                    phase.batches += 1
                    phase.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - started
    return phase


def measure_raw(
    engine: Engine, writer: RawWriter, draws: Draws, options: Options
) -> tuple[Phase, Phase, Cpu]:
    """Warm-up (unmeasured): every customer once, then 2 s; then the measurement."""
    warm = raw_phase(engine, writer, draws.every_customer_once(), 1, float("inf"))
    warm_load = raw_phase(
        engine,
        writer,
        draws.for_rate(WARMUP_RATE_CAP, WARMUP_SECONDS, options.raw_concurrency),
        options.raw_concurrency,
        WARMUP_SECONDS,
    )
    warm.absorb(warm_load)
    prepared = draws.for_rate(warm_load.per_s * HEADROOM, options.seconds, options.raw_concurrency)
    cpu = Cpu()
    cpu.start()
    measured = raw_phase(engine, writer, prepared, options.raw_concurrency, options.seconds)
    cpu.stop(measured.seconds)
    return warm, measured, cpu


# -- API ---------------------------------------------------------------------------------


class Bodies:
    """POST /api/v1/usage requests, encoded ahead of time, with unique idempotency keys."""

    def __init__(self, port: int, api_key: str, refs: list[str]) -> None:
        self._port = port
        self._api_key = api_key
        self._refs = refs
        self._keys = 0

    def requests(self, draws: list[list[int]]) -> list[bytes]:
        built = []
        for draw in draws:
            usages = []
            for index in draw:
                usages.append(
                    {
                        "customerId": self._refs[index],
                        "featureId": FEATURE,
                        "value": 1,
                        "idempotencyKey": f"api-{self._keys}",
                        "updateBehavior": "DELTA",
                    }
                )
                self._keys += 1
            body = orjson.dumps({"usages": usages})
            built.append(post_request(HOST, self._port, USAGE_PATH, self._api_key, body))
        return built


async def api_phase(
    port: int, requests: list[bytes], batch_sizes: list[int], concurrency: int, seconds: float
) -> Phase:
    """`concurrency` keep-alive connections, one batch in flight each, until `seconds`.

    A 503 (the database busy: nothing was stored) is retried with the same body, as the
    answer asks, and counted; any other answer but a 200 with one result per report ends
    the phase with an error."""
    phase = Phase()
    connections = [HttpConnection(HOST, port) for _ in range(concurrency)]
    await asyncio.gather(*(connection.open() for connection in connections))
    pending = iter(zip(requests, batch_sizes, strict=True))
    stop = asyncio.Event()

    async def work(connection: HttpConnection) -> None:
        while not stop.is_set() and time.perf_counter() < deadline:
            item = next(pending, None)
            if item is None:
                phase.ran_out = True
                return
            request, size = item
            started = time.perf_counter()
            for _attempt in range(MAX_ATTEMPTS):
                try:
                    status, body = await connection.send(request)
                except (OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
                    phase.errors.append(f"connection failed: {exc!r}")
                    stop.set()
                    return
                phase.statuses[status] += 1
                if status != 503:
                    break
                phase.busy_answers.append(body[:300].decode(errors="replace"))
            answered = body.count(b'"currentUsage":')
            if status != 200 or answered != size:
                answer = body[:600].decode(errors="replace")
                phase.errors.append(f"HTTP {status}, {answered} answer(s) for {size}: {answer}")
                stop.set()
                return
            phase.latencies.append(time.perf_counter() - started)
            phase.reports += size
            phase.batches += 1

    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(work(connection) for connection in connections))
    phase.seconds = time.perf_counter() - started
    await asyncio.gather(*(connection.close() for connection in connections))
    return phase


def _api_run(
    port: int, bodies: Bodies, draws: list[list[int]], concurrency: int, seconds: float
) -> Phase:
    requests = bodies.requests(draws)  # encoded before the clock starts
    return run_async(api_phase(port, requests, [len(d) for d in draws], concurrency, seconds))


def measure_api(
    port: int, bodies: Bodies, draws: Draws, options: Options, cpu: Cpu
) -> tuple[Phase, Phase]:
    """Warm-up (unmeasured): every customer once, then 2 s; then the measurement."""
    warm = _api_run(port, bodies, draws.every_customer_once(), 1, math.inf)
    if warm.errors:
        return warm, Phase()
    load = draws.for_rate(WARMUP_RATE_CAP, WARMUP_SECONDS, options.concurrency)
    warm_load = _api_run(port, bodies, load, options.concurrency, WARMUP_SECONDS)
    warm.absorb(warm_load)
    if warm.errors:
        return warm, Phase()
    console.print(
        f"  warm-up: every customer once, then {WARMUP_SECONDS:.0f} s at "
        f"{warm_load.per_s:,.0f} reports/s; not measured"
    )
    prepared = draws.for_rate(warm_load.per_s * HEADROOM, options.seconds, options.concurrency)
    requests = bodies.requests(prepared)
    cpu.start()
    measured = run_async(
        api_phase(port, requests, [len(d) for d in prepared], options.concurrency, options.seconds)
    )
    cpu.stop(measured.seconds)
    return warm, measured


# -- one database ------------------------------------------------------------------------


def run_database(database: Database, options: Options) -> Result:
    console.rule(f"[bold]{database.name}")
    problems: list[str] = []  # make the run fail
    warnings: list[str] = []
    with fresh(database) as url:
        seeded = seed(url, options.customers * len(PLANS))
        plan = PLANS.index(PLAN)
        refs = [customer_id(i) for i in range(plan, options.customers * len(PLANS), len(PLANS))]
        console.print(
            f"  seeded {options.customers * len(PLANS):,} customers in {seeded.seconds:.1f} s; "
            f"reporting on the {len(refs):,} on {PLAN}"
        )
        engine = database_engine(url)
        try:
            ids = lookup_ids(engine, FEATURE, refs)
            effective = entitlement(engine, ids.environment, refs[0], FEATURE)
            if not effective.has_unlimited_usage:
                raise SystemExit(f"{refs[0]} has a limit on {FEATURE}; expected unlimited")
            period = usage_period("INCREMENTAL", effective, datetime.now(UTC))

            # 1. raw baseline
            writer = RawWriter(engine, ids, refs, period)
            draws = Draws(len(refs), options.batch, seed_value=DRAWS_SEED)
            raw_warm, raw, raw_cpu = measure_raw(engine, writer, draws, options)
            raw_total = raw_warm.reports + raw.reports
            _print_raw(raw, raw_cpu, options)
            problems += [f"raw: {error}" for error in raw_warm.errors + raw.errors]
            if raw.ran_out:
                problems.append("raw: ran out of prepared batches; the rate is understated")
            raw_totals = usage_totals(engine, ids.feature)
            problems += _exactness("raw", raw_totals, raw_total, len(refs))
            raw_periods = _period_starts(engine)

            # 2. the same starting state for the API
            _empty_usage_tables(engine)

            # 3. API
            log: list[str] = []
            api_cpu = Cpu()
            with serve_tollgate(url, log) as server:
                api_cpu.server = server
                bodies = Bodies(server.port, seeded.api_key, refs)
                draws = Draws(len(refs), options.batch, seed_value=DRAWS_SEED)  # the same
                api_warm, api = measure_api(server.port, bodies, draws, options, api_cpu)
            api_total = api_warm.reports + api.reports
            errors = api_warm.errors + api.errors
            problems += [f"api: {error}" for error in errors]
            if api.ran_out:
                problems.append("api: ran out of prepared batches; the rate is understated")
            if not errors:
                _print_api(api, api_cpu, options)
            api_totals = usage_totals(engine, ids.feature)
            problems += _exactness("api", api_totals, api_total, len(refs))
            if not errors and _period_starts(engine) != raw_periods:
                problems.append(
                    f"api counted in period(s) {sorted(map(str, _period_starts(engine)))}, "
                    f"the raw baseline in {sorted(map(str, raw_periods))}"
                )
            busy = api_warm.busy_answers + api.busy_answers
            if busy:
                warnings.append(
                    f"api: {len(busy)} answer(s) 503, retried with the same body (nothing was "
                    f"stored, the answer says); the first: {busy[0]}"
                )
            bad_lines = server_problems(log)
            if bad_lines:
                problems.append(f"the server logged {len(bad_lines)} error line(s)")
            elif log:
                warnings.append(f"the server logged {len(log)} warning line(s)")
            if errors or log:
                print_log_tail(log)
        finally:
            engine.dispose()
    exact = not any("exactness" in problem for problem in problems)
    result = Result(database.name, api, raw, api_cpu, raw_cpu, exact, problems)
    console.print(
        f"  [bold]ratio {result.ratio:.2f}[/] (API {api.per_s:,.0f} reports/s / raw "
        f"{raw.per_s:,.0f} rows/s); counters exact: "
        f"{'yes' if exact else '[red]NO[/]'} ({api_totals.counted:,} units for "
        f"{api_total:,} reports acknowledged, {api_totals.records:,} records)"
    )
    for warning in warnings:
        console.print(f"  [yellow]warning:[/] {escape(warning)}")
    for problem in problems:
        console.print(f"  [red]problem:[/] {escape(problem)}")
    return result


def _exactness(name: str, totals: Totals, acknowledged: int, customers: int) -> list[str]:
    found = []
    if totals.counted != acknowledged or totals.remainder:
        found.append(
            f"{name} exactness: counters hold {totals.counted:,} units "
            f"(+{totals.remainder}/{SCALE}), {acknowledged:,} reports were acknowledged"
        )
    if totals.records != acknowledged or totals.recorded != acknowledged:
        found.append(
            f"{name} exactness: {totals.records:,} usage_records rows adding "
            f"{totals.recorded:,} units, {acknowledged:,} reports were acknowledged"
        )
    if acknowledged and (totals.periods != 1 or totals.counters != customers):
        found.append(
            f"{name} exactness: {totals.counters:,} counters in {totals.periods} period(s), "
            f"expected {customers:,} in 1"
        )
    return found


def _period_starts(engine: Engine) -> set[Any]:
    with engine.connect() as connection:
        return set(
            connection.execute(text("SELECT DISTINCT period_start FROM usage_counters")).scalars()
        )


def _empty_usage_tables(engine: Engine) -> None:
    tables = ("meter_unique_values", "usage_records", "usage_counters")
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)}"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _print_raw(raw: Phase, cpu: Cpu, options: Options) -> None:
    connections = f"{options.raw_concurrency} connection" + "s" * (options.raw_concurrency > 1)
    console.print(
        f"  [bold]raw[/]: {raw.per_s:,.0f} rows/s ({raw.batches:,} batches of {options.batch:,} "
        f"in {raw.seconds:.1f} s, {connections}; per batch p50 {raw.percentile_ms(0.5):.1f} ms, "
        f"p99 {raw.percentile_ms(0.99):.1f} ms)"
    )
    console.print(f"    {cpu.describe('database and others')}")


def _print_api(api: Phase, cpu: Cpu, options: Options) -> None:
    console.print(
        f"  [bold]api[/]: {api.per_s:,.0f} reports/s ({api.batches:,} batches of "
        f"{options.batch:,} in {api.seconds:.1f} s, {options.concurrency} connections; per "
        f"request p50 {api.percentile_ms(0.5):.0f} ms, p99 {api.percentile_ms(0.99):.0f} ms, "
        f"max {api.percentile_ms(1.0):.0f} ms; "
        f"statuses {dict(api.statuses)})"
    )
    console.print(f"    {cpu.describe('database and others')}")


# -- main --------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Usage reports/s through the API next to raw batched SQL."
    )
    add_database_arguments(parser)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds each")
    parser.add_argument("--batch", type=int, default=1_000, help="reports per request")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument(
        "--raw-concurrency", type=int, default=1, help="connections writing the raw baseline"
    )
    parser.add_argument(
        "--customers", type=int, default=1_000, help="customers reported on (plan-enterprise)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1_000:
        parser.error("--batch must be between 1 and 1,000 (the API's limit)")
    if args.customers < 1 or args.concurrency < 1 or args.raw_concurrency < 1:
        parser.error("--customers, --concurrency and --raw-concurrency must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))
    args = _parse(argv)
    options = Options(
        seconds=args.seconds,
        batch=args.batch,
        concurrency=args.concurrency,
        raw_concurrency=args.raw_concurrency,
        customers=args.customers,
    )
    results = [run_database(database, options) for database in database_choices(args)]
    console.rule("[bold]summary")
    for result in results:
        met = "met" if result.ratio >= GOAL_RATIO else "NOT met"
        line = (
            f"  {result.database}: API {result.api.per_s:,.0f} reports/s, raw "
            f"{result.raw.per_s:,.0f} rows/s, ratio {result.ratio:.2f} (goal >= {GOAL_RATIO}: "
            f"{met})"
        )
        if result.database == "postgres":
            met = "met" if result.api.per_s >= GOAL_POSTGRES_PER_S else "NOT met"
            line += f"; goal >= {GOAL_POSTGRES_PER_S:,} reports/s: {met}"
        console.print(line)
    final = {
        result.database: {
            "api_per_s": round(result.api.per_s, 1),
            "raw_per_s": round(result.raw.per_s, 1),
            "ratio": round(result.ratio, 3),
        }
        for result in results
    }
    console.file.flush()
    print(json.dumps(final), flush=True)
    if any(result.problems for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

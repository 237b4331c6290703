"""Many consumers race for the last units of one limit: is exactly the limit granted?

    .venv/bin/python bench/enforce_contention.py                      # SQLite, then PostgreSQL
    .venv/bin/python bench/enforce_contention.py --database postgres --consumers 128

For each database: seed a fresh one (the demo catalog; customer-000001 on plan-pro, whose
`feature-active-users` is limited to 1,000 a month), serve Tollgate (as
`check_throughput.py` does) and warm its snapshot of the customer with one entitlement
check. Then `--consumers` (default 64) keep-alive connections at once each POST, one after
the other,

    {"usages": [{"customerId": "customer-000001", "featureId": "feature-active-users",
                 "value": 1, "enforceLimit": true, "idempotencyKey": <unique>}]}

until they have been refused `--refusals` times (default 1): HTTP 409 `usage_limit_exceeded`
with `accessDeniedReason` RequestedUsageExceedingLimit. A 503 (database busy, nothing
stored) is retried with the same body and counted.

Checks: units granted must equal the limit; the granted answers' `currentUsage` must be
1, 2, ..., limit, each once; the counter in the database must hold the limit and
usage_records one row per grant. It prints granted, refused and consumes per second (every
answer, granted or refused, over the wall time from the first request to the last answer);
the last line is one JSON object:

    {"sqlite": {"granted": .., "refused": .., "per_s": ..}, "postgres": {...}}

The exit status is 1 when any check fails on any database.
"""

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from check_throughput import PLANS, customer_id, seed
from rich.markup import escape
from sqlalchemy import func, select
from usage_common import (
    HOST,
    SCALE,
    Cpu,
    Database,
    HttpConnection,
    add_database_arguments,
    console,
    database_choices,
    database_engine,
    entitlement,
    fresh,
    get_request,
    lookup_ids,
    percentile_ms,
    post_request,
    print_log_tail,
    progress,
    run_async,
    serve_tollgate,
    server_problems,
)

from tollgate.usage.models import UsageCounter, UsageRecord

FEATURE = "feature-active-users"
PLAN = "plan-pro"  # 1,000 active users a month
USAGE_PATH = "/api/v1/usage"
REFUSAL_CODE = "usage_limit_exceeded"
REFUSAL_REASON = "RequestedUsageExceedingLimit"
MAX_ATTEMPTS = 10  # per report, when the server answers 503 (database busy)


@dataclass
class Race:
    """What the consumers saw, together."""

    limit: int
    granted_usages: list[float] = field(default_factory=list)  # currentUsage of each grant
    refused: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    busy_answers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def granted(self) -> int:
        return len(self.granted_usages)

    @property
    def per_s(self) -> float:
        return (self.granted + self.refused) / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, fraction: float) -> float:
        return percentile_ms(self.latencies, fraction)


@dataclass(frozen=True)
class Result:
    database: str
    race: Race
    problems: list[str]


@dataclass(frozen=True)
class Target:
    port: int
    api_key: str
    customer: str

    def consume(self, key: str) -> bytes:
        body = orjson.dumps(
            {
                "usages": [
                    {
                        "customerId": self.customer,
                        "featureId": FEATURE,
                        "value": 1,
                        "enforceLimit": True,
                        "idempotencyKey": key,
                    }
                ]
            }
        )
        return post_request(HOST, self.port, USAGE_PATH, self.api_key, body)


# -- the race ----------------------------------------------------------------------------


async def consumer(
    number: int, connection: HttpConnection, target: Target, race: Race, refusals: int
) -> None:
    """POST one unit at a time until refused `refusals` times (or something goes wrong)."""
    refused = 0
    sent = 0
    while refused < refusals and not race.stop.is_set():
        request = target.consume(f"enforce-{number}-{sent}")
        sent += 1
        started = time.perf_counter()
        for _attempt in range(MAX_ATTEMPTS):
            try:
                status, body = await connection.send(request)
            except (OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
                race.errors.append(f"consumer {number}: connection failed: {exc!r}")
                return
            race.statuses[status] += 1
            if status != 503:
                break
            race.busy_answers.append(body[:300].decode(errors="replace"))
        race.latencies.append(time.perf_counter() - started)
        problem = _read_answer(status, body, race)
        if problem == "refused":
            refused += 1
        elif problem:
            race.errors.append(f"consumer {number}: {problem}")
            return
        if race.granted > 2 * race.limit:
            race.errors.append(f"more than {2 * race.limit:,} units granted; stopping")
            race.stop.set()


def _read_answer(status: int, body: bytes, race: Race) -> str | None:
    """None for a grant (recorded), "refused" for a refusal (counted), else the problem."""
    text = body[:600].decode(errors="replace")
    try:
        answer: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"HTTP {status}, not JSON: {text}"
    if status == 200:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != 1 or "currentUsage" not in data[0]:
            return f"HTTP 200 with an unexpected body: {text}"
        race.granted_usages.append(data[0]["currentUsage"])
        return None
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    details = error.get("details") or [{}]
    if (
        status == 409
        and error.get("code") == REFUSAL_CODE
        and details[0].get("accessDeniedReason") == REFUSAL_REASON
    ):
        race.refused += 1
        return "refused"
    return f"HTTP {status}: {text}"


async def run_race(target: Target, race: Race, consumers: int, refusals: int) -> None:
    connections = [HttpConnection(HOST, target.port) for _ in range(consumers)]
    await asyncio.gather(*(connection.open() for connection in connections))
    with progress() as bar:
        task = bar.add_task(f"{consumers} consumers: units granted", total=race.limit)

        async def follow() -> None:
            while True:
                bar.update(task, completed=race.granted)
                await asyncio.sleep(0.1)

        follower = asyncio.ensure_future(follow())
        started = time.perf_counter()
        await asyncio.gather(
            *(
                consumer(number, connection, target, race, refusals)
                for number, connection in enumerate(connections)
            )
        )
        race.seconds = time.perf_counter() - started
        follower.cancel()
        bar.update(task, completed=race.granted)
    await asyncio.gather(*(connection.close() for connection in connections))


async def warm(target: Target, path: str) -> tuple[int, bytes]:
    connection = HttpConnection(HOST, target.port)
    await connection.open()
    try:
        return await connection.send(get_request(HOST, target.port, path, target.api_key))
    finally:
        await connection.close()


# -- one database ------------------------------------------------------------------------


def run_database(database: Database, consumers: int, refusals: int) -> Result:
    console.rule(f"[bold]{database.name}")
    problems: list[str] = []
    warnings: list[str] = []
    log: list[str] = []
    with fresh(database) as url:
        seeded = seed(url, len(PLANS))
        customer = customer_id(PLANS.index(PLAN))
        engine = database_engine(url)
        try:
            ids = lookup_ids(engine, FEATURE, [customer])
            effective = entitlement(engine, ids.environment, customer, FEATURE)
            if effective.usage_limit is None or effective.has_unlimited_usage:
                raise SystemExit(f"{customer} has no limit on {FEATURE}")
            limit = effective.usage_limit
            console.print(
                f"  {customer} on {PLAN}: {FEATURE} limited to {limit:,} per "
                f"{effective.reset_period}, usage period {effective.usage_period_start} to "
                f"{effective.usage_period_end}"
            )
            race = Race(limit)
            cpu = Cpu()
            with serve_tollgate(url, log) as server:
                cpu.server = server
                target = Target(server.port, seeded.api_key, customer)
                check = f"/api/v1/customers/{customer}/entitlements/check?featureId={FEATURE}"
                status, body = run_async(warm(target, check))
                if status != 200:
                    raise SystemExit(f"warm-up check answered {status}: {body[:300]!r}")
                console.print("  warm-up: one entitlement check (the snapshot is cached)")
                cpu.start()
                run_async(run_race(target, race, consumers, refusals))
                cpu.stop(race.seconds)
                status, after = run_async(warm(target, check))
            _print_race(race, cpu, consumers)
            counted, records = _database_totals(engine, ids.customers[customer], ids.feature)
        finally:
            engine.dispose()
    problems += race.errors
    if race.granted != limit:
        problems.append(f"{race.granted:,} units granted; the limit is {limit:,}")
    expected = list(range(1, race.granted + 1))
    if sorted(race.granted_usages) != expected:
        repeated = [u for u, n in Counter(race.granted_usages).items() if n > 1]
        problems.append(
            f"the grants' currentUsage are not 1..{race.granted} each once (repeated: "
            f"{sorted(repeated)[:10]}, highest {max(race.granted_usages, default=0)})"
        )
    if counted != limit * SCALE or records != race.granted:
        problems.append(
            f"the database holds {counted / SCALE:,} units in the counter and {records:,} "
            f"usage_records rows; {race.granted:,} units were granted, the limit is {limit:,}"
        )
    console.print(
        f"  database: counter {counted / SCALE:,.0f} of a limit of {limit:,}, "
        f"{records:,} usage_records rows"
    )
    if status != 200 or b'"isGranted":false' not in after:
        warnings.append(
            f"after the race, the entitlement check answered {status}: {after[:300]!r} "
            "(expected isGranted false: the limit is used up)"
        )
    if race.busy_answers:
        warnings.append(
            f"{len(race.busy_answers)} answer(s) 503, retried with the same body (nothing "
            f"was stored, the answer says); the first: {race.busy_answers[0]}"
        )
    bad_lines = server_problems(log)
    if bad_lines:
        problems.append(f"the server logged {len(bad_lines)} error line(s)")
    elif log:
        warnings.append(f"the server logged {len(log)} warning line(s)")
    if log:
        print_log_tail(log)
    for warning in warnings:
        console.print(f"  [yellow]warning:[/] {escape(warning)}")
    for problem in problems:
        console.print(f"  [red]problem:[/] {escape(problem)}")
    verdict = "[green]exact[/]" if not problems else "[red]FAILED[/]"
    console.print(f"  {verdict}: {race.granted:,} granted for a limit of {limit:,}")
    return Result(database.name, race, problems)


def _database_totals(engine: Any, customer_pk: int, feature_pk: int) -> tuple[int, int]:
    with engine.connect() as connection:
        counted = connection.scalar(
            select(func.coalesce(func.sum(UsageCounter.value), 0)).where(
                UsageCounter.customer_id == customer_pk, UsageCounter.feature_id == feature_pk
            )
        )
        records = connection.scalar(
            select(func.count()).where(
                UsageRecord.customer_id == customer_pk, UsageRecord.feature_id == feature_pk
            )
        )
    return int(counted or 0), int(records or 0)


def _print_race(race: Race, cpu: Cpu, consumers: int) -> None:
    console.print(
        f"  [bold]{race.granted:,} granted, {race.refused:,} refused[/] in {race.seconds:.2f} s: "
        f"{race.per_s:,.0f} consumes/s ({consumers} consumer{'s' * (consumers != 1)}; per "
        f"request p50 "
        f"{race.percentile_ms(0.5):.1f} ms, p99 {race.percentile_ms(0.99):.1f} ms, max "
        f"{race.percentile_ms(1.0):.1f} ms; statuses {dict(sorted(race.statuses.items()))})"
    )
    console.print(f"    {cpu.describe('database and others')}")


# -- main --------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Concurrent enforced usage reports racing for one limit."
    )
    add_database_arguments(parser)
    parser.add_argument("--consumers", type=int, default=64, help="concurrent connections")
    parser.add_argument(
        "--refusals", type=int, default=1, help="refusals after which a consumer stops"
    )
    args = parser.parse_args(argv)
    if args.consumers < 1 or args.refusals < 1:
        parser.error("--consumers and --refusals must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))
    args = _parse(argv)
    results = [
        run_database(database, args.consumers, args.refusals) for database in database_choices(args)
    ]
    console.rule("[bold]summary")
    for result in results:
        verdict = "exact" if not result.problems else "FAILED"
        console.print(
            f"  {result.database}: {result.race.granted:,} granted (limit "
            f"{result.race.limit:,}), {result.race.refused:,} refused, "
            f"{result.race.per_s:,.0f} consumes/s: {verdict}"
        )
    final = {
        result.database: {
            "granted": result.race.granted,
            "refused": result.race.refused,
            "per_s": round(result.race.per_s, 1),
        }
        for result in results
    }
    console.file.flush()
    print(json.dumps(final), flush=True)
    if any(result.problems for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

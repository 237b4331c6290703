"""How fast does Tollgate answer a returning user's Auth0 login, next to a plain check?

    .venv/bin/python bench/auth0_logins.py                        # SQLite
    .venv/bin/python bench/auth0_logins.py --database postgres    # or both

For each database: seed a fresh one (the demo catalog, as the other benchmarks seed it),
make the active-users feature as `tollgate auth0 setup --demo` does (feature-mau: 1,000 a
month on plan-pro), and serve Tollgate as `check_throughput.py` does. Then the first login
of `--organizations` (default 50) organizations with `--users` (default 20) users each
(B2B: each organization is provisioned on plan-pro at its first login), not measured.

Measured, each for a 2 s warm-up and then `--seconds` (default 10), with `--concurrency`
(default 1: the goal is one login's latency; SQLite takes one writer at a time, so more
connections only queue) keep-alive connections in a closed loop:

1. **Returning users' logins**: `POST /api/v1/integrations/auth0/logins` of a random known
   user of a random organization, a new idempotency key each (a new login), with
   enforcement: one transaction that finds the customer, counts the user (already counted
   this month: nothing changes) and stores the answer.
2. **The baseline**: `GET /api/v1/customers/{org}/entitlements/check?featureId=feature-mau`
   of a random organization, the plain check the same server answers from memory.

Goal: a login's p99 <= 10 ms. It prints both and the last line is one JSON object:

    {"logins_per_s": .., "p50_ms": .., "p99_ms": .., "checks_per_s": .., "check_p99_ms": ..,
     "ratio": ..}

where ratio = logins_per_s / checks_per_s (of the last database run). Every answer must
be 200 ALLOW with the user already counted, or the run fails.
"""

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from check_throughput import ENVIRONMENT, seed
from rich.markup import escape
from usage_common import (
    HOST,
    Cpu,
    Database,
    HttpConnection,
    add_database_arguments,
    console,
    database_choices,
    fresh,
    get_request,
    percentile_ms,
    post_request,
    print_log_tail,
    progress,
    run_async,
    serve_tollgate,
    server_problems,
)

from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments.service import ensure_environment
from tollgate.identity import setup
from tollgate.kit.clock import SystemClock

LOGINS = "/api/v1/integrations/auth0/logins"
FEATURE = "feature-mau"
WARMUP_SECONDS = 2.0


@dataclass
class Phase:
    """One closed-loop measurement: latencies of answers finished inside the window."""

    measure_from: float
    stop_at: float
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.stop_at - self.measure_from

    def per_s(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, fraction: float) -> float:
        return percentile_ms(self.latencies, fraction)


@dataclass(frozen=True)
class Target:
    port: int
    api_key: str
    organizations: int
    users: int

    def login(self, organization: int, user: int, key: str) -> bytes:
        body = {
            "user": {"id": f"auth0|user-{organization}-{user}", "name": f"User {user}"},
            "organization": {"id": f"org_{organization:04d}", "name": f"Org {organization}"},
            "mode": "B2B",
            "initialPlans": {"organization": "plan-pro"},
            "featureId": FEATURE,
            "eventName": "auth0-login",
            "idempotencyKey": key,
            "enforceLimit": True,
        }
        return post_request(HOST, self.port, LOGINS, self.api_key, orjson.dumps(body))

    def check(self, organization: int) -> bytes:
        path = f"/api/v1/customers/org_{organization:04d}/entitlements/check?featureId={FEATURE}"
        return get_request(HOST, self.port, path, self.api_key)


def returning_logins(target: Target, rng: random.Random) -> Callable[[], bytes]:
    counter = iter(range(10**12))

    def next_request() -> bytes:
        organization = rng.randrange(target.organizations)
        user = rng.randrange(target.users)
        return target.login(organization, user, f"bench-{next(counter)}")

    return next_request


def checks(target: Target, rng: random.Random) -> Callable[[], bytes]:
    return lambda: target.check(rng.randrange(target.organizations))


def is_returning_allow(status: int, body: bytes) -> bool:
    return status == 200 and b'"decision":"ALLOW"' in body and b'"isNewActiveUser":false' in body


def is_check(status: int, body: bytes) -> bool:
    return status == 200 and b'"isGranted":true' in body


async def closed_loop(
    target: Target,
    next_request: Callable[[], bytes],
    accept: Callable[[int, bytes], bool],
    concurrency: int,
    seconds: float,
) -> Phase:
    start = time.perf_counter()
    phase = Phase(measure_from=start + WARMUP_SECONDS, stop_at=start + WARMUP_SECONDS + seconds)

    async def connection() -> None:
        http = HttpConnection(HOST, target.port)
        await http.open()
        try:
            while (began := time.perf_counter()) < phase.stop_at:
                status, body = await http.send(next_request())
                finished = time.perf_counter()
                if not accept(status, body):
                    phase.problems.append(f"{status}: {body[:300]!r}")
                    return
                if phase.measure_from <= began and finished <= phase.stop_at:
                    phase.latencies.append(finished - began)
        finally:
            await http.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return phase


async def first_logins(target: Target, concurrency: int) -> list[str]:
    """Every user's first login, organizations in turn; problems found (none expected)."""
    pending = [(o, u) for u in range(target.users) for o in range(target.organizations)]
    problems: list[str] = []
    with progress() as bar:
        task = bar.add_task("first logins", total=len(pending))

        async def connection() -> None:
            http = HttpConnection(HOST, target.port)
            await http.open()
            try:
                while pending and not problems:
                    organization, user = pending.pop()
                    request = target.login(organization, user, f"first-{organization}-{user}")
                    status, body = await http.send(request)
                    if status != 200 or b'"decision":"ALLOW"' not in body:
                        problems.append(f"{status}: {body[:300]!r}")
                    bar.advance(task)
            finally:
                await http.close()

        await asyncio.gather(*(connection() for _ in range(concurrency)))
    return problems


@dataclass
class Result:
    database: str
    logins: Phase
    checks: Phase
    problems: list[str]


def run_database(database: Database, args: argparse.Namespace) -> Result:
    console.rule(f"[bold]{database.name}")
    log: list[str] = []
    with fresh(database) as url:
        seeded = seed(url, 3)
        engine = make_engine(url)
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                environment = ensure_environment(session, name=ENVIRONMENT)
                setup.set_up(
                    session,
                    environment_id=environment.id,
                    feature_ref=FEATURE,
                    event_name="auth0-login",
                    demo=True,
                    now=SystemClock().now(),
                )
        finally:
            engine.dispose()
        with serve_tollgate(url, log) as server:
            target = Target(server.port, seeded.api_key, args.organizations, args.users)
            problems = run_async(first_logins(target, args.concurrency))
            rng = random.Random(0)
            cpu = Cpu(server)
            cpu.start()
            logins = run_async(
                closed_loop(
                    target,
                    returning_logins(target, rng),
                    is_returning_allow,
                    args.concurrency,
                    args.seconds,
                )
            )
            cpu.stop(logins.seconds + WARMUP_SECONDS)
            console.print(f"  logins: {cpu.describe('others')}")
            baseline = run_async(
                closed_loop(target, checks(target, rng), is_check, args.concurrency, args.seconds)
            )
    problems += logins.problems[:3] + baseline.problems[:3]
    bad_lines = server_problems(log)
    if bad_lines:
        problems.append(f"the server logged {len(bad_lines)} error line(s)")
        print_log_tail(log)
    for name, phase in (("returning logins", logins), ("entitlement checks", baseline)):
        console.print(
            f"  {name}: {phase.per_s():,.0f}/s, p50 {phase.percentile_ms(0.5):.2f} ms, "
            f"p90 {phase.percentile_ms(0.9):.2f} ms, p99 {phase.percentile_ms(0.99):.2f} ms, "
            f"max {phase.percentile_ms(1.0):.2f} ms ({len(phase.latencies):,} answers)"
        )
    for problem in problems:
        console.print(f"  [red]problem:[/] {escape(problem)}")
    return Result(database.name, logins, baseline, problems)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Returning users' Auth0 logins per second.")
    add_database_arguments(parser)
    parser.set_defaults(database="sqlite")
    parser.add_argument("--organizations", type=int, default=50)
    parser.add_argument("--users", type=int, default=20, help="users per organization")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if min(args.organizations, args.users, args.concurrency) < 1 or args.seconds <= 0:
        parser.error("counts and --seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))
    args = _parse(argv)
    results = [run_database(database, args) for database in database_choices(args)]
    last = results[-1]
    p99 = last.logins.percentile_ms(0.99)
    verdict = "met" if p99 <= 10 else "NOT met"
    console.print(f"goal p99 <= 10 ms: {verdict} ({last.database}: {p99:.2f} ms)")
    final = {
        "logins_per_s": round(last.logins.per_s(), 1),
        "p50_ms": round(last.logins.percentile_ms(0.5), 2),
        "p99_ms": round(p99, 2),
        "checks_per_s": round(last.checks.per_s(), 1),
        "check_p99_ms": round(last.checks.percentile_ms(0.99), 2),
        "ratio": round(last.logins.per_s() / last.checks.per_s(), 3),
    }
    console.file.flush()
    print(json.dumps(final), flush=True)
    if any(result.problems for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

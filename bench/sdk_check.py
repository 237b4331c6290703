"""How fast does the SDK answer a check from its cache, next to a plain dict lookup?

    .venv/bin/python bench/sdk_check.py                 # 1,000 customers, ~35 s
    .venv/bin/python bench/sdk_check.py --database-url postgresql://postgres@127.0.0.1/test

With N customers seeded by `check_throughput.py`'s seeder (the demo catalog, a server key,
customers on plan-free, plan-pro and plan-enterprise in turn), it serves Tollgate as that
benchmark does (a uvicorn process of its own, so the server never takes this process's
GIL), creates a `tollgate_sdk.Tollgate`, waits until it is live and checks every customer
once (each first check loads the customer from the server; timed, not measured). Then, in
this one thread, three kinds of call are measured in interleaved rounds (so drift and noise
fall on all three alike), for `--seconds` each:

- boolean: `get_boolean_entitlement(customer, "feature-sso")`, a random customer per call
  (granted on plan-pro and plan-enterprise, denied on plan-free);
- metered: `get_metered_entitlement(customer, feature, requested_usage=r)`, a random
  customer, one of the three metered features and r in 1..5 per call;
- baseline: a function returning a frozen slots dataclass of three fields (feature, has
  access, reason) built from `cache[(customer_id, feature_id)]`, a dict of the same answers.

Each round runs, per kind, one batch of 10,000 calls timed as a whole (checks/s) and one of
2,000 calls each timed with `time.perf_counter_ns` (p50, p99; the timer's own cost is
printed). Every answer of the SDK must come from its cache and match the customer's plan.
The last line is one JSON object:

    {"boolean": {"checks_per_s": .., "p50_us": .., "p99_us": ..}, "metered": {...},
     "baseline": {...}, "boolean_ratio": .., "metered_ratio": .., "goals": {...}}

Goals (printed, not enforced), for boolean and metered each: >= 500,000 checks/s and
>= 0.2 of the baseline's rate.
"""

import argparse
import gc
import json
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from check_throughput import (
    HOST,
    NOISE_CORES,
    PLANS,
    console,
    customer_id,
    fresh_database,
    seed,
)
from sqlalchemy import make_url
from usage_common import Cpu, Server, print_log_tail, serve_tollgate, server_problems

from tollgate_sdk import AccessDeniedReason, Source, Tollgate

GOAL_PER_S = 500_000
GOAL_RATIO = 0.2
BOOLEAN_FEATURE = "feature-sso"  # the demo's one boolean feature
METERED_FEATURES = ("feature-seats", "feature-active-users", "feature-api-calls")
GRANTED_SSO = {"plan-free": False, "plan-pro": True, "plan-enterprise": True}
DRAWS = 100_000  # random calls drawn ahead of time, used in turn
THROUGHPUT_BATCH = 10_000  # calls timed as a whole
LATENCY_BATCH = 2_000  # calls timed one by one
WARMUP_SECONDS = 0.5
KINDS = ("boolean", "metered", "baseline")
T = TypeVar("T")


# -- the server and the SDK (shared with sdk_staleness.py) -------------------------------


@dataclass(frozen=True)
class Live:
    """A seeded Tollgate served in a process of its own, and an SDK client of it."""

    backend: str
    server: Server
    base_url: str
    api_key: str
    customers: int
    client: Tollgate


def plan_of(index: int) -> str:
    return PLANS[index % len(PLANS)]  # the seeder's order


@contextmanager
def live_sdk(database_url: str | None, customers: int) -> Iterator[Live]:
    """Seed a fresh database, serve Tollgate on it, and open a live `Tollgate` client; on
    the way out, close the client, stop the server and report any failure it logged."""
    with fresh_database(database_url) as url:
        backend = make_url(url).get_backend_name()
        seeded = seed(url, customers)
        console.print(f"  seeded {customers:,} customers on {backend} in {seeded.seconds:.1f} s")
        log: list[str] = []
        with serve_tollgate(url, log) as server:
            base_url = f"http://{HOST}:{server.port}"
            client = Tollgate(
                seeded.api_key, base_url=base_url, max_customers=max(10_000, customers)
            )
            try:
                if not client.wait_for_initialization(timeout=30):
                    raise SystemExit("the SDK did not load the features and go live in 30 s")
                yield Live(backend, server, base_url, seeded.api_key, customers, client)
            finally:
                client.close()
        problems = server_problems(log)
        if problems:
            print_log_tail(problems)
            raise SystemExit(f"the server logged {len(problems)} failure(s)")


def load_every_customer(live: Live) -> None:
    """First checks: each loads its customer from the server. Timed, and each answer must
    be the plan's."""
    started = time.perf_counter()
    for index in range(live.customers):
        answer = live.client.get_boolean_entitlement(customer_id(index), BOOLEAN_FEATURE)
        expect_sso(answer.has_access, answer.source, index, Source.SERVER)
    seconds = time.perf_counter() - started
    console.print(
        f"  first checks: {live.customers:,} customers loaded from the server in "
        f"{seconds:.2f} s ({live.customers / seconds:,.0f}/s, "
        f"{seconds / live.customers * 1e3:.2f} ms each); not measured"
    )


def expect_sso(has_access: bool, source: Source, index: int, wanted: Source) -> None:
    if source is not wanted or has_access != GRANTED_SSO[plan_of(index)]:
        raise SystemExit(
            f"{customer_id(index)} ({plan_of(index)}): {BOOLEAN_FEATURE} answered "
            f"has_access={has_access} from {source}; expected "
            f"{GRANTED_SSO[plan_of(index)]} from {wanted}"
        )


def percentile(ordered: Sequence[T], fraction: float) -> T:
    """Nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


# -- the baseline ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    feature_id: str
    has_access: bool
    access_denied_reason: str | None


def baseline_check(customer: str, feature: str) -> Answer:
    granted, reason = BASELINE_CACHE[(customer, feature)]
    return Answer(feature, granted, reason)


BASELINE_CACHE: dict[tuple[str, str], tuple[bool, str | None]] = {}


# -- measuring ---------------------------------------------------------------------------

Pair = tuple[str, str]
Triple = tuple[str, str, float]


@dataclass
class Measured:
    calls: int = 0  # in timed batches
    nanoseconds: int = 0
    samples: list[int] = field(default_factory=list)  # one call each, ns

    @property
    def per_s(self) -> float:
        return self.calls / self.nanoseconds * 1e9 if self.nanoseconds else 0.0

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples)
        return {
            "checks_per_s": round(self.per_s, 1),
            "mean_us": round(sum(ordered) / len(ordered) / 1e3, 3),
            "p50_us": round(percentile(ordered, 0.50) / 1e3, 3),
            "p90_us": round(percentile(ordered, 0.90) / 1e3, 3),
            "p99_us": round(percentile(ordered, 0.99) / 1e3, 3),
            "p999_us": round(percentile(ordered, 0.999) / 1e3, 3),
            "max_us": round(ordered[-1] / 1e3, 3),
            "calls": self.calls + len(self.samples),
        }


# One function per loop shape, so the loop around each call costs the same for every kind
# and nothing (no lambda, no getattr) stands between the loop and the call measured.


def _pairs_batch(check: Callable[[str, str], object], pairs: Sequence[Pair]) -> int:
    clock = time.perf_counter_ns
    started = clock()
    for customer, feature in pairs:
        check(customer, feature)
    return clock() - started


def _pairs_each(check: Callable[[str, str], object], pairs: Sequence[Pair], out: list[int]) -> None:
    clock = time.perf_counter_ns
    add = out.append
    for customer, feature in pairs:
        started = clock()
        check(customer, feature)
        add(clock() - started)


def _metered_batch(client: Tollgate, triples: Sequence[Triple]) -> int:
    check = client.get_metered_entitlement
    clock = time.perf_counter_ns
    started = clock()
    for customer, feature, amount in triples:
        check(customer, feature, requested_usage=amount)
    return clock() - started


def _metered_each(client: Tollgate, triples: Sequence[Triple], out: list[int]) -> None:
    check = client.get_metered_entitlement
    clock = time.perf_counter_ns
    add = out.append
    for customer, feature, amount in triples:
        started = clock()
        check(customer, feature, requested_usage=amount)
        add(clock() - started)


@dataclass(frozen=True)
class Workload:
    pairs: list[Pair]  # boolean and baseline
    triples: list[Triple]  # metered


def draw(customers: int, rng: random.Random) -> Workload:
    ids = [customer_id(index) for index in range(customers)]
    pairs = [(rng.choice(ids), BOOLEAN_FEATURE) for _ in range(DRAWS)]
    triples = [
        (rng.choice(ids), rng.choice(METERED_FEATURES), float(rng.randint(1, 5)))
        for _ in range(DRAWS)
    ]
    return Workload(pairs, triples)


def fill_baseline(client: Tollgate, customers: int) -> None:
    """The baseline's dict holds the SDK's own boolean answers, every customer x feature."""
    BASELINE_CACHE.clear()
    for index in range(customers):
        for feature in (BOOLEAN_FEATURE, *METERED_FEATURES):
            answer = client.get_boolean_entitlement(customer_id(index), feature)
            reason = answer.access_denied_reason
            BASELINE_CACHE[(customer_id(index), feature)] = (answer.has_access, reason)


def measure(client: Tollgate, work: Workload, seconds: float) -> dict[str, Measured]:
    """Interleaved rounds until each kind has had `seconds` (after a warm-up): per kind,
    one batch timed whole and one batch timed call by call, in a rotating order."""
    boolean = client.get_boolean_entitlement
    results = {kind: Measured() for kind in KINDS}
    spent = dict.fromkeys(KINDS, 0)  # ns, both batches, warm-up excluded
    cursor = 0
    rounds = 0
    warmup_until = time.perf_counter() + WARMUP_SECONDS
    gc.collect()
    while min(spent.values()) < seconds * 1e9:
        warm = time.perf_counter() < warmup_until
        span = slice(cursor, cursor + THROUGHPUT_BATCH)
        each = slice(cursor + THROUGHPUT_BATCH, cursor + THROUGHPUT_BATCH + LATENCY_BATCH)
        cursor = (cursor + THROUGHPUT_BATCH + LATENCY_BATCH) % (
            DRAWS - THROUGHPUT_BATCH - LATENCY_BATCH
        )
        order = KINDS[rounds % 3 :] + KINDS[: rounds % 3]
        rounds += 1
        for kind in order:
            result = results[kind]
            samples: list[int] = []
            began = time.perf_counter_ns()
            if kind == "boolean":
                elapsed = _pairs_batch(boolean, work.pairs[span])
                _pairs_each(boolean, work.pairs[each], samples)
            elif kind == "metered":
                elapsed = _metered_batch(client, work.triples[span])
                _metered_each(client, work.triples[each], samples)
            else:
                elapsed = _pairs_batch(baseline_check, work.pairs[span])
                _pairs_each(baseline_check, work.pairs[each], samples)
            if warm:
                continue
            spent[kind] += time.perf_counter_ns() - began
            result.calls += THROUGHPUT_BATCH
            result.nanoseconds += elapsed
            result.samples.extend(samples)
    return results


def timer_cost() -> float:
    """The median of two back-to-back perf_counter_ns calls, in µs: what each per-call
    sample includes beyond the call."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        started = clock()
        samples.append(clock() - started)
    samples.sort()
    return percentile(samples, 0.5) / 1e3


def verify_cached(client: Tollgate, customers: int) -> tuple[int, int]:
    """After measuring: every answer still from the cache and still the plan's; the counts
    of sso granted and denied, and metered answers that came from elsewhere (must be 0)."""
    granted = 0
    for index in range(customers):
        answer = client.get_boolean_entitlement(customer_id(index), BOOLEAN_FEATURE)
        expect_sso(answer.has_access, answer.source, index, Source.CACHE)
        granted += answer.has_access
        for feature in METERED_FEATURES:
            metered = client.get_metered_entitlement(customer_id(index), feature, requested_usage=1)
            unexpected = metered.source is not Source.CACHE or (
                not metered.has_access
                and metered.access_denied_reason
                not in (
                    AccessDeniedReason.NO_FEATURE_ENTITLEMENT_IN_SUBSCRIPTION,
                    AccessDeniedReason.REQUESTED_USAGE_EXCEEDING_LIMIT,
                )
            )
            if unexpected:
                raise SystemExit(f"{customer_id(index)} {feature}: unexpected answer {metered}")
    return granted, customers - granted


# -- output ------------------------------------------------------------------------------


def print_table(summaries: dict[str, dict[str, float]], ratios: dict[str, float]) -> None:
    console.print(
        f"  {'':<10}{'checks/s':>12}{'mean µs':>9}{'p50 µs':>9}{'p90 µs':>9}{'p99 µs':>9}"
        f"{'p99.9 µs':>10}{'max µs':>10}{'calls':>12}{'÷ baseline':>12}"
    )
    for kind in KINDS:
        s = summaries[kind]
        ratio = f"{ratios[kind]:.3f}" if kind in ratios else ""
        console.print(
            f"  {kind:<10}{s['checks_per_s']:>12,.0f}{s['mean_us']:>9.3f}{s['p50_us']:>9.3f}"
            f"{s['p90_us']:>9.3f}{s['p99_us']:>9.3f}{s['p999_us']:>10.3f}{s['max_us']:>10.1f}"
            f"{s['calls']:>12,.0f}{ratio:>12}"
        )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Cached checks per second of the Python SDK, next to a plain dict lookup."
    )
    parser.add_argument("--customers", type=int, default=1_000, help="default 1,000")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="measured seconds per kind (default 3)"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL URL to run on (a schema of its own, dropped after) instead of SQLite",
    )
    parser.add_argument("--seed", type=int, default=1, help="for the random calls")
    args = parser.parse_args(argv)
    if args.customers < len(PLANS):
        parser.error(f"--customers must be at least {len(PLANS)}, one per plan")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))
    args = _parse(argv)
    console.print(
        f"Python {sys.version.split()[0]}, {sys.platform}; one thread measures, the server "
        "is a process of its own"
    )
    with live_sdk(args.database_url, args.customers) as live:
        load_every_customer(live)
        fill_baseline(live.client, live.customers)
        work = draw(live.customers, random.Random(args.seed))
        console.print(
            f"  measuring: {WARMUP_SECONDS} s warm-up, then {args.seconds:g} s per kind in "
            f"interleaved rounds ({THROUGHPUT_BATCH:,} calls timed whole + {LATENCY_BATCH:,} "
            "timed each, per kind per round)"
        )
        cpu = Cpu(server=live.server)
        cpu.start()
        started = time.perf_counter()
        results = measure(live.client, work, args.seconds)
        cpu.stop(time.perf_counter() - started)
        granted, denied = verify_cached(live.client, live.customers)
        backend = live.backend
    overhead = timer_cost()
    summaries = {kind: results[kind].summary() for kind in KINDS}
    base = summaries["baseline"]["checks_per_s"]
    ratios = {
        kind: summaries[kind]["checks_per_s"] / base if base else 0.0
        for kind in ("boolean", "metered")
    }
    console.rule(f"[bold]{args.customers:,} customers, {backend}")
    print_table(summaries, ratios)
    console.print(
        f"  every answer from the cache; {BOOLEAN_FEATURE} granted {granted:,} / denied "
        f"{denied:,}; each per-call sample includes the timer's own ~{overhead:.3f} µs"
    )
    console.print(f"  {cpu.describe('other processes')}")
    if cpu.other_cores > NOISE_CORES:
        console.print(
            f"  [yellow]warning:[/] other processes kept {cpu.other_cores:.1f} cores busy "
            "meanwhile; these figures understate what this machine can do"
        )
    goals: dict[str, bool] = {}
    for kind in ("boolean", "metered"):
        rate, ratio = summaries[kind]["checks_per_s"], ratios[kind]
        goals[f"{kind}_rate"] = rate >= GOAL_PER_S
        goals[f"{kind}_ratio"] = ratio >= GOAL_RATIO
        console.print(
            f"  goal {kind}: {rate:,.0f} checks/s >= {GOAL_PER_S:,} "
            f"{'[green]met[/]' if goals[f'{kind}_rate'] else '[red]NOT met[/]'}; "
            f"{ratio:.3f} of the baseline >= {GOAL_RATIO} "
            f"{'[green]met[/]' if goals[f'{kind}_ratio'] else '[red]NOT met[/]'}"
        )
    final: dict[str, Any] = {
        "database": backend,
        "customers": args.customers,
        **{
            kind: {key: summaries[kind][key] for key in ("checks_per_s", "p50_us", "p99_us")}
            for kind in KINDS
        },
        "boolean_ratio": round(ratios["boolean"], 3),
        "metered_ratio": round(ratios["metered"], 3),
        "timer_us": round(overhead, 3),
        "goals": goals,
    }
    console.file.flush()
    print(json.dumps(final), flush=True)


if __name__ == "__main__":
    main()

"""How soon does the SDK's cached answer follow a change made through the API?

    .venv/bin/python bench/sdk_staleness.py                 # 100 changes, ~30 s
    .venv/bin/python bench/sdk_staleness.py --database-url postgresql://postgres@127.0.0.1/test

Tollgate is seeded and served, and a `tollgate_sdk.Tollgate` opened and made live, as in
`sdk_check.py`. Every plan-free customer is checked once (so each is cached). Then, for
`--changes` changes (default 100), one after another, over the plan-free customers in
turn: the customer's plan flips through `POST /api/v1/subscriptions` from plan-free to
plan-pro (an upgrade, applied at once) or back (`scheduleStrategy: IMMEDIATE`, so the
downgrade is not left for the end of the period), which grants or takes away
`feature-sso`. The request goes through a plain `httpx.Client`, not the SDK, so only the
stream can tell the SDK. As soon as the API answers, this thread asks the SDK
`get_boolean_entitlement(customer, "feature-sso")` in a loop (`--poll-sleep` between
asks, default 0: a busy loop that holds the GIL between the interpreter's forced
switches, like a busy application) until the answer flips; the delay is counted from the
API's answer and, for context, from when the request was sent. Each answer must come
from the cache; a change not seen within `--timeout` seconds is missed. Changes are
`--gap` apart (default 0.05 s).

For scale, the same run times `--rtt-requests` plain `GET
/api/v1/customers/{id}/entitlements/check?featureId=feature-sso` on one keep-alive
connection (after a warm-up): what asking the server on every check would cost.

It prints p50, p90, p99 and max of the delays (goal: p99 <= 500 ms from the API's
answer), the API calls' own time and the ratios to the round trip. The last line is one
JSON object:

    {"from_return_ms": {"p50": .., "p90": .., "p99": .., "max": ..}, "from_send_ms": {...},
     "check_rtt_ms": {"p50": .., "p99": ..}, "p50_vs_rtt": .., "p99_vs_rtt": .., ...}

The exit status is 1 when a change was missed.
"""

import argparse
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from check_throughput import PLANS, check_path, console, customer_id
from sdk_check import BOOLEAN_FEATURE, Live, live_sdk, percentile, plan_of

from tollgate_sdk import Source

GOAL_P99_MS = 500.0
FROM, TO = "plan-free", "plan-pro"
RTT_WARMUP = 50


@dataclass
class Flips:
    from_return: list[float] = field(default_factory=list)  # ms
    from_send: list[float] = field(default_factory=list)
    api_calls: list[float] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)  # checks asked until the flip
    missed: list[str] = field(default_factory=list)
    immediate: int = 0  # flipped already at the first check after the API answered


def stats(values: list[float], *points: float) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    named = {f"p{round(point * 100)}": round(percentile(ordered, point), 3) for point in points}
    return {**named, "max": round(ordered[-1], 3)}


def flip(live: Live, http: httpx.Client, args: argparse.Namespace) -> Flips:
    check = live.client.get_boolean_entitlement
    frees = [index for index in range(live.customers) if plan_of(index) == FROM]
    plans = {customer_id(index): FROM for index in frees}
    for customer in plans:
        check(customer, BOOLEAN_FEATURE)  # loads it from the server
        answer = check(customer, BOOLEAN_FEATURE)
        if answer.has_access or answer.source is not Source.CACHE:
            raise SystemExit(f"{customer} on {FROM} answered {answer} before any change")
    flips = Flips()
    clock = time.perf_counter
    for change in range(args.changes):
        customer = customer_id(frees[change % len(frees)])
        plan = TO if plans[customer] == FROM else FROM
        wanted = plan == TO
        body = {"customerId": customer, "planId": plan, "scheduleStrategy": "IMMEDIATE"}
        sent = clock()
        response = http.post("/api/v1/subscriptions", json=body)
        returned = clock()
        if response.status_code != 200 or response.json()["data"]["isScheduled"]:
            raise SystemExit(f"{customer} -> {plan}: {response.status_code} {response.text}")
        plans[customer] = plan
        deadline = returned + args.timeout
        polls = 0
        while True:
            answer = check(customer, BOOLEAN_FEATURE)
            now = clock()
            polls += 1
            if answer.has_access is wanted:
                break
            if now > deadline:
                flips.missed.append(f"{customer} -> {plan}")
                break
            if args.poll_sleep:
                time.sleep(args.poll_sleep)
        if answer.has_access is wanted:
            if answer.source is not Source.CACHE:
                raise SystemExit(f"{customer} -> {plan}: answered from {answer.source}")
            flips.from_return.append((now - returned) * 1e3)
            flips.from_send.append((now - sent) * 1e3)
            flips.immediate += polls == 1
        flips.api_calls.append((returned - sent) * 1e3)
        flips.polls.append(polls)
        if not live.client.is_live:
            console.print(f"  [yellow]note:[/] the SDK's stream was down after change {change}")
        time.sleep(args.gap)
    return flips


def round_trips(http: httpx.Client, customer: str, count: int) -> list[float]:
    path = check_path(customer, BOOLEAN_FEATURE)
    clock = time.perf_counter
    times = []
    for index in range(RTT_WARMUP + count):
        started = clock()
        response = http.get(path)
        elapsed = clock() - started
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.text}")
        if index >= RTT_WARMUP:
            times.append(elapsed * 1e3)
    return times


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="How soon the SDK's cached answers follow changes made through the API."
    )
    parser.add_argument("--changes", type=int, default=100, help="default 100")
    parser.add_argument(
        "--customers",
        type=int,
        default=30,
        help="customers seeded (a third on plan-free take turns being changed; default 30)",
    )
    parser.add_argument(
        "--poll-sleep",
        type=float,
        default=0.0,
        help="seconds slept between two checks while waiting (default 0: a busy loop)",
    )
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between changes")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds after which a change is missed"
    )
    parser.add_argument(
        "--rtt-requests", type=int, default=500, help="plain checks timed for the baseline"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL URL to run on (a schema of its own, dropped after) instead of SQLite",
    )
    args = parser.parse_args(argv)
    if args.customers < len(PLANS):
        parser.error(f"--customers must be at least {len(PLANS)}, one per plan")
    if args.changes < 1 or args.rtt_requests < 1:
        parser.error("--changes and --rtt-requests must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))
    args = _parse(argv)
    with live_sdk(args.database_url, args.customers) as live:
        headers = {"X-API-KEY": live.api_key}
        with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as http:
            waiting = "a busy loop" if not args.poll_sleep else f"{args.poll_sleep * 1e6:g} µs"
            console.print(
                f"  {args.changes} changes, {FROM} <-> {TO}, {args.gap * 1e3:g} ms apart; "
                f"checks {waiting} apart until the answer flips"
            )
            flips = flip(live, http, args)
            rtt = round_trips(http, customer_id(1), args.rtt_requests)
        backend = live.backend
    console.rule(f"[bold]{args.changes} changes, {backend}")
    from_return = stats(flips.from_return, 0.5, 0.9, 0.99)
    from_send = stats(flips.from_send, 0.5, 0.9, 0.99)
    api = stats(flips.api_calls, 0.5, 0.99)
    check_rtt = stats(rtt, 0.5, 0.99)
    seen = len(flips.from_return)

    def line(name: str, figures: dict[str, float]) -> None:
        console.print(
            f"  {name:<36}"
            + "  ".join(f"{key} {value:8.2f}" for key, value in figures.items())
            + " ms"
        )

    if seen:
        line("SDK answer flipped, from API reply", from_return)
        line("  ... from request sent", from_send)
    line("API call (POST subscription)", api)
    line(f"plain check round trip ({len(rtt)})", check_rtt)
    p50_ratio = from_return["p50"] / check_rtt["p50"] if seen else float("nan")
    p99_ratio = from_return["p99"] / check_rtt["p99"] if seen else float("nan")
    console.print(
        f"  staleness / round trip: p50 x{p50_ratio:.1f}, p99 x{p99_ratio:.1f}; flipped "
        f"already at the first check {flips.immediate} of {seen}; checks per change: median "
        f"{sorted(flips.polls)[len(flips.polls) // 2]:,}"
    )
    met = seen == args.changes and from_return["p99"] <= GOAL_P99_MS
    verdict = "[green]met[/]" if met else "[red]NOT met[/]"
    p99 = f"{from_return['p99']:.2f} ms" if seen else "none seen"
    console.print(f"  goal: p99 {p99} <= {GOAL_P99_MS:.0f} ms {verdict}")
    for missed in flips.missed:
        console.print(f"  [red]missed:[/] {missed} not seen within {args.timeout:g} s")
    final: dict[str, Any] = {
        "database": backend,
        "changes": args.changes,
        "seen": seen,
        "missed": len(flips.missed),
        "poll_sleep_s": args.poll_sleep,
        "from_return_ms": from_return,
        "from_send_ms": from_send,
        "api_call_ms": api,
        "check_rtt_ms": check_rtt,
        "p50_vs_rtt": round(p50_ratio, 2),
        "p99_vs_rtt": round(p99_ratio, 2),
        "goal_met": met,
    }
    console.file.flush()
    print(json.dumps(final), flush=True)
    if flips.missed:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""How fast does `tollgate replica` answer `POST /check-access`, next to a bare Starlette
endpoint?

    .venv/bin/python bench/replica_check.py                 # 10,000 customers, 10 s each
    .venv/bin/python bench/replica_check.py --database-url postgresql://postgres@127.0.0.1/test

The replica's own database is seeded with N customers (`customer-000000`...), each holding
what the demo catalog's plan-free, plan-pro or plan-enterprise gives, in turn, written by
the replica's own store as a resync would write them. The replica app is served as
`tollgate replica serve` serves it (uvicorn, httptools, one worker, log level warning),
every customer is checked once (reading it into memory, not measured), then the load
generator (`loadgen.py --check-access`: 32 keep-alive connections, a random customer and
feature per request, denials answered 403) runs a 2 s warm-up and `--seconds` measured. The
baseline is a bare Starlette POST route answering one captured replica answer, served and
loaded the same way. The last line is one JSON object:

    {"replica_rps": .., "baseline_rps": .., "ratio": .., "p50_ms": .., "p99_ms": ..}

Goals: ratio >= 0.6 and p99 <= 5 ms.
"""

import argparse
import json
import os
import signal
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from check_throughput import (
    HOST,
    WARMUP_SECONDS,
    Options,
    console,
    fresh_database,
    measure,
    serve,
    warm_every_customer,
)
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from tollgate.catalog import demo
from tollgate.replica import store
from tollgate.replica.events import (
    CustomerRecord,
    EntitlementRecord,
    FeatureRecord,
    Record,
    ScopeRecord,
    SubscriptionRecord,
    UsageRecord,
)
from tollgate.replica.service import Replica, ReplicaSettings

FEATURES = tuple(feature["id"] for feature in demo.FEATURES)
# A granted, metered check: the answer the baseline returns.
SAMPLE = {"customerId": "customer-000001", "featureId": "feature-api-calls"}
REPLICA_SERVER = ("servers:replica_app", "--http", "httptools")
BASELINE_SERVER = ("servers:replica_baseline_app", "--http", "httptools")
STATUSES = frozenset({"200", "403"})  # granted, denied
BATCH = 1_000
START = datetime(2026, 11, 1, tzinfo=UTC)


def _grants() -> dict[str, list[EntitlementRecord]]:
    """What each demo plan holds, as the replica stores it (limits as the catalog says)."""
    by_plan: dict[str, list[EntitlementRecord]] = {}
    plans = {plan["id"]: grants for plan, grants in demo.PLANS}
    for plan_id, grants in plans.items():
        held = {g["id"]: g for g in plans["plan-free"]} if plan_id != "plan-free" else {}
        held.update({g["id"]: g for g in grants})
        by_plan[plan_id] = [_entitlement(g) for g in held.values()]
    return by_plan


def _entitlement(grant: dict[str, Any]) -> EntitlementRecord:
    monthly = grant.get("resetPeriod") == "MONTH"
    return EntitlementRecord(
        feature_id=grant["id"],
        is_granted=True,
        usage_limit=grant.get("usageLimit"),
        has_unlimited_usage=bool(grant.get("hasUnlimitedUsage")),
        has_soft_limit=False,
        enum_values=None,
        reset_period="MONTH" if monthly else None,
        usage_period_anchor=START if monthly else None,
        usage_period_start=START if monthly else None,
        usage_period_end=START + timedelta(days=3650) if monthly else None,
        valid_until=None,
        updated_at=START,
    )


def seed(database_url: str, customers: int) -> float:
    began = time.perf_counter()
    replica = Replica(ReplicaSettings(database_url=database_url))
    plans = _grants()
    plan_ids = list(plans)
    features = [
        FeatureRecord(
            f["id"],
            f["displayName"],
            f["featureType"],
            f.get("meterType", "None"),
            "ACTIVE",
            None,
            None,
        )
        for f in demo.FEATURES
    ]
    at = datetime.now(UTC)
    columns = (TextColumn("seed"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("customers", total=customers)
            with replica.sessions.begin() as session:
                for feature in features:
                    store.apply_record(session, feature, at=at)
            for start in range(0, customers, BATCH):
                with replica.sessions.begin() as session:
                    for index in range(start, min(customers, start + BATCH)):
                        _customer(session, index, plan_ids[index % 3], plans, at)
                bar.update(task, completed=min(customers, start + BATCH))
    finally:
        replica.stop()
    return time.perf_counter() - began


def _customer(
    session: Any, index: int, plan_id: str, plans: dict[str, list[EntitlementRecord]], at: datetime
) -> None:
    customer_id = f"customer-{index:06d}"
    records: list[Record] = [
        CustomerRecord(customer_id, f"Customer {index}", None, None, None, False),
        SubscriptionRecord(
            f"sub-{index:06d}",
            customer_id,
            "",
            "ACTIVE",
            plan_id,
            plan_id,
            None,
            "MONTHLY",
            START,
            None,
            None,
            None,
            START,
            START + timedelta(days=30),
            [],
            None,
        ),
        ScopeRecord(
            customer_id,
            "",
            plans[plan_id],
            [],
            [
                UsageRecord(
                    customer_id,
                    "",
                    "feature-api-calls",
                    index % 50,
                    START,
                    START + timedelta(days=3650),
                )
            ],
        ),
    ]
    for record in records:
        store.apply_record(session, record, at=at)


def _post(port: int, body: dict[str, Any]) -> bytes:
    request = urllib.request.Request(
        f"http://{HOST}:{port}/check-access",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer: bytes = reply.read()
        return answer


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))
    parser = argparse.ArgumentParser(description="/check-access throughput of the replica")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", help="PostgreSQL (a schema of its own) instead of SQLite")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, load on CPU 1")
    args = parser.parse_args(argv)
    pin = args.pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
    options = Options(
        args.seconds,
        args.concurrency,
        args.database_url,
        pin,
        loadgen_flags=("--check-access",),
        features=FEATURES,
        statuses=STATUSES,
    )
    with fresh_database(args.database_url) as url:
        took = seed(url, args.customers)
        console.print(f"  seeded {args.customers:,} customers in {took:.1f} s")
        env = {"TOLLGATE_REPLICA_DATABASE_URL": url}
        with serve("replica", REPLICA_SERVER, env, "/healthz", options) as server:
            warm_every_customer(server, api_key="", customers=args.customers, options=options)
            body = _post(server.port, SAMPLE)
            console.print(
                f"  measuring: {WARMUP_SECONDS:.0f} s warm-up (not measured), then "
                f"{options.seconds:.0f} s, {options.concurrency} keep-alive connections"
            )
            replica = measure(server, api_key="", customers=args.customers, options=options)
    with serve(
        "baseline",
        BASELINE_SERVER,
        {"TOLLGATE_BENCH_BASELINE_BODY": body.decode()},
        "/healthz",
        options,
    ) as server:
        console.print(f"  baseline: bare Starlette POST route answering the same {len(body)} bytes")
        baseline = measure(server, api_key="", customers=1, options=options)
    ratio = replica["rps"] / baseline["rps"] if baseline["rps"] else 0.0
    met = "met" if ratio >= 0.6 and replica["p99_ms"] <= 5 else "NOT met"
    console.print(
        f"  goals: ratio {ratio:.2f} >= 0.6, p99 {replica['p99_ms']:.2f} ms <= 5 ms: {met}"
    )
    console.file.flush()
    final = {
        "replica_rps": round(replica["rps"], 1),
        "baseline_rps": round(baseline["rps"], 1),
        "ratio": round(ratio, 3),
        "p50_ms": round(replica["p50_ms"], 3),
        "p99_ms": round(replica["p99_ms"], 3),
    }
    print(json.dumps(final), flush=True)


if __name__ == "__main__":
    main()

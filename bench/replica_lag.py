"""How long after Tollgate accepts a change does the replica answer the new decision?

    .venv/bin/python bench/replica_lag.py                       # SQLite, 200 changes
    .venv/bin/python bench/replica_lag.py --database-url postgresql://postgres@127.0.0.1/test

It runs `tollgate serve --demo` (which delivers webhooks itself: the webhook worker
running) and `tollgate replica serve --register` as processes on 127.0.0.1, provisions a
customer on plan-free, then `--changes` times: reports one active user through
`POST /api/v1/usage`, and from the moment Tollgate answers 200 polls the replica's
`/check-access` until it answers the new usage. Beside the replica, a bare receiver (a
plain HTTP server on a thread of this process, registered as a second endpoint) notes when
the same change's `measurement.reported` reaches it: the baseline, what delivery alone
costs. The last line is one JSON object:

    {"changes": .., "p50_ms": .., "p99_ms": .., "max_ms": .., "baseline_p99_ms": .., "ratio": ..}

(`ratio` is the replica's p99 over the bare receiver's.) Goal: p99 <= 1,000 ms.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from check_throughput import console, free_port, fresh_database

USERS = "feature-active-users"
KEY_LINE = re.compile(r"server key: (\S+)")


@contextmanager
def _process(command: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=out)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait(url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never answered:\n{log.read_text()[-2000:]}")


class Arrivals:
    """A bare webhook receiver: when each usage value's measurement arrived."""

    def __init__(self) -> None:
        self.at: dict[float, float] = {}
        self.changed = threading.Condition()

    def when(self, usage: float) -> float:
        """When the measurement saying `usage` arrived (waiting for it)."""
        with self.changed:
            if not self.changed.wait_for(lambda: usage in self.at, timeout=30):
                raise SystemExit(f"the bare receiver never got usage {usage}")
            return self.at[usage]

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                now = time.perf_counter()
                payload = json.loads(body)
                self.send_response(200)
                self.end_headers()
                if payload.get("type") == "measurement.reported":
                    with arrivals.changed:
                        arrivals.at.setdefault(payload["currentUsage"], now)
                        arrivals.changed.notify_all()

            def log_message(self, *_args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/hooks"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(fraction * len(ordered) + 0.999999) - 1))
    return ordered[rank]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Change-to-replica lag")
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument(
        "--database-url", help="PostgreSQL (schemas of their own) instead of SQLite"
    )
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="tollgate-lag-"))
    with (
        fresh_database(args.database_url) as source_db,
        fresh_database(args.database_url) as replica_db,
    ):
        port, replica_port = free_port(), free_port()
        source = f"http://127.0.0.1:{port}"
        replica = f"http://127.0.0.1:{replica_port}"
        serve_env = {
            "TOLLGATE_DATABASE_URL": source_db,
            "TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "TOLLGATE_LOG_LEVEL": "warning",
        }
        serve_log = folder / "serve.log"
        with _process(
            [sys.executable, "-m", "tollgate", "serve", "--demo", "--port", str(port)],
            serve_env,
            serve_log,
        ):
            _wait(f"{source}/healthz", serve_log)
            found = KEY_LINE.search(serve_log.read_text())
            assert found, serve_log.read_text()
            key = found.group(1)
            http = httpx.Client(base_url=source, headers={"X-API-KEY": key})
            arrivals = Arrivals()
            receiver, receiver_url = arrivals.serve()
            made = http.post(
                "/api/v1/webhooks",
                json={"url": receiver_url, "eventTypes": ["measurement.reported"]},
            )
            assert made.status_code == 201, made.text
            replica_log = folder / "replica.log"
            with _process(
                [
                    *(sys.executable, "-m", "tollgate", "replica", "serve"),
                    *("--source", source, "--key", key, "--database-url", replica_db),
                    *("--port", str(replica_port), "--register", "--log-level", "warning"),
                ],
                {},
                replica_log,
            ):
                _wait(f"{replica}/healthz", replica_log)
                lags, baseline = _measure(http, replica, arrivals, args.changes)
            receiver.shutdown()
    p50, p99 = _percentile(lags, 0.5), _percentile(lags, 0.99)
    base99 = _percentile(baseline, 0.99)
    console.print(
        f"  replica: {len(lags)} changes, lag p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {max(lags):.1f} ms"
    )
    console.print(
        f"  baseline (a bare receiver of the same webhooks): p50 "
        f"{_percentile(baseline, 0.5):.1f} ms, p99 {base99:.1f} ms"
    )
    console.print(f"  goal: p99 {p99:.0f} ms <= 1,000 ms: {'met' if p99 <= 1000 else 'NOT met'}")
    console.file.flush()
    final = {
        "changes": len(lags),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(max(lags), 1),
        "baseline_p99_ms": round(base99, 1),
        "ratio": round(p99 / base99, 2) if base99 else None,
    }
    print(json.dumps(final), flush=True)


def _measure(
    http: httpx.Client, replica: str, arrivals: Arrivals, changes: int
) -> tuple[list[float], list[float]]:
    assert http.post("/api/v1/customers", json={"id": "lag-1"}).status_code == 201
    provisioned = http.post(
        "/api/v1/subscriptions", json={"customerId": "lag-1", "planId": "plan-free"}
    )
    assert provisioned.status_code == 200, provisioned.text
    checks = httpx.Client(base_url=replica)
    ask = {"customerId": "lag-1", "featureId": USERS}

    def usage() -> Any:
        return checks.post("/check-access", json=ask).json().get("currentUsage")

    deadline = time.monotonic() + 30
    while usage() != 0:
        if time.monotonic() > deadline:
            raise SystemExit("the replica never learned of the customer")
        time.sleep(0.01)
    lags: list[float] = []
    baseline: list[float] = []
    for value in range(1, changes + 1):
        report = {"customerId": "lag-1", "featureId": USERS, "value": 1}
        reported = http.post("/api/v1/usage", json={"usages": [report]})
        accepted = time.perf_counter()
        assert reported.status_code == 200, reported.text
        while usage() != value:
            if time.perf_counter() - accepted > 30:
                raise SystemExit(f"change {value} never reached the replica")
        lags.append((time.perf_counter() - accepted) * 1000)
        baseline.append(max(0.0, arrivals.when(float(value)) - accepted) * 1000)
    return lags, baseline


if __name__ == "__main__":
    main()

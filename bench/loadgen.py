"""A closed-loop HTTP/1.1 load generator for `check_throughput.py`, run as its own process.

Each of `--concurrency` keep-alive connections sends one check, waits for the whole answer,
records its latency and sends the next (no pipelining), so the figures are what 32 busy
clients see. It is a bare asyncio protocol on uvloop with requests built from bytes: on a
2-core machine the client shares the box with the server, and httpx would cost more CPU
per request than the server under test.

Modes (the last line of stdout is one JSON object with the result):

- `touch`: request every customer once, in a random order, with a random feature (the
  warm-up that fills the server's snapshot store); progress lines go to stdout meanwhile.
- `load`: random customers and features for `--warmup` seconds (not measured), then for
  `--seconds` seconds, measured: requests/s, latency percentiles, statuses, answers.
"""

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

NS_PER_MS = 1_000_000
PROGRESS_EVERY_S = 0.25
STALL_SECONDS = 30


@dataclass
class Run:
    """State shared by the connections of one phase."""

    next_request: Callable[[], bytes]
    measure_from_ns: int
    stop_at_ns: int
    latencies_ns: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    granted: int = 0
    denied: int = 0
    completed: int = 0  # every answer, measured or not (progress of `touch`)
    errors: list[str] = field(default_factory=list)
    open_connections: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, started_ns: int, finished_ns: int, status: int, body: bytes) -> None:
        self.completed += 1
        if finished_ns < self.measure_from_ns or finished_ns > self.stop_at_ns:
            return
        self.latencies_ns.append(finished_ns - started_ns)
        self.statuses[status] += 1
        if b'"isGranted":true' in body:
            self.granted += 1
        elif b'"isGranted":false' in body:
            self.denied += 1

    def connection_finished(self) -> None:
        self.open_connections -= 1
        if self.open_connections == 0:
            self.done.set()


class Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight at a time."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._body_start = -1
        self._body_end = -1
        self._status = 0
        self._started_ns = 0
        self._finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._run.open_connections += 1
        self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._finished:
            self._run.errors.append(f"connection lost: {exc!r}")
            self._finish()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        while True:
            if self._body_end < 0:
                head_end = buffer.find(b"\r\n\r\n")
                if head_end < 0:
                    break
                if not self._parse_head(buffer[:head_end], head_end):
                    return
            if len(buffer) < self._body_end:
                break
            body = buffer[self._body_start : self._body_end]
            buffer = buffer[self._body_end :]
            self._body_end = -1
            self._run.record(self._started_ns, time.perf_counter_ns(), self._status, body)
            self._send_next()
        self._buffer = buffer

    def _parse_head(self, head: bytes, head_end: int) -> bool:
        lowered = head.lower()
        start = lowered.find(b"\r\ncontent-length:")
        if not head.startswith(b"HTTP/1.1 ") or start < 0:
            self._run.errors.append(f"unexpected response head: {head[:200]!r}")
            self._finish()
            return False
        start += len(b"\r\ncontent-length:")
        end = lowered.find(b"\r\n", start)
        self._status = int(head[9:12])
        self._body_start = head_end + 4
        self._body_end = self._body_start + int(lowered[start : end if end >= 0 else None])
        return True

    def _send_next(self) -> None:
        assert self._transport is not None
        if self._finished:
            return
        request = self._run.next_request()
        if not request or time.perf_counter_ns() >= self._run.stop_at_ns:
            self._finish()
            return
        self._started_ns = time.perf_counter_ns()
        self._transport.write(request)

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._transport is not None:
            self._transport.close()
        self._run.connection_finished()


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    api_key: str
    customer_ids: list[str]
    feature_ids: list[str]
    # POST /check-access with a JSON body (the replica's check) instead of Tollgate's GET.
    check_access: bool = False

    def request(self, customer_id: str, feature_id: str) -> bytes:
        if self.check_access:
            body = f'{{"customerId":"{customer_id}","featureId":"{feature_id}"}}'.encode()
            return (
                f"POST /check-access HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
        return (
            f"GET /api/v1/customers/{customer_id}/entitlements/check?featureId={feature_id} "
            f"HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nX-API-KEY: {self.api_key}\r\n"
            "Accept: application/json\r\n\r\n"
        ).encode()

    def random_requests(self, rng: random.Random) -> Callable[[], bytes]:
        customers, features = self.customer_ids, self.feature_ids

        def next_request() -> bytes:
            return self.request(rng.choice(customers), rng.choice(features))

        return next_request

    def every_customer_once(self, rng: random.Random) -> Callable[[], bytes]:
        order = list(self.customer_ids)
        rng.shuffle(order)
        pending: Iterator[str] = iter(order)
        features = self.feature_ids

        def next_request() -> bytes:
            customer_id = next(pending, None)
            return b"" if customer_id is None else self.request(customer_id, rng.choice(features))

        return next_request


async def run_phase(target: Target, run: Run, concurrency: int) -> None:
    loop = asyncio.get_running_loop()

    def on_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A bug in a callback must end the run with an error, never leave it hanging.
        run.errors.append(f"{context.get('message')}: {context.get('exception')!r}")
        run.done.set()

    loop.set_exception_handler(on_error)
    for _ in range(concurrency):
        await loop.create_connection(lambda: Connection(run), target.host, target.port)
    await run.done.wait()


def _percentile(ordered: list[int], fraction: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(fraction * len(ordered) + 0.999999) - 1))
    return ordered[rank] / NS_PER_MS


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summary(run: Run, seconds: float, cpu_seconds: float) -> dict[str, Any]:
    ordered = sorted(run.latencies_ns)
    count = len(ordered)
    return {
        "requests": count,
        "seconds": seconds,
        "rps": count / seconds if seconds > 0 else 0.0,
        "p50_ms": _percentile(ordered, 0.50),
        "p90_ms": _percentile(ordered, 0.90),
        "p99_ms": _percentile(ordered, 0.99),
        "p999_ms": _percentile(ordered, 0.999),
        "max_ms": ordered[-1] / NS_PER_MS if ordered else float("nan"),
        "mean_ms": sum(ordered) / count / NS_PER_MS if count else float("nan"),
        "statuses": {str(status): n for status, n in sorted(run.statuses.items())},
        "granted": run.granted,
        "denied": run.denied,
        "client_cpu": cpu_seconds / seconds if seconds > 0 else 0.0,
        "errors": run.errors[:5],
    }


async def touch(target: Target, concurrency: int, rng: random.Random) -> dict[str, Any]:
    start = time.perf_counter_ns()
    run = Run(target.every_customer_once(rng), measure_from_ns=start, stop_at_ns=2**63)
    cpu = _cpu_seconds()
    task = asyncio.ensure_future(run_phase(target, run, concurrency))
    last_progress, last_change = 0, time.monotonic()
    while not task.done():
        await asyncio.wait([task], timeout=PROGRESS_EVERY_S)
        print(json.dumps({"progress": run.completed}), flush=True)
        if run.completed != last_progress:
            last_progress, last_change = run.completed, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            run.errors.append(f"no answer for {STALL_SECONDS} s")
            task.cancel()
            break
    seconds = (time.perf_counter_ns() - start) / 1e9
    return summary(run, seconds, _cpu_seconds() - cpu)


async def load(
    target: Target, concurrency: int, warmup: float, seconds: float, rng: random.Random
) -> dict[str, Any]:
    start = time.perf_counter_ns()
    measure_from = start + int(warmup * 1e9)
    stop_at = measure_from + int(seconds * 1e9)
    run = Run(target.random_requests(rng), measure_from_ns=measure_from, stop_at_ns=stop_at)
    task = asyncio.ensure_future(run_phase(target, run, concurrency))
    await asyncio.sleep(max(0.0, (measure_from - time.perf_counter_ns()) / 1e9))
    print(json.dumps({"phase": "measure"}), flush=True)
    cpu = _cpu_seconds()
    try:
        await asyncio.wait_for(task, timeout=seconds + STALL_SECONDS)
    except TimeoutError:
        run.errors.append(f"the run did not end within {STALL_SECONDS} s of its end")
    cpu = _cpu_seconds() - cpu
    return summary(run, seconds, cpu)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("mode", choices=["touch", "load"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--customers", type=int, required=True, help="ids customer-000000…")
    parser.add_argument("--features", required=True, help="comma-separated feature ids")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--check-access", action="store_true", help="POST /check-access (the replica's check)"
    )
    return parser.parse_args(argv)


def customer_id(index: int) -> str:
    return f"customer-{index:06d}"


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    target = Target(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        customer_ids=[customer_id(i) for i in range(args.customers)],
        feature_ids=args.features.split(","),
        check_access=args.check_access,
    )
    rng = random.Random(args.seed)
    if args.mode == "touch":
        phase = touch(target, args.concurrency, rng)
    else:
        phase = load(target, args.concurrency, args.warmup, args.seconds, rng)
    result = _run(phase)
    sys.stdout.write(json.dumps(result) + "\n")


def _run(phase: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] installs it; plain asyncio costs more CPU
        return asyncio.run(phase)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(phase)


if __name__ == "__main__":
    main()

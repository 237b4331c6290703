"""How fast does Tollgate answer entitlement checks, next to a bare Starlette endpoint?

    .venv/bin/python bench/check_throughput.py              # 10,000 customers, 10 s each
    .venv/bin/python bench/check_throughput.py --sweep      # 1,000 / 10,000 / 100,000

With N customers seeded (each with a subscription to plan-free, plan-pro or plan-enterprise
of the demo catalog), it serves Tollgate, then a bare Starlette route that answers a JSON
object of the same size (one real Tollgate answer, captured), each with the same uvicorn
settings (one worker, no access log, log level warning) on 127.0.0.1, Tollgate with the HTTP
protocol `tollgate serve` runs (limits on request heads). Each is loaded in
turn by the same closed-loop generator (`loadgen.py`: keep-alive, 32 connections, a random
customer and feature per request) for a warm-up that is not measured and then `--seconds`
that are. Before that, Tollgate is warmed by checking every customer once. It prints
requests/s, p50 and p99 of both; the last line is one JSON object:

    {"tollgate_rps": .., "baseline_rps": .., "ratio": .., "p50_ms": .., "p99_ms": ..}

Goals: ratio >= 0.5 and p99 <= 10 ms, and a p99 that stays flat from 1,000 to 100,000
customers. The server and the load generator are separate processes, so on a 2-core machine
each can have a core; `--pin` pins the server to CPU 0 and the load generator to CPU 1 (not
the default: on a shared machine it keeps the scheduler from moving the server away from
someone else's busy core). Each measurement says how much CPU the server, the load generator
and every other process used meanwhile, and warns when other processes used enough to skew it.

Seeding: the first customer of each plan is provisioned through Tollgate's own services
(`provision_customer`, `subscriptions.service.provision_subscription`, with a fixed `now`);
every other customer is a copy of its plan's template rows, inserted in bulk 1,000 per
transaction with only the ids changed. The seeder refuses to run if provisioning ever
writes rows to a table it does not copy, and checks that a copy is entitled to exactly what
its template is.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, cast

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Table, create_engine, func, insert, make_url, select, text
from sqlalchemy.orm import Session, sessionmaker

from tollgate.catalog import demo
from tollgate.config import normalize_database_url
from tollgate.customers.schemas import CustomerCreate
from tollgate.customers.service import provision_customer
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.entitlements import holdings
from tollgate.entitlements.service import describe_entitlements
from tollgate.entitlements.snapshots import SnapshotStore
from tollgate.entitlements.usage_store import NO_USAGE
from tollgate.environments.models import KeyKind
from tollgate.environments.service import create_key, ensure_environment
from tollgate.kit.clock import SystemClock
from tollgate.schema import migrate
from tollgate.schema.tables import Base, Customer, Subscription
from tollgate.subscriptions.schemas import SubscriptionProvision
from tollgate.subscriptions.service import provision_subscription

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
ENVIRONMENT = "bench"
PLANS = ("plan-free", "plan-pro", "plan-enterprise")
FEATURES = tuple(feature["id"] for feature in demo.FEATURES)
# The baseline answers this check's body: granted, metered, every field filled in.
SAMPLE_CHECK = ("customer-000001", "feature-api-calls")
SWEEP = (1_000, 10_000, 100_000)
BATCH = 1_000
WARMUP_SECONDS = 2.0
NOISE_CORES = 0.2  # CPU used by other processes during a run worth a warning
UVICORN_FLAGS = ("--workers", "1", "--no-access-log", "--log-level", "warning")
# What `serve` runs: an app factory of servers.py and flags of its own. Tollgate gets the HTTP
# protocol `tollgate serve` runs (uvicorn's httptools protocol with limits on request heads,
# tollgate.http.server); the baseline keeps uvicorn's own.
TOLLGATE_SERVER = ("servers:tollgate_app", "--http", "tollgate.http.server:HeadLimitedProtocol")
BASELINE_SERVER = ("servers:baseline_app",)

console = Console(highlight=False, soft_wrap=True)


class Measured(TypedDict):
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    statuses: dict[str, int]
    granted: int
    denied: int
    client_cpu: float
    errors: list[str]


@dataclass(frozen=True)
class Options:
    seconds: float
    concurrency: int
    database_url: str | None
    pin: bool
    # What the load generator asks (its extra flags), which features, which statuses are
    # answers (the replica answers a denial 403).
    loadgen_flags: tuple[str, ...] = ()
    features: tuple[str, ...] = FEATURES
    statuses: frozenset[str] = frozenset({"200"})


@dataclass(frozen=True)
class Seeded:
    api_key: str
    customers: int
    seconds: float


@dataclass(frozen=True)
class PointResult:
    customers: int
    tollgate: Measured
    baseline: Measured

    @property
    def ratio(self) -> float:
        return self.tollgate["rps"] / self.baseline["rps"] if self.baseline["rps"] else 0.0


def customer_id(index: int) -> str:
    return f"customer-{index:06d}"  # the same ids loadgen.py asks for


# -- databases ---------------------------------------------------------------------------


@contextmanager
def fresh_database(database_url: str | None) -> Iterator[str]:
    """A URL of an empty database: a SQLite file in a temporary directory, or a new schema
    (dropped afterwards) in the given PostgreSQL database."""
    if database_url is None:
        directory = tempfile.mkdtemp(prefix="tollgate-bench-")
        try:
            yield f"sqlite:///{directory}/tollgate.db"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    url = normalize_database_url(database_url)
    schema = f"tollgate_bench_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        in_schema = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield in_schema.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


# -- seeding -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """The rows provisioning wrote for one customer, to be copied with new ids."""

    plan: str
    customer: dict[str, Any]
    subscription: dict[str, Any]


def seed(url: str, customers: int) -> Seeded:
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        now = datetime.now(UTC).replace(microsecond=0)
        with unit_of_work(sessions) as session:
            environment = ensure_environment(session, name=ENVIRONMENT)
            demo.seed(session, environment_id=environment.id, now=now)
            issued = create_key(session, environment_name=ENVIRONMENT, kind=KeyKind.SERVER)
            environment_id, api_key = environment.id, issued.secret
        with _progress() as progress:
            task = progress.add_task("seeding customers", total=customers)
            templates = _provision_templates(sessions, environment_id, now)
            progress.advance(task, len(templates))
            for start in range(len(templates), customers, BATCH):
                indices = range(start, min(start + BATCH, customers))
                with unit_of_work(sessions) as session:
                    _copy(session, templates, indices)
                progress.advance(task, len(indices))
        _verify_copies(sessions, environment_id, customers)
    finally:
        engine.dispose()
    return Seeded(api_key=api_key, customers=customers, seconds=time.perf_counter() - started)


def _provision_templates(
    sessions: sessionmaker[Session], environment_id: int, now: datetime
) -> list[Template]:
    """customer-000000, -000001, -000002 on each plan in turn, through the services."""
    with unit_of_work(sessions) as session:
        for index, plan in enumerate(PLANS):
            ref = customer_id(index)
            customer = CustomerCreate(id=ref)
            provision_customer(session, environment_id=environment_id, data=customer, now=now)
            data = SubscriptionProvision(customer_id=ref, plan_id=plan)
            provision_subscription(session, environment_id=environment_id, data=data, now=now)
    with sessions() as session:
        return [_template(session, environment_id, index) for index in range(len(PLANS))]


def _template(session: Session, environment_id: int, index: int) -> Template:
    customers, subscriptions = _table(Customer), _table(Subscription)
    customer = (
        session.execute(
            select(customers).where(
                customers.c.environment_id == environment_id,
                customers.c.ref_id == customer_id(index),
            )
        )
        .mappings()
        .one()
    )
    subscription = (
        session.execute(select(subscriptions).where(subscriptions.c.customer_id == customer["id"]))
        .mappings()
        .one()
    )
    _refuse_other_rows(session, customer["id"], subscription["id"])
    return Template(
        plan=PLANS[index],
        customer={k: v for k, v in customer.items() if k != "id"},
        subscription={k: v for k, v in subscription.items() if k != "id"},
    )


def _refuse_other_rows(session: Session, customer_pk: int, subscription_pk: int) -> None:
    """Copying two rows is only right while provisioning writes nothing else about them."""
    owners = {_table(Customer): customer_pk, _table(Subscription): subscription_pk}
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_keys:
            owner = key.column.table
            copied = table is _table(Subscription) and key.parent.name == "customer_id"
            if owner not in owners or copied:
                continue
            count = session.scalar(
                select(func.count()).select_from(table).where(key.parent == owners[owner])
            )
            if count:
                raise SystemExit(
                    f"provisioning wrote {count} row(s) to {table.name}.{key.parent.name}; "
                    "the benchmark's bulk seeding copies only customers and subscriptions"
                )


def _copy(session: Session, templates: list[Template], indices: range) -> None:
    customers, subscriptions = _table(Customer), _table(Subscription)
    chosen = [templates[index % len(templates)] for index in indices]
    rows = [
        {**template.customer, "ref_id": customer_id(index)}
        for index, template in zip(indices, chosen, strict=True)
    ]
    inserted = session.execute(
        insert(customers).returning(customers.c.id, sort_by_parameter_order=True), rows
    )
    session.execute(
        insert(subscriptions),
        [
            {
                **template.subscription,
                "customer_id": pk,
                "ref_id": f"subscription-{template.plan}-{secrets.token_hex(6)}",
            }
            for pk, template in zip(inserted.scalars(), chosen, strict=True)
        ],
    )


def _verify_copies(sessions: sessionmaker[Session], environment_id: int, customers: int) -> None:
    """A copied customer must be entitled to exactly what its template is."""
    store = SnapshotStore(sessions, SystemClock())
    with sessions() as session:
        features = holdings.load_features(session, environment_id)
        for template in range(len(PLANS)):
            copy = customers - 1 - (customers - 1 - template) % len(PLANS)  # the last copy
            if copy == template:
                continue
            answers = [
                describe_entitlements(
                    store.compute(session, environment_id, ref, None), features, NO_USAGE
                )
                for ref in (customer_id(template), customer_id(copy))
            ]
            if answers[0] != answers[1]:
                raise SystemExit(
                    f"{customer_id(copy)} is not entitled like {customer_id(template)}"
                )


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _progress() -> Progress:
    return Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


# -- servers -----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def cpu_seconds(self) -> float:
        """User plus system time of the whole process (every thread), from /proc."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return float("nan")
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the process, from /proc (NaN where there is none)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return float("nan")
        kilobytes = next(line.split()[1] for line in status.splitlines() if line[:6] == "VmRSS:")
        return int(kilobytes) / 1024

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def busy_cpu_seconds() -> float:
    """CPU time every process of the machine has used so far, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(
    name: str, app: tuple[str, ...], env: dict[str, str], ready_path: str, options: Options
) -> Iterator[Server]:
    port = free_port()
    descriptor, log_name = tempfile.mkstemp(prefix=f"tollgate-bench-{name}-", suffix=".log")
    os.close(descriptor)
    log = Path(log_name)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(BENCH_DIR),
        "--factory",
        *app,
        "--host",
        HOST,
        "--port",
        str(port),
        *UVICORN_FLAGS,
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
    if options.pin:
        os.sched_setaffinity(process.pid, {0})
    server = Server(name, process, port, log)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.unlink(missing_ok=True)


def _wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = "\n".join(server.log_lines()[-30:])
            raise SystemExit(f"{server.name} exited with {server.process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{server.port}{path}", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"{server.name} did not answer {path} within {timeout:.0f} s")


def fetch(server: Server, path: str, api_key: str) -> bytes:
    request = urllib.request.Request(
        f"http://{HOST}:{server.port}{path}", headers={"X-API-KEY": api_key}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        body: bytes = reply.read()
        return body


def check_path(customer: str, feature: str) -> str:
    return f"/api/v1/customers/{customer}/entitlements/check?featureId={feature}"


# -- load --------------------------------------------------------------------------------


def loadgen(
    server: Server,
    mode: str,
    *,
    api_key: str,
    customers: int,
    options: Options,
    on_line: Callable[[dict[str, Any]], None] = lambda _line: None,
) -> Measured:
    """Run loadgen.py in a process of its own; return its result (its last line)."""
    command = [
        sys.executable,
        str(BENCH_DIR / "loadgen.py"),
        mode,
        f"--port={server.port}",
        f"--api-key={api_key}",
        f"--customers={customers}",
        f"--features={','.join(options.features)}",
        f"--concurrency={options.concurrency}",
        f"--warmup={WARMUP_SECONDS}",
        f"--seconds={options.seconds}",
        *options.loadgen_flags,
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        if options.pin:
            os.sched_setaffinity(process.pid, {1})
        assert process.stdout is not None
        last: dict[str, Any] = {}
        try:
            for line in process.stdout:
                last = json.loads(line)
                on_line(last)
        except BaseException:
            process.terminate()
            raise
    if process.returncode != 0 or "rps" not in last:
        raise SystemExit(f"the load generator failed (exit status {process.returncode})")
    return cast(Measured, last)


def measure(server: Server, *, api_key: str, customers: int, options: Options) -> Measured:
    """Unmeasured warm-up, then the measured run; prints one line about it."""
    samples: list[tuple[float, float]] = []

    def on_line(line: dict[str, Any]) -> None:
        if line.get("phase") == "measure" or "rps" in line:
            samples.append((server.cpu_seconds(), busy_cpu_seconds()))

    result = loadgen(
        server, "load", api_key=api_key, customers=customers, options=options, on_line=on_line
    )
    server_cpu = everyone = float("nan")
    if len(samples) == 2:
        server_cpu = (samples[1][0] - samples[0][0]) / result["seconds"]
        everyone = (samples[1][1] - samples[0][1]) / result["seconds"]
    _print_measured(server.name, result, server_cpu, server.rss_mb(), options.statuses)
    others = everyone - server_cpu - result["client_cpu"]
    if others > NOISE_CORES:
        console.print(
            f"    [yellow]warning:[/] other processes kept {others:.1f} cores busy meanwhile; "
            "these figures understate what this machine can do"
        )
    return result


def warm_every_customer(server: Server, *, api_key: str, customers: int, options: Options) -> None:
    with _progress() as progress:
        task = progress.add_task("warm-up: every customer once", total=customers)

        def on_line(line: dict[str, Any]) -> None:
            if "progress" in line:
                progress.update(task, completed=line["progress"])

        result = loadgen(
            server,
            "touch",
            api_key=api_key,
            customers=customers,
            options=options,
            on_line=on_line,
        )
    console.print(
        f"  warm-up: checked each of {result['requests']:,} customers once in "
        f"{result['seconds']:.1f} s ({result['rps']:,.0f}/s while snapshots were computed; "
        f"statuses {result['statuses']}); not measured"
    )
    _refuse_errors(result, options.statuses)


def _print_measured(
    name: str,
    result: Measured,
    server_cpu: float,
    rss_mb: float,
    statuses: frozenset[str] = frozenset({"200"}),
) -> None:
    console.print(
        f"  [bold]{name}[/]: {result['rps']:,.0f} requests/s, p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms (p90 {result['p90_ms']:.2f}, p99.9 "
        f"{result['p999_ms']:.2f}, max {result['max_ms']:.1f}) over {result['seconds']:.0f} s, "
        f"{result['requests']:,} requests"
    )
    console.print(
        f"    statuses {result['statuses']}, granted {result['granted']:,} / denied "
        f"{result['denied']:,}; CPU: server {server_cpu:.0%}, load generator "
        f"{result['client_cpu']:.0%}; server memory {rss_mb:,.0f} MB"
    )
    _refuse_errors(result, statuses)


def _refuse_errors(result: Measured, statuses: frozenset[str] = frozenset({"200"})) -> None:
    if result["errors"] or set(result["statuses"]) - statuses:
        raise SystemExit(f"unexpected answers: {result['statuses']} {result['errors']}")


# -- one point: N customers --------------------------------------------------------------


def run_point(customers: int, options: Options) -> PointResult:
    console.rule(f"[bold]{customers:,} customers")
    with fresh_database(options.database_url) as url:
        backend = make_url(url).get_backend_name()
        seeded = seed(url, customers)
        console.print(f"  seeded {customers:,} customers on {backend} in {seeded.seconds:.1f} s")
        tollgate_env = {
            "TOLLGATE_DATABASE_URL": url,
            "TOLLGATE_RUN_JOBS": "false",
            "TOLLGATE_LOG_LEVEL": "warning",
        }
        with serve("Tollgate", TOLLGATE_SERVER, tollgate_env, "/healthz", options) as server:
            key = seeded.api_key
            warm_every_customer(server, api_key=key, customers=customers, options=options)
            body = fetch(server, check_path(*SAMPLE_CHECK), seeded.api_key)
            console.print(
                f"  measuring: {WARMUP_SECONDS:.0f} s warm-up (not measured), then "
                f"{options.seconds:.0f} s, {options.concurrency} keep-alive connections"
            )
            tollgate = measure(server, api_key=key, customers=customers, options=options)
            _report_log(server)
    baseline = measure_baseline(body, options)
    return PointResult(customers, tollgate, baseline)


def measure_baseline(body: bytes, options: Options) -> Measured:
    env = {"TOLLGATE_BENCH_BASELINE_BODY": body.decode()}
    path = check_path(*SAMPLE_CHECK)
    with serve("baseline", BASELINE_SERVER, env, path, options) as server:
        answer = fetch(server, path, "")
        if len(answer) != len(body):
            raise SystemExit(f"baseline answers {len(answer)} bytes, Tollgate {len(body)}")
        console.print(f"  baseline: bare Starlette route answering the same {len(body)} bytes")
        return measure(server, api_key="", customers=1, options=options)


def _report_log(server: Server) -> None:
    lines = server.log_lines()
    if lines:
        console.print(f"  {server.name} logged {len(lines)} line(s); last: {lines[-1][:200]}")


# -- main --------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Entitlement-check throughput of Tollgate next to a bare Starlette route."
    )
    parser.add_argument("--customers", type=int, default=10_000, help="default 10,000")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds each")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also run 1,000, 10,000 and 100,000 customers and compare p99 (takes minutes)",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL URL to run on (a schema of its own, dropped after) instead of SQLite",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the server to CPU 0 and the load generator to CPU 1",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    # Stop the servers and remove the temporary database when terminated, not only on ^C.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))
    args = _parse(argv)
    if args.customers < len(PLANS):
        raise SystemExit(f"--customers must be at least {len(PLANS)}, one per plan")
    if args.seconds < 10:
        console.print("[yellow]note:[/] the issue asks for at least 10 measured seconds")
    pin = args.pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2
    options = Options(args.seconds, args.concurrency, args.database_url, pin)
    placement = "server on CPU 0, load generator on CPU 1" if pin else "not pinned"
    console.print(f"{os.cpu_count()} CPUs ({placement}); uvicorn {' '.join(UVICORN_FLAGS)}")
    points = sorted({args.customers, *SWEEP}) if args.sweep else [args.customers]
    results = {customers: run_point(customers, options) for customers in points}
    headline = results[args.customers]
    _print_summary(headline, results)
    final: dict[str, Any] = {
        "tollgate_rps": round(headline.tollgate["rps"], 1),
        "baseline_rps": round(headline.baseline["rps"], 1),
        "ratio": round(headline.ratio, 3),
        "p50_ms": round(headline.tollgate["p50_ms"], 3),
        "p99_ms": round(headline.tollgate["p99_ms"], 3),
    }
    if args.sweep:
        final["p99_ms_by_customers"] = {
            str(n): round(r.tollgate["p99_ms"], 3) for n, r in results.items()
        }
    console.file.flush()
    print(json.dumps(final), flush=True)


def _print_summary(headline: PointResult, results: dict[int, PointResult]) -> None:
    console.rule("[bold]summary")
    for customers, result in results.items():
        console.print(
            f"  {customers:>7,} customers: Tollgate {result.tollgate['rps']:>7,.0f}/s "
            f"p50 {result.tollgate['p50_ms']:5.2f} ms p99 {result.tollgate['p99_ms']:6.2f} ms | "
            f"baseline {result.baseline['rps']:>7,.0f}/s p50 {result.baseline['p50_ms']:5.2f} ms "
            f"p99 {result.baseline['p99_ms']:6.2f} ms | ratio {result.ratio:.2f}"
        )
    ratio_met = "met" if headline.ratio >= 0.5 else "NOT met"
    p99_met = "met" if headline.tollgate["p99_ms"] <= 10 else "NOT met"
    console.print(
        f"  goals at {headline.customers:,} customers: ratio {headline.ratio:.2f} >= 0.5 "
        f"{ratio_met}; p99 {headline.tollgate['p99_ms']:.2f} ms <= 10 ms {p99_met}"
    )
    if len(results) > 1:
        first, last = results[min(results)], results[max(results)]
        growth = last.tollgate["p99_ms"] / first.tollgate["p99_ms"]
        console.print(
            f"  p99 from {first.customers:,} to {last.customers:,} customers: "
            f"{first.tollgate['p99_ms']:.2f} -> {last.tollgate['p99_ms']:.2f} ms (x{growth:.2f}; "
            "goal: flat)"
        )


if __name__ == "__main__":
    main()

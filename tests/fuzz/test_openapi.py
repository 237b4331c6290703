"""Property-based fuzzing of the whole OpenAPI document with Schemathesis, on both databases.

Schemathesis runs as its own command against the suite's live server (`base_url`), in an
environment of its own seeded with the demo catalog, with every check (`--checks all`):

- per operation: the documented examples, coverage (every boundary and every violation of
  the schema) and fuzzing (random valid and invalid requests), with a server key, then with
  a client key;
- stateful: scenarios of up to 10 calls chained by the links Schemathesis infers (create a
  customer, provision a subscription, read, change, migrate or cancel it, report usage,
  check an entitlement), with the hooks of workflows.py.

schemathesis.toml also feeds date-time fields values at the edges of what Python and the
databases hold (year 1 or 9999, offsets that cross them in UTC), which random generation
seldom makes.

Any failure fails the test, which prints Schemathesis's report (a curl command for each
failure) and the server's tracebacks. The budget and the seed are fixed, so a run is
reproducible; both can be changed:

    TOLLGATE_FUZZ_EXAMPLES=100 TOLLGATE_FUZZ_SCENARIOS=1000 TOLLGATE_FUZZ_SEED=7 make fuzz
"""

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support import Tenant, make_demo_tenant

HERE = Path(__file__).parent
# Per operation, in the fuzzing phase; the coverage phase's count follows from the schema.
EXAMPLES = int(os.environ.get("TOLLGATE_FUZZ_EXAMPLES", "30"))
SCENARIOS = int(os.environ.get("TOLLGATE_FUZZ_SCENARIOS", "300"))
SEED = int(os.environ.get("TOLLGATE_FUZZ_SEED", "20260101"))
PER_OPERATION = ("--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES))
# Positive data only, and no NUL bytes (refused in every string): what each step sends must
# be accepted for the chain to go on. The per-operation run sends the invalid data.
STATEFUL = (
    *("--phases", "stateful", "--max-examples", str(SCENARIOS)),
    *("--mode", "positive", "--generation-allow-x00", "false"),
)
MIN_LINKS_FOLLOWED = 20
# Not a speed limit: the budget ends a run in minutes; this only stops a hung one.
HANG_SECONDS = 30 * 60

pytestmark = pytest.mark.fuzz


class _Collected(logging.Handler):
    """Keeps the server's error records, with their tracebacks."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def server_errors() -> Iterator[list[str]]:
    """The live server runs in this process: its errors reach the root logger."""
    handler = _Collected()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)


@dataclass(frozen=True)
class Run:
    """What one `schemathesis run` printed, and the errors the server logged meanwhile."""

    report: str
    passed: bool
    server_errors: list[str]

    def number(self, pattern: str) -> int:
        """The number that `pattern`'s group matches in the report (0 when absent)."""
        found = re.search(pattern, self.report)
        return int(found.group(1)) if found else 0

    def explain(self) -> str:
        logged = "\n\n".join(dict.fromkeys(self.server_errors)) or "(none)"
        return (
            f"{self.report}\n\nThe server's errors, with tracebacks:\n\n{logged}\n\n"
            f"Run again with TOLLGATE_FUZZ_SEED={SEED} TOLLGATE_FUZZ_EXAMPLES={EXAMPLES} "
            f"TOLLGATE_FUZZ_SCENARIOS={SCENARIOS}"
        )


def schemathesis(
    base_url: str, key: str, workdir: Path, *options: str, hooks: Path | None = None
) -> Run:
    """Run `schemathesis run` on the server's OpenAPI document with every check."""
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--no-color"),
        *("--config-file", str(HERE / "schemathesis.toml")),
        *("run", f"{base_url}/openapi.json", "--header", f"X-API-KEY: {key}"),
        *("--checks", "all", "--seed", str(SEED), *options),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(hooks)} if hooks else None
    with server_errors() as logged:
        # cwd: Schemathesis and Hypothesis write their working files there.
        done = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=HANG_SECONDS
        )
    return Run(done.stdout + done.stderr, done.returncode == 0, logged)


def assert_every_operation_passed(run: Run) -> None:
    selected, total = run.number(r"Selected: (\d+)/"), run.number(r"Selected: \d+/(\d+)")
    if run.number(r"Tested: (\d+)") != total or selected != total:
        pytest.fail(f"not every operation was tested\n\n{run.explain()}", pytrace=False)
    if not run.passed:
        pytest.fail(run.explain(), pytrace=False)


@pytest.fixture
def demo_tenant(engine: Engine, base_url: str) -> Tenant:
    """The demo catalog, and a webhook endpoint so that every change also writes its
    webhook message (the suite's server runs no jobs: nothing is sent)."""
    tenant = make_demo_tenant(engine, base_url)
    with tenant.http() as http:
        created = http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks"})
    assert created.status_code == 201, created.text
    return tenant


class TestWholeApi:
    def test_each_operation_with_a_server_key(self, demo_tenant: Tenant, tmp_path: Path) -> None:
        run = schemathesis(demo_tenant.base_url, demo_tenant.server_key, tmp_path, *PER_OPERATION)
        assert_every_operation_passed(run)

    def test_each_operation_with_a_client_key(self, demo_tenant: Tenant, tmp_path: Path) -> None:
        """Client keys read the catalog and are refused every write, never with a 5xx."""
        run = schemathesis(demo_tenant.base_url, demo_tenant.client_key, tmp_path, *PER_OPERATION)
        assert_every_operation_passed(run)

    def test_workflows_with_a_server_key(self, demo_tenant: Tenant, tmp_path: Path) -> None:
        run = schemathesis(
            demo_tenant.base_url,
            demo_tenant.server_key,
            tmp_path,
            *STATEFUL,
            hooks=HERE / "workflows.py",
        )
        # Without workflows.py scenarios follow 0 to 2 links; with it about 60.
        if run.number(r"API Links:\s+(\d+) covered") < MIN_LINKS_FOLLOWED:
            pytest.fail(f"scenarios did not chain calls\n\n{run.explain()}", pytrace=False)
        if not run.passed:
            pytest.fail(run.explain(), pytrace=False)

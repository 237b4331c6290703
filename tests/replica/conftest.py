"""A Tollgate server (`tollgate serve --demo`) and a replica (`tollgate replica serve
--register`) as real processes on 127.0.0.1, on SQLite and on PostgreSQL: each backend
holds both databases (the server's and the replica's own)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import stigg
from standardwebhooks import Webhook

from tests.support import Served, launch
from tests.support.databases import postgres_schema, require_postgres, url_in_schema
from tests.support.servers import free_port

# A secret the tests sign their own deliveries with (besides the registered one), and the
# hosted platform's shared secret.
TEST_SECRET = "whsec_" + "dGVzdHMtb3duLXNpZ25pbmctc2VjcmV0LTMyYnl0ZXM="
STIGG_SECRET = "stigg-shared-secret"
DEADLINE_SECONDS = 20.0


@dataclass
class ReplicaProcess:
    """A `tollgate replica serve` process; `restart` keeps its port and database."""

    source: Served
    database_url: str
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    extra: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            *(sys.executable, "-m", "tollgate", "replica", "serve"),
            *("--source", self.source.url, "--key", self.source.keys["server"]),
            *("--database-url", self.database_url, "--port", str(self.port), "--register"),
            *("--webhook-secret", TEST_SECRET, "--stigg-secret", STIGG_SECRET),
            *("--audit-seconds", "0.5", "--log-level", "warning"),
            *self.extra,
        ]
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"the replica exited: {self.log.read_text()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the replica never became healthy"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown, as when a machine dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def check(self, customer_id: str, feature_id: str, **asked: Any) -> httpx.Response:
        body = {"customerId": customer_id, "featureId": feature_id, **asked}
        return httpx.post(f"{self.url}/check-access", json=body, timeout=10)

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def deliver(
        self, payload: dict[str, Any], *, secret: str = TEST_SECRET, at: int | None = None
    ) -> httpx.Response:
        """POST a payload signed as Tollgate signs (Standard Webhooks)."""
        import json
        from datetime import UTC, datetime

        body = json.dumps(payload)
        moment = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
        message_id = payload.get("messageId", "msg_test")
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, moment, body),
            "content-type": "application/json",
        }
        return httpx.post(f"{self.url}/webhook", content=body, headers=headers, timeout=10)


@dataclass
class Pair:
    source: Served
    replica: ReplicaProcess
    backend: str
    source_database_url: str

    def client(self) -> stigg.Stigg:
        return stigg.Stigg(
            api_key=self.source.keys["server"], base_url=self.source.url, max_retries=0
        )

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.source.url, headers={"X-API-KEY": self.source.keys["server"]}
        )


def eventually(condition: Callable[[], Any], what: str) -> Any:
    """Poll until `condition` returns something truthy; return it."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"never happened within {DEADLINE_SECONDS} s: {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    folder = tmp_path_factory.mktemp(f"replica-{request.param}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            source_url = f"sqlite:///{folder / 'tollgate.db'}"
            replica_url = f"sqlite:///{folder / 'replica.db'}"
        else:
            server = require_postgres()
            source_url = url_in_schema(server, stack.enter_context(postgres_schema(server)))
            replica_url = url_in_schema(server, stack.enter_context(postgres_schema(server)))
        source = launch(source_url, folder / "serve.log")
        stack.callback(_stop, source.process)
        replica = ReplicaProcess(source, replica_url, folder / "replica.log")
        replica.start()
        stack.callback(replica.stop)
        yield Pair(source, replica, request.param, source_url)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=20)

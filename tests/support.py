"""Test plumbing: databases per backend, live servers on 127.0.0.1, environments with keys."""

import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, text

import tollgate.environments.service as environments
from tollgate.catalog import demo
from tollgate.config import Settings, normalize_database_url
from tollgate.db.engine import make_engine, make_session_factory, unit_of_work
from tollgate.environments.models import KeyKind
from tollgate.http.server import uvicorn_options

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return normalize_database_url(
        os.environ.get("TOLLGATE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    )


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    probe = create_engine(url)
    try:
        with probe.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL at {url} is unreachable ({type(exc).__name__})"
    finally:
        probe.dispose()
    return None


def require_postgres() -> str:
    url = postgres_url()
    problem = postgres_reachable(url)
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must run the PostgreSQL tests")
        pytest.skip(f"{problem}; set TOLLGATE_TEST_POSTGRES_URL to run the PostgreSQL tests")
    return url


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema, dropped afterwards, so runs and tests never see each other's rows."""
    schema = f"tollgate_test_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield schema
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def url_in_schema(url: str, schema: str) -> str:
    """A URL whose connections work in `schema` (libpq `options`), for other processes."""
    return f"{url}?options=-csearch_path%3D{schema}"


@contextmanager
def postgres_schema_engine(url: str) -> Iterator[Engine]:
    with postgres_schema(url) as schema:
        engine = make_engine(url_in_schema(url, schema))
        try:
            yield engine
        finally:
            engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a thread, as `tollgate serve` would; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        **uvicorn_options(Settings(log_level="warning")),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Tenant:
    """An environment of its own with a server and a client key: each test's sandbox."""

    name: str
    server_key: str
    client_key: str
    base_url: str

    def http(self, *, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"X-API-KEY": key if key is not None else self.server_key},
            timeout=30,
        )


def make_tenant(engine: Engine, base_url: str) -> Tenant:
    name = f"test-{secrets.token_hex(6)}"
    with unit_of_work(make_session_factory(engine)) as session:
        server = environments.create_key(session, environment_name=name, kind=KeyKind.SERVER)
        client = environments.create_key(session, environment_name=name, kind=KeyKind.CLIENT)
    return Tenant(name, server.secret, client.secret, base_url)


def make_demo_tenant(engine: Engine, base_url: str) -> Tenant:
    """A tenant of its own whose environment holds the demo catalog."""
    tenant = make_tenant(engine, base_url)
    with unit_of_work(make_session_factory(engine)) as session:
        environment = environments.ensure_environment(session, name=tenant.name)
        demo.seed(session, environment_id=environment.id, now=datetime.now(UTC))
    return tenant


KEY_LINE = re.compile(r"(server|client) key: (\S+)")


@dataclass
class Served:
    """A `tollgate serve --demo` process: its URL, the keys it printed, its output."""

    url: str
    keys: dict[str, str]
    output: str
    process: subprocess.Popen[bytes]


def launch(database_url: str, log: Path, **settings: str) -> Served:
    """Start `tollgate serve --demo` and wait until it is healthy. `settings` become
    TOLLGATE_* environment variables. The caller stops the process."""
    port = free_port()
    env = {
        **os.environ,
        "TOLLGATE_DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        "TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",  # receivers listen on 127.0.0.1
        **{f"TOLLGATE_{name.upper()}": value for name, value in settings.items()},
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tollgate", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process)
    except BaseException:
        process.kill()
        raise
    output = log.read_text()
    return Served(base_url, dict(KEY_LINE.findall(output)), output, process)


@contextmanager
def serving(
    database_url: str, log: Path, **settings: str
) -> Iterator[tuple[str, dict[str, str], str]]:
    """Run `tollgate serve --demo` as a process; yield its URL, the keys it printed and its
    output."""
    served = launch(database_url, log, **settings)
    try:
        yield served.url, served.keys, served.output
    finally:
        served.process.terminate()
        served.process.wait(timeout=20)


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "tollgate serve exited early"
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("tollgate serve never became healthy")


def start_worker(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `tollgate worker` with a 0.2 s job interval; the caller stops it."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tollgate", "worker"],
            env={
                **os.environ,
                "TOLLGATE_DATABASE_URL": database_url,
                "TOLLGATE_JOB_INTERVAL_SECONDS": "0.2",
                "TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )

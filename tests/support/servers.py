"""Live servers on 127.0.0.1: the app in a thread, or `tollgate serve` and `tollgate worker`
as processes."""

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from tollgate.config import Settings
from tollgate.http.server import uvicorn_options


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def handler_server(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """A plain `http.server` handler served in a thread on 127.0.0.1; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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

"""Webhook tests: a real HTTP receiver on 127.0.0.1, and a Tollgate whose clock they move
(deliveries happen when a test runs the jobs, as `tollgate serve` does every second)."""

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import clocked, demo_client, demo_tenant  # noqa: F401
from tests.support import Tenant


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """Answers each POST with `answer(request)` (200 unless told otherwise)."""

    url: str
    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received], int] = lambda _request: 200

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.payload["type"] == event_type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            request = Received({k.lower(): v for k, v in self.headers.items()}, body)
            box[0].received.append(request)
            self.send_response(box[0].answer(request))
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    server.shutdown()
    server.server_close()


@pytest.fixture
def http(demo_tenant: Tenant) -> Iterator[httpx.Client]:  # noqa: F811 (the imported fixture)
    with demo_tenant.http() as raw:
        yield raw


def endpoint(http: httpx.Client, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    created = http.post("/api/v1/webhooks", json={"url": receiver.url, **fields})
    assert created.status_code == 201, created.text
    data: dict[str, Any] = created.json()["data"]
    return data

"""Webhook tests: a real HTTP receiver on 127.0.0.1, and a Tollgate whose clock they move
(deliveries happen when a test runs the jobs, as `tollgate serve` does every second)."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.support import Tenant
from tests.support.webhooks import Received, Receiver, SlowPeer


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["content-length"])
            body = self.rfile.read(length)
            if len(body) < length:
                # The sender died mid-request (a SIGKILLed worker): nothing was delivered,
                # and nobody is left to answer.
                return
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
def http(demo_tenant: Tenant) -> Iterator[httpx.Client]:
    with demo_tenant.http() as raw:
        yield raw


@pytest.fixture
def slow_peer() -> Iterator[SlowPeer]:
    peer = SlowPeer()
    yield peer
    peer.close()

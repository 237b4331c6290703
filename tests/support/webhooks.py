"""Webhook receivers of the tests: a real HTTP server on 127.0.0.1 that records what it is
sent, and a peer that answers too slowly ever to finish."""

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


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


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 until the block ends."""
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
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()


def endpoint(http: httpx.Client, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    created = http.post("/api/v1/webhooks", json={"url": receiver.url, **fields})
    assert created.status_code == 201, created.text
    data: dict[str, Any] = created.json()["data"]
    return data


class SlowPeer:
    """A raw-socket HTTP peer on 127.0.0.1 that reads each request, then answers one byte
    every `pace` seconds and never finishes its headers: no per-read timeout ever trips.
    It gives up after `give_up` seconds. It records how many requests were open at once
    and whether the client hung up."""

    def __init__(self, *, pace: float = 0.05, give_up: float = 30.0) -> None:
        self._pace = pace
        self._give_up = give_up
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hooks"
        self.requests = 0
        self.open = 0
        self.most_open = 0
        self.hung_up = 0  # requests the client abandoned
        self.requested = threading.Event()  # a request arrived
        self.abandoned = threading.Event()  # the client hung up on one
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            if not _read_request(connection):
                return
            with self._lock:
                self.requests += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            self.requested.set()
            try:
                self._dribble(connection)
            finally:
                with self._lock:
                    self.open -= 1

    def _dribble(self, connection: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 1_000_000
        deadline = time.monotonic() + self._give_up
        for byte in answer:
            if self._stopping.is_set() or time.monotonic() > deadline:
                return
            readable, _, _ = select.select([connection], [], [], self._pace)
            try:
                if readable and not connection.recv(1024):
                    raise ConnectionResetError
                connection.sendall(bytes([byte]))
            except OSError:
                with self._lock:
                    self.hung_up += 1
                self.abandoned.set()
                return

    def close(self) -> None:
        self._stopping.set()
        self._server.close()


def _read_request(connection: socket.socket) -> bool:
    """Read one request (headers and a content-length body); False if the client left."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True

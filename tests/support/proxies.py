"""A forwarding HTTP proxy on 127.0.0.1 that can lose an answer: the request reaches the
server behind it, which acts on it, but the caller's connection is closed before the
answer comes back. That is what a caller sees when it crashes, or the network fails,
right after the server did the work. It can also hold answers back until several
callers have reached the same request, to set up a race on purpose."""

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class _Together:
    method: str
    path: re.Pattern[str]
    barrier: threading.Barrier
    arrived: int = 0

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and self.path.fullmatch(path.split("?")[0]) is not None


class LossyProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.url = ""
        self.lost: list[str] = []  # "METHOD /path" of each answer lost
        self._lose: list[tuple[str, re.Pattern[str]]] = []
        self._together: list[_Together] = []
        self._lock = threading.Lock()

    def lose_next_answer(self, method: str, path: str) -> None:
        """The next request of `method` whose path matches the regex `path` is forwarded,
        and its answer dropped."""
        with self._lock:
            self._lose.append((method, re.compile(path)))

    def answer_together(self, method: str, path: str, count: int) -> None:
        """The answers of the next `count` requests of `method` whose path matches wait
        for each other, and go back at once: `count` callers are then at the same step."""
        with self._lock:
            self._together.append(_Together(method, re.compile(path), threading.Barrier(count)))

    def _wait_for_others(self, method: str, path: str) -> None:
        with self._lock:
            group = next((t for t in self._together if t.matches(method, path)), None)
            if group is None:
                return
            group.arrived += 1
            if group.arrived == group.barrier.parties:
                self._together.remove(group)
        group.barrier.wait(timeout=30)

    def _should_lose(self, method: str, path: str) -> bool:
        with self._lock:
            for armed in self._lose:
                if armed[0] == method and armed[1].fullmatch(path.split("?")[0]):
                    self._lose.remove(armed)
                    self.lost.append(f"{method} {path}")
                    return True
        return False


@contextmanager
def lossy_proxy(target: str) -> Iterator[LossyProxy]:
    proxy = LossyProxy(target)
    client = httpx.Client(timeout=30)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            answer = client.request(
                self.command, proxy.target + self.path, headers=headers, content=body
            )
            proxy._wait_for_others(self.command, self.path)
            if proxy._should_lose(self.command, self.path):
                self.close_connection = True
                return
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-encoding":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def do_DELETE(self) -> None:
            self._forward()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        client.close()

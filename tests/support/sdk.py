"""The SDK's side of its tests: a transport that counts what the SDK sends (and can stand in
for a failing server), and the type of the fixture that starts clients."""

import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tollgate_sdk import Tollgate

STREAM_PATH = "/api/v1/sdk/stream"


@dataclass(frozen=True, slots=True)
class Sent:
    """One request the SDK made: what, from which thread, and the answer's status (None
    while a streamed answer has not arrived, or when the request failed)."""

    method: str
    path: str
    thread: str
    status: int | None


# Sees each request first: returns an answer to give instead of the server's, raises (say
# `httpx.ConnectError`) to fail the request, or returns None to let it through.
Intercept = Callable[[httpx.Request], httpx.Response | None]


class CountingTransport(httpx.BaseTransport):
    """A real `httpx.HTTPTransport` that remembers every request sent through it; a test
    may set `intercept` to answer or fail some of them itself (the edge of the network,
    never Tollgate's code)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._sent: list[Sent] = []
        self.intercept: Intercept | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        thread = threading.current_thread().name
        with self._lock:
            index = len(self._sent)
            self._sent.append(Sent(request.method, request.url.path, thread, None))
        intercept = self.intercept
        answer = intercept(request) if intercept is not None else None
        response = answer if answer is not None else self._inner.handle_request(request)
        with self._lock:
            self._sent[index] = Sent(request.method, request.url.path, thread, response.status_code)
        return response

    def close(self) -> None:
        self._inner.close()

    @property
    def sent(self) -> list[Sent]:
        with self._lock:
            return list(self._sent)

    def requests(self, *, thread: str | None = None) -> list[Sent]:
        """Every request but the long-lived stream's, optionally of one thread only."""
        return [
            s for s in self.sent if s.path != STREAM_PATH and (thread is None or s.thread == thread)
        ]

    def streams(self) -> list[Sent]:
        return [s for s in self.sent if s.path == STREAM_PATH]


StartSdk = Callable[..., Tollgate]

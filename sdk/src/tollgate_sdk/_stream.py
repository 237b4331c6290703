"""The live stream: Server-Sent Events from `/api/v1/sdk/stream`, followed on a thread of
its own, reconnecting with backoff and resuming from the last event id it saw."""

import contextlib
import json
import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("tollgate_sdk")

PATH = "/api/v1/sdk/stream"
MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0
# The server sends a comment every 15 s; this much silence means the connection is dead.
READ_TIMEOUT = 45.0


@dataclass(frozen=True, slots=True)
class ServerEvent:
    name: str
    data: dict[str, Any]
    id: str | None


class EventParser:
    """Turns the lines of a `text/event-stream` into events (the WHATWG rules we need)."""

    def __init__(self) -> None:
        self._name = "message"
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> ServerEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._name = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> ServerEvent | None:
        if not self._data:
            self._name = "message"
            return None
        try:
            data = json.loads("\n".join(self._data))
        except ValueError:
            data = {}
        event = ServerEvent(self._name, data if isinstance(data, dict) else {}, self._id)
        self._name, self._data = "message", []
        return event


class StreamFollower(threading.Thread):
    """Calls `on_event` for every event, on this thread; `on_disconnect` when the stream
    drops (after which it reconnects by itself until `stop`)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        on_event: Callable[[ServerEvent], None],
        on_disconnect: Callable[[], None],
    ) -> None:
        super().__init__(name="tollgate-sdk-stream", daemon=True)
        self.http = http
        self._on_event = on_event
        self._on_disconnect = on_disconnect
        self._stopping = threading.Event()
        self.last_event_id: str | None = None
        self.resumed = False  # whether the current connection picked up where one ended
        self._response: httpx.Response | None = None
        self._lock = threading.Lock()  # between `stop` and a connection being made

    def stop(self) -> None:
        """End the stream now (the caller closes the HTTP client afterwards)."""
        with self._lock:
            self._stopping.set()
            response = self._response
        # Closing the client would not wake a thread blocked reading the socket; shutting
        # the socket down does.
        if response is not None:
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.join(timeout=5)

    def run(self) -> None:
        backoff = MIN_BACKOFF
        while not self._stopping.is_set():
            try:
                if self._follow():
                    backoff = MIN_BACKOFF  # it was live; a drop now is news, not a pattern
            except Exception as error:  # an SDK thread must never die of a surprise
                if not self._stopping.is_set():
                    log.warning("Tollgate stream interrupted (%s); reconnecting", error)
            if self._stopping.is_set():
                return
            self._on_disconnect()
            self._stopping.wait(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _follow(self) -> bool:
        """Read one connection until it ends; whether it got as far as being live."""
        headers = {"accept": "text/event-stream"}
        self.resumed = self.last_event_id is not None
        if self.last_event_id is not None:
            headers["last-event-id"] = self.last_event_id
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT)
        parser = EventParser()
        live = False
        with self.http.stream("GET", PATH, headers=headers, timeout=timeout) as response:
            with self._lock:
                if self._stopping.is_set():
                    return False  # stopped while connecting: nothing would wake the read
                self._response = response
            if response.status_code != 200:
                response.read()
                log.error(
                    "Tollgate stream refused: %s %s", response.status_code, response.text[:200]
                )
                return False
            for line in response.iter_lines():
                event = parser.feed(line)
                if event is None:
                    continue
                if event.id is not None:
                    self.last_event_id = event.id
                live = live or event.name == "ready"
                self._on_event(event)
        return live

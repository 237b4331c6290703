"""The HTTP server Tollgate runs: uvicorn, with limits on each request's head.

uvicorn's httptools protocol (the one it picks when httptools is installed, as it is with
Tollgate) bounds neither how long a client may take to send a request's head (the request
line and the header fields) nor how large it may be: a connection that never finishes its
head stays open forever, and a header of any size is buffered whole. `HeadLimitedProtocol`
adds both limits to that protocol:

- a deadline: a head must be complete within `header_timeout_seconds` of the connection
  opening or of the previous response; otherwise the connection is closed, after a `408` if
  part of a head had arrived (a keep-alive connection with nothing sent is just closed);
- a size: a head larger than `max_header_bytes`, or with more than `max_header_fields`
  fields, is answered `431` and the connection closed, without reading the rest of it.

Both cost next to nothing per request: bytes are counted per read (not per byte) until the
head is complete, and one timer per connection, re-armed only when it fires, watches a
deadline that each response moves.
"""

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tollgate.config import (
    DEFAULT_HEADER_TIMEOUT_SECONDS,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_FIELDS,
    Settings,
)
from tollgate.http.errors import error_response

log = logging.getLogger("tollgate.http")

# Open streams never end by themselves; shutting down must not wait for them.
SHUTDOWN_GRACE_SECONDS = 3
# After refusing a head, what the client is still sending is read and dropped this long, so
# that it gets to read the answer: closing a socket with unread data resets the connection,
# and a reset may destroy the answer before the client reads it.
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class HeadLimits:
    timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS
    max_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_fields: int = DEFAULT_MAX_HEADER_FIELDS

    @classmethod
    def of(cls, settings: Settings) -> "HeadLimits":
        return cls(
            timeout_seconds=settings.header_timeout_seconds,
            max_bytes=settings.max_header_bytes,
            max_fields=settings.max_header_fields,
        )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What every Tollgate server passes to `uvicorn.run` or `uvicorn.Config`, besides the
    application and where to listen."""
    return {
        "http": http_protocol(HeadLimits.of(settings)),
        # tollgate.logs formats uvicorn's records too; uvicorn must not install its own.
        "log_config": None,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_SECONDS,
    }


def http_protocol(limits: HeadLimits) -> type["HeadLimitedProtocol"]:
    """`HeadLimitedProtocol` with `limits`, as uvicorn's `http` option takes it (a class)."""
    return type("HeadLimitedProtocol", (HeadLimitedProtocol,), {"limits": limits})


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline and a size limit on each request head.

    With the default limits it can also be named on uvicorn's command line:
    `uvicorn --http tollgate.http.server:HeadLimitedProtocol ...`.
    """

    limits: ClassVar[HeadLimits] = HeadLimits()

    # A head is "open" from the connection's start, and from the end of each request, until
    # the parser has all of the next head's fields.
    _head_open: bool
    # Bytes of the reads since the open head began, not counting the read in which it began
    # when that read also ended the previous request: a lower bound of the head's size.
    _head_bytes: int
    # The length of that uncounted read; with `_head_bytes`, an upper bound.
    _head_slack: int
    _read_bytes: int  # the length of the read being parsed
    # When the open head must be complete; infinite while a request is being answered.
    _deadline: float
    _deadline_timer: asyncio.TimerHandle | None
    # `limits`, unpacked once per connection: these are read on every request.
    _timeout: float
    _max_bytes: int
    _max_fields: int

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self._timeout = self.limits.timeout_seconds
        self._max_bytes = self.limits.max_bytes
        self._max_fields = self.limits.max_fields
        self._head_open = True
        self._head_bytes = self._head_slack = self._read_bytes = 0
        self._deadline = self.loop.time() + self._timeout
        self._deadline_timer = self.loop.call_later(self._timeout, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._read_bytes = len(data)
        super().data_received(data)
        if self._head_open:
            self._head_bytes += self._read_bytes
            if self._head_bytes > self._max_bytes and not self.transport.is_closing():
                self._refuse_open_head()

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._deadline = math.inf
        if len(self.headers) > self._max_fields or (
            # An upper bound of the head's size, from the reads (when the head began in this
            # read, `_head_bytes` is minus its length); measured only if that is over.
            self._head_bytes + self._head_slack + self._read_bytes > self._max_bytes
            and self._head_size() > self._max_bytes
        ):
            self._answer_with(self._too_large(fields=len(self.headers)))
        else:
            super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The rest of this read may begin the next (pipelined) head; counting starts anew.
        self._head_open = True
        self._head_slack = self._read_bytes
        self._head_bytes = -self._read_bytes  # data_received adds this read back: 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._head_open:  # else a pipelined request is already complete, and now runs
            self._deadline = self.loop.time() + self._timeout

    def handle_websocket_upgrade(self) -> None:
        self._stop_deadline_timer()
        super().handle_websocket_upgrade()

    def _head_size(self) -> int:
        """The head's size in bytes, give or take whitespace the parser dropped."""
        request_line = len(self.parser.get_method()) + len(self.url) + len(" HTTP/1.1\r\n") + 1
        fields = sum(len(name) + len(value) + len(": \r\n") for name, value in self.headers)
        return request_line + fields + len("\r\n")

    def _answer_with(self, response: Response) -> None:
        """Answer the request whose head just completed with `response`, and close: through
        uvicorn's own request cycle, which also consumes whatever body follows."""
        response.headers["connection"] = "close"
        app, self.app = self.app, response
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _refuse_open_head(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head grew past the limit while an earlier answer is still being
            # written: there is no room for an answer of our own.
            log.warning("closing a connection whose pipelined request head is too large")
            self.transport.close()
            return
        self._close_with(self._too_large())

    def _too_large(self, *, fields: int = 0) -> Response:
        """The 431 for a head over the field limit (given its `fields`), else the byte limit."""
        if fields > self._max_fields:
            problem = f"more than {self._max_fields} header fields"
        else:
            problem = f"a request line and header fields over {self._max_bytes} bytes"
        log.warning("refused a request head with %s", problem)
        return error_response(
            431, "headers_too_large", f"the request has {problem}; send fewer or smaller headers"
        )

    def _check_deadline(self) -> None:
        self._deadline_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if now < self._deadline:
            wait = min(self._deadline - now, self._timeout)
            self._deadline_timer = self.loop.call_later(wait, self._check_deadline)
        elif self._head_bytes > 0:
            log.warning("a request head did not arrive within the header timeout; closing")
            self._close_with(
                error_response(
                    408,
                    "request_timeout",
                    f"the request line and header fields must arrive within "
                    f"{self._timeout:g} s; send them at once",
                )
            )
        else:
            self.transport.close()  # an idle keep-alive connection: nothing to answer

    def _stop_deadline_timer(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None

    def _close_with(self, response: Response) -> None:
        """Write `response` while no other answer is being written, then close."""
        headers = [
            *self.server_state.default_headers,
            *response.raw_headers,
            (b"connection", b"close"),
        ]
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[response.status_code],
                    *(name + b": " + value + b"\r\n" for name, value in headers),
                    b"\r\n",
                    response.body,
                ]
            )
        )
        self._stop_deadline_timer()
        self.connections.discard(self)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.transport.set_protocol(_Drain(self.transport, self.loop))
        else:
            self.transport.close()


class _Drain(asyncio.Protocol):
    """Reads and drops what a refused client still sends, for `LINGER_SECONDS` at most."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_later(LINGER_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the client is done too: close

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()

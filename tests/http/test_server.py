"""The server's own limits on request heads, against a real `tollgate serve` over raw sockets:
a head must arrive within TOLLGATE_HEADER_TIMEOUT_SECONDS and fit in
TOLLGATE_MAX_HEADER_BYTES and TOLLGATE_MAX_HEADER_FIELDS."""

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h11

from tests.support import serving
from tollgate.config import DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_FIELDS

# Generous: how long a test waits for the server before calling it stuck.
PATIENCE_SECONDS = 15.0
REQUEST_LINE = b"GET /healthz HTTP/1.1\r\nHost: tollgate\r\n"


@dataclass
class Answer:
    status: int
    body: bytes

    def error(self) -> dict[str, object]:
        error = json.loads(self.body)["error"]
        assert isinstance(error, dict)
        assert set(error) == {"code", "message", "field"}
        assert error["field"] is None
        return error


class Client:
    """One raw HTTP/1.1 connection. What it sends is written by hand; h11 reads the answers,
    one for each GET the test sent (h11 is told of each GET only to frame its answer)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=PATIENCE_SECONDS)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = h11.Connection(h11.CLIENT)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, head: bytes = REQUEST_LINE + b"\r\n") -> Answer:
        self.send(head)
        answer = self.answer()
        assert answer is not None, "the server closed the connection without answering"
        return answer

    def answer(self) -> Answer | None:
        """The next answer, or None if the server closes without one."""
        if self.reader.our_state is h11.IDLE:
            self.reader.send(h11.Request(method="GET", target="/", headers=[("Host", "t")]))
            self.reader.send(h11.EndOfMessage())
        status, body = 0, b""
        while True:
            event = self.reader.next_event()
            if event is h11.NEED_DATA:
                self.reader.receive_data(self._recv())
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if self.reader.our_state is h11.DONE and self.reader.their_state is h11.DONE:
                    self.reader.start_next_cycle()
                return Answer(status, body)
            elif isinstance(event, h11.ConnectionClosed):
                return None

    def expect_refusal(self) -> Answer:
        """The answer the server sent without waiting for a whole request, and then closed."""
        answer = self.answer()
        assert answer is not None, "the server closed the connection without answering"
        assert self.closed()
        return answer

    def closed(self) -> bool:
        """True once the server has closed the connection (waiting PATIENCE_SECONDS at most)."""
        try:
            return self._recv() == b""
        except ConnectionResetError:
            return True

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except TimeoutError:
            raise AssertionError(
                f"the server kept the connection open for {PATIENCE_SECONDS} s"
            ) from None

    def close(self) -> None:
        self.sock.close()


@contextmanager
def connection(url: str) -> Iterator[Client]:
    client = Client(url)
    try:
        yield client
    finally:
        client.close()


def padded_head(size: int, *, method: bytes = b"GET", fields: bytes = b"") -> bytes:
    """A complete head of exactly `size` bytes for /healthz, with `fields` in it."""
    start = method + b" /healthz HTTP/1.1\r\nHost: tollgate\r\n" + fields + b"X-Padding: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


class TestHeaderTimeout:
    def test_a_stalled_head_gets_408_and_a_silent_connection_is_closed(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with (
            serving(database_url, tmp_path / "serve.log", header_timeout_seconds="1") as served,
            connection(served[0]) as stalled,
            connection(served[0]) as silent,
        ):
            stalled.send(REQUEST_LINE + b"X-Half-Sent: ")
            answer = stalled.expect_refusal()
            assert answer.status == 408
            assert answer.error()["code"] == "request_timeout"
            assert silent.closed()

    def test_a_head_trickling_in_past_the_timeout_is_cut_off(
        self, database_url: str, tmp_path: Path
    ) -> None:
        # Each byte arriving in time must not extend the deadline: that is a slowloris.
        with (
            serving(database_url, tmp_path / "serve.log", header_timeout_seconds="1") as served,
            connection(served[0]) as client,
        ):
            client.send(REQUEST_LINE)
            client.sock.settimeout(0.2)
            deadline = time.monotonic() + PATIENCE_SECONDS
            while time.monotonic() < deadline:
                client.send(b"X-Slow: 1\r\n")
                try:
                    reply = client.sock.recv(65536)
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError(f"still trickling in after {PATIENCE_SECONDS} s")
            assert reply.startswith(b"HTTP/1.1 408 ")

    def test_slow_heads_within_the_timeout_are_served_and_each_answer_restarts_it(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with (
            serving(database_url, tmp_path / "serve.log", header_timeout_seconds="3") as served,
            connection(served[0]) as client,
        ):
            # Each head takes 1.8 s: well within the timeout, slower than any one read, and
            # both together take longer than the timeout, so the second one's deadline must
            # count from the first answer, not from the connection.
            head = REQUEST_LINE + b"X-Slow: 1\r\n\r\n"
            for _ in range(2):
                for piece in (head[:10], head[10:30]):
                    client.send(piece)
                    time.sleep(0.9)
                assert client.request(head[30:]).status == 200
            client.send(REQUEST_LINE)
            assert client.expect_refusal().status == 408


class TestHeaderSize:
    def test_a_huge_head_is_refused_before_the_client_has_sent_it(
        self, database_url: str, tmp_path: Path
    ) -> None:
        huge = REQUEST_LINE + b"X-Huge: " + b"a" * 8 * 1024 * 1024 + b"\r\n\r\n"
        with serving(database_url, tmp_path / "serve.log") as served:
            with connection(served[0]) as client:
                client.send(huge[: 1024 * 1024])  # the other 7 MiB are never sent
                answer = client.expect_refusal()
            assert answer.status == 431
            error = answer.error()
            assert error["code"] == "headers_too_large"
            assert str(DEFAULT_MAX_HEADER_BYTES) in str(error["message"])
            with connection(served[0]) as client:
                # Many small reads add up too, for a later request on a kept-alive connection.
                assert client.request().status == 200
                for start in range(0, 2 * DEFAULT_MAX_HEADER_BYTES, 1024):
                    client.send(huge[start : start + 1024])
                    time.sleep(0.002)
                assert client.expect_refusal().status == 431

    def test_a_head_at_the_limit_is_served_and_one_past_it_refused(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with serving(database_url, tmp_path / "serve.log") as served:
            with connection(served[0]) as client:
                assert client.request().status == 200
                assert client.request(padded_head(DEFAULT_MAX_HEADER_BYTES)).status == 200
                # Two heads in one write (pipelined) are each measured on their own.
                assert client.request(padded_head(DEFAULT_MAX_HEADER_BYTES) * 2).status == 200
                assert (answer := client.answer()) is not None
                assert answer.status == 200
            with connection(served[0]) as client:
                # A body sent with the head, in the same write, is not part of the head.
                body = b"a" * 100_000
                length = b"Content-Length: %d\r\n" % len(body)
                post = padded_head(DEFAULT_MAX_HEADER_BYTES, method=b"POST", fields=length)
                assert client.request(post + body).status == 405  # /healthz only answers GET
            with connection(served[0]) as client:
                answer = client.request(padded_head(DEFAULT_MAX_HEADER_BYTES + 1))
                assert answer.status == 431
                assert answer.error()["code"] == "headers_too_large"
                assert client.closed()

    def test_a_head_with_too_many_fields_is_refused(
        self, database_url: str, tmp_path: Path
    ) -> None:
        def head(fields: int) -> bytes:  # Host is one of them
            return REQUEST_LINE + b"".join(b"X-%d: 1\r\n" % n for n in range(fields - 1)) + b"\r\n"

        with serving(database_url, tmp_path / "serve.log") as served:
            with connection(served[0]) as client:
                assert client.request(head(DEFAULT_MAX_HEADER_FIELDS)).status == 200
            with connection(served[0]) as client:
                answer = client.request(head(DEFAULT_MAX_HEADER_FIELDS + 1))
                assert answer.status == 431
                assert "fields" in str(answer.error()["message"])
                assert client.closed()

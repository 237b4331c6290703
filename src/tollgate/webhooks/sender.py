"""One webhook POST, bounded by a total deadline, to an address the target rules allow.

The deadline covers everything (resolving the host, connecting, TLS, sending, the status
line, the headers and a small part of the body), so a receiver that answers a byte at a
time cannot hold a delivery past it, as per-read timeouts would let it.

Connections go through `PinnedBackend`: it resolves the host once, checks every address
with the target rules, and connects to an address that passed, while TLS (SNI, the
certificate) and the `Host` header keep the name. The sender never uses a proxy (nothing is
read from `HTTP_PROXY` and the like): a proxy would connect wherever the URL points, after
the check, and defeat it."""

import time
import typing
from collections.abc import AsyncIterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass

import anyio
import anyio.to_thread
import httpcore
import httpx

from tollgate.webhooks.targets import TargetRefused, TargetRules

USER_AGENT = b"Tollgate-Webhooks"
EXCERPT_BYTES = 1024  # of a failed answer's body, kept as the attempt's error
KEEPALIVE_SECONDS = 5.0
# What a failed exchange raises (the deadline aside); each is one failed attempt.
_TRANSPORT_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.TimeoutException,
    httpcore.UnsupportedProtocol,
    TargetRefused,
)
# Answers meaning the endpoint itself is unwell, not one message: back off from it.
_UNWELL_STATUSES = frozenset({408, 429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None  # None: no answer (refused, unreachable, cut at the deadline)
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def endpoint_unwell(self) -> bool:
        """Whether more requests to the endpoint now would only add to its trouble."""
        return self.status_code is None or self.status_code in _UNWELL_STATUSES


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the target rules allow, resolved once per connection."""

    def __init__(self, rules: TargetRules) -> None:
        self._rules = rules
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # The resolver blocks; abandoned on the deadline rather than waited for.
        addresses = await anyio.to_thread.run_sync(
            self._rules.addresses, host, abandon_on_cancel=True
        )
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # `addresses` is never empty
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class Sender:
    """POSTs webhooks; one per worker, used from the worker's event loop only."""

    def __init__(self, rules: TargetRules, *, deadline_seconds: float, connections: int) -> None:
        self.deadline_seconds = deadline_seconds
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpcore.default_ssl_context(),
            max_connections=connections,
            keepalive_expiry=KEEPALIVE_SECONDS,
            network_backend=PinnedBackend(rules),
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        started = time.monotonic()

        def outcome(status_code: int | None, error: str | None) -> Outcome:
            return Outcome(status_code, error, int((time.monotonic() - started) * 1000))

        try:
            with anyio.fail_after(self.deadline_seconds):
                status, excerpt = await self._exchange(url, body, headers)
        except TimeoutError:
            return outcome(None, f"no answer within the {self.deadline_seconds:g} s deadline")
        except TargetRefused as refused:
            return outcome(None, f"not sent: {refused}")
        except _TRANSPORT_ERRORS as error:
            return outcome(None, f"{type(error).__name__}: {error}"[:EXCERPT_BYTES])
        if 200 <= status < 300:
            return outcome(status, None)
        return outcome(status, excerpt.decode(errors="replace") or None)

    async def _exchange(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """The answer's status and the start of its body (the rest is never read)."""
        target = httpx.URL(url)
        request_headers = [
            (b"host", target.netloc),
            (b"user-agent", USER_AGENT),
            *((name.encode(), value.encode()) for name, value in headers.items()),
        ]
        origin = httpcore.URL(
            scheme=target.raw_scheme, host=target.raw_host, port=target.port, target=target.raw_path
        )
        async with self._pool.stream(
            "POST", origin, headers=request_headers, content=body
        ) as response:
            return response.status, await _excerpt(response)

    async def aclose(self) -> None:
        await self._pool.aclose()


async def _excerpt(response: httpcore.Response) -> bytes:
    """Up to EXCERPT_BYTES of the body. A short body is read whole, so the connection can
    be kept; a longer one is left unread, and its connection closed."""
    stream = response.stream
    assert isinstance(stream, AsyncIterable)
    read = b""
    async with aclosing(aiter(stream)) as chunks:  # type: ignore[type-var]
        async for chunk in chunks:
            read += chunk
            if len(read) >= EXCERPT_BYTES:
                break
    return read[:EXCERPT_BYTES]

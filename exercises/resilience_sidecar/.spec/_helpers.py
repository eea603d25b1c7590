"""Helpers for the resilience_sidecar specs: a scripted upstream, a reference breaker."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from resilience_sidecar import ConnectFailed, Response

from grader.spectools import LOCALHOST, FakeClock, bounded, tcp_server


def outcome(kind: str | int) -> Any:
    """A fresh outcome: a status code becomes a Response, a word becomes the exception it names."""
    if isinstance(kind, int):
        return Response(kind, [("x-spec", "1")], f"status {kind}".encode())
    return {
        "connect": ConnectFailed("connection refused"),
        "timeout": TimeoutError("per-try timeout"),
        "reset": ConnectionResetError("connection reset by peer"),
    }[kind]


class Script:
    """An attempt coroutine that plays scripted outcomes in order (the last one repeats).

    Each attempt records the seconds it was given and moves the fake clock by ``cost``.
    """

    def __init__(
        self, outcomes: list[str | int], clock: FakeClock | None = None, cost: float = 0.0
    ):
        self.outcomes = list(outcomes)
        self.clock = clock
        self.cost = cost
        self.given: list[float] = []

    @property
    def attempts(self) -> int:
        return len(self.given)

    async def __call__(self, seconds: float) -> Response:
        self.given.append(seconds)
        if self.clock is not None and self.cost:
            self.clock.advance(self.cost)
        kind = self.outcomes[min(len(self.given), len(self.outcomes)) - 1]
        result = outcome(kind)
        if isinstance(result, BaseException):
            raise result
        return result


class ReferenceBreaker:
    """The breaker of the lesson, written independently as a transition table per event.

    A count-based window of the last ``window_size`` outcomes; it trips when it holds at least
    ``minimum_calls`` and the failure share is >= ``threshold``; open lasts ``reset_timeout``
    seconds (measured from the trip); half-open admits ``probes`` calls and closes after as many
    successes, or trips again on the first failure.
    """

    def __init__(self, threshold, window_size, minimum_calls, reset_timeout, probes, now):
        self.threshold, self.window_size = threshold, window_size
        self.minimum_calls, self.reset_timeout, self.probes = minimum_calls, reset_timeout, probes
        self.now = now
        self.state = "closed"
        self.window: list[bool] = []
        self.tripped_at = 0.0
        self.admitted = self.succeeded = 0

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.state == "open" and self.now >= self.tripped_at + self.reset_timeout:
            self.state, self.admitted, self.succeeded = "half_open", 0, 0

    def allow(self) -> bool:
        if self.state == "half_open":
            if self.admitted == self.probes:
                return False
            self.admitted += 1
        return self.state != "open"

    def record(self, ok: bool) -> None:
        if self.state == "closed":
            self.window = (self.window + [ok])[-self.window_size :]
            failures = self.window.count(False)
            n = len(self.window)
            if n >= self.minimum_calls and failures >= self.threshold * n:
                self.trip()
        elif self.state == "half_open":
            if not ok:
                self.trip()
            else:
                self.succeeded += 1
                if self.succeeded == self.probes:
                    self.state, self.window = "closed", []

    def trip(self) -> None:
        self.state, self.tripped_at, self.window = "open", self.now, []


class Upstream:
    """A scripted HTTP upstream on 127.0.0.1:0: answers the statuses in ``script`` in order
    (the last one repeats; "hang" never answers, "reset" closes without a response), and keeps
    every request it received (the head as text, the body as bytes)."""

    def __init__(
        self, script: list[int | str], on_request: Callable[[], None] | None = None
    ) -> None:
        self.script = list(script)
        self.on_request = on_request
        self.requests: list[tuple[str, bytes]] = []
        self.arrived = asyncio.Event()

    def header(self, index: int, name: str) -> list[str]:
        head = self.requests[index][0]
        found = []
        for line in head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name:
                found.append(value.strip())
        return found

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(value)
        body = await reader.readexactly(length)
        self.requests.append((head, body))
        self.arrived.set()
        if self.on_request is not None:
            self.on_request()
        what = self.script[min(len(self.requests), len(self.script)) - 1]
        if what == "hang":
            await asyncio.Event().wait()
        if what == "reset":
            return
        if what == "garbage":
            writer.write(b"SPDY/3 200 maybe\r\n\r\nhello")
            await writer.drain()
            return
        payload = f"answer {len(self.requests)}".encode()
        writer.write(
            f"HTTP/1.1 {what} X\r\ncontent-length: {len(payload)}\r\nx-upstream: yes\r\n"
            f"connection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()


@contextlib.asynccontextmanager
async def upstream(
    script: list[int | str], on_request: Callable[[], None] | None = None
) -> AsyncIterator[tuple[Upstream, int]]:
    server = Upstream(script, on_request)
    async with tcp_server(server.handle) as (_, port):
        yield server, port


@contextlib.asynccontextmanager
async def sidecar(port: int, make: Callable[[], Any]) -> AsyncIterator[int]:
    """Run a Sidecar in front of 127.0.0.1:port; yields the sidecar's own port."""
    from resilience_sidecar import Sidecar

    car = Sidecar((LOCALHOST, port), make())
    host, own = await bounded(car.start(LOCALHOST, 0), 5.0, "Sidecar.start()")
    try:
        yield own
    finally:
        await bounded(car.close(), 5.0, "Sidecar.close()")


async def send(
    port: int, request: bytes, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One request to the sidecar; the parsed (status, headers, body) of its answer."""

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            writer.write(request)
            return await reader.read()
        finally:
            writer.close()

    data = await bounded(exchange(), timeout, "the sidecar's response")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines[0].startswith("HTTP/1.1 ") else -1
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers, body


async def within(awaitable: Any, timeout: float, what: str) -> Any:
    """Like ``bounded``, but a TimeoutError raised by the awaitable itself passes through.

    (``bounded`` reads any TimeoutError as its own expiry, and a per-try timeout raises one.)
    """
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise AssertionError(f"waited {timeout:g} s for {what}; it never came")
    return task.result()


class PyBreakerDriver:
    """pybreaker (a consecutive-failure breaker) on the spec's fake clock.

    pybreaker reads ``datetime.now(UTC)``; the driver swaps the module's ``datetime`` for one
    whose ``now()`` is the fake clock, so the reset timeout is measured in fake seconds.
    """

    def __init__(
        self,
        monkeypatch: Any,
        clock: FakeClock,
        fail_max: int,
        reset_timeout: float,
        success_threshold: int,
    ) -> None:
        import datetime as dt

        import pybreaker

        class FakeDatetime(dt.datetime):
            @classmethod
            def now(cls, tz: Any = None) -> dt.datetime:  # type: ignore[override]
                return dt.datetime.fromtimestamp(clock(), tz=dt.UTC)

        monkeypatch.setattr(pybreaker, "datetime", FakeDatetime)
        self.pybreaker = pybreaker
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_timeout, success_threshold=success_threshold
        )

    def call(self, ok: bool) -> bool:
        """One call through pybreaker; True if the operation ran (the breaker allowed it)."""
        ran = []

        def operation() -> None:
            ran.append(True)
            if not ok:
                raise ConnectionError("upstream failed")

        with contextlib.suppress(ConnectionError, self.pybreaker.CircuitBreakerError):
            self.breaker.call(operation)
        return bool(ran)

    @property
    def state(self) -> str:
        return self.breaker.current_state.replace("-", "_")


async def send_raw(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """One request to the sidecar; every byte of its answer, up to EOF."""

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            writer.write(request)
            return await reader.read()
        finally:
            writer.close()

    return await bounded(exchange(), timeout, "the sidecar's response")


def h11_read(raw: bytes, method: str = "GET") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Parse a response with h11 (the oracle) as a client that sent ``method``; raises
    h11.RemoteProtocolError if the bytes are not valid HTTP/1.1."""
    import h11

    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(h11.Request(method=method, target="/x", headers=[("Host", "svc")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    conn.receive_data(b"")
    status, headers, body = -1, [], b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Response):
            status, headers = event.status_code, list(event.headers)
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) or event is h11.NEED_DATA:
            return status, headers, body

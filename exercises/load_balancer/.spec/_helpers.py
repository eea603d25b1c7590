"""Helpers for the load_balancer specs: an oracle picker, a spying picker, odd sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from load_balancer import Backend

from grader.spectools import LOCALHOST, bounded, tcp_server


def make_backends(names: str, weights: Sequence[int] | None = None) -> list[Backend]:
    """One Backend per letter of ``names``; the addresses are never dialled by picker specs."""
    weights = weights or [1] * len(names)
    return [
        Backend(n, LOCALHOST, 1000 + i, w)
        for i, (n, w) in enumerate(zip(names, weights, strict=True))
    ]


def names(picks: Sequence[Backend]) -> str:
    return " ".join(b.name for b in picks)


# -- the oracle ---------------------------------------------------------------------------------


class Model:
    """An independent model of the kata's rules, written from the lesson, not from the solution.

    strategy "rr": plain round robin with a cursor; "swrr": nginx smooth weighted round robin
    (ngx_http_upstream_get_peer: add weight to current, take the max, first on a tie, subtract
    the total of the candidates); "lc": fewest in flight, ties by the round-robin cursor.
    Health: ``max_fails`` failures in a row eject a backend until ``fail_timeout`` seconds after
    the last of them (available again at exactly that instant); a success clears the count.
    """

    def __init__(
        self,
        strategy: str,
        names_: str,
        weights: Sequence[int],
        max_fails: int,
        fail_timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self.strategy = strategy
        self.names = list(names_)
        self.weight = dict(zip(self.names, weights, strict=True))
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout
        self.clock = clock
        self.current = dict.fromkeys(self.names, 0)
        self.busy = dict.fromkeys(self.names, 0)
        self.fails = dict.fromkeys(self.names, 0)
        self.last_failure = dict.fromkeys(self.names, 0.0)
        self.cursor = 0

    def ejected(self, name: str) -> bool:
        if self.max_fails == 0 or self.fails[name] < self.max_fails:
            return False
        return self.clock() - self.last_failure[name] < self.fail_timeout

    def _cycle_from_cursor(self) -> list[int]:
        n = len(self.names)
        return [(self.cursor + k) % n for k in range(n)]

    def pick(self, exclude: Sequence[str] = ()) -> str | None:
        ok = [n for n in self.names if n not in exclude and not self.ejected(n)]
        if not ok:
            return None
        if self.strategy == "swrr":
            total = sum(self.weight[n] for n in ok)
            for n in ok:
                self.current[n] += self.weight[n]
            top = max(self.current[n] for n in ok)
            chosen = next(n for n in ok if self.current[n] == top)
            self.current[chosen] -= total
        else:
            if self.strategy == "lc":
                low = min(self.busy[n] for n in ok)
                ok = [n for n in ok if self.busy[n] == low]
            index = next(i for i in self._cycle_from_cursor() if self.names[i] in ok)
            self.cursor = index + 1
            chosen = self.names[index]
        self.busy[chosen] += 1
        return chosen

    def release(self, name: str) -> None:
        self.busy[name] -= 1

    def success(self, name: str) -> None:
        self.fails[name] = 0

    def failure(self, name: str) -> None:
        self.fails[name] += 1
        self.last_failure[name] = self.clock()


def swrr_sequence(weights: Sequence[int], count: int) -> list[int]:
    """Indices picked by nginx smooth weighted round robin, all backends healthy."""
    current = [0] * len(weights)
    total = sum(weights)
    out = []
    for _ in range(count):
        current = [c + w for c, w in zip(current, weights, strict=True)]
        best = current.index(max(current))  # .index: the first on a tie, as nginx's `>`
        current[best] -= total
        out.append(best)
    return out


# -- a picker that reports what the proxy does with it ------------------------------------------


class Spy:
    """Wraps a real picker, records every call the proxy makes, and lets a spec await them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def _note(self, what: str, backend: Backend) -> None:
        self.calls.append((what, backend.name))
        self._changed.set()

    def count(self, what: str, name: str | None = None) -> int:
        return sum(1 for w, n in self.calls if w == what and (name is None or n == name))

    def pick(self, *args: Any, **kwargs: Any) -> Backend:
        backend = self.inner.pick(*args, **kwargs)
        self._note("pick", backend)
        return backend

    def release(self, backend: Backend) -> None:
        self.inner.release(backend)
        self._note("release", backend)

    def report_success(self, backend: Backend) -> None:
        self.inner.report_success(backend)
        self._note("success", backend)

    def report_failure(self, backend: Backend) -> None:
        self.inner.report_failure(backend)
        self._note("failure", backend)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        """Wait, bounded, until ``condition()`` holds; it is re-checked after every call."""

        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await bounded(wait(), timeout, what)


# -- backends and odd sockets -------------------------------------------------------------------


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A port where connect() hangs: a listener with backlog 0 whose accept queue is full.

    Linux keeps backlog + 1 connections in the accept queue and drops further SYNs, so the
    client keeps retransmitting and its connect never completes (VECTORS.md, kernel facts).
    """
    listener = socket.socket()
    filler = socket.socket()
    try:
        listener.bind((LOCALHOST, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect((LOCALHOST, port))
        yield port
    finally:
        filler.close()
        listener.close()


class Farm:
    """Real backends on port 0. Each connection puts its backend's name on ``accepted`` when it
    starts and on ``finished`` when the backend's handler is done with it."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue[str] = asyncio.Queue()
        self.finished: asyncio.Queue[str] = asyncio.Queue()
        self.live: dict[str, int] = {}

    def counting(self, name: str, serve: Callable[[Any, Any], Any]) -> Any:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.live[name] = self.live.get(name, 0) + 1
            self.accepted.put_nowait(name)
            try:
                await serve(reader, writer)
            finally:
                self.live[name] -= 1
                self.finished.put_nowait(name)

        return handler

    async def next_accepted(self, what: str = "a backend to accept the connection") -> str:
        return await bounded(self.accepted.get(), 5.0, what)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo every chunk as it comes; half-close back after the client's EOF."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.write_eof()


async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Say nothing; stay until the other side closes."""
    while await reader.read(65536):
        pass


@contextlib.asynccontextmanager
async def farm(
    spec: dict[str, Callable[[Any, Any], Any]], weights: dict[str, int] | None = None
) -> AsyncIterator[tuple[Farm, list[Backend]]]:
    """Start one real backend per entry of ``spec`` (name -> handler); yield the farm and Backends."""
    weights = weights or {}
    result = Farm()
    async with contextlib.AsyncExitStack() as stack:
        backends = []
        for name, serve in spec.items():
            host, port = await stack.enter_async_context(tcp_server(result.counting(name, serve)))
            backends.append(Backend(name, host, port, weights.get(name, 1)))
        yield result, backends


async def open_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await bounded(
        asyncio.open_connection(LOCALHOST, port), 5.0, "the proxy to accept a connection"
    )


async def read_all(reader: asyncio.StreamReader, what: str) -> bytes:
    """Read to EOF, bounded. A reset counts as EOF (the proxy may close a client abruptly)."""

    async def go() -> bytes:
        chunks = []
        try:
            while data := await reader.read(65536):
                chunks.append(data)
        except ConnectionResetError:
            pass
        return b"".join(chunks)

    return await bounded(go(), 5.0, what)


@contextlib.asynccontextmanager
async def running(proxy: Any) -> AsyncIterator[int]:
    """Start ``proxy`` on 127.0.0.1 port 0 and close it on the way out; yields the port."""
    port = await bounded(proxy.start(LOCALHOST, 0), 5.0, "TcpProxy.start() to return")
    try:
        yield port
    finally:
        await bounded(proxy.close(), 5.0, "TcpProxy.close() to return")

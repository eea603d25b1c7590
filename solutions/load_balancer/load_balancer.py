"""A load balancer: a sans-IO backend picker and a small asyncio TCP proxy that uses it.

Theory of operation
-------------------
The picker is pure bookkeeping. It knows the backends, how many connections each one has in
flight, and how each one has fared lately; it does no I/O and reads time only through the
``clock`` it was given. Every picker shares the same life cycle, modelled on nginx's
``get``/``free`` peer callbacks:

    pick()            choose a backend, count one connection in flight on it
    report_success()  the connection to it was established: clear its failure count
    report_failure()  the connection to it failed: count a failure, maybe eject it
    release()         the connection is over: one less in flight

Only *how to choose* differs between strategies, so :class:`Picker` does the bookkeeping and
each strategy implements ``_choose(candidates)``, where ``candidates`` are the backends that
are neither ejected nor excluded, in the order they were given.

:class:`TcpProxy` is the thin I/O shell around a picker: accept, pick, connect (retrying the
next backend when a connect fails), then copy bytes both ways until both sides are done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Backend",
    "LeastConnections",
    "NoBackendAvailable",
    "Picker",
    "RoundRobin",
    "SmoothWeighted",
    "TcpProxy",
]

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Backend:
    """One upstream server. ``weight`` only matters to :class:`SmoothWeighted`."""

    name: str
    host: str
    port: int
    weight: int = 1


class NoBackendAvailable(Exception):
    """Every backend is ejected or excluded: there is nothing to pick."""


@dataclass
class _Health:
    fails: int = 0  # consecutive failures since the last success
    readmit_at: float = 0.0  # when an ejected backend becomes available again


class Picker:
    """Shared bookkeeping for every strategy: in-flight counts and passive health checks."""

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        max_fails: int = 1,
        fail_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not backends:
            raise ValueError("a picker needs at least one backend")
        if len({b.name for b in backends}) != len(backends):
            raise ValueError("backend names must be unique")
        if any(b.weight < 1 for b in backends):
            raise ValueError("weights must be at least 1")
        self.backends: tuple[Backend, ...] = tuple(backends)
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout
        self._clock = clock
        self._in_flight = {b: 0 for b in self.backends}
        self._health = {b: _Health() for b in self.backends}
        self._index = {b: i for i, b in enumerate(self.backends)}
        self._next = 0  # round-robin cursor: index in self.backends where the next search starts

    # -- the life cycle of one connection ---------------------------------------------------

    def pick(self, exclude: Collection[Backend] = ()) -> Backend:
        """Choose an available backend not in ``exclude`` and count a connection in flight on it."""
        candidates = [b for b in self.backends if b not in exclude and self.is_available(b)]
        if not candidates:
            raise NoBackendAvailable("every backend is ejected or excluded")
        backend = self._choose(candidates)
        self._in_flight[backend] += 1
        return backend

    def release(self, backend: Backend) -> None:
        """The connection counted by ``pick()`` is over."""
        if self._in_flight[backend] == 0:
            raise ValueError(f"release({backend.name}) without a matching pick()")
        self._in_flight[backend] -= 1

    def report_success(self, backend: Backend) -> None:
        """A connection to ``backend`` worked: its run of failures is over."""
        self._health[backend].fails = 0

    def report_failure(self, backend: Backend) -> None:
        """A connection to ``backend`` failed; ``max_fails`` in a row eject it for a while."""
        health = self._health[backend]
        health.fails += 1
        if self.max_fails and health.fails >= self.max_fails:
            # Every failure at or past the threshold (re)starts the window. This is also how a
            # re-admitted backend whose trial connection fails goes straight back out: its
            # count was never cleared, only a success clears it.
            health.readmit_at = self._clock() + self.fail_timeout

    # -- queries ------------------------------------------------------------------------------

    def is_available(self, backend: Backend) -> bool:
        """False while ``backend`` is ejected: from its ``max_fails``-th failure in a row until
        ``fail_timeout`` seconds later (the boundary itself counts as available again)."""
        health = self._health[backend]
        if not self.max_fails or health.fails < self.max_fails:
            return True
        return self._clock() >= health.readmit_at

    def in_flight(self, backend: Backend) -> int:
        """How many picks of ``backend`` have not been released yet."""
        return self._in_flight[backend]

    # -- the strategy -------------------------------------------------------------------------

    def _choose(self, candidates: list[Backend]) -> Backend:
        """Pick one of ``candidates`` (never empty, in backend order). Strategies override this."""
        raise NotImplementedError

    def _rotate(self, among: list[Backend]) -> Backend:
        """The first of ``among`` at or after the cursor, wrapping around; the cursor moves past it.

        Round robin uses it on every candidate; least connections uses it to break ties.
        """
        n = len(self.backends)
        # How far ahead of the cursor each backend sits, wrapping around: the nearest wins.
        chosen = min(among, key=lambda b: (self._index[b] - self._next) % n)
        self._next = self._index[chosen] + 1
        return chosen


class RoundRobin(Picker):
    """Each backend in turn, in list order, skipping the unavailable ones. Weights are ignored."""

    def _choose(self, candidates: list[Backend]) -> Backend:
        return self._rotate(candidates)


class SmoothWeighted(Picker):
    """nginx's smooth weighted round robin (ngx_http_upstream_get_peer).

    Each pick adds every candidate's weight to its ``current`` score, takes the highest score
    (the first in list order on a tie) and takes the candidates' total weight off the winner.
    Over any sum(weights) picks each backend is chosen exactly weight times, and the picks of a
    heavy backend are spread out instead of bunched: weights 5, 1, 1 give a a b a c a a.
    """

    def __init__(self, backends: Sequence[Backend], **options: Any) -> None:
        super().__init__(backends, **options)
        self._current = {b: 0 for b in self.backends}

    def _choose(self, candidates: list[Backend]) -> Backend:
        best = candidates[0]
        for backend in candidates:
            self._current[backend] += backend.weight
            if self._current[backend] > self._current[best]:
                best = backend
        # Only the candidates take part in this round: an ejected backend keeps its score.
        self._current[best] -= sum(b.weight for b in candidates)
        return best


class LeastConnections(Picker):
    """The candidate with the fewest connections in flight; ties go round robin.

    Breaking ties by list order would send every short, sequential connection to the first
    backend while the others sit idle; rotating among the tied ones spreads them.
    Weights are ignored (nginx's least_conn divides by weight; see the lesson).
    """

    def _choose(self, candidates: list[Backend]) -> Backend:
        fewest = min(self._in_flight[b] for b in candidates)
        return self._rotate([b for b in candidates if self._in_flight[b] == fewest])


class TcpProxy:
    """A layer-4 proxy: each client connection is piped to a backend chosen by ``picker``.

    The proxy talks to the picker only through ``pick``, ``release``, ``report_success`` and
    ``report_failure``.
    """

    def __init__(
        self, picker: Picker, *, max_attempts: int = 3, connect_timeout: float = 5.0
    ) -> None:
        self._picker = picker
        self._max_attempts = max_attempts
        self._connect_timeout = connect_timeout
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` and return the port actually bound."""
        self._server = await asyncio.start_server(self._on_client, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, end every live session and wait until they have released their slots."""
        server, self._server = self._server, None
        if server is None:
            return  # never started, or closed already
        server.close()
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        await server.wait_closed()

    async def _on_client(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._serve(client_reader, client_writer)
        except asyncio.CancelledError:
            # close() cancels live sessions. Ending quietly keeps asyncio's stream server from
            # logging the cancellation as an error; nothing else awaits this task.
            pass
        finally:
            client_writer.close()
            self._sessions.discard(task)

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        connected = await self._connect()
        if connected is None:
            return  # nobody to serve this client: closing it is the only answer at layer 4
        backend, upstream_reader, upstream_writer = connected
        try:
            await _splice(client_reader, client_writer, upstream_reader, upstream_writer)
        finally:
            upstream_writer.close()
            self._picker.release(backend)

    async def _connect(
        self,
    ) -> tuple[Backend, asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Connect to a backend, trying a different one after each failure, at most
        ``max_attempts`` times. Each failure is reported, so the picker can eject the backend."""
        tried: list[Backend] = []
        for _ in range(self._max_attempts):
            try:
                backend = self._picker.pick(exclude=tried)
            except NoBackendAvailable:
                return None
            tried.append(backend)
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(backend.host, backend.port), self._connect_timeout
                )
            except (OSError, TimeoutError):
                self._picker.report_failure(backend)
                self._picker.release(backend)
                continue
            except asyncio.CancelledError:
                # close() while the connect is still pending: no session will ever release
                # this slot, so give it back here. Not a failure of the backend.
                self._picker.release(backend)
                raise
            self._picker.report_success(backend)
            return backend, reader, writer
        return None


async def _splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """Copy bytes both ways until both directions have seen EOF.

    The two directions are independent: an EOF from one side is passed on as a half-close
    (``write_eof``) and the other direction keeps flowing. A reset on either side ends both:
    the task group cancels the other direction.
    """
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_pump(client_reader, upstream_writer))
            group.create_task(_pump(upstream_reader, client_writer))
    except* OSError:
        pass  # a reset: the session is over, the caller closes both sockets


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction until EOF, then half-close the far side."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()  # back-pressure: don't read faster than the far side takes
    writer.write_eof()

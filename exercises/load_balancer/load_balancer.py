"""A load balancer: a sans-IO backend picker and a small asyncio TCP proxy that uses it.

Read README.md first. The picker (``Picker`` and its three strategies) does no I/O and reads
time only through the ``clock`` it is given; ``TcpProxy`` is the I/O shell around it.

Standard library only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

__all__ = [
    "Backend",
    "LeastConnections",
    "NoBackendAvailable",
    "Picker",
    "RoundRobin",
    "SmoothWeighted",
    "TcpProxy",
]


@dataclass(frozen=True)
class Backend:
    """One upstream server. ``weight`` only matters to :class:`SmoothWeighted`."""

    name: str
    host: str
    port: int
    weight: int = 1


class NoBackendAvailable(Exception):
    """Every backend is ejected or excluded: there is nothing to pick."""


class Picker:
    """Shared bookkeeping for every strategy: in-flight counts and passive health checks.

    The life cycle of one client connection, as the proxy drives it:

        b = picker.pick()          # choose, and count one connection in flight on b
        ... connect to b ...
        picker.report_success(b)   # or picker.report_failure(b) if the connect failed
        ... pipe bytes ...
        picker.release(b)          # the connection is over: one less in flight

    A strategy (subclass) only decides *which* candidate to pick; it may override ``_choose``
    or ``pick`` as you see fit. Only the public methods below are checked.

    Attributes: ``backends`` (a tuple, in the order given), ``max_fails``, ``fail_timeout``.
    """

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        max_fails: int = 1,
        fail_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep ``backends`` in the given order.

        Raise ValueError if ``backends`` is empty, two backends share a name, or a weight is
        below 1. ``max_fails`` failures in a row eject a backend for ``fail_timeout`` seconds;
        ``max_fails=0`` turns ejection off. ``clock`` is the only source of time.
        """
        # TODO: store the backends (a tuple, in order), the health settings and the clock.
        # TODO: per backend: connections in flight, failures in a row, when it is re-admitted.
        raise NotImplementedError

    def pick(self, exclude: Collection[Backend] = ()) -> Backend:
        """Choose an available backend that is not in ``exclude``; count one connection in
        flight on it and return it.

        Raise NoBackendAvailable when every backend is ejected or excluded.
        """
        # TODO: candidates = the backends, in order, that are available and not excluded.
        # TODO: none left -> raise NoBackendAvailable (we do not fall back like nginx does).
        # TODO: let the strategy choose among the candidates, then count it in flight.
        raise NotImplementedError

    def release(self, backend: Backend) -> None:
        """The connection counted by ``pick()`` is over: one less in flight on ``backend``.

        Raise ValueError if ``backend`` has no connection in flight.
        """
        # TODO: never count below zero: a release without a pick is a bug in the caller.
        raise NotImplementedError

    def report_success(self, backend: Backend) -> None:
        """A connection to ``backend`` was established: its run of failures is over."""
        # TODO: reset the failure count; a backend whose count is 0 is available at once.
        raise NotImplementedError

    def report_failure(self, backend: Backend) -> None:
        """A connection to ``backend`` failed.

        After ``max_fails`` failures in a row (no success in between) the backend is ejected
        until ``fail_timeout`` seconds after the failure that ejected it.
        """
        # TODO: count the failure. At or past max_fails (and max_fails > 0), the backend is
        #       out until clock() + fail_timeout; every further failure restarts that window.
        # TODO: do not clear the count when the window ends: a re-admitted backend that fails
        #       its first connection goes straight back out. Only a success clears it.
        raise NotImplementedError

    def is_available(self, backend: Backend) -> bool:
        """True unless ``backend`` is ejected right now (by the injected clock).

        The window is half-open: ejected at time t, the backend is unavailable while
        clock() < t + fail_timeout and available again when clock() >= t + fail_timeout.
        """
        # TODO: available if max_fails == 0, or failures < max_fails, or the window is over.
        raise NotImplementedError

    def in_flight(self, backend: Backend) -> int:
        """How many picks of ``backend`` have not been released yet."""
        # TODO
        raise NotImplementedError

    def _choose(self, candidates: list[Backend]) -> Backend:
        """Pick one of ``candidates`` (never empty, in backend order). Strategies override this."""
        raise NotImplementedError


class RoundRobin(Picker):
    """Each backend in turn, in list order, wrapping around; unavailable ones are skipped.

    Weights are ignored. With a, b, c and b ejected: a c a c ...
    """

    def _choose(self, candidates: list[Backend]) -> Backend:
        # TODO: keep a cursor (an index into the backend list). Choose the first candidate at
        #       or after the cursor, wrapping around, and move the cursor just past it.
        raise NotImplementedError


class SmoothWeighted(Picker):
    """nginx's smooth weighted round robin: weights a=5, b=1, c=1 give a a b a c a a.

    Over any sum(weights) picks each backend is chosen exactly weight times, spread out.
    """

    def _choose(self, candidates: list[Backend]) -> Backend:
        # TODO: every backend has a score `current`, starting at 0. On each pick:
        #       1. add its weight to every candidate's current;
        #       2. choose the candidate with the highest current (the first in list order on
        #          a tie);
        #       3. subtract the total weight of the candidates from the chosen one's current.
        # TODO: a backend that is not a candidate (ejected, excluded) keeps its score as it is.
        raise NotImplementedError


class LeastConnections(Picker):
    """The candidate with the fewest connections in flight; ties are broken round robin.

    Weights are ignored. With everything idle, sequential pick()/release() pairs give
    a b c a b c, not a a a a.
    """

    def _choose(self, candidates: list[Backend]) -> Backend:
        # TODO: keep only the candidates with the fewest connections in flight.
        # TODO: among those, choose like RoundRobin: the first at or after the cursor
        #       (wrapping around), and move the cursor just past it.
        raise NotImplementedError


class TcpProxy:
    """A layer-4 proxy: each client connection is piped to a backend chosen by ``picker``.

    The proxy talks to the picker only through ``pick``, ``release``, ``report_success`` and
    ``report_failure`` (the specs may hand it a wrapper that watches those calls).
    """

    def __init__(
        self, picker: Picker, *, max_attempts: int = 3, connect_timeout: float = 5.0
    ) -> None:
        """``max_attempts`` bounds how many backends are tried for one client;
        ``connect_timeout`` (seconds) bounds each connect."""
        # TODO: keep the settings; nothing listens yet.
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` and return the port actually bound (port 0 picks a free one)."""
        # TODO: asyncio.start_server with a per-client handler. For each client:
        #   1. pick(exclude=the backends already tried for this client); NoBackendAvailable
        #      -> close the client.
        #   2. connect within connect_timeout. On OSError or timeout: report_failure, release,
        #      try again. After max_attempts failed connects, close the client.
        #   3. connected: report_success, then pipe bytes both ways.
        #   4. at the end, whatever happened: close both sockets and release the backend.
        # TODO: piping: one task per direction. Read a chunk, write it, await drain().
        #       On EOF from one side, write_eof() to the other side and let the other
        #       direction carry on. The session is over when both directions have ended.
        #       A reset (OSError) on either side ends both directions at once.
        raise NotImplementedError

    async def close(self) -> None:
        """Stop listening, end every live session (both sockets closed, slot released) and
        return once they are all done. Calling it again does nothing."""
        # TODO: keep track of the live sessions so that you can cancel them here and wait.
        raise NotImplementedError

"""A resilience sidecar: what a service mesh adds to every outbound call.

Complete every function and method below (standard library only). The policies take an
injected clock (and RNG) and do no I/O of their own; Resilience.call composes them:

    bulkhead (a slot for the whole logical request, or BulkheadFull at once)
      -> deadline (the overall budget starts when the request arrives)
        -> per attempt: deadline check -> circuit breaker -> attempt with a per-try timeout
        -> on a retry-safe failure: attempts left? retry budget? full-jitter backoff, again

Sidecar is a thin HTTP/1.1 adapter in front of one upstream. Read README.md first.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

__all__ = [
    "DEADLINE_HEADER",
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "Bulkhead",
    "BulkheadFull",
    "CircuitBreaker",
    "CircuitOpen",
    "ConnectFailed",
    "DeadlineExceeded",
    "Resilience",
    "Response",
    "RetryBudget",
    "Sidecar",
    "full_jitter_backoff",
    "is_retry_safe",
]

# RFC 9110 §9.2.2: PUT, DELETE and the safe methods (§9.2.1: GET, HEAD, OPTIONS, TRACE).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Gateway answers that say "the upstream did not handle it": worth another try.
RETRYABLE_STATUSES = frozenset({502, 503, 504})
# The remaining time, in whole milliseconds, that the upstream has for this attempt.
DEADLINE_HEADER = "x-request-timeout-ms"

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class ConnectFailed(ConnectionError):
    """The connection to the upstream was never established: the request was not sent."""


class CircuitOpen(Exception):
    """The circuit breaker refused the attempt without calling the upstream."""


class BulkheadFull(Exception):
    """Every slot and every queue place of the bulkhead is taken."""


class DeadlineExceeded(Exception):
    """The overall deadline ran out before (another) attempt could be sent."""


@dataclass
class Response:
    """An upstream's answer: status code, header fields (name, value) and body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def full_jitter_backoff(retry: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first retry).

    Full jitter (AWS Architecture Blog, 2015): ``rng.uniform(0, min(cap, base * 2**retry))``.
    """
    # TODO: exactly one rng.uniform() draw; the ceiling is min(cap, base * 2**retry).
    # TODO: a large retry (80, 1000) must not overflow: the ceiling is then simply cap.
    raise NotImplementedError


def is_retry_safe(method: str, failure: BaseException | Response) -> bool:
    """True when ``failure`` (an exception or an upstream response) may be retried for ``method``.

    A failed connect never reached the upstream, so any method may go again. A timeout, a reset
    or a 502/503/504 may have reached it: only idempotent methods (RFC 9110 §9.2.2) may repeat.
    Any other response is the upstream's answer and is never retried.
    """
    # TODO: ConnectFailed -> True for every method.
    # TODO: TimeoutError, ConnectionError, or a Response in RETRYABLE_STATUSES -> True only
    #       when method.upper() is in IDEMPOTENT_METHODS.
    # TODO: anything else (other statuses, other exceptions) -> False.
    raise NotImplementedError


class RetryBudget:
    """Retries may be at most ``retry_ratio`` of requests, plus a floor, over the last ``ttl`` s.

    A retry is allowed when, counting the events of the last ``ttl`` seconds,
    ``retries + 1 <= retry_ratio * requests + min_retries_per_second * ttl``.
    An event at time t counts while ``now - t < ttl``.
    """

    def __init__(
        self,
        *,
        retry_ratio: float = 0.2,
        min_retries_per_second: float = 10.0,
        ttl: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        # TODO: keep the timestamps of requests and of granted retries (a deque each).
        raise NotImplementedError

    def record_request(self) -> None:
        """Count one original request (never a retry)."""
        # TODO: drop events that are ttl or more seconds old, then record this one.
        raise NotImplementedError

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows it; False (nothing spent) if it does not."""
        # TODO: drop old events; grant (and record) only if retries + 1 fits the formula.
        raise NotImplementedError


class CircuitBreaker:
    """closed -> open on a failure rate over the last calls -> half-open probes -> closed.

    * closed: every call is allowed. Outcomes go into a window of the last ``window_size``
      calls; once it holds at least ``minimum_calls`` and failures / calls >= ``failure_threshold``
      the breaker opens (and the window is cleared).
    * open: every call is refused until ``reset_timeout`` seconds have passed since it opened;
      then it is half-open.
    * half_open: ``half_open_calls`` probes are allowed (no more in flight). One failure opens it
      again (the timer restarts); ``half_open_calls`` successes close it.
    """

    def __init__(
        self,
        *,
        failure_threshold: float = 0.5,
        window_size: int = 10,
        minimum_calls: int = 5,
        reset_timeout: float = 30.0,
        half_open_calls: int = 1,
        clock: Clock = time.monotonic,
    ) -> None:
        raise NotImplementedError

    @property
    def state(self) -> str:
        """ "closed", "open" or "half_open" (an open breaker turns half-open when its time is up)."""
        # TODO: open and clock() - opened_at >= reset_timeout -> half_open, with fresh probe counts.
        raise NotImplementedError

    def allow(self) -> bool:
        """May a call go to the upstream now? A True in half-open state takes a probe slot."""
        # TODO: closed -> True; open -> False; half_open -> True while probes < half_open_calls.
        raise NotImplementedError

    def record_success(self) -> None:
        """Report that an allowed call succeeded."""
        # TODO: closed: into the window, then judge the failure rate (a success can be the call
        #       that reaches minimum_calls). half_open: half_open_calls successes close the
        #       breaker (with an empty window).
        raise NotImplementedError

    def record_failure(self) -> None:
        """Report that an allowed call failed."""
        # TODO: closed: into the window, then trip if the window holds >= minimum_calls and the
        #       failure share is >= failure_threshold. half_open: trip at once.
        # TODO: tripping records the time (the reset_timeout starts over) and clears the window.
        raise NotImplementedError


class Bulkhead:
    """At most ``max_concurrent`` calls inside, at most ``max_queue`` waiting; the rest refused."""

    def __init__(self, max_concurrent: int, max_queue: int = 0) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.in_flight = 0  # calls holding a slot

    @property
    def queued(self) -> int:
        """How many calls wait for a slot."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the body; raises BulkheadFull at once when slots and queue are full."""
        # TODO: a free slot and nobody waiting -> take it. Else a free queue place -> wait, in
        #       FIFO order, for a leaving call to hand its slot over. Else raise BulkheadFull.
        # TODO: a waiter that is cancelled leaves the queue (and passes on a slot it was handed).
        # TODO: the slot is given back however the body ends (return, exception, cancellation).
        raise NotImplementedError
        yield


Attempt = Callable[[float], Awaitable[Response]]


class Resilience:
    """Runs an attempt coroutine under the bulkhead, deadline, breaker, retries and budget."""

    def __init__(
        self,
        *,
        max_attempts: int = 3,
        per_try_timeout: float = 1.0,
        timeout: float = 5.0,
        backoff_base: float = 0.025,
        backoff_cap: float = 0.25,
        budget: RetryBudget | None = None,
        breaker: CircuitBreaker | None = None,
        bulkhead: Bulkhead | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        raise NotImplementedError

    async def call(
        self, method: str, attempt: Attempt, *, timeout: float | None = None
    ) -> Response:
        """Send ``attempt`` until it succeeds or a rule says stop; return the last response.

        ``attempt(seconds)`` makes one try and is told how long it has (the per-try timeout cut
        to the remaining deadline); it returns a Response or raises ConnectFailed, TimeoutError
        or ConnectionError. ``timeout`` (the caller's own deadline) shortens the overall one.
        Raises BulkheadFull, CircuitOpen, DeadlineExceeded, or the last attempt's exception.
        """
        # TODO: hold one bulkhead slot (if any) for the whole call.
        # TODO: deadline = clock() + min(self.timeout, timeout); count the request in the budget.
        # TODO: before each attempt: time left <= 0 -> DeadlineExceeded (nothing is sent);
        #       the breaker refuses -> CircuitOpen.
        # TODO: run attempt(min(per_try_timeout, time left)) under asyncio.wait_for with that
        #       timeout; report it to the breaker (an exception or a status >= 500 is a failure).
        # TODO: retry only a retry-safe failure, while attempts < max_attempts, and only if the
        #       budget grants it (ask it last); sleep full_jitter_backoff(n) before retry n.
        # TODO: otherwise return the last Response or raise the last exception.
        raise NotImplementedError


class Sidecar:
    """An HTTP/1.1 sidecar on localhost: each request goes upstream through ``resilience``.

    The answer is the upstream's response, or 503 (circuit open, bulkhead full), 504 (deadline
    passed, or the last attempt timed out), 502 (the upstream could not be reached, closed
    without a response, or answered something that is not HTTP/1.x) or 400 (a request the
    sidecar cannot parse, never forwarded). Each attempt is a fresh connection with
    ``Connection: close``; the deadline header is set to the attempt's time in whole
    milliseconds (an incoming one shortens the overall deadline).
    """

    def __init__(self, upstream: tuple[str, int], resilience: Resilience) -> None:
        self.upstream = upstream
        self.resilience = resilience

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on (host, port); return the address actually bound."""
        # TODO: asyncio.start_server; read one request (head, then Content-Length bytes of body);
        #       a field without a colon, a Content-Length or a deadline header that is not
        #       1*DIGIT (ASCII digits only: not int(), which takes "+5" and "5_0") gets 400
        #       and is not forwarded. Trim field values of spaces and tabs only.
        # TODO: an HTTP/1.1 request with a body and Expect: 100-continue gets
        #       "HTTP/1.1 100 Continue" before you read its body (an HTTP/1.0 one never does).
        # TODO: forward it with Resilience.call; each attempt opens a connection to the upstream
        #       (a failed connect raises ConnectFailed), sends the request with the caller's
        #       fields but its own DEADLINE_HEADER (int(seconds * 1000)) and "connection: close"
        #       (the caller's Connection and the fields it names are not forwarded),
        #       and reads the response to EOF (no complete head, or a status line that is not
        #       HTTP/1.x: ConnectionResetError, a failure after sending); read past interim
        #       1xx heads (100, 103) to the final response.
        # TODO: answer with the upstream's response (its framing fields, Connection and the
        #       fields that names removed), or 503 / 504 / 502 as the docstring says.
        raise NotImplementedError

    async def close(self) -> None:
        """Stop listening; when this returns every connection is closed and its handler done."""
        # TODO: close the listener, cancel the connection handlers (keep their tasks in a set),
        #       gather them, and only then await wait_closed() (Python 3.12+ waits there for
        #       every accepted connection). A cancelled handler closes its connection and
        #       returns (catch asyncio.CancelledError).
        raise NotImplementedError

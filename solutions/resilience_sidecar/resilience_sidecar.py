"""A resilience sidecar: what a service mesh adds to every outbound call.

Theory of operation. The policies are small objects with an injected clock (and RNG) and no
I/O of their own, so each can be tested alone and composed in one order:

    bulkhead (a slot for the whole logical request, or BulkheadFull at once)
      -> deadline (the overall budget starts when the request arrives)
        -> per attempt: deadline check -> circuit breaker -> attempt with a per-try timeout
        -> on a retry-safe failure: attempts left? retry budget? full-jitter backoff, again

``Resilience.call`` runs that pipeline around any ``attempt`` coroutine; ``Sidecar`` is a thin
HTTP/1.1 adapter that listens on localhost and makes each attempt a fresh upstream connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import re
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
    # min() before the power would overflow: 2**retry is an exact int, the float product is
    # computed only once it is known to be small enough.
    ceiling = cap if retry >= 64 else min(cap, base * 2**retry)
    return rng.uniform(0, ceiling)


def is_retry_safe(method: str, failure: BaseException | Response) -> bool:
    """True when ``failure`` (an exception or an upstream response) may be retried for ``method``.

    A failed connect never reached the upstream, so any method may go again. A timeout, a reset
    or a 502/503/504 may have reached it: only idempotent methods (RFC 9110 §9.2.2) may repeat.
    Any other response is the upstream's answer and is never retried.
    """
    if isinstance(failure, ConnectFailed):
        return True
    idempotent = method.upper() in IDEMPOTENT_METHODS
    if isinstance(failure, Response):
        return idempotent and failure.status in RETRYABLE_STATUSES
    return idempotent and isinstance(failure, TimeoutError | ConnectionError)


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
        self.retry_ratio = retry_ratio
        self.min_retries_per_second = min_retries_per_second
        self.ttl = ttl
        self._clock = clock
        self._requests: collections.deque[float] = collections.deque()
        self._retries: collections.deque[float] = collections.deque()

    def _expire(self) -> float:
        now = self._clock()
        for events in (self._requests, self._retries):
            while events and now - events[0] >= self.ttl:
                events.popleft()
        return now

    def record_request(self) -> None:
        """Count one original request (never a retry)."""
        self._requests.append(self._expire())

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows it; False (nothing spent) if it does not."""
        now = self._expire()
        allowed = self.retry_ratio * len(self._requests) + self.min_retries_per_second * self.ttl
        if len(self._retries) + 1 > allowed:
            return False
        self._retries.append(now)
        return True


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
        self.failure_threshold = failure_threshold
        self.window_size = window_size
        self.minimum_calls = minimum_calls
        self.reset_timeout = reset_timeout
        self.half_open_calls = half_open_calls
        self._clock = clock
        self._state = "closed"
        self._window: collections.deque[bool] = collections.deque(maxlen=window_size)
        self._opened_at = 0.0
        self._probes = 0  # half-open probes allowed so far
        self._probe_successes = 0

    @property
    def state(self) -> str:
        """ "closed", "open" or "half_open" (an open breaker turns half-open when its time is up)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_timeout:
            self._state = "half_open"
            self._probes = self._probe_successes = 0
        return self._state

    def allow(self) -> bool:
        """May a call go to the upstream now? A True in half-open state takes a probe slot."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and self._probes < self.half_open_calls:
            self._probes += 1
            return True
        return False

    def record_success(self) -> None:
        """Report that an allowed call succeeded."""
        state = self.state
        if state == "half_open":
            self._probe_successes += 1
            if self._probe_successes >= self.half_open_calls:
                self._state = "closed"
                self._window.clear()
        elif state == "closed":
            self._record(True)

    def record_failure(self) -> None:
        """Report that an allowed call failed."""
        state = self.state
        if state == "half_open":
            self._trip()
        elif state == "closed":
            self._record(False)

    def _record(self, ok: bool) -> None:
        # The rate is judged after every outcome, a success too: the call that reaches
        # minimum_calls may be a success (F F S S with a threshold of 0.5 opens).
        self._window.append(ok)
        calls = len(self._window)
        failures = calls - sum(self._window)
        if calls >= self.minimum_calls and failures / calls >= self.failure_threshold:
            self._trip()

    def _trip(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._window.clear()


class Bulkhead:
    """At most ``max_concurrent`` calls inside, at most ``max_queue`` waiting; the rest refused."""

    def __init__(self, max_concurrent: int, max_queue: int = 0) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        """How many calls wait for a slot."""
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the body; raises BulkheadFull at once when slots and queue are full."""
        if self.in_flight < self.max_concurrent and not self._waiters:
            self.in_flight += 1
        elif len(self._waiters) < self.max_queue:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # the slot is handed over by the releasing call
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed over just as we were cancelled: pass it on
                else:
                    self._waiters.remove(waiter)
                raise
        else:
            raise BulkheadFull(f"{self.in_flight} in flight and {self.queued} queued")
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set_result(None)  # in_flight stays: the slot moves on
        else:
            self.in_flight -= 1


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
        self.max_attempts = max_attempts
        self.per_try_timeout = per_try_timeout
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.budget = budget
        self.breaker = breaker
        self.bulkhead = bulkhead
        self.clock = clock
        self.sleep = sleep
        self.rng = rng if rng is not None else random.Random()

    async def call(
        self, method: str, attempt: Attempt, *, timeout: float | None = None
    ) -> Response:
        """Send ``attempt`` until it succeeds or a rule says stop; return the last response.

        ``attempt(seconds)`` makes one try and is told how long it has (the per-try timeout cut
        to the remaining deadline); it returns a Response or raises ConnectFailed, TimeoutError
        or ConnectionError. ``timeout`` (the caller's own deadline) shortens the overall one.
        Raises BulkheadFull, CircuitOpen, DeadlineExceeded, or the last attempt's exception.
        """
        if self.bulkhead is None:
            return await self._call(method, attempt, timeout)
        async with self.bulkhead.slot():
            return await self._call(method, attempt, timeout)

    async def _call(self, method: str, attempt: Attempt, timeout: float | None) -> Response:
        total = self.timeout if timeout is None else min(self.timeout, timeout)
        deadline = self.clock() + total
        if self.budget is not None:
            self.budget.record_request()
        tries = 0
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise DeadlineExceeded(f"deadline passed after {tries} attempt(s)")
            if self.breaker is not None and not self.breaker.allow():
                raise CircuitOpen(f"circuit {self.breaker.state}")
            tries += 1
            outcome = await self._attempt(attempt, min(self.per_try_timeout, remaining))
            if not self._retry(method, outcome, tries):
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
            await self.sleep(
                full_jitter_backoff(
                    tries - 1, base=self.backoff_base, cap=self.backoff_cap, rng=self.rng
                )
            )

    async def _attempt(self, attempt: Attempt, seconds: float) -> Response | Exception:
        """One try under its timeout; the outcome (a Response or the exception) goes to the breaker."""
        try:
            outcome: Response | Exception = await asyncio.wait_for(attempt(seconds), seconds)
        except (TimeoutError, ConnectionError) as error:
            outcome = error
        if self.breaker is not None:
            failed = not isinstance(outcome, Response) or outcome.status >= 500
            if failed:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
        return outcome

    def _retry(self, method: str, outcome: Response | Exception, tries: int) -> bool:
        if tries >= self.max_attempts or not is_retry_safe(method, outcome):
            return False
        # The budget is asked last: a retry we would not make anyway must not spend it.
        return self.budget is None or self.budget.try_retry()


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
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on (host, port); return the address actually bound."""
        self._server = await asyncio.start_server(self._serve, host, port)
        return self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        """Stop listening; when this returns every connection is closed and its handler done."""
        # Order matters: close the listener (no new connections), end the handlers, and only
        # then wait_closed(). Since Python 3.12 wait_closed() also waits for every accepted
        # connection to close (CPython gh-79033), so awaiting it first would wait for the clients.
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()  # its finally closes the connection
        await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
            method = request_line.split(" ", 1)[0]
            headers = [_split_field(line) for line in lines]
            length = _digits(_field(headers, "content-length") or "0")
            if length and _expects_continue(request_line, headers):
                # The sidecar must hold the whole body to send it again on a retry, so it wants
                # the body now and says so itself: "the 100 response indicates that the server
                # wishes to receive the request content" (RFC 9110 §15.2.1). Never to an
                # HTTP/1.0 caller, which knows no 1xx (§15.2).
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
            body = await reader.readexactly(length)
            response = await self._forward(method, request_line, headers, body)
            writer.write(_render(response))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ValueError:
            writer.write(_render(Response(400, body=b"bad request\n")))
        except asyncio.CancelledError:
            # close() cancelled us: end normally. A start_server handler that ends cancelled
            # makes Python 3.11 log "Exception in callback ... CancelledError".
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _forward(
        self, method: str, request_line: str, headers: list[tuple[str, str]], body: bytes
    ) -> Response:
        caller = _field(headers, DEADLINE_HEADER)
        timeout = _digits(caller) / 1000 if caller is not None else None
        # The caller's Connection field and every field it names describe the caller's hop
        # (RFC 9110 §7.6.1); each attempt says its own "connection: close".
        drop = {DEADLINE_HEADER, "connection"} | _connection_options(headers)
        kept = [(name, value) for name, value in headers if name.lower() not in drop]

        async def attempt(seconds: float) -> Response:
            lines = [request_line, *(f"{n}: {v}" for n, v in kept)]
            lines += [f"{DEADLINE_HEADER}: {int(seconds * 1000)}", "connection: close"]
            return await _exchange(self.upstream, "\r\n".join(lines).encode() + b"\r\n\r\n" + body)

        try:
            return await self.resilience.call(method, attempt, timeout=timeout)
        except (CircuitOpen, BulkheadFull) as refusal:
            return Response(503, body=f"{type(refusal).__name__}\n".encode())
        except (DeadlineExceeded, TimeoutError):
            return Response(504, body=b"deadline exceeded\n")
        except ConnectionError:
            return Response(502, body=b"upstream unreachable\n")


def _digits(value: str) -> int:
    """A non-negative integer written as ``1*DIGIT`` (RFC 9110 §8.6, and this kata's deadline
    header). Not ``int()``: it also takes "+5", "5_0", " 5" and non-ASCII digits."""
    if not _DIGITS.fullmatch(value):
        raise ValueError(f"not a run of ASCII digits: {value!r}")
    return int(value)


def _connection_options(headers: list[tuple[str, str]]) -> set[str]:
    """The field names (lower case) the Connection fields list (RFC 9110 §7.6.1)."""
    return {
        option.strip(" \t").lower()
        for name, value in headers
        if name.lower() == "connection"
        for option in value.split(",")
    } - {""}


def _expects_continue(request_line: str, headers: list[tuple[str, str]]) -> bool:
    """An HTTP/1.1 request whose Expect field is 100-continue (case-insensitive)."""
    expect = _field(headers, "expect")
    return request_line.endswith(" HTTP/1.1") and (expect or "").lower() == "100-continue"


def _field(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def _exchange(upstream: tuple[str, int], request: bytes) -> Response:
    """Send one request on a fresh connection and read the answer to EOF."""
    try:
        reader, writer = await asyncio.open_connection(*upstream)
    except OSError as error:
        raise ConnectFailed(str(error)) from error
    try:
        writer.write(request)
        data = await reader.read()
    finally:
        writer.close()
    rest = data
    try:
        while True:
            head, separator, rest = rest.partition(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            match = _STATUS_LINE.fullmatch(status_line)
            if not separator or match is None:
                raise ValueError("no complete status line and header section")
            status = int(match.group(1))
            if not 100 <= status < 200:
                return Response(status, [_split_field(line) for line in lines], rest)
            # An interim response (a 100 Continue to the Expect the caller sent, already met by
            # the sidecar itself; a 103 Early Hints): the final response follows it (RFC 9110
            # §15.2). This sidecar answers only once the final response is complete, so it
            # reads past interim ones.
    except ValueError as error:
        # Closed early, or not HTTP: the request may have been processed, so this is a failure
        # after sending (retried for idempotent methods only), never the caller's fault (400).
        raise ConnectionResetError(f"the upstream's response was unusable: {error}") from None


_STATUS_LINE = re.compile(r"HTTP/1\.[01] ([1-5][0-9][0-9])(?: .*)?")
_DIGITS = re.compile(r"[0-9]+")


def _split_field(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not name or name != name.strip():
        raise ValueError(f"malformed header field {line!r}")
    return name, value.strip(" \t")  # OWS is spaces and tabs only (RFC 9110 §5.6.3)


def _render(response: Response) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
    # The body is relayed as read, framed by our own Content-Length: the upstream's framing
    # fields, its Connection field and the fields that names describe the other hop.
    drop = {"content-length", "transfer-encoding", "connection"}
    drop |= _connection_options(response.headers)
    lines += [f"{n}: {v}" for n, v in response.headers if n.lower() not in drop]
    lines += [f"content-length: {len(response.body)}", "connection: close"]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + response.body


_REASONS = {
    200: "OK",
    400: "Bad Request",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

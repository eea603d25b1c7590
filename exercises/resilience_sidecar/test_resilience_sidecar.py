"""Visible examples for the resilience_sidecar kata. Run them with `nox -s try -- resilience_sidecar`.

Time here is a number the test moves by hand, and sleeping only moves it: a retry schedule
that would take seconds runs in microseconds, and every delay can be checked exactly. The
hidden specs go much further (every boundary, a reference breaker, a dead upstream, the HTTP
sidecar against a scripted upstream on 127.0.0.1).
"""

from __future__ import annotations

import random

try:
    from resilience_sidecar import (
        Bulkhead,
        BulkheadFull,
        CircuitBreaker,
        ConnectFailed,
        Resilience,
        Response,
        RetryBudget,
        full_jitter_backoff,
        is_retry_safe,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import the kata's API (Resilience, RetryBudget, "
        "CircuitBreaker, Bulkhead, ...) from resilience_sidecar.py"
    ) from err


class Clock:
    """A clock the test moves; sleeping through it advances it and records the delay."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_full_jitter_is_one_uniform_draw_under_the_capped_exponential():
    got = [full_jitter_backoff(n, base=0.1, cap=1.0, rng=random.Random(3)) for n in range(6)]
    want = [random.Random(3).uniform(0, min(1.0, 0.1 * 2**n)) for n in range(6)]
    assert got == want, (
        f"Called full_jitter_backoff(n, base=0.1, cap=1.0) for n=0..5; returned {got}"
    )


def test_connect_failures_are_always_retry_safe_but_a_post_timeout_is_not():
    assert is_retry_safe("POST", ConnectFailed()) is True, (
        "a connect failure never reached the upstream"
    )
    assert is_retry_safe("POST", TimeoutError()) is False, (
        "a POST that timed out may have been processed"
    )
    assert is_retry_safe("GET", Response(503)) is True, "GET is idempotent (RFC 9110 §9.2.2)"


async def test_a_flaky_get_is_retried_with_backoff():
    clock = Clock()
    answers = [Response(503), Response(503), Response(200, body=b"ok")]
    tries: list[float] = []

    async def attempt(seconds: float) -> Response:
        tries.append(seconds)
        return answers[len(tries) - 1]

    policy = Resilience(
        max_attempts=3,
        per_try_timeout=1.0,
        timeout=5.0,
        backoff_base=0.1,
        backoff_cap=1.0,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
    )
    response = await policy.call("GET", attempt)
    assert response.body == b"ok", f"Called policy.call('GET', 503, 503, 200); returned {response}"
    oracle = random.Random(7)
    want = [oracle.uniform(0, 0.1), oracle.uniform(0, 0.2)]
    assert clock.slept == want, f"slept {clock.slept}; expected {want}"
    assert tries == [1.0, 1.0, 1.0], f"attempts were given {tries} seconds; expected 1.0 each"


def test_the_retry_budget_allows_a_ratio_of_requests():
    budget = RetryBudget(retry_ratio=0.5, min_retries_per_second=0.0, ttl=10.0, clock=lambda: 0.0)
    for _ in range(4):
        budget.record_request()
    granted = [budget.try_retry() for _ in range(3)]
    assert granted == [True, True, False], f"4 requests at ratio 0.5: try_retry() gave {granted}"


def test_the_breaker_opens_then_probes_then_closes():
    clock = Clock()
    breaker = CircuitBreaker(
        failure_threshold=0.5, window_size=4, minimum_calls=4, reset_timeout=10.0, clock=clock
    )
    for _ in range(4):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow(), f"after 4 failures: {breaker.state}"
    clock.now += 10.0
    assert breaker.state == "half_open", f"10 s later: {breaker.state}; expected half_open"
    assert breaker.allow() and not breaker.allow(), "half-open lets exactly one probe through"
    breaker.record_success()
    assert breaker.state == "closed", f"after a successful probe: {breaker.state}; expected closed"


async def test_the_bulkhead_refuses_when_slots_and_queue_are_full():
    bulkhead = Bulkhead(max_concurrent=1, max_queue=0)
    async with bulkhead.slot():
        try:
            async with bulkhead.slot():
                raise AssertionError("a second call entered a Bulkhead(1, 0)")
        except BulkheadFull:
            pass
    assert bulkhead.in_flight == 0, f"in_flight after the call: {bulkhead.in_flight}"

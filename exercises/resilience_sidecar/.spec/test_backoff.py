"""Full-jitter backoff and the retry-safety rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from resilience_sidecar import ConnectFailed, Response, full_jitter_backoff, is_retry_safe

from grader.spectools import called, step


@pytest.mark.points(2)
@given(
    retry=st.integers(0, 80),
    base=st.sampled_from([0.001, 0.025, 0.1, 1.0]),
    cap=st.sampled_from([0.01, 0.5, 1.0, 20.0]),
    seed=st.integers(0, 2**32),
)
@example(retry=0, base=0.1, cap=20.0, seed=1)  # the first retry: uniform(0, base)
@example(retry=3, base=0.1, cap=0.8, seed=2)  # base * 2**3 == cap exactly
@example(retry=4, base=0.1, cap=0.8, seed=3)  # one past the cap
@example(retry=2, base=0.1, cap=0.8, seed=4)  # one below the cap
@example(retry=80, base=1.0, cap=20.0, seed=5)  # 2**80 must not overflow the cap
@example(retry=5000, base=1.0, cap=20.0, seed=6)  # 2**5000 is too large for a float
@settings(max_examples=60, deadline=None)
def test_delay_is_uniform_between_zero_and_the_capped_exponential(retry, base, cap, seed):
    """The delay before retry n is rng.uniform(0, min(cap, base * 2**n)), one draw of the given RNG.

    AWS Architecture Blog, "Exponential Backoff And Jitter" (2015), full jitter.
    """
    rng, oracle = random.Random(seed), random.Random(seed)
    call = f"full_jitter_backoff({retry}, base={base}, cap={cap}, rng=Random({seed}))"
    with step(call):
        got = full_jitter_backoff(retry, base=base, cap=cap, rng=rng)
    want = oracle.uniform(0, min(cap, base * 2.0 ** min(retry, 1000)))
    assert got == want, called(call, got, want)
    assert rng.random() == oracle.random(), called(
        call, "an RNG moved by more or less than one uniform() draw", "exactly one draw"
    )


@pytest.mark.points(1)
def test_delays_grow_then_stay_under_the_cap():
    """With a seeded RNG, retry n never waits more than min(cap, base * 2**n)."""
    rng = random.Random(7)
    for retry in range(12):
        ceiling = min(2.0, 0.05 * 2**retry)
        for _ in range(30):
            got = full_jitter_backoff(retry, base=0.05, cap=2.0, rng=rng)
            assert 0 <= got <= ceiling, called(
                f"full_jitter_backoff({retry}, base=0.05, cap=2.0)",
                got,
                f"a value in [0, {ceiling}]",
            )


SAFETY = [
    # (method, outcome, retry-safe?, why)
    ("GET", "connect", True, "a connect failure never reached the upstream"),
    ("POST", "connect", True, "a connect failure never reached the upstream"),
    ("PATCH", "connect", True, "a connect failure never reached the upstream"),
    ("GET", "timeout", True, "GET is idempotent"),
    ("HEAD", "reset", True, "HEAD is idempotent"),
    ("OPTIONS", "timeout", True, "OPTIONS is idempotent"),
    ("TRACE", "reset", True, "TRACE is idempotent"),
    ("PUT", "timeout", True, "PUT is idempotent"),
    ("DELETE", "reset", True, "DELETE is idempotent"),
    ("POST", "timeout", False, "POST may have been processed"),
    ("POST", "reset", False, "POST may have been processed"),
    ("PATCH", "timeout", False, "PATCH may have been processed"),
    ("CONNECT", "reset", False, "CONNECT is not idempotent"),
    ("get", "timeout", True, "method names are compared case-insensitively here"),
    ("GET", 502, True, "502 from an idempotent request"),
    ("GET", 503, True, "503 from an idempotent request"),
    ("PUT", 504, True, "504 from an idempotent request"),
    ("POST", 503, False, "503 to a POST may follow processing"),
    ("GET", 500, False, "500 is the upstream's answer"),
    ("GET", 501, False, "501 is the upstream's answer"),
    ("GET", 505, False, "505 is the upstream's answer"),
    ("GET", 429, False, "429 is the upstream's answer"),
    ("GET", 404, False, "404 is an answer"),
    ("GET", 200, False, "200 is a success"),
]


def _failure(kind):
    if isinstance(kind, int):
        return Response(kind)
    return {"connect": ConnectFailed(), "timeout": TimeoutError(), "reset": ConnectionResetError()}[
        kind
    ]


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("method", "kind", "safe", "why"),
    SAFETY,
    ids=[f"{m}-{k}" for m, k, _, _ in SAFETY],
)
def test_retry_safety_follows_idempotency(method, kind, safe, why):
    """Connect failures are retry-safe for every method; timeouts, resets and 502/503/504 only
    for idempotent methods (RFC 9110 §9.2.2); other responses never."""
    call = f"is_retry_safe({method!r}, {kind})"
    with step(call):
        got = is_retry_safe(method, _failure(kind))
    assert got is safe, called(call, got, f"{safe} ({why})")


@pytest.mark.points(1)
def test_other_exceptions_are_not_retried():
    """An exception that is not a connect failure, a timeout or a connection error is not retry-safe."""
    for error in (ValueError("bad"), KeyError("k"), RuntimeError("boom")):
        call = f"is_retry_safe('GET', {error!r})"
        with step(call):
            got = is_retry_safe("GET", error)
        assert got is False, called(call, got, False)

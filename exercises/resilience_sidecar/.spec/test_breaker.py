"""The circuit breaker: closed -> open -> half-open -> closed, against a reference state machine."""

from __future__ import annotations

import contextlib
import random

import pytest
from _helpers import ReferenceBreaker, Script
from hypothesis import example, given, settings
from hypothesis import strategies as st
from resilience_sidecar import CircuitBreaker, CircuitOpen, DeadlineExceeded, Resilience

from grader.spectools import FakeClock, FakeSleep, called, step

START = 1000.0


def breaker(clock: FakeClock, **options) -> CircuitBreaker:
    options.setdefault("failure_threshold", 0.5)
    options.setdefault("window_size", 4)
    options.setdefault("minimum_calls", 4)
    options.setdefault("reset_timeout", 10.0)
    options.setdefault("half_open_calls", 1)
    with step(f"CircuitBreaker({options})"):
        return CircuitBreaker(clock=clock, **options)


def feed(b: CircuitBreaker, outcomes: str, log: list[str]) -> None:
    """Run allowed calls: 'F' a failure, 'S' a success."""
    for char in outcomes:
        with step(f"allow() then record after {''.join(log)!r}"):
            allowed = b.allow()
            assert allowed, called(f"breaker.allow() after {''.join(log)!r}", allowed, True)
            b.record_failure() if char == "F" else b.record_success()
        log.append(char)


def state_of(b: CircuitBreaker, history: str) -> str:
    with step(f"breaker.state after {history!r}"):
        return b.state


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("outcomes", "want"),
    [
        ("SSSF", "closed"),  # 1 of 4 failed: 25% < 50%
        ("SSFF", "open"),  # 2 of 4: exactly the threshold
        ("FFF", "closed"),  # 100%, but only 3 calls: below minimum_calls
        ("FFFF", "open"),
        ("SSSSSSFF", "open"),  # the window keeps the last 4: S S F F
        ("FSSSSSSF", "closed"),  # never more than one failure in the last 4
        ("SFSS", "closed"),
        ("FSFS", "open"),
    ],
    ids=lambda v: v,
)
def test_it_opens_at_the_failure_rate_over_the_window(outcomes, want):
    """A closed breaker opens when the last window_size calls hold at least minimum_calls and
    failures / calls >= failure_threshold (Resilience4j's count-based window)."""
    clock = FakeClock(START)
    b = breaker(clock)
    log: list[str] = []
    for char in outcomes:
        if state_of(b, "".join(log)) == "open":
            break
        feed(b, char, log)
    got = state_of(b, outcomes)
    assert got == want, called(
        f"outcomes {outcomes!r} with window_size=4, minimum_calls=4, failure_threshold=0.5",
        got,
        want,
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("wait", "want"),
    [(9.875, "open"), (10.0, "half_open"), (10.125, "half_open")],
    ids=["before-reset-timeout", "at-reset-timeout", "after-reset-timeout"],
)
def test_an_open_breaker_refuses_until_reset_timeout(wait, want):
    """An open breaker refuses every call until reset_timeout seconds after it opened; then it
    is half-open and lets a probe through."""
    clock = FakeClock(START)
    b = breaker(clock)
    feed(b, "FFFF", [])
    clock.advance(wait)
    got = state_of(b, f"FFFF, then {wait} s")
    with step("breaker.allow()"):
        allowed = b.allow()
    assert (got, allowed) == (want, want == "half_open"), called(
        f"breaker.state and allow() {wait} s after it opened (reset_timeout=10)",
        (got, allowed),
        (want, want == "half_open"),
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("probes", [1, 2, 3], ids=lambda n: f"{n}-probes")
def test_half_open_admits_exactly_half_open_calls_probes(probes):
    """Half-open, allow() is True for half_open_calls probes and False for the next one; that many
    successes close the breaker."""
    clock = FakeClock(START)
    b = breaker(clock, half_open_calls=probes)
    feed(b, "FFFF", [])
    clock.advance(10.0)
    grants = []
    for _ in range(probes + 1):
        with step("breaker.allow() while half-open"):
            grants.append(b.allow())
    want = [True] * probes + [False]
    assert grants == want, called(
        f"allow() x{probes + 1} half-open with half_open_calls={probes}", grants, want
    )
    for index in range(probes):
        state = state_of(b, f"{index} probe successes")
        assert state == "half_open", called(
            f"breaker.state after {index} of {probes} probe successes", state, "half_open"
        )
        with step("breaker.record_success()"):
            b.record_success()
    got = state_of(b, "all probes succeeded")
    assert got == "closed", called(f"breaker.state after {probes} probe successes", got, "closed")


@pytest.mark.points(2)
def test_a_failed_probe_opens_it_again_for_a_full_reset_timeout():
    """A failure while half-open opens the breaker again, and the reset_timeout starts over."""
    clock = FakeClock(START)
    b = breaker(clock, half_open_calls=2)
    feed(b, "FFFF", [])
    clock.advance(15.0)
    feed(b, "SF", [])
    got = state_of(b, "FFFF, 15 s, S, F")
    assert got == "open", called("breaker.state after a failed probe", got, "open")
    clock.advance(9.875)
    got = state_of(b, "a failed probe, then 9.875 s")
    assert got == "open", called(
        "breaker.state 9.875 s after the failed probe (reset_timeout=10)", got, "open"
    )
    clock.advance(0.125)
    got = state_of(b, "a failed probe, then 10 s")
    assert got == "half_open", called("breaker.state 10 s after the failed probe", got, "half_open")


@pytest.mark.points(1)
def test_closing_starts_a_fresh_window():
    """After closing from half-open, old failures are forgotten: it takes a full minimum_calls again."""
    clock = FakeClock(START)
    b = breaker(clock)
    feed(b, "FFFF", [])
    clock.advance(10.0)
    feed(b, "S", [])
    feed(b, "FFF", [])
    got = state_of(b, "FFFF, 10 s, S (closed), FFF")
    assert got == "closed", called(
        "breaker.state: 3 failures after closing, minimum_calls=4", got, "closed"
    )


EVENT = st.one_of(
    st.tuples(st.just("call"), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 2.0, 4.875, 5.0, 5.125, 10.0])),
    st.tuples(st.just("allow"), st.just(True)),
)
CONFIG = st.tuples(
    st.sampled_from([0.25, 0.5, 0.75, 1.0]),  # failure_threshold (exact in binary)
    st.integers(1, 6),  # window_size
    st.integers(1, 6),  # minimum_calls
    st.integers(1, 3),  # half_open_calls
)


@pytest.mark.points(3)
@given(config=CONFIG, events=st.lists(EVENT, max_size=40))
@example(
    config=(0.5, 4, 4, 1),
    events=[("call", False)] * 4 + [("wait", 5.0), ("wait", 5.0), ("call", True)],
)
@example(
    config=(1.0, 3, 3, 2),
    events=[("call", False)] * 3 + [("wait", 10.0), ("allow", True), ("call", False)],
)
@example(
    config=(0.25, 6, 2, 1),
    events=[("call", True), ("call", False), ("wait", 4.875), ("wait", 5.125), ("call", False)],
)
@settings(max_examples=120, deadline=None)
def test_state_sequence_matches_the_reference_state_machine(config, events):
    """For any sequence of successes, failures, unfinished probes and waits, allow() and state
    follow the lesson's state machine step by step (reset_timeout 10 s)."""
    threshold, window, minimum, probes = config
    clock = FakeClock(START)
    b = breaker(
        clock,
        failure_threshold=threshold,
        window_size=window,
        minimum_calls=minimum,
        half_open_calls=probes,
    )
    model = ReferenceBreaker(threshold, window, minimum, 10.0, probes, START)
    history = [
        f"CircuitBreaker(failure_threshold={threshold}, window_size={window}, "
        f"minimum_calls={minimum}, half_open_calls={probes}, reset_timeout=10)"
    ]
    for kind, value in events:
        if kind == "wait":
            clock.advance(value)
            model.advance(value)
            history.append(f"wait {value}")
        else:
            with step("; ".join(history) + "; allow()"):
                got = b.allow()
            want = model.allow()
            history.append("allow()")
            assert got == want, called("; ".join(history[-12:]), got, want)
            if kind == "call" and got:
                with step(
                    "; ".join(history) + ("; record_success()" if value else "; record_failure()")
                ):
                    b.record_success() if value else b.record_failure()
                model.record(value)
                history.append("success" if value else "failure")
        with step("; ".join(history) + "; state"):
            got_state = b.state
        assert got_state == model.state, called(
            "; ".join(history[-12:]) + "; then .state", got_state, model.state
        )


@pytest.mark.points(2)
async def test_an_open_breaker_fails_calls_fast_without_attempts():
    """Resilience.call raises CircuitOpen, without calling the upstream, while its breaker is open;
    every attempt's outcome (5xx or exception: failure) is recorded in the breaker."""
    clock = FakeClock(START)
    b = breaker(clock, window_size=2, minimum_calls=2, failure_threshold=1.0)
    policy = Resilience(
        max_attempts=1,
        breaker=b,
        clock=clock,
        sleep=FakeSleep(clock),
        rng=random.Random(3),
        timeout=30.0,
    )
    failing = Script([503, "reset"])
    for _ in range(2):
        with step("policy.call('GET', failing upstream)"), contextlib.suppress(ConnectionError):
            await policy.call("GET", failing)
    again = Script([200])
    with step("policy.call('GET', ...) with the breaker open"):
        try:
            got = await policy.call("GET", again)
        except CircuitOpen as refusal:
            got = refusal
    assert isinstance(got, CircuitOpen) and again.attempts == 0, called(
        "policy.call('GET', ...) after a 503 and a reset (window 2, threshold 1.0)",
        f"{type(got).__name__} after {again.attempts} upstream attempts",
        "CircuitOpen after 0 upstream attempts",
    )
    clock.advance(10.0)
    with step("policy.call('GET', healthy upstream) after reset_timeout"):
        got = await policy.call("GET", again)
    state = state_of(b, "a successful probe")
    assert got.status == 200 and state == "closed", called(
        "policy.call('GET', healthy upstream) 10 s later", (got.status, state), (200, "closed")
    )


@pytest.mark.points(1)
async def test_an_expired_deadline_takes_no_half_open_probe():
    """The deadline is checked before the breaker: a call whose time is up raises
    DeadlineExceeded without taking a half-open probe, so the next call still gets it."""
    clock = FakeClock(START)
    b = breaker(clock, window_size=1, minimum_calls=1, failure_threshold=1.0)
    policy = Resilience(
        max_attempts=1, breaker=b, clock=clock, sleep=FakeSleep(clock), rng=random.Random(3)
    )
    with step("breaker.allow(); breaker.record_failure(): the breaker opens"):
        b.allow()
        b.record_failure()
    clock.advance(10.0)
    late = Script([200])
    with step("policy.call('GET', ..., timeout=0) with the breaker half-open"):
        try:
            first = await policy.call("GET", late, timeout=0)
        except (DeadlineExceeded, CircuitOpen) as refusal:
            first = refusal
    healthy = Script([200])
    with step("policy.call('GET', healthy upstream) right after"):
        try:
            second = await policy.call("GET", healthy)
        except CircuitOpen as refusal:
            second = refusal
    got = (
        type(first).__name__,
        getattr(second, "status", type(second).__name__),
        state_of(b, "an expired call, then a successful probe"),
    )
    want = ("DeadlineExceeded", 200, "closed")
    assert got == want, called(
        "half-open breaker (1 probe): a call with timeout=0, then a call to a healthy "
        "upstream: (first outcome, second outcome, breaker.state)",
        got,
        want,
    )


@pytest.mark.points(1)
async def test_a_4xx_answer_is_a_success_for_the_breaker():
    """A response below 500 means the upstream is healthy: it counts as a success."""
    clock = FakeClock(START)
    b = breaker(clock, window_size=2, minimum_calls=2, failure_threshold=0.5)
    policy = Resilience(
        max_attempts=1, breaker=b, clock=clock, sleep=FakeSleep(clock), timeout=30.0
    )
    for status in (404, 429, 404):
        with step(f"policy.call('GET', upstream answering {status})"):
            await policy.call("GET", Script([status]))
    got = state_of(b, "404, 429, 404")
    assert got == "closed", called(
        "breaker.state after answers 404, 429, 404 (threshold 0.5)", got, "closed"
    )


PB_EVENT = st.one_of(
    st.tuples(st.just("call"), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 4.875, 5.0, 5.125, 10.0])),
)


@pytest.mark.points(2)
@given(
    config=st.tuples(st.integers(1, 4), st.integers(1, 3)),
    events=st.lists(PB_EVENT, max_size=40),
)
@example(config=(3, 1), events=[("call", False)] * 3 + [("wait", 10.0), ("call", True)])
@example(
    config=(2, 2), events=[("call", False)] * 2 + [("wait", 10.0), ("call", True), ("call", False)]
)
@example(config=(2, 1), events=[("call", False), ("call", True), ("call", False), ("call", False)])
@example(config=(1, 1), events=[("call", False), ("wait", 9.875), ("wait", 0.125), ("call", False)])
@settings(max_examples=80, deadline=None)
def test_with_a_full_window_of_failures_it_agrees_with_pybreaker(config, events):
    """Configured as a consecutive-failure breaker (window_size = minimum_calls = n,
    failure_threshold 1.0), it lets through and refuses the same calls as pybreaker with
    fail_max = n, and reports the same state after each call."""
    from _helpers import PyBreakerDriver

    n, probes = config
    clock = FakeClock(START)
    with pytest.MonkeyPatch.context() as monkeypatch:
        oracle = PyBreakerDriver(
            monkeypatch, clock, fail_max=n, reset_timeout=10.0, success_threshold=probes
        )
        b = breaker(
            clock, failure_threshold=1.0, window_size=n, minimum_calls=n, half_open_calls=probes
        )
        history = [
            f"CircuitBreaker(window_size={n}, minimum_calls={n}, failure_threshold=1.0, half_open_calls={probes})"
        ]
        for kind, value in events:
            if kind == "wait":
                clock.advance(value)
                history.append(f"wait {value}")
                continue
            with step("; ".join(history) + "; allow()"):
                allowed = b.allow()
                if allowed:
                    b.record_success() if value else b.record_failure()
                state = b.state
            want_allowed = oracle.call(value)
            history.append(("success" if value else "failure") if allowed else "refused")
            got, want = (allowed, state), (want_allowed, oracle.state)
            assert got == want, called("; ".join(history[-12:]) + " -> (allowed, state)", got, want)


@pytest.mark.points(1)
def test_outcomes_reported_while_open_change_nothing():
    """A call allowed before the breaker opened may report afterwards: while open, its outcome
    neither closes the breaker nor restarts the reset timeout."""
    clock = FakeClock(START)
    b = breaker(clock, window_size=2, minimum_calls=2, failure_threshold=1.0)
    with step("allow() three times on a closed breaker"):
        grants = [b.allow() for _ in range(3)]
    with step("two failures reported"):
        b.record_failure()
        b.record_failure()
    clock.advance(5.0)
    with step("a late success, then a late failure, reported while open"):
        b.record_success()
        b.record_failure()
    got = state_of(b, "opened, late success and failure 5 s later")
    assert grants == [True] * 3 and got == "open", called(
        "breaker.state after late outcomes reported while open", got, "open"
    )
    clock.advance(5.0)
    got = state_of(b, "10 s after opening")
    assert got == "half_open", called(
        "breaker.state 10 s after it opened (late outcomes came at 5 s; reset_timeout=10)",
        got,
        "half_open",
    )

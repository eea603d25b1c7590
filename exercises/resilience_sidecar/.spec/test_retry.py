"""Resilience.call: attempts, retries, backoff delays and the deadline, on a fake clock."""

from __future__ import annotations

import asyncio
import random

import pytest
from _helpers import Script, within
from resilience_sidecar import DeadlineExceeded, Resilience, Response

from grader.spectools import FakeClock, FakeSleep, called, step


def make(clock: FakeClock, seed: int = 42, **options) -> tuple[Resilience, FakeSleep]:
    sleep = FakeSleep(clock)
    options.setdefault("per_try_timeout", 1.0)
    options.setdefault("timeout", 30.0)
    policy = Resilience(clock=clock, sleep=sleep, rng=random.Random(seed), **options)
    return policy, sleep


async def run(policy: Resilience, method: str, script: Script, what: str, **kw):
    """policy.call(method, script); the Response, or the exception it raised."""
    with step(what):
        try:
            return await within(policy.call(method, script, **kw), 5.0, what)
        except (ConnectionError, TimeoutError, DeadlineExceeded) as error:
            return error


def describe(result) -> str:
    return f"Response({result.status})" if isinstance(result, Response) else type(result).__name__


@pytest.mark.points(2)
async def test_a_success_is_returned_after_one_attempt():
    """A 200 on the first attempt is returned as it came, with no retry and no sleep."""
    clock = FakeClock()
    policy, sleep = make(clock, max_attempts=3)
    script = Script([200])
    got = await run(policy, "GET", script, "policy.call('GET', upstream answering 200)")
    assert isinstance(got, Response) and got.status == 200 and got.body == b"status 200", called(
        "policy.call('GET', upstream answering 200)", describe(got), "the upstream's Response(200)"
    )
    assert script.attempts == 1 and sleep.delays == [], called(
        "policy.call('GET', upstream answering 200)",
        f"{script.attempts} attempts, sleeps {sleep.delays}",
        "1 attempt, no sleep",
    )


FLAKY = [
    # (method, script, max_attempts, expected attempts, expected final)
    ("GET", [503, 200], 3, 2, 200),
    ("GET", [503, 502, 504, 200], 4, 4, 200),
    ("GET", [503, 503, 503, 200], 3, 3, 503),
    ("GET", ["connect", "connect", 200], 3, 3, 200),
    ("POST", ["connect", 200], 3, 2, 200),
    ("POST", [503, 200], 3, 1, 503),
    ("POST", ["timeout", 200], 3, 1, "TimeoutError"),
    ("PUT", ["reset", 200], 3, 2, 200),
    ("GET", [500, 200], 3, 1, 500),
    ("GET", [404, 200], 3, 1, 404),
    ("GET", ["timeout", "timeout"], 2, 2, "TimeoutError"),
    ("GET", ["connect"], 3, 3, "ConnectFailed"),
    ("DELETE", ["reset"], 1, 1, "ConnectionResetError"),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("method", "outcomes", "max_attempts", "attempts", "final"),
    FLAKY,
    ids=[f"{m}-{'-'.join(map(str, o))}-max{n}" for m, o, n, _, _ in FLAKY],
)
async def test_retries_only_retry_safe_failures_up_to_max_attempts(
    method, outcomes, max_attempts, attempts, final
):
    """A retry-safe failure is retried until success or max_attempts; the last outcome is
    returned (a response) or raised (an exception). RFC 9110 §9.2.2."""
    clock = FakeClock()
    policy, _ = make(clock, max_attempts=max_attempts)
    script = Script(outcomes)
    what = (
        f"policy.call({method!r}, upstream answering {outcomes}) with max_attempts={max_attempts}"
    )
    got = await run(policy, method, script, what)
    assert (script.attempts, describe(got)) == (
        attempts,
        f"Response({final})" if isinstance(final, int) else final,
    ), called(
        what,
        f"{script.attempts} attempts, then {describe(got)}",
        f"{attempts} attempts, then {final}",
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", [0, 1, 99], ids=lambda s: f"seed{s}")
async def test_backoff_delays_are_full_jitter_from_the_injected_rng(seed):
    """Before retry n the policy sleeps rng.uniform(0, min(backoff_cap, backoff_base * 2**n)),
    through the injected sleep and RNG, and never after the last attempt."""
    clock = FakeClock()
    policy, sleep = make(clock, seed=seed, max_attempts=5, backoff_base=0.1, backoff_cap=0.5)
    script = Script([503])
    await run(policy, "GET", script, "policy.call('GET', always 503)")
    oracle = random.Random(seed)
    want = [oracle.uniform(0, min(0.5, 0.1 * 2**n)) for n in range(4)]
    assert sleep.delays == want, called(
        f"policy.call('GET', always 503), max_attempts=5, base 0.1, cap 0.5, Random({seed})",
        f"sleeps {sleep.delays}",
        f"sleeps {want}",
    )


@pytest.mark.points(2)
async def test_each_attempt_is_told_the_per_try_timeout_cut_to_the_deadline():
    """attempt(seconds) gets min(per_try_timeout, time left before the overall deadline)."""
    clock = FakeClock()
    policy, _ = make(clock, max_attempts=4, per_try_timeout=2.0, timeout=5.0, backoff_cap=0.0)
    script = Script(["timeout"], clock=clock, cost=1.5)
    await run(policy, "GET", script, "policy.call('GET', timeouts costing 1.5 s each)")
    want = [2.0, 2.0, 2.0, 0.5]
    assert script.given == want, called(
        "policy.call('GET', ...) with per_try_timeout=2, timeout=5, each try costing 1.5 s",
        f"attempts given {script.given}",
        f"{want}",
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("spent", "sends"),
    [(4.75, True), (5.0, False), (5.25, False)],
    ids=["just-before-deadline", "at-deadline", "past-deadline"],
)
async def test_an_expired_deadline_is_not_sent(spent, sends):
    """When the overall deadline has passed (time left <= 0), no attempt is sent: the call
    raises DeadlineExceeded."""
    clock = FakeClock()
    policy, sleep = make(clock, max_attempts=3, timeout=5.0, backoff_cap=0.0)
    script = Script([503, 200], clock=clock, cost=spent)
    got = await run(policy, "GET", script, f"policy.call('GET', first try costs {spent} s)")
    want = "Response(200)" if sends else "DeadlineExceeded"
    assert (script.attempts, describe(got)) == (2 if sends else 1, want), called(
        f"policy.call('GET', [503, 200]) with timeout=5 when the first try took {spent} s",
        f"{script.attempts} attempts, then {describe(got)}",
        f"{2 if sends else 1} attempts, then {want}",
    )


@pytest.mark.points(1)
async def test_the_callers_timeout_shortens_the_deadline():
    """call(..., timeout=t) uses min(t, the policy's timeout) as the overall deadline."""
    clock = FakeClock()
    policy, _ = make(clock, max_attempts=5, per_try_timeout=4.0, timeout=10.0, backoff_cap=0.0)
    script = Script(["timeout"], clock=clock, cost=1.0)
    got = await run(policy, "GET", script, "policy.call('GET', ..., timeout=2.5)", timeout=2.5)
    assert script.given == [2.5, 1.5, 0.5] and describe(got) == "DeadlineExceeded", called(
        "policy.call('GET', timeouts costing 1 s, timeout=2.5) with per_try_timeout=4, timeout=10",
        f"attempts given {script.given}, then {describe(got)}",
        "attempts given [2.5, 1.5, 0.5], then DeadlineExceeded",
    )
    policy, _ = make(clock, max_attempts=2, per_try_timeout=4.0, timeout=3.0, backoff_cap=0.0)
    script = Script([200])
    await run(policy, "GET", script, "policy.call('GET', ..., timeout=8)", timeout=8.0)
    assert script.given == [3.0], called(
        "policy.call('GET', ..., timeout=8) with per_try_timeout=4, timeout=3",
        f"attempt given {script.given}",
        "[3.0]: the caller cannot extend the policy's deadline",
    )


@pytest.mark.points(1)
async def test_backoff_time_counts_against_the_deadline():
    """Time slept between tries is part of the overall deadline."""
    clock = FakeClock()
    policy, sleep = make(clock, max_attempts=10, timeout=1.0, backoff_base=0.5, backoff_cap=0.5)
    script = Script([503])
    got = await run(policy, "GET", script, "policy.call('GET', always 503, timeout=1)")
    assert describe(got) == "DeadlineExceeded" and sum(sleep.delays[:-1]) < 1.0 <= sum(
        sleep.delays
    ), called(
        "policy.call('GET', always 503) with timeout=1, instant tries, backoff up to 0.5 s",
        f"{describe(got)} after sleeping {sleep.delays}",
        "DeadlineExceeded once the sleeps add up to the deadline",
    )


@pytest.mark.points(1)
async def test_a_hanging_attempt_is_cut_at_the_per_try_timeout():
    """An attempt that never answers is cancelled after per_try_timeout and counts as a timeout."""
    calls = []
    cancelled = []

    async def hang(seconds: float) -> Response:
        calls.append(seconds)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(seconds)
            raise
        raise AssertionError("unreachable")

    policy = Resilience(max_attempts=2, per_try_timeout=0.05, timeout=30.0, backoff_cap=0.0)
    what = "policy.call('GET', an attempt that never answers) with per_try_timeout=0.05"
    with step(what):
        try:
            got = await within(policy.call("GET", hang), 5.0, what)
        except TimeoutError as error:
            got = error
    assert isinstance(got, TimeoutError) and len(calls) == 2 and len(cancelled) == 2, called(
        what,
        f"{describe(got)} after {len(calls)} attempts ({len(cancelled)} cancelled)",
        "TimeoutError after 2 attempts, both cancelled",
    )

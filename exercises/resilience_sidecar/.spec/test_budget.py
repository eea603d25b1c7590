"""The retry budget: retries stay a fraction of requests, plus a floor, within a ttl window."""

from __future__ import annotations

import contextlib
import math
import random

import pytest
from _helpers import Script
from resilience_sidecar import Resilience, RetryBudget

from grader.spectools import FakeClock, FakeSleep, called, step


def spend(budget: RetryBudget) -> int:
    """Call try_retry() until it says no; how many it granted (at most 1000)."""
    for granted in range(1000):
        with step(f"budget.try_retry() after {granted} granted"):
            if not budget.try_retry():
                return granted
    return 1000


# (requests, ratio, min_per_second, ttl) -> retries allowed = floor(ratio * requests + min * ttl)
CASES = [
    (0, 0.5, 0.0, 10.0, 0),
    (1, 0.5, 0.0, 10.0, 0),
    (2, 0.5, 0.0, 10.0, 1),
    (3, 0.5, 0.0, 10.0, 1),
    (4, 0.25, 0.0, 10.0, 1),
    (7, 0.25, 0.0, 10.0, 1),
    (8, 0.25, 0.0, 10.0, 2),
    (0, 0.2, 0.5, 4.0, 2),
    (5, 0.5, 0.25, 4.0, 3),
    (10, 0.25, 1.0, 2.0, 4),
    (1, 0.5, 0.05, 10.0, 1),  # 0.5 + 0.5: the sum is floored, not each term
]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("requests", "ratio", "floor", "ttl", "want"),
    CASES,
    ids=[f"{r}req-ratio{q}-min{f}x{t}s" for r, q, f, t, _ in CASES],
)
def test_retries_allowed_are_ratio_times_requests_plus_the_floor(requests, ratio, floor, ttl, want):
    """Within ttl, try_retry() grants retries while retries + 1 <= retry_ratio * requests +
    min_retries_per_second * ttl, then refuses."""
    clock = FakeClock()
    budget = RetryBudget(retry_ratio=ratio, min_retries_per_second=floor, ttl=ttl, clock=clock)
    for _ in range(requests):
        with step("budget.record_request()"):
            budget.record_request()
    got = spend(budget)
    assert got == want, called(
        f"RetryBudget(retry_ratio={ratio}, min_retries_per_second={floor}, ttl={ttl}) after "
        f"{requests} record_request(); then try_retry() until False",
        f"{got} retries granted",
        f"{want}",
    )


@pytest.mark.points(1)
def test_a_refused_retry_spends_nothing():
    """A try_retry() that returns False does not count as a retry: one more request makes room again."""
    clock = FakeClock()
    budget = RetryBudget(retry_ratio=0.5, min_retries_per_second=0.0, ttl=10.0, clock=clock)
    for _ in range(2):
        budget.record_request()
    assert spend(budget) == 1, called(
        "2 requests at ratio 0.5, then try_retry() repeatedly", "?", 1
    )
    for _ in range(5):
        budget.try_retry()
    budget.record_request()
    budget.record_request()
    got = budget.try_retry()
    assert got is True, called(
        "try_retry() after 4 requests, 1 retry granted and 5 refused (ratio 0.5)", got, True
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("age", "granted"),
    [(9.875, 1), (10.0, 0), (10.125, 0)],
    ids=["just-inside-ttl", "at-ttl", "past-ttl"],
)
def test_requests_expire_after_ttl(age, granted):
    """A request counts toward the budget while now - t < ttl: at exactly ttl it no longer does."""
    clock = FakeClock(100.0)
    budget = RetryBudget(retry_ratio=0.5, min_retries_per_second=0.0, ttl=10.0, clock=clock)
    with step("budget.record_request() twice"):
        budget.record_request()
        budget.record_request()
    clock.advance(age)
    got = spend(budget)
    assert got == granted, called(
        f"2 requests at ratio 0.5 and ttl 10, then try_retry() {age} s later until False",
        f"{got} retries granted",
        granted,
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("age", "granted"),
    [(3.875, 0), (4.0, 1), (4.125, 1)],
    ids=["just-inside-ttl", "at-ttl", "past-ttl"],
)
def test_spent_retries_expire_after_ttl(age, granted):
    """A granted retry counts against the budget while now - t < ttl: at exactly ttl it no longer does."""
    clock = FakeClock(100.0)
    budget = RetryBudget(retry_ratio=0.5, min_retries_per_second=0.25, ttl=4.0, clock=clock)
    first = spend(budget)
    assert first == 1, called("try_retry() with no requests and a floor of 0.25/s x 4 s", first, 1)
    clock.advance(age)
    got = spend(budget)
    assert got == granted, called(
        f"try_retry() {age} s after the floor's one retry was spent (ttl 4) until False",
        f"{got} retries granted",
        granted,
    )


@pytest.mark.points(1)
async def test_only_retries_actually_made_spend_the_budget():
    """Failures that are not retried (a POST timeout, a 404, the last attempt) spend no budget."""
    clock = FakeClock()
    budget = RetryBudget(retry_ratio=0.5, min_retries_per_second=0.0, ttl=60.0, clock=clock)
    policy = Resilience(
        max_attempts=2,
        per_try_timeout=1.0,
        timeout=30.0,
        budget=budget,
        clock=clock,
        sleep=FakeSleep(clock),
        rng=random.Random(1),
        backoff_cap=0.0,
    )
    with step("policy.call('POST', timing out)"), contextlib.suppress(TimeoutError):
        await policy.call("POST", Script(["timeout"]))
    with step("policy.call('GET', answering 404)"):
        await policy.call("GET", Script([404]))
    flaky = Script([503, 200])
    with step("policy.call('GET', answering 503 then 200)"):
        got = await policy.call("GET", flaky)
    assert (flaky.attempts, got.status) == (2, 200), called(
        "policy.call('GET', 503 then 200) after a POST timeout and a 404 (ratio 0.5, 3 requests)",
        f"{flaky.attempts} attempts, then {got.status}",
        "2 attempts, then 200 (1.5 retries in the budget, none spent yet)",
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("requests", [1, 9, 10, 11, 40], ids=lambda n: f"{n}-requests")
async def test_a_dead_upstream_sees_no_retry_storm(requests):
    """Against an upstream that always fails, total attempts stay within requests +
    floor(ratio * requests + min_retries_per_second * ttl), however many attempts a call may make."""
    clock = FakeClock()
    budget = RetryBudget(retry_ratio=0.25, min_retries_per_second=0.5, ttl=4.0, clock=clock)
    sleep = FakeSleep(clock)
    policy = Resilience(
        max_attempts=5,
        per_try_timeout=1.0,
        timeout=60.0,
        budget=budget,
        clock=clock,
        sleep=sleep,
        rng=random.Random(1),
        backoff_cap=0.0,
    )
    upstream = Script(["connect"])
    for index in range(requests):
        with (
            step(f"policy.call('GET', dead upstream) #{index + 1}"),
            pytest.raises(ConnectionError),
        ):
            await policy.call("GET", upstream)
    allowed = requests + math.floor(0.25 * requests + 0.5 * 4.0)
    want = min(allowed, requests * 5)
    assert upstream.attempts == want, called(
        f"{requests} calls of policy.call('GET', ...) on a dead upstream, max_attempts=5, "
        "RetryBudget(retry_ratio=0.25, min_retries_per_second=0.5, ttl=4.0), no time passing",
        f"{upstream.attempts} upstream attempts",
        f"{want} (every retry the budget allows, no more)",
    )

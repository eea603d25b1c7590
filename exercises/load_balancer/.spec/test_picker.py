"""Hidden specs for the sans-IO pickers: strategies, in-flight counts, passive health checks."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from _helpers import Model, make_backends, names, swrr_sequence
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from load_balancer import (
    Backend,
    LeastConnections,
    NoBackendAvailable,
    RoundRobin,
    SmoothWeighted,
)

from grader.spectools import FakeClock, called

STRATEGIES = {"rr": RoundRobin, "swrr": SmoothWeighted, "lc": LeastConnections}
# Readable ids for "rr", "swrr", "lc": literals, since the spec list is collected without the
# learner's module.
STRATEGY_IDS = ["RoundRobin", "SmoothWeighted", "LeastConnections"]

# No "explain" phase: it is slow on failure and adds nothing to the message a learner sees.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]


def picks(picker, count: int) -> list[Backend]:
    return [picker.pick() for _ in range(count)]


def history(setup: str, done: list[str], keep: int = 14) -> str:
    """The calls that led to a wrong pick, for the learner to replay (the last ``keep`` of them)."""
    shown = done if len(done) <= keep else ["...", *done[-keep:]]
    return f"{setup}: " + " ; ".join(shown)


# -- round robin --------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_round_robin_takes_each_backend_in_list_order():
    """RoundRobin picks the backends in list order, one after another, and wraps around."""
    picker = RoundRobin(make_backends("abcd"))
    got = names(picks(picker, 9))
    want = "a b c d a b c d a"
    assert got == want, called("RoundRobin([a, b, c, d]).pick() nine times", got, want)


@pytest.mark.points(1)
def test_round_robin_ignores_weights():
    """RoundRobin gives every backend one turn per cycle, whatever its weight."""
    picker = RoundRobin(make_backends("abc", [5, 1, 1]))
    got = names(picks(picker, 6))
    want = "a b c a b c"
    assert got == want, called("RoundRobin([a:5, b:1, c:1]).pick() six times", got, want)


# -- smooth weighted round robin ----------------------------------------------------------------


@pytest.mark.points(3)
def test_smooth_weighted_matches_the_nginx_vector():
    """SmoothWeighted with weights a=5, b=1, c=1 picks a a b a c a a, then repeats."""
    # Published sequence of nginx's smooth weighted round robin (VECTORS.md, "Load balancing").
    picker = SmoothWeighted(make_backends("abc", [5, 1, 1]))
    got = names(picks(picker, 14))
    want = "a a b a c a a a a b a c a a"
    assert got == want, called("SmoothWeighted([a:5, b:1, c:1]).pick() 14 times", got, want)


@pytest.mark.points(3)
@settings(max_examples=60, deadline=None, phases=PHASES)
@given(weights=st.lists(st.integers(1, 9), min_size=1, max_size=6))
def test_smooth_weighted_follows_nginx_for_any_weights(weights):
    """SmoothWeighted picks exactly what nginx's algorithm picks, for any weights."""
    picker = SmoothWeighted(make_backends("abcdef"[: len(weights)], weights))
    count = 2 * sum(weights)
    got = names(picks(picker, count))
    want = " ".join("abcdef"[i] for i in swrr_sequence(weights, count))
    assert got == want, called(f"SmoothWeighted(weights={weights}).pick() {count} times", got, want)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "weights",
    [[3, 2, 1], [1, 1, 7, 2], [4, 4], [10, 1, 3, 5, 2]],
    ids=lambda weights: "weights " + ":".join(map(str, weights)),
)
def test_smooth_weighted_is_exactly_fair(weights):
    """Over k * sum(weights) picks, SmoothWeighted picks each backend exactly k * weight times."""
    picker = SmoothWeighted(make_backends("abcde"[: len(weights)], weights))
    k = 3
    got = Counter(b.name for b in picks(picker, k * sum(weights)))
    want = {"abcde"[i]: k * w for i, w in enumerate(weights)}
    assert dict(got) == want, called(
        f"SmoothWeighted(weights={weights}).pick() {k * sum(weights)} times, counted",
        dict(got),
        want,
    )


@pytest.mark.points(1)
def test_smooth_weighted_spreads_a_heavy_backend():
    """SmoothWeighted never picks a backend more often in a row than its share demands."""
    picker = SmoothWeighted(make_backends("abc", [2, 1, 1]))
    got = names(picks(picker, 8))
    want = "a b c a a b c a"
    assert got == want, called("SmoothWeighted([a:2, b:1, c:1]).pick() 8 times", got, want)


@pytest.mark.points(2)
def test_smooth_weighted_runs_over_the_backends_left_when_one_is_ejected():
    """While a backend is ejected, SmoothWeighted runs nginx's algorithm over the others only."""
    clock = FakeClock(1000.0)
    a, b, c = make_backends("abc", [3, 2, 1])
    picker = SmoothWeighted([a, b, c], max_fails=1, fail_timeout=8.0, clock=clock)
    model = Model("swrr", "abc", [3, 2, 1], 1, 8.0, clock)
    got, want = [], []
    for step in range(30):
        if step == 2:
            picker.report_failure(b)
            model.failure("b")
        if step == 20:
            clock.advance(8.0)  # b is back
        got.append(picker.pick().name)
        want.append(model.pick())
    assert got == want, called(
        "SmoothWeighted([a:3, b:2, c:1]): 2 picks, b ejected, 18 picks, b back, 10 picks",
        " ".join(got),
        " ".join(want),
    )


# -- least connections --------------------------------------------------------------------------


@pytest.mark.points(3)
def test_least_connections_picks_the_least_loaded_backend():
    """LeastConnections picks the backend with the fewest connections still in flight."""
    a, b, c = make_backends("abc")
    picker = LeastConnections([a, b, c])
    first = names(picks(picker, 6))  # two each
    assert first == "a b c a b c", called(
        "LeastConnections([a, b, c]).pick() six times", first, "a b c a b c"
    )
    picker.release(b)
    picker.release(b)
    picker.release(c)  # in flight now: a=2, b=0, c=1
    got = names(picks(picker, 3))
    # b (0 in flight); then b and c tie at 1 and the cursor is past b, so c; then b (1 < 2).
    want = "b c b"
    assert got == want, called(
        "after six picks and release(b), release(b), release(c): pick() three times", got, want
    )


@pytest.mark.points(2)
def test_least_connections_counts_every_unreleased_pick():
    """in_flight(b) counts the picks of b not yet released; release() brings it back down."""
    a, b = make_backends("ab")
    picker = LeastConnections([a, b])
    for _ in range(5):
        picker.pick()
    got = (picker.in_flight(a), picker.in_flight(b))
    assert got == (3, 2), called(
        "five pick()s on [a, b], then (in_flight(a), in_flight(b))", got, (3, 2)
    )
    picker.release(a)
    picker.release(a)
    picker.release(a)
    got = (picker.in_flight(a), picker.in_flight(b))
    assert got == (0, 2), called("then release(a) three times: in_flight", got, (0, 2))
    after = names(picks(picker, 2))
    assert after == "a a", called("then pick() twice (a=0, b=2 in flight)", after, "a a")


@pytest.mark.points(2)
def test_least_connections_rotates_among_idle_backends():
    """Short sequential connections on LeastConnections go round robin, not all to the first backend."""
    picker = LeastConnections(make_backends("abc"))
    got = []
    for _ in range(6):
        backend = picker.pick()
        got.append(backend)
        picker.release(backend)
    assert names(got) == "a b c a b c", called(
        "LeastConnections([a, b, c]): pick() then release() six times", names(got), "a b c a b c"
    )


@pytest.mark.points(2)
def test_least_connections_under_any_load():
    """LeastConnections follows the rule (fewest in flight, ties round robin) under any mix of picks and releases."""
    rng = random.Random(4)
    for run in range(150):
        backends = {b.name: b for b in make_backends("abcd")}
        picker = LeastConnections(list(backends.values()))
        model = Model("lc", "abcd", [1] * 4, 1, 10.0, lambda: 0.0)
        done: list[str] = []
        for _ in range(rng.randrange(1, 40)):
            name = rng.choice("abcd")
            if rng.random() < 0.4:
                if model.busy[name] == 0:
                    continue
                model.release(name)
                picker.release(backends[name])
                done.append(f"release({name})")
                continue
            want = model.pick()
            got = picker.pick().name
            done.append("pick()")
            assert got == want, called(
                history(f"run {run}: LeastConnections([a, b, c, d])", done), got, want
            )


@pytest.mark.points(1)
def test_release_without_pick_is_an_error():
    """release(b) without a matching pick() raises ValueError instead of counting below zero."""
    a, b = make_backends("ab")
    picker = LeastConnections([a, b])
    picker.release(picker.pick())  # a: picked and released
    with pytest.raises(ValueError):
        picker.release(a)
        raise AssertionError(called("release(a) a second time", "no error", "ValueError"))


# -- exclusion and validation -------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.parametrize("strategy", ["rr", "swrr", "lc"], ids=STRATEGY_IDS)
def test_pick_never_returns_an_excluded_backend(strategy):
    """pick(exclude=...) never returns an excluded backend, and raises NoBackendAvailable if all are."""
    a, b, c = make_backends("abc", [3, 2, 1])
    picker = STRATEGIES[strategy]([a, b, c])
    got = names([picker.pick(exclude=[a, c]) for _ in range(4)])
    assert got == "b b b b", called(f"{strategy}: pick(exclude=[a, c]) four times", got, "b b b b")
    with pytest.raises(NoBackendAvailable):
        backend = picker.pick(exclude=[a, b, c])
        raise AssertionError(called("pick(exclude=[a, b, c])", backend, "NoBackendAvailable"))


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "backends",
    [
        [],
        [Backend("a", "127.0.0.1", 1), Backend("a", "127.0.0.1", 2)],
        [Backend("a", "127.0.0.1", 1, weight=0)],
    ],
    ids=["no backends", "duplicate names", "weight 0"],
)
def test_bad_backend_lists_are_refused(backends):
    """A picker refuses an empty list, duplicate names and weights below 1 with ValueError."""
    for cls in (RoundRobin, SmoothWeighted, LeastConnections):
        with pytest.raises(ValueError):
            cls(backends)
            raise AssertionError(called(f"{cls.__name__}({backends!r})", "a picker", "ValueError"))


# -- passive health checks ----------------------------------------------------------------------


@pytest.mark.points(2)
def test_max_fails_failures_in_a_row_eject_a_backend():
    """A backend is ejected after max_fails failures in a row, and not one failure earlier."""
    clock = FakeClock()
    a, b, c = make_backends("abc")
    picker = RoundRobin([a, b, c], max_fails=3, fail_timeout=30.0, clock=clock)
    picker.report_failure(b)
    picker.report_failure(b)
    assert picker.is_available(b), called(
        "is_available(b) after 2 failures, max_fails=3", False, True
    )
    got = names(picks(picker, 3))
    assert got == "a b c", called("pick() three times after 2 failures of b", got, "a b c")
    picker.report_failure(b)
    assert not picker.is_available(b), called("is_available(b) after 3 failures", True, False)
    got = names(picks(picker, 4))
    assert got == "a c a c", called("pick() four times after 3 failures of b", got, "a c a c")


@pytest.mark.points(2)
def test_a_success_resets_the_failure_count():
    """Failures that are not consecutive (a success in between) never eject a backend."""
    clock = FakeClock()
    a, b = make_backends("ab")
    picker = RoundRobin([a, b], max_fails=2, fail_timeout=30.0, clock=clock)
    for round_ in range(4):
        picker.report_failure(b)
        picker.report_success(b)
        assert picker.is_available(b), called(
            f"is_available(b) after {round_ + 1} x (report_failure(b), report_success(b))",
            False,
            True,
        )
    picker.report_failure(b)
    assert picker.is_available(b), called("one more report_failure(b), max_fails=2", False, True)
    picker.report_failure(b)
    assert not picker.is_available(b), called("two failures in a row, max_fails=2", True, False)


@pytest.mark.points(2)
def test_an_ejected_backend_is_readmitted_exactly_after_fail_timeout():
    """An ejected backend stays out for fail_timeout seconds and is back at exactly that instant."""
    clock = FakeClock(1000.0)
    a, b = make_backends("ab")
    picker = RoundRobin([a, b], max_fails=1, fail_timeout=30.0, clock=clock)
    picker.report_failure(b)  # at t=1000: out until t=1030
    clock.advance(29.5)
    assert not picker.is_available(b), called(
        "is_available(b) 29.5 s after the failure", True, False
    )
    got = names(picks(picker, 2))
    assert got == "a a", called("pick() twice 29.5 s after b failed", got, "a a")
    clock.advance(0.5)
    assert picker.is_available(b), called(
        "is_available(b) exactly 30 s (fail_timeout) after", False, True
    )
    got = names(picks(picker, 2))
    assert got == "b a" or got == "a b", called(
        "pick() twice 30 s after b failed", got, "b among the picks"
    )


@pytest.mark.points(1)
def test_the_window_starts_at_the_last_failure():
    """The fail_timeout window is counted from the failure that (re)ejected the backend."""
    clock = FakeClock(1000.0)
    a, b = make_backends("ab")
    picker = RoundRobin([a, b], max_fails=2, fail_timeout=10.0, clock=clock)
    picker.report_failure(b)  # t=1000, 1 of 2
    clock.advance(8.0)
    picker.report_failure(b)  # t=1008, 2 of 2: out until t=1018
    clock.advance(4.0)
    assert not picker.is_available(b), called(
        "is_available(b) 12 s after the 1st failure, 4 s after the 2nd (fail_timeout=10)",
        True,
        False,
    )
    clock.advance(6.0)
    assert picker.is_available(b), called("is_available(b) 10 s after the 2nd failure", False, True)


@pytest.mark.points(2)
def test_a_readmitted_backend_that_fails_again_is_ejected_at_once():
    """A re-admitted backend goes straight back out on its next failure; a success clears it."""
    clock = FakeClock(1000.0)
    a, b = make_backends("ab")
    picker = RoundRobin([a, b], max_fails=3, fail_timeout=10.0, clock=clock)
    for _ in range(3):
        picker.report_failure(b)
    clock.advance(10.0)
    assert picker.is_available(b), called("is_available(b) after fail_timeout", False, True)
    picker.report_failure(b)  # the trial failed
    assert not picker.is_available(b), called(
        "is_available(b) after a failure right after re-admission", True, False
    )
    clock.advance(10.0)
    picker.report_success(b)  # the next trial worked
    picker.report_failure(b)
    picker.report_failure(b)
    assert picker.is_available(b), called(
        "is_available(b) after re-admission, a success, then 2 failures (max_fails=3)", False, True
    )


@pytest.mark.points(1)
def test_when_every_backend_is_ejected_pick_raises():
    """pick() raises NoBackendAvailable while every backend is ejected, and works again after."""
    clock = FakeClock()
    a, b = make_backends("ab")
    picker = SmoothWeighted([a, b], max_fails=1, fail_timeout=5.0, clock=clock)
    picker.report_failure(a)
    clock.advance(1.0)
    picker.report_failure(b)
    with pytest.raises(NoBackendAvailable):
        backend = picker.pick()
        raise AssertionError(called("pick() with a and b ejected", backend, "NoBackendAvailable"))
    clock.advance(4.0)  # a is back (5 s after its failure), b not yet
    got = names(picks(picker, 2))
    assert got == "a a", called("pick() twice once a is back and b is not", got, "a a")


@pytest.mark.points(1)
def test_max_fails_zero_never_ejects():
    """max_fails=0 turns the health checks off: no number of failures ejects a backend."""
    a, b = make_backends("ab")
    picker = LeastConnections([a, b], max_fails=0, fail_timeout=10.0, clock=FakeClock())
    for _ in range(20):
        picker.report_failure(a)
    assert picker.is_available(a), called(
        "is_available(a) after 20 failures, max_fails=0", False, True
    )


@pytest.mark.points(1)
def test_the_clock_is_the_only_source_of_time(monkeypatch):
    """A picker given a clock never reads the system time (it is sans-IO)."""
    import time

    def forbidden() -> float:
        raise AssertionError("the picker read the system clock instead of the injected clock")

    clock = FakeClock()
    a, b = make_backends("ab")
    picker = RoundRobin([a, b], max_fails=1, fail_timeout=5.0, clock=clock)
    for name in ("monotonic", "time", "perf_counter", "monotonic_ns", "time_ns"):
        monkeypatch.setattr(time, name, forbidden)
    picker.report_failure(a)
    clock.advance(5.0)
    got = names(picks(picker, 2))
    assert got == "a b", called("pick() twice 5 s after a failed", got, "a b")


# -- the whole rule set against the model -------------------------------------------------------

OPS = ["pick"] * 5 + ["release", "release", "success", "failure", "failure", "advance"]
ADVANCE = [0.5, 2.0, 4.0]  # binary fractions: "clock() >= t + fail_timeout" has no rounding


@pytest.mark.points(3)
@pytest.mark.parametrize("strategy", ["rr", "swrr", "lc"], ids=STRATEGY_IDS)
def test_every_strategy_follows_the_rules_under_failures(strategy):
    """Each strategy picks what the rules say under any mix of picks, releases, failures and time."""
    rng = random.Random(40)
    weights = [3, 1, 2]
    for run in range(150):
        clock = FakeClock(1000.0)
        backends = make_backends("abc", weights)
        by_name = {b.name: b for b in backends}
        picker = STRATEGIES[strategy](backends, max_fails=2, fail_timeout=4.0, clock=clock)
        model = Model(strategy, "abc", weights, 2, 4.0, clock)
        done: list[str] = []
        for _ in range(rng.randrange(1, 50)):
            op, arg = rng.choice(OPS), rng.randrange(3)
            name = "abc"[arg]
            if op == "advance":
                clock.advance(ADVANCE[arg])
                done.append(f"clock.advance({ADVANCE[arg]})")
            elif op == "pick":
                exclude = [name] if rng.random() < 0.2 else []
                want = model.pick(exclude)
                try:
                    got = picker.pick(exclude=[by_name[n] for n in exclude]).name
                except NoBackendAvailable:
                    got = "NoBackendAvailable"
                done.append(f"pick(exclude=[{name}])" if exclude else "pick()")
                assert got == (want or "NoBackendAvailable"), called(
                    history(
                        f"run {run}: {strategy}, weights a:3 b:1 c:2, max_fails=2, fail_timeout=4",
                        done,
                    ),
                    got,
                    want or "NoBackendAvailable",
                )
            elif op == "release":
                if model.busy[name] == 0:
                    continue
                model.release(name)
                picker.release(by_name[name])
                done.append(f"release({name})")
            elif op == "success":
                model.success(name)
                picker.report_success(by_name[name])
                done.append(f"report_success({name})")
            else:
                model.failure(name)
                picker.report_failure(by_name[name])
                done.append(f"report_failure({name})")

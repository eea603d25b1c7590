"""The spec helpers every kata shares (grader.spectools): each does what its docstring says."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import types

import pytest

from grader.spectools import (
    CountingLoop,
    FakeClock,
    bounded,
    called,
    short,
    spy_compare_digest,
    spy_on,
    step,
)


def test_called_says_what_was_called_returned_and_expected():
    assert called("f(1)", 2, 3) == "Called f(1); returned 2; expected 3"
    assert called("f(1)", 2, 3, show_expected=False) == "Called f(1); returned 2"


def test_short_cuts_long_values_and_says_so():
    assert short("x" * 10) == repr("x" * 10)
    cut = short("x" * 500, limit=20)
    assert len(cut) == 20 and cut.endswith("...")


def test_step_words_an_unexpected_exception_and_lets_the_specs_own_through():
    with (
        pytest.raises(AssertionError, match=r"^Called f\(7\); raised ValueError: bad$"),
        step("f(7)"),
    ):
        raise ValueError("bad")
    with pytest.raises(NotImplementedError), step("f(7)"):
        raise NotImplementedError  # how the grader tells an untouched stub
    with pytest.raises(AssertionError, match="^own$"), step("f(7)"):
        raise AssertionError("own")


def test_fake_clock_moves_only_forward_and_by_hand():
    clock = FakeClock(10)
    assert clock() == 10 and clock.advance(2.5) == 12.5 and clock() == 12.5
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_bounded_fails_with_a_readable_message():
    assert await bounded(asyncio.sleep(0, "ok"), 1) == "ok"
    with pytest.raises(AssertionError, match="waited 0.01 s for the echo; it never came"):
        await bounded(asyncio.Event().wait(), 0.01, "the echo")


def test_spy_compare_digest_sees_every_way_to_the_function(monkeypatch):
    learner = types.ModuleType("learner")
    learner.cd = hmac.compare_digest  # from hmac import compare_digest as cd
    calls = spy_compare_digest(monkeypatch, learner)
    assert hmac.compare_digest(b"a", b"a") is True
    assert secrets.compare_digest("a", "b") is False
    assert learner.cd(b"x", b"y") is False
    assert calls == [(b"a", b"a"), ("a", "b"), (b"x", b"y")]


def test_spy_on_records_what_it_is_told_and_answers_like_the_real_function(monkeypatch):
    holder = types.SimpleNamespace(f=lambda a, b=0: a + b)
    real = holder.f
    calls = spy_on(monkeypatch, real, [(holder, "f")], record=lambda a, b=0: a)
    assert holder.f(2, b=3) == 5 and calls == [2]
    monkeypatch.undo()
    assert holder.f is real


def test_counting_loop_counts_wakeups_and_none_while_parked():
    loop = CountingLoop()
    try:

        async def parked(event: asyncio.Event) -> None:
            await event.wait()

        event = asyncio.Event()
        task = loop.create_task(parked(event))
        loop.run_until_complete(asyncio.sleep(0))
        before = loop.wakeups
        loop.run_until_complete(asyncio.sleep(0.01))  # a parked task is not woken
        idle = loop.wakeups - before
        loop.call_soon(event.set)
        loop.run_until_complete(task)
        assert loop.wakeups > before + idle, "waking the task counted nothing"
        assert idle <= 3, f"{idle} wake-ups while the only task was parked"
    finally:
        loop.close()


async def test_bounded_lets_the_awaitables_own_timeout_error_through():
    async def times_out():
        raise TimeoutError("per-try timeout")

    with pytest.raises(TimeoutError, match="per-try timeout"):
        await bounded(times_out(), 1, "the answer")


async def test_bounded_cancels_what_it_gave_up_on():
    started = asyncio.Event()
    cancelled = []

    async def forever():
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(AssertionError, match="waited 0.05 s for the echo"):
        await bounded(forever(), 0.05, "the echo")
    assert started.is_set() and cancelled == [True]

"""Expiry on an injected clock: lazy on access, and active (periodic) with a bounded sample."""

from __future__ import annotations

import asyncio
import math

import pytest
from _helpers import async_client, bounded, called, running, step

# Binary-exact steps (1/8 s), so a deadline and a clock that reaches it compare equal.
EIGHTH = 0.125


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("args", "life"),
    [(["EX", "2"], 2.0), (["PX", "125"], EIGHTH), (["px", "1000"], 1.0)],
    ids=["ex_seconds", "px_milliseconds", "lower_case_px"],
)
async def test_set_with_a_ttl_lives_until_its_deadline_and_no_longer(
    args: list[str], life: float
) -> None:
    """A key set with EX/PX is there at its deadline exactly, and gone one millisecond later (Redis: expired when now > deadline)."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            await r.execute_command("SET", "k", "v", *args)
            srv.clock.advance(life)
            at = await r.get("k")
            srv.clock.advance(0.001)
            after = await r.get("k")
            exists = await r.exists("k")
        finally:
            await r.aclose()
    what = f"SET k v {' '.join(args)}"
    assert at == b"v", called(f"{what}; {life} s later GET k", at, b"v")
    assert after is None, called(f"{what}; {life + 0.001} s later GET k", after, None)
    assert exists == 0, called(f"{what}; {life + 0.001} s later EXISTS k", exists, 0)


async def test_an_expired_key_behaves_as_missing_for_every_command() -> None:
    """Once past its deadline a key is missing for every command: SET NX sets it, INCR starts from 0, DEL counts 0."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            for key in ("a", "b", "c"):
                await r.set(key, "5", px=125)
            srv.clock.advance(EIGHTH + 0.001)
            got = [
                await r.set("a", "new", nx=True),
                await r.incr("b"),
                await r.delete("c"),
                await r.ttl("b"),
            ]
        finally:
            await r.aclose()
    want = [True, 1, 0, -1]
    assert got == want, called("SET a NX; INCR b; DEL c; TTL b, all three expired", got, want)


async def test_ttl_reports_seconds_left() -> None:
    """TTL answers -2 for a missing key, -1 for a key without a TTL, else the seconds left rounded to the nearest (expire.c)."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            await r.set("plain", "v")
            await r.set("k", "v", ex=10)
            got = [await r.ttl("missing"), await r.ttl("plain"), await r.ttl("k")]
            srv.clock.advance(0.375)  # 9.625 s left: rounds to 10
            got.append(await r.ttl("k"))
            srv.clock.advance(0.25)  # 9.375 s left: rounds to 9
            got.append(await r.ttl("k"))
        finally:
            await r.aclose()
    want = [-2, -1, 10, 10, 9]
    assert got == want, called(
        "TTL missing, plain, k (EX 10); after 0.375 s; after 0.625 s", got, want
    )


async def test_expire_and_persist() -> None:
    """EXPIRE answers 1 and sets a TTL on an existing key, 0 on a missing one; PERSIST removes a TTL (1) or answers 0."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            await r.set("k", "v")
            got = [await r.expire("k", 5), await r.expire("missing", 5), await r.ttl("k")]
            got += [
                await r.persist("k"),
                await r.persist("k"),
                await r.persist("missing"),
                await r.ttl("k"),
            ]
            srv.clock.advance(10)
            got.append(await r.get("k"))
        finally:
            await r.aclose()
    want = [True, False, 5, True, False, False, -1, b"v"]
    assert got == want, called(
        "EXPIRE k 5; EXPIRE missing 5; TTL k; PERSIST k; PERSIST k; PERSIST missing; TTL k; 10 s later GET k",
        got,
        want,
    )


@pytest.mark.parametrize("seconds", ["0", "-3"], ids=["zero", "negative"])
async def test_expire_in_the_past_deletes_now(seconds: str) -> None:
    """EXPIRE with a deadline already past (0 or negative seconds) deletes the key at once and answers 1."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            await r.set("k", "v")
            answer = await r.execute_command("EXPIRE", "k", seconds)
            left = await r.dbsize()
        finally:
            await r.aclose()
    assert answer == 1, called(f"EXPIRE k {seconds}", answer, 1)
    assert left == 0, called(f"DBSIZE after EXPIRE k {seconds}", left, 0)


async def test_set_forgets_the_ttl_unless_keepttl_and_incr_keeps_it() -> None:
    """A plain SET removes the key's TTL; SET ... KEEPTTL and INCR keep it."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            for key in ("a", "b", "c"):
                await r.set(key, "1", ex=100)
            await r.set("a", "2")
            await r.set("b", "2", keepttl=True)
            await r.incr("c")
            got = [await r.ttl("a"), await r.ttl("b"), await r.ttl("c")]
        finally:
            await r.aclose()
    want = [-1, 100, 100]
    assert got == want, called(
        "keys a, b, c with EX 100; SET a 2; SET b 2 KEEPTTL; INCR c; TTL a b c", got, want
    )


async def test_del_takes_the_ttl_with_the_key() -> None:
    """A deleted key's TTL goes with it: the key created again by INCR or SET KEEPTTL has no TTL."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            for key in ("a", "b"):
                await r.set(key, "1", ex=100)
            deleted = await r.delete("a", "b")
            await r.incr("a")
            await r.set("b", "2", keepttl=True)
            got = [deleted, await r.ttl("a"), await r.ttl("b")]
        finally:
            await r.aclose()
    want = [2, -1, -1]
    assert got == want, called(
        "keys a, b with EX 100; DEL a b; INCR a; SET b 2 KEEPTTL; TTL a b", got, want
    )


async def test_expired_keys_are_only_deleted_when_touched_or_swept() -> None:
    """Lazy expiry: an expired key nobody reads still counts in DBSIZE until a command touches it or the sweep finds it."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            await r.set("a", "v", px=125)
            await r.set("b", "v", px=125)
            srv.clock.advance(1)
            before = await r.dbsize()
            await r.get("a")
            after = await r.dbsize()
        finally:
            await r.aclose()
    assert before == 2, called("DBSIZE after two keys expired, untouched", before, 2)
    assert after == 1, called("DBSIZE after GET of one expired key", after, 1)


async def _fill(srv, expired: int, alive_ttl: int = 0, plain: int = 0) -> None:
    """Keys e0.. that expire at +1/8 s, keys t0.. with a 1000 s TTL, keys p0.. without a TTL; then 1 s passes."""
    r = async_client(srv.port)
    try:
        pipe = r.pipeline(transaction=False)
        for i in range(expired):
            pipe.set(f"e{i}", "v", px=125)
        for i in range(alive_ttl):
            pipe.set(f"t{i}", "v", ex=1000)
        for i in range(plain):
            pipe.set(f"p{i}", "v")
        await pipe.execute()
    finally:
        await r.aclose()
    srv.clock.advance(1)


async def _dbsize(srv) -> int:
    r = async_client(srv.port)
    try:
        return await r.dbsize()
    finally:
        await r.aclose()


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("samples", "expired"),
    [(20, 100), (20, 19), (20, 20), (20, 21), (7, 30)],
    ids=["20_of_100", "20_of_19", "20_of_20", "20_of_21", "7_of_30"],
)
async def test_a_sweep_step_deletes_at_most_its_sample(samples: int, expired: int) -> None:
    """One expire_cycle() visits at most expire_samples keys, so with every key expired it deletes min(samples, keys) of them."""
    async with running(expire_samples=samples) as srv:
        await _fill(srv, expired)
        with step("server.expire_cycle()"):
            removed = srv.server.expire_cycle()
        left = await _dbsize(srv)
    want = min(samples, expired)
    assert removed == want, called(
        f"expire_cycle() with {expired} expired keys, expire_samples={samples}", removed, want
    )
    assert left == expired - want, called("DBSIZE after it", left, expired - want)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("samples", "expired", "alive"),
    [(20, 30, 30), (10, 5, 95), (8, 16, 0)],
    ids=["half_expired", "few_expired", "all_expired_exact_rounds"],
)
async def test_a_full_round_of_sweeps_finds_every_expired_key(
    samples: int, expired: int, alive: int
) -> None:
    """Sweep steps continue where the last stopped: with N keys that have a TTL, ceil(N / samples) steps delete every expired one."""
    plain = 500
    async with running(expire_samples=samples) as srv:
        await _fill(srv, expired, alive, plain)
        steps = math.ceil((expired + alive) / samples)
        with step(f"server.expire_cycle() x {steps}"):
            removed = sum(srv.server.expire_cycle() for _ in range(steps))
        left = await _dbsize(srv)
    want = alive + plain
    assert removed == expired, called(
        f"{steps} x expire_cycle() over {expired} expired + {alive} live keys with a TTL (+ {plain} without), expire_samples={samples}",
        removed,
        expired,
    )
    assert left == want, called("DBSIZE after them", left, want)


async def test_keys_without_a_ttl_are_never_sampled() -> None:
    """The sweep looks only at keys that have a TTL: one expired key among 2,000 plain ones goes in a single step."""
    async with running(expire_samples=20) as srv:
        await _fill(srv, expired=1, plain=2000)
        with step("server.expire_cycle()"):
            removed = srv.server.expire_cycle()
    assert removed == 1, called(
        "expire_cycle() with 1 expired key and 2,000 keys without a TTL", removed, 1
    )


async def test_the_server_sweeps_periodically_by_itself() -> None:
    """A started server calls expire_cycle() every expire_interval seconds, without any command."""
    async with running(expire_interval=0.01) as srv:
        await _fill(srv, expired=3)
        calls = asyncio.Event()
        count = 0
        real = srv.server.expire_cycle

        def spy() -> int:
            nonlocal count
            count += 1
            if count >= 3:
                calls.set()
            return real()

        srv.server.expire_cycle = spy  # type: ignore[method-assign]
        await bounded(
            calls.wait(), 5.0, "three calls of server.expire_cycle() with expire_interval=0.01"
        )
        left = await _dbsize(srv)
    assert left == 0, called("DBSIZE after the server swept by itself", left, 0)

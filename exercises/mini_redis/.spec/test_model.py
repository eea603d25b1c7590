"""The keyspace against a model: random command sequences with time passing, reply for reply.

The model is written here from Redis's documented behaviour (t_string.c, expire.c, db.c), and
replies are encoded by the spec itself: the learner's encode() is not the oracle. Commands run
through MiniRedis.handle on a held transport, one pipelined batch between two clock moves.
"""

from __future__ import annotations

import asyncio

from _helpers import FakeClock, called, command, held_connection, short, step
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mini_redis import MiniRedis

KEYS = ["a", "b", "c"]
VALUES = [b"1", b"x", b"-5", b"9223372036854775807", b""]
END = b"$3\r\nEND\r\n"  # the reply to the ECHO END that closes each batch


def bulk(value: bytes | None) -> bytes:
    return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)


def integer(n: int) -> bytes:
    return b":%d\r\n" % n


NOT_INTEGER = b"-ERR value is not an integer or out of range\r\n"
OVERFLOW = b"-ERR increment or decrement would overflow\r\n"


class Model:
    """Redis's string keyspace with TTLs, lazily expired: a key past its deadline is deleted when touched."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.data: dict[str, tuple[bytes, float | None]] = {}

    def _touch(self, key: str) -> bool:
        entry = self.data.get(key)
        if entry is not None and entry[1] is not None and self.now > entry[1]:
            del self.data[key]
        return key in self.data

    def run(self, op: tuple) -> bytes:
        name, key, arg = op
        if name == "DBSIZE":  # touches no key: expired keys not yet deleted still count
            return integer(len(self.data))
        alive = self._touch(key)
        value, deadline = self.data.get(key, (None, None))
        if name == "GET":
            return bulk(value)
        if name == "SET":
            new, ttl_ms, cond, get = arg
            if (cond == "NX" and alive) or (cond == "XX" and not alive):
                return bulk(value) if get else bulk(None)
            self.data[key] = (new, None if ttl_ms is None else self.now + ttl_ms / 1000)
            return bulk(value) if get else b"+OK\r\n"
        if name == "DEL":
            self.data.pop(key, None)
            return integer(int(alive))
        if name == "EXISTS":
            return integer(int(alive))
        if name == "INCRBY":
            current = 0 if value is None else _strict(value)
            if current is None:
                return NOT_INTEGER
            result = current + arg
            if not -(2**63) <= result <= 2**63 - 1:
                return OVERFLOW
            self.data[key] = (b"%d" % result, deadline)
            return integer(result)
        if name == "EXPIRE":
            if not alive:
                return integer(0)
            if arg <= 0:
                del self.data[key]
            else:
                self.data[key] = (value, self.now + arg)
            return integer(1)
        if name == "TTL":
            if not alive:
                return integer(-2)
            if deadline is None:
                return integer(-1)
            return integer((round((deadline - self.now) * 1000) + 500) // 1000)
        if name == "PERSIST":
            if alive and deadline is not None:
                self.data[key] = (value, None)
                return integer(1)
            return integer(0)
        raise AssertionError(f"unknown op {op}")


def _strict(value: bytes) -> int | None:
    text = value.decode("latin-1")
    body = text[1:] if text.startswith("-") else text
    if not body.isascii() or not body.isdigit() or (body.startswith("0") and body != "0"):
        return None
    if text == "-0":
        return None
    n = int(text)
    return n if -(2**63) <= n <= 2**63 - 1 else None


def words(op: tuple) -> list[str | bytes]:
    """The command an op stands for, as its arguments."""
    name, key, arg = op
    if name == "SET":
        new, ttl_ms, cond, get = arg
        parts: list[str | bytes] = ["SET", key, new]
        if ttl_ms is not None:
            parts += ["PX", str(ttl_ms)] if ttl_ms % 1000 else ["EX", str(ttl_ms // 1000)]
        parts += [cond] if cond else []
        parts += ["GET"] if get else []
        return parts
    if name in ("INCRBY", "EXPIRE"):
        return [name, key, str(arg)]
    if name == "DBSIZE":
        return ["DBSIZE"]
    return [name, key]


def request(op: tuple) -> bytes:
    return command(*words(op))


def describe(op: tuple) -> str:
    return " ".join(w if isinstance(w, str) else repr(w) for w in words(op))


KEY = st.sampled_from(KEYS)
OP = st.one_of(
    st.tuples(
        st.sampled_from(["GET", "DEL", "EXISTS", "TTL", "PERSIST", "DBSIZE"]), KEY, st.none()
    ),
    st.tuples(
        st.just("SET"),
        KEY,
        st.tuples(
            st.sampled_from(VALUES),
            st.sampled_from([None, None, 125, 500, 1000, 2000]),
            st.sampled_from([None, None, "NX", "XX"]),
            st.booleans(),
        ),
    ),
    st.tuples(st.just("INCRBY"), KEY, st.sampled_from([1, 1, -3, 2**62])),
    st.tuples(st.just("EXPIRE"), KEY, st.sampled_from([1, 2, 0, -1])),
)
STEP = st.one_of(OP, st.sampled_from([0.125, 0.5, 1.0]))  # a float: the clock moves


async def _replay(steps: list) -> list[str]:
    clock = FakeClock()
    model = Model()
    with step("MiniRedis(clock=FakeClock(), expire_interval=None)"):
        server = MiniRedis(clock=clock, expire_interval=None)
    conn = await held_connection(server)
    problems: list[str] = []
    batch: list[tuple] = []

    async def flush() -> None:
        if not batch:
            return
        data = b"".join(request(op) for op in batch) + command("ECHO", "END")
        want = b"".join(model.run(op) for op in batch) + END
        conn.reader.feed_data(data)
        await conn.transport.until(
            lambda: bytes(conn.transport.held).endswith(END) or conn.transport.closed,
            "the replies to a batch of commands",
        )
        got = conn.transport.deliver()
        if got != want:
            problems.append(
                called(
                    " ; ".join(describe(op) for op in batch) + f" (at +{clock.now - 1000:g} s)",
                    short(got, 300),
                    short(want, 300),
                )
            )
        batch.clear()

    try:
        for item in steps:
            if isinstance(item, float):
                await flush()
                if problems:
                    break
                clock.advance(item)
                model.now = clock.now
            else:
                batch.append(item)
        await flush()
    finally:
        conn.reader.feed_eof()
        await asyncio.wait_for(conn.task, 3.0)
    return problems


@settings(max_examples=80)
@given(st.lists(STEP, max_size=30))
@example(
    [("SET", "a", (b"1", 1000, None, False)), 1.0, ("GET", "a", None), 0.125, ("GET", "a", None)]
)
@example(
    [
        ("SET", "a", (b"5", 2000, None, False)),
        ("INCRBY", "a", 1),
        1.0,
        ("TTL", "a", None),
        1.0,
        ("DBSIZE", "a", None),
        ("EXISTS", "a", None),
        0.125,
        ("DBSIZE", "a", None),
        ("GET", "a", None),
        ("DBSIZE", "a", None),
    ]
)
@example(
    [
        ("SET", "b", (b"x", 125, None, False)),
        0.5,
        ("SET", "b", (b"y", None, "NX", True)),
        ("TTL", "b", None),
    ]
)
@example(
    [
        ("SET", "c", (b"9223372036854775807", None, None, False)),
        ("INCRBY", "c", 1),
        ("INCRBY", "c", -3),
        ("GET", "c", None),
    ]
)
@example(
    [
        ("SET", "a", (b"1", None, None, False)),
        ("EXPIRE", "a", 0),
        ("DBSIZE", "a", None),
        ("EXPIRE", "a", 1),
        ("PERSIST", "a", None),
    ]
)
def test_keyspace_matches_the_model(steps: list) -> None:
    """Any sequence of SET/GET/DEL/EXISTS/INCRBY/EXPIRE/TTL/PERSIST/DBSIZE with time passing answers as Redis would."""
    problems = asyncio.run(_replay(steps))
    assert not problems, problems[0]

"""Strings and connection commands, checked with the real redis-py client (RESP2)."""

from __future__ import annotations

import pytest
import redis
from _helpers import (
    async_client,
    called,
    command,
    in_thread,
    raw_exchange,
    running,
    short,
    step,
    sync_client,
)


async def reply_error(call, what: str) -> str:
    """Await a client call expected to fail with an error reply; return the error's text."""
    try:
        got = await call
    except redis.ResponseError as error:
        return str(error)
    raise AssertionError(called(what, got, "an error reply"))


@pytest.mark.points(2)
async def test_ping_echo_set_get_with_the_sync_client() -> None:
    """The blocking redis-py client can PING, ECHO, SET and GET (binary values round-trip)."""
    value = b"\x00\xff\r\nbinary"

    def session() -> list[object]:
        r = sync_client(srv.port)
        try:
            return [r.ping(), r.echo(b"hi"), r.set("k", value), r.get("k"), r.get("missing")]
        finally:
            r.close()

    async with running() as srv:
        got = await in_thread(
            session, "redis.Redis(protocol=2): PING, ECHO hi, SET k, GET k, GET missing"
        )
    want = [True, b"hi", True, value, None]
    assert got == want, called("PING, ECHO hi, SET k <bytes>, GET k, GET missing", got, want)


async def test_ping_with_an_argument_echoes_it() -> None:
    """PING with an argument answers that argument as a bulk string; PING alone answers +PONG."""
    async with running() as srv:
        want = b"+PONG\r\n$2\r\nyo\r\n"
        got = await raw_exchange(
            srv.port, command("PING") + command("PING", "yo"), "PING; PING yo", len(want)
        )
    assert got == want, called("PING then PING yo (raw)", got, want)


async def test_commands_are_case_insensitive() -> None:
    """Command names are case-insensitive: set, SeT and SET are the same command."""
    async with running() as srv:
        data = command("set", "k", "v") + command("GeT", "k")
        got = await raw_exchange(srv.port, data, "set k v; GeT k", 12)
    want = b"+OK\r\n$1\r\nv\r\n"
    assert got == want, called("set k v; GeT k (raw)", got, want)


@pytest.mark.parametrize(
    ("before", "args", "reply", "after"),
    [
        (None, ["NX"], True, b"new"),
        (b"old", ["NX"], None, b"old"),
        (None, ["XX"], None, None),
        (b"old", ["XX"], True, b"new"),
        (None, ["GET"], None, b"new"),
        (b"old", ["GET"], b"old", b"new"),
        (b"old", ["NX", "GET"], b"old", b"old"),
        (None, ["NX", "GET"], None, b"new"),
        (None, ["XX", "GET"], None, None),
        (b"old", ["XX", "GET"], b"old", b"new"),
    ],
    ids=[
        "nx_absent_sets",
        "nx_present_refused",
        "xx_absent_refused",
        "xx_present_sets",
        "get_absent_nil",
        "get_present_old",
        "nx_get_present_old_unchanged",
        "nx_get_absent_sets",
        "xx_get_absent_nothing",
        "xx_get_present_old",
    ],
)
async def test_set_options(
    before: bytes | None, args: list[str], reply: object, after: bytes | None
) -> None:
    """SET NX sets only a missing key, XX only an existing one; a refused SET answers nil; GET answers the old value."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            if before is not None:
                await r.set("k", before)
            options = {arg.lower(): True for arg in args}
            with step(f"SET k new {' '.join(args)}"):
                got = await r.set("k", "new", **options)
                now = await r.get("k")
        finally:
            await r.aclose()
    ok = got in (True, b"OK", "OK") if reply is True else got == reply
    state = "absent" if before is None else f"= {before!r}"
    assert ok, called(
        f"SET k new {' '.join(args)} (k {state})", got, "OK" if reply is True else reply
    )
    assert now == after, called(f"GET k after SET k new {' '.join(args)} (k {state})", now, after)


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["NX", "XX"], "syntax error"),
        (["XX", "NX"], "syntax error"),
        (["EX", "10", "PX", "100"], "syntax error"),
        (["EX"], "syntax error"),
        (["BOGUS"], "syntax error"),
        (["KEEPTTL", "EX", "10"], "syntax error"),
        (["EX", "ten"], "value is not an integer or out of range"),
        (["EX", "1.5"], "value is not an integer or out of range"),
        (["EX", "0"], "invalid expire time in 'set' command"),
        (["PX", "-5"], "invalid expire time in 'set' command"),
    ],
    ids=[
        "nx_and_xx",
        "xx_and_nx",
        "ex_and_px",
        "ex_without_value",
        "unknown_option",
        "keepttl_and_ex",
        "ex_not_a_number",
        "ex_not_an_integer",
        "ex_zero",
        "px_negative",
    ],
)
async def test_set_refuses_bad_options(args: list[str], want: str) -> None:
    """SET with conflicting, unknown or invalid options answers Redis's error and leaves the key alone."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            await r.set("k", "old")
            error = await reply_error(
                r.execute_command("SET", "k", "new", *args), f"SET k new {' '.join(args)}"
            )
            now = await r.get("k")
        finally:
            await r.aclose()
    assert error == want, called(f"SET k new {' '.join(args)}", error, want)
    assert now == b"old", called(f"GET k after the refused SET k new {' '.join(args)}", now, b"old")


async def test_del_and_exists_count_keys() -> None:
    """DEL answers how many keys it removed; EXISTS how many of its arguments exist (a repeated key counts each time)."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            await r.set("a", "1")
            await r.set("b", "2")
            exists = await r.exists("a", "a", "b", "zz")
            deleted = await r.delete("a", "zz", "a")
            after = await r.exists("a", "b")
        finally:
            await r.aclose()
    assert exists == 3, called("EXISTS a a b zz (a, b set)", exists, 3)
    assert deleted == 1, called("DEL a zz a", deleted, 1)
    assert after == 1, called("EXISTS a b after DEL a", after, 1)


@pytest.mark.points(2)
async def test_incr_and_incrby() -> None:
    """INCR and INCRBY add to the integer a key holds; a missing key counts as 0; the value is stored as digits."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            got = [
                await r.incr("n"),
                await r.incrby("n", 41),
                await r.incrby("n", -50),
                await r.get("n"),
            ]
            await r.set("big", str(2**63 - 2))
            got.append(await r.incr("big"))
        finally:
            await r.aclose()
    want = [1, 42, -8, b"-8", 2**63 - 1]
    assert got == want, called(
        "INCR n; INCRBY n 41; INCRBY n -50; GET n; INCR big (2**63 - 2)", got, want
    )


@pytest.mark.parametrize(
    ("value", "args", "want"),
    [
        (b"abc", ["INCR", "k"], "value is not an integer or out of range"),
        (b"1.5", ["INCR", "k"], "value is not an integer or out of range"),
        (b" 1", ["INCR", "k"], "value is not an integer or out of range"),
        (b"01", ["INCR", "k"], "value is not an integer or out of range"),
        (b"", ["INCR", "k"], "value is not an integer or out of range"),
        (b"9223372036854775808", ["INCR", "k"], "value is not an integer or out of range"),
        (b"1", ["INCRBY", "k", "x"], "value is not an integer or out of range"),
        (b"9223372036854775807", ["INCR", "k"], "increment or decrement would overflow"),
        (b"-9223372036854775808", ["INCRBY", "k", "-1"], "increment or decrement would overflow"),
    ],
    ids=[
        "letters",
        "decimal",
        "leading_space",
        "leading_zero",
        "empty",
        "past_int64",
        "increment_not_integer",
        "overflow_up",
        "overflow_down",
    ],
)
async def test_incr_errors(value: bytes, args: list[str], want: str) -> None:
    """INCR on a value that is not a signed 64-bit integer, or past the 64-bit range, answers Redis's error and changes nothing."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            await r.set("k", value)
            error = await reply_error(r.execute_command(*args), f"{' '.join(args)} on {value!r}")
            now = await r.get("k")
        finally:
            await r.aclose()
    assert error == want, called(f"{' '.join(args)} with k = {value!r}", error, want)
    assert now == value, called(f"GET k after the failed {' '.join(args)}", now, value)


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["GET"], "wrong number of arguments for 'get' command"),
        (["GET", "a", "b"], "wrong number of arguments for 'get' command"),
        (["SET", "k"], "wrong number of arguments for 'set' command"),
        (["INCRBY", "k"], "wrong number of arguments for 'incrby' command"),
        (["DEL"], "wrong number of arguments for 'del' command"),
        (["PING", "a", "b"], "wrong number of arguments for 'ping' command"),
    ],
    ids=[
        "get_no_key",
        "get_two_keys",
        "set_no_value",
        "incrby_no_step",
        "del_nothing",
        "ping_two_args",
    ],
)
async def test_wrong_number_of_arguments(args: list[str], want: str) -> None:
    """A known command with the wrong number of arguments answers 'ERR wrong number of arguments for '<cmd>' command'."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            error = await reply_error(r.execute_command(*args), " ".join(args))
        finally:
            await r.aclose()
    assert error == want, called(" ".join(args), error, want)


async def test_unknown_command_and_the_connection_stays_usable() -> None:
    """An unknown command answers Redis's 'unknown command' error, and the next command on the connection works."""
    async with running() as srv:
        data = command("FLY", "to", "moon") + command("PING")
        want = b"-ERR unknown command 'FLY', with args beginning with: 'to' 'moon' \r\n+PONG\r\n"
        got = await raw_exchange(srv.port, data, "FLY to moon; PING", len(want))
    assert got == want, called("FLY to moon; PING (raw)", got, want)


@pytest.mark.parametrize(
    ("args", "want"),
    [
        ([b"NOPE"], b"-ERR unknown command 'NOPE', with args beginning with: \r\n"),
        (
            [b"NOPE", b"a\r\nb"],
            b"-ERR unknown command 'NOPE', with args beginning with: 'a  b' \r\n",
        ),
        (
            [b"NOPE", b"x" * 200, b"y"],
            b"-ERR unknown command 'NOPE', with args beginning with: '" + b"x" * 128 + b"' \r\n",
        ),
        (
            [b"NOPE", b"a" * 120, b"b" * 20, b"c"],
            b"-ERR unknown command 'NOPE', with args beginning with: '"
            + b"a" * 120
            + b"' '"
            + b"b" * 5
            + b"' \r\n",
        ),
        (
            [b"N" * 200],
            b"-ERR unknown command '" + b"N" * 128 + b"', with args beginning with: \r\n",
        ),
    ],
    ids=[
        "no_args",
        "crlf_in_arg_made_spaces",
        "long_arg_cut_at_128",
        "args_cut_at_128_in_total",
        "long_name_cut_at_128",
    ],
)
async def test_unknown_command_text_is_cut_like_redis(args: list[bytes], want: bytes) -> None:
    """The unknown-command error quotes the name and arguments as server.c does: cut at 128 bytes, CR and LF made spaces."""
    async with running() as srv:
        got = await raw_exchange(srv.port, command(*args), f"{short(args, 60)} (raw)", len(want))
    assert got == want, called(f"{short(args, 60)} (raw)", got, want)


async def test_hello_3_is_refused_and_client_setinfo_accepted() -> None:
    """HELLO 3 answers -NOPROTO (this server speaks RESP2 only); CLIENT SETINFO, which redis-py sends on connect, answers +OK."""
    async with running() as srv:
        data = command("HELLO", "3") + command("CLIENT", "SETINFO", "LIB-NAME", "redis-py")
        want = b"-NOPROTO unsupported protocol version\r\n+OK\r\n"
        got = await raw_exchange(
            srv.port, data, "HELLO 3; CLIENT SETINFO LIB-NAME redis-py", len(want)
        )
    assert got == want, called("HELLO 3; CLIENT SETINFO LIB-NAME redis-py (raw)", got, want)


async def test_a_resp3_client_fails_plainly() -> None:
    """redis-py asking for RESP3 (its default) gets a clear NOPROTO error on connect, not a hang."""
    async with running() as srv:
        r = redis.asyncio.Redis(host="127.0.0.1", port=srv.port, protocol=3, socket_timeout=5.0)
        try:
            error = await reply_error(r.ping(), "PING with redis.asyncio.Redis(protocol=3)")
        finally:
            await r.aclose()
    assert "NOPROTO" in error, called(
        "PING with redis.asyncio.Redis(protocol=3)", short(error), "an error naming NOPROTO"
    )


async def test_quit_answers_ok_and_closes() -> None:
    """QUIT answers +OK and the server closes the connection; commands after it are not run."""
    async with running() as srv:
        got = await raw_exchange(
            srv.port, command("QUIT") + command("SET", "k", "v"), "QUIT; SET k v"
        )
        r = async_client(srv.port)
        try:
            left = await r.get("k")
        finally:
            await r.aclose()
    assert got == b"+OK\r\n", called("QUIT; SET k v (raw, read until close)", got, b"+OK\r\n")
    assert left is None, called("GET k after QUIT; SET k v", left, None)


async def test_hello_2_answers_a_map_with_proto_2() -> None:
    """HELLO and HELLO 2 are not errors: they answer a flat map (an array of name, value pairs) with proto = 2."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            with step("HELLO; HELLO 2"):
                got = [await r.execute_command("HELLO"), await r.execute_command("HELLO", "2")]
        finally:
            await r.aclose()
    for args, reply in zip(["HELLO", "HELLO 2"], got, strict=True):
        pairs = (
            dict(zip(reply[::2], reply[1::2], strict=True))
            if isinstance(reply, list) and len(reply) % 2 == 0
            else {}
        )
        assert pairs.get(b"proto") == 2, called(
            args, short(reply), "an array of pairs holding b'proto', 2"
        )


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["CLIENT", "NOPE"], "unknown subcommand 'NOPE'. Try CLIENT HELP."),
        (["EXPIRE", "k", "soon"], "value is not an integer or out of range"),
        (["SET", "k", "v", "EX", "9223372036854775807"], "invalid expire time in 'set' command"),
        (["SET", "k", "v", "px", "0"], "invalid expire time in 'set' command"),
    ],
    ids=[
        "client_unknown_subcommand",
        "expire_not_a_number",
        "set_ex_overflows_ms",
        "set_lower_case_px_zero",
    ],
)
async def test_more_error_texts(args: list[str], want: str) -> None:
    """CLIENT with an unknown subcommand, EXPIRE with a non-integer and SET with an expire time out of range answer Redis's texts."""
    async with running() as srv:
        r = async_client(srv.port)
        try:
            await r.set("k", "old")
            error = await reply_error(r.execute_command(*args), " ".join(args))
        finally:
            await r.aclose()
    assert error == want, called(" ".join(args), error, want)

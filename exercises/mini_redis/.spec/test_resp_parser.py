"""The sans-IO RESP2 request parser: bytes in, commands out, no sockets."""

from __future__ import annotations

import pytest
from _helpers import called, command, short, step
from hypothesis import example, given
from hypothesis import strategies as st
from mini_redis import Encoded, Error, ProtocolError, RespParser, Simple, encode


def parse_all(data: bytes, chunks: list[int] | None = None, **limits: int) -> list[list[bytes]]:
    """Feed ``data`` (cut at ``chunks`` sizes, else whole) and collect every command."""
    with step(f"RespParser({', '.join(f'{k}={v}' for k, v in limits.items())})"):
        parser = RespParser(**limits)
    out: list[list[bytes]] = []
    pieces = [data]
    if chunks is not None:
        pieces, rest = [], data
        for size in chunks:
            pieces.append(rest[:size])
            rest = rest[size:]
        pieces.append(rest)
    for piece in pieces:
        with step(f"parser.feed({short(piece, 60)}) then parser.next_command()"):
            parser.feed(piece)
            while (cmd := parser.next_command()) is not None:
                out.append(cmd)
    return out


def parse_error(data: bytes, **limits: int) -> str:
    """Parse ``data`` expecting a ProtocolError; return its text."""
    try:
        got = parse_all(data, **limits)
    except AssertionError as error:  # step() wraps what the parser raised
        if isinstance(error.__cause__, ProtocolError):
            return str(error.__cause__)
        raise
    raise AssertionError(called(f"parsing {short(data, 80)}", got, "a ProtocolError"))


@pytest.mark.points(2)
def test_array_of_bulk_strings() -> None:
    """An array of bulk strings is one command: a list of its arguments as bytes."""
    data = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
    got = parse_all(data)
    assert got == [[b"SET", b"key", b"value"]], called(
        f"parsing {data!r}", got, [[b"SET", b"key", b"value"]]
    )


def test_bulk_strings_are_binary_safe() -> None:
    """A bulk string may hold any bytes, CR LF and NUL included: its length prefix says where it ends."""
    value = b"a\r\nb\x00\xff*3\r\n"
    data = command("SET", "k", value)
    got = parse_all(data)
    assert got == [[b"SET", b"k", value]], called(f"parsing {data!r}", got, [[b"SET", b"k", value]])


def test_empty_bulk_string() -> None:
    """A bulk string of length 0 is an empty argument, not a missing one."""
    got = parse_all(b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n")
    assert got == [[b"ECHO", b""]], called("parsing ECHO with $0", got, [[b"ECHO", b""]])


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"PING\r\n", [[b"PING"]]),
        (b"SET k v\r\n", [[b"SET", b"k", b"v"]]),
        (b"  SET   k\tv  \r\n", [[b"SET", b"k", b"v"]]),
        (b"EXISTS a\n", [[b"EXISTS", b"a"]]),
        (b"\r\n\r\nPING\r\n", [[b"PING"]]),
    ],
    ids=["one_word", "three_words", "extra_spaces_and_tab", "bare_lf", "blank_lines_skipped"],
)
def test_inline_commands(data: bytes, want: list[list[bytes]]) -> None:
    """A line not starting with '*' is an inline command: words split on spaces and tabs; blank lines are skipped."""
    got = parse_all(data)
    assert got == want, called(f"parsing {data!r}", got, want)


@pytest.mark.parametrize(
    "data",
    [b"*0\r\n", b"*-1\r\n", b"*0\r\n*0\r\n"],
    ids=["zero_elements", "null_array", "two_empty"],
)
def test_empty_arrays_are_no_command(data: bytes) -> None:
    """An array of zero elements (or a null array) holds no command and is skipped, as Redis does."""
    got = parse_all(data + b"PING\r\n")
    assert got == [[b"PING"]], called(f"parsing {data!r} then PING", got, [[b"PING"]])


@pytest.mark.points(2)
def test_pipelined_commands_come_out_in_order() -> None:
    """Several commands in one read (a pipeline) come out one by one, in order, inline and arrays mixed."""
    data = command("SET", "a", "1") + b"GET a\r\n" + command("INCR", "a") + command("GET", "a")
    want = [[b"SET", b"a", b"1"], [b"GET", b"a"], [b"INCR", b"a"], [b"GET", b"a"]]
    got = parse_all(data)
    assert got == want, called("parsing four pipelined commands", got, want)


def test_incomplete_command_waits_for_more() -> None:
    """A command cut short is not returned until its last byte arrives, and nothing of it is lost."""
    data = command("SET", "key", "value")
    with step("RespParser()"):
        parser = RespParser()
    for i in range(len(data) - 1):
        with step(f"parser.feed({data[i : i + 1]!r}); parser.next_command()"):
            parser.feed(data[i : i + 1])
            got = parser.next_command()
        assert got is None, called(f"next_command() after {i + 1} of {len(data)} bytes", got, None)
    parser.feed(data[-1:])
    got = parser.next_command()
    assert got == [b"SET", b"key", b"value"], called(
        "next_command() after the last byte", got, [b"SET", b"key", b"value"]
    )
    again = parser.next_command()
    assert again is None, called("next_command() once more", again, None)


STREAM = (
    command("SET", "k", b"v\r\nx")
    + b"PING\r\n"
    + command("ECHO", b"")
    + b"*0\r\n"
    + command("DEL", "a", "b", "c")
    + b"GET k\n"
)
STREAM_WANT = [
    [b"SET", b"k", b"v\r\nx"],
    [b"PING"],
    [b"ECHO", b""],
    [b"DEL", b"a", b"b", b"c"],
    [b"GET", b"k"],
]


@given(st.lists(st.integers(0, 12), max_size=len(STREAM)))
@example([1] * len(STREAM))  # one byte per read
@example([])  # all at once
@example([3])  # inside the first array header
@example([len(command("SET", "k", b"v\r\nx")) - 2])  # between a bulk and its CR LF
@example([len(command("SET", "k", b"v\r\nx")) + 5])  # between PING's CR and LF
def test_any_split_across_reads_gives_the_same_commands(chunks: list[int]) -> None:
    """However the bytes are split across reads, the same commands come out in the same order."""
    got = parse_all(STREAM, chunks)
    assert got == STREAM_WANT, called(
        f"parsing a pipeline fed in pieces of {chunks} bytes", got, STREAM_WANT
    )


LIMIT = 16


@pytest.mark.parametrize(
    ("size", "ok"),
    [(LIMIT - 1, True), (LIMIT, True), (LIMIT + 1, False)],
    ids=["below_max_bulk", "at_max_bulk", "above_max_bulk"],
)
def test_bulk_length_limit(size: int, ok: bool) -> None:
    """A bulk string of up to max_bulk bytes is accepted; one byte more is '-ERR Protocol error: invalid bulk length'."""
    data = command("ECHO", b"x" * size)
    if ok:
        got = parse_all(data, max_bulk=LIMIT)
        assert got == [[b"ECHO", b"x" * size]], called(
            f"parsing a {size}-byte bulk with max_bulk={LIMIT}", got, "the command"
        )
    else:
        # Refused from its header: the parser never waits for (or buffers) a body it won't take.
        error = parse_error(
            data[: data.index(b"\r\n$%d\r\n" % size) + len(b"\r\n$%d\r\n" % size)], max_bulk=LIMIT
        )
        want = "Protocol error: invalid bulk length"
        assert error == want, called(
            f"parsing the header of a {size}-byte bulk with max_bulk={LIMIT}", error, want
        )


@pytest.mark.parametrize(
    ("count", "ok"),
    [(LIMIT - 1, True), (LIMIT, True), (LIMIT + 1, False)],
    ids=["below_max_array", "at_max_array", "above_max_array"],
)
def test_array_length_limit(count: int, ok: bool) -> None:
    """A command of up to max_array elements is accepted; one more is '-ERR Protocol error: invalid multibulk length'."""
    data = command("DEL", *["k"] * (count - 1))
    if ok:
        got = parse_all(data, max_array=LIMIT)
        assert got and len(got[0]) == count, called(
            f"parsing a {count}-element array with max_array={LIMIT}",
            got,
            f"one command of {count}",
        )
    else:
        error = parse_error(b"*%d\r\n" % count, max_array=LIMIT)
        want = "Protocol error: invalid multibulk length"
        assert error == want, called(f"parsing '*{count}' with max_array={LIMIT}", error, want)


@pytest.mark.parametrize(
    ("size", "ok"),
    [(LIMIT - 1, True), (LIMIT, True), (LIMIT + 1, False)],
    ids=["below_max_inline", "at_max_inline", "above_max_inline"],
)
def test_inline_length_limit(size: int, ok: bool) -> None:
    """An inline line of up to max_inline bytes (line ending excluded) is accepted; longer is '-ERR Protocol error: too big inline request'."""
    line = b"ECHO " + b"x" * (size - 5)
    if ok:
        got = parse_all(line + b"\r\n", [size + 1], max_inline=LIMIT)  # the LF comes late
        assert got == [line.split()], called(
            f"parsing a {size}-byte inline line with max_inline={LIMIT}", got, [line.split()]
        )
    else:
        error = parse_error(line + b"\r\n", max_inline=LIMIT)
        want = "Protocol error: too big inline request"
        assert error == want, called(
            f"parsing a {size}-byte inline line with max_inline={LIMIT}", error, want
        )


def test_endless_inline_line_is_refused_before_its_end() -> None:
    """An inline line that grows past max_inline without a newline is refused at once, not buffered forever."""
    error = parse_error(b"x" * (LIMIT + 2), max_inline=LIMIT)
    want = "Protocol error: too big inline request"
    assert error == want, called(
        f"parsing {LIMIT + 2} bytes with no newline, max_inline={LIMIT}", error, want
    )


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"*x\r\n", "Protocol error: invalid multibulk length"),
        (b"*+1\r\n", "Protocol error: invalid multibulk length"),
        (b"*01\r\n", "Protocol error: invalid multibulk length"),
        (b"*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
        (b"*1\r\n+PING\r\n", "Protocol error: expected '$', got '+'"),
        (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$x\r\n", "Protocol error: invalid bulk length"),
        (b"*1\r\n$ 4\r\n", "Protocol error: invalid bulk length"),
    ],
    ids=[
        "count_not_a_number",
        "count_with_plus",
        "count_leading_zero",
        "integer_instead_of_bulk",
        "simple_string_instead_of_bulk",
        "negative_bulk_length",
        "bulk_length_not_a_number",
        "bulk_length_with_space",
    ],
)
def test_malformed_requests_are_protocol_errors(data: bytes, want: str) -> None:
    """A malformed request raises ProtocolError with Redis's text (networking.c, processMultibulkBuffer)."""
    error = parse_error(data)
    assert error == want, called(f"parsing {data!r}", error, want)


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"*" + b"1" * (LIMIT + 2), "Protocol error: too big mbulk count string"),
        (b"*1\r\n$" + b"1" * (LIMIT + 2), "Protocol error: too big bulk count string"),
        (b"*" + b"0" * (LIMIT + 1) + b"1\r\n", "Protocol error: too big mbulk count string"),
    ],
    ids=["endless_count_line", "endless_length_line", "long_count_line"],
)
def test_header_lines_are_limited_too(data: bytes, want: str) -> None:
    """A '*' or '$' header line longer than max_inline is refused ('too big mbulk/bulk count string'), not buffered."""
    error = parse_error(data, max_inline=LIMIT)
    assert error == want, called(f"parsing {data!r} with max_inline={LIMIT}", error, want)


def test_bulk_without_its_crlf_is_a_protocol_error() -> None:
    """A bulk string must be followed by \\r\\n: other bytes there are a protocol error, not the next command."""
    error = parse_error(b"*1\r\n$4\r\nPINGxx")
    assert error.startswith("Protocol error"), called(
        "parsing '$4 PING' followed by 'xx'", error, "Protocol error: ..."
    )


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (Simple("OK"), b"+OK\r\n"),
        (Error("ERR unknown command 'x'"), b"-ERR unknown command 'x'\r\n"),
        (1000, b":1000\r\n"),
        (-1, b":-1\r\n"),
        (0, b":0\r\n"),
        (b"hello", b"$5\r\nhello\r\n"),
        (b"", b"$0\r\n\r\n"),
        (b"a\r\nb", b"$4\r\na\r\nb\r\n"),
        ("h\u00e9", b"$3\r\nh\xc3\xa9\r\n"),
        (None, b"$-1\r\n"),
        ([], b"*0\r\n"),
        ([b"hello", b"world"], b"*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n"),
        ([1, 2, 3], b"*3\r\n:1\r\n:2\r\n:3\r\n"),
        ([b"a", [1, None], Simple("x")], b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n+x\r\n"),
        (Encoded(b":1\r\n:2\r\n"), b":1\r\n:2\r\n"),
    ],
    ids=[
        "simple_string",
        "error",
        "integer",
        "negative_integer",
        "zero",
        "bulk",
        "empty_bulk",
        "bulk_with_crlf",
        "str_as_utf8_bulk",
        "null_bulk",
        "empty_array",
        "array_of_bulks",
        "array_of_integers",
        "nested_array",
        "already_encoded",
    ],
)
def test_encode_replies(value: object, want: bytes) -> None:
    """encode() writes each reply type as RESP2 does (the protocol spec's own examples)."""
    with step(f"encode({short(value)})"):
        got = encode(value)
    assert got == want, called(f"encode({short(value)})", got, want)

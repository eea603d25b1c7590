"""Malformed and unsupported requests get the right status code, and the server keeps going.

Requests here are raw bytes on a socket; the responses are parsed with h11, an independent
HTTP/1.1 implementation. Most requests the server refuses carry no body bytes; the refused
uploads at the end send a body far larger than the socket buffers before they read, which only
a server that closes in stages (RFC 9112 §9.6) answers readably.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from _helpers import (
    LOCALHOST,
    bounded,
    called,
    exchange,
    parse_reply,
    running,
    short,
)

from grader.spectools import WholeUpload, linger_holds


async def _expect(data: bytes, status: int, what: str, **options: object) -> None:
    async with running(**options) as srv:
        reply = await exchange(srv.port, data, what)
        assert reply.status == status, called(what, reply.status, status)
        if status != 204:
            kind = reply.headers.get("content-type", "")
            assert kind.startswith("application/json"), called(
                f"{what} (Content-Type of the error)", kind, "application/json"
            )
        # The server is still serving.
        probe = b"GET /messages?after=99&timeout=0 HTTP/1.1\r\nHost: x\r\n\r\n"
        after = await exchange(srv.port, probe, "GET /messages?after=99&timeout=0")
        assert after.status in (200, 204), called(
            f"GET /messages?after=99&timeout=0 after {what}", after.status, "200 or 204"
        )


def _get(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: spec\r\n\r\n".encode()


@pytest.mark.parametrize(
    "request_line",
    [
        b"GARBAGE",
        b"GET /messages",
        b"GET  /messages HTTP/1.1",
        b"GET /messages HTTP/1.1 extra",
        b"GET /messages HTTP/9.9",
        b"GET messages HTTP/1.1",
        b"G(T /messages HTTP/1.1",
    ],
    ids=lambda line: line.decode(),
)
async def test_malformed_request_line_gets_400(request_line: bytes) -> None:
    """A request line that is not "METHOD SP /target SP HTTP/1.x" gets 400 Bad Request."""
    await _expect(request_line + b"\r\nHost: spec\r\n\r\n", 400, f"request line {request_line!r}")


@pytest.mark.parametrize(
    "fields",
    [
        b"Host: spec\r\nNo colon here",
        b"Host : spec",
        b"Host: spec\r\nX-Folded: one\r\n two",
        b"Host: spec\r\n: no name",
        b"Accept: */*",
    ],
    ids=["no-colon", "space-before-colon", "obs-fold", "empty-name", "no-host"],
)
async def test_malformed_header_fields_get_400(fields: bytes) -> None:
    """A malformed header field, or an HTTP/1.1 request without Host, gets 400."""
    data = b"GET /messages?timeout=0 HTTP/1.1\r\n" + fields + b"\r\n\r\n"
    await _expect(data, 400, f"GET /messages with header fields {fields!r}")


@pytest.mark.parametrize(
    "query",
    [
        "after=-1",
        "after=",
        "after=abc",
        "after=+1",
        "after=%D9%A3",  # ARABIC-INDIC DIGIT THREE: a digit to str.isdigit, not to HTTP
        "after=" + "9" * 5000,
        "limit=0",
        "limit=",
        "timeout=-1",
        "timeout=nan",
        "timeout=soon",
    ],
    ids=lambda q: q if len(q) < 30 else f"{q[:6]}<{len(q) - 6:,} digits>",
)
async def test_bad_query_values_get_400(query: str) -> None:
    """An after, limit or timeout that is not a valid value gets 400."""
    # timeout=0 added: a server that accepts the bad value answers at once instead of parking
    target = f"/messages?{query}" if "timeout=" in query else f"/messages?{query}&timeout=0"
    await _expect(_get(target), 400, f"GET {target[:60]}")


@pytest.mark.parametrize("target", ["/", "/messages/1", "/messagesx?after=0"])
async def test_unknown_path_gets_404(target: str) -> None:
    """Any path other than /messages gets 404 Not Found."""
    await _expect(_get(target), 404, f"GET {target}")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_wrong_method_gets_405_with_allow(method: str) -> None:
    """Another method on /messages gets 405 with an Allow header naming GET and POST."""
    async with running() as srv:
        data = f"{method} /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: 0\r\n\r\n".encode()
        reply = await exchange(srv.port, data, f"{method} /messages")
        assert reply.status == 405, called(f"{method} /messages", reply.status, 405)
        allow = {m.strip() for m in reply.headers.get("allow", "").split(",")}
        assert {"GET", "POST"} <= allow, called(
            f"{method} /messages (Allow header)", sorted(allow), ["GET", "POST"]
        )


async def test_post_without_content_length_gets_411() -> None:
    """A POST without Content-Length gets 411 Length Required."""
    await _expect(
        b"POST /messages HTTP/1.1\r\nHost: spec\r\n\r\n", 411, "POST without Content-Length"
    )


@pytest.mark.parametrize(
    "length",
    [b"abc", b"+5", b"", b"5, 6", b"5\r\nContent-Length: 6"],
    ids=["abc", "plus", "empty", "list-differs", "fields-differ"],
)
async def test_invalid_content_length_gets_400(length: bytes) -> None:
    """An invalid or self-contradicting Content-Length gets 400."""
    data = b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: " + length + b"\r\n\r\n"
    await _expect(data, 400, f"POST with Content-Length: {length!r}")


async def test_repeated_identical_content_length_is_accepted() -> None:
    """Content-Length: 5, 5 (the same value repeated) is accepted, as RFC 9112 §6.3 allows."""
    data = b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: 5, 5\r\n\r\nhello"
    await _expect(data, 201, "POST with Content-Length: 5, 5")


async def test_body_over_max_body_gets_413_before_it_is_read() -> None:
    """A Content-Length over max_body gets 413 at once, without waiting for the body."""
    data = b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: 11\r\n\r\n"
    await _expect(data, 413, "POST with Content-Length: 11 (max_body=10)", max_body=10)


@pytest.mark.parametrize("size", [0, 9, 10], ids=["empty", "limit-1", "limit"])
async def test_body_up_to_max_body_is_accepted(size: int) -> None:
    """A POST body of max_body bytes or fewer, an empty one included, is published (201)."""
    data = b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: %d\r\n\r\n" % size
    await _expect(
        data + b"b" * size, 201, f"POST with a {size}-byte body (max_body=10)", max_body=10
    )


async def test_transfer_encoding_gets_501() -> None:
    """A request with Transfer-Encoding (chunked bodies) gets 501 Not Implemented."""
    data = b"POST /messages HTTP/1.1\r\nHost: spec\r\nTransfer-Encoding: chunked\r\n\r\n"
    await _expect(data, 501, "POST with Transfer-Encoding: chunked")


MAX_HEAD = 16 * 1024  # the lesson's limit, written out: the spec list never reads learner code


def _head_of(size: int) -> bytes:
    """A GET /messages head of exactly ``size`` bytes, its final empty line included."""
    base = b"GET /messages?timeout=0 HTTP/1.1\r\nHost: spec\r\nX-Big: \r\n\r\n"
    return base.replace(b"X-Big: ", b"X-Big: " + b"a" * (size - len(base)))


@pytest.mark.parametrize(
    "size", [MAX_HEAD + 1, MAX_HEAD + 4, 17_000], ids=["limit+1", "limit+4", "17000"]
)
async def test_oversized_request_head_gets_431(size: int) -> None:
    """A request head over MAX_HEAD (16,384) bytes, its empty line included, gets 431 (RFC 6585 §5)."""
    data = _head_of(size)
    assert len(data) == size, f"spec bug: _head_of({size}) is {len(data)} bytes"
    await _expect(data, 431, f"GET with a {size:,}-byte head")


@pytest.mark.parametrize("size", [MAX_HEAD - 1, MAX_HEAD], ids=["limit-1", "limit"])
async def test_request_head_up_to_the_limit_is_served(size: int) -> None:
    """A request head of MAX_HEAD (16,384) bytes or fewer, its empty line included, is served."""
    data = _head_of(size)
    assert len(data) == size, f"spec bug: _head_of({size}) is {len(data)} bytes"
    await _expect(data, 204, f"GET /messages?timeout=0 with a {size:,}-byte head")


async def test_body_that_is_not_utf8_gets_400() -> None:
    """A POST body that is not valid UTF-8 gets 400 and publishes nothing."""
    async with running() as srv:
        data = b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: 2\r\n\r\n\xff\xfe"
        reply = await exchange(srv.port, data, "POST with body b'\\xff\\xfe'")
        assert reply.status == 400, called("POST with body b'\\xff\\xfe'", reply.status, 400)
        first = srv.server.publish("ok")
        assert first == 1, called('server.publish("ok") after the refused POST', first, 1)


@pytest.mark.parametrize(
    "data",
    [
        b"GET /messages?timeout=0 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /messages?timeout=0 HTTP/1.1\r\nHost: spec\r\nhost: spec\r\n\r\n",
        b"GET /messages?timeout=0 HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
    ],
    ids=["1.1-two-values", "1.1-same-twice", "1.0-same-twice"],
)
async def test_two_host_fields_get_400(data: bytes) -> None:
    """A request with more than one Host field gets 400 (RFC 9112 §3.2: a server MUST)."""
    await _expect(data, 400, f"a request with two Host fields: {data!r}")


@pytest.mark.parametrize("value", [b"2\xa0", b"\xa02", b"2\x85", b"\x852", b"2, \xa02"], ids=ascii)
async def test_content_length_with_unicode_whitespace_gets_400(value: bytes) -> None:
    """Only SP and HTAB are trimmed from Content-Length (RFC 9110 §5.6.3): "2\\xa0" is not 2."""
    data = b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: " + value + b"\r\n\r\nhi"
    await _expect(data, 400, f"POST with Content-Length: {value!r}")


@pytest.mark.parametrize(
    "value",
    ["%205", "5%20", "%2B5", "1_0", "%D9%A5", "1e1", "0x5", "inf", "5.", ".5", "-0", "5,0", ""],
    ids=lambda v: f"timeout={v or '<empty>'}",
)
async def test_timeout_is_ascii_digits_with_an_optional_fraction(value: str) -> None:
    """timeout= is ASCII digits with an optional fraction (25, 0.5); float() spellings such as " 5", "1_0", "1e1" or "٥" get 400."""
    await _expect(_get(f"/messages?timeout={value}"), 400, f"GET /messages?timeout={value}")


async def test_head_gets_405_without_a_body() -> None:
    """HEAD /messages gets 405 with Allow and no body: a response to HEAD ends with its header section (RFC 9110 §9.3.2)."""
    async with running() as srv:
        reader, writer = await asyncio.open_connection(LOCALHOST, srv.port)
        try:
            writer.write(b"HEAD /messages HTTP/1.1\r\nHost: spec\r\n\r\n")
            await writer.drain()
            raw = await bounded(_read_all(reader), 3.0, "the answer to HEAD /messages")
        finally:
            writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ") and b"\r\nallow:" in head.lower(), called(
        "HEAD /messages -> the status line and fields", short(head), "405 with an Allow field"
    )
    assert rest == b"", called("HEAD /messages -> bytes after the header section", short(rest), b"")


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# 32 MiB sent whole before reading: far more than the socket buffers between us.
REFUSED_UPLOADS = {
    "over-max_body": (WholeUpload("POST /messages HTTP/1.1", "spec"), 413),
    "chunked": (WholeUpload("POST /messages HTTP/1.1", "spec", chunked=True), 501),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("case", list(REFUSED_UPLOADS))
async def test_a_refused_upload_still_gets_its_answer(case: str) -> None:
    """A client still sending a body the server refused (413, 501) gets to read that answer: the
    server half-closes and reads on before it closes (RFC 9112 §9.6).

    What urllib, http.client and requests do with a body: send it all, then read. A server that
    closes with the body unread makes the kernel answer the rest with a reset, and the client
    fails with 'Connection reset by peer' or 'Broken pipe' instead of reading the answer."""
    upload, status = REFUSED_UPLOADS[case]
    what = f"POST /messages with {upload.framing} and a 32 MiB body, sent whole before reading"
    async with running() as srv:
        raw = await upload.answer(srv.port, what, status)
    reply = parse_reply(raw, what)
    assert reply.status == status, called(what, reply.status, status)


# A lingering close must end: the server reads on after its answer, but not forever. The specs
# run on a loop whose clock they move (spectools.SkippingLoop), so the 5 s and 30 s bounds are
# checked in no real time; what happened is seen from the server's side of the connection.
LINGERING = b"POST /messages HTTP/1.1\r\nHost: spec\r\nContent-Length: 33554432\r\n\r\n"
LINGERING_WHAT = "POST /messages with Content-Length: 33554432 (over max_body)"


def _held(*moves: tuple[float, float | None]) -> tuple[bool, ...]:
    return linger_holds(running, LINGERING, LINGERING_WHAT, *moves)


def test_a_lingering_close_ends_5_s_after_the_last_byte() -> None:
    """A refused client that sends nothing more is dropped once 5 s pass without a byte
    (nginx's lingering_timeout): the server half-closes and reads on, but not forever.

    The clock is the event loop's: the spec moves it 2 s (the server must still be reading),
    then 4 s more (6 s without a byte: the server must have closed)."""
    got = _held((2, None), (4, None))
    want = (True, False)
    assert got == want, called(
        f"{LINGERING_WHAT}, answered; then the client sends nothing and keeps its end open "
        "(does the server still hold the connection after 2 s, after 6 s of silence?)",
        got,
        want,
    )


def test_a_lingering_close_ends_30_s_after_it_began() -> None:
    """A refused client that keeps sending its body is dropped 30 s after the answer at most
    (nginx's lingering_time), though it never pauses 5 s: a trickle cannot hold a connection.

    The clock is the event loop's: the spec moves it 2 s at a time, sending a byte of body
    after each step; the server must still be reading after 20 s and have closed by 32 s."""
    got = _held((20, 2), (12, 2))
    want = (True, False)
    assert got == want, called(
        f"{LINGERING_WHAT}, answered; then the client sends a byte every 2 s "
        "(does the server still hold the connection after 20 s, after 32 s?)",
        got,
        want,
    )

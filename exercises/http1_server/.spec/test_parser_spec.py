"""Hidden specs for RequestParser: the request line, fields, framing, smuggling defences, limits.

Each spec feeds hand-written bytes; the h11 differential lives in test_differential_spec.py.
"""

from __future__ import annotations

import pytest
from _helpers import one, parse, rejected, request_bytes, what
from http1_server import HttpError, Request, RequestParser

from grader.spectools import called, short

CHUNKED = ("Transfer-Encoding", "chunked")


def fields_of(request: Request) -> list[tuple[str, str]]:
    return [(name, value) for name, value in request.headers]


# --- the request line and the fields ------------------------------------------------------------


@pytest.mark.points(3)
def test_simple_get_is_parsed():
    """A GET is parsed into method, target, version, fields (names as sent) and an empty body."""
    data = (
        b"GET /search?q=http%2F1.1 HTTP/1.1\r\nHost: example.test\r\n"
        b"User-Agent: kata/1.0\r\nAccept: */*\r\n\r\n"
    )
    request = one(data)
    got = (request.method, request.target, request.version, request.body)
    want = ("GET", "/search?q=http%2F1.1", "HTTP/1.1", b"")
    assert got == want, called(
        f"parse({what(data, 60)}) -> (method, target, version, body)", got, want
    )
    want_fields = [("Host", "example.test"), ("User-Agent", "kata/1.0"), ("Accept", "*/*")]
    assert fields_of(request) == want_fields, called(
        "request.headers", request.headers, want_fields
    )
    assert list(request.trailers) == [], called("request.trailers", request.trailers, [])


@pytest.mark.points(2)
def test_field_lookup_is_case_insensitive_and_combines():
    """header(name) ignores case, trims OWS, joins repeated fields with ", ", and is None when absent."""
    data = request_bytes(
        "GET", "/", [("X-Tag", "  one\t"), ("ACCEPT", "text/html"), ("x-tag", "two  three")]
    )
    request = one(data)
    for name, want in [
        ("x-tag", "one, two  three"),
        ("X-TAG", "one, two  three"),
        ("accept", "text/html"),
        ("Host", "spec"),
        ("Missing", None),
    ]:
        got = request.header(name)
        assert got == want, called(f"request.header({name!r}) after {what(data, 90)}", got, want)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "line",
    [
        b"GET  / HTTP/1.1",
        b"GET / HTTP/1.1 ",
        b"GET\t/ HTTP/1.1",
        b"GET /",
        b"GET HTTP/1.1",
        b"/ HTTP/1.1",
        b"GET / http/1.1",
        b"GET / HTTP/11",
        b"GET / HTTP/1.1.1",
        b"G(T / HTTP/1.1",
        b"GET /a b HTTP/1.1",
        b"GET /\x7f HTTP/1.1",
        b"GET / HTTP/1.1\rX",
    ],
    ids=lambda line: short(line, 40),
)
def test_bad_request_line_is_400(line):
    """A request line that is not exactly method SP request-target SP HTTP/x.y gets 400."""
    rejected(line + b"\r\nHost: spec\r\n\r\n", [400], "a malformed request line")


@pytest.mark.points(1)
def test_other_http_versions_get_505():
    """HTTP/1.0 and HTTP/1.1 are served; any other well-formed HTTP version gets 505."""
    one(b"GET / HTTP/1.0\r\n\r\n")
    for version in (b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"HTTP/3.0"):
        rejected(b"GET / " + version + b"\r\nHost: spec\r\n\r\n", [505], f"version {version!r}")


@pytest.mark.points(1)
def test_host_rules():
    """An HTTP/1.1 request needs exactly one Host field (RFC 9112 §3.2); HTTP/1.0 at most one."""
    rejected(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", [400], "HTTP/1.1 without Host")
    rejected(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", [400], "two Host fields")
    rejected(
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", [400], "HTTP/1.0 with two Host fields"
    )
    one(b"GET / HTTP/1.0\r\n\r\n")
    one(b"GET / HTTP/1.1\r\nhOsT: spec\r\n\r\n")


@pytest.mark.points(2)
def test_whitespace_before_colon_is_400():
    """Whitespace between a field name and its colon gets 400 (RFC 9112 §5.1)."""
    for line in (b"Host : spec", b"X-A\t: b", b"Content-Length : 5"):
        data = b"GET / HTTP/1.1\r\nHost: spec\r\n" + line + b"\r\n\r\n"
        rejected(data, [400], f"the field line {line!r}")


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "line",
    [
        b"X(A): b",
        b"X A: b",
        b": empty name",
        b"no colon at all",
        b"X-A: nul\x00here",
        b"X-A: bare\rcr",
        b"X-A: ctl\x01",
        b"X-A: del\x7f",
        b"X-\x80: b",
    ],
    ids=lambda line: short(line, 30),
)
def test_invalid_field_line_is_400(line):
    """A field name must be a token and a field value free of control characters (NUL, CR...)."""
    rejected(
        b"GET / HTTP/1.1\r\nHost: spec\r\n" + line + b"\r\n\r\n", [400], f"the field line {line!r}"
    )


@pytest.mark.points(1)
def test_field_values_keep_obs_text_and_inner_whitespace():
    """OWS around a value is trimmed; tabs, spaces and bytes 0x80-0xFF inside it are kept (latin-1)."""
    data = b"GET / HTTP/1.1\r\nHost: spec\r\nX-A:\t a \t b\xe9 \t\r\nX-B:\r\nX-C:   \r\n\r\n"
    request = one(data)
    want = [("Host", "spec"), ("X-A", "a \t b\xe9"), ("X-B", ""), ("X-C", "")]
    assert fields_of(request) == want, called(f"parse({what(data)}).headers", request.headers, want)


@pytest.mark.points(3)
def test_obs_fold_is_rejected():
    """A field line that starts with whitespace (obs-fold, RFC 9112 §5.2) gets 400, never unfolded."""
    for data in (
        b"GET / HTTP/1.1\r\nHost: spec\r\nX-A: one\r\n two\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: spec\r\nX-A: one\r\n\ttwo\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: spec\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: spec\r\nContent-Length: 0\r\n 5\r\n\r\nhello",
    ):
        rejected(data, [400], "obs-fold")


@pytest.mark.points(1)
def test_lone_lf_and_leading_empty_lines():
    """A lone LF ends a header line (RFC 9112 §2.2) and empty lines before a request are skipped."""
    request = one(b"GET /lf HTTP/1.1\nHost: spec\nX-A: b\r\n\n")
    got = (request.target, fields_of(request))
    want = ("/lf", [("Host", "spec"), ("X-A", "b")])
    assert got == want, called("parse(a request with lone LF line ends)", got, want)
    request = one(b"\r\n\n\r\nGET /after HTTP/1.1\r\nHost: spec\r\n\r\n")
    assert request.target == "/after", called(
        "parse(3 empty lines, then GET /after).target", request.target, "/after"
    )


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_content_length_body_and_pipelined_rest():
    """Content-Length frames the body exactly; the bytes after it are the next request."""
    first = request_bytes("POST", "/a", [("content-length", "11")], b"hello world")
    second = request_bytes("GET", "/b")
    got = parse(first + second)
    targets = [(r.method, r.target, r.body) for r in got.requests]
    want = [("POST", "/a", b"hello world"), ("GET", "/b", b"")]
    assert got.error is None and targets == want, called(
        f"parse({what(first + second, 120)})", got.describe(), want
    )


@pytest.mark.points(2)
def test_chunked_body_with_extensions_and_trailers():
    """A chunked body is decoded: hex sizes in any case, extensions ignored, trailers kept."""
    data = request_bytes("POST", "/up", [CHUNKED]) + (
        b"5\r\nhello\r\n"
        b"1A;name=value;flag\r\n" + b"z" * 26 + b"\r\n"
        b"00b ; x\r\n" + b" and more.." + b"\r\n"
        b"0;last\r\n"
        b"X-Checksum: abc\r\nExpires: never\r\n\r\n"
    )
    request = one(data)
    want = b"hello" + b"z" * 26 + b" and more.."
    assert request.body == want, called(f"parse({what(data)}).body", request.body, want)
    trailers = [(n, v) for n, v in request.trailers]
    want_trailers = [("X-Checksum", "abc"), ("Expires", "never")]
    assert trailers == want_trailers, called("request.trailers", trailers, want_trailers)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "size",
    [b"0x5", b"+5", b"-5", b" 5", b"5_0", b"g", b"", b"5 5", b"\xd9\xa5"],
    ids=lambda s: short(s, 20),
)
def test_bad_chunk_size_is_400(size):
    """A chunk-size is 1*HEXDIG: no 0x prefix, sign, underscore, leading space (int() accepts those)."""
    data = request_bytes("POST", "/", [CHUNKED]) + size + b"\r\nhello\r\n0\r\n\r\n"
    rejected(data, [400], f"chunk-size {size!r}")


@pytest.mark.points(1)
def test_chunk_data_must_end_with_crlf():
    """The data of a chunk is followed by CRLF; anything else gets 400."""
    for ending in (b"\n", b"XY", b"\r", b""):
        data = request_bytes("POST", "/", [CHUNKED]) + b"5\r\nhello" + ending + b"0\r\n\r\n"
        rejected(data, [400], f"chunk data followed by {ending!r}")


# --- request smuggling defences --------------------------------------------------------------------


@pytest.mark.points(3)
def test_transfer_encoding_with_content_length_is_400():
    """A request with both Transfer-Encoding and Content-Length gets 400 (CL.TE / TE.CL smuggling)."""
    smuggled = b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: spec\r\n\r\n"
    for fields in (
        [("Content-Length", str(len(smuggled))), CHUNKED],
        [CHUNKED, ("Content-Length", "4")],
        [("content-length", "0"), ("transfer-encoding", "CHUNKED")],
    ):
        rejected(request_bytes("POST", "/", fields) + smuggled, [400], f"fields {fields}")


@pytest.mark.points(3)
def test_conflicting_content_lengths_are_400():
    """Two different Content-Length values get 400; identical repeats ("5, 5") frame one body."""
    for fields in (
        [("Content-Length", "5"), ("Content-Length", "6")],
        [("Content-Length", "5, 6")],
        [("Content-Length", "5"), ("Content-Length", "05")],
        [("Content-Length", "6"), ("Content-Length", "5")],
    ):
        rejected(request_bytes("POST", "/", fields, b"hello!"), [400], f"fields {fields}")
    for fields in (
        [("Content-Length", "5"), ("content-length", "5")],
        [("Content-Length", "5 ,5")],
    ):
        data = request_bytes("POST", "/", fields, b"hello") + request_bytes("GET", "/next")
        got = parse(data)
        bodies = [(r.target, r.body) for r in got.requests]
        want = [("/", b"hello"), ("/next", b"")]
        assert got.error is None and bodies == want, called(
            f"parse({what(data)})", got.describe(), want
        )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "value",
    ["+5", "-5", "0x5", "5a", "5.0", "1_0", "", "5,", "1e3", "\u0665", "\u00b2"],
    ids=repr,
)
def test_invalid_content_length_is_400(value):
    """Content-Length is 1*DIGIT (ASCII): no sign, hex, underscore, exponent or Unicode digit."""
    body = b"hello"
    head = f"POST / HTTP/1.1\r\nHost: spec\r\nContent-Length: {value}\r\n\r\n"
    rejected(head.encode("utf-8") + body, [400], f"Content-Length: {value!r}")


@pytest.mark.points(2)
def test_transfer_codings_other_than_chunked():
    """Transfer-Encoding must be exactly chunked (any case): not final -> 400, other codings -> 501."""
    for value, status in [
        ("gzip", 400),
        ("chunked, gzip", 400),
        ("identity", 400),
        ("gzip, chunked", 501),
        ("deflate,chunked", 501),
    ]:
        rejected(
            request_bytes("POST", "/", [("Transfer-Encoding", value)]) + b"0\r\n\r\n",
            [status],
            f"Transfer-Encoding: {value}",
        )
    request = one(
        request_bytes("POST", "/", [("transfer-encoding", "ChUnKeD")]) + b"2\r\nok\r\n0\r\n\r\n"
    )
    assert request.body == b"ok", called(
        "parse(Transfer-Encoding: ChUnKeD, 'ok').body", request.body, b"ok"
    )


# --- limits ---------------------------------------------------------------------------------------


def sized_head(total: int) -> bytes:
    """A complete header section of exactly ``total`` bytes (request line to empty line)."""
    base = b"GET / HTTP/1.1\r\nHost: spec\r\nX-Pad: \r\n\r\n"
    return base.replace(b"X-Pad: ", b"X-Pad: " + b"p" * (total - len(base)))


@pytest.mark.points(2)
def test_header_section_limit_is_431():
    """A header (or trailer) section over max_header_bytes gets 431; exactly max_header_bytes is fine."""
    exact = sized_head(1024)
    assert len(exact) == 1024, "spec bug: sized_head(1024) is not 1024 bytes"
    request = one(exact, max_header_bytes=1024)
    assert request.header("x-pad") is not None, called("one(1024-byte head).header('x-pad')", None)
    rejected(
        sized_head(1025),
        [431],
        "a 1025-byte header section, max_header_bytes=1024",
        max_header_bytes=1024,
    )
    trailers = b"0\r\nX-Trailer: " + b"t" * 1100 + b"\r\n\r\n"
    rejected(
        request_bytes("POST", "/", [CHUNKED]) + trailers,
        [431],
        "a 1.1 KB trailer section, max_header_bytes=1024",
        max_header_bytes=1024,
    )


@pytest.mark.points(2)
def test_unterminated_header_section_is_refused_early():
    """A header section that never ends is refused as soon as it passes max_header_bytes (431)."""
    parser = RequestParser(max_header_bytes=1024)
    parser.feed(b"GET / HTTP/1.1\r\nHost: spec\r\nX-Slow: ")
    assert parser.next_request() is None, (
        "Fed an incomplete head; next_request() should return None"
    )
    parser.feed(b"a" * 1000)
    try:
        got = parser.next_request()
    except HttpError as error:
        got = error
    assert isinstance(got, HttpError) and got.status == 431, called(
        "next_request() after 1,030 bytes without an empty line (max_header_bytes=1024)",
        got,
        "HttpError(431, ...)",
    )
    try:
        again = parser.next_request()
    except HttpError as error:
        again = error
    assert isinstance(again, HttpError) and again.status == 431, called(
        "next_request() again after the 431", again, "the same HttpError(431) again"
    )


@pytest.mark.points(2)
def test_body_limit_is_413_before_the_body_arrives():
    """Content-Length over max_body_bytes gets 413 at once; exactly max_body_bytes is fine."""
    head = request_bytes("POST", "/", [("Content-Length", "101")])
    rejected(
        head,
        [413],
        "Content-Length: 101 with max_body_bytes=100 (body not sent yet)",
        max_body_bytes=100,
    )
    rejected(request_bytes("POST", "/", [("Content-Length", "9" * 30)]), [413], "a 30-digit length")
    data = request_bytes("POST", "/", [("Content-Length", "100")], b"b" * 100)
    request = one(data, max_body_bytes=100)
    assert request.body == b"b" * 100, called("parse(100-byte body, max 100).body", request.body)


@pytest.mark.points(2)
def test_chunked_body_limit_is_413():
    """A chunked body over max_body_bytes gets 413 as soon as a chunk-size says so."""
    head = request_bytes("POST", "/", [CHUNKED])
    rejected(
        head + b"40\r\n" + b"a" * 64 + b"\r\n" + b"25\r\n",
        [413],
        "chunks of 64 + 37 bytes, max_body_bytes=100",
        max_body_bytes=100,
    )
    rejected(head + b"ffffffffffff\r\n", [413], "a chunk of 2**48 bytes, body not sent")
    rejected(
        head + b"5;" + b"e" * 5000,
        [413],
        "a chunk-size line with an endless extension (CVE-2024-22019)",
        max_header_bytes=1024,
    )
    body = b"32\r\n" + b"a" * 50 + b"\r\n32\r\n" + b"b" * 50 + b"\r\n0\r\n\r\n"
    request = one(head + body, max_body_bytes=100)
    assert len(request.body) == 100, called(
        "parse(50 + 50 chunked bytes, max 100).body", request.body
    )


# --- keep-alive -----------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "version, connection, want",
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Close", False),
        ("HTTP/1.1", "keep-alive, close", False),
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
        ("HTTP/1.0", "Keep-Alive", True),
        ("HTTP/1.0", "keep-alive, close", False),
    ],
)
def test_keep_alive_rules(version, connection, want):
    """HTTP/1.1 persists unless Connection: close; HTTP/1.0 only with Connection: keep-alive."""
    fields = [("Connection", connection)] if connection else []
    request = one(request_bytes("GET", "/", fields, version=version))
    got = request.keep_alive
    assert got is want, called(
        f"request.keep_alive for {version} with Connection: {connection}", got, want
    )


@pytest.mark.points(1)
def test_errors_are_final():
    """After an HttpError every later next_request() raises again, even if valid bytes follow."""
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: spec\r\nBad Name: x\r\n\r\n")
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(parser.next_request())
        except HttpError as error:
            outcomes.append(f"HttpError({error.status})")
        parser.feed(request_bytes("GET", "/fine"))
    assert outcomes == ["HttpError(400)", "HttpError(400)"], called(
        "next_request() twice after a bad field line (valid bytes fed in between)",
        outcomes,
        ["HttpError(400)", "HttpError(400)"],
    )

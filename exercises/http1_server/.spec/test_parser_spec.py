"""Hidden specs for RequestParser: the request line, fields, framing, smuggling defences, limits.

Each spec feeds hand-written bytes; the h11 differential lives in test_differential_spec.py.
"""

from __future__ import annotations

import pytest
from _helpers import one, parse, rejected, request_bytes, what
from http1_server import HttpError, Request, RequestParser

from grader.spectools import called, short, step

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


LOOKUP = request_bytes(
    "GET", "/", [("X-Tag", "  one\t"), ("ACCEPT", "text/html"), ("x-tag", "two  three")]
)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "name, want",
    [("accept", "text/html"), ("Accept", "text/html"), ("HOST", "spec")],
    ids=["lower", "title", "upper"],
)
def test_field_lookup_ignores_case(name, want):
    """header(name) finds a field whatever the case of the name asked or sent."""
    with step(f"parse({what(LOOKUP, 90)}).header({name!r})"):
        got = one(LOOKUP).header(name)
    assert got == want, called(f"request.header({name!r}) after {what(LOOKUP, 90)}", got, want)


@pytest.mark.points(1)
def test_field_lookup_joins_repeated_fields():
    """header(name) joins repeated fields with ", " in the order received (RFC 9110 §5.3)."""
    with step(f"parse({what(LOOKUP, 90)}).header('x-tag')"):
        got = one(LOOKUP).header("x-tag")
    want = "one, two  three"
    assert got == want, called(f"request.header('x-tag') after {what(LOOKUP, 90)}", got, want)


@pytest.mark.points(1)
def test_field_lookup_of_an_absent_field_is_none():
    """header(name) is None for a field the request does not carry."""
    with step("request.header('Missing')"):
        got = one(LOOKUP).header("Missing")
    assert got is None, called(f"request.header('Missing') after {what(LOOKUP, 90)}", got, None)


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
@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0"])
def test_other_http_versions_get_505(version):
    """A well-formed HTTP version other than 1.0 and 1.1 gets 505."""
    data = f"GET / {version}\r\nHost: spec\r\n\r\n".encode()
    rejected(data, [505], f"version {version}")


@pytest.mark.points(1)
@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_http10_and_http11_are_served(version):
    """HTTP/1.0 and HTTP/1.1 requests are parsed, their version kept as sent."""
    request = one(f"GET / {version}\r\nHost: spec\r\n\r\n".encode())
    assert request.version == version, called("request.version", request.version, version)


@pytest.mark.points(1)
def test_http11_without_host_is_400():
    """An HTTP/1.1 request without a Host field gets 400 (RFC 9112 §3.2: a server MUST)."""
    rejected(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", [400], "HTTP/1.1 without Host")


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
    ],
    ids=["1.1-two-values", "1.1-same-twice", "1.0-same-twice"],
)
def test_two_host_fields_are_400(data):
    """Any request with more than one Host field line gets 400 (RFC 9112 §3.2: a server MUST)."""
    rejected(data, [400], "two Host fields")


@pytest.mark.points(1)
def test_http10_without_host_is_served():
    """An HTTP/1.0 request needs no Host field."""
    one(b"GET / HTTP/1.0\r\n\r\n")


@pytest.mark.points(1)
def test_host_field_name_in_any_case():
    """The Host field counts whatever the case of its name (hOsT)."""
    one(b"GET / HTTP/1.1\r\nhOsT: spec\r\n\r\n")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "line", [b"Host : spec", b"X-A\t: b", b"Content-Length : 5"], ids=lambda b: short(b, 30)
)
def test_whitespace_before_colon_is_400(line):
    """Whitespace between a field name and its colon gets 400 (RFC 9112 §5.1: a server MUST)."""
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


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "value, want",
    [
        (b"\xa0a\x85", "\xa0a\x85"),
        (b" \x85 ", "\x85"),
        (b"\t\xa0\t", "\xa0"),
        (b"\xa0", "\xa0"),
    ],
    ids=["nbsp-a-nel", "sp-nel-sp", "tab-nbsp-tab", "nbsp-alone"],
)
def test_field_values_are_trimmed_of_sp_and_htab_only(value, want):
    """Only SP and HTAB are trimmed from a value (RFC 9110 §5.6.3): 0x85 and 0xA0 are kept."""
    data = b"GET / HTTP/1.1\r\nHost: spec\r\nX-A:" + value + b"\r\n\r\n"
    got = one(data).header("x-a")
    assert got == want, called(f"parse({what(data)}).header('x-a')", got, want)


@pytest.mark.points(3)
@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: spec\r\nX-A: one\r\n two\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: spec\r\nX-A: one\r\n\ttwo\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: spec\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: spec\r\nContent-Length: 0\r\n 5\r\n\r\nhello",
    ],
    ids=["space-fold", "tab-fold", "first-line-indented", "folded-length"],
)
def test_obs_fold_is_rejected(data):
    """A field line that starts with whitespace (obs-fold, RFC 9112 §5.2) gets 400, never unfolded."""
    rejected(data, [400], "obs-fold")


@pytest.mark.points(1)
def test_lone_lf_ends_a_header_line():
    """A lone LF ends a line of the header section, as RFC 9112 §2.2 allows."""
    data = b"GET /lf HTTP/1.1\nHost: spec\nX-A: b\r\n\n"
    request = one(data)
    got = (request.target, fields_of(request))
    want = ("/lf", [("Host", "spec"), ("X-A", "b")])
    assert got == want, called(f"parse({what(data)}) -> (target, headers)", got, want)


@pytest.mark.points(1)
def test_empty_lines_before_a_request_are_skipped():
    """Empty lines before a request line are skipped (RFC 9112 §2.2)."""
    data = b"\r\n\n\r\nGET /after HTTP/1.1\r\nHost: spec\r\n\r\n"
    request = one(data)
    assert request.target == "/after", called(
        f"parse({what(data)}).target", request.target, "/after"
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
@pytest.mark.parametrize(
    "ending", [b"\n", b"XY", b"\r", b""], ids=["lone-LF", "XY", "lone-CR", "nothing"]
)
def test_chunk_data_must_end_with_crlf(ending):
    """The data of a chunk is followed by CRLF; anything else gets 400 (RFC 9112 §7.1)."""
    data = request_bytes("POST", "/", [CHUNKED]) + b"5\r\nhello" + ending + b"0\r\n\r\n"
    rejected(data, [400], f"chunk data followed by {ending!r}")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "trailer",
    [b"0\r\n\n", b"0\r\nX-A: b\n\r\n", b"0\r\nX-A: b\r\n\n", b"0\r\nX-A: b\nX-B: c\r\n\r\n"],
    ids=["empty-line-LF", "field-line-LF", "last-line-LF", "middle-line-LF"],
)
def test_lone_lf_in_the_trailer_section_is_400(trailer):
    """Inside chunked framing only CRLF ends a line: a lone LF in the trailer section gets 400 (RFC 9112 §7.1)."""
    data = request_bytes("POST", "/", [CHUNKED]) + b"2\r\nok\r\n" + trailer
    data += request_bytes("GET", "/next")
    rejected(data, [400], "a lone LF in the trailer section")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "line",
    [b"2;a\rb", b"2;a=\r", b"2;\r", b"2;a\x00", b"2;a=\x7f"],
    ids=["CR-inside", "CR-value", "CR-alone", "NUL", "DEL"],
)
def test_control_characters_in_a_chunk_extension_are_400(line):
    """A bare CR or another control character in a chunk extension gets 400 (RFC 9112 §2.2: a bare CR is invalid)."""
    data = request_bytes("POST", "/", [CHUNKED]) + line + b"\r\nok\r\n0\r\n\r\n"
    rejected(data, [400], f"the chunk-size line {line!r}")


# --- request smuggling defences --------------------------------------------------------------------


SMUGGLED = b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: spec\r\n\r\n"


@pytest.mark.points(3)
@pytest.mark.parametrize(
    "fields",
    [
        [("Content-Length", str(len(SMUGGLED))), CHUNKED],
        [CHUNKED, ("Content-Length", "4")],
        [("content-length", "0"), ("transfer-encoding", "CHUNKED")],
    ],
    ids=["CL-then-TE", "TE-then-CL", "lower-case"],
)
def test_transfer_encoding_with_content_length_is_400(fields):
    """A request with both Transfer-Encoding and Content-Length gets 400 (CL.TE / TE.CL smuggling)."""
    rejected(request_bytes("POST", "/", fields) + SMUGGLED, [400], f"fields {fields}")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "fields",
    [
        [CHUNKED],
        [CHUNKED, ("Content-Length", "5")],
        [("Transfer-Encoding", "gzip, chunked")],
    ],
    ids=["chunked", "chunked-and-length", "gzip-chunked"],
)
def test_transfer_encoding_in_http10_is_400(fields):
    """An HTTP/1.0 request with Transfer-Encoding gets 400: its framing is faulty (RFC 9112 §6.1: MUST)."""
    data = request_bytes("POST", "/", fields, version="HTTP/1.0") + b"5\r\nhello\r\n0\r\n\r\n"
    rejected(data + request_bytes("GET", "/next"), [400], "HTTP/1.0 with Transfer-Encoding")


@pytest.mark.points(3)
@pytest.mark.parametrize(
    "fields",
    [
        [("Content-Length", "5"), ("Content-Length", "6")],
        [("Content-Length", "5, 6")],
        [("Content-Length", "5"), ("Content-Length", "05")],
        [("Content-Length", "5, 05")],
        [("Content-Length", "6"), ("Content-Length", "5")],
    ],
    ids=["5-then-6", "list-5-6", "5-then-05", "list-5-05", "6-then-5"],
)
def test_differing_content_lengths_are_400(fields):
    """Content-Length values that differ as text get 400, even 5 and 05 (CL.CL smuggling)."""
    rejected(request_bytes("POST", "/", fields, b"hello!"), [400], f"fields {fields}")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "fields",
    [
        [("Content-Length", "5"), ("content-length", "5")],
        [("Content-Length", "5 ,5")],
        [("Content-Length", "5,\t5")],
    ],
    ids=["two-fields", "list-with-space", "list-with-tab"],
)
def test_identical_content_lengths_frame_one_body(fields):
    """Repeated identical Content-Length values ("5, 5") frame one body (RFC 9110 §8.6)."""
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
    ids=ascii,
)
def test_invalid_content_length_is_400(value):
    """Content-Length is 1*DIGIT (ASCII): no sign, hex, underscore, exponent or Unicode digit (RFC 9110 §8.6)."""
    body = b"hello"
    head = f"POST / HTTP/1.1\r\nHost: spec\r\nContent-Length: {value}\r\n\r\n"
    rejected(head.encode("utf-8") + body, [400], f"Content-Length: {value!r}")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "value",
    ["5\xa0", "\xa05", "5\x85", "\x855", "5, \xa05", "5 \xa0"],
    ids=ascii,
)
def test_content_length_with_unicode_whitespace_is_400(value):
    """Only SP and HTAB are trimmed from Content-Length (RFC 9110 §5.6.3): "5\\xa0" is not 5."""
    data = f"POST / HTTP/1.1\r\nHost: spec\r\nContent-Length: {value}\r\n\r\n".encode("latin-1")
    rejected(data + b"hello", [400], f"Content-Length: {value!a}")


@pytest.mark.points(2)
@pytest.mark.parametrize("value", ["gzip", "chunked, gzip", "identity"])
def test_transfer_encoding_not_ending_in_chunked_is_400(value):
    """A Transfer-Encoding whose last coding is not chunked gets 400 (RFC 9112 §6.3 rule 4)."""
    data = request_bytes("POST", "/", [("Transfer-Encoding", value)]) + b"0\r\n\r\n"
    rejected(data, [400], f"Transfer-Encoding: {value}")


@pytest.mark.points(1)
@pytest.mark.parametrize("value", ["gzip, chunked", "deflate,chunked"])
def test_other_transfer_codings_before_chunked_are_501(value):
    """A transfer coding other than chunked, with chunked last, gets 501 (RFC 9112 §6.1)."""
    data = request_bytes("POST", "/", [("Transfer-Encoding", value)]) + b"0\r\n\r\n"
    rejected(data, [501], f"Transfer-Encoding: {value}")


@pytest.mark.points(1)
def test_chunked_is_matched_in_any_case():
    """Transfer-Encoding: ChUnKeD is chunked: coding names are case-insensitive."""
    data = request_bytes("POST", "/", [("transfer-encoding", "ChUnKeD")]) + b"2\r\nok\r\n0\r\n\r\n"
    request = one(data)
    assert request.body == b"ok", called(f"parse({what(data)}).body", request.body, b"ok")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "value",
    ["chunked\x85", "\xa0chunked", "chunked\xa0", "\x85chunked", "chunked, \xa0chunked"],
    ids=ascii,
)
def test_transfer_encoding_with_unicode_whitespace_is_not_chunked(value):
    """Only SP and HTAB are trimmed from Transfer-Encoding (RFC 9110 §5.6.3): "chunked\\x85" is not chunked -> 400."""
    head = f"POST / HTTP/1.1\r\nHost: spec\r\nTransfer-Encoding: {value}\r\n\r\n"
    data = head.encode("latin-1") + b"2\r\nok\r\n0\r\n\r\n"
    rejected(data, [400], f"Transfer-Encoding: {value!a}")


# --- limits ---------------------------------------------------------------------------------------


def sized_head(total: int) -> bytes:
    """A complete header section of exactly ``total`` bytes (request line to empty line)."""
    base = b"GET / HTTP/1.1\r\nHost: spec\r\nX-Pad: \r\n\r\n"
    return base.replace(b"X-Pad: ", b"X-Pad: " + b"p" * (total - len(base)))


@pytest.mark.points(1)
@pytest.mark.parametrize("size", [1023, 1024], ids=["limit-1", "limit"])
def test_header_section_up_to_the_limit_is_parsed(size):
    """A header section of max_header_bytes bytes or fewer is parsed, even fed byte by byte."""
    data = sized_head(size)
    assert len(data) == size, f"spec bug: sized_head({size}) is {len(data)} bytes"
    pieces = [data[i : i + 1] for i in range(len(data))]
    got = parse(pieces, max_header_bytes=1024)
    assert got.error is None and len(got.requests) == 1, called(
        f"parse({size}-byte header section byte by byte, max_header_bytes=1024)",
        got.describe(),
        "one request",
    )


@pytest.mark.points(2)
def test_header_section_over_the_limit_is_431():
    """A header section one byte over max_header_bytes gets 431 (RFC 6585 §5)."""
    rejected(
        sized_head(1025),
        [431],
        "a 1025-byte header section, max_header_bytes=1024",
        max_header_bytes=1024,
    )


def sized_trailers(total: int) -> bytes:
    """A trailer section of exactly ``total`` bytes (its final empty line included)."""
    base = b"X-Trailer: \r\n\r\n"
    return b"X-Trailer: " + b"t" * (total - len(base)) + b"\r\n\r\n"


@pytest.mark.points(1)
@pytest.mark.parametrize("size", [1023, 1024], ids=["limit-1", "limit"])
def test_trailer_section_up_to_the_limit_is_parsed(size):
    """A trailer section of max_header_bytes bytes or fewer is parsed."""
    trailers = sized_trailers(size)
    data = request_bytes("POST", "/", [CHUNKED]) + b"0\r\n" + trailers
    got = parse(data, max_header_bytes=1024)
    assert got.error is None and len(got.requests) == 1, called(
        f"parse(a {len(trailers)}-byte trailer section, max_header_bytes=1024)",
        got.describe(),
        "one request",
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("size", [1025, 5000], ids=["limit+1", "5000"])
def test_trailer_section_over_the_limit_is_431(size):
    """A trailer section over max_header_bytes gets 431."""
    data = request_bytes("POST", "/", [CHUNKED]) + b"0\r\n" + sized_trailers(size)
    rejected(
        data, [431], f"a {size}-byte trailer section, max_header_bytes=1024", max_header_bytes=1024
    )


@pytest.mark.points(2)
def test_unterminated_header_section_is_refused_at_the_limit():
    """A header section that never ends gets 431 as soon as the buffer holds max_header_bytes without an end."""
    parser = RequestParser(max_header_bytes=1024)
    start = b"GET / HTTP/1.1\r\nHost: spec\r\nX-Slow: "
    parser.feed(start + b"a" * (1023 - len(start)))
    with step("next_request() after 1,023 bytes without an empty line (max_header_bytes=1024)"):
        got = parser.next_request()
    assert got is None, called(
        "next_request() after 1,023 bytes without an empty line (max_header_bytes=1024)",
        got,
        None,
    )
    parser.feed(b"a")
    try:
        got = parser.next_request()
    except HttpError as error:
        got = error
    assert isinstance(got, HttpError) and got.status == 431, called(
        "next_request() after 1,024 bytes without an empty line (max_header_bytes=1024)",
        got,
        "HttpError(431, ...)",
    )


@pytest.mark.points(1)
def test_an_error_is_raised_again():
    """After a 431, next_request() raises the same HttpError again."""
    parser = RequestParser(max_header_bytes=1024)
    parser.feed(b"GET / HTTP/1.1\r\nHost: spec\r\nX-Slow: " + b"a" * 1100)
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(parser.next_request())
        except HttpError as error:
            outcomes.append(f"HttpError({error.status})")
    assert outcomes == ["HttpError(431)", "HttpError(431)"], called(
        "next_request() twice after 1,134 bytes without an empty line (max_header_bytes=1024)",
        outcomes,
        ["HttpError(431)", "HttpError(431)"],
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("length", ["101", "9" * 30], ids=["limit+1", "<30 digits>"])
def test_content_length_over_the_limit_is_413_before_the_body(length):
    """A Content-Length over max_body_bytes gets 413 at once, before any body byte arrives."""
    head = request_bytes("POST", "/", [("Content-Length", length)])
    rejected(
        head,
        [413],
        f"Content-Length: {length} with max_body_bytes=100 (body not sent yet)",
        max_body_bytes=100,
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("size", [99, 100], ids=["limit-1", "limit"])
def test_body_up_to_the_limit_is_read(size):
    """A Content-Length body of max_body_bytes or fewer is read whole."""
    data = request_bytes("POST", "/", [("Content-Length", str(size))], b"b" * size)
    request = one(data, max_body_bytes=100)
    assert request.body == b"b" * size, called(
        f"parse({size}-byte body, max_body_bytes=100).body", request.body, f"<{size} bytes b'b'>"
    )


CHUNKED_HEAD = request_bytes("POST", "/", [CHUNKED])


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "data",
    [
        CHUNKED_HEAD + b"40\r\n" + b"a" * 64 + b"\r\n" + b"25\r\n",
        CHUNKED_HEAD + b"65\r\n",
        CHUNKED_HEAD + b"ffffffffffff\r\n",
    ],
    ids=["64+37-bytes", "one-101-byte-chunk", "2**48-bytes"],
)
def test_chunked_body_over_the_limit_is_413_at_the_chunk_size(data):
    """A chunked body over max_body_bytes gets 413 as soon as a chunk-size says so."""
    rejected(data, [413], "chunk sizes over max_body_bytes=100, data not sent", max_body_bytes=100)


@pytest.mark.points(1)
@pytest.mark.parametrize("size", [99, 100], ids=["limit-1", "limit"])
def test_chunked_body_up_to_the_limit_is_read(size):
    """A chunked body of max_body_bytes or fewer is read whole."""
    half = size // 2
    body = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        half,
        b"a" * half,
        size - half,
        b"b" * (size - half),
    )
    request = one(CHUNKED_HEAD + body, max_body_bytes=100)
    assert len(request.body) == size, called(
        f"parse({size} chunked bytes, max_body_bytes=100).body", request.body, f"<{size} bytes>"
    )


def chunk_line(length: int) -> bytes:
    """A chunk-size line of ``length`` bytes, CRLF excluded: "2;" and a long extension."""
    return b"2;" + b"e" * (length - 2)


@pytest.mark.points(1)
@pytest.mark.parametrize("length", [1023, 1024], ids=["limit-1", "limit"])
def test_chunk_size_line_up_to_the_limit_is_read(length):
    """A chunk-size line of max_header_bytes bytes (CRLF excluded) is read, even if its CR and LF arrive apart."""
    data = CHUNKED_HEAD + chunk_line(length) + b"\r\nok\r\n0\r\n\r\n"
    cut = len(CHUNKED_HEAD) + length + 1  # between the CR and the LF
    got = parse([data[:cut], data[cut:]], max_header_bytes=1024)
    assert got.error is None and [r.body for r in got.requests] == [b"ok"], called(
        f"parse(a {length}-byte chunk-size line, fed up to its CR, then the rest; "
        "max_header_bytes=1024)",
        got.describe(),
        "one request with body b'ok'",
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("length", [1025, 5000], ids=["limit+1", "endless"])
def test_chunk_size_line_over_the_limit_is_413(length):
    """A chunk-size line over max_header_bytes gets 413 (an endless extension, CVE-2024-22019)."""
    data = CHUNKED_HEAD + chunk_line(length) + b"\r"
    rejected(
        data,
        [413],
        f"a {length}-byte chunk-size line, max_header_bytes=1024",
        max_header_bytes=1024,
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
    ids=lambda v: str(v).replace("HTTP/", ""),
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
def test_errors_are_final_even_if_valid_bytes_follow():
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


# --- absolute-form and Expect ---------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "target, want",
    [
        ("http://example.test/hello?x=1", "/hello"),
        ("http://example.test:8080/a/b", "/a/b"),
        ("HTTP://Example.test/a", "/a"),
        ("http://example.test", "/"),
        ("http://example.test?x=1", "/"),
        ("/plain?x=http://a/b", "/plain"),
    ],
    ids=["path-query", "port", "upper-scheme", "no-path", "query-no-path", "origin-form"],
)
def test_absolute_form_target_has_a_path(target, want):
    """An absolute-form target (GET http://host/path) is accepted and its path is the part after the authority (RFC 9112 §3.2.2: a server MUST)."""
    data = request_bytes("GET", target)
    request = one(data)
    with step(f"parse({what(data, 80)}).path"):
        got = request.path
    assert got == want, called(f"parse({what(data, 80)}).path", got, want)


def continue_parser(head: bytes) -> RequestParser:
    parser = RequestParser()
    parser.feed(head)
    with step(f"next_request() after {what(head, 100)}"):
        got = parser.next_request()
    assert got is None, called(f"next_request() after only the head {what(head, 100)}", got, None)
    return parser


EXPECT_HEAD = request_bytes("POST", "/", [("Expect", "100-continue"), ("Content-Length", "5")])


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "head",
    [
        EXPECT_HEAD,
        request_bytes("POST", "/", [("Expect", "100-Continue"), CHUNKED]),
    ],
    ids=["content-length", "chunked-mixed-case"],
)
def test_expects_continue_after_a_head_that_asks_for_it(head):
    """expects_continue is True once an HTTP/1.1 head with Expect: 100-continue waits for its body (RFC 9110 §10.1.1)."""
    parser = continue_parser(head)
    with step("parser.expects_continue"):
        got = parser.expects_continue
    assert got is True, called(f"parser.expects_continue after {what(head, 100)}", got, True)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "head, body",
    [
        (EXPECT_HEAD, b"h"),
        (request_bytes("POST", "/", [("Expect", "100-continue"), CHUNKED]), b"5\r\nhel"),
        (request_bytes("POST", "/", [("Content-Length", "5")]), b""),
        (
            request_bytes(
                "POST",
                "/",
                [("Expect", "100-continue"), ("Content-Length", "5")],
                version="HTTP/1.0",
            ),
            b"",
        ),
    ],
    ids=["body-started", "chunked-body-started", "no-expect", "http10"],
)
def test_no_continue_expected_otherwise(head, body):
    """expects_continue is False once the body has started, without Expect, and for HTTP/1.0 (which MUST ignore it)."""
    parser = continue_parser(head)
    parser.feed(body)
    with step("parser.next_request()"):
        parser.next_request()
    with step("parser.expects_continue"):
        got = parser.expects_continue
    assert got is False, called(
        f"parser.expects_continue after {what(head + body, 120)}", got, False
    )

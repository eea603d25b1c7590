"""Differential specs: the learner's parser against h11, on generated request streams.

h11 (``h11.Connection(h11.SERVER)``) is the oracle for accept/reject and for the parsed
method, target, version, fields, body and trailers. Where this kata's rules differ from h11 on
purpose, the generators in _helpers.py never produce that input; each class is checked by a
hand-written spec in test_parser_spec.py instead:

* obs-fold (a field line starting with SP/HTAB after another field line): h11 unfolds it into
  the previous value, which RFC 9112 §5.2 allows; this kata rejects it with 400.
* Transfer-Encoding together with Content-Length: h11 lets Transfer-Encoding win (RFC 9112
  §6.3 rule 3 allows that, if the connection is then closed); this kata rejects with 400.
* versions other than HTTP/1.0 and HTTP/1.1: h11 accepts any HTTP/x.y; this kata answers 505.
* control characters other than NUL and CR in field values: h11 keeps them (h11 issue #57);
  this kata rejects them (RFC 9110 §5.5 field-vchar).
* empty lines before a request line: h11 rejects them; RFC 9112 §2.2 says a server SHOULD
  ignore them, and this kata does.
* Transfer-Encoding in an HTTP/1.0 request: h11 reads it; RFC 9112 §6.1 says to treat the
  framing as faulty, and this kata answers 400.
* a lone LF in the trailer section: h11 accepts it as a line end; inside chunked framing this
  kata takes CRLF only (RFC 9112 §7.1) and answers 400.
* a bare CR or another control character in a chunk extension: h11 ignores the extension;
  RFC 9112 §2.2 says a bare CR makes the element invalid, and this kata answers 400.
* whitespace before the ";" of a chunk extension (BWS in RFC 9112 §7.1.1): h11 rejects it;
  this kata accepts it.
* HTTP/1.0 with Connection: keep-alive: h11 never keeps a 1.0 connection open, so both sides
  are compared only up to the first request after which h11 closes.
* size limits: h11 has one limit for any incomplete event; this kata has its own (431/413).
* CONNECT and Upgrade: h11 pauses for a protocol switch; this kata treats them as requests.
"""

from __future__ import annotations

import pytest
from _helpers import h11_parse, ours_parse, parse, pipelines, what
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

# Shrinking a failing example can take long on a wrong parser; the first example is enough.
# The example counts keep each spec well inside its time limit even under coverage.
FAST = settings(max_examples=60, phases=[Phase.explicit, Phase.generate])
FASTER = settings(max_examples=40, phases=[Phase.explicit, Phase.generate])


def compare(data: bytes) -> None:
    want = h11_parse(data)
    got = ours_parse(data)
    if got == want:
        return
    got_requests, got_end = got
    want_requests, want_end = want
    for index, (mine, theirs) in enumerate(zip(got_requests, want_requests, strict=False)):
        if mine != theirs:
            diff = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs.get(k)}
            raise AssertionError(
                f"Fed {what(data, 300)}; request #{index + 1} differs from h11's reading "
                f"(field: (yours, h11's)): {diff}"
            )
    names = {
        "error": "an HttpError",
        "more": "waiting for more bytes",
        "closed": "a request that closes the connection",
    }
    raise AssertionError(
        f"Fed {what(data, 300)}; you parsed {len(got_requests)} request(s), then "
        f"{names.get(got_end, got_end)}; h11 parsed {len(want_requests)}, then "
        f"{names.get(want_end, want_end)}"
    )


# Explicit examples: the boundaries that random draws find only by luck.
VALID_EXAMPLES = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\n\n",  # lone LF line ends in the head
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"1;a=b\r\nx\r\n0\r\nX-T: 1\r\nX-U:\r\n\r\n"
    b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \xa0v\x85\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
]
INVALID_EXAMPLES = [
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x85\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \xa0chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\xa0\r\n\r\nx",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nxy",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-A : b\r\nHost: a\r\n\r\n",
]


def examples(cases):
    def decorate(spec):
        for case in reversed(cases):
            spec = example(case)(spec)
        return spec

    return decorate


@pytest.mark.points(4)
@FAST
@given(pipelines(corrupt=False))
@examples(VALID_EXAMPLES)
def test_valid_requests_agree_with_h11(data):
    """Valid pipelined requests parse exactly as h11 parses them (method, target, fields, body)."""
    compare(data)


@pytest.mark.points(4)
@FAST
@given(pipelines(corrupt=True))
@examples(INVALID_EXAMPLES)
def test_subtly_invalid_requests_agree_with_h11(data):
    """Subtly broken requests (bad names, bad lengths, bad chunks...) are refused exactly where h11 refuses."""
    compare(data)


@pytest.mark.points(3)
@FASTER
@given(st.data())
def test_any_chunking_gives_the_same_requests(data):
    """Feeding the same bytes in any pieces (even one byte at a time) gives the same requests."""
    stream = data.draw(pipelines(corrupt=data.draw(st.booleans())), label="stream")
    if data.draw(st.integers(0, 3), label="byte by byte (0)") == 0:
        pieces = [stream[i : i + 1] for i in range(len(stream))]
    else:
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6), label="cuts"))
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    def shape(parsed):
        requests = [
            (r.method, r.target, r.version, list(r.headers), r.body, list(r.trailers))
            for r in parsed.requests
        ]
        return requests, parsed.status

    whole = shape(parse(stream))
    pieced = shape(parse(pieces))
    assert pieced == whole, (
        f"Fed {what(stream, 200)} in {len(pieces)} pieces; got {pieced}; "
        f"fed at once it gave {whole}"
    )


SPLIT_STREAMS = {
    "chunked-with-trailers": VALID_EXAMPLES[3],
    "lone-LF-head": VALID_EXAMPLES[1] + VALID_EXAMPLES[0],
    "two-lengths": VALID_EXAMPLES[4],
    "bad-chunk-end": INVALID_EXAMPLES[5],
}


@pytest.mark.points(2)
@pytest.mark.parametrize("name", list(SPLIT_STREAMS))
def test_every_split_point_gives_the_same_requests(name):
    """The same bytes cut in two at any point (a CRLF split across reads included) give the same requests."""
    stream = SPLIT_STREAMS[name]

    def shape(parsed):
        requests = [
            (r.method, r.target, list(r.headers), r.body, list(r.trailers)) for r in parsed.requests
        ]
        return requests, parsed.status

    whole = shape(parse(stream))
    for cut in range(1, len(stream)):
        pieced = shape(parse([stream[:cut], stream[cut:]]))
        assert pieced == whole, (
            f"Fed {what(stream, 200)} cut after byte {cut} ({what(stream[:cut][-12:], 30)} | "
            f"{what(stream[cut:][:12], 30)}); got {pieced}; fed at once it gave {whole}"
        )

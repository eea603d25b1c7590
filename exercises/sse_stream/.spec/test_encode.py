"""encode(): one event as text/event-stream bytes, checked byte for byte and through the
WHATWG parsing algorithm (the oracle in _helpers.py) and httpx-sse's decoder."""

from __future__ import annotations

import re

import pytest
from _helpers import called, parse_all, step
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sse_stream import Event, encode


def encoded(event: Event) -> bytes:
    with step(f"encode({event!r})"):
        data = encode(event)
    assert isinstance(data, bytes), called(f"encode({event!r})", data, "bytes")
    return data


def lf(text: str) -> str:
    """What a client hands the application: every CRLF and lone CR became LF (§9.2.6)."""
    return re.sub(r"\r\n?", "\n", text)


EXACT = [
    ({"data": "hi"}, b"data: hi\n\n"),
    ({"data": "hi", "id": "1"}, b"id: 1\ndata: hi\n\n"),
    ({"data": "hi", "event": "chat"}, b"event: chat\ndata: hi\n\n"),
    ({"data": "hi", "retry": 2500}, b"retry: 2500\ndata: hi\n\n"),
    (
        {"data": "a\nb", "event": "chat", "id": "42", "retry": 0},
        b"id: 42\nevent: chat\nretry: 0\ndata: a\ndata: b\n\n",
    ),
    ({"data": ""}, b"data: \n\n"),
    ({"data": "caf\u00e9 \u2603"}, "data: caf\u00e9 \u2603\n\n".encode()),
    ({"data": "x", "id": ""}, b"id: \ndata: x\n\n"),
]


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("fields", "want"),
    EXACT,
    ids=["data", "id", "event", "retry", "all_fields", "empty_data", "utf8", "empty_id"],
)
def test_encode_exact_bytes(fields: dict, want: bytes) -> None:
    """An event is written as id, event, retry, then one data line per line, then an empty
    line, each field as "name: value" with a LF, in UTF-8."""
    with step(f"Event(**{fields!r})"):
        event = Event(**fields)
    got = encoded(event)
    assert got == want, called(f"encode({event!r})", got, want)


LINES = [
    ("a\nb", [b"data: a", b"data: b"]),
    ("a\r\nb", [b"data: a", b"data: b"]),
    ("a\rb", [b"data: a", b"data: b"]),
    ("a\n", [b"data: a", b"data: "]),
    ("\n", [b"data: ", b"data: "]),
    ("a\n\nb", [b"data: a", b"data: ", b"data: b"]),
    ("a\r\rb", [b"data: a", b"data: ", b"data: b"]),
    ("a\n\rb", [b"data: a", b"data: ", b"data: b"]),
    ("a\r\n\r\nb", [b"data: a", b"data: ", b"data: b"]),
]


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("data", "want"),
    LINES,
    ids=["lf", "crlf", "cr", "trailing_lf", "lf_only", "blank_line", "cr_cr", "lf_cr", "crlf_crlf"],
)
def test_data_lines_split_at_crlf_lf_and_cr(data: str, want: list[bytes]) -> None:
    """Data is cut into data lines at CRLF, at a lone LF and at a lone CR (WHATWG HTML
    §9.2.5), a CRLF being one break; a trailing break leaves an empty last line."""
    got = encoded(Event(data)).split(b"\n")
    assert got[-2:] == [b"", b""], called(f"encode(Event({data!r}))", b"\n".join(got), "... \\n\\n")
    assert got[:-2] == want, called(f"encode(Event({data!r})) (its lines)", got[:-2], want)


NOT_BREAKS = ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "char", NOT_BREAKS, ids=["VT", "FF", "FS", "GS", "RS", "NEL", "LINE_SEP", "PARA_SEP"]
)
def test_other_unicode_breaks_stay_inside_a_line(char: str) -> None:
    """Only CR and LF break a data line: \\v, \\f, \\x1c-\\x1e, \\x85, \\u2028 and \\u2029 stay
    inside it (str.splitlines() would cut there)."""
    data = f"a{char}b"
    got = encoded(Event(data))
    want = f"data: {data}\n\n".encode()
    assert got == want, called(f"encode(Event({data!r}))", got, want)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "data",
    [" x", "  two", " ", "a\n b", ":colon", "data: nested"],
    ids=[
        "space_x",
        "two_spaces",
        "one_space",
        "space_on_line_2",
        "leading_colon",
        "field_lookalike",
    ],
)
def test_leading_space_and_colons_survive(data: str) -> None:
    """A data line that starts with a space, or holds colons, reaches the client unchanged
    (the client strips exactly one space after "data:", §9.2.6)."""
    parsed = parse_all(encoded(Event(data)))
    got = [event.data for event in parsed.events]
    assert got == [data], called(f"encode(Event({data!r})), parsed as a browser does", got, [data])


BAD = [
    ({"id": "1\n2"}, "id with LF"),
    ({"id": "1\r2"}, "id with CR"),
    ({"id": "1\x002"}, "id with NUL"),
    ({"id": "\n"}, "id just LF"),
    ({"event": "a\nb"}, "event with LF"),
    ({"event": "a\rb"}, "event with CR"),
    ({"retry": -1}, "negative retry"),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(("fields", "what"), BAD, ids=[what.replace(" ", "_") for _, what in BAD])
def test_refuses_fields_that_would_break_the_stream(fields: dict, what: str) -> None:
    """An id with CR, LF or NUL, an event type with CR or LF, or a negative retry raises
    ValueError: a line break would end the field early, and a client ignores an id with NUL
    (WHATWG HTML §9.2.6)."""
    event = Event("x", **fields)
    try:
        got = encode(event)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - the message names it
        raise AssertionError(
            f"Called encode({event!r}) ({what}); raised {type(exc).__name__}; expected ValueError"
        ) from exc
    raise AssertionError(called(f"encode({event!r}) ({what})", got, "ValueError raised"))


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("fields", "what"),
    [({"id": "a:b c"}, "id"), ({"event": "x:y z\x00"}, "event"), ({"id": "\u00e9"}, "id")],
    ids=["id_colon_space", "event_colon_nul", "id_non_ascii"],
)
def test_other_characters_in_id_and_event_are_fine(fields: dict, what: str) -> None:
    """Colons, spaces, non-ASCII letters (and NUL in an event type) are allowed in the id
    and the event type and reach the client unchanged."""
    event = Event("x", **fields)
    parsed = parse_all(encoded(event))
    got = [(e.type, e.last_event_id) for e in parsed.events]
    want = [(event.event or "message", event.id or "")]
    assert got == want, called(f"encode({event!r}), parsed as a browser does", got, want)


TEXT = st.text(
    alphabet=st.sampled_from(["a", " ", ":", "\r", "\n", "\u00e9", "\x85", "\u2028", "\0", "d"]),
    max_size=12,
)


@pytest.mark.points(4)
@settings(max_examples=150)
@given(
    data=TEXT,
    event=st.none() | TEXT.map(lambda s: re.sub(r"[\r\n]", "", s)),
    ident=st.none() | TEXT.map(lambda s: re.sub(r"[\r\n\0]", "", s)),
    retry=st.none() | st.integers(0, 10**6),
)
@example(data="", event=None, ident=None, retry=None)
@example(data="\r\n", event=None, ident=None, retry=None)
@example(data="\r", event="", ident="", retry=0)
@example(data="\n\r", event=None, ident=None, retry=None)
@example(data=" \r ", event=" ", ident=" ", retry=None)
@example(data="a\r\r\nb", event=None, ident="7", retry=None)
def test_a_browser_reads_back_what_was_encoded(
    data: str, event: str | None, ident: str | None, retry: int | None
) -> None:
    """Any event, parsed by the WHATWG algorithm, dispatches exactly one event with the
    same data (CRLF and CR read as LF), type ("message" if none) and id, and the retry."""
    sent = Event(data, event=event, id=ident, retry=retry)
    parsed = parse_all(encoded(sent))
    want_type = event or "message"  # an empty event type dispatches as "message" too
    got = [(e.type, e.data, e.last_event_id) for e in parsed.events]
    want = [(want_type, lf(data), ident or "")]
    assert got == want, called(f"encode({sent!r}), parsed as a browser does", got, want)
    want_retries = [] if retry is None else [retry]
    assert parsed.retries == want_retries, called(
        f"encode({sent!r}): the retry a browser reads", parsed.retries, want_retries
    )


@pytest.mark.points(2)
@settings(max_examples=80)
@given(data=TEXT, event=st.sampled_from([None, "update", "a b"]))
@example(data="", event=None)
@example(data="\r", event="update")
@example(data=" lead", event=None)
def test_httpx_sse_reads_back_what_was_encoded(data: str, event: str | None) -> None:
    """httpx-sse, a real client library, decodes every encoded event to the same data and type."""
    sent = Event(data, event=event, id="5")
    lines, decoder, got = SSELineDecoder(), SSEDecoder(), []
    text = encoded(sent).decode()
    for line in lines.decode(text) + lines.flush():
        received = decoder.decode(line)
        if received is not None:
            got.append((received.event, received.data, received.id))
    want = [(event or "message", lf(data), "5")]
    assert got == want, called(f"encode({sent!r}), decoded by httpx-sse", got, want)

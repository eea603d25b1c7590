"""Differential specs against the hpack library: its encoder feeds your decoder, your encoder
feeds its decoder, over several blocks on one connection with table size changes between them.
The two tables must agree after every block."""

from __future__ import annotations

import pytest
from _helpers import OracleDecoder, OracleEncoder, OracleNeverIndexed, oracle
from hpack_codec import Decoder, Encoder, HPACKError, NeverIndexed, NotIndexed
from hypothesis import example, given, settings
from hypothesis import strategies as st

from grader.spectools import called, short, step

# Fields that repeat, so blocks exercise the tables: static pairs, static names with new values,
# custom pairs; and arbitrary bytes.
POOL = [
    (b":method", b"GET"),
    (b":path", b"/"),
    (b":path", b"/index.html?page=2"),
    (b":authority", b"www.example.com"),
    (b"cookie", b"session=5f2c8a; theme=dark"),
    (b"user-agent", b"kata/1.0 (hpack)"),
    (b"x-request-id", b"0f8e2c4b-1d3a-4e5f-9a7b-6c5d4e3f2a1b"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"", b""),
]
fields = st.one_of(
    st.sampled_from(POOL),
    st.tuples(st.binary(max_size=12), st.binary(max_size=60)),
)
kinds = st.sampled_from(["plain", "plain", "plain", "never", "not"])
header_lists = st.lists(st.tuples(fields, kinds), max_size=12)
table_sizes = st.sampled_from([0, 40, 100, 256, 1000, 4096, 8192])
steps = st.lists(
    st.tuples(header_lists, st.lists(table_sizes, max_size=2), st.booleans()),
    min_size=1,
    max_size=6,
)

BIG = b"v" * 4100  # one field larger than a 4096-octet table: empties it


def _field(pair: tuple[bytes, bytes], kind: str) -> tuple[bytes, bytes]:
    if kind == "never":
        return NeverIndexed(*pair)
    if kind == "not":
        return NotIndexed(*pair)
    return pair


def _oracle_field(pair: tuple[bytes, bytes], kind: str):  # type: ignore[no-untyped-def]
    return OracleNeverIndexed(*pair) if kind == "never" else pair


SHRINK_AND_GROW = [
    ([((b":path", b"/a"), "plain"), ((b"x-long", b"z" * 200), "plain")], [], False),
    ([((b"x-long", b"z" * 200), "plain"), ((b"x-b", b"c"), "never")], [40], True),
    ([((b"x-long", b"z" * 200), "plain"), ((b":path", b"/a"), "plain")], [0, 8192], False),
    ([((b"x-big", BIG), "plain"), ((b"x-big", BIG), "plain")], [], True),
]
REPEATS = [
    ([(POOL[4], "plain"), (POOL[6], "plain")], [], True),
    ([(POOL[4], "plain"), (POOL[6], "not"), (POOL[4], "never")], [256], True),
    ([(POOL[6], "plain"), (POOL[4], "plain")], [100, 4096], False),
]


@pytest.mark.points(5)
@settings(max_examples=40)
@given(steps=steps)
@example(steps=SHRINK_AND_GROW)
@example(steps=REPEATS)
@example(steps=[([], [0], False), ([(POOL[0], "plain")], [4096], True)])
def test_library_encoder_to_your_decoder(steps: list) -> None:
    """Header blocks made by the hpack library's encoder, over one connection with table size
    changes, decode to the encoded lists, never-indexed fields marked, and leave your table equal
    to the library's (§2.3, §4, §6)."""
    theirs = OracleEncoder()
    mirror = OracleDecoder(max_header_list_size=1 << 20)  # says which fields went never-indexed
    with step("Decoder()"):
        ours = Decoder()
    for number, (headers, sizes, huffman) in enumerate(steps, 1):
        if sizes:
            # One change per block: the library's encoder forgets a pending update when set
            # twice to the same size, so it is given only the final one.
            theirs.header_table_size = sizes[-1]
            mirror.max_allowed_table_size = sizes[-1]
            with step(f"decoder.set_max_table_size({sizes[-1]})"):
                ours.set_max_table_size(sizes[-1])
        sent = [_oracle_field(pair, kind) for pair, kind in headers]
        block = theirs.encode(sent, huffman=huffman)
        call = f"decoder.decode(block {number}: {short(block.hex(), 80)})"
        with step(call):
            got = ours.decode(block)
        want = [pair for pair, _ in headers]
        assert got == want, called(call, got, want)
        # The library sends a never-indexed field that is already in its table as an indexed
        # field, so the mirror decoder says which ones went on the wire never-indexed.
        marked = [isinstance(field, NeverIndexed) for field in got]
        want_marked = [
            isinstance(field, OracleNeverIndexed) for field in mirror.decode(block, raw=True)
        ]
        assert marked == want_marked, called(
            call + " -> which fields are NeverIndexed", marked, want_marked
        )
        with step(f"decoder.table.entries() after block {number}"):
            entries = ours.table.entries()
        want_entries = list(theirs.header_table.dynamic_entries)
        assert entries == want_entries, called(
            f"decoder.table.entries() after block {number}", entries, want_entries
        )


@pytest.mark.points(5)
@settings(max_examples=40)
@given(steps=steps, huffman=st.sampled_from([None, True, False]))
@example(steps=SHRINK_AND_GROW, huffman=None)
@example(steps=REPEATS, huffman=True)
@example(steps=[([], [0], False), ([(POOL[0], "plain")], [4096], True)], huffman=False)
def test_your_encoder_to_library_decoder(steps: list, huffman: bool | None) -> None:
    """Header blocks from your encoder, over one connection with table size changes, decode in
    the hpack library to the same lists, never-indexed fields still never-indexed, and the
    library's table equals yours (§2.3, §4, §6)."""
    with step(f"Encoder(huffman={huffman})"):
        ours = Encoder(huffman=huffman)
    theirs = OracleDecoder(max_header_list_size=1 << 20)
    for number, (headers, sizes, _) in enumerate(steps, 1):
        for size in sizes:
            with step(f"encoder.set_max_table_size({size})"):
                ours.set_max_table_size(size)
        if sizes:
            theirs.max_allowed_table_size = max(sizes)
        sent = [_field(pair, kind) for pair, kind in headers]
        call = f"encoder.encode(list {number}: {short(sent, 80)})"
        with step(call):
            block = ours.encode(sent)
        try:
            got = theirs.decode(block, raw=True)
        except Exception as exc:
            raise AssertionError(
                f"Called {call}; returned {short(block.hex(), 80)}; the hpack library could not "
                f"decode it: {type(exc).__name__}: {exc}"
            ) from None
        want = [pair for pair, _ in headers]
        assert [tuple(field) for field in got] == want, called(
            f"library decode of {call}", got, want
        )
        marked = [isinstance(field, OracleNeverIndexed) for field in got]
        want_marked = [kind == "never" for _, kind in headers]
        assert marked == want_marked, called(
            f"library decode of {call} -> which fields are never-indexed", marked, want_marked
        )
        with step(f"encoder.table.entries() after list {number}"):
            entries = ours.table.entries()
        want_entries = list(theirs.header_table.dynamic_entries)
        assert entries == want_entries, called(
            f"encoder.table.entries() after list {number}", entries, want_entries
        )


# Pieces of representations, valid and not, so generated blocks hit every branch of a decoder.
PIECES = st.sampled_from(
    [
        b"\x80",  # index 0
        b"\x82",  # :method GET
        b"\xbe",  # index 62
        b"\xbf",  # index 63
        b"\x40",  # literal with indexing, new name
        b"\x7e",  # literal with indexing, name 62
        b"\x00",  # literal without indexing, new name
        b"\x10",  # literal never indexed, new name
        b"\x0f\x2f",  # without indexing, name 62
        b"\x20",  # size update 0
        b"\x3f\xe1\x1f",  # size update 4096
        b"\x03abc",  # a raw string
        b"\x81\x1f",  # Huffman "a"
        b"\x83\xff\xff\xff",  # Huffman with EOS
        b"\xff\xff\xff\xff\xff\x01",  # an over-long integer
    ]
)
blocks = st.one_of(
    st.binary(max_size=24),
    st.lists(st.one_of(PIECES, st.binary(max_size=3)), max_size=8).map(b"".join),
)
# One entry in the table first, so dynamic indexes can resolve.
PRELUDE = bytes.fromhex("400a637573746f6d2d6b65790d637573746f6d2d686561646572")


def _library_outcome(prelude: bytes, block: bytes) -> object:
    decoder = OracleDecoder()
    try:
        decoder.decode(prelude, raw=True)
        got = [tuple(field) for field in decoder.decode(block, raw=True)]
    except oracle.HPACKDecodingError:
        return "HPACKError"
    return got, [tuple(entry) for entry in decoder.header_table.dynamic_entries]


@pytest.mark.points(4)
@given(block=blocks, prelude=st.booleans())
@example(block=bytes.fromhex("be"), prelude=True)
@example(block=bytes.fromhex("bf"), prelude=True)
@example(block=bytes.fromhex("7e0131"), prelude=True)
@example(block=bytes.fromhex("1f2f0131"), prelude=True)
@example(block=bytes.fromhex("20be"), prelude=True)
@example(block=bytes.fromhex("82203fe11f"), prelude=False)
@example(block=bytes.fromhex("1f80808080800001"), prelude=False)
def test_any_block_decodes_as_the_library_decodes_it(block: bytes, prelude: bool) -> None:
    """On any block, valid or not, decode returns the list the hpack library decodes and leaves
    the same table, or raises HPACKError exactly where the library rejects the block; never
    another exception."""
    start = PRELUDE if prelude else b""
    want = _library_outcome(start, block)
    call = f"decoder.decode({block.hex()})" + (
        " after a block adding (custom-key, custom-header)" if prelude else ""
    )
    with step("Decoder() and the block before"):
        decoder = Decoder()
        decoder.decode(start)
    try:
        got: object = ([tuple(field) for field in decoder.decode(block)], decoder.table.entries())
    except HPACKError:
        got = "HPACKError"
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"Called {call}; raised {type(exc).__name__}: {exc}; expected a header list or HPACKError"
        ) from None
    assert got == want, called(call + " -> (list, table entries)", got, want)

"""The decoder facing a hostile peer: every malformed block raises HPACKError, table size updates
are bounded and placed, and the header list is bounded before it is built."""

from __future__ import annotations

import pytest
from _helpers import h
from hpack_codec import Decoder, HPACKError, NeverIndexed, OversizedHeaderListError

from grader.spectools import called, short, step

# A literal with incremental indexing of a new name (§6.2.1): 0x40, name, value, no Huffman.


def literal(pattern: int, name: bytes, value: bytes) -> bytes:
    assert len(name) < 127 and len(value) < 127
    return bytes([pattern, len(name)]) + name + bytes([len(value)]) + value


def outcome(decoder: Decoder, block: bytes, what: str) -> object:
    """The decoded list, or the name of the HPACKError class raised; anything else fails."""
    try:
        return decoder.decode(block)
    except HPACKError as exc:
        return type(exc).__name__ if isinstance(exc, OversizedHeaderListError) else "HPACKError"
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"Called decoder.decode({what}); raised {type(exc).__name__}: {exc}; "
            "expected a header list or HPACKError"
        ) from None


MALFORMED = [
    pytest.param(h("80"), id="index-0"),
    pytest.param(h("be"), id="index-62-empty-table"),
    pytest.param(h("bf"), id="index-63-empty-table"),
    pytest.param(h("ff80808080 08"), id="huge-index"),
    pytest.param(h("7e 03 666f6f"), id="literal-name-index-62-empty-table"),
    pytest.param(h("0f 30 03 666f6f"), id="without-indexing-name-index-63"),
    pytest.param(h("1f 2f 03 666f6f"), id="never-indexed-name-index-62"),
    pytest.param(h("40 03 6162"), id="name-runs-past-the-end"),
    pytest.param(h("40 01 61 05 6162"), id="value-runs-past-the-end"),
    pytest.param(h("40 01 61"), id="value-missing"),
    pytest.param(h("40"), id="name-missing"),
    pytest.param(h("04"), id="indexed-name-then-end"),
    pytest.param(h("40 7f ff ff ff ff 0f 61"), id="name-length-2^32"),
    pytest.param(h("40 01 61 81 ff"), id="bad-huffman-value"),
    pytest.param(h("40 81 00 00"), id="bad-huffman-name"),
    pytest.param(h("ff ff ff ff ff ff 01"), id="integer-with-6-continuation-octets"),
    pytest.param(h("82 3f e1 1f"), id="size-update-after-a-field"),
    pytest.param(h("3f e2 1f"), id="size-update-above-the-limit-4097"),
    pytest.param(h("3f e1"), id="size-update-truncated"),
    pytest.param(h("3f e9 26 3f 45 82"), id="size-update-to-5000-then-100"),
]


@pytest.mark.points(2)
@pytest.mark.parametrize("block", MALFORMED)
def test_malformed_block_raises_hpack_error(block: bytes) -> None:
    """A malformed block raises HPACKError: index 0 or past the tables (§2.3.3, §6.1), a string
    running past the block, bad Huffman (§5.2), an over-long integer (§5.1), a size update after
    a field (§4.2) or above the limit (§6.3)."""
    got = outcome(Decoder(), block, block.hex())
    assert got == "HPACKError", called(f"Decoder().decode({block.hex()})", got, "HPACKError")


@pytest.mark.points(2)
def test_index_bounds_follow_the_table() -> None:
    """Index 61 is the last static entry and 62 the newest dynamic entry; one past the last
    dynamic entry is an error, also after an eviction (§2.3.3)."""
    decoder = Decoder(max_table_size=80)
    block = literal(0x40, b"a", b"1") + literal(0x40, b"b", b"2") + h("bd be bf")
    call = f"Decoder(max_table_size=80).decode({block.hex()})"
    with step(call):
        got = decoder.decode(block)
    want = [(b"a", b"1"), (b"b", b"2"), (b"www-authenticate", b""), (b"b", b"2"), (b"a", b"1")]
    assert got == want, called(call, got, want)
    got = outcome(decoder, h("c0"), "c0")  # index 64: only two entries
    assert got == "HPACKError", called(
        "decoder.decode(c0) with 2 dynamic entries", got, "HPACKError"
    )
    decoder = Decoder(max_table_size=80)
    block = literal(0x40, b"a", b"1") + literal(0x40, b"b", b"2") + literal(0x40, b"c", b"3")
    with step("decoder.decode(three literals with indexing of 34 octets each, table 80)"):
        decoder.decode(block)
    got = outcome(decoder, h("bf"), "bf")  # (a, 1) was evicted: 62 is (c, 3), 63 is (b, 2)
    assert got == [(b"b", b"2")], called(
        "decoder.decode(bf) after the eviction", got, [(b"b", b"2")]
    )
    got = outcome(decoder, h("c0"), "c0")
    assert got == "HPACKError", called("decoder.decode(c0) after the eviction", got, "HPACKError")


@pytest.mark.points(2)
def test_name_from_the_entry_its_insertion_evicts() -> None:
    """A literal with incremental indexing may take its name from the entry that its own
    insertion evicts; the new entry keeps that name (§4.4)."""
    decoder = Decoder(max_table_size=60)
    block = literal(0x40, b"x-name", b"1") + h("7e 01 32")  # 39 octets, then name index 62, value 2
    call = f"Decoder(max_table_size=60).decode({block.hex()})"
    with step(call):
        got = decoder.decode(block)
        entries = decoder.table.entries()
    want = [(b"x-name", b"1"), (b"x-name", b"2")]
    assert got == want, called(call, got, want)
    assert entries == [(b"x-name", b"2")], called(
        f"decoder.table.entries() after {call}", entries, [(b"x-name", b"2")]
    )


@pytest.mark.points(2)
def test_representations_touch_the_table_as_specified() -> None:
    """Only a literal with incremental indexing adds an entry; literals without indexing and
    never indexed leave the table alone, with a new or an indexed name (§6.2)."""
    decoder = Decoder()
    block = (
        literal(0x00, b"x-a", b"1")
        + literal(0x10, b"x-b", b"2")
        + h("04 01 33")  # without indexing, name :path (4)
        + h("14 01 34")  # never indexed, name :path
        + literal(0x40, b"x-c", b"5")
    )
    call = f"Decoder().decode({block.hex()})"
    with step(call):
        got = decoder.decode(block)
        entries = decoder.table.entries()
    want = [(b"x-a", b"1"), (b"x-b", b"2"), (b":path", b"3"), (b":path", b"4"), (b"x-c", b"5")]
    assert got == want, called(call, got, want)
    assert entries == [(b"x-c", b"5")], called(
        f"decoder.table.entries() after {call}", entries, [(b"x-c", b"5")]
    )


@pytest.mark.points(2)
def test_never_indexed_fields_come_back_marked() -> None:
    """A field that arrived as a literal never indexed is returned as a NeverIndexed pair, so a
    proxy re-encoding it keeps the representation (§6.2.3: intermediaries MUST use the same
    representation); other fields are not marked."""
    decoder = Decoder()
    block = (
        literal(0x10, b"authorization", b"secret")
        + h("14 01 34")
        + literal(0x00, b"x", b"y")
        + h("82")
    )
    call = f"Decoder().decode({block.hex()})"
    with step(call):
        got = decoder.decode(block)
    kinds = [type(field).__name__ for field in got]
    marked = [isinstance(field, NeverIndexed) for field in got]
    assert marked == [True, True, False, False], called(
        call + " -> the type of each field", kinds, "NeverIndexed twice, then plain tuples"
    )


@pytest.mark.points(2)
def test_size_updates_at_the_start_resize_the_table() -> None:
    """Dynamic table size updates at the start of a block resize the table and evict (§4.3,
    §6.3); two in a row are allowed (§4.2), and 0 empties the table."""
    decoder = Decoder()
    with step("decoder.decode(two literals with indexing)"):
        decoder.decode(literal(0x40, b"aa", b"11") + literal(0x40, b"bb", b"22"))
    block = h("3f 07") + h("3f e1 1f")  # update to 38, then to 4096
    call = f"decoder.decode({block.hex()})"
    with step(call):
        got = decoder.decode(block)
        state = (decoder.table.entries(), decoder.table.size, decoder.table.max_size)
    want = ([(b"bb", b"22")], 36, 4096)
    assert (got, state) == ([], want), called(
        f"{call} -> (list, (entries, size, max_size))", (got, state), ([], want)
    )
    block = h("20 82")
    call = f"decoder.decode({block.hex()})"
    with step(call):
        got = decoder.decode(block)
        state = (decoder.table.entries(), decoder.table.size, decoder.table.max_size)
    want = ([], 0, 0)
    assert (got, state) == ([(b":method", b"GET")], want), called(
        f"{call} -> (list, (entries, size, max_size))", (got, state), ([(b":method", b"GET")], want)
    )


@pytest.mark.points(2)
def test_size_update_limit_is_the_announced_setting() -> None:
    """A size update may go up to the decoder's max_table_size and not one above (§6.3: a value
    that exceeds the limit MUST be treated as a decoding error)."""
    for limit, block, want in [
        (4096, h("3f e1 1f"), []),  # 4096
        (4096, h("3f e2 1f"), "HPACKError"),  # 4097
        (256, h("3f e1 01"), []),  # 256
        (256, h("3f e2 01"), "HPACKError"),  # 257
        (0, h("20"), []),
        (0, h("21"), "HPACKError"),
    ]:
        call = f"Decoder(max_table_size={limit}).decode({block.hex()})"
        with step(call):
            decoder = Decoder(max_table_size=limit)
        got = outcome(decoder, block, block.hex())
        assert got == want, called(call, got, want)


@pytest.mark.points(2)
def test_lowered_setting_requires_a_size_update() -> None:
    """After set_max_table_size lowers the limit below the table's size, a block that does not
    start with a size update within the new limit raises HPACKError (RFC 9113 §4.3.1, RFC 7541
    §4.2); one that does is decoded."""
    decoder = Decoder()
    with step("decoder.set_max_table_size(100)"):
        decoder.decode(literal(0x40, b"aa", b"11"))
        decoder.set_max_table_size(100)
    got = outcome(decoder, h("82"), "82")
    assert got == "HPACKError", called(
        "decoder.decode(82) without the size update", got, "HPACKError"
    )
    decoder = Decoder()
    with step("decoder.set_max_table_size(100)"):
        decoder.decode(literal(0x40, b"aa", b"11"))
        decoder.set_max_table_size(100)
    got = outcome(decoder, h("3f 45 be"), "3f45be")  # update to 100, then index 62
    assert got == [(b"aa", b"11")], called(
        "decoder.decode(3f45be) after set_max_table_size(100)", got, [(b"aa", b"11")]
    )
    decoder = Decoder()
    with step("decoder.set_max_table_size(8192)"):
        decoder.set_max_table_size(8192)
    got = outcome(decoder, h("82"), "82")
    assert got == [(b":method", b"GET")], called(
        "decoder.decode(82) after raising the limit (no update needed)", got, [(b":method", b"GET")]
    )
    got = outcome(decoder, h("3f e1 3f"), "3fe13f")
    assert got == [], called(
        "decoder.decode(3fe13f): an update to 8192 after raising the limit", got, []
    )


# --- the header list limit (RFC 9113 §6.5.2) --------------------------------------------------

BIG = b"A" * 4000  # the entry (b"bomb", BIG) is 4 + 4000 + 32 = 4036 octets
INSERT_BIG = bytes([0x40, 4]) + b"bomb" + h("7f a1 1e") + BIG  # 4000 = 127 + 33 + 30 * 128


def test_big_entry_block_is_what_the_specs_think() -> None:
    """A literal with incremental indexing of a 4000-octet value is decoded (§6.2.1, §5.2)."""
    call = "Decoder().decode(literal with indexing of b'bomb': 4000 octets)"
    with step(call):
        got = Decoder().decode(INSERT_BIG)
    assert got == [(b"bomb", BIG)], called(call, short(got), "[(b'bomb', b'AAAA...')]")


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("limit", "want"),
    [
        pytest.param(4036 * 3, 3, id="at-the-limit"),
        pytest.param(4036 * 3 + 1, 3, id="one-above"),
        pytest.param(4036 * 3 - 1, "OversizedHeaderListError", id="one-below"),
    ],
)
def test_header_list_size_limit(limit: int, want: object) -> None:
    """A header list whose size (name + value + 32 per field, RFC 9113 §6.5.2) equals
    max_header_list_size is decoded; one octet more raises OversizedHeaderListError."""
    block = INSERT_BIG + h("be be")  # three fields of 4036
    call = f"Decoder(max_header_list_size={limit}).decode(a block of 3 fields of 4036 octets)"
    with step(call):
        decoder = Decoder(max_header_list_size=limit)
    got = outcome(decoder, block, "a block of 3 fields of 4036 octets")
    got = len(got) if isinstance(got, list) else got
    assert got == want, called(call, got, want)


@pytest.mark.points(3)
def test_hpack_bomb_stops_before_the_list_is_built() -> None:
    """A small block referencing one big entry many times raises OversizedHeaderListError as soon
    as the list passes the limit, before reading the rest of the block (RFC 9113 §6.5.2, RFC
    7541 §7.3)."""
    # 17 fields of 4036 octets pass 65536; the block goes on with 100000 more references and
    # ends with index 0, an error the decoder must never get to.
    block = INSERT_BIG + b"\xbe" * 100_000 + b"\x80"
    call = "Decoder().decode(a 4000-octet entry referenced 100000 times, then index 0)"
    got = outcome(Decoder(), block, "a 4000-octet entry referenced 100000 times, then index 0")
    got = len(got) if isinstance(got, list) else got
    assert got == "OversizedHeaderListError", called(call, got, "OversizedHeaderListError")


@pytest.mark.points(2)
def test_empty_fields_count_32_octets_each() -> None:
    """Empty fields count 32 octets each toward max_header_list_size, so a block of empty
    literals can't build an endless list (RFC 9113 §6.5.2)."""
    empty = h("00 00 00")  # literal without indexing, empty name, empty value
    for count, want in [(2048, 2048), (2049, "OversizedHeaderListError")]:
        call = f"Decoder().decode({count} empty literals: 00 00 00 each)"
        got = outcome(Decoder(), empty * count, f"{count} empty literals")
        got = len(got) if isinstance(got, list) else got
        assert got == want, called(call, got, want)


@pytest.mark.points(1)
def test_empty_block_is_an_empty_list() -> None:
    """An empty header block decodes to an empty list and leaves the table alone."""
    decoder = Decoder()
    with step("Decoder().decode(b'')"):
        got = decoder.decode(b"")
        entries = decoder.table.entries()
    assert (got, entries) == ([], []), called(
        "Decoder().decode(b'') -> (list, table entries)", (got, entries), ([], [])
    )


@pytest.mark.points(1)
def test_decoded_names_and_values_are_bytes() -> None:
    """Decoded names and values are bytes objects (not bytearray or memoryview), whichever
    representation carried them."""
    decoder = Decoder()
    block = (
        h("82")
        + literal(0x40, b"x-a", b"1")
        + h("be")
        + h("41 8c f1e3c2e5f23a6ba0ab90f4ff")
        + h("0f 0d 01 35")
    )
    call = f"Decoder().decode({block.hex()})"
    with step(call):
        got = decoder.decode(block)
    types = [(type(name).__name__, type(value).__name__) for name, value in got]
    want = [("bytes", "bytes")] * 5
    assert types == want, called(call + " -> the types of names and values", types, want)

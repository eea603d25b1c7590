"""The encoder's own rules: never-indexed fields stay out of every table, size updates are
announced at the start of the next block, Huffman only when it pays."""

from __future__ import annotations

import pytest
from _helpers import OracleDecoder, h
from hpack_codec import Encoder, NeverIndexed, NotIndexed

from grader.spectools import called, step


def encode(encoder: Encoder, headers: list, what: str) -> bytes:
    with step(f"encoder.encode({what})"):
        return encoder.encode(headers)


@pytest.mark.points(3)
def test_never_indexed_is_never_indexed() -> None:
    """A NeverIndexed field is sent as a literal never indexed every time, even when the same
    field is already in the table, and never added to the table (§6.2.3: it MUST always be
    encoded with this specific literal representation; §7.1.3)."""
    encoder = Encoder(huffman=False)
    secret = NeverIndexed(b"authorization", b"Bearer s3cr3t")
    first = encode(encoder, [secret], "[NeverIndexed(b'authorization', b'Bearer s3cr3t')]")
    want = h("1f 08") + bytes([13]) + b"Bearer s3cr3t"  # name index 23, 4-bit prefix: 15 + 8
    assert first == want, called(
        "encoder.encode([NeverIndexed(authorization ...)])", first.hex(), want.hex()
    )
    with step("encoder.table.entries()"):
        entries = encoder.table.entries()
    assert entries == [], called("encoder.table.entries() after a NeverIndexed field", entries, [])
    plain = encode(
        encoder, [(b"authorization", b"Bearer s3cr3t")], "[(b'authorization', b'Bearer s3cr3t')]"
    )
    again = encode(encoder, [secret], "the NeverIndexed field again, now that the table holds it")
    assert again == want, called(
        "encoder.encode([NeverIndexed(...)]) when the table holds the same field",
        again.hex(),
        want.hex(),
    )
    assert plain[0] & 0xC0 == 0x40, called(
        "encoder.encode([a plain field])", plain.hex(), "a literal with indexing"
    )


@pytest.mark.points(2)
def test_never_indexed_new_name() -> None:
    """A NeverIndexed field with a name in no table is a literal never indexed with a literal
    name, pattern 0001 0000 (§6.2.3)."""
    encoder = Encoder(huffman=False)
    got = encode(encoder, [NeverIndexed(b"x-secret", b"42")], "[NeverIndexed(b'x-secret', b'42')]")
    want = h("10 08") + b"x-secret" + h("02") + b"42"
    assert got == want, called(
        "Encoder(huffman=False).encode([NeverIndexed(b'x-secret', b'42')])", got.hex(), want.hex()
    )


@pytest.mark.points(2)
def test_never_indexed_survives_the_library_decoder() -> None:
    """The hpack library decodes a NeverIndexed field as never-indexed and keeps it out of its
    table (§6.2.3)."""
    encoder = Encoder()
    fields = [(b":method", b"GET"), NeverIndexed(b"cookie", b"session=abc"), (b"x-a", b"b")]
    block = encode(encoder, fields, "[(:method, GET), NeverIndexed(cookie, ...), (x-a, b)]")
    decoder = OracleDecoder()
    got = decoder.decode(block, raw=True)
    marks = [type(field).__name__ for field in got]
    want = ["HeaderTuple", "NeverIndexedHeaderTuple", "HeaderTuple"]
    assert marks == want, called(
        "the library's decode of encoder.encode(...) -> field types", marks, want
    )
    entries = list(decoder.header_table.dynamic_entries)
    assert entries == [(b"x-a", b"b")], called(
        "the library decoder's table afterwards", entries, [(b"x-a", b"b")]
    )


@pytest.mark.points(2)
def test_not_indexed_stays_out_of_the_table() -> None:
    """A NotIndexed field is a literal without indexing and is not added to the table, even when
    sent twice (§6.2.2)."""
    encoder = Encoder(huffman=False)
    field = NotIndexed(b"content-length", b"1234")
    want = h("0f 0d 04") + b"1234"  # name index 28 = 15 + 13
    for n in (1, 2):
        got = encode(encoder, [field], "[NotIndexed(b'content-length', b'1234')]")
        assert got == want, called(
            f"encoder.encode([NotIndexed(content-length, 1234)]) #{n}", got.hex(), want.hex()
        )
    with step("encoder.table.entries()"):
        entries = encoder.table.entries()
    assert entries == [], called("encoder.table.entries() after NotIndexed fields", entries, [])


SIZE_CHANGES = [
    pytest.param([100], "3f45", id="one-change"),
    pytest.param([0, 4096], "20 3fe11f", id="down-then-back-signals-both"),
    pytest.param([100, 50], "3f13", id="two-down-signals-the-final"),
    pytest.param([50, 100, 80], "3f13 3f31", id="min-then-final"),
    pytest.param([4096], "", id="same-size-no-update"),
    pytest.param([8192], "3fe13f", id="larger"),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(("sizes", "updates"), SIZE_CHANGES)
def test_size_change_is_announced_at_the_next_block(sizes: list[int], updates: str) -> None:
    """After set_max_table_size, the next block starts with dynamic table size updates: the
    smallest size set since the last block if it is below the final one, then the final one, and
    none when nothing changed (§4.2, §6.3)."""
    encoder = Encoder()
    with step(f"encoder.set_max_table_size(...) for each of {sizes}"):
        for size in sizes:
            encoder.set_max_table_size(size)
    got = encode(encoder, [(b":method", b"GET")], "[(b':method', b'GET')]")
    want = h(updates) + h("82")
    assert got == want, called(
        f"encoder.encode([(:method, GET)]) after set_max_table_size{sizes}", got.hex(), want.hex()
    )
    got = encode(encoder, [(b":method", b"GET")], "[(b':method', b'GET')] again")
    assert got == h("82"), called(
        "encoder.encode([(:method, GET)]) on the block after", got.hex(), "82"
    )


@pytest.mark.points(2)
def test_shrinking_evicts_from_the_encoder_table() -> None:
    """Shrinking the table evicts the encoder's oldest entries, so it never refers to an entry the
    decoder has dropped (§4.3)."""
    encoder = Encoder(huffman=False)
    encode(encoder, [(b"x-a", b"1"), (b"x-b", b"2")], "[(x-a, 1), (x-b, 2)]")  # 36 each
    with step("encoder.set_max_table_size(40)"):
        encoder.set_max_table_size(40)
    got = encode(
        encoder, [(b"x-a", b"1"), (b"x-b", b"2")], "[(x-a, 1), (x-b, 2)] after shrinking to 40"
    )
    # 3f09: update to 40; x-a was evicted, so it is a new literal; adding it evicts x-b; x-b again.
    want = h("3f09") + h("40 03") + b"x-a" + h("01") + b"1" + h("40 03") + b"x-b" + h("01") + b"2"
    assert got == want, called(
        "encoder.encode(...) after set_max_table_size(40)", got.hex(), want.hex()
    )
    with step("encoder.table.entries()"):
        entries = encoder.table.entries()
    assert entries == [(b"x-b", b"2")], called("encoder.table.entries()", entries, [(b"x-b", b"2")])


HUFFMAN_CHOICE = [
    pytest.param(b"www.example.com", True, id="shorter-coded"),
    pytest.param(b"\x00\x01", False, id="longer-coded"),
    pytest.param(b"0", False, id="same-length-raw"),
    pytest.param(b"", False, id="empty-raw"),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(("value", "coded"), HUFFMAN_CHOICE)
def test_default_huffman_only_when_shorter(value: bytes, coded: bool) -> None:
    """By default a string is Huffman-coded only when that makes it strictly shorter (§5.2)."""
    encoder = Encoder()
    got = encode(encoder, [NotIndexed(b":path", value)], f"[NotIndexed(b':path', {value!r})]")
    huffman = bool(got[1] & 0x80)
    assert huffman == coded, called(
        f"Encoder().encode([NotIndexed(b':path', {value!r})]) -> H bit of the value", huffman, coded
    )


@pytest.mark.points(1)
def test_encoder_accepts_any_iterable() -> None:
    """encode takes any iterable of pairs, a generator included, and an empty list gives an empty
    block."""
    encoder = Encoder()
    got = encode(encoder, (pair for pair in [(b":method", b"GET")]), "a generator of one pair")
    assert got == h("82"), called("encoder.encode(generator)", got.hex(), "82")
    got = encode(encoder, [], "[]")
    assert got == b"", called("encoder.encode([])", got, b"")


@pytest.mark.points(1)
def test_negative_table_size_is_refused() -> None:
    """set_max_table_size with a negative size raises ValueError: a table size is never below 0."""
    encoder = Encoder()
    try:
        encoder.set_max_table_size(-1)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"Called encoder.set_max_table_size(-1); raised {type(exc).__name__}: {exc}; expected ValueError"
        ) from None
    raise AssertionError(called("encoder.set_max_table_size(-1)", None, "ValueError"))


@pytest.mark.points(2)
def test_literal_names_a_dynamic_entry() -> None:
    """A new value for a name that only the dynamic table holds is a literal naming that entry's
    index (62 for the newest), not a repeated literal name (§6.2.1)."""
    encoder = Encoder(huffman=False)
    got = encode(
        encoder, [(b"x-a", b"1"), (b"x-b", b"1"), (b"x-a", b"2")], "[(x-a, 1), (x-b, 1), (x-a, 2)]"
    )
    want = (
        h("40 03")
        + b"x-a"
        + h("01")
        + b"1"
        + h("40 03")
        + b"x-b"
        + h("01")
        + b"1"
        + h("7f 00 01")
        + b"2"
    )
    assert got == want, called(
        "Encoder(huffman=False).encode([(x-a, 1), (x-b, 1), (x-a, 2)])", got.hex(), want.hex()
    )

"""RFC 7541 Appendix C, byte for byte: the published examples decode to the published header
lists and tables, and an encoder making the RFC's choices produces the published bytes."""

from __future__ import annotations

import pytest
from _helpers import STEP_IDS, STEPS, Sequence, h
from hpack_codec import Decoder, Encoder, NeverIndexed, NotIndexed

from grader.spectools import called, step


def _decode_through(sequence: Sequence, last: int) -> None:
    decoder = Decoder(max_table_size=sequence.max_table_size)
    for example in sequence.examples[: last + 1]:
        call = (
            f"decoder.decode({example.section} block) after the blocks before it in {sequence.name}"
        )
        with step(call):
            got = decoder.decode(example.block)
        assert got == example.headers, called(call, got, example.headers)
        with step(f"decoder.table.entries() after {example.section}"):
            entries = decoder.table.entries()
            size = decoder.table.size
        assert entries == example.table, called(
            f"decoder.table.entries() after {example.section}", entries, example.table
        )
        assert size == example.size, called(
            f"decoder.table.size after {example.section}", size, example.size
        )


def _encode_through(sequence: Sequence, last: int) -> None:
    encoder = Encoder(max_table_size=sequence.max_table_size, huffman=sequence.huffman)
    for example in sequence.examples[: last + 1]:
        call = (
            f"Encoder(max_table_size={sequence.max_table_size}, huffman={sequence.huffman})"
            f".encode({example.section} headers) after the blocks before it"
        )
        with step(call):
            got = encoder.encode(example.headers)
        assert got == example.block, called(call, got.hex(" ", 2), example.block.hex(" ", 2))
        with step(f"encoder.table.entries() after {example.section}"):
            entries = encoder.table.entries()
            size = encoder.table.size
        assert entries == example.table, called(
            f"encoder.table.entries() after {example.section}", entries, example.table
        )
        assert size == example.size, called(
            f"encoder.table.size after {example.section}", size, example.size
        )


@pytest.mark.points(2)
@pytest.mark.parametrize(("sequence", "position"), STEPS, ids=STEP_IDS)
def test_decode_appendix_c(sequence: Sequence, position: int) -> None:
    """The RFC 7541 Appendix C header blocks decode to their header lists, and the dynamic table
    holds the listed entries and size after each block (§2.3, §4.1, Appendix C.3-C.6)."""
    _decode_through(sequence, position)


@pytest.mark.points(2)
@pytest.mark.parametrize(("sequence", "position"), STEPS, ids=STEP_IDS)
def test_encode_appendix_c(sequence: Sequence, position: int) -> None:
    """Encoding the RFC 7541 Appendix C header lists gives the RFC's bytes: indexed when a table
    holds the field, else a literal with incremental indexing naming the lowest index with the
    name (Appendix C.3-C.6)."""
    _encode_through(sequence, position)


C2 = [
    pytest.param(
        (b"custom-key", b"custom-header"),
        h("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
        [(b"custom-key", b"custom-header")],
        55,
        id="C.2.1-literal-with-indexing",
    ),
    pytest.param(
        NotIndexed(b":path", b"/sample/path"),
        h("040c 2f73 616d 706c 652f 7061 7468"),
        [],
        0,
        id="C.2.2-literal-without-indexing",
    ),
    pytest.param(
        NeverIndexed(b"password", b"secret"),
        h("1008 7061 7373 776f 7264 0673 6563 7265 74"),
        [],
        0,
        id="C.2.3-literal-never-indexed",
    ),
    pytest.param((b":method", b"GET"), h("82"), [], 0, id="C.2.4-indexed"),
]


@pytest.mark.points(1)
@pytest.mark.parametrize(("field", "block", "table", "size"), C2)
def test_decode_appendix_c2(
    field: tuple[bytes, bytes], block: bytes, table: list, size: int
) -> None:
    """Each representation of RFC 7541 Appendix C.2 decodes to its field and leaves the table as
    listed: only a literal with incremental indexing adds an entry (§6.1, §6.2)."""
    decoder = Decoder()
    call = f"Decoder().decode({block.hex()})"
    with step(call):
        got = decoder.decode(block)
        entries, table_size = decoder.table.entries(), decoder.table.size
    assert got == [tuple(field)], called(call, got, [tuple(field)])
    assert (entries, table_size) == (table, size), called(
        f"(decoder.table.entries(), decoder.table.size) after {call}",
        (entries, table_size),
        (table, size),
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(("field", "block", "table", "size"), C2)
def test_encode_appendix_c2(
    field: tuple[bytes, bytes], block: bytes, table: list, size: int
) -> None:
    """Each field of RFC 7541 Appendix C.2 encodes to the RFC's bytes without Huffman coding:
    NotIndexed as a literal without indexing, NeverIndexed as a literal never indexed (§6.2)."""
    encoder = Encoder(huffman=False)
    call = f"Encoder(huffman=False).encode([{field!r}])"
    with step(call):
        got = encoder.encode([field])
        entries, table_size = encoder.table.entries(), encoder.table.size
    assert got == block, called(call, got.hex(), block.hex())
    assert (entries, table_size) == (table, size), called(
        f"(encoder.table.entries(), encoder.table.size) after {call}",
        (entries, table_size),
        (table, size),
    )

"""Hidden specs for protowire: varints, zigzag, and messages checked against protobuf itself.

The oracle is the ``protobuf`` runtime: message classes built at run time from a
FileDescriptorProto (no protoc, no generated code) with the same fields as the learner's
MessageType, plus a "Wide" variant with fields the learner's schema does not know.
"""

from __future__ import annotations

import pytest
from _helpers import PB, dict_to_pb, learner_schema, pb_to_dict
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from protowire import (
    DecodeError,
    Field,
    MessageType,
    decode,
    decode_varint,
    encode,
    encode_varint,
    zigzag_decode,
    zigzag_encode,
)

from grader.spectools import called, short, step

POINT, SAMPLE = learner_schema()
# The generated messages are large (17 fields); 25 examples plus the explicit edge cases keep
# each property near 0.3 s idle, well inside its time limit on a loaded runner under coverage.
FAST = settings(max_examples=25, phases=[Phase.explicit, Phase.generate])

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

# --- varints ------------------------------------------------------------------------------

VARINTS = {
    "0": (0, "00"),
    "1": (1, "01"),
    "127 (the largest one-byte varint)": (127, "7f"),
    "128 (the smallest two-byte varint)": (128, "8001"),
    "150 (protobuf.dev Encoding)": (150, "9601"),
    "300": (300, "ac02"),
    "16383": (16383, "ff7f"),
    "16384": (16384, "808001"),
    "2**32 - 1": (2**32 - 1, "ffffffff0f"),
    "2**63": (2**63, "80808080808080808001"),
    "2**64 - 1 (ten bytes)": (2**64 - 1, "ffffffffffffffffff01"),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("value, wire", list(VARINTS.values()), ids=list(VARINTS))
def test_encode_varint_matches_the_encoding_guide(value, wire):
    """encode_varint writes 7 bits per byte, least significant group first, MSB set on all but
    the last byte (protobuf.dev "Encoding", Base 128 Varints)."""
    with step(f"encode_varint({value})"):
        got = encode_varint(value)
    assert got == bytes.fromhex(wire), called(f"encode_varint({value})", got, bytes.fromhex(wire))


@pytest.mark.points(1)
@pytest.mark.parametrize("value, wire", list(VARINTS.values()), ids=list(VARINTS))
def test_decode_varint_reads_back_and_reports_the_position(value, wire):
    """decode_varint(data, pos) returns the value and the position just after the varint."""
    data = b"\xaa" + bytes.fromhex(wire) + b"\xbb"
    with step(f"decode_varint({short(data)}, 1)"):
        got = decode_varint(data, 1)
    want = (value, 1 + len(bytes.fromhex(wire)))
    assert got == want, called(f"decode_varint({short(data)}, 1)", got, want)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\xff\xff", b"\xff" * 10 + b"\x01", b"\x80" * 11],
    ids=["empty", "one continuation byte", "cut after two bytes", "eleven bytes", "no end"],
)
def test_decode_varint_rejects_truncated_and_overlong(data):
    """A varint cut short, or longer than ten bytes, raises DecodeError."""
    with pytest.raises(DecodeError):
        got = decode_varint(data, 0)
        raise AssertionError(called(f"decode_varint({short(data)})", got, "DecodeError"))


@pytest.mark.points(1)
@pytest.mark.parametrize("value", [-1, 2**64], ids=["-1", "2**64"])
def test_encode_varint_refuses_what_64_bits_cannot_hold(value):
    """encode_varint takes 0..2**64-1 only; anything else raises ValueError."""
    with pytest.raises(ValueError):
        got = encode_varint(value)
        raise AssertionError(called(f"encode_varint({value})", got, "ValueError"))


ZIGZAG = [(0, 0), (-1, 1), (1, 2), (-2, 3), (2147483647, 4294967294), (-2147483648, 4294967295)]
ZIGZAG += [(2**63 - 1, 2**64 - 2), (-(2**63), 2**64 - 1)]


@pytest.mark.points(1)
@pytest.mark.parametrize("signed, unsigned", ZIGZAG, ids=[str(s) for s, _ in ZIGZAG])
def test_zigzag_maps_small_magnitudes_to_small_numbers(signed, unsigned):
    """zigzag maps 0, -1, 1, -2, ... to 0, 1, 2, 3, ... and back (protobuf.dev "Encoding",
    Signed Integers)."""
    with step(f"zigzag_encode({signed})"):
        got = zigzag_encode(signed)
    assert got == unsigned, called(f"zigzag_encode({signed})", got, unsigned)
    with step(f"zigzag_decode({unsigned})"):
        back = zigzag_decode(unsigned)
    assert back == signed, called(f"zigzag_decode({unsigned})", back, signed)


# --- canonical message vectors -------------------------------------------------------------

INT32_VALUE = MessageType("Int32Value", (Field(1, "value", "int32"),))
STRING_VALUE = MessageType("StringValue", (Field(1, "value", "string"),))
VECTORS = {
    "Int32Value 150": (INT32_VALUE, {"value": 150}, "089601"),
    "Int32Value -1 (sign-extended to ten bytes)": (
        INT32_VALUE,
        {"value": -1},
        "08ffffffffffffffffff01",
    ),
    "Int32Value 0 (a default is not written)": (INT32_VALUE, {"value": 0}, ""),
    'StringValue "testing"': (STRING_VALUE, {"value": "testing"}, "0a0774657374696e67"),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("schema, value, wire", list(VECTORS.values()), ids=list(VECTORS))
def test_wrapper_messages_encode_as_protobuf_does(schema, value, wire):
    """Int32Value and StringValue encode to the bytes protobuf writes (wrappers_pb2)."""
    with step(f"encode({schema.name}, {value})"):
        got = encode(schema, value)
    want = bytes.fromhex(wire)
    assert got == want, called(f"encode({schema.name}, {value})", got.hex(), want.hex())
    with step(f"decode({schema.name}, {wire!r})"):
        back = decode(schema, want)
    assert back == value, called(f"decode({schema.name}, {wire!r})", back, value)


# --- the differential property -------------------------------------------------------------

points = st.fixed_dictionaries(
    {
        "x": st.integers(*INT32),
        "y": st.integers(*INT32),
        "label": st.text(max_size=8),
    }
)
enums = st.one_of(st.sampled_from([0, 1, 2]), st.integers(*INT32))
samples = st.fixed_dictionaries(
    {
        "i32": st.integers(*INT32),
        "i64": st.integers(*INT64),
        "u32": st.integers(0, 2**32 - 1),
        "u64": st.integers(0, 2**64 - 1),
        "s32": st.integers(*INT32),
        "s64": st.integers(*INT64),
        "flag": st.booleans(),
        "text": st.text(max_size=20),
        "blob": st.binary(max_size=20),
        "color": enums,
        "point": st.none() | points,
        "packed_ints": st.lists(st.integers(*INT32), max_size=5),
        "unpacked": st.lists(st.integers(*INT64), max_size=5),
        "tags": st.lists(st.text(max_size=5), max_size=3),
        "points": st.lists(points, max_size=3),
        "colors": st.lists(enums, max_size=4),
        "far": st.integers(0, 2**32 - 1),
    }
)


def full(**values):
    """A Sample dict with every field at its default except ``values``."""
    value = {f.name: ([] if f.repeated else None) for f in SAMPLE.fields}
    value.update(i32=0, i64=0, u32=0, u64=0, s32=0, s64=0, flag=False, text="", blob=b"")
    value.update(color=0, far=0)
    value.update(values)
    return value


EDGES = [
    full(),
    full(i32=-1, i64=-1, s32=-1, s64=-1, color=-1),
    full(i32=INT32[0], i64=INT64[0], s32=INT32[0], s64=INT64[0]),
    full(i32=INT32[1], i64=INT64[1], u32=2**32 - 1, u64=2**64 - 1, s32=INT32[1], s64=INT64[1]),
    full(flag=True, text="ünïcødé ☃ 𝄞", blob=b"\x00\xff", far=1),
    full(point={"x": 0, "y": 0, "label": ""}),
    full(point={"x": -5, "y": -5, "label": "p"}, points=[{"x": 1, "y": -1, "label": ""}] * 2),
    full(packed_ints=[0, -1, 150], unpacked=[0, -1, INT64[0]], colors=[2, 0, -7]),
    full(tags=["", "a", "ß"], text="x" * 200, blob=bytes(range(256))),
]


def compare_ours_to_protobuf(value):
    with step(f"encode(Sample, {short(value, 300)})"):
        ours = encode(SAMPLE, value)
    parsed = PB["Sample"]()
    try:
        parsed.ParseFromString(ours)
    except Exception as exc:
        raise AssertionError(
            f"Called encode(Sample, {short(value, 300)}); protobuf could not parse the bytes "
            f"{short(ours.hex())}: {exc}"
        ) from None
    got = pb_to_dict(parsed)
    assert got == value, (
        f"Called encode(Sample, {short(value, 300)}); protobuf read back {short(got, 300)}"
    )


@pytest.mark.points(4)
@FAST
@given(samples)
@example(EDGES[0])
@example(EDGES[1])
@example(EDGES[2])
@example(EDGES[3])
@example(EDGES[4])
@example(EDGES[5])
@example(EDGES[6])
@example(EDGES[7])
@example(EDGES[8])
def test_protobuf_parses_what_encode_writes(value):
    """protobuf parses the bytes of encode(Sample, value) back to the same value, for every
    field type: int32/64, uint32/64, sint32/64, bool, enum, string, bytes, nested, repeated."""
    compare_ours_to_protobuf(value)


def compare_protobuf_to_ours(value, cls="Sample", **extra):
    message = dict_to_pb(PB[cls], {**value, **extra})
    wire = message.SerializeToString()
    with step(f"decode(Sample, <protobuf's bytes of {short(value, 200)}>)"):
        got = decode(SAMPLE, wire)
    assert got == value, called(f"decode(Sample, {short(wire.hex(), 200)})", got, value)


@pytest.mark.points(4)
@FAST
@given(samples)
@example(EDGES[1])
@example(EDGES[2])
@example(EDGES[3])
@example(EDGES[4])
@example(EDGES[5])
@example(EDGES[7])
@example(EDGES[8])
def test_decode_reads_what_protobuf_writes(value):
    """decode(Sample, bytes) of protobuf's serialization gives back the same value."""
    compare_protobuf_to_ours(value)


UNKNOWN = {
    "w_fixed32": 0xDEADBEEF,
    "w_double": -1.5,
    "w_fixed64": 2**64 - 1,
    "w_float": 3.25,
    "w_varint": -1,
    "w_string": "unknown to you",
    "w_point": {"x": 1, "y": 2, "label": "z"},
}


@pytest.mark.points(3)
@FAST
@given(samples, st.sampled_from([{k: v} for k, v in UNKNOWN.items()] + [UNKNOWN]))
@example(EDGES[0], UNKNOWN)
@example(EDGES[7], {"w_fixed32": 1})
@example(EDGES[7], {"w_fixed64": 1})
def test_decode_skips_unknown_fields_of_every_wire_type(value, extra):
    """Fields the schema does not know (I32, I64, VARINT and LEN wire types) are skipped; the
    known fields around them decode as before (protobuf.dev "Encoding", unknown fields)."""
    compare_protobuf_to_ours(value, "Wide", **extra)


# --- hand-built wires: packed, last one wins, merge, malformed ----------------------------


def decodes(data: bytes, schema: MessageType = SAMPLE):
    with step(f"decode({schema.name}, bytes.fromhex({data.hex()!r}))"):
        return decode(schema, data)


@pytest.mark.points(2)
def test_repeated_numbers_are_read_packed_or_not():
    """A repeated numeric field accepts packed and unpacked records, even mixed (protobuf.dev
    "Encoding", Packed Repeated Fields: parsers must accept both)."""
    # field 12 (packed_ints) unpacked: 60 01, 60 02; field 13 (unpacked, sint64) packed: 6a 02 01 03
    data = bytes.fromhex("600160026a020103620103")
    got = decodes(data)
    want = {"packed_ints": [1, 2, 3], "unpacked": [-1, -2]}
    seen = {name: got[name] for name in want}
    assert seen == want, called(f"decode(Sample, {data.hex()})", seen, want)


@pytest.mark.points(1)
def test_packed_encoding_is_used_for_repeated_numbers():
    """encode packs a repeated numeric field in one LEN record unless its Field says
    packed=False."""
    for value, wire in [
        ({"packed_ints": [1, 150]}, "6203019601"),
        ({"unpacked": [1, -1]}, "68026801"),
    ]:
        with step(f"encode(Sample, {value})"):
            got = encode(SAMPLE, value)
        assert got == bytes.fromhex(wire), called(f"encode(Sample, {value})", got.hex(), wire)


@pytest.mark.points(1)
def test_an_empty_nested_message_is_written():
    """A nested message set to {} is written as an empty LEN record and reads back as a message,
    not None: a message field has presence, so empty is not absent (protobuf.dev "Encoding")."""
    with step("encode(Sample, {'point': {}})"):
        got = encode(SAMPLE, {"point": {}})
    assert got == bytes.fromhex("5a00"), called("encode(Sample, {'point': {}})", got.hex(), "5a00")
    back = decodes(got)["point"]
    assert back is not None, called("decode(Sample, 5a00)['point']", back, "an empty message")


@pytest.mark.points(1)
def test_the_last_value_of_a_scalar_wins():
    """A scalar field that appears twice takes its last value (protobuf.dev "Encoding",
    Last One Wins)."""
    data = bytes.fromhex("08010802420161420162")
    got = decodes(data)
    seen = (got["i32"], got["text"])
    assert seen == (2, "b"), called(f"decode(Sample, {data.hex()})", seen, (2, "b"))


@pytest.mark.points(2)
def test_a_nested_message_seen_twice_is_merged():
    """Two records of the same singular message field merge: fields of the second override,
    the others stay (protobuf.dev "Encoding", Last One Wins)."""
    first = bytes.fromhex("08071a0161")  # point {x: 7, label: "a"}
    second = bytes.fromhex("1003")  # point {y: -2}
    data = b"\x5a" + bytes([len(first)]) + first + b"\x5a" + bytes([len(second)]) + second
    got = decodes(data)["point"]
    want = {"x": 7, "y": -2, "label": "a"}
    assert got == want, called(f"decode(Sample, {data.hex()}) ['point']", got, want)


@pytest.mark.points(1)
def test_wide_varints_are_truncated_to_the_field_type():
    """int32 keeps the low 32 bits of a wider varint, read as two's complement; bool is true
    for any non-zero varint (protobuf.dev "Encoding", int32 truncation)."""
    # i32 = 0xffffffff (five bytes, not sign-extended) -> -1; u32 = 2**32 + 5 -> 5; flag = 2
    data = bytes.fromhex("08ffffffff0f1885808080103802")
    got = decodes(data)
    seen = (got["i32"], got["u32"], got["flag"])
    assert seen == (-1, 5, True), called(f"decode(Sample, {data.hex()})", seen, (-1, 5, True))


@pytest.mark.points(1)
def test_a_known_field_with_the_wrong_wire_type_is_skipped():
    """A known field number arriving with another wire type is treated as unknown and skipped,
    as protobuf does."""
    data = bytes.fromhex("0a016140070805")  # i32 as LEN, text(8) as VARINT, then i32 = 5
    got = decodes(data)
    seen = (got["i32"], got["text"])
    assert seen == (5, ""), called(f"decode(Sample, {data.hex()})", seen, (5, ""))


MALFORMED = {
    "a truncated tag": "80",
    "a truncated varint value": "0880",
    "a length past the end": "4205616263",
    "a truncated fixed64": "a901" + "00" * 7,
    "a truncated fixed32": "a501" + "00" * 3,
    "field number 0": "0001",
    "wire type 6": "0e01",
    "wire type 7": "0f01",
    "an overlong varint": "08" + "ff" * 10 + "01",
    "a packed run cut mid-varint": "620180",
    "invalid UTF-8 in a string": "4202c328",
}


@pytest.mark.points(1)
@pytest.mark.parametrize("wire", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_bytes_raise_decode_error(wire):
    """Malformed input raises DecodeError, never IndexError or a silent partial result."""
    data = bytes.fromhex(wire)
    with pytest.raises(DecodeError):
        got = decode(SAMPLE, data)
        raise AssertionError(called(f"decode(Sample, {wire!r})", got, "DecodeError"))


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "name, value",
    [("i32", 2**31), ("i32", -(2**31) - 1), ("u32", -1), ("u64", 2**64), ("s32", 2**31)],
    ids=["int32 2**31", "int32 -2**31-1", "uint32 -1", "uint64 2**64", "sint32 2**31"],
)
def test_encode_refuses_values_out_of_range(name, value):
    """encode raises ValueError for a number its field type cannot hold, as protobuf does."""
    with pytest.raises(ValueError):
        got = encode(SAMPLE, {name: value})
        raise AssertionError(called(f"encode(Sample, {{{name!r}: {value}}})", got, "ValueError"))


@pytest.mark.points(1)
def test_the_largest_field_number_takes_a_five_byte_tag():
    """Field 536870911 (2**29 - 1, the largest) is tagged with a five-byte varint."""
    got = encode(SAMPLE, {"far": 1})
    want = bytes.fromhex("f8ffffff0f01")
    assert got == want, called("encode(Sample, {'far': 1})", got.hex(), want.hex())

"""The protobuf binary wire format, by hand, for a small set of proto3 field types.

A message is a sequence of records; each record is a tag (a varint holding
``field_number << 3 | wire_type``) followed by a payload whose shape the wire type gives:

* wire type 0 (VARINT): int32, int64, uint32, uint64, sint32, sint64, bool, enum;
* wire type 2 (LEN): a varint length, then that many bytes: string, bytes, a nested
  message, or a *packed* run of varints for a repeated numeric field;
* wire types 1 (I64) and 5 (I32): fixed-width little-endian values; this module has no
  fields of those types, but must skip them when they arrive as unknown fields.

Decoding is schema-driven: the bytes alone don't say whether a varint is an int32 or a
sint64, so ``decode`` reads the schema to interpret them, and skips any field number the
schema doesn't know (that is how old readers survive new writers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DecodeError",
    "Field",
    "MessageType",
    "decode",
    "decode_varint",
    "encode",
    "encode_varint",
    "zigzag_decode",
    "zigzag_encode",
]

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
MAX_FIELD_NUMBER = (1 << 29) - 1
_MAX_VARINT_BYTES = 10  # 64 bits at 7 bits a byte

# proto3 type -> (smallest, largest) value the type holds.
_RANGES = {
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint32": (0, (1 << 32) - 1),
    "uint64": (0, (1 << 64) - 1),
    "sint32": (-(1 << 31), (1 << 31) - 1),
    "sint64": (-(1 << 63), (1 << 63) - 1),
    "enum": (-(1 << 31), (1 << 31) - 1),
}
NUMERIC = frozenset(_RANGES) | {"bool"}
TYPES = NUMERIC | {"string", "bytes", "message"}


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the message type."""


@dataclass(frozen=True)
class Field:
    """One field of a message type: ``repeated string tags = 14;`` is
    ``Field(14, "tags", "string", repeated=True)``.

    ``packed`` only matters for repeated numeric fields (proto3 packs them by default);
    ``message`` is the nested type of a ``"message"`` field.
    """

    number: int
    name: str
    type: str
    repeated: bool = False
    packed: bool = True
    message: MessageType | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.number <= MAX_FIELD_NUMBER:
            raise ValueError(f"field number {self.number} is outside 1..2**29-1")
        if self.type not in TYPES:
            raise ValueError(f"unknown field type {self.type!r}")
        if (self.type == "message") != (self.message is not None):
            raise ValueError("a message field needs its MessageType, and only it")

    def default(self) -> Any:
        """The value of a field absent from the wire (proto3 implicit presence)."""
        if self.repeated:
            return []
        return {"bool": False, "string": "", "bytes": b"", "message": None}.get(self.type, 0)


@dataclass(frozen=True)
class MessageType:
    """A message schema: its name and its fields."""

    name: str
    fields: Sequence[Field] = ()
    by_number: dict[int, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_number", {f.number: f for f in self.fields})


# --- varints and zigzag ------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """Base-128 varint, least significant group first, MSB set on every byte but the last."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"a varint holds 0..2**64-1, not {value}")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """Read one varint at ``pos``; return (value, position after it)."""
    result = shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(data):
            raise DecodeError("truncated varint")
        byte = data[pos + i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            # The tenth byte may only carry the 64th bit; wider values are not int64s.
            return result & ((1 << 64) - 1), pos + i + 1
        shift += 7
    raise DecodeError("varint longer than 10 bytes")


def zigzag_encode(value: int) -> int:
    """Map signed to unsigned so small magnitudes stay small: 0, -1, 1, -2 -> 0, 1, 2, 3."""
    return value << 1 if value >= 0 else (-value << 1) - 1


def zigzag_decode(value: int) -> int:
    """The inverse of ``zigzag_encode``."""
    return (value >> 1) ^ -(value & 1)


# --- encoding ----------------------------------------------------------------------------


def _tag(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def _scalar_to_varint(f: Field, value: Any) -> int:
    if f.type == "bool":
        return 1 if value else 0
    low, high = _RANGES[f.type]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{f.name}: {value!r} is not a {f.type}")
    if f.type in ("sint32", "sint64"):
        return zigzag_encode(value)
    # Negative int32/int64/enum values are sign-extended to 64 bits: always ten bytes.
    return value & ((1 << 64) - 1)


def _length_delimited(f: Field, value: Any) -> bytes:
    if f.type == "string":
        payload = value.encode("utf-8")
    elif f.type == "bytes":
        payload = bytes(value)
    else:
        assert f.message is not None
        payload = encode(f.message, value)
    return encode_varint(len(payload)) + payload


def encode(message_type: MessageType, value: Mapping[str, Any]) -> bytes:
    """Serialize ``value`` (field name -> value) in field-number order.

    Absent keys, proto3 defaults (0, False, "", b""), empty lists and ``None`` messages are
    not written at all.
    """
    out = bytearray()
    for f in sorted(message_type.fields, key=lambda f: f.number):
        item = value.get(f.name)
        if f.repeated:
            items = list(item or ())
            if not items:
                continue
            if f.type in NUMERIC and f.packed:
                payload = b"".join(encode_varint(_scalar_to_varint(f, v)) for v in items)
                out += _tag(f.number, LEN) + encode_varint(len(payload)) + payload
            elif f.type in NUMERIC:
                for v in items:
                    out += _tag(f.number, VARINT) + encode_varint(_scalar_to_varint(f, v))
            else:
                for v in items:
                    out += _tag(f.number, LEN) + _length_delimited(f, v)
        elif item is None or (f.type != "message" and item == f.default()):
            continue
        elif f.type in NUMERIC:
            out += _tag(f.number, VARINT) + encode_varint(_scalar_to_varint(f, item))
        else:
            out += _tag(f.number, LEN) + _length_delimited(f, item)
    return bytes(out)


# --- decoding ----------------------------------------------------------------------------


def _varint_to_scalar(f: Field, raw: int) -> Any:
    if f.type == "bool":
        return raw != 0
    if f.type in ("sint32", "sint64"):
        value = zigzag_decode(raw)
        return value if f.type == "sint64" else _signed(value & 0xFFFFFFFF, 32)
    if f.type == "uint64":
        return raw
    if f.type == "uint32":
        return raw & 0xFFFFFFFF
    # int32 and enum keep the low 32 bits, int64 all 64, read as two's complement.
    bits = 64 if f.type == "int64" else 32
    return _signed(raw & ((1 << bits) - 1), bits)


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


def _skip(data: bytes, pos: int, wire_type: int) -> int:
    """The position after an unknown field's payload."""
    if wire_type == VARINT:
        return decode_varint(data, pos)[1]
    if wire_type == I64:
        end = pos + 8
    elif wire_type == I32:
        end = pos + 4
    elif wire_type == LEN:
        length, pos = decode_varint(data, pos)
        end = pos + length
    else:
        # Groups (3, 4) are deprecated and not supported here; 6 and 7 do not exist.
        raise DecodeError(f"unsupported wire type {wire_type}")
    if end > len(data):
        raise DecodeError("truncated field")
    return end


def decode(message_type: MessageType, data: bytes) -> dict[str, Any]:
    """Parse ``data`` into a dict with every field of ``message_type``.

    Absent fields take their defaults (``None`` for a message). A repeated numeric field
    accepts packed and unpacked records alike; for a scalar the last record wins; records
    of a message field merge (they are decoded as one concatenated message). Unknown field
    numbers, and known ones with an unexpected wire type, are skipped.
    """
    data = bytes(data)
    result: dict[str, Any] = {f.name: f.default() for f in message_type.fields}
    pending: dict[str, bytes] = {}  # raw bytes of each singular message field, concatenated
    pos = 0
    while pos < len(data):
        key, pos = decode_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        f = message_type.by_number.get(number)
        if f is None or not _wire_type_fits(f, wire_type):
            pos = _skip(data, pos, wire_type)
            continue
        if wire_type == VARINT:
            raw, pos = decode_varint(data, pos)
            if f.repeated:
                result[f.name].append(_varint_to_scalar(f, raw))
            else:
                result[f.name] = _varint_to_scalar(f, raw)
            continue
        length, pos = decode_varint(data, pos)
        end = pos + length
        if end > len(data):
            raise DecodeError(f"{f.name}: length {length} runs past the end")
        payload = data[pos:end]
        pos = end
        if f.type in NUMERIC:  # a packed run of varints
            at = 0
            while at < len(payload):
                raw, at = decode_varint(payload, at)
                result[f.name].append(_varint_to_scalar(f, raw))
        elif f.type == "message" and not f.repeated:
            pending[f.name] = pending.get(f.name, b"") + payload
        else:
            item = _decode_length_delimited(f, payload)
            if f.repeated:
                result[f.name].append(item)
            else:
                result[f.name] = item
    for f in message_type.fields:
        if f.name in pending:
            result[f.name] = _decode_length_delimited(f, pending[f.name])
    return result


def _wire_type_fits(f: Field, wire_type: int) -> bool:
    if f.type in NUMERIC:
        return wire_type == VARINT or (f.repeated and wire_type == LEN)
    return wire_type == LEN


def _decode_length_delimited(f: Field, payload: bytes) -> Any:
    if f.type == "bytes":
        return payload
    if f.type == "string":
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{f.name}: a string must be valid UTF-8") from None
    assert f.message is not None
    return decode(f.message, payload)

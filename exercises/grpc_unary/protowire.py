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
schema doesn't know.

Standard library only. See README.md for the rules in full.
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
NUMERIC = frozenset({"int32", "int64", "uint32", "uint64", "sint32", "sint64", "enum", "bool"})
TYPES = NUMERIC | {"string", "bytes", "message"}


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the message type."""


# The schema classes are given: they are data, not the exercise.


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


def encode_varint(value: int) -> bytes:
    """Encode 0 <= value < 2**64 as a base-128 varint; raise ValueError outside that range.

    TODO: 7 bits per byte, least significant group first.
    TODO: set the top bit (0x80) on every byte except the last.
    TODO: 0 is one byte, 0x00; 2**64 - 1 is ten bytes.
    """
    raise NotImplementedError


def decode_varint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """Read one varint at ``pos``; return (value, position just after it).

    TODO: raise DecodeError if the data ends before a byte without the top bit.
    TODO: raise DecodeError for a varint longer than 10 bytes.
    TODO: keep the low 64 bits of the value.
    """
    raise NotImplementedError


def zigzag_encode(value: int) -> int:
    """Map a signed 64-bit integer to an unsigned one: 0, -1, 1, -2, 2 -> 0, 1, 2, 3, 4.

    TODO: n >= 0 -> 2n; n < 0 -> 2|n| - 1.
    """
    raise NotImplementedError


def zigzag_decode(value: int) -> int:
    """The inverse of ``zigzag_encode``.

    TODO: even -> value // 2; odd -> -(value + 1) // 2.
    """
    raise NotImplementedError


def encode(message_type: MessageType, value: Mapping[str, Any]) -> bytes:
    """Serialize ``value`` (a dict: field name -> value) as ``message_type``.

    Values: ints for the integer types and enums, bool, str, bytes, a dict for a nested
    message (or None: absent), a list for a repeated field.

    TODO: write fields in field-number order; each record is tag = varint(number << 3 | wire type),
          then the payload.
    TODO: proto3 implicit presence: skip a missing key, 0, False, "", b"", None and [].
    TODO: int32/int64/enum: negative values are sign-extended to 64 bits (ten bytes).
    TODO: sint32/sint64: zigzag first. bool: 1 or 0.
    TODO: string (UTF-8), bytes and nested messages: wire type 2, varint length, payload.
    TODO: repeated numeric fields: one packed LEN record with every varint, unless the Field
          says packed=False (then one VARINT record per element); other repeated fields: one
          record per element.
    TODO: a number its type cannot hold (int32 2**31, uint32 -1, ...) raises ValueError.
    """
    raise NotImplementedError


def decode(message_type: MessageType, data: bytes) -> dict[str, Any]:
    """Parse ``data`` as ``message_type``; return a dict with EVERY field of the schema.

    Absent fields take their default: 0, False, "", b"", [] and None for a nested message.

    TODO: read tag varints; field number 0 and wire types 6 and 7 are DecodeError.
    TODO: int32 and enum keep the low 32 bits of the varint as a signed number; uint32 the low
          32 bits; int64 the low 64 bits, signed; sint32/sint64 zigzag; bool is varint != 0.
    TODO: a repeated numeric field accepts both packed (LEN) and unpacked (VARINT) records.
    TODO: a scalar seen twice: the last value wins. A nested message seen twice: merge (the
          second's fields override; hint: decode the two payloads concatenated).
    TODO: skip unknown fields of wire types 0, 1 (8 bytes), 2 and 5 (4 bytes); a known field
          with an unexpected wire type is skipped as unknown too.
    TODO: strings must be valid UTF-8; truncated input of any kind raises DecodeError (never
          IndexError, never a partial result).
    """
    raise NotImplementedError

"""Hidden specs for wal_recovery: the log record format (length, CRC-32, payload)."""

from __future__ import annotations

import struct
import zlib

import pytest
from _helpers import oracle_payload, oracle_record
from hypothesis import example, given
from hypothesis import strategies as st
from wal_recovery import decode_records, encode_changes, encode_record

from grader.spectools import called, short, step

PAYLOADS = [b"x", b'{"a":"1"}', bytes(range(256)), "é日本".encode(), b"\x00" * 9]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "payload", PAYLOADS, ids=["one-byte", "json", "all-bytes", "utf8", "zeros"]
)
def test_record_is_length_crc32_payload(payload):
    """A record is the payload's length (4 bytes, big-endian), its CRC-32 (4 bytes, big-endian), then the payload."""
    with step(f"encode_record({short(payload, 40)})"):
        got = encode_record(payload)
    want = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    assert got == want, called(f"encode_record({short(payload, 40)})", got, want)


def test_empty_payload_is_refused():
    """encode_record(b"") raises ValueError: a record's payload is never empty (length 0 marks a zero-filled tail)."""
    try:
        got = encode_record(b"")
    except ValueError:
        return
    raise AssertionError(called('encode_record(b"")', got, "ValueError"))


@pytest.mark.points(2)
@given(st.lists(st.binary(min_size=1, max_size=40), max_size=6))
@example([])
@example([b"a"])
@example([b"\x00"] * 3)
def test_decode_reads_back_every_record(payloads):
    """decode_records returns every payload of a well-formed log, in order, and the log's length as the end."""
    log = b"".join(oracle_record(p) for p in payloads)
    with step(f"decode_records({short(log, 60)})"):
        got = decode_records(log)
    want = (payloads, len(log))
    assert tuple(got) == want, called(f"decode_records({short(log, 60)})", got, want)


@pytest.mark.points(3)
def test_decode_stops_at_a_torn_record_at_every_byte():
    """A log cut at any byte yields exactly the records wholly before the cut, and the end of the last of them."""
    payloads = [b'{"a":"1"}', b'{"b":"22"}', b'{"c":null}']
    log = b"".join(oracle_record(p) for p in payloads)
    bounds = [0]
    for p in payloads:
        bounds.append(bounds[-1] + 8 + len(p))
    for cut in range(len(log) + 1):
        whole = max(i for i, b in enumerate(bounds) if b <= cut)
        want = (payloads[:whole], bounds[whole])
        with step(f"decode_records(log[:{cut}])"):
            got = decode_records(log[:cut])
        assert tuple(got) == want, called(
            f"decode_records(log[:{cut}]) of a {len(log)}-byte log", got, want
        )


@pytest.mark.points(3)
def test_decode_stops_at_the_first_corrupt_record():
    """A record whose CRC does not match ends the log: it and every record after it, valid or not, are ignored."""
    payloads = [b'{"a":"1"}', b'{"b":"2"}', b'{"c":"3"}']
    records = [oracle_record(p) for p in payloads]
    first = len(records[0])
    for offset in range(len(records[1])):
        middle = bytearray(records[1])
        middle[offset] ^= 0x01
        log = records[0] + bytes(middle) + records[2]
        with step(f"decode_records(log with byte {offset} of record 2 flipped)"):
            got = decode_records(log)
        want = (payloads[:1], first)
        assert tuple(got) == want, called(
            f"decode_records(log with byte {offset} of record 2 flipped)", got, want
        )


def test_zero_filled_tail_is_not_a_record():
    """Zero bytes after the last record (a size that reached the disk before the data) are not a record."""
    log = oracle_record(b"x") + bytes(20)
    with step("decode_records(record + 20 zero bytes)"):
        got = decode_records(log)
    want = ([b"x"], 9)
    assert tuple(got) == want, called("decode_records(record + 20 zero bytes)", got, want)


def test_length_past_the_end_is_torn():
    """A header whose length runs past the end of the log is a torn record, not a short one."""
    log = oracle_record(b"x") + struct.pack(">II", 1000, zlib.crc32(b"abc")) + b"abc"
    with step("decode_records(record + header claiming 1000 bytes + 3 bytes)"):
        got = decode_records(log)
    want = ([b"x"], 9)
    assert tuple(got) == want, called(
        "decode_records(record + a header claiming 1000 bytes)", got, want
    )


CHANGES = [
    ({"a": "1"}, "one key"),
    ({"b": "2", "a": None}, "sorted, null deletes"),
    ({"é": "日本", "k": ""}, "utf8 not escaped"),
    ({"q": 'say "hi"\\n'}, "escapes"),
]


@pytest.mark.parametrize("changes", [c for c, _ in CHANGES], ids=[i for _, i in CHANGES])
def test_changes_are_compact_sorted_utf8_json(changes):
    """encode_changes is the compact JSON of the changes, keys sorted, non-ASCII as UTF-8 (not escaped)."""
    with step(f"encode_changes({changes!r})"):
        got = encode_changes(changes)
    want = oracle_payload(changes)
    assert got == want, called(f"encode_changes({changes!r})", got, want)

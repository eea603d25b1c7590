"""Hidden specs for the record layer (RFC 8446 §5): framing, limits, protection, padding."""

from __future__ import annotations

import pytest
from _helpers import (
    APPLICATION_PAYLOAD,
    CLIENT_AP_IV,
    CLIENT_AP_KEY,
    CLIENT_APPLICATION_RECORD,
    CLIENT_FINISHED,
    CLIENT_FINISHED_RECORD,
    CLIENT_HS_IV,
    CLIENT_HS_KEY,
    SERVER_AP_IV,
    SERVER_AP_KEY,
    SERVER_APPLICATION_RECORD,
    SERVER_DATA,
    SERVER_FLIGHT,
    SERVER_FLIGHT_RECORD,
    SERVER_HELLO,
    SERVER_HELLO_RECORD,
    SERVER_HS_IV,
    SERVER_HS_KEY,
    attempt,
    expect_alert,
    expect_value_error,
    hx,
    oracle_seal,
    record_with_length,
    said,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tls13_key_schedule import Record, TrafficKeys, decrypt_record, encrypt_record, split_records

from grader.spectools import step

SERVER_HS = TrafficKeys(SERVER_HS_KEY, SERVER_HS_IV)
CLIENT_HS = TrafficKeys(CLIENT_HS_KEY, CLIENT_HS_IV)
CLIENT_AP = TrafficKeys(CLIENT_AP_KEY, CLIENT_AP_IV)
SERVER_AP = TrafficKeys(SERVER_AP_KEY, SERVER_AP_IV)
KEY = TrafficKeys(bytes(range(16)), bytes(range(100, 112)))


def as_record(wire: bytes) -> Record:
    """A Record built from wire bytes by hand (independent of the learner's split_records)."""
    return Record(wire[0], int.from_bytes(wire[1:3], "big"), wire[5:])


def describe(records) -> list:
    return [(r.content_type, hex(r.legacy_version), len(r.fragment)) for r in records]


# --- framing ---------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_split_records_rfc_trace():
    """split_records cuts the server's bytes of RFC 8448 §3 into the ServerHello record and the protected flight record."""
    call = "split_records(<ServerHello record + protected flight record>)"
    with step(call):
        records, tail = split_records(SERVER_DATA)
        got = [(r.content_type, r.legacy_version, r.fragment) for r in records]
    want = [(22, 0x0303, SERVER_HELLO), (23, 0x0303, SERVER_FLIGHT_RECORD[5:])]
    assert got == want and tail == b"", said(
        call, (describe(records), tail), "[(22, '0x303', 90), (23, '0x303', 674)], tail b''"
    )


@pytest.mark.points(2)
@settings(max_examples=40)
@given(cuts=st.lists(st.integers(0, len(SERVER_DATA)), max_size=6))
@example(cuts=[1])
@example(cuts=[4, 5])  # the header boundary
@example(cuts=[5, 6, 95])  # the first record ends at 95
@example(cuts=[96, 99, 100, 101])  # the second header, byte by byte
@example(cuts=list(range(0, 20)))
def test_split_records_any_chunking(cuts):
    """Fed the same bytes in any chunks (carrying the tail over), split_records yields the same records."""
    points = sorted(set(cuts)) + [len(SERVER_DATA)]
    buffer, records, start = b"", [], 0
    for point in points:
        buffer += SERVER_DATA[start:point]
        start = point
        with step(
            f"split_records(<{len(buffer)} buffered bytes>) with chunks cut at {points[:-1]}"
        ):
            found, buffer = split_records(buffer)
        records += found
    got = [(r.content_type, r.fragment) for r in records]
    want = [(22, SERVER_HELLO), (23, SERVER_FLIGHT_RECORD[5:])]
    assert got == want and buffer == b"", said(
        f"split_records over chunks cut at {points[:-1]}",
        (describe(records), buffer),
        "the two records, no tail",
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("content_type", "length"),
    [(22, 2**14), (22, 2**14 - 1), (23, 2**14 + 256), (23, 2**14 + 255)],
    ids=[
        "handshake 2**14",
        "handshake 2**14-1",
        "application_data 2**14+256",
        "application_data 2**14+255",
    ],
)
def test_split_records_accepts_the_limit(content_type, length):
    """A record exactly at its length limit (2**14 plaintext, 2**14 + 256 protected) is accepted (RFC 8446 §5.1, §5.2)."""
    wire = record_with_length(content_type, length, fill=1)
    call = f"split_records(<type {content_type} record of {length} bytes>)"
    got = attempt(call, split_records, wire)
    ok = isinstance(got, tuple) and [(r.content_type, len(r.fragment)) for r in got[0]] == [
        (content_type, length)
    ]
    assert ok and got[1] == b"", said(call, got, f"one record of {length} bytes")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("content_type", "length"),
    [(22, 2**14 + 1), (21, 2**14 + 1), (23, 2**14 + 257)],
    ids=["handshake 2**14+1", "alert 2**14+1", "application_data 2**14+257"],
)
def test_split_records_overflow(content_type, length):
    """A record header announcing more than the limit is a record_overflow, raised from the header alone (RFC 8446 §5.1, §5.2)."""
    header_only = record_with_length(content_type, length)[:5]
    call = f"split_records(<header of a type {content_type} record of {length} bytes, no body yet>)"
    expect_alert(call, "record_overflow", split_records, header_only)


@pytest.mark.points(1)
@pytest.mark.parametrize("content_type", [0, 24, 255], ids=["0", "24", "255"])
def test_split_records_unknown_type(content_type):
    """A record of an unknown content type is an unexpected_message (RFC 8446 §5)."""
    call = f"split_records(<record of content type {content_type}>)"
    expect_alert(call, "unexpected_message", split_records, record_with_length(content_type, 3))


# --- protection --------------------------------------------------------------------------------

RFC_RECORDS = [
    ("server flight", SERVER_HS, 0, SERVER_FLIGHT_RECORD, 22, SERVER_FLIGHT),
    ("client Finished", CLIENT_HS, 0, CLIENT_FINISHED_RECORD, 22, CLIENT_FINISHED),
    ("client application data", CLIENT_AP, 0, CLIENT_APPLICATION_RECORD, 23, APPLICATION_PAYLOAD),
    (
        "server application data at seq 1",
        SERVER_AP,
        1,
        SERVER_APPLICATION_RECORD,
        23,
        APPLICATION_PAYLOAD,
    ),
]


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("what", "keys", "seq", "wire", "ctype", "content"),
    RFC_RECORDS,
    ids=[r[0] for r in RFC_RECORDS],
)
def test_decrypt_rfc8448_records(what, keys, seq, wire, ctype, content):
    """decrypt_record opens RFC 8448 §3's protected records: real content type and content (RFC 8446 §5.2)."""
    call = f"decrypt_record(<{what} keys>, {seq}, <RFC 8448 {what} record>)"
    got = attempt(call, decrypt_record, keys, seq, as_record(wire))
    assert got == (ctype, content), said(call, got, (ctype, content))


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("what", "keys", "seq", "wire", "ctype", "content"),
    RFC_RECORDS,
    ids=[r[0] for r in RFC_RECORDS],
)
def test_encrypt_reproduces_rfc8448_records(what, keys, seq, wire, ctype, content):
    """encrypt_record reproduces RFC 8448 §3's protected records byte for byte (RFC 8446 §5.2, §5.3)."""
    call = f"encrypt_record(<{what} keys>, {seq}, {ctype}, <{len(content)} bytes>)"
    got = attempt(call, encrypt_record, keys, seq, ctype, content)
    assert got == wire, said(call, got, wire)


@pytest.mark.points(2)
@pytest.mark.parametrize("seq", [0, 2, 2**64 - 1], ids=["0", "2", "2**64-1"])
def test_decrypt_wrong_sequence_number(seq):
    """A record opened under the wrong sequence number fails with bad_record_mac (RFC 8446 §5.2, §5.3)."""
    call = f"decrypt_record(<server application keys>, {seq}, <RFC record sealed at sequence 1>)"
    expect_alert(
        call, "bad_record_mac", decrypt_record, SERVER_AP, seq, as_record(SERVER_APPLICATION_RECORD)
    )


@pytest.mark.points(2)
@settings(max_examples=30)
@given(position=st.integers(1, len(CLIENT_FINISHED_RECORD) - 1), flip=st.integers(1, 255))
@example(position=1, flip=1)  # legacy_record_version: part of the additional data
@example(position=2, flip=0x02)
@example(position=5, flip=1)  # first ciphertext byte
@example(position=len(CLIENT_FINISHED_RECORD) - 1, flip=0x80)  # last tag byte
def test_decrypt_tampered_record(position, flip):
    """Changing any byte of a protected record, header included (it is the additional data), gives bad_record_mac (RFC 8446 §5.2)."""
    wire = bytearray(CLIENT_FINISHED_RECORD)
    if position in (3, 4):  # the length field can't be changed without changing the fragment
        position = 5
    wire[position] ^= flip
    call = f"decrypt_record(<client hs keys>, 0, <client Finished record with byte {position} ^ {flip:#04x}>)"
    expect_alert(call, "bad_record_mac", decrypt_record, CLIENT_HS, 0, as_record(bytes(wire)))


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("ctype", "content", "pad"),
    [
        (23, b"hello", 0),
        (23, b"hello", 1),
        (23, b"hello", 300),
        (21, b"\x01\x00", 7),
        (22, b"\x14\x00\x00\x00", 2),
        (23, b"ends with zeros\x00\x00\x00", 4),
        (23, b"", 10),
    ],
    ids=[
        "no padding",
        "1 byte",
        "300 bytes",
        "alert",
        "handshake",
        "content ending in zeros",
        "empty application data",
    ],
)
def test_decrypt_strips_padding(ctype, content, pad):
    """The content type is the last non-zero byte of the plaintext; zero padding after it is removed, the content's own zeros kept (RFC 8446 §5.4)."""
    wire = oracle_seal(KEY.key, KEY.iv, 7, ctype, content, pad)
    call = f"decrypt_record(keys, 7, <type {ctype}, {content!r}, {pad} bytes of padding>)"
    got = attempt(call, decrypt_record, KEY, 7, as_record(wire))
    assert got == (ctype, content), said(call, got, (ctype, content))


@pytest.mark.points(1)
@pytest.mark.parametrize("size", [0, 1, 50], ids=["empty", "one zero", "50 zeros"])
def test_decrypt_all_padding(size):
    """A plaintext with no non-zero byte (no content type) is an unexpected_message (RFC 8446 §5.4)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header = bytes([23, 3, 3]) + (size + 16).to_bytes(2, "big")
    wire = header + AESGCM(KEY.key).encrypt(KEY.iv, bytes(size), header)
    call = f"decrypt_record(keys, 0, <record whose plaintext is {size} zero bytes>)"
    expect_alert(call, "unexpected_message", decrypt_record, KEY, 0, as_record(wire))


@pytest.mark.points(1)
@pytest.mark.parametrize("ctype", [22, 21], ids=["handshake", "alert"])
def test_decrypt_empty_handshake_or_alert(ctype):
    """A handshake or alert record with empty content is an unexpected_message (RFC 8446 §5.4)."""
    wire = oracle_seal(KEY.key, KEY.iv, 0, ctype, b"", 3)
    call = f"decrypt_record(keys, 0, <type {ctype} record with empty content>)"
    expect_alert(call, "unexpected_message", decrypt_record, KEY, 0, as_record(wire))


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("content_len", "pad", "ok"),
    [
        (2**14, 0, True),
        (2**14 - 1, 1, True),
        (2**14, 1, False),
        (2**14 + 1, 0, False),
        (2**14 - 1, 0, True),
    ],
    ids=[
        "2**14+1 exactly",
        "2**14+1 with padding",
        "2**14+2 by padding",
        "2**14+2 by content",
        "2**14, one below",
    ],
)
def test_decrypt_inner_plaintext_limit(content_len, pad, ok):
    """The decrypted TLSInnerPlaintext may be 2**14 + 1 bytes, padding included; more is a record_overflow (RFC 8446 §5.4)."""
    content = b"\x42" * content_len
    wire = oracle_seal(KEY.key, KEY.iv, 0, 23, content, pad)
    call = f"decrypt_record(keys, 0, <inner plaintext of {content_len + 1 + pad} bytes>)"
    if ok:
        got = attempt(call, decrypt_record, KEY, 0, as_record(wire))
        assert got == (23, content), said(call, got, f"(23, <{content_len} bytes>)")
    else:
        expect_alert(call, "record_overflow", decrypt_record, KEY, 0, as_record(wire))


@pytest.mark.points(1)
def test_decrypt_ciphertext_limit():
    """A protected fragment over 2**14 + 256 bytes is a record_overflow before decryption; at the limit, it is only a bad MAC (RFC 8446 §5.2)."""
    over = Record(23, 0x0303, bytes(2**14 + 257))
    expect_alert(
        "decrypt_record(keys, 0, <2**14+257 byte fragment>)",
        "record_overflow",
        decrypt_record,
        KEY,
        0,
        over,
    )
    at = Record(23, 0x0303, bytes(2**14 + 256))
    expect_alert(
        "decrypt_record(keys, 0, <2**14+256 byte fragment of zeros>)",
        "bad_record_mac",
        decrypt_record,
        KEY,
        0,
        at,
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("ctype", [22, 21, 20], ids=["handshake", "alert", "change_cipher_spec"])
def test_decrypt_requires_application_data_type(ctype):
    """A protected record whose outer type is not application_data (23) is an unexpected_message (RFC 8446 §5.2)."""
    wire = bytearray(CLIENT_FINISHED_RECORD)
    wire[0] = ctype
    expect_alert(
        f"decrypt_record(<client hs keys>, 0, <record of outer type {ctype}>)",
        "unexpected_message",
        decrypt_record,
        CLIENT_HS,
        0,
        as_record(bytes(wire)),
    )


@pytest.mark.points(1)
def test_encrypt_inner_plaintext_limit():
    """encrypt_record seals 2**14 bytes of content, and raises ValueError when content + type + padding exceeds 2**14 + 1."""
    content = b"\x01" * 2**14
    call = "encrypt_record(keys, 0, 23, <2**14 bytes>)"
    got = attempt(call, encrypt_record, KEY, 0, 23, content)
    want = oracle_seal(KEY.key, KEY.iv, 0, 23, content)
    assert got == want, said(call, got, want)
    expect_value_error(
        "encrypt_record(keys, 0, 23, <2**14 bytes>, padding=1)",
        encrypt_record,
        KEY,
        0,
        23,
        content,
        1,
    )


@pytest.mark.points(2)
@settings(max_examples=40)
@given(
    ctype=st.sampled_from([21, 22, 23]),
    content=st.binary(min_size=1, max_size=300),
    pad=st.integers(0, 64),
    seq=st.integers(0, 2**64 - 1),
)
@example(ctype=23, content=b"x", pad=0, seq=0)
@example(ctype=22, content=b"\x00" * 5, pad=5, seq=2**64 - 1)
def test_encrypt_matches_oracle_and_round_trips(ctype, content, pad, seq):
    """encrypt_record equals cryptography's AES-GCM sealing of content | type | zeros, and decrypt_record opens it again."""
    want = oracle_seal(KEY.key, KEY.iv, seq, ctype, content, pad)
    call = f"encrypt_record(keys, {seq}, {ctype}, {hx(content)}, {pad})"
    with step(call):
        got = encrypt_record(KEY, seq, ctype, content, pad)
    assert got == want, said(call, got, want)
    call = f"decrypt_record(keys, {seq}, <that record>)"
    with step(call):
        opened = decrypt_record(KEY, seq, as_record(want))
    assert opened == (ctype, content), said(call, opened, (ctype, content))


@pytest.mark.points(1)
def test_record_header_and_bytes():
    """Record.header() is type, legacy_version and length; Record.to_bytes() is the header then the fragment."""
    record = Record(22, 0x0303, SERVER_HELLO)
    with step("Record(22, 0x0303, <ServerHello>).to_bytes()"):
        got = record.to_bytes()
        header = record.header()
    assert got == SERVER_HELLO_RECORD and header == SERVER_HELLO_RECORD[:5], said(
        "Record(22, 0x0303, <ServerHello>).to_bytes()", got, SERVER_HELLO_RECORD
    )

"""Hidden specs for the handshake's shape: messages, ServerHello, and the client's side of RFC 8448 §3."""

from __future__ import annotations

import pytest
from _helpers import (
    CCS_RECORD,
    CERTIFICATE,
    CERTIFICATE_VERIFY,
    CLIENT_AP_TRAFFIC,
    CLIENT_FINISHED,
    CLIENT_FINISHED_RECORD,
    CLIENT_HELLO,
    CLIENT_HS_TRAFFIC,
    EARLY_SECRET,
    ENCRYPTED_EXTENSIONS,
    EXPORTER_MASTER,
    HANDSHAKE_SECRET,
    MASTER_SECRET,
    RESUMPTION_MASTER,
    SERVER_AP_TRAFFIC,
    SERVER_DATA,
    SERVER_FINISHED,
    SERVER_FLIGHT,
    SERVER_FLIGHT_RECORD,
    SERVER_HELLO,
    SERVER_HELLO_RECORD,
    SERVER_HS_IV,
    SERVER_HS_KEY,
    SERVER_HS_TRAFFIC,
    SHARED_SECRET,
    Raised,
    attempt,
    expect_alert,
    expect_value_error,
    hx,
    oracle_seal,
    said,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tls13_key_schedule import client_handshake, parse_handshake_messages, parse_server_hello

from grader.spectools import step

FLIGHT_MESSAGES = [ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY, SERVER_FINISHED]


def sealed_flight(*chunks: bytes) -> bytes:
    """The server's handshake bytes sealed as consecutive records (sequence 0, 1, ...)."""
    return b"".join(
        oracle_seal(SERVER_HS_KEY, SERVER_HS_IV, seq, 22, chunk) for seq, chunk in enumerate(chunks)
    )


def handshake_with(server_data: bytes, what: str = "RFC 8448 server data"):
    """client_handshake on the RFC ClientHello and shared secret; a spec failure if it raises."""
    call = f"client_handshake(<RFC 8448 ClientHello>, <{what}>, <shared secret>)"
    result = attempt(call, client_handshake, CLIENT_HELLO, server_data, SHARED_SECRET)
    assert not isinstance(result, Raised), said(call, result, "a ClientHandshake")
    return call, result


def server_hello_with(**edits: bytes) -> bytes:
    """The RFC ServerHello record with some bytes replaced: {"offset_N": new bytes}."""
    body = bytearray(SERVER_HELLO)
    for key, value in edits.items():
        offset = int(key.split("_")[1])
        body[offset : offset + len(value)] = value
    return bytes([22, 3, 3]) + len(body).to_bytes(2, "big") + bytes(body)


# --- handshake messages ---------------------------------------------------------------------


@pytest.mark.points(2)
def test_parse_server_flight_messages():
    """parse_handshake_messages cuts the decrypted flight into EncryptedExtensions, Certificate, CertificateVerify, Finished (RFC 8446 §4)."""
    call = "parse_handshake_messages(<the 657-byte decrypted server flight>)"
    with step(call):
        messages, tail = parse_handshake_messages(SERVER_FLIGHT)
        got = [(m.msg_type, m.raw) for m in messages]
    want = [
        (8, ENCRYPTED_EXTENSIONS),
        (11, CERTIFICATE),
        (15, CERTIFICATE_VERIFY),
        (20, SERVER_FINISHED),
    ]
    assert got == want and tail == b"", said(
        call, ([t for t, _ in got], tail), "types [8, 11, 15, 20] with their bytes, no tail"
    )
    with step("HandshakeMessage.body"):
        bodies = [m.body for m in messages]
    assert bodies == [m[4:] for m in FLIGHT_MESSAGES], said(
        call + "[i].body", bodies[0], ENCRYPTED_EXTENSIONS[4:]
    )


@pytest.mark.points(2)
@settings(max_examples=40)
@given(cuts=st.lists(st.integers(0, len(SERVER_FLIGHT)), max_size=5))
@example(cuts=[1, 2, 3])  # inside the first header
@example(cuts=[4])  # header complete, body missing
@example(cuts=[40])  # exactly between two messages
@example(cuts=[41, 43, 44])
@example(cuts=[656])  # all but the last byte
def test_parse_messages_split_anywhere(cuts):
    """Handshake messages split across records at any byte are reassembled: incomplete bytes come back as the tail."""
    points = sorted(set(cuts)) + [len(SERVER_FLIGHT)]
    pending, messages, start = b"", [], 0
    for point in points:
        pending += SERVER_FLIGHT[start:point]
        start = point
        with step(
            f"parse_handshake_messages(<{len(pending)} bytes>) with the flight cut at {points[:-1]}"
        ):
            found, pending = parse_handshake_messages(pending)
        messages += [m.raw for m in found]
    assert messages == FLIGHT_MESSAGES and pending == b"", said(
        f"parse_handshake_messages over the flight cut at {points[:-1]}",
        f"{len(messages)} messages, tail {hx(pending)}",
        "the 4 messages, no tail",
    )


@pytest.mark.points(2)
def test_parse_server_hello_rfc8448():
    """parse_server_hello reads RFC 8448's ServerHello: random, empty session id, 0x1301, key_share and supported_versions (RFC 8446 §4.1.3)."""
    call = "parse_server_hello(<RFC 8448 ServerHello body>)"
    with step(call):
        hello = parse_server_hello(SERVER_HELLO[4:])
        got = (hello.random, hello.legacy_session_id_echo, hello.cipher_suite, hello.extensions)
    want = (
        SERVER_HELLO[6:38],
        b"",
        0x1301,
        {51: bytes.fromhex("001d0020") + SERVER_HELLO[-38:-6], 43: b"\x03\x04"},
    )
    assert got == want, said(call, got, want)


@pytest.mark.points(1)
@settings(max_examples=30)
@given(cut=st.integers(0, len(SERVER_HELLO) - 5))
@example(cut=0)
@example(cut=34)  # inside the random
@example(cut=38)  # after the session id length
@example(cut=len(SERVER_HELLO) - 5)  # one byte short
def test_parse_server_hello_truncated(cut):
    """A ServerHello body cut short anywhere is a decode_error (RFC 8446 §6.2)."""
    body = SERVER_HELLO[4 : 4 + cut]
    expect_alert(
        f"parse_server_hello(<first {cut} bytes of the body>)",
        "decode_error",
        parse_server_hello,
        body,
    )


@pytest.mark.points(1)
def test_parse_server_hello_bad_fields():
    """Bytes after the extensions are a decode_error; a compression method other than 0 or a repeated extension is an illegal_parameter (RFC 8446 §4.1.3, §4.2)."""
    body = SERVER_HELLO[4:]
    expect_alert(
        "parse_server_hello(<body + 1 byte>)", "decode_error", parse_server_hello, body + b"\x00"
    )
    ext_start = 2 + 32 + 1 + 2 + 1  # legacy_version, random, session id (empty), suite, compression
    extensions = body[ext_start + 2 :]
    doubled = extensions + b"\x00\x2b\x00\x02\x03\x04"
    twice = body[:ext_start] + len(doubled).to_bytes(2, "big") + doubled
    compressed = body[:37] + b"\x01" + body[38:]
    expect_alert(
        "parse_server_hello(<legacy_compression_method 1>)",
        "illegal_parameter",
        parse_server_hello,
        compressed,
    )
    expect_alert(
        "parse_server_hello(<supported_versions twice>)",
        "illegal_parameter",
        parse_server_hello,
        twice,
    )


# --- the client's side of RFC 8448 §3 -----------------------------------------------------------

RESULT_GROUPS = {
    "handshake secrets": [
        ("handshake.early_secret", EARLY_SECRET),
        ("handshake.handshake_secret", HANDSHAKE_SECRET),
        ("handshake.client_handshake_traffic_secret", CLIENT_HS_TRAFFIC),
        ("handshake.server_handshake_traffic_secret", SERVER_HS_TRAFFIC),
    ],
    "application secrets": [
        ("application.master_secret", MASTER_SECRET),
        ("application.client_application_traffic_secret", CLIENT_AP_TRAFFIC),
        ("application.server_application_traffic_secret", SERVER_AP_TRAFFIC),
        ("application.exporter_master_secret", EXPORTER_MASTER),
    ],
    "client Finished and resumption": [
        ("client_finished.raw", CLIENT_FINISHED),
        ("resumption_master_secret", RESUMPTION_MASTER),
    ],
}


def field_of(result, path: str):
    for name in path.split("."):
        result = getattr(result, name)
    return result


@pytest.mark.points(3)
@pytest.mark.parametrize("group", list(RESULT_GROUPS), ids=list(RESULT_GROUPS))
def test_client_handshake_rfc8448_secrets(group):
    """client_handshake computes every secret of RFC 8448 §3 from the wire bytes and the shared secret."""
    call, result = handshake_with(SERVER_DATA)
    for field, want in RESULT_GROUPS[group]:
        with step(f"{call}.{field}"):
            got = field_of(result, field)
        assert got == want, said(f"{call}.{field}", got, want)


@pytest.mark.points(4)
def test_client_handshake_finished_record():
    """client_handshake's client Finished record is RFC 8448 §3's, byte for byte."""
    call, result = handshake_with(SERVER_DATA)
    with step(f"{call}.client_finished_record"):
        got = result.client_finished_record
    assert got == CLIENT_FINISHED_RECORD, said(
        f"{call}.client_finished_record", got, CLIENT_FINISHED_RECORD
    )


@pytest.mark.points(2)
def test_client_handshake_transcript():
    """client_handshake returns the transcript: ClientHello, ServerHello, EncryptedExtensions, Certificate, CertificateVerify, Finished."""
    call, result = handshake_with(SERVER_DATA)
    with step(f"{call}.transcript"):
        got = [m.raw for m in result.transcript]
    want = [CLIENT_HELLO, SERVER_HELLO] + FLIGHT_MESSAGES
    assert got == want, said(
        f"{call}.transcript", [hx(m)[:12] for m in got], [hx(m)[:12] for m in want]
    )


@pytest.mark.points(2)
def test_client_handshake_drops_change_cipher_spec():
    """A change_cipher_spec record of one byte 0x01 between the ServerHello and the flight is dropped (RFC 8446 §5)."""
    data = SERVER_HELLO_RECORD + CCS_RECORD + SERVER_FLIGHT_RECORD
    call, result = handshake_with(data, "ServerHello, change_cipher_spec, flight")
    with step(f"{call}.client_finished_record"):
        got = result.client_finished_record
    assert got == CLIENT_FINISHED_RECORD, said(call, got, CLIENT_FINISHED_RECORD)


@pytest.mark.points(3)
@settings(max_examples=25)
@given(cuts=st.lists(st.integers(1, len(SERVER_FLIGHT) - 1), min_size=1, max_size=4, unique=True))
@example(cuts=[40, 485, 621])  # one message per record
@example(cuts=[2])  # a record holding only half a header
@example(cuts=[656])  # the last record holds one byte
@example(cuts=[100, 101, 102])
def test_client_handshake_flight_in_several_records(cuts):
    """The flight sealed in several records (sequence 0, 1, 2...) and split mid-message gives the same client Finished."""
    points = [0] + sorted(cuts) + [len(SERVER_FLIGHT)]
    chunks = [SERVER_FLIGHT[a:b] for a, b in zip(points, points[1:], strict=False)]
    what = f"flight sealed in {len(chunks)} records cut at {sorted(cuts)}"
    call, result = handshake_with(SERVER_HELLO_RECORD + sealed_flight(*chunks), what)
    with step(f"{call}.client_finished_record"):
        got = result.client_finished_record
    assert got == CLIENT_FINISHED_RECORD, said(call, got, CLIENT_FINISHED_RECORD)


@pytest.mark.points(3)
@pytest.mark.parametrize(
    ("offset", "what"),
    [
        (40 + 100, "certificate"),
        (485 + 20, "CertificateVerify signature"),
        (5, "EncryptedExtensions"),
    ],
    ids=["certificate", "signature", "encrypted extensions"],
)
def test_client_handshake_tampered_flight(offset, what):
    """A flight altered before sealing (so every record authenticates) fails the Finished check with decrypt_error (RFC 8446 §4.4.4)."""
    flight = bytearray(SERVER_FLIGHT)
    flight[offset] ^= 0x01
    data = SERVER_HELLO_RECORD + sealed_flight(bytes(flight))
    expect_alert(
        f"client_handshake(..., <flight with one byte of the {what} changed, resealed>, ...)",
        "decrypt_error",
        client_handshake,
        CLIENT_HELLO,
        data,
        SHARED_SECRET,
    )


@pytest.mark.points(2)
def test_client_handshake_tampered_hello_or_record():
    """Another ClientHello, another shared secret or a flipped ciphertext byte gives other keys or a bad tag: bad_record_mac (RFC 8446 §5.2)."""
    other_hello = bytearray(CLIENT_HELLO)
    other_hello[10] ^= 0x01  # a byte of the client random
    expect_alert(
        "client_handshake(<ClientHello with one random byte changed>, ...)",
        "bad_record_mac",
        client_handshake,
        bytes(other_hello),
        SERVER_DATA,
        SHARED_SECRET,
    )
    expect_alert(
        "client_handshake(..., <another shared secret>)",
        "bad_record_mac",
        client_handshake,
        CLIENT_HELLO,
        SERVER_DATA,
        bytes(32),
    )
    flipped = bytearray(SERVER_DATA)
    flipped[-20] ^= 0x01
    expect_alert(
        "client_handshake(..., <server data with a ciphertext byte flipped>, ...)",
        "bad_record_mac",
        client_handshake,
        CLIENT_HELLO,
        bytes(flipped),
        SHARED_SECRET,
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("edits", "what"),
    [
        ({"offset_39": b"\x13\x02"}, "cipher suite 0x1302"),
        ({"offset_88": b"\x03\x03"}, "supported_versions 0x0303"),
    ],
    ids=["cipher suite 0x1302", "supported_versions TLS 1.2"],
)
def test_client_handshake_refuses_other_parameters(edits, what):
    """A ServerHello choosing another cipher suite or a version below TLS 1.3 is an illegal_parameter (RFC 8446 §4.1.3, §4.2.1)."""
    data = server_hello_with(**edits) + SERVER_FLIGHT_RECORD
    expect_alert(
        f"client_handshake(..., <ServerHello with {what}>, ...)",
        "illegal_parameter",
        client_handshake,
        CLIENT_HELLO,
        data,
        SHARED_SECRET,
    )


@pytest.mark.points(1)
def test_client_handshake_checks_the_session_id_echo():
    """A ServerHello whose legacy_session_id_echo differs from the ClientHello's session id is an illegal_parameter (RFC 8446 §4.1.3)."""
    body = SERVER_HELLO[4:]
    echoed = body[:34] + bytes([32]) + b"\x11" * 32 + body[35:]  # RFC 8448's ClientHello sent none
    message = bytes([2]) + len(echoed).to_bytes(3, "big") + echoed
    record = bytes([22, 3, 3]) + len(message).to_bytes(2, "big") + message
    expect_alert(
        "client_handshake(..., <ServerHello echoing a 32-byte session id>, ...)",
        "illegal_parameter",
        client_handshake,
        CLIENT_HELLO,
        record + SERVER_FLIGHT_RECORD,
        SHARED_SECRET,
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "client_hello",
    [b"", CLIENT_HELLO[:-1], CLIENT_HELLO + b"\x00", SERVER_HELLO],
    ids=["empty", "truncated", "trailing byte", "a ServerHello"],
)
def test_client_handshake_needs_one_client_hello(client_hello):
    """client_handshake raises ValueError when client_hello is not exactly one ClientHello message (the caller's mistake)."""
    call = f"client_handshake(<{len(client_hello)} bytes that are not one ClientHello>, ...)"
    expect_value_error(call, client_handshake, client_hello, SERVER_DATA, SHARED_SECRET)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "order",
    [
        [ENCRYPTED_EXTENSIONS, CERTIFICATE_VERIFY, CERTIFICATE, SERVER_FINISHED],
        [CERTIFICATE, ENCRYPTED_EXTENSIONS, CERTIFICATE_VERIFY, SERVER_FINISHED],
        [ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY],
        [ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY, SERVER_FINISHED, SERVER_FINISHED],
    ],
    ids=[
        "CertificateVerify before Certificate",
        "Certificate first",
        "no Finished",
        "two Finished",
    ],
)
def test_client_handshake_message_order(order):
    """The flight must be EncryptedExtensions, Certificate, CertificateVerify, Finished, nothing more: else unexpected_message (RFC 8446 §4)."""
    data = SERVER_HELLO_RECORD + sealed_flight(b"".join(order))
    expect_alert(
        "client_handshake(..., <flight out of order>, ...)",
        "unexpected_message",
        client_handshake,
        CLIENT_HELLO,
        data,
        SHARED_SECRET,
    )


@pytest.mark.points(1)
def test_client_handshake_wrong_records():
    """A first record that is not a handshake record, or application data inside the flight, is an unexpected_message (RFC 8446 §5)."""
    expect_alert(
        "client_handshake(..., <the flight record alone>, ...)",
        "unexpected_message",
        client_handshake,
        CLIENT_HELLO,
        SERVER_FLIGHT_RECORD,
        SHARED_SECRET,
    )
    data = SERVER_HELLO_RECORD + oracle_seal(SERVER_HS_KEY, SERVER_HS_IV, 0, 23, SERVER_FLIGHT)
    expect_alert(
        "client_handshake(..., <flight sealed as application data>, ...)",
        "unexpected_message",
        client_handshake,
        CLIENT_HELLO,
        data,
        SHARED_SECRET,
    )
    two_hellos = bytes([22, 3, 3]) + (2 * len(SERVER_HELLO)).to_bytes(2, "big") + SERVER_HELLO * 2
    expect_alert(
        "client_handshake(..., <two ServerHellos in one record>, ...)",
        "unexpected_message",
        client_handshake,
        CLIENT_HELLO,
        two_hellos + SERVER_FLIGHT_RECORD,
        SHARED_SECRET,
    )


@pytest.mark.points(1)
def test_client_handshake_truncated_data():
    """Server data that ends inside a record is a decode_error."""
    expect_alert(
        "client_handshake(..., <server data minus its last byte>, ...)",
        "decode_error",
        client_handshake,
        CLIENT_HELLO,
        SERVER_DATA[:-1],
        SHARED_SECRET,
    )

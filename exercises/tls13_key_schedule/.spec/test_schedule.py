"""Hidden specs for the TLS 1.3 key schedule (RFC 8446 §7) against RFC 8448 §3, value by value."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest
import tls13_key_schedule as kata
from _helpers import (
    APPLICATION_PAYLOAD,
    CERTIFICATE,
    CLIENT_AP_IV,
    CLIENT_AP_KEY,
    CLIENT_AP_TRAFFIC,
    CLIENT_APPLICATION_RECORD,
    CLIENT_FINISHED_KEY,
    CLIENT_HS_IV,
    CLIENT_HS_KEY,
    CLIENT_HS_TRAFFIC,
    CLIENT_VERIFY_DATA,
    DERIVED_FROM_EARLY,
    DERIVED_FROM_HANDSHAKE,
    EARLY_SECRET,
    EXPORTER_MASTER,
    HANDSHAKE_SECRET,
    HELLOS,
    MASTER_SECRET,
    RESUMED_BINDER_KEY,
    RESUMED_EARLY_SECRET,
    RESUMPTION_MASTER,
    RESUMPTION_PSK,
    SERVER_AP_IV,
    SERVER_AP_KEY,
    SERVER_AP_TRAFFIC,
    SERVER_FINISHED_KEY,
    SERVER_FLIGHT,
    SERVER_HS_IV,
    SERVER_HS_KEY,
    SERVER_HS_TRAFFIC,
    SERVER_VERIFY_DATA,
    SHARED_SECRET,
    THROUGH_CLIENT_FINISHED,
    THROUGH_CV,
    THROUGH_SERVER_FINISHED,
    Raised,
    attempt,
    expect_alert,
    expect_value_error,
    hx,
    oracle_label,
    oracle_schedule,
    said,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tls13_key_schedule import (
    application_secrets,
    binder_key,
    derive_secret,
    early_secret,
    finished_key,
    finished_verify_data,
    handshake_secrets,
    hkdf_expand_label,
    next_application_traffic_secret,
    record_nonce,
    resumption_master_secret,
    resumption_psk,
    traffic_keys,
    verify_finished,
)

from grader.spectools import step

# --- HKDF-Expand-Label and Derive-Secret --------------------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=60)
@given(
    secret=st.binary(min_size=32, max_size=32),
    label=st.binary(min_size=1, max_size=249),
    context=st.binary(max_size=255),
    length=st.integers(1, 600),
)
@example(secret=bytes(32), label=b"key", context=b"", length=16)
@example(secret=bytes(32), label=b"x", context=b"", length=1)  # shortest label: "tls13 x"
@example(secret=bytes(32), label=b"L" * 249, context=b"", length=32)  # longest: 255 bytes
@example(secret=bytes(32), label=b"c hs traffic", context=b"C" * 255, length=32)
@example(secret=bytes(32), label=b"traffic upd", context=b"", length=300)  # length > 255
def test_expand_label_matches_oracle(secret, label, context, length):
    """HKDF-Expand-Label builds HkdfLabel exactly as RFC 8446 §7.1 says (uint16 length, "tls13 " + label, context)."""
    want = oracle_label(secret, label, context, length)
    call = f"hkdf_expand_label(secret, {label!r:.40}, {hx(context)}, {length})"
    with step(call):
        got = hkdf_expand_label(secret, label, context, length)
    assert got == want, said(call, got, want)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("label", "context", "length"),
    [
        (b"", b"", 32),
        (b"L" * 250, b"", 32),
        (b"key", b"C" * 256, 32),
        (b"key", b"", 255 * 32 + 1),
        (b"key", b"", -1),
    ],
    ids=["empty label", "label of 250 bytes", "context of 256 bytes", "length 8161", "length -1"],
)
def test_expand_label_refuses_out_of_range(label, context, length):
    """HKDF-Expand-Label raises ValueError when "tls13 " + label is outside 7..255 bytes, context over 255, or length too long (RFC 8446 §7.1)."""
    call = f"hkdf_expand_label(secret, <{len(label)} bytes>, <{len(context)} bytes>, {length})"
    expect_value_error(call, hkdf_expand_label, bytes(32), label, context, length)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("secret", "label", "length", "want"),
    [
        (SERVER_HS_TRAFFIC, b"key", 16, SERVER_HS_KEY),
        (SERVER_HS_TRAFFIC, b"iv", 12, SERVER_HS_IV),
        (CLIENT_HS_TRAFFIC, b"key", 16, CLIENT_HS_KEY),
        (CLIENT_HS_TRAFFIC, b"iv", 12, CLIENT_HS_IV),
        (SERVER_HS_TRAFFIC, b"finished", 32, SERVER_FINISHED_KEY),
        (CLIENT_HS_TRAFFIC, b"finished", 32, CLIENT_FINISHED_KEY),
    ],
    ids=[
        "server hs key",
        "server hs iv",
        "client hs key",
        "client hs iv",
        "server finished key",
        "client finished key",
    ],
)
def test_expand_label_rfc8448(secret, label, length, want):
    """HKDF-Expand-Label with an empty context gives RFC 8448 §3's keys, IVs and finished key."""
    call = f"hkdf_expand_label({hx(secret)[:16]}..., {label!r}, b'', {length})"
    with step(call):
        got = hkdf_expand_label(secret, label, b"", length)
    assert got == want, said(call, got, want)


@pytest.mark.points(2)
def test_derive_secret_hashes_the_messages():
    """Derive-Secret uses Transcript-Hash(messages) as the context: Hash("") for "derived", never an empty context (RFC 8446 §7.1)."""
    for secret, label, messages, want, what in [
        (EARLY_SECRET, b"derived", b"", DERIVED_FROM_EARLY, "early secret"),
        (HANDSHAKE_SECRET, b"derived", b"", DERIVED_FROM_HANDSHAKE, "handshake secret"),
        (HANDSHAKE_SECRET, b"c hs traffic", HELLOS, CLIENT_HS_TRAFFIC, "handshake secret"),
        (HANDSHAKE_SECRET, b"s hs traffic", HELLOS, SERVER_HS_TRAFFIC, "handshake secret"),
    ]:
        call = f"derive_secret(<{what}>, {label!r}, <{len(messages)} bytes of messages>)"
        with step(call):
            got = derive_secret(secret, label, messages)
        assert got == want, said(call, got, want)


# --- the secrets of RFC 8448 §3 ------------------------------------------------------------------


@pytest.mark.points(2)
def test_early_secret():
    """The early secret is HKDF-Extract(0, 0) without a PSK and HKDF-Extract(0, PSK) with one (RFC 8448 §3, §4)."""
    with step("early_secret()"):
        got = early_secret()
    assert got == EARLY_SECRET, said("early_secret()", got, EARLY_SECRET)
    with step("early_secret(psk=<RFC 8448 ticket PSK>)"):
        got = early_secret(RESUMPTION_PSK)
    assert got == RESUMED_EARLY_SECRET, said(
        "early_secret(<RFC 8448 PSK>)", got, RESUMED_EARLY_SECRET
    )


HANDSHAKE_FIELDS = [
    ("early_secret", EARLY_SECRET),
    ("handshake_secret", HANDSHAKE_SECRET),
    ("client_handshake_traffic_secret", CLIENT_HS_TRAFFIC),
    ("server_handshake_traffic_secret", SERVER_HS_TRAFFIC),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(("field", "want"), HANDSHAKE_FIELDS, ids=[f for f, _ in HANDSHAKE_FIELDS])
def test_handshake_secrets_rfc8448(field, want):
    """handshake_secrets(ECDHE, ClientHello..ServerHello) gives RFC 8448 §3's handshake secrets."""
    call = "handshake_secrets(<RFC 8448 shared secret>, <ClientHello + ServerHello>)"
    with step(call):
        got = getattr(handshake_secrets(SHARED_SECRET, HELLOS), field)
    assert got == want, said(f"{call}.{field}", got, want)


APPLICATION_FIELDS = [
    ("master_secret", MASTER_SECRET),
    ("client_application_traffic_secret", CLIENT_AP_TRAFFIC),
    ("server_application_traffic_secret", SERVER_AP_TRAFFIC),
    ("exporter_master_secret", EXPORTER_MASTER),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("field", "want"), APPLICATION_FIELDS, ids=[f for f, _ in APPLICATION_FIELDS]
)
def test_application_secrets_rfc8448(field, want):
    """application_secrets(handshake secret, ClientHello..server Finished) gives RFC 8448 §3's master and application secrets."""
    call = "application_secrets(<RFC 8448 handshake secret>, <ClientHello..server Finished>)"
    with step(call):
        got = getattr(application_secrets(HANDSHAKE_SECRET, THROUGH_SERVER_FINISHED), field)
    assert got == want, said(f"{call}.{field}", got, want)


@pytest.mark.points(3)
@settings(max_examples=30)
@given(
    shared=st.binary(min_size=32, max_size=32),
    hellos=st.binary(max_size=300),
    flight=st.binary(max_size=300),
    psk=st.none() | st.binary(min_size=32, max_size=32),
)
@example(shared=bytes(32), hellos=b"", flight=b"", psk=None)
@example(shared=SHARED_SECRET, hellos=HELLOS, flight=SERVER_FLIGHT, psk=None)
@example(shared=SHARED_SECRET, hellos=HELLOS, flight=SERVER_FLIGHT, psk=RESUMPTION_PSK)
def test_schedule_matches_oracle(shared, hellos, flight, psk):
    """handshake_secrets and application_secrets follow RFC 8446 §7.1 for any shared secret, PSK and transcript (oracle: cryptography's HMAC and HKDF)."""
    want = oracle_schedule(shared, hellos, flight, psk)
    shown = f"<{hx(shared)[:16]}...>, <{len(hellos)} bytes>, psk={'None' if psk is None else '<32 bytes>'}"
    call = f"handshake_secrets({shown})"
    with step(call):
        hs = handshake_secrets(shared, hellos, psk)
        got = {f: getattr(hs, f) for f in list(want)[:4]}
    for field, value in got.items():
        assert value == want[field], said(f"{call}.{field}", value, want[field])
    call = f"application_secrets(<handshake secret>, <{len(hellos) + len(flight)} bytes>)"
    with step(call):
        app = application_secrets(want["handshake_secret"], hellos + flight)
        got = {f: getattr(app, f) for f in list(want)[4:]}
    for field, value in got.items():
        assert value == want[field], said(f"{call}.{field}", value, want[field])


KEYS = [
    ("server handshake", SERVER_HS_TRAFFIC, SERVER_HS_KEY, SERVER_HS_IV),
    ("client handshake", CLIENT_HS_TRAFFIC, CLIENT_HS_KEY, CLIENT_HS_IV),
    ("server application", SERVER_AP_TRAFFIC, SERVER_AP_KEY, SERVER_AP_IV),
    ("client application", CLIENT_AP_TRAFFIC, CLIENT_AP_KEY, CLIENT_AP_IV),
]


@pytest.mark.points(1)
@pytest.mark.parametrize(("what", "secret", "key", "iv"), KEYS, ids=[k[0] for k in KEYS])
def test_traffic_keys_rfc8448(what, secret, key, iv):
    """traffic_keys(secret) derives the 16-byte AES-128-GCM key and 12-byte IV of RFC 8448 §3 (RFC 8446 §7.3)."""
    call = f"traffic_keys(<{what} traffic secret>)"
    with step(call):
        got = traffic_keys(secret)
        pair = (got.key, got.iv)
    assert pair == (key, iv), said(
        call, f"key={hx(pair[0])} iv={hx(pair[1])}", f"key={hx(key)} iv={hx(iv)}"
    )


@pytest.mark.points(1)
def test_traffic_keys_other_lengths():
    """traffic_keys derives keys of the requested lengths, e.g. 32 bytes for AES-256-GCM (RFC 8446 §7.3)."""
    call = "traffic_keys(<server application traffic secret>, 32, 12)"
    want = (
        oracle_label(SERVER_AP_TRAFFIC, b"key", b"", 32),
        oracle_label(SERVER_AP_TRAFFIC, b"iv", b"", 12),
    )
    with step(call):
        keys = traffic_keys(SERVER_AP_TRAFFIC, 32, 12)
        got = (keys.key, keys.iv)
    assert got == want, said(
        call, f"key={hx(got[0])} iv={hx(got[1])}", f"key={hx(want[0])} iv={hx(want[1])}"
    )


@pytest.mark.points(2)
def test_resumption_secrets_rfc8448():
    """The resumption master secret (ClientHello..client Finished) and the ticket PSK (nonce 00 00) match RFC 8448 §3 (RFC 8446 §4.6.1)."""
    call = "resumption_master_secret(<master secret>, <ClientHello..client Finished>)"
    with step(call):
        got = resumption_master_secret(MASTER_SECRET, THROUGH_CLIENT_FINISHED)
    assert got == RESUMPTION_MASTER, said(call, got, RESUMPTION_MASTER)
    call = "resumption_psk(<resumption master secret>, b'\\x00\\x00')"
    with step(call):
        got = resumption_psk(RESUMPTION_MASTER, b"\x00\x00")
    assert got == RESUMPTION_PSK, said(call, got, RESUMPTION_PSK)


@pytest.mark.points(1)
def test_binder_keys():
    """The binder key uses "res binder" for resumption PSKs (RFC 8448 §4) and "ext binder" for external ones (RFC 8446 §7.1)."""
    call = "binder_key(<RFC 8448 §4 early secret>, external=False)"
    with step(call):
        got = binder_key(RESUMED_EARLY_SECRET, external=False)
    assert got == RESUMED_BINDER_KEY, said(call, got, RESUMED_BINDER_KEY)
    want = oracle_label(RESUMED_EARLY_SECRET, b"ext binder", hashlib.sha256(b"").digest(), 32)
    call = "binder_key(<RFC 8448 §4 early secret>, external=True)"
    with step(call):
        got = binder_key(RESUMED_EARLY_SECRET, external=True)
    assert got == want, said(call, got, want)


@pytest.mark.points(2)
def test_key_update_chain():
    """A key update derives application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", 32) (RFC 8446 §7.2)."""
    secret = CLIENT_AP_TRAFFIC
    for n in range(1, 4):
        want = oracle_label(secret, b"traffic upd", b"", 32)
        call = f"next_application_traffic_secret(<client application traffic secret {n - 1}>)"
        with step(call):
            got = next_application_traffic_secret(secret)
        assert got == want, said(call, got, want)
        secret = want
    with step("traffic_keys(<client application traffic secret 1>)"):
        updated = traffic_keys(oracle_label(CLIENT_AP_TRAFFIC, b"traffic upd", b"", 32))
    assert updated.key != CLIENT_AP_KEY and updated.iv != CLIENT_AP_IV, said(
        "traffic_keys(<secret after one update>)",
        updated.key,
        "a key different from before the update",
    )


# --- the per-record nonce ------------------------------------------------------------------------


def oracle_nonce(iv: bytes, seq: int) -> bytes:
    return (int.from_bytes(iv, "big") ^ seq).to_bytes(len(iv), "big")


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "seq",
    [0, 1, 256, 0x0102030405060708, 2**64 - 2, 2**64 - 1],
    ids=["0", "1", "256", "0x0102030405060708", "2**64-2", "2**64-1"],
)
def test_record_nonce(seq):
    """The nonce is the IV XOR the 64-bit sequence number, big-endian, left-padded to the IV length (RFC 8446 §5.3)."""
    want = oracle_nonce(SERVER_AP_IV, seq)
    call = f"record_nonce({hx(SERVER_AP_IV)}, {seq})"
    with step(call):
        got = record_nonce(SERVER_AP_IV, seq)
    assert got == want, said(call, got, want)


@pytest.mark.points(1)
@settings(max_examples=40)
@given(iv=st.binary(min_size=12, max_size=12), seq=st.integers(0, 2**64 - 1))
@example(iv=bytes(12), seq=2**64 - 1)
@example(iv=b"\xff" * 12, seq=1)
def test_record_nonce_any_iv(iv, seq):
    """record_nonce(iv, seq) == iv XOR seq (as a 12-byte big-endian number) for any IV and sequence number."""
    want = oracle_nonce(iv, seq)
    call = f"record_nonce({hx(iv)}, {seq})"
    with step(call):
        got = record_nonce(iv, seq)
    assert got == want, said(call, got, want)


@pytest.mark.points(1)
@pytest.mark.parametrize("seq", [2**64, 2**64 + 1, -1], ids=["2**64", "2**64+1", "-1"])
def test_record_nonce_refuses_to_wrap(seq):
    """A sequence number outside 0..2**64-1 raises ValueError: sequence numbers never wrap (RFC 8446 §5.3)."""
    expect_value_error(f"record_nonce(iv, {seq})", record_nonce, SERVER_AP_IV, seq)


# --- Finished ---------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_finished_rfc8448():
    """finished_key and verify_data match RFC 8448 §3 for the server's and the client's Finished (RFC 8446 §4.4.4)."""
    with step("finished_key(<server handshake traffic secret>)"):
        got = finished_key(SERVER_HS_TRAFFIC)
    assert got == SERVER_FINISHED_KEY, said(
        "finished_key(<server hs traffic>)", got, SERVER_FINISHED_KEY
    )
    call = "finished_verify_data(<server hs traffic>, <ClientHello..CertificateVerify>)"
    with step(call):
        got = finished_verify_data(SERVER_HS_TRAFFIC, THROUGH_CV)
    assert got == SERVER_VERIFY_DATA, said(call, got, SERVER_VERIFY_DATA)
    call = "finished_verify_data(<client hs traffic>, <ClientHello..server Finished>)"
    with step(call):
        got = finished_verify_data(CLIENT_HS_TRAFFIC, THROUGH_SERVER_FINISHED)
    assert got == CLIENT_VERIFY_DATA, said(call, got, CLIENT_VERIFY_DATA)


@pytest.mark.points(2)
def test_verify_finished_accepts_the_rfc_finished():
    """verify_finished returns without raising for the server Finished of RFC 8448 §3."""
    call = (
        "verify_finished(<server hs traffic>, <ClientHello..CertificateVerify>, <RFC verify_data>)"
    )
    got = attempt(call, verify_finished, SERVER_HS_TRAFFIC, THROUGH_CV, SERVER_VERIFY_DATA)
    assert got is None, said(call, got, None)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "verify_data",
    [
        bytes([SERVER_VERIFY_DATA[0] ^ 1]) + SERVER_VERIFY_DATA[1:],
        SERVER_VERIFY_DATA[:-1] + bytes([SERVER_VERIFY_DATA[-1] ^ 0x80]),
        SERVER_VERIFY_DATA[:16],
        b"",
        CLIENT_VERIFY_DATA,
    ],
    ids=["first bit flipped", "last bit flipped", "truncated to 16", "empty", "the client's"],
)
def test_verify_finished_rejects_wrong_mac(verify_data):
    """A wrong server Finished raises TLSAlert("decrypt_error") (RFC 8446 §4.4.4)."""
    call = f"verify_finished(<server hs traffic>, <transcript>, {hx(verify_data)})"
    expect_alert(call, "decrypt_error", verify_finished, SERVER_HS_TRAFFIC, THROUGH_CV, verify_data)


@pytest.mark.points(3)
@settings(max_examples=40)
@given(position=st.integers(0, len(THROUGH_CV) - 1), flip=st.integers(1, 255))
@example(position=0, flip=1)  # the ClientHello's type byte
@example(position=len(HELLOS) - 1, flip=1)  # the last byte of the ServerHello
@example(position=len(HELLOS) + 40 + len(CERTIFICATE) // 2, flip=0x10)  # inside the certificate
@example(position=len(THROUGH_CV) - 1, flip=0x80)  # the signature's last byte
def test_tampered_transcript_changes_finished(position, flip):
    """Changing any byte of the transcript changes verify_data, and verify_finished rejects the old one."""
    tampered = bytearray(THROUGH_CV)
    tampered[position] ^= flip
    tampered = bytes(tampered)
    call = f"finished_verify_data(<server hs traffic>, <transcript with byte {position} ^ {flip:#04x}>)"
    with step(call):
        got = finished_verify_data(SERVER_HS_TRAFFIC, tampered)
    want = hmac.new(SERVER_FINISHED_KEY, hashlib.sha256(tampered).digest(), "sha256").digest()
    assert got == want, said(call, got, want)
    call = f"verify_finished(<server hs traffic>, <transcript with byte {position} changed>, <RFC verify_data>)"
    expect_alert(
        call, "decrypt_error", verify_finished, SERVER_HS_TRAFFIC, tampered, SERVER_VERIFY_DATA
    )


@pytest.mark.points(2)
def test_verify_finished_compares_in_constant_time(monkeypatch):
    """verify_finished compares the MAC with hmac.compare_digest, for good and bad Finished messages."""
    real = hmac.compare_digest
    calls: list[tuple[bytes, bytes]] = []

    def spy(a, b):
        calls.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    monkeypatch.setattr(secrets, "compare_digest", spy)
    for name, value in list(vars(kata).items()):
        if value is real:
            monkeypatch.setattr(kata, name, spy)
    forged = bytes(32)
    for given_data, what in [
        (SERVER_VERIFY_DATA, "the RFC Finished"),
        (forged, "a forged Finished"),
    ]:
        calls.clear()
        got = attempt(
            "verify_finished(...)", verify_finished, SERVER_HS_TRAFFIC, THROUGH_CV, given_data
        )
        seen = any(sorted(pair) == sorted([SERVER_VERIFY_DATA, given_data]) for pair in calls)
        assert seen, said(
            f"verify_finished(<{what}>) with hmac.compare_digest recorded",
            f"{len(calls)} compare_digest call(s) comparing the expected MAC with the given one",
            "one",
        )
        expected_outcome = None if given_data == SERVER_VERIFY_DATA else "decrypt_error"
        outcome = got.alert if isinstance(got, Raised) else got
        assert outcome == expected_outcome, said(
            f"verify_finished(<{what}>)", got, expected_outcome
        )


@pytest.mark.points(1)
def test_application_keys_decrypt_rfc_payload():
    """The application keys derived from the RFC 8448 master secret open the published application data (end to end)."""
    with step("traffic_keys(application_secrets(...).client_application_traffic_secret)"):
        secrets_ = application_secrets(HANDSHAKE_SECRET, THROUGH_SERVER_FINISHED)
        keys = traffic_keys(secrets_.client_application_traffic_secret)
        nonce = record_nonce(keys.iv, 0)
    record = CLIENT_APPLICATION_RECORD
    try:
        inner = AESGCM(keys.key).decrypt(nonce, record[5:], record[:5])
    except Exception as exc:  # noqa: BLE001 - any failure is the learner's keys
        inner = exc
    want = APPLICATION_PAYLOAD + b"\x17"
    assert inner == want, said(
        "AES-GCM open of RFC 8448's client application record with your keys", inner, want
    )

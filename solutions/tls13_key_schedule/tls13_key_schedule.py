"""The TLS 1.3 key schedule, by hand: HKDF, the secrets of a handshake, and its first records.

Theory of operation
-------------------
Three layers, each built only on the one below it:

1. **HKDF** (RFC 5869): ``hkdf_extract`` concentrates input keying material into one
   pseudorandom key; ``hkdf_expand`` stretches that key into as many labelled outputs as needed.
   Both are a few lines of HMAC.
2. **The TLS 1.3 key schedule** (RFC 8446 §7): ``hkdf_expand_label`` and ``derive_secret`` bind
   every output to a label and to the hash of the handshake so far (the transcript). Three
   extracts chain the early secret (PSK), the handshake secret ((EC)DHE) and the master secret;
   traffic keys, IVs, Finished MACs and key updates all hang off them.
3. **The handshake's shape**: record framing (§5.1), record protection (§5.2-§5.4), handshake
   message framing (§4), and ``client_handshake``, which plays the client's side of the RFC 8448
   trace from the bytes on the wire: ServerHello -> handshake keys -> decrypt the server's
   flight -> check its Finished -> application keys -> the client's own Finished record.

Everything is SHA-256 and AES-128-GCM (TLS_AES_128_GCM_SHA256, the suite every TLS 1.3
implementation must support, RFC 8446 §9.1); HKDF alone takes other hashes, for RFC 5869's SHA-1
test cases. AES-GCM comes from ``cryptography``: the AEAD is not the lesson, the keys fed to it are.

Every failure a peer can cause raises ``TLSAlert`` naming the alert RFC 8446 tells an endpoint to
send (§6.2), so a caller can answer it on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "AES_128_GCM_SHA256",
    "ApplicationSecrets",
    "ClientHandshake",
    "HandshakeMessage",
    "HandshakeSecrets",
    "Record",
    "ServerHello",
    "TLSAlert",
    "TrafficKeys",
    "application_secrets",
    "binder_key",
    "client_handshake",
    "decrypt_record",
    "derive_secret",
    "early_secret",
    "encrypt_record",
    "finished_key",
    "finished_verify_data",
    "handshake_secrets",
    "hkdf_expand",
    "hkdf_expand_label",
    "hkdf_extract",
    "next_application_traffic_secret",
    "parse_handshake_messages",
    "parse_server_hello",
    "record_nonce",
    "resumption_master_secret",
    "resumption_psk",
    "split_records",
    "traffic_keys",
    "verify_finished",
]

HASH = "sha256"  # the hash of TLS_AES_128_GCM_SHA256
HASH_LEN = 32
AES_128_GCM_SHA256 = 0x1301
TLS13 = 0x0304
LEGACY_VERSION = 0x0303  # what TLS 1.3 writes in every record header (§5.1)

# Content types (§5.1) and handshake types (§4).
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
CONTENT_TYPES = {CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA}
CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY, FINISHED = (
    1,
    2,
    8,
    11,
    15,
    20,
)
SUPPORTED_VERSIONS = 43  # extension type (§4.2)

MAX_PLAINTEXT = 2**14  # TLSPlaintext.length (§5.1)
MAX_INNER_PLAINTEXT = 2**14 + 1  # content + content type + padding (§5.4)
MAX_CIPHERTEXT = 2**14 + 256  # TLSCiphertext.length (§5.2)
MAX_SEQUENCE = 2**64 - 1  # sequence numbers are 64-bit and never wrap (§5.3)


class TLSAlert(Exception):
    """The peer broke the protocol; ``alert`` is the RFC 8446 §6.2 alert to answer with."""

    def __init__(self, alert: str, reason: str) -> None:
        super().__init__(f"{alert}: {reason}")
        self.alert = alert
        self.reason = reason


# --- 1. HKDF (RFC 5869) ------------------------------------------------------------------------


def hkdf_extract(salt: bytes | None, ikm: bytes, hash_name: str = HASH) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2): PRK = HMAC-Hash(salt, IKM); no salt means HashLen zeros."""
    if salt is None:
        salt = bytes(hashlib.new(hash_name).digest_size)
    # The salt is the HMAC *key* and the input keying material the *message*.
    return hmac.new(salt, ikm, hash_name).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int, hash_name: str = HASH) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3): T(i) = HMAC-Hash(PRK, T(i-1) | info | i), cut to ``length``."""
    hash_len = hashlib.new(hash_name).digest_size
    if not 0 <= length <= 255 * hash_len:  # the counter is one octet and starts at 1
        raise ValueError(f"HKDF-Expand length must be 0..{255 * hash_len}, got {length}")
    okm = bytearray()
    block = b""
    counter = 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hash_name).digest()
        okm += block
        counter += 1
    return bytes(okm[:length])


# --- 2. The TLS 1.3 key schedule (RFC 8446 §7) --------------------------------------------------


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (§7.1): HKDF-Expand(secret, HkdfLabel, length) with

    struct { uint16 length; opaque label<7..255> = "tls13 " + label; opaque context<0..255>; }
    """
    full_label = b"tls13 " + label
    if not 7 <= len(full_label) <= 255:
        raise ValueError(f'"tls13 " + label must be 7..255 bytes, got {len(full_label)}')
    if len(context) > 255:
        raise ValueError(f"context must be 0..255 bytes, got {len(context)}")
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"length must fit in a uint16, got {length}")
    hkdf_label = (
        length.to_bytes(2, "big")
        + bytes([len(full_label)])
        + full_label
        + bytes([len(context)])
        + context
    )
    return hkdf_expand(secret, hkdf_label, length)


def transcript_hash(messages: bytes) -> bytes:
    """Transcript-Hash (§4.4.1): the hash of the concatenated handshake messages."""
    return hashlib.new(HASH, messages).digest()


def derive_secret(secret: bytes, label: bytes, messages: bytes) -> bytes:
    """Derive-Secret (§7.1): HKDF-Expand-Label(secret, label, Transcript-Hash(messages), Hash.length).

    ``messages`` is the concatenation of whole handshake messages (type and length included,
    record headers not). ``b""`` still hashes: the context is Hash(""), never empty.
    """
    return hkdf_expand_label(secret, label, transcript_hash(messages), HASH_LEN)


@dataclass(frozen=True)
class HandshakeSecrets:
    early_secret: bytes
    handshake_secret: bytes
    client_handshake_traffic_secret: bytes
    server_handshake_traffic_secret: bytes


@dataclass(frozen=True)
class ApplicationSecrets:
    master_secret: bytes
    client_application_traffic_secret: bytes
    server_application_traffic_secret: bytes
    exporter_master_secret: bytes


def early_secret(psk: bytes | None = None) -> bytes:
    """Early Secret = HKDF-Extract(0, PSK); without a PSK the IKM is Hash.length zeros (§7.1)."""
    return hkdf_extract(bytes(HASH_LEN), psk if psk is not None else bytes(HASH_LEN))


def handshake_secrets(
    shared_secret: bytes, hello_messages: bytes, psk: bytes | None = None
) -> HandshakeSecrets:
    """The handshake secret and both handshake traffic secrets (§7.1).

    ``hello_messages`` is ClientHello...ServerHello; ``shared_secret`` the (EC)DHE output.
    """
    early = early_secret(psk)
    # Each stage's secret is the *salt* of the next extract, after a "derived" step.
    handshake = hkdf_extract(derive_secret(early, b"derived", b""), shared_secret)
    return HandshakeSecrets(
        early_secret=early,
        handshake_secret=handshake,
        client_handshake_traffic_secret=derive_secret(handshake, b"c hs traffic", hello_messages),
        server_handshake_traffic_secret=derive_secret(handshake, b"s hs traffic", hello_messages),
    )


def application_secrets(
    handshake_secret: bytes, messages_through_server_finished: bytes
) -> ApplicationSecrets:
    """The master secret and what hangs off it (§7.1): ClientHello...server Finished."""
    master = hkdf_extract(derive_secret(handshake_secret, b"derived", b""), bytes(HASH_LEN))
    transcript = messages_through_server_finished
    return ApplicationSecrets(
        master_secret=master,
        client_application_traffic_secret=derive_secret(master, b"c ap traffic", transcript),
        server_application_traffic_secret=derive_secret(master, b"s ap traffic", transcript),
        exporter_master_secret=derive_secret(master, b"exp master", transcript),
    )


def resumption_master_secret(
    master_secret: bytes, messages_through_client_finished: bytes
) -> bytes:
    """resumption_master_secret = Derive-Secret(master, "res master", ClientHello...client Finished)."""
    return derive_secret(master_secret, b"res master", messages_through_client_finished)


def resumption_psk(resumption_master_secret: bytes, ticket_nonce: bytes) -> bytes:
    """The PSK of one NewSessionTicket (§4.6.1): HKDF-Expand-Label(rms, "resumption", nonce, 32)."""
    return hkdf_expand_label(resumption_master_secret, b"resumption", ticket_nonce, HASH_LEN)


def binder_key(early: bytes, *, external: bool) -> bytes:
    """binder_key = Derive-Secret(early, "ext binder" | "res binder", "") (§7.1)."""
    return derive_secret(early, b"ext binder" if external else b"res binder", b"")


def next_application_traffic_secret(secret: bytes) -> bytes:
    """A KeyUpdate (§7.2): HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length)."""
    return hkdf_expand_label(secret, b"traffic upd", b"", HASH_LEN)


@dataclass(frozen=True)
class TrafficKeys:
    key: bytes
    iv: bytes


def traffic_keys(traffic_secret: bytes, key_length: int = 16, iv_length: int = 12) -> TrafficKeys:
    """The write key and IV of one direction (§7.3); AES-128-GCM takes 16 and 12 bytes."""
    return TrafficKeys(
        key=hkdf_expand_label(traffic_secret, b"key", b"", key_length),
        iv=hkdf_expand_label(traffic_secret, b"iv", b"", iv_length),
    )


def record_nonce(iv: bytes, sequence_number: int) -> bytes:
    """The per-record nonce (§5.3): the IV XOR the sequence number, big-endian, left-padded."""
    if not 0 <= sequence_number <= MAX_SEQUENCE:
        raise ValueError(f"sequence number must be 0..2**64-1, got {sequence_number}")
    padded = sequence_number.to_bytes(len(iv), "big")
    return bytes(a ^ b for a, b in zip(iv, padded, strict=True))


def finished_key(base_key: bytes) -> bytes:
    """finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length) (§4.4.4)."""
    return hkdf_expand_label(base_key, b"finished", b"", HASH_LEN)


def finished_verify_data(base_key: bytes, messages: bytes) -> bytes:
    """verify_data = HMAC(finished_key, Transcript-Hash(messages)) (§4.4.4)."""
    return hmac.new(finished_key(base_key), transcript_hash(messages), HASH).digest()


def verify_finished(base_key: bytes, messages: bytes, verify_data: bytes) -> None:
    """Check a peer's Finished; raise ``TLSAlert("decrypt_error")`` when it is wrong (§4.4.4)."""
    expected = finished_verify_data(base_key, messages)
    # Constant time: a comparison that stops at the first wrong byte tells an attacker,
    # by its timing, how many leading bytes of a forged MAC were right.
    if not hmac.compare_digest(expected, verify_data):
        raise TLSAlert("decrypt_error", "the Finished MAC does not match the transcript")


# --- 3. Records (RFC 8446 §5) ------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One TLSPlaintext or TLSCiphertext record: a 5-byte header and its fragment."""

    content_type: int
    legacy_version: int
    fragment: bytes

    def header(self) -> bytes:
        return (
            bytes([self.content_type])
            + self.legacy_version.to_bytes(2, "big")
            + len(self.fragment).to_bytes(2, "big")
        )

    def to_bytes(self) -> bytes:
        return self.header() + self.fragment


def split_records(data: bytes) -> tuple[list[Record], bytes]:
    """Cut a byte stream into whole records; return them and the incomplete tail.

    Checks each header as it arrives (§5, §5.1, §5.2): an unknown content type is an
    ``unexpected_message``; a fragment longer than 2**14 (protected records: 2**14 + 256)
    is a ``record_overflow``, refused before waiting for its bytes.
    """
    records: list[Record] = []
    offset = 0
    while len(data) - offset >= 5:
        content_type = data[offset]
        legacy_version = int.from_bytes(data[offset + 1 : offset + 3], "big")
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        if content_type not in CONTENT_TYPES:
            raise TLSAlert("unexpected_message", f"unknown record content type {content_type}")
        limit = MAX_CIPHERTEXT if content_type == APPLICATION_DATA else MAX_PLAINTEXT
        if length > limit:
            raise TLSAlert("record_overflow", f"record of {length} bytes, limit {limit}")
        end = offset + 5 + length
        if end > len(data):
            break
        records.append(Record(content_type, legacy_version, bytes(data[offset + 5 : end])))
        offset = end
    return records, bytes(data[offset:])


def encrypt_record(
    keys: TrafficKeys, sequence_number: int, content_type: int, content: bytes, padding: int = 0
) -> bytes:
    """Protect ``content`` (§5.2): the wire bytes of one TLSCiphertext record.

    TLSInnerPlaintext = content | content_type | ``padding`` zero bytes; the record header
    (opaque type 23, legacy version 0x0303, length) is the AEAD's additional data.
    """
    inner = content + bytes([content_type]) + bytes(padding)
    if len(inner) > MAX_INNER_PLAINTEXT:
        raise ValueError(f"TLSInnerPlaintext of {len(inner)} bytes exceeds 2**14 + 1")
    length = len(inner) + 16  # AES-GCM appends a 16-byte tag
    header = (
        bytes([APPLICATION_DATA]) + LEGACY_VERSION.to_bytes(2, "big") + length.to_bytes(2, "big")
    )
    nonce = record_nonce(keys.iv, sequence_number)
    return header + AESGCM(keys.key).encrypt(nonce, inner, header)


def decrypt_record(keys: TrafficKeys, sequence_number: int, record: Record) -> tuple[int, bytes]:
    """Unprotect one TLSCiphertext record (§5.2, §5.4); return (real content type, content)."""
    if record.content_type != APPLICATION_DATA:
        raise TLSAlert("unexpected_message", "a protected record must have opaque type 23")
    if len(record.fragment) > MAX_CIPHERTEXT:
        raise TLSAlert("record_overflow", f"ciphertext of {len(record.fragment)} bytes")
    nonce = record_nonce(keys.iv, sequence_number)
    try:
        inner = AESGCM(keys.key).decrypt(nonce, record.fragment, record.header())
    except InvalidTag:
        raise TLSAlert("bad_record_mac", "the record does not authenticate") from None
    if len(inner) > MAX_INNER_PLAINTEXT:
        raise TLSAlert("record_overflow", f"TLSInnerPlaintext of {len(inner)} bytes")
    # The content type is the last non-zero byte; everything after it is padding (§5.4).
    content = inner.rstrip(b"\x00")
    if not content:
        raise TLSAlert("unexpected_message", "no content type: the record is all padding")
    content_type, content = content[-1], content[:-1]
    if content_type in (HANDSHAKE, ALERT) and not content:
        raise TLSAlert("unexpected_message", "an empty handshake or alert record")
    return content_type, content


# --- 4. Handshake messages (RFC 8446 §4) -------------------------------------------------------


@dataclass(frozen=True)
class HandshakeMessage:
    msg_type: int
    body: bytes

    @property
    def raw(self) -> bytes:
        """The message as the transcript hashes it: type, 3-byte length, body."""
        return bytes([self.msg_type]) + len(self.body).to_bytes(3, "big") + self.body


def parse_handshake_messages(data: bytes) -> tuple[list[HandshakeMessage], bytes]:
    """Cut handshake messages out of ``data``; return the whole ones and the incomplete tail.

    Messages may span records and records may hold several messages (§5.1), so the caller
    keeps the tail and prepends it to the next record's content.
    """
    messages: list[HandshakeMessage] = []
    offset = 0
    while len(data) - offset >= 4:
        length = int.from_bytes(data[offset + 1 : offset + 4], "big")
        end = offset + 4 + length
        if end > len(data):
            break
        messages.append(HandshakeMessage(data[offset], bytes(data[offset + 4 : end])))
        offset = end
    return messages, bytes(data[offset:])


@dataclass(frozen=True)
class ServerHello:
    random: bytes
    legacy_session_id_echo: bytes
    cipher_suite: int
    extensions: dict[int, bytes]


class _Reader:
    """Reads the TLS presentation language (§3) from a buffer; any overrun is a decode_error."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, n: int) -> bytes:
        if self.offset + n > len(self.data):
            raise TLSAlert("decode_error", "message truncated")
        chunk = self.data[self.offset : self.offset + n]
        self.offset += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.uint(length_bytes))

    def done(self) -> bool:
        return self.offset == len(self.data)


def parse_server_hello(body: bytes) -> ServerHello:
    """Decode a ServerHello body (§4.1.3); malformed or trailing bytes are a decode_error."""
    reader = _Reader(body)
    reader.uint(2)  # legacy_version, 0x0303: the real version is in supported_versions
    random = reader.take(32)
    session_id = reader.vector(1)
    cipher_suite = reader.uint(2)
    if reader.uint(1) != 0:
        raise TLSAlert("illegal_parameter", "legacy_compression_method must be 0")
    extensions: dict[int, bytes] = {}
    block = _Reader(reader.vector(2))
    while not block.done():
        ext_type = block.uint(2)
        if ext_type in extensions:  # §4.2: one extension of each type per block
            raise TLSAlert("illegal_parameter", f"extension {ext_type} appears twice")
        extensions[ext_type] = block.vector(2)
    if not reader.done():
        raise TLSAlert("decode_error", "bytes after the extensions")
    return ServerHello(random, session_id, cipher_suite, extensions)


@dataclass(frozen=True)
class ClientHandshake:
    """What the client knows once the server's first flight checks out."""

    transcript: list[HandshakeMessage]  # ClientHello, ServerHello, EE, Certificate, CV, Finished
    handshake: HandshakeSecrets
    application: ApplicationSecrets
    client_finished: HandshakeMessage
    client_finished_record: bytes  # the Finished, protected with the client handshake keys
    resumption_master_secret: bytes


# The server's flight after ServerHello, in order (§4.4; no client certificate requested).
_SERVER_FLIGHT = (ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY, FINISHED)


def client_handshake(
    client_hello: bytes, server_data: bytes, shared_secret: bytes
) -> ClientHandshake:
    """Play the client's side of a 1-RTT handshake from the server's bytes on the wire.

    ``client_hello`` is the ClientHello handshake message the client sent (no record header);
    ``server_data`` the server's records: ServerHello in a plaintext handshake record, then the
    protected flight (EncryptedExtensions, Certificate, CertificateVerify, Finished);
    ``shared_secret`` the (EC)DHE output for the key shares the two hellos carry.
    (The CertificateVerify signature is not checked here: that is PKI, not the key schedule.)
    """
    client_messages, rest = parse_handshake_messages(client_hello)
    if len(client_messages) != 1 or rest or client_messages[0].msg_type != CLIENT_HELLO:
        raise ValueError("client_hello must be exactly one ClientHello handshake message")
    client_reader = _Reader(client_messages[0].body)
    client_reader.take(2 + 32)  # legacy_version, random
    client_session_id = client_reader.vector(1)

    records, tail = split_records(server_data)
    if tail:
        raise TLSAlert("decode_error", "the server's data ends inside a record")
    if not records or records[0].content_type != HANDSHAKE:
        raise TLSAlert("unexpected_message", "the server must answer with a handshake record")
    hello_messages, rest = parse_handshake_messages(records[0].fragment)
    if len(hello_messages) != 1 or rest or hello_messages[0].msg_type != SERVER_HELLO:
        raise TLSAlert("unexpected_message", "the first record must hold exactly a ServerHello")
    server_hello_message = hello_messages[0]
    server_hello = parse_server_hello(server_hello_message.body)
    if server_hello.cipher_suite != AES_128_GCM_SHA256:
        raise TLSAlert("illegal_parameter", f"cipher suite {server_hello.cipher_suite:#06x}")
    if server_hello.extensions.get(SUPPORTED_VERSIONS) != TLS13.to_bytes(2, "big"):
        raise TLSAlert("illegal_parameter", "supported_versions does not select TLS 1.3")
    if server_hello.legacy_session_id_echo != client_session_id:
        raise TLSAlert("illegal_parameter", "legacy_session_id_echo is not the client's session id")

    transcript = [client_messages[0], server_hello_message]
    hs = handshake_secrets(shared_secret, client_hello + server_hello_message.raw)
    server_keys = traffic_keys(hs.server_handshake_traffic_secret)

    # Decrypt the flight record by record; the sequence number counts protected records only.
    flight: list[HandshakeMessage] = []
    pending = b""
    sequence = 0
    for record in records[1:]:
        if record.content_type == CHANGE_CIPHER_SPEC and record.fragment == b"\x01":
            continue  # middlebox compatibility (§5, Appendix D.4): dropped unprocessed
        content_type, content = decrypt_record(server_keys, sequence, record)
        sequence += 1
        if content_type != HANDSHAKE:
            raise TLSAlert("unexpected_message", f"content type {content_type} in the handshake")
        messages, pending = parse_handshake_messages(pending + content)
        flight += messages
    if pending or len(flight) != len(_SERVER_FLIGHT):
        raise TLSAlert("unexpected_message", "the server's flight is incomplete or too long")
    for message, expected in zip(flight, _SERVER_FLIGHT, strict=True):
        if message.msg_type != expected:
            raise TLSAlert("unexpected_message", f"handshake type {message.msg_type} out of order")

    transcript += flight
    through_cv = b"".join(m.raw for m in transcript[:-1])
    verify_finished(hs.server_handshake_traffic_secret, through_cv, flight[-1].body)

    through_server_finished = through_cv + flight[-1].raw
    app = application_secrets(hs.handshake_secret, through_server_finished)
    client_finished = HandshakeMessage(
        FINISHED,
        finished_verify_data(hs.client_handshake_traffic_secret, through_server_finished),
    )
    client_keys = traffic_keys(hs.client_handshake_traffic_secret)
    return ClientHandshake(
        transcript=transcript,
        handshake=hs,
        application=app,
        client_finished=client_finished,
        client_finished_record=encrypt_record(client_keys, 0, HANDSHAKE, client_finished.raw),
        resumption_master_secret=resumption_master_secret(
            app.master_secret, through_server_finished + client_finished.raw
        ),
    )

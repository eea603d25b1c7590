"""The TLS 1.3 key schedule, by hand: HKDF, the secrets of a handshake, and its first records.

Three layers, each built only on the one below it (see README.md for the whole story):

1. HKDF (RFC 5869): ``hkdf_extract`` and ``hkdf_expand``, a few lines of HMAC each.
2. The TLS 1.3 key schedule (RFC 8446 §7): ``hkdf_expand_label``, ``derive_secret``, the early,
   handshake and master secrets, traffic keys, the per-record nonce, Finished, key updates.
3. The handshake's shape: records (§5), handshake messages (§4), and ``client_handshake``, which
   plays the client's side of RFC 8448's trace from the bytes on the wire.

Standard library only (``hashlib``, ``hmac``), except AES-GCM: import it as
``from cryptography.hazmat.primitives.ciphers.aead import AESGCM`` (the AEAD is not the lesson;
``cryptography.exceptions.InvalidTag`` is what its ``decrypt`` raises on a bad tag). Any other
part of ``cryptography`` that does HKDF or HMAC is a forbidden import.

Everything is SHA-256 and AES-128-GCM (TLS_AES_128_GCM_SHA256); HKDF alone takes other hashes.
Every failure a peer can cause raises ``TLSAlert`` with the alert name RFC 8446 §6.2 gives it;
a caller's own mistake (an impossible length, a sequence number that would wrap) is a ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass

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

# Content types (RFC 8446 §5.1) and handshake types (§4).
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY, FINISHED = (
    1,
    2,
    8,
    11,
    15,
    20,
)
SUPPORTED_VERSIONS = 43  # extension type (§4.2)


class TLSAlert(Exception):
    """The peer broke the protocol; ``alert`` is the RFC 8446 §6.2 alert to answer with.

    The names used here: "decode_error", "illegal_parameter", "unexpected_message",
    "record_overflow", "bad_record_mac", "decrypt_error".
    """

    def __init__(self, alert: str, reason: str) -> None:
        super().__init__(f"{alert}: {reason}")
        self.alert = alert
        self.reason = reason


# --- 1. HKDF (RFC 5869) ------------------------------------------------------------------------


def hkdf_extract(salt: bytes | None, ikm: bytes, hash_name: str = HASH) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2): PRK = HMAC-Hash(salt, IKM).

    ``hash_name`` is a hashlib name ("sha256", "sha1", "sha384"...).

    TODO: the salt is the HMAC *key*, the IKM the *message*.
    TODO: salt None ("not provided") means HashLen zero bytes.
    """
    raise NotImplementedError


def hkdf_expand(prk: bytes, info: bytes, length: int, hash_name: str = HASH) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3): the first ``length`` bytes of T(1) | T(2) | ...

    TODO: T(0) = b""; T(i) = HMAC-Hash(PRK, T(i-1) | info | i), the counter i one byte from 1.
    TODO: length must be 0..255 * HashLen (the counter is one byte); otherwise ValueError.
    """
    raise NotImplementedError


# --- 2. The TLS 1.3 key schedule (RFC 8446 §7) --------------------------------------------------


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (§7.1): HKDF-Expand(secret, HkdfLabel, length), SHA-256.

    TODO: HkdfLabel = uint16 length | uint8 len("tls13 " + label) | "tls13 " + label
                      | uint8 len(context) | context
    TODO: ValueError unless 7 <= len("tls13 " + label) <= 255 and len(context) <= 255
          (and length fits HKDF-Expand).
    """
    raise NotImplementedError


def derive_secret(secret: bytes, label: bytes, messages: bytes) -> bytes:
    """Derive-Secret (§7.1): HKDF-Expand-Label(secret, label, Transcript-Hash(messages), 32).

    ``messages`` is the concatenation of whole handshake messages (4-byte header included,
    record headers not).

    TODO: the context is SHA-256(messages), also when messages is b"" (then it is Hash("")).
    """
    raise NotImplementedError


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
    """Early Secret = HKDF-Extract(salt=0, IKM=PSK) (§7.1).

    TODO: "0" is 32 zero bytes; without a PSK the IKM is 32 zero bytes too.
    """
    raise NotImplementedError


def handshake_secrets(
    shared_secret: bytes, hello_messages: bytes, psk: bytes | None = None
) -> HandshakeSecrets:
    """The handshake secret and both handshake traffic secrets (§7.1).

    ``shared_secret`` is the (EC)DHE output; ``hello_messages`` is ClientHello...ServerHello.

    TODO: Handshake Secret = HKDF-Extract(salt=Derive-Secret(Early Secret, "derived", ""),
                                          IKM=shared_secret)
    TODO: the traffic secrets: Derive-Secret(Handshake Secret, "c hs traffic" / "s hs traffic",
          ClientHello...ServerHello)
    """
    raise NotImplementedError


def application_secrets(
    handshake_secret: bytes, messages_through_server_finished: bytes
) -> ApplicationSecrets:
    """The master secret and what hangs off it (§7.1).

    TODO: Master Secret = HKDF-Extract(salt=Derive-Secret(Handshake Secret, "derived", ""),
                                       IKM=32 zero bytes)
    TODO: "c ap traffic", "s ap traffic", "exp master" over ClientHello...server Finished.
    """
    raise NotImplementedError


def resumption_master_secret(
    master_secret: bytes, messages_through_client_finished: bytes
) -> bytes:
    """Derive-Secret(Master Secret, "res master", ClientHello...client Finished) (§7.1)."""
    raise NotImplementedError


def resumption_psk(resumption_master_secret: bytes, ticket_nonce: bytes) -> bytes:
    """The PSK of one NewSessionTicket (§4.6.1).

    TODO: HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, 32)
    """
    raise NotImplementedError


def binder_key(early: bytes, *, external: bool) -> bytes:
    """binder_key = Derive-Secret(Early Secret, "ext binder" | "res binder", "") (§7.1).

    TODO: "ext binder" for external PSKs, "res binder" for resumption PSKs.
    """
    raise NotImplementedError


def next_application_traffic_secret(secret: bytes) -> bytes:
    """A KeyUpdate (§7.2): application_traffic_secret_N+1 from application_traffic_secret_N.

    TODO: HKDF-Expand-Label(secret, "traffic upd", "", 32)
    """
    raise NotImplementedError


@dataclass(frozen=True)
class TrafficKeys:
    key: bytes
    iv: bytes


def traffic_keys(traffic_secret: bytes, key_length: int = 16, iv_length: int = 12) -> TrafficKeys:
    """The write key and IV of one direction (§7.3).

    TODO: key = HKDF-Expand-Label(secret, "key", "", key_length);
          iv  = HKDF-Expand-Label(secret, "iv", "", iv_length).
    """
    raise NotImplementedError


def record_nonce(iv: bytes, sequence_number: int) -> bytes:
    """The per-record nonce (§5.3).

    TODO: the 64-bit sequence number, big-endian, left-padded with zeros to len(iv), XOR iv.
    TODO: sequence numbers never wrap: outside 0..2**64-1 raise ValueError.
    """
    raise NotImplementedError


def finished_key(base_key: bytes) -> bytes:
    """finished_key = HKDF-Expand-Label(BaseKey, "finished", "", 32) (§4.4.4).

    The BaseKey is the sender's handshake traffic secret.
    """
    raise NotImplementedError


def finished_verify_data(base_key: bytes, messages: bytes) -> bytes:
    """verify_data = HMAC-SHA256(finished_key(base_key), Transcript-Hash(messages)) (§4.4.4)."""
    raise NotImplementedError


def verify_finished(base_key: bytes, messages: bytes, verify_data: bytes) -> None:
    """Check a peer's Finished; return None when it is right.

    TODO: wrong -> raise TLSAlert("decrypt_error", ...) (§4.4.4).
    TODO: compare with hmac.compare_digest (constant time), never ==.
    """
    raise NotImplementedError


# --- 3. Records (RFC 8446 §5) ------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One TLSPlaintext or TLSCiphertext record: a 5-byte header and its fragment."""

    content_type: int
    legacy_version: int
    fragment: bytes

    def header(self) -> bytes:
        """uint8 content_type | uint16 legacy_version | uint16 len(fragment)."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The record on the wire: header then fragment."""
        raise NotImplementedError


def split_records(data: bytes) -> tuple[list[Record], bytes]:
    """Cut a byte stream into whole records; return them and the incomplete tail.

    TODO: the tail (an incomplete header or fragment) comes back unchanged, for the caller to
          prepend to the next bytes it reads.
    TODO: content types are 20, 21, 22, 23; any other -> TLSAlert("unexpected_message") (§5).
    TODO: a length over 2**14 (type 23: over 2**14 + 256) -> TLSAlert("record_overflow")
          (§5.1, §5.2), from the header alone: don't wait for bytes you will refuse.
    """
    raise NotImplementedError


def encrypt_record(
    keys: TrafficKeys, sequence_number: int, content_type: int, content: bytes, padding: int = 0
) -> bytes:
    """Protect ``content`` (§5.2): the wire bytes of one TLSCiphertext record.

    TODO: TLSInnerPlaintext = content | content_type (1 byte) | ``padding`` zero bytes;
          over 2**14 + 1 bytes -> ValueError (§5.4).
    TODO: header = 23 | 0x0303 | uint16 length of the ciphertext (inner + 16-byte tag);
          the header is the AEAD's additional data.
    TODO: nonce = record_nonce(keys.iv, sequence_number); AESGCM(keys.key).encrypt(...).
    """
    raise NotImplementedError


def decrypt_record(keys: TrafficKeys, sequence_number: int, record: Record) -> tuple[int, bytes]:
    """Unprotect one TLSCiphertext record (§5.2, §5.4); return (real content type, content).

    TODO: outer content type other than 23 -> TLSAlert("unexpected_message").
    TODO: fragment over 2**14 + 256 bytes -> TLSAlert("record_overflow"), before decrypting.
    TODO: decrypt with the record header as additional data; a bad tag (InvalidTag)
          -> TLSAlert("bad_record_mac").
    TODO: plaintext over 2**14 + 1 bytes -> TLSAlert("record_overflow").
    TODO: the content type is the LAST NON-ZERO byte; the zeros after it are padding.
          No non-zero byte -> TLSAlert("unexpected_message").
    TODO: a handshake (22) or alert (21) record with empty content -> "unexpected_message".
    """
    raise NotImplementedError


# --- 4. Handshake messages (RFC 8446 §4) -------------------------------------------------------


@dataclass(frozen=True)
class HandshakeMessage:
    msg_type: int
    body: bytes

    @property
    def raw(self) -> bytes:
        """The message as the transcript hashes it: uint8 msg_type | uint24 length | body."""
        raise NotImplementedError


def parse_handshake_messages(data: bytes) -> tuple[list[HandshakeMessage], bytes]:
    """Cut handshake messages out of ``data``; return the whole ones and the incomplete tail.

    TODO: each message is uint8 msg_type | uint24 length | body.
    TODO: messages may span records: an incomplete message comes back as the tail.
    """
    raise NotImplementedError


@dataclass(frozen=True)
class ServerHello:
    random: bytes
    legacy_session_id_echo: bytes
    cipher_suite: int
    extensions: dict[int, bytes]  # extension type -> extension_data


def parse_server_hello(body: bytes) -> ServerHello:
    """Decode a ServerHello body (the message without its 4-byte header) (§4.1.3).

    TODO: uint16 legacy_version | random[32] | uint8-length session id | uint16 cipher_suite
          | uint8 compression (0) | uint16-length extensions (uint16 type, uint16-length data).
    TODO: truncated, or bytes left over -> TLSAlert("decode_error").
    TODO: the same extension type twice -> TLSAlert("illegal_parameter") (§4.2).
    """
    raise NotImplementedError


@dataclass(frozen=True)
class ClientHandshake:
    """What the client knows once the server's first flight checks out."""

    transcript: list[HandshakeMessage]  # ClientHello, ServerHello, EE, Certificate, CV, Finished
    handshake: HandshakeSecrets
    application: ApplicationSecrets
    client_finished: HandshakeMessage
    client_finished_record: bytes  # the client Finished, protected with client handshake keys
    resumption_master_secret: bytes


def client_handshake(
    client_hello: bytes, server_data: bytes, shared_secret: bytes
) -> ClientHandshake:
    """Play the client's side of a 1-RTT handshake from the server's bytes on the wire.

    ``client_hello``: the ClientHello handshake message the client sent (no record header).
    ``server_data``: the server's records: ServerHello in a plaintext handshake record, then
    the protected flight. ``shared_secret``: the (EC)DHE output.

    TODO: split the records; data ending inside a record -> TLSAlert("decode_error").
    TODO: the first record is a handshake record holding exactly one ServerHello, else
          TLSAlert("unexpected_message").
    TODO: cipher suite must be 0x1301, supported_versions (43) must be 0x0304, and
          legacy_session_id_echo must be the ClientHello's session id, else
          TLSAlert("illegal_parameter") (§4.1.3).
    TODO: a client_hello that is not exactly one ClientHello message -> ValueError.
    TODO: handshake secrets over ClientHello | ServerHello; server handshake keys.
    TODO: decrypt each following record with sequence numbers 0, 1, 2...; drop a
          change_cipher_spec record whose fragment is b"\\x01" (it does not count); inner
          content must be handshake (22), else "unexpected_message". Messages may span records.
    TODO: the flight is exactly EncryptedExtensions, Certificate, CertificateVerify, Finished,
          else "unexpected_message".
    TODO: verify the server Finished over ClientHello..CertificateVerify ("decrypt_error").
    TODO: application secrets over ClientHello..server Finished; the client Finished over the
          same transcript, as a message and as a record (client handshake keys, sequence 0);
          the resumption master secret over ClientHello..client Finished.
    """
    raise NotImplementedError

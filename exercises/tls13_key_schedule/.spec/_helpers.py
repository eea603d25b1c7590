"""Helpers for the tls13_key_schedule specs: the RFC 8448 §3 trace, RFC 5869 vectors, oracles.

Every byte string below is published in RFC 8448 §3 ("Simple 1-RTT Handshake") or RFC 5869
Appendix A, and was reproduced with ``cryptography`` (X25519, HKDF, HMAC, AES-GCM) before it was
written here: the AEAD tags of the four records authenticate the trace bytes and the keys, and
the two Finished MACs authenticate the transcript. See VECTORS.md, "TLS 1.3 key schedule".
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from grader.spectools import short, step


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# --- RFC 8448 §3: the wire bytes ---------------------------------------------------------------

# {client} construct a ClientHello handshake message (196 octets): no record header.
CLIENT_HELLO = bytes.fromhex(
    "010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef"
    "6283024dece7000006130113031302010000910000000b000900000673657276"
    "6572ff01000100000a00140012001d0017001800190100010101020103010400"
    "230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e"
    "51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603"
    "020308040805080604010501060102010402050206020202002d00020101001c"
    "00024001"
)
SERVER_HELLO_RECORD = bytes.fromhex(
    "160303005a020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb"
    "1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095"
    "fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304"
)
SERVER_FLIGHT_RECORD = bytes.fromhex(
    "17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35e"
    "df7869fcf40aa40aa2b8ea73f848a7ca07612ef9f945cb960b4068905123ea78"
    "b111b429ba9191cd05d2a389280f526134aadc7fc78c4b729df828b5ecf7b13b"
    "d9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9"
    "d7477609aee6e122a4cf51427325250c7d0e509289444c9b3a648f1d71035d2e"
    "d65b0e3cdd0cbae8bf2d0b227812cbb360987255cc744110c453baa4fcd61092"
    "8d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b70a2559c09ead68694"
    "5ba246ab66e5edd8044b4c6de3fcf2a89441ac66272fd8fb330ef8190579b368"
    "4596c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f"
    "4415cf9538d51a200c27034272968a264ed6540c84838d89f72c24461aad6d26"
    "f59ecaba9acbbb317b66d902f4f292a36ac1b639c637ce343117b65962224531"
    "7b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e"
    "1b7a6c7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da"
    "8c87c843f5e56eb4c5e8280a2b48052cf93b16499a66db7cca71e4599426f7d4"
    "61e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa80f85df881edbe"
    "5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb"
    "992f2b992f67f8afe67f76913fa388cb5630c8ca01e0c65d11c66a1e2ac4c859"
    "77b7c7a6999bbf10dc35ae69f5515614636c0b9b68c19ed2e31c0b3b66763038"
    "ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0504de93b5b84"
    "5e275592c12335ee340bbc4fddd502784016e4b3be7ef04dda49f4b440a30cb5"
    "d2af939828fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e"
    "750edc53370d2b"
)
CLIENT_FINISHED_RECORD = bytes.fromhex(
    "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc"
    "44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546"
)
CLIENT_APPLICATION_RECORD = bytes.fromhex(
    "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f"
    "2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae6"
    "3aeebb21694915e4"
)
SERVER_APPLICATION_RECORD = bytes.fromhex(
    "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36"
    "e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf33254"
    "0dd032e167c2955d"
)

SERVER_HELLO = SERVER_HELLO_RECORD[5:]
SHARED_SECRET = h("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")
CLIENT_PRIVATE = h("49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005")

# --- RFC 8448 §3: the published secrets ---------------------------------------------------------

EARLY_SECRET = h("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
DERIVED_FROM_EARLY = h("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba")
HANDSHAKE_SECRET = h("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac")
HELLO_HASH = h("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8")
CLIENT_HS_TRAFFIC = h("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
SERVER_HS_TRAFFIC = h("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
SERVER_HS_KEY = h("3fce516009c21727d0f2e4e86ee403bc")
SERVER_HS_IV = h("5d313eb2671276ee13000b30")
CLIENT_HS_KEY = h("dbfaa693d1762c5b666af5d950258d01")
CLIENT_HS_IV = h("5bd3c71b836e0b76bb73265f")
SERVER_FINISHED_KEY = h("008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8")
# {client} derive secret for handshake "tls13 finished" (checked: it MACs the published
# client verify_data below over the published transcript).
CLIENT_FINISHED_KEY = h("b80ad01015fb2f0bd65ff7d4da5d6bf83f84821d1f87fdc7d3c75b5a7b42d9c4")
SERVER_VERIFY_DATA = h("9b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718")
DERIVED_FROM_HANDSHAKE = h("43de77e0c77713859a944db9db2590b53190a65b3ee2e4f12dd7a0bb7ce254b4")
MASTER_SECRET = h("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919")
FLIGHT_HASH = h("9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13")
CLIENT_AP_TRAFFIC = h("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
SERVER_AP_TRAFFIC = h("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
EXPORTER_MASTER = h("fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50")
CLIENT_AP_KEY = h("17422dda596ed5d9acd890e3c63f5051")
CLIENT_AP_IV = h("5b78923dee08579033e523d9")
SERVER_AP_KEY = h("9f02283b6c9c07efc26bb9f2ac92e356")
SERVER_AP_IV = h("cf782b88dd83549aadf1e984")
CLIENT_VERIFY_DATA = h("a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")
RESUMPTION_MASTER = h("7df235f2031d2a051287d02b0241b0bfdaf86cc856231f2d5aba46c434ec196c")
# {server} generate resumption secret "tls13 resumption", ticket nonce 00 00 (RFC 8448 §3)
RESUMPTION_PSK = h("4ecd0eb6ec3b4d87f5d6028f922ca4c5851a277fd41311c9e62d2c9492e1c4f3")
# RFC 8448 §4 (resumed 0-RTT handshake): the early secret from that PSK, and its binder key.
RESUMED_EARLY_SECRET = h("9b2188e9b2fc6d64d71dc329900e20bb41915000f678aa839cbb797cb7d8332c")
RESUMED_BINDER_KEY = h("69fe131a3bbad5d63c64eebcc30e395b9d8107726a13d074e389dbc8a4e47256")
# Both application records carry the 50 bytes 00 01 ... 31; the server's is its second record
# under its application key (the first is a NewSessionTicket), so it is sealed at sequence 1.
APPLICATION_PAYLOAD = bytes(range(0x32))

# The server's flight in the clear: the oracle decrypts it with the published key and IV.
_INNER = AESGCM(SERVER_HS_KEY).decrypt(
    SERVER_HS_IV, SERVER_FLIGHT_RECORD[5:], SERVER_FLIGHT_RECORD[:5]
)
assert _INNER[-1] == 22, "the flight's inner content type is handshake"
SERVER_FLIGHT = _INNER[
    :-1
]  # 657 bytes: EncryptedExtensions, Certificate, CertificateVerify, Finished
ENCRYPTED_EXTENSIONS = SERVER_FLIGHT[:40]
CERTIFICATE = SERVER_FLIGHT[40:485]
CERTIFICATE_VERIFY = SERVER_FLIGHT[485:621]
SERVER_FINISHED = SERVER_FLIGHT[621:]
assert SERVER_FINISHED == b"\x14\x00\x00\x20" + SERVER_VERIFY_DATA
CLIENT_FINISHED = b"\x14\x00\x00\x20" + CLIENT_VERIFY_DATA
HELLOS = CLIENT_HELLO + SERVER_HELLO
THROUGH_CV = HELLOS + SERVER_FLIGHT[:621]
THROUGH_SERVER_FINISHED = HELLOS + SERVER_FLIGHT
THROUGH_CLIENT_FINISHED = THROUGH_SERVER_FINISHED + CLIENT_FINISHED
assert hashlib.sha256(HELLOS).digest() == HELLO_HASH
assert hashlib.sha256(THROUGH_SERVER_FINISHED).digest() == FLIGHT_HASH
assert hmac.new(CLIENT_FINISHED_KEY, FLIGHT_HASH, "sha256").digest() == CLIENT_VERIFY_DATA
SERVER_DATA = SERVER_HELLO_RECORD + SERVER_FLIGHT_RECORD
CCS_RECORD = bytes.fromhex("140303000101")  # change_cipher_spec, middlebox compatibility mode

# --- RFC 5869 Appendix A: HKDF test cases 1-7 ---------------------------------------------------

RFC5869 = [
    # (case, hash, IKM, salt (None: not provided), info, L, PRK, OKM)
    (
        "A.1 sha256 basic",
        "sha256",
        bytes([0x0B] * 22),
        bytes(range(0x00, 0x0D)),
        bytes(range(0xF0, 0xFA)),
        42,
        h("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"),
        h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
    ),
    (
        "A.2 sha256 long inputs",
        "sha256",
        bytes(range(0x00, 0x50)),
        bytes(range(0x60, 0xB0)),
        bytes(range(0xB0, 0x100)),
        82,
        h("06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244"),
        h(
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87"
        ),
    ),
    (
        "A.3 sha256 empty salt and info",
        "sha256",
        bytes([0x0B] * 22),
        b"",
        b"",
        42,
        h("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"),
        h("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
    ),
    (
        "A.4 sha1 basic",
        "sha1",
        bytes([0x0B] * 11),
        bytes(range(0x00, 0x0D)),
        bytes(range(0xF0, 0xFA)),
        42,
        h("9b6c18c432a7bf8f0e71c8eb88f4b30baa2ba243"),
        h("085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896"),
    ),
    (
        "A.5 sha1 long inputs",
        "sha1",
        bytes(range(0x00, 0x50)),
        bytes(range(0x60, 0xB0)),
        bytes(range(0xB0, 0x100)),
        82,
        h("8adae09a2a307059478d309b26c4115a224cfaf6"),
        h(
            "0bd770a74d1160f7c9f12cd5912a06ebff6adcae899d92191fe4305673ba2ffe"
            "8fa3f1a4e5ad79f3f334b3b202b2173c486ea37ce3d397ed034c7f9dfeb15c5e"
            "927336d0441f4c4300e2cff0d0900b52d3b4"
        ),
    ),
    (
        "A.6 sha1 empty salt and info",
        "sha1",
        bytes([0x0B] * 22),
        b"",
        b"",
        42,
        h("da8c8a73c7fa77288ec6f5e7c297786aa0d32d01"),
        h("0ac1af7002b3d761d1e55298da9d0506b9ae52057220a306e07b6b87e8df21d0ea00033de03984d34918"),
    ),
    (
        "A.7 sha1 salt not provided",
        "sha1",
        bytes([0x0C] * 22),
        None,
        b"",
        42,
        h("2adccada18779e7c2077ad2eb19d3f3e731385dd"),
        h("2c91117204d745f3500d636a62f64f0ab3bae548aa53d423b0d1f27ebba6f5e5673a081d70cce7acfc48"),
    ),
]

# --- oracles: cryptography's HKDF and AES-GCM ----------------------------------------------------

HASHES = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def oracle_extract(salt: bytes | None, ikm: bytes, hash_name: str = "sha256") -> bytes:
    """HKDF-Extract = HMAC-Hash(salt, IKM) (RFC 5869 §2.2), by cryptography's HMAC (its HKDF keeps
    the extract step private; ``oracle_hkdf`` checks the whole of it end to end)."""
    size = hashlib.new(hash_name).digest_size
    mac = crypto_hmac.HMAC(salt if salt else bytes(size), HASHES[hash_name]())
    mac.update(ikm)
    return mac.finalize()


def oracle_expand(prk: bytes, info: bytes, length: int, hash_name: str = "sha256") -> bytes:
    """HKDF-Expand by cryptography (an independent implementation, in Rust)."""
    if length == 0:
        return b""
    return HKDFExpand(HASHES[hash_name](), length, info).derive(prk)


def oracle_hkdf(salt: bytes | None, ikm: bytes, info: bytes, length: int, hash_name: str) -> bytes:
    """Extract-then-expand by cryptography's one-shot HKDF."""
    return HKDF(HASHES[hash_name](), length, salt, info).derive(ikm)


def oracle_label(secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1) built on cryptography's HKDFExpand."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return oracle_expand(secret, info, length)


def oracle_seal(
    key: bytes, iv: bytes, seq: int, content_type: int, content: bytes, pad: int = 0
) -> bytes:
    """A TLSCiphertext record sealed by cryptography's AES-GCM (RFC 8446 §5.2, §5.3)."""
    inner = content + bytes([content_type]) + bytes(pad)
    header = bytes([23, 3, 3]) + (len(inner) + 16).to_bytes(2, "big")
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    return header + AESGCM(key).encrypt(nonce, inner, header)


def hx(value: Any) -> str:
    """Bytes shown as hex in messages (short), text as it is, anything else as its repr."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        text = bytes(value).hex()
        return text if len(text) <= 80 else f"{text[:72]}... ({len(value)} bytes)"
    return short(value)


def record_with_length(content_type: int, length: int, fill: int = 0) -> bytes:
    """A record header claiming ``length`` bytes, followed by that many ``fill`` bytes."""
    return bytes([content_type, 3, 3]) + length.to_bytes(2, "big") + bytes([fill]) * length


def said(call: str, got: Any, want: Any) -> str:
    """The message "Called X; returned Y; expected Z", bytes in hex, "raised ..." for a Raised."""
    outcome = repr(got) if isinstance(got, Raised) else f"returned {hx(got)}"
    return f"Called {call}; {outcome}; expected {hx(want)}"


class Raised:
    """What a call raised (a TLSAlert or ValueError), shown readably in messages."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    @property
    def alert(self) -> str | None:
        return getattr(self.exc, "alert", None)

    def __repr__(self) -> str:
        if self.alert is not None:
            return f"raised TLSAlert({self.alert!r}: {getattr(self.exc, 'reason', '')!r})"
        return f"raised {type(self.exc).__name__}({str(self.exc)[:80]!r})"


def attempt(call: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or a Raised for TLSAlert / ValueError; any other exception fails
    the spec with a message naming ``call`` (NotImplementedError passes through: the stub)."""
    from tls13_key_schedule import TLSAlert

    with step(call):
        try:
            return fn(*args, **kwargs)
        except (TLSAlert, ValueError) as exc:
            return Raised(exc)


def expect_alert(call: str, alert: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    """Assert that the call raises TLSAlert with this alert name."""
    got = attempt(call, fn, *args, **kwargs)
    ok = isinstance(got, Raised) and got.alert == alert
    assert ok, (
        f"Called {call}; {hx(got) if isinstance(got, Raised) else 'returned ' + hx(got)}; expected TLSAlert({alert!r})"
    )


def expect_value_error(call: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    """Assert that the call raises ValueError (a caller's mistake, not a peer's)."""
    got = attempt(call, fn, *args, **kwargs)
    ok = isinstance(got, Raised) and isinstance(got.exc, ValueError) and got.alert is None
    assert ok, (
        f"Called {call}; {hx(got) if isinstance(got, Raised) else 'returned ' + hx(got)}; expected ValueError"
    )


def oracle_schedule(
    shared: bytes, hellos: bytes, flight: bytes, psk: bytes | None
) -> dict[str, bytes]:
    """The RFC 8446 §7.1 key schedule, built on cryptography's HMAC and HKDFExpand."""

    def derive(secret: bytes, label: bytes, messages: bytes) -> bytes:
        return oracle_label(secret, label, hashlib.sha256(messages).digest(), 32)

    zeros = bytes(32)
    early = oracle_extract(zeros, psk if psk is not None else zeros)
    handshake = oracle_extract(derive(early, b"derived", b""), shared)
    master = oracle_extract(derive(handshake, b"derived", b""), zeros)
    transcript = hellos + flight
    return {
        "early_secret": early,
        "handshake_secret": handshake,
        "client_handshake_traffic_secret": derive(handshake, b"c hs traffic", hellos),
        "server_handshake_traffic_secret": derive(handshake, b"s hs traffic", hellos),
        "master_secret": master,
        "client_application_traffic_secret": derive(master, b"c ap traffic", transcript),
        "server_application_traffic_secret": derive(master, b"s ap traffic", transcript),
        "exporter_master_secret": derive(master, b"exp master", transcript),
    }

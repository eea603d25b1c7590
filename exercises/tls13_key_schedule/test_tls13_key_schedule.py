"""Visible examples for the tls13_key_schedule kata. Run them with `nox -s try -- tls13_key_schedule`.

They walk the RFC 8448 §3 trace (a real TLS 1.3 handshake with every intermediate value
published) from HKDF up to the client's Finished record. The hidden specs check every value of
that trace, RFC 5869's HKDF test cases, cryptography's HKDF on generated inputs, the record
limits and padding, and tampered transcripts.
"""

from __future__ import annotations

try:
    from tls13_key_schedule import (
        TrafficKeys,
        client_handshake,
        decrypt_record,
        derive_secret,
        early_secret,
        handshake_secrets,
        hkdf_expand,
        hkdf_extract,
        parse_handshake_messages,
        split_records,
        traffic_keys,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import the kata's functions from tls13_key_schedule.py"
    ) from err

# --- RFC 8448 §3, "Simple 1-RTT Handshake": the bytes on the wire --------------------------------

# {client} construct a ClientHello handshake message (196 octets; the record header is not
# part of the transcript).
CLIENT_HELLO = bytes.fromhex(
    "010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef"
    "6283024dece7000006130113031302010000910000000b000900000673657276"
    "6572ff01000100000a00140012001d0017001800190100010101020103010400"
    "230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e"
    "51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603"
    "020308040805080604010501060102010402050206020202002d00020101001c"
    "00024001"
)

# {server} send handshake record: the ServerHello in a plaintext record (5-byte header + 90).
SERVER_HELLO_RECORD = bytes.fromhex(
    "160303005a020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb"
    "1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095"
    "fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304"
)

# {server} send handshake record: EncryptedExtensions, Certificate, CertificateVerify and
# Finished, protected with the server handshake keys (679 octets).
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

# {client} send handshake record: the client Finished, protected (58 octets).
CLIENT_FINISHED_RECORD = bytes.fromhex(
    "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc"
    "44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546"
)

# The X25519 shared secret of the two key shares (computing it is not this kata's job).
SHARED_SECRET = bytes.fromhex("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")
SERVER_HELLO = SERVER_HELLO_RECORD[5:]


def test_rfc5869_test_case_1():
    ikm = bytes([0x0B] * 22)
    salt = bytes(range(0x0D))
    info = bytes(range(0xF0, 0xFA))
    prk = hkdf_extract(salt, ikm)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", (
        f"Called hkdf_extract(salt, ikm) for RFC 5869 A.1; returned {prk.hex()}"
    )
    okm = hkdf_expand(prk, info, 42)
    want = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    assert okm.hex() == want, f"Called hkdf_expand(prk, info, 42); returned {okm.hex()}"


def test_early_secret_and_derived():
    early = early_secret()
    assert early.hex() == "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a", (
        f"Called early_secret(); returned {early.hex()}"
    )
    derived = derive_secret(early, b"derived", b"")
    assert derived.hex() == "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba", (
        f"Called derive_secret(early, b'derived', b''); returned {derived.hex()}"
    )


def test_server_handshake_keys():
    secrets = handshake_secrets(SHARED_SECRET, CLIENT_HELLO + SERVER_HELLO)
    shts = secrets.server_handshake_traffic_secret
    assert shts.hex() == "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38", (
        f"server_handshake_traffic_secret was {shts.hex()}"
    )
    keys = traffic_keys(shts)
    assert (keys.key.hex(), keys.iv.hex()) == (
        "3fce516009c21727d0f2e4e86ee403bc",
        "5d313eb2671276ee13000b30",
    ), f"traffic_keys(server handshake secret) gave key {keys.key.hex()}, iv {keys.iv.hex()}"


def test_decrypt_the_servers_first_encrypted_record():
    keys = TrafficKeys(
        bytes.fromhex("3fce516009c21727d0f2e4e86ee403bc"),
        bytes.fromhex("5d313eb2671276ee13000b30"),
    )
    records, tail = split_records(SERVER_FLIGHT_RECORD)
    assert len(records) == 1 and tail == b"", (
        f"split_records gave {len(records)} records, tail {tail!r}"
    )
    content_type, content = decrypt_record(keys, 0, records[0])
    assert content_type == 22, f"the flight's inner content type was {content_type}, expected 22"
    messages, tail = parse_handshake_messages(content)
    types = [m.msg_type for m in messages]
    assert types == [8, 11, 15, 20], (
        f"the flight held handshake types {types}, expected [8, 11, 15, 20]"
    )


def test_client_handshake_produces_the_rfc_finished_record():
    result = client_handshake(
        CLIENT_HELLO, SERVER_HELLO_RECORD + SERVER_FLIGHT_RECORD, SHARED_SECRET
    )
    got = result.client_finished_record
    assert got == CLIENT_FINISHED_RECORD, (
        f"client_finished_record was {got.hex()}, expected {CLIENT_FINISHED_RECORD.hex()}"
    )

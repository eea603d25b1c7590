"""Hidden specs for verify_jwt and b64url_decode: the pure HS256 verifier.

Tokens come from PyJWT (an independent implementation) or are crafted by hand where PyJWT
refuses to make them; the RFC 7515 Appendix A.1 example is the published vector from
VECTORS.md.
"""

from __future__ import annotations

import base64
import json

import auth_middleware
import jwt
import pytest
from _helpers import (
    KEY,
    OTHER_KEY,
    RFC_CLAIMS,
    RFC_EXP,
    RFC_KEY,
    RFC_TOKEN,
    b64,
    compared,
    hs256,
    mint,
    segments,
    sign_json,
    sign_raw,
    sign_segments,
)
from auth_middleware import InvalidToken, b64url_decode, verify_jwt
from hypothesis import example, given, settings
from hypothesis import strategies as st

from grader.spectools import called, short, spy_compare_digest

NOW = 1_700_000_000


class Rejected:
    """verify_jwt raised InvalidToken (shown as such in messages)."""

    def __init__(self, reason: object) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"InvalidToken({self.reason!r})"


def outcome(token: str, key: bytes = KEY, **kwargs) -> object:
    """What verify_jwt did: the claims, or a Rejected; any other exception becomes a readable
    failure."""
    kwargs.setdefault("now", NOW)
    try:
        return verify_jwt(token, key, **kwargs)
    except InvalidToken as exc:
        return Rejected(getattr(exc, "reason", None))
    except Exception as exc:
        raise AssertionError(
            f"Called verify_jwt({short(token, 60)}, ...); raised {short(exc)}; "
            "expected claims or InvalidToken, never another exception"
        ) from None


def b64url_decode_oracle(segment: str) -> bytes:
    """Python's own (lenient) base64url decoder, padded: the oracle for what bytes a text holds."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def rejected(result: object) -> bool:
    return isinstance(result, Rejected)


def check_rejected(token: str, why: str, key: bytes = KEY, **kwargs) -> None:
    result = outcome(token, key, **kwargs)
    assert rejected(result), called(
        f"verify_jwt(<{why}>, key, now={kwargs.get('now', NOW)})", result, "InvalidToken"
    )


def check_accepted(token: str, want: dict, why: str, key: bytes = KEY, **kwargs) -> None:
    result = outcome(token, key, **kwargs)
    assert result == want, called(
        f"verify_jwt(<{why}>, key, now={kwargs.get('now', NOW)})", result, want
    )


# --- accepting good tokens ------------------------------------------------------------------


@pytest.mark.points(3)
def test_pyjwt_token_is_accepted():
    """A token signed by PyJWT with HS256 and the same key is accepted and its claims returned."""
    claims = {"sub": "alice", "roles": ["admin"], "scope": "a b", "exp": NOW + 60, "n": 1.5}
    token = mint(claims)
    check_accepted(token, claims, "PyJWT HS256 token")


@pytest.mark.points(3)
def test_rfc7515_example_accepted_before_expiry():
    """The RFC 7515 Appendix A.1 example token verifies with its key while now < exp."""
    check_accepted(RFC_TOKEN, RFC_CLAIMS, "RFC 7515 A.1 token", RFC_KEY, now=RFC_EXP - 1)
    check_accepted(RFC_TOKEN, RFC_CLAIMS, "RFC 7515 A.1 token", RFC_KEY, now=1300000000)
    check_accepted(
        RFC_TOKEN, RFC_CLAIMS, "RFC 7515 A.1 token", RFC_KEY, now=RFC_EXP - 1, issuer="joe"
    )


@pytest.mark.points(2)
def test_rfc7515_example_expires_with_leeway():
    """The RFC 7515 A.1 token is rejected from now == exp on; a leeway of L seconds extends it."""
    check_rejected(RFC_TOKEN, "RFC 7515 A.1 token", RFC_KEY, now=RFC_EXP)
    check_rejected(RFC_TOKEN, "RFC 7515 A.1 token", RFC_KEY, now=RFC_EXP + 1)
    check_accepted(RFC_TOKEN, RFC_CLAIMS, "RFC 7515 A.1 token", RFC_KEY, now=RFC_EXP + 9, leeway=10)
    check_rejected(RFC_TOKEN, "RFC 7515 A.1 token", RFC_KEY, now=RFC_EXP + 10, leeway=10)


@pytest.mark.points(1)
def test_typ_header_is_optional():
    """A header with alg HS256 and no typ is accepted, and so is any other typ value."""
    claims = {"sub": "bob"}
    check_accepted(sign_json({"alg": "HS256"}, claims), claims, "header without typ")
    check_accepted(mint(claims, typ="at+jwt"), claims, 'header with typ "at+jwt"')


# --- forgeries ------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_tampered_payload_is_rejected():
    """A token whose payload was changed after signing is rejected."""
    header, _, signature = segments(mint({"sub": "alice", "roles": ["user"]}))
    forged = b64(json.dumps({"sub": "alice", "roles": ["admin"]}).encode())
    check_rejected(f"{header}.{forged}.{signature}", "token with a swapped payload")


def _signature_variants() -> dict[str, str]:
    header, payload, signature = segments(mint({"sub": "alice"}))
    raw = b64url_decode_oracle(signature)
    out = {}
    for index in (0, 15, 31):  # the first, a middle and the last byte of the MAC
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        out[f"signature byte {index} flipped"] = f"{header}.{payload}.{b64(bytes(flipped))}"
    out["empty signature"] = f"{header}.{payload}."
    out["signature cut to 16 bytes"] = f"{header}.{payload}.{b64(raw[:16])}"
    out["signature with one byte added"] = f"{header}.{payload}.{b64(raw + b'x')}"
    out["token signed with another key"] = mint({"sub": "mallory"}, key=OTHER_KEY)
    return out


SIGNATURES = _signature_variants()  # PyJWT only: no learner code runs at import


@pytest.mark.points(1)
@pytest.mark.parametrize("token", list(SIGNATURES.values()), ids=list(SIGNATURES))
def test_tampered_signature_is_rejected(token, request):
    """A token whose signature was changed, cut, left out or made with another key is rejected."""
    check_rejected(token, request.node.callspec.id)


NONE_TOKENS = {"PyJWT alg none token": mint({"sub": "mallory"}, key=None, algorithm="none")}
for _alg in ("none", "None", "NONE", "nOnE"):
    _header = b64(json.dumps({"alg": _alg, "typ": "JWT"}).encode())
    NONE_TOKENS[f"alg {_alg!r}, empty signature"] = (
        f"{_header}.{b64(json.dumps({'sub': 'mallory'}).encode())}."
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("token", list(NONE_TOKENS.values()), ids=list(NONE_TOKENS))
def test_alg_none_is_rejected(token, request):
    """An unsigned token with alg "none" (in any spelling) is rejected (RFC 8725 §2.1)."""
    check_rejected(token, request.node.callspec.id)


@pytest.mark.points(2)
def test_hs512_is_rejected_even_when_correct():
    """A token correctly signed with HS512 (or HS384) and the same key is rejected: only HS256."""
    for alg in ("HS512", "HS384"):
        check_rejected(mint({"sub": "alice"}, algorithm=alg), f"PyJWT {alg} token, same key")


CONFUSED_ALGS = ["RS256", "ES256", "PS256", "hs256", "HS256 ", "", None, ["HS256"], "<missing>"]


@pytest.mark.points(1)
@pytest.mark.parametrize("alg", CONFUSED_ALGS, ids=[repr(alg) for alg in CONFUSED_ALGS])
def test_algorithm_confusion_is_rejected(alg):
    """A header whose alg is not exactly "HS256" (RS256, hs256, missing...) is rejected, MAC or not (RFC 8725 §3.1)."""
    header = {"typ": "JWT"} if alg == "<missing>" else {"alg": alg, "typ": "JWT"}
    token = sign_json(header, {"sub": "mallory"})
    check_rejected(token, f"header alg {alg!r}, HMAC-SHA256 signature with the key")


# RFC 7515 §4.1.11: headers whose "crit" the recipient can't honour. Each token is minted by
# PyJWT, and PyJWT's own decode rejects each one: the differential.
CRIT_HEADERS = {
    'crit ["exp"] (a claim name, not an extension)': {"crit": ["exp"]},
    'crit ["b64"] (RFC 7797 unencoded payload)': {"crit": ["b64"]},
    'crit ["x-custom"] with x-custom in the header': {"crit": ["x-custom"], "x-custom": 1},
    "crit [] (an empty list is forbidden)": {"crit": []},
    'crit "exp" (not a list)': {"crit": "exp"},
}


@pytest.mark.points(2)
@pytest.mark.parametrize("headers", list(CRIT_HEADERS.values()), ids=list(CRIT_HEADERS))
def test_a_critical_header_extension_is_rejected(headers):
    """A token whose header has "crit" is rejected: it names extensions this verifier can't honour (RFC 7515 §4.1.11)."""
    claims = {"sub": "alice", "exp": NOW + 60}
    token = mint(claims, **headers)
    try:
        jwt.decode(token, KEY, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.InvalidTokenError:
        pass
    else:  # pragma: no cover - the oracle itself changed
        raise AssertionError(f"oracle sanity: PyJWT accepted a token with header {headers}")
    check_rejected(token, f"PyJWT token, header {headers}")


# --- malformed tokens -----------------------------------------------------------------------


_H, _P, _S = segments(mint({"sub": "alice"}))
SEGMENT_COUNTS = {
    "empty string": "",
    "one segment": _H,
    "two segments": f"{_H}.{_P}",
    "four segments": f"{_H}.{_P}.{_S}.",
    "five segments": f"{_H}.{_P}.{_S}.{_S}.{_S}",
}


@pytest.mark.points(1)
@pytest.mark.parametrize("token", list(SEGMENT_COUNTS.values()), ids=list(SEGMENT_COUNTS))
def test_wrong_segment_count_is_rejected(token, request):
    """A token that does not have exactly three dot-separated segments is rejected."""
    check_rejected(token, request.node.callspec.id)


def _bad_base64() -> dict[str, str]:
    token = mint({"sub": "alice", "admin": False})
    header, payload, signature = segments(token)
    padded = payload + "=" * (-len(payload) % 4 or 4)
    # Each forgery is signed over its exact text, so only the base64url check can catch it.
    return {
        "payload with '=' padding": sign_segments(header, padded),
        "payload with a '!' inside": sign_segments(header, payload[:5] + "!" + payload[5:]),
        "payload with a space inside": sign_segments(header, payload[:5] + " " + payload[5:]),
        "payload with a newline": sign_segments(header, payload[:5] + "\n" + payload[5:]),
        "header with '==' padding": sign_segments(header + "==", payload),
        "header with a '+' inside": sign_segments(header.replace("J", "J+", 1), payload),
        "payload of length 4k+1": sign_segments(header, payload + "A"),
        "signature with '=' padding": f"{header}.{payload}.{signature}=",
        "signature with a '*' inside": f"{header}.{payload}.{signature[:10]}*{signature[10:]}",
        "signature with a non-ASCII char": f"{header}.{payload}.{signature[:10]}é{signature[10:]}",
    }


BAD_BASE64 = _bad_base64()


@pytest.mark.points(1)
@pytest.mark.parametrize("token", list(BAD_BASE64.values()), ids=list(BAD_BASE64))
def test_bad_base64_is_rejected(token, request):
    """Segments that are not unpadded base64url are rejected, even when the MAC covers them (RFC 7515 §2)."""
    check_rejected(token, request.node.callspec.id)


@pytest.mark.points(2)
@pytest.mark.parametrize("unused", [1, 2, 3], ids=["low bit set", "second bit set", "both set"])
def test_a_non_canonical_signature_spelling_is_rejected(unused):
    """A signature re-spelled with the unused bits of its last character set (same bytes, other text) is rejected (RFC 4648 §3.5)."""
    header, payload, signature = segments(mint({"sub": "alice", "admin": False}))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    # 32 bytes -> 43 characters; the last character carries 4 data bits and 2 unused bits.
    twin = signature[:-1] + alphabet[last | unused]
    assert b64url_decode_oracle(twin) == b64url_decode_oracle(signature), "oracle sanity"
    check_rejected(f"{header}.{payload}.{twin}", "signature re-spelled with unused bits set")


_GOOD_HEADER = json.dumps({"alg": "HS256"}).encode()
NON_OBJECTS = {
    "header that is not UTF-8": (b"\xff\xfe{}", b"{}"),
    "header that is not JSON": (b"not json", b"{}"),
    "header that is a JSON array": (b'["HS256"]', b"{}"),
    "header that is JSON null": (b"null", b"{}"),
    "header that is a JSON string": (b'"HS256"', b"{}"),
    "payload that is not UTF-8": (_GOOD_HEADER, b"\xc3\x28"),
    "payload that is not JSON": (_GOOD_HEADER, b"{sub: 1}"),
    "payload that is a JSON array": (_GOOD_HEADER, b"[1, 2]"),
    "payload that is a JSON number": (_GOOD_HEADER, b"42"),
    "empty payload": (_GOOD_HEADER, b""),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("parts", list(NON_OBJECTS.values()), ids=list(NON_OBJECTS))
def test_non_object_json_is_rejected(parts, request):
    """A correctly signed token whose header or payload is not a JSON object raises InvalidToken."""
    header, payload = parts
    check_rejected(sign_raw(header, payload), request.node.callspec.id)


@pytest.mark.points(2)
@settings(max_examples=300)
@given(st.text(alphabet="AJQWeyz019-_.=+/ \x00é", max_size=60))
@example("")
@example(".")
@example("..")
@example("...")
@example("A.A.A")
@example("eyJ.eyJ.")
@example("==.==.==")
@example("\x00")
def test_garbage_raises_invalid_token(text):
    """Any string that is not a validly signed token raises InvalidToken, never another error."""
    check_rejected(text, f"{text!r}")


EDITED = mint({"sub": "alice", "roles": ["user"], "exp": NOW + 600})  # PyJWT: deterministic
SIGNED = EDITED[: EDITED.rindex(".")]


@pytest.mark.points(2)
@settings(max_examples=200)
@given(st.integers(0, len(SIGNED) - 1), st.sampled_from("AQgw09-_.aZ="))
@example(0, "A")  # the first character of the header
@example(SIGNED.index(".") - 1, "A")  # the last character of the header
@example(SIGNED.index("."), "A")  # the dot between header and payload
@example(SIGNED.index(".") + 1, "A")  # the first character of the payload
@example(len(SIGNED) - 1, "A")  # the last character of the payload (unused bits)
def test_any_edit_of_header_or_payload_is_rejected(index, char):
    """Changing any single character of a token's header or payload segment makes it invalid."""
    if SIGNED[index] == char:
        char = "B" if char != "B" else "C"
    forged = SIGNED[:index] + char + SIGNED[index + 1 :] + EDITED[EDITED.rindex(".") :]
    check_rejected(forged, f"token with character {index} changed to {char!r}")


# --- time claims ----------------------------------------------------------------------------


@pytest.mark.points(3)
def test_exp_boundary_with_leeway():
    """A token is valid while now < exp + leeway and invalid from now == exp + leeway on."""
    exp = NOW + 100
    claims = {"sub": "alice", "exp": exp}
    token = mint(claims)
    check_accepted(token, claims, "token with exp", now=exp - 1)
    check_accepted(token, claims, "token with exp", now=exp - 0.001)
    check_rejected(token, "token with exp", now=exp)
    check_rejected(token, "token with exp", now=exp + 1000)
    check_accepted(token, claims, "token with exp", now=exp + 29.5, leeway=30)
    check_rejected(token, "token with exp", now=exp + 30, leeway=30)
    check_rejected(token, "token with exp", now=exp + 31, leeway=30)


@pytest.mark.points(2)
def test_nbf_boundary_with_leeway():
    """A token is valid from now == nbf - leeway on, and invalid before that."""
    nbf = NOW + 100
    claims = {"sub": "alice", "nbf": nbf}
    token = mint(claims)
    check_accepted(token, claims, "token with nbf", now=nbf)
    check_accepted(token, claims, "token with nbf", now=nbf + 1000)
    check_rejected(token, "token with nbf", now=nbf - 0.001)
    check_accepted(token, claims, "token with nbf", now=nbf - 30, leeway=30)
    check_rejected(token, "token with nbf", now=nbf - 31, leeway=30)


_TIME_HEADER = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
NOT_NUMBERS = {
    f"{claim} = {raw}": f'{{"sub": "alice", "{claim}": {raw}}}'.encode()
    for raw in ['"9999999999"', "true", "false", "null", "[9999999999]", "{}", "NaN", "Infinity"]
    for claim in (("exp", "nbf") if raw in ('"9999999999"', "NaN", "true") else ("exp",))
}
NOT_NUMBERS["exp = 1e400 (infinite as a float)"] = b'{"exp": 1e400}'
NOT_NUMBERS["exp = 10**400 (too big for a float)"] = b'{"exp": 1' + b"0" * 400 + b"}"


@pytest.mark.points(1)
@pytest.mark.parametrize("payload", list(NOT_NUMBERS.values()), ids=list(NOT_NUMBERS))
def test_non_numeric_exp_is_rejected(payload, request):
    """An exp or nbf that is not a finite JSON number (string, boolean, null, NaN...) is invalid (RFC 7519 §2)."""
    check_rejected(sign_raw(_TIME_HEADER, payload), f"token with {request.node.callspec.id}")


# --- issuer and audience --------------------------------------------------------------------


@pytest.mark.points(2)
def test_issuer_is_checked_when_configured():
    """With issuer set, iss must equal it; a missing or different iss is rejected."""
    good = {"iss": "https://auth.example", "sub": "alice"}
    check_accepted(mint(good), good, "token with the right iss", issuer="https://auth.example")
    check_accepted(mint(good), good, "token with an iss, no issuer configured")
    for claims, why in [
        ({"iss": "https://evil.example", "sub": "a"}, "token with another iss"),
        ({"sub": "a"}, "token without iss"),
        ({"iss": "https://auth.example.evil", "sub": "a"}, "token with a longer iss"),
    ]:
        check_rejected(mint(claims), why, issuer="https://auth.example")
    forged = sign_json({"alg": "HS256"}, {"iss": ["https://auth.example"]})
    check_rejected(forged, "token with iss as a list", issuer="https://auth.example")


@pytest.mark.points(2)
def test_audience_string_or_list():
    """With an audience configured, aud must be it or a list holding it (RFC 7519 §4.1.3)."""
    for aud in ("api", ["api"], ["billing", "api"]):
        claims = {"sub": "alice", "aud": aud}
        check_accepted(mint(claims), claims, f"token with aud {aud!r}", audience="api")
    for claims, why in [
        ({"sub": "a", "aud": "billing"}, "token with aud 'billing'"),
        ({"sub": "a", "aud": ["billing", "web"]}, "token with aud ['billing', 'web']"),
        ({"sub": "a", "aud": "apiary"}, "token with aud 'apiary'"),
        ({"sub": "a", "aud": []}, "token with aud []"),
        ({"sub": "a"}, "token without aud"),
    ]:
        check_rejected(mint(claims), why, audience="api")


@pytest.mark.points(1)
@pytest.mark.parametrize("aud", ["billing", ["billing", "api"], []], ids=repr)
def test_a_token_with_aud_is_rejected_when_no_audience_is_configured(aud):
    """With no audience configured, a token that has aud at all is rejected (RFC 7519 §4.1.3)."""
    check_rejected(
        mint({"sub": "a", "aud": aud}), f"token with aud {aud!r}, no audience configured"
    )


# --- the comparison -------------------------------------------------------------------------


@pytest.mark.points(3)
def test_signature_compared_with_compare_digest(monkeypatch):
    """The MAC is compared with hmac.compare_digest (constant time), for good and bad signatures."""
    good = mint({"sub": "alice"})
    header, payload, signature = segments(good)
    bad_signature = hs256(f"{header}.{payload}", OTHER_KEY)
    expected = b64url_decode_oracle(signature)
    calls = spy_compare_digest(monkeypatch, auth_middleware)

    for sig, why in [(signature, "valid token"), (bad_signature, "token with a wrong MAC")]:
        calls.clear()
        outcome(f"{header}.{payload}.{sig}")
        in_bytes = compared(calls, expected, b64url_decode_oracle(sig))
        in_text = compared(calls, signature.encode(), sig.encode())
        assert in_bytes or in_text, called(
            f"verify_jwt(<{why}>) with hmac.compare_digest recorded",
            f"{len(calls)} compare_digest call(s), none comparing the computed MAC with the "
            "token's signature",
            show_expected=False,
        )
    check_rejected(f"{header}.{payload}.{bad_signature}", "token with a wrong MAC")


@pytest.mark.points(1)
def test_invalid_token_carries_a_reason():
    """InvalidToken is an Exception whose .reason is a short non-empty printable-ASCII string."""
    header, payload, _ = segments(mint({"sub": "a"}))
    for token in (
        "x",
        f"{header}.{payload}.",
        mint({"exp": NOW - 1}),
        mint({"sub": "a"}, OTHER_KEY),
    ):
        try:
            verify_jwt(token, KEY, now=NOW)
        except InvalidToken as exc:
            reason = exc.reason
            ok = (
                isinstance(exc, Exception)
                and isinstance(reason, str)
                and 0 < len(reason) <= 200
                and all(" " <= ch <= "~" and ch not in '"\\' for ch in reason)
            )
            assert ok, called(
                f"verify_jwt({short(token, 40)}) -> InvalidToken(...).reason",
                reason,
                "a non-empty printable-ASCII string without quotes or backslashes",
            )
        else:
            raise AssertionError(
                called(f"verify_jwt({short(token, 40)})", "claims", "InvalidToken")
            )


# --- b64url_decode --------------------------------------------------------------------------


B64_VALID = [b"", b"f", b"fo", b"foo", b"\xfb\xff\xbf", bytes(range(256))]
B64_INVALID = ["Zg==", "Zg=", "Zm9v+", "Zm9v/", "Zm9", "Z", "Zm 9v", "Zh", "-_+/"]


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "raw", B64_VALID, ids=["0 bytes", "1 byte", "2 bytes", "3 bytes", "- and _", "256 bytes"]
)
def test_b64url_decode_decodes_unpadded_base64url(raw):
    """b64url_decode decodes unpadded base64url of any length (0, 1, 2, 3 bytes mod 3)."""
    text = b64(raw)
    try:
        got = b64url_decode(text)
    except InvalidToken as exc:
        got = f"InvalidToken({exc.reason!r})"
    assert got == raw, called(f"b64url_decode({short(text, 40)})", got, raw)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "text",
    B64_INVALID,
    ids=[
        "two pad chars",
        "one pad char",
        "a plus",
        "a slash",
        "length 4k+3, unused bits set",
        "length 4k+1",
        "a space",
        "unused bits set",
        "the standard alphabet",
    ],
)
def test_b64url_decode_rejects_anything_else(text):
    """b64url_decode raises InvalidToken for padding, + and /, spaces, a length of 4k+1, non-canonical bits."""
    try:
        got = b64url_decode(text)
    except InvalidToken:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        got = exc
    raise AssertionError(called(f"b64url_decode({text!r})", got, "InvalidToken"))

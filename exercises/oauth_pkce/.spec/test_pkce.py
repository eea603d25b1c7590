"""Hidden specs for the pure parts: PKCE helpers and the client side of the flow.

Oracles: the RFC 7636 Appendix B vector, hashlib + base64 (``oracle_s256``), httpx's URL parser.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from _helpers import (
    APP_CB,
    APPENDIX_B_CHALLENGE,
    APPENDIX_B_OCTETS,
    APPENDIX_B_VERIFIER,
    ISSUER,
    oracle_s256,
    query_of,
)
from hypothesis import example, given
from hypothesis import strategies as st
from oauth_pkce import (
    AuthorizationError,
    PendingAuthorization,
    b64url,
    begin_authorization,
    finish_authorization,
    is_valid_verifier,
    s256,
)

from grader.spectools import called, step

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
verifiers = st.text(alphabet=UNRESERVED, min_size=43, max_size=128)


def feeder(*chunks: bytes):
    """A token_bytes that hands out ``chunks`` in order (each must be asked with its length)."""
    queue = list(chunks)
    asked: list[int] = []

    def token_bytes(n: int) -> bytes:
        asked.append(n)
        if not queue:
            raise AssertionError(f"token_bytes called more than {len(chunks)} times")
        chunk = queue.pop(0)
        if n != len(chunk):
            raise AssertionError(f"token_bytes({n}) called; expected token_bytes({len(chunk)})")
        return chunk

    return token_bytes, asked


# --- PKCE helpers ---------------------------------------------------------------------------


@pytest.mark.points(3)
def test_s256_matches_rfc7636_appendix_b():
    """s256 of the RFC 7636 Appendix B verifier is the published challenge (RFC 7636 §4.2)."""
    got = s256(APPENDIX_B_VERIFIER)
    assert got == APPENDIX_B_CHALLENGE, called(
        f"s256({APPENDIX_B_VERIFIER!r})", got, APPENDIX_B_CHALLENGE
    )


@given(verifiers)
@example("a" * 43)
@example("~" * 128)
@example("-._~" * 11)
def test_s256_is_base64url_sha256_without_padding(verifier):
    """s256 is BASE64URL-ENCODE(SHA256(ASCII(verifier))) with no "=" padding, for any verifier."""
    got = s256(verifier)
    want = oracle_s256(verifier)
    assert got == want, called(f"s256({verifier!r})", got, want)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (b"", ""),
        (b"\x00", "AA"),
        (b"\xfb\xff", "-_8"),
        (b"\xfb\xff\xbf", "-_-_"),
        (APPENDIX_B_OCTETS, APPENDIX_B_VERIFIER),
    ],
    ids=["empty", "one-byte", "two-bytes-url-alphabet", "three-bytes", "appendix-b-octets"],
)
def test_b64url_is_unpadded_url_safe_base64(raw, want):
    """b64url uses "-" and "_" and never pads with "=" (RFC 7636 Appendix A)."""
    got = b64url(raw)
    assert got == want, called(f"b64url({raw!r})", got, want)


@given(st.binary(max_size=80))
@example(b"")
@example(b"\xff" * 31)
def test_b64url_round_trips(raw):
    """b64url(raw) decodes back to raw with the standard library's urlsafe decoder."""
    got = b64url(raw)
    decoded = base64.urlsafe_b64decode(got + "=" * (-len(got) % 4))
    assert decoded == raw and "=" not in got, called(f"b64url({raw!r})", got, "unpadded base64url")


@pytest.mark.parametrize(
    ("verifier", "want"),
    [
        ("a" * 42, False),
        ("a" * 43, True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        ("A-._~" + "z9" * 19, True),
        ("a" * 42 + "+", False),
        ("a" * 42 + "/", False),
        ("a" * 42 + "=", False),
        ("a" * 42 + " ", False),
        ("a" * 42 + "\n", False),
        ("a" * 42 + "é", False),
        ("a" * 42 + "٣", False),
    ],
    ids=[
        "42-chars",
        "43-chars",
        "128-chars",
        "129-chars",
        "empty",
        "every-punctuation",
        "plus",
        "slash",
        "equals",
        "space",
        "trailing-newline",
        "non-ascii-letter",
        "non-ascii-digit",
    ],
)
def test_verifier_syntax(verifier, want):
    """A code_verifier is 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)."""
    got = is_valid_verifier(verifier)
    assert got is want, called(f"is_valid_verifier({verifier!r})", got, want)


# --- the client side ------------------------------------------------------------------------


@pytest.mark.points(3)
def test_begin_authorization_builds_the_rfc_request():
    """begin_authorization turns 32 random octets into the verifier and asks with its S256 challenge."""
    state_bytes = bytes(range(16))
    token_bytes, _ = feeder(APPENDIX_B_OCTETS, state_bytes)
    with step("begin_authorization(...) with the RFC 7636 Appendix B octets"):
        pending = begin_authorization(
            ISSUER + "/authorize",
            client_id="app",
            redirect_uri=APP_CB,
            scope="profile email",
            token_bytes=token_bytes,
        )
    call = "begin_authorization(...) fed the RFC 7636 Appendix B octets"
    assert pending.code_verifier == APPENDIX_B_VERIFIER, called(
        f"{call}.code_verifier", pending.code_verifier, APPENDIX_B_VERIFIER
    )
    want_state = base64.urlsafe_b64encode(state_bytes).rstrip(b"=").decode()
    assert pending.state == want_state, called(f"{call}.state", pending.state, want_state)
    url = httpx.URL(pending.url)
    assert f"{url.scheme}://{url.host}{url.path}" == ISSUER + "/authorize", called(
        f"{call}.url", pending.url, ISSUER + "/authorize?..."
    )
    want = {
        "response_type": ["code"],
        "client_id": ["app"],
        "redirect_uri": [APP_CB],
        "state": [want_state],
        "code_challenge": [APPENDIX_B_CHALLENGE],
        "code_challenge_method": ["S256"],
        "scope": ["profile email"],
    }
    got = query_of(pending.url)
    assert got == want, called(f"{call}.url query", got, want)
    assert (pending.client_id, pending.redirect_uri) == ("app", APP_CB), called(
        f"{call}: (client_id, redirect_uri)",
        (pending.client_id, pending.redirect_uri),
        ("app", APP_CB),
    )


def test_begin_authorization_keeps_the_endpoint_query():
    """An authorize endpoint that already has a query keeps it; the parameters are added after it."""
    token_bytes, _ = feeder(APPENDIX_B_OCTETS, bytes(16))
    with step("begin_authorization('https://auth.example/authorize?tenant=7', ...)"):
        pending = begin_authorization(
            ISSUER + "/authorize?tenant=7",
            client_id="app",
            redirect_uri=APP_CB,
            token_bytes=token_bytes,
        )
    got = query_of(pending.url)
    ok = got.get("tenant") == ["7"] and got.get("code_challenge") == [APPENDIX_B_CHALLENGE]
    assert ok and "scope" not in got, called(
        "begin_authorization(endpoint with ?tenant=7, no scope).url",
        pending.url,
        "...?tenant=7&response_type=code&... (and no scope parameter)",
    )


def pending() -> PendingAuthorization:
    return PendingAuthorization(
        url=ISSUER + "/authorize?...",
        state="st4te-value",
        code_verifier=APPENDIX_B_VERIFIER,
        client_id="app",
        redirect_uri=APP_CB,
    )


@pytest.mark.points(2)
def test_finish_authorization_returns_the_token_form():
    """A callback with the right state and iss gives the token request form with the verifier."""
    callback = APP_CB + "?code=c0de&state=st4te-value&iss=https%3A%2F%2Fauth.example"
    with step(f"finish_authorization(pending, {callback!r}, issuer={ISSUER!r})"):
        got = finish_authorization(pending(), callback, issuer=ISSUER)
    want = {
        "grant_type": "authorization_code",
        "code": "c0de",
        "redirect_uri": APP_CB,
        "client_id": "app",
        "code_verifier": APPENDIX_B_VERIFIER,
    }
    assert got == want, called(f"finish_authorization(pending, {callback!r})", got, want)


ISS = "&iss=https%3A%2F%2Fauth.example"


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("query", "want"),
    [
        ("code=c0de" + ISS, "state_mismatch"),
        ("code=c0de&state=attacker" + ISS, "state_mismatch"),
        ("code=c0de&state=st4te-valu" + ISS, "state_mismatch"),
        ("code=c0de&state=%C3%A9t%C3%A9" + ISS, "state_mismatch"),
        ("code=c0de&state=st4te-value", "issuer_mismatch"),
        ("code=c0de&state=st4te-value&iss=https%3A%2F%2Fevil.example", "issuer_mismatch"),
        ("code=c0de&state=st4te-value&iss=https%3A%2F%2Fauth.example%2F", "issuer_mismatch"),
        ("error=access_denied&state=st4te-value" + ISS, "access_denied"),
        ("error=access_denied&state=other" + ISS, "state_mismatch"),
        ("state=st4te-value" + ISS, "invalid_request"),
        ("code=a&code=b&state=st4te-value" + ISS, "invalid_request"),
    ],
    ids=[
        "no-state",
        "other-state",
        "state-prefix",
        "non-ascii-state",
        "no-iss",
        "other-iss",
        "iss-with-trailing-slash",
        "error-response",
        "error-with-wrong-state",
        "no-code",
        "code-twice",
    ],
)
def test_finish_authorization_refuses(query, want):
    """A callback with a foreign state (CSRF, RFC 6749 §10.12) or another iss (mix-up, RFC 9207 §2.4) is refused."""
    callback = f"{APP_CB}?{query}"
    call = (
        f"finish_authorization(pending with state 'st4te-value', {callback!r}, issuer={ISSUER!r})"
    )
    try:
        got = finish_authorization(pending(), callback, issuer=ISSUER)
    except AuthorizationError as exc:
        assert exc.error == want, called(call, f"AuthorizationError({exc.error!r})", want)
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        raise AssertionError(
            called(call, f"raised {type(exc).__name__}: {exc}", f"AuthorizationError({want!r})")
        ) from None
    raise AssertionError(called(call, got, f"AuthorizationError({want!r})"))

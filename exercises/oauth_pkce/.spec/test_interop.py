"""Hidden specs with an independent client: Authlib's OAuth 2.0 and PKCE code talks to the server.

Authlib builds the authorization URL and the token request and parses the authorization
response (``authlib.oauth2.rfc6749.parameters``, ``authlib.oauth2.rfc7636``); the learner's
server must interoperate with it, and the learner's PKCE helpers must agree with it.
"""

from __future__ import annotations

import pytest
from _helpers import APP_CB, ISSUER, Browser, World, describe, json_of, userinfo
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import (
    parse_authorization_code_response,
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from hypothesis import example, given
from hypothesis import strategies as st
from oauth_pkce import s256

from grader.spectools import called, short

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


@given(st.text(alphabet=UNRESERVED, min_size=43, max_size=128))
@example("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
@example("~" * 43)
@example("0" * 128)
def test_s256_agrees_with_authlib(verifier):
    """s256 computes the same challenge as Authlib's create_s256_code_challenge (RFC 7636 §4.2)."""
    got = s256(verifier)
    want = create_s256_code_challenge(verifier)
    assert got == want, called(f"s256({verifier!r})", got, want)


@pytest.mark.points(3)
async def test_authlib_client_completes_the_flow():
    """A client built on Authlib gets a code, checks state, and redeems it with its verifier."""
    world = World()
    browser = world.browser()
    await browser.sign_in()
    verifier = generate_token(64)  # Authlib's own 64-character verifier
    state = generate_token(20)
    url = prepare_grant_uri(
        ISSUER + "/authorize",
        "app",
        "code",
        redirect_uri=APP_CB,
        scope="profile email",
        state=state,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    response = await browser.go("GET", url)
    location = response.headers.get("location", "")
    assert response.status_code in (302, 303) and location.startswith(APP_CB + "?"), (
        f"Sent Authlib's authorization request; got {describe(response)}; expected a redirect "
        f"to {APP_CB}"
    )
    try:
        params = parse_authorization_code_response(location, state=state)
    except Exception as exc:
        raise AssertionError(
            called("Authlib parse_authorization_code_response(Location)", repr(exc), "a code")
        ) from None
    assert params.get("iss") == ISSUER, called("the iss Authlib read", params.get("iss"), ISSUER)
    body = prepare_token_request(
        "authorization_code",
        code=params["code"],
        redirect_uri=APP_CB,
        client_id="app",
        code_verifier=verifier,
    )
    client = Browser(world.server)  # the back channel: no cookies
    token = await client.send(
        "POST",
        "/token",
        content=body.encode("ascii"),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    payload = json_of(token)
    ok = token.status_code == 200 and isinstance(payload, dict) and payload.get("access_token")
    assert ok, called(f"POST /token with Authlib's body {short(body, 80)}", describe(token), 200)
    assert payload.get("scope") == "profile email", called(
        "POST /token: scope", payload.get("scope"), "profile email"
    )
    info = await userinfo(world, payload["access_token"])
    assert (json_of(info) or {}).get("sub") == "alice", called(
        "GET /userinfo with the token Authlib got", describe(info), '{"sub": "alice", ...}'
    )

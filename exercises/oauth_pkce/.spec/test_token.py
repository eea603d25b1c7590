"""Hidden specs for the token endpoint and the access tokens it issues.

Each spec gets a code the honest way (a signed-in browser at /authorize), then plays the client
or the attacker at /token from a back channel without cookies.
"""

from __future__ import annotations

import pytest
from _helpers import (
    APP_CB,
    APP_CB2,
    APPENDIX_B_CHALLENGE,
    APPENDIX_B_VERIFIER,
    CODE_LIFETIME,
    OTHER_CB,
    TOKEN_LIFETIME,
    World,
    describe,
    get_code,
    json_of,
    oracle_s256,
    token_form,
    token_request,
    userinfo,
)

from grader.spectools import called, short


async def new_code(world: World, verifier: str | None = None, **params) -> tuple[str, str]:
    verifier = verifier or world.verifier()
    browser = world.browser()
    await browser.sign_in()
    code, _ = await get_code(world, browser, verifier, **params)
    return code, verifier


def brief(response) -> str:
    return f"{response.status_code} {short(json_of(response) or response.text, 100)}"


async def expect_token(world: World, form, why: str) -> str:
    response = await token_request(world, form)
    body = json_of(response)
    ok = (
        response.status_code == 200
        and isinstance(body, dict)
        and isinstance(body.get("access_token"), str)
        and body["access_token"]
    )
    assert ok, f"POST /token {why}; got {brief(response)}; expected 200 with an access_token"
    return body["access_token"]


async def expect_error(world: World, form, error: str, why: str, status: int = 400, **kw):
    response = await token_request(world, form, **kw)
    body = json_of(response)
    got = (response.status_code, body.get("error") if isinstance(body, dict) else None)
    assert got == (status, error), called(
        f"POST /token {why}", brief(response), f"{status} {error}"
    )
    return response


# --- success --------------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_code_and_verifier_buy_a_bearer_token():
    """The code and its verifier get a Bearer access token that /userinfo accepts for the user (RFC 6749 §5.1)."""
    world = World()
    code, verifier = await new_code(world)
    response = await token_request(world, token_form(code, verifier))
    body = json_of(response)
    assert response.status_code == 200 and isinstance(body, dict), called(
        "POST /token with the code and its verifier", brief(response), "200 with JSON"
    )
    want = {"token_type": "Bearer", "expires_in": int(TOKEN_LIFETIME), "scope": "profile"}
    got = {key: body.get(key) for key in want}
    assert got == want and body.get("access_token"), called(
        "POST /token: the JSON body", body, {"access_token": "...", **want}
    )
    assert response.headers.get("content-type", "").startswith("application/json"), called(
        "POST /token: Content-Type", response.headers.get("content-type"), "application/json"
    )
    assert "no-store" in response.headers.get("cache-control", ""), called(
        "POST /token: Cache-Control (RFC 6749 §5.1 MUST)",
        response.headers.get("cache-control"),
        "no-store",
    )
    info = await userinfo(world, body["access_token"])
    assert info.status_code == 200 and (json_of(info) or {}).get("sub") == "alice", called(
        "GET /userinfo with the new access token", brief(info), '200 {"sub": "alice", ...}'
    )


@pytest.mark.points(2)
async def test_rfc7636_appendix_b_verifier_redeems_its_challenge():
    """A code asked for with the Appendix B challenge is redeemed with the Appendix B verifier (RFC 7636 §4.6)."""
    world = World()
    code, _ = await new_code(world, APPENDIX_B_VERIFIER)
    await expect_token(
        world,
        token_form(code, APPENDIX_B_VERIFIER),
        f"with the RFC 7636 Appendix B verifier (challenge {APPENDIX_B_CHALLENGE})",
    )


@pytest.mark.parametrize("length", [43, 128], ids=["43-chars", "128-chars"])
async def test_verifier_length_limits_are_inclusive(length):
    """Verifiers of exactly 43 and exactly 128 characters are accepted (RFC 7636 §4.1)."""
    world = World()
    verifier = world.verifier(length)
    code, _ = await new_code(world, verifier)
    await expect_token(world, token_form(code, verifier), f"with a {length}-character verifier")


# --- the attacks ----------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_code_replay_is_refused_and_revokes_the_token():
    """A second use of a code gets invalid_grant and revokes the token the first use got (RFC 6749 §4.1.2, RFC 9700 §4.2.4)."""
    world = World()
    code, verifier = await new_code(world)
    first = await expect_token(world, token_form(code, verifier), "the first time")
    await expect_error(world, token_form(code, verifier), "invalid_grant", "a second time")
    info = await userinfo(world, first)
    assert info.status_code == 401, called(
        "GET /userinfo with the token from the first use, after the code was replayed",
        brief(info),
        "401 (revoked)",
    )


@pytest.mark.points(3)
async def test_stolen_code_with_another_verifier_is_refused():
    """A code presented with another verifier gets invalid_grant, and the real client can still redeem it (RFC 7636 §4.6, RFC 9700 §4.5)."""
    world = World()
    code, verifier = await new_code(world)
    attacker = world.verifier()
    await expect_error(
        world, token_form(code, attacker), "invalid_grant", "with the attacker's verifier"
    )
    await expect_token(
        world, token_form(code, verifier), "with the right verifier, after the attack"
    )


@pytest.mark.points(2)
async def test_challenge_itself_is_not_a_verifier():
    """Sending the challenge as the verifier (the "plain" comparison) gets invalid_grant (RFC 7636 §4.6, RFC 9700 §4.8)."""
    world = World()
    code, verifier = await new_code(world)
    challenge = oracle_s256(verifier)
    await expect_error(
        world,
        token_form(code, challenge),
        "invalid_grant",
        "with code_verifier = the code_challenge",
    )


@pytest.mark.points(2)
async def test_redirect_uri_must_be_the_one_of_the_request():
    """A redirect_uri other than the authorization request's gets invalid_grant, even another registered one (RFC 6749 §4.1.3)."""
    world = World()
    code, verifier = await new_code(world)
    for redirect_uri in (APP_CB2, APP_CB + "/", "https://evil.example/cb"):
        await expect_error(
            world,
            token_form(code, verifier, redirect_uri=redirect_uri),
            "invalid_grant",
            f"with redirect_uri={redirect_uri!r} (the code was issued for {APP_CB})",
        )
    await expect_token(world, token_form(code, verifier), "with the right redirect_uri")


@pytest.mark.points(2)
async def test_code_is_bound_to_its_client():
    """A code issued to one client gets invalid_grant when another registered client redeems it (RFC 6749 §4.1.3)."""
    world = World()
    code, verifier = await new_code(world)
    await expect_error(
        world,
        token_form(code, verifier, client_id="other", redirect_uri=OTHER_CB),
        "invalid_grant",
        "as client 'other' with a code issued to 'app'",
    )
    await expect_error(
        world,
        token_form(code, verifier, client_id="twin"),
        "invalid_grant",
        f"as client 'twin' (also registered for {APP_CB}) with a code issued to 'app'",
    )


@pytest.mark.points(2)
async def test_unknown_client_is_invalid_client():
    """An unknown client_id gets 401 invalid_client with a WWW-Authenticate challenge (RFC 6749 §5.2, RFC 9110 §15.5.2)."""
    world = World()
    code, verifier = await new_code(world)
    response = await expect_error(
        world,
        token_form(code, verifier, client_id="nobody"),
        "invalid_client",
        "as client 'nobody'",
        401,
    )
    assert response.headers.get("www-authenticate"), called(
        "POST /token as an unknown client: WWW-Authenticate", None, "a challenge"
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("elapsed", "accepted"),
    [(CODE_LIFETIME - 1, True), (CODE_LIFETIME, False), (CODE_LIFETIME + 1, False)],
    ids=["lifetime-minus-1s", "at-lifetime", "lifetime-plus-1s"],
)
async def test_code_expires_after_its_lifetime(elapsed, accepted):
    """A code is good until code_lifetime seconds after it was issued, and not at that instant (RFC 6749 §4.1.2)."""
    world = World()
    code, verifier = await new_code(world)
    world.clock.advance(elapsed)
    why = f"{elapsed:g} s after the code was issued (lifetime {CODE_LIFETIME:g} s)"
    if accepted:
        await expect_token(world, token_form(code, verifier), why)
    else:
        await expect_error(world, token_form(code, verifier), "invalid_grant", why)


async def test_unknown_code_is_invalid_grant():
    """A code the server never issued gets invalid_grant (RFC 6749 §5.2)."""
    world = World()
    await new_code(world)
    await expect_error(
        world, token_form("made-up-code", world.verifier()), "invalid_grant", "with a made-up code"
    )


# --- malformed requests ---------------------------------------------------------------------


@pytest.mark.points(2)
async def test_missing_parameter_is_invalid_request():
    """A token request without grant_type, code, client_id, redirect_uri or code_verifier gets 400 invalid_request (RFC 6749 §5.2)."""
    world = World()
    code, verifier = await new_code(world)
    for name in ("grant_type", "code", "client_id", "redirect_uri", "code_verifier"):
        form = token_form(code, verifier, **{name: None})
        await expect_error(world, form, "invalid_request", f"without {name}")
    await expect_error(world, token_form(code, verifier, code=""), "invalid_request", "with code=")
    await expect_token(world, token_form(code, verifier), "with every parameter, after those")


@pytest.mark.points(2)
async def test_other_grant_types_are_unsupported():
    """A grant_type other than authorization_code gets 400 unsupported_grant_type (RFC 6749 §5.2)."""
    world = World()
    code, verifier = await new_code(world)
    for grant_type in (
        "password",
        "client_credentials",
        "implicit",
        "refresh_token",
        "AUTHORIZATION_CODE",
    ):
        form = token_form(code, verifier, grant_type=grant_type)
        await expect_error(world, form, "unsupported_grant_type", f"with grant_type={grant_type}")


@pytest.mark.points(2)
@pytest.mark.parametrize("length", [42, 129], ids=["42-chars", "129-chars"])
async def test_verifier_out_of_length_is_invalid_request(length):
    """A verifier of 42 or 129 characters is refused even when its S256 matches the challenge (RFC 7636 §4.1)."""
    world = World()
    verifier = world.verifier(length)
    code, _ = await new_code(world, verifier)
    await expect_error(
        world, token_form(code, verifier), "invalid_request", f"with a {length}-character verifier"
    )


async def test_repeated_parameter_is_invalid_request():
    """A token request with a parameter twice gets invalid_request (RFC 6749 §3.2)."""
    world = World()
    code, verifier = await new_code(world)
    form = list(token_form(code, verifier).items()) + [("code", code)]
    await expect_error(world, form, "invalid_request", "with code twice")


async def test_body_must_be_form_encoded():
    """A token request that is not application/x-www-form-urlencoded gets invalid_request (RFC 6749 §4.1.3)."""
    world = World()
    code, verifier = await new_code(world)
    await expect_error(
        world,
        token_form(code, verifier),
        "invalid_request",
        "with Content-Type: text/plain",
        content_type="text/plain",
    )


async def test_token_errors_are_json_and_not_cached():
    """Token errors are JSON with error and Cache-Control: no-store (RFC 6749 §5.2)."""
    world = World()
    response = await token_request(world, {"grant_type": "password"})
    ok = response.headers.get("content-type", "").startswith("application/json") and (
        "no-store" in response.headers.get("cache-control", "")
    )
    assert ok, called(
        "POST /token with grant_type=password: headers",
        dict(response.headers),
        "Content-Type: application/json and Cache-Control: no-store",
    )


# --- the access token -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "accepted"),
    [(TOKEN_LIFETIME - 1, True), (TOKEN_LIFETIME, False), (TOKEN_LIFETIME + 1, False)],
    ids=["lifetime-minus-1s", "at-lifetime", "lifetime-plus-1s"],
)
async def test_access_token_expires(elapsed, accepted):
    """An access token works until token_lifetime seconds after it was issued."""
    world = World()
    code, verifier = await new_code(world)
    token = await expect_token(world, token_form(code, verifier), "with a good code")
    world.clock.advance(elapsed)
    info = await userinfo(world, token)
    want = 200 if accepted else 401
    assert info.status_code == want, called(
        f"GET /userinfo {elapsed:g} s after the token was issued (lifetime {TOKEN_LIFETIME:g} s)",
        describe(info),
        want,
    )


async def test_userinfo_refuses_missing_and_unknown_tokens():
    """/userinfo without a token or with an unknown one is 401 with error="invalid_token" (RFC 6750 §3.1)."""
    world = World()
    browser = world.browser()
    for headers, why in (
        ({}, "without a token"),
        ({"authorization": "Bearer nope"}, "with an unknown token"),
    ):
        response = await browser.send("GET", "/userinfo", headers=headers)
        got = (
            response.status_code,
            "invalid_token" in response.headers.get("www-authenticate", ""),
        )
        assert got == (401, True), called(
            f"GET /userinfo {why}", describe(response), "401 invalid_token"
        )


async def test_replay_revokes_only_that_codes_tokens():
    """Revocation after a code replay takes back that code's tokens only; other codes' tokens keep working."""
    world = World()
    code, verifier = await new_code(world)
    other_code, other_verifier = await new_code(world)
    first = await expect_token(world, token_form(code, verifier), "the first time")
    other = await expect_token(world, token_form(other_code, other_verifier), "with another code")
    await expect_error(world, token_form(code, verifier), "invalid_grant", "a second time")
    got = ((await userinfo(world, first)).status_code, (await userinfo(world, other)).status_code)
    assert got == (401, 200), called(
        "GET /userinfo with the replayed code's token, then with another code's token",
        got,
        (401, 200),
    )

"""Hidden specs for the authorization endpoint, driven like a browser (httpx over ASGITransport).

The browser follows redirects on the server and stops at the one to the client; the query of
that redirect is decoded by httpx.
"""

from __future__ import annotations

import urllib.parse

import pytest
from _helpers import (
    APP_CB,
    APP_CB2,
    APPENDIX_B_VERIFIER,
    ISSUER,
    TENANT_CB,
    USERS,
    World,
    authorize_params,
    base_of,
    describe,
    form_inputs,
    get_code,
    query_of,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from grader.spectools import called


async def signed_in(world: World):
    browser = world.browser()
    await browser.sign_in()
    return browser


async def expect_error_page(browser, params, why):
    response = await browser.go("GET", "/authorize", params=params)
    location = response.headers.get("location")
    assert response.status_code == 400 and location is None, (
        f"Sent GET /authorize {why}; got {describe(response)}; expected 400 with an error "
        "page and no redirect"
    )


async def expect_error_redirect(browser, params, error, why, redirect_uri=APP_CB):
    response = await browser.go("GET", "/authorize", params=params)
    location = response.headers.get("location", "")
    got = query_of(location) if location else {}
    want = {"error": [error], "iss": [ISSUER]}
    if "state" in params:
        want["state"] = [params["state"]]
    ok = (
        response.status_code in (302, 303)
        and base_of(location) == base_of(redirect_uri)
        and {k: v for k, v in got.items() if k in ("error", "state", "iss")} == want
        and "code" not in got
    )
    assert ok, (
        f"Sent GET /authorize {why}; got {describe(response)}; expected a redirect to "
        f"{redirect_uri} with error={error}, the state and iss={ISSUER}, and no code"
    )


# --- the happy path -------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_full_flow_through_the_login_page():
    """A signed-out browser is sent to log in, then back, then to the client with code, state and iss."""
    world = World()
    browser = world.browser()
    params = authorize_params(world.verifier(), state="xyz")
    response = await browser.go("GET", "/authorize", params=params)
    assert response.status_code == 200 and "csrf_token" in response.text, (
        f"Sent GET /authorize signed out; after the server's redirects got "
        f"{describe(response)}; expected the login form"
    )
    inputs = form_inputs(response.text)
    form = {
        "csrf_token": inputs.get("csrf_token", ""),
        "next": inputs.get("next", ""),
        "username": "alice",
        "password": USERS["alice"],
    }
    response = await browser.go("POST", "/login", data=form)
    location = response.headers.get("location", "")
    got = query_of(location) if location else {}
    ok = (
        response.status_code in (302, 303)
        and base_of(location) == APP_CB
        and got.get("state") == ["xyz"]
        and got.get("iss") == [ISSUER]
        and len(got.get("code", [])) == 1
    )
    assert ok, (
        f"Posted the login form that GET /authorize led to; got {describe(response)}; "
        f"expected a redirect to {APP_CB}?code=...&state=xyz&iss={ISSUER}"
    )


@pytest.mark.points(2)
async def test_signed_in_user_gets_a_code_at_once():
    """A signed-in user is redirected straight to the client with a fresh code each time."""
    world = World()
    browser = await signed_in(world)
    first, _ = await get_code(world, browser, world.verifier())
    second, _ = await get_code(world, browser, world.verifier())
    assert first != second, called("GET /authorize twice", [first, second], "two different codes")
    assert len(first) >= 22, called(
        "GET /authorize", f"code {first!r}", "at least 128 bits of randomness (RFC 6749 §10.10)"
    )


async def test_redirects_are_never_307():
    """The redirect back to the client and the one after the login POST are 303 (RFC 9700 §4.12)."""
    world = World()
    browser = world.browser()
    await browser.sign_in()
    login_post = next(r for r in browser.history if r.request.method == "POST")
    _, to_client = await get_code(world, browser, world.verifier())
    got = (login_post.status_code, to_client.status_code)
    assert got == (303, 303), called(
        "POST /login, then GET /authorize: the redirect statuses", got, (303, 303)
    )


async def test_registered_query_is_kept():
    """A redirect URI registered with a query keeps it; code, state and iss are added (RFC 6749 §3.1.2)."""
    world = World()
    browser = await signed_in(world)
    _, response = await get_code(
        world, browser, world.verifier(), client_id="tenant", redirect_uri=TENANT_CB
    )
    location = response.headers["location"]
    got = query_of(location)
    ok = location.startswith(TENANT_CB + "&") and got.get("tenant") == ["7"] and "code" in got
    assert ok, called(
        f"GET /authorize with redirect_uri={TENANT_CB}", location, TENANT_CB + "&code=..."
    )


@pytest.mark.points(2)
async def test_state_is_echoed_exactly():
    """The state comes back exactly as sent, whatever characters it holds (RFC 6749 §4.1.2)."""
    world = World()
    browser = await signed_in(world)
    for state in (
        "a b+c&d=e/f?g#h%",
        "a&code=forged&iss=https://evil.example",
        "%20%2B",
        " ",
        "état ✓\u2028",
        "x" * 300,
    ):
        _, response = await get_code(world, browser, world.verifier(), state=state)
        got = query_of(response.headers["location"]).get("state")
        assert got == [state], called(f"GET /authorize with state={state!r}", got, [state])
    _, response = await get_code(world, browser, world.verifier(), state=None)
    got = query_of(response.headers["location"])
    assert "state" not in got, called("GET /authorize without state", got, "no state parameter")


# --- redirect URI and client checks (never redirect to an unchecked URI) --------------------

BAD_REDIRECTS = [
    "https://app.example/cb/",
    "https://app.example/CB",
    "https://APP.example/cb",
    "http://app.example/cb",
    "https://app.example:443/cb",
    "https://app.example/cb?x=1",
    "https://app.example/cb#frag",
    "https://app.example/cb/../evil",
    "https://app.example/cbx",
    "https://app.example/c",
    "https://app.example.evil.example/cb",
    "https://evil.example/cb",
    "https://app.example@evil.example/cb",
    "https://app.example/cb%2F..%2Fevil",
    " https://app.example/cb",
    "//app.example/cb",
]


@pytest.mark.points(4)
async def test_unregistered_redirect_uri_gets_an_error_page():
    """A redirect URI that is not exactly a registered one gets a 400 page, never a redirect (RFC 9700 §4.1.3, RFC 6749 §4.1.2.1)."""
    world = World()
    browser = await signed_in(world)
    for redirect_uri in BAD_REDIRECTS:
        params = authorize_params(world.verifier(), redirect_uri=redirect_uri)
        await expect_error_page(browser, params, f"with redirect_uri={redirect_uri!r}")


@pytest.mark.points(2)
async def test_bad_client_gets_an_error_page():
    """A missing or unknown client, or a redirect URI registered to another client, gets a 400 page (RFC 6749 §4.1.2.1)."""
    world = World()
    browser = await signed_in(world)
    for change, why in (
        ({"client_id": None}, "without client_id"),
        ({"client_id": "nobody"}, "with an unknown client_id"),
        ({"client_id": "other"}, f"as client 'other' with app's redirect_uri {APP_CB}"),
        ({"redirect_uri": None}, "without redirect_uri"),
        ({"redirect_uri": ""}, "with an empty redirect_uri"),
    ):
        params = authorize_params(world.verifier(), **change)
        await expect_error_page(browser, params, why)


async def test_repeated_client_or_redirect_uri_gets_an_error_page():
    """Two client_id or two redirect_uri parameters get a 400 page: which one would we trust? (RFC 6749 §3.1)."""
    world = World()
    browser = await signed_in(world)
    base = authorize_params(world.verifier())
    for name, extra in (("client_id", "app"), ("redirect_uri", APP_CB2)):
        query = urllib.parse.urlencode(base) + "&" + urllib.parse.urlencode({name: extra})
        response = await browser.go("GET", "/authorize?" + query)
        location = response.headers.get("location")
        assert response.status_code == 400 and location is None, (
            f"Sent GET /authorize with {name} twice; got {describe(response)}; expected 400 "
            "and no redirect"
        )


async def test_second_registered_uri_is_accepted():
    """Any one of a client's registered redirect URIs works, and the code goes to that one."""
    world = World()
    browser = await signed_in(world)
    _, response = await get_code(world, browser, world.verifier(), redirect_uri=APP_CB2)
    location = response.headers["location"]
    assert base_of(location) == APP_CB2, called(
        f"GET /authorize with redirect_uri={APP_CB2}", location, APP_CB2 + "?code=..."
    )


# --- errors that go back to the client ------------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.parametrize(
    "change",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge_method": "s256"},
        {"code_challenge_method": "S512"},
    ],
    ids=["plain", "method-missing-means-plain", "lowercase-s256", "unknown-method"],
)
async def test_pkce_downgrade_is_refused(change):
    """Only S256 is accepted; "plain", or no method (which means plain), gets error=invalid_request (RFC 7636 §4.3, §4.4.1; RFC 9700 §2.1.1)."""
    world = World()
    browser = await signed_in(world)
    params = authorize_params(world.verifier(), **change)
    await expect_error_redirect(browser, params, "invalid_request", f"with {change}")


@pytest.mark.points(2)
async def test_missing_or_malformed_challenge_is_refused():
    """A missing code_challenge, or one that is not 43 base64url characters, gets error=invalid_request (RFC 7636 §4.4.1)."""
    world = World()
    browser = await signed_in(world)
    for challenge in (None, "a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + "+", "a" * 42 + "."):
        params = authorize_params(world.verifier(), code_challenge=challenge)
        await expect_error_redirect(
            browser, params, "invalid_request", f"with code_challenge={challenge!r}"
        )


@pytest.mark.parametrize(
    ("response_type", "error"),
    [
        ("token", "unsupported_response_type"),
        ("id_token", "unsupported_response_type"),
        (None, "invalid_request"),
    ],
    ids=["implicit-token", "id-token", "missing"],
)
async def test_only_response_type_code(response_type, error):
    """response_type must be "code": the implicit grant is refused (RFC 9700 §2.1.2, RFC 6749 §4.1.2.1)."""
    world = World()
    browser = await signed_in(world)
    params = authorize_params(world.verifier(), response_type=response_type)
    await expect_error_redirect(browser, params, error, f"with response_type={response_type!r}")


async def test_repeated_parameter_is_invalid_request():
    """A parameter sent twice gets error=invalid_request (RFC 6749 §3.1)."""
    world = World()
    browser = await signed_in(world)
    params = authorize_params(world.verifier())
    query = urllib.parse.urlencode(params) + "&code_challenge_method=S256"
    response = await browser.go("GET", "/authorize?" + query)
    location = response.headers.get("location", "")
    got = query_of(location) if location else {}
    ok = (
        base_of(location) == APP_CB
        and got.get("error") == ["invalid_request"]
        and "code" not in got
    )
    assert ok, called(
        "GET /authorize with code_challenge_method twice",
        describe(response),
        "error=invalid_request",
    )


async def test_user_signs_in_before_any_error_redirect():
    """A signed-out user with an erroneous request is sent to log in before any redirect to the client (RFC 9700 §4.11.2)."""
    world = World()
    browser = world.browser()
    params = authorize_params(world.verifier(), code_challenge_method="plain")
    response = await browser.go("GET", "/authorize", params=params)
    location = response.headers.get("location", "")
    assert response.status_code == 200 and not location.startswith("https://app.example"), (
        f"Sent GET /authorize (plain PKCE) signed out; got {describe(response)}; expected the "
        "login page, not a redirect to the client"
    )


def near_miss(op: str, position: int, char: str) -> str:
    """APP_CB with one character inserted, deleted or replaced at ``position``."""
    i = position % (len(APP_CB) + 1)
    if op == "insert":
        return APP_CB[:i] + char + APP_CB[i:]
    j = min(i, len(APP_CB) - 1)
    if op == "delete":
        return APP_CB[:j] + APP_CB[j + 1 :]
    return APP_CB[:j] + char + APP_CB[j + 1 :]


@settings(max_examples=40)
@given(
    st.sampled_from(["insert", "delete", "replace"]),
    st.integers(min_value=0, max_value=len(APP_CB)),
    st.characters(min_codepoint=0x21, max_codepoint=0x7E),
)
@example("insert", len(APP_CB), "/")
@example("delete", len(APP_CB) - 1, "x")
@example("replace", 0, "H")
@example("insert", len("https://app.example"), ".")
@example("replace", len("https://app.example/c"), "B")
async def test_one_character_off_is_refused(op, position, char):
    """Any redirect URI one character away from a registered one gets the 400 page, never a redirect (RFC 9700 §2.1)."""
    redirect_uri = near_miss(op, position, char)
    if redirect_uri in (APP_CB, APP_CB2):
        return
    world = World()
    browser = world.browser()
    params = authorize_params(APPENDIX_B_VERIFIER, redirect_uri=redirect_uri)
    await expect_error_page(browser, params, f"with redirect_uri={redirect_uri!r}")

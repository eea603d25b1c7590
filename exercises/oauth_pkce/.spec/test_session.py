"""Hidden specs for the browser session: the cookie, login, CSRF, fixation, logout, expiry.

Set-Cookie headers are parsed by http.cookies.SimpleCookie (the oracle); the browser's
cookie jar is http.cookiejar under httpx.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import oauth_pkce
import pytest
from _helpers import (
    ISSUER,
    SECRET,
    SESSION_LIFETIME,
    USERS,
    World,
    as_bytes,
    b64url_decode,
    describe,
    form_inputs,
)
from oauth_pkce import SESSION_COOKIE, AuthorizationServer

from grader.spectools import bounded, called, short, spy_compare_digest

COOKIE = "__Host-session"


def set_cookies(response) -> list[str]:
    return response.headers.get_list("set-cookie")


def session_morsel(response):
    """The session cookie set by ``response``, parsed by SimpleCookie; None if not set."""
    for header in set_cookies(response):
        jar = SimpleCookie()
        jar.load(header)
        if COOKIE in jar:
            return jar[COOKIE]
    return None


async def login_post(browser, user="alice", password=None, csrf=None, next_url=None):
    inputs = await browser.login_form()
    form = {
        "csrf_token": inputs["csrf_token"] if csrf is None else csrf,
        "username": user,
        "password": USERS.get(user, "x") if password is None else password,
    }
    if next_url is not None:
        form["next"] = next_url
    return await browser.send("POST", "/login", data=form)


# --- the cookie -----------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_session_cookie_attributes():
    """The login cookie is __Host-session with Secure, HttpOnly, SameSite=Lax, Path=/ and no Domain."""
    assert SESSION_COOKIE == COOKIE, called("oauth_pkce.SESSION_COOKIE", SESSION_COOKIE, COOKIE)
    world = World()
    browser = world.browser()
    response = await login_post(browser)
    morsel = session_morsel(response)
    assert morsel is not None, called(
        "POST /login with good credentials: Set-Cookie", set_cookies(response), f"{COOKIE}=..."
    )
    got = {
        "secure": bool(morsel["secure"]),
        "httponly": bool(morsel["httponly"]),
        "samesite": morsel["samesite"].lower(),
        "path": morsel["path"],
        "domain": morsel["domain"],
    }
    want = {"secure": True, "httponly": True, "samesite": "lax", "path": "/", "domain": ""}
    assert got == want, called("POST /login: the session cookie's attributes", got, want)


async def test_login_page_sets_an_anonymous_session_with_a_csrf_token():
    """GET /login sets a session cookie and puts that session's CSRF token in the form."""
    world = World()
    browser = world.browser()
    response = await browser.send("GET", "/login")
    morsel = session_morsel(response)
    token = form_inputs(response.text).get("csrf_token")
    assert response.status_code == 200 and morsel is not None and token, called(
        "GET /login with no cookie",
        f"{describe(response)}, cookie set: {morsel is not None}, csrf_token: {token!r}",
        "200, a session cookie and a csrf_token input",
    )
    again = await browser.send("GET", "/login")
    token_again = form_inputs(again.text).get("csrf_token")
    assert session_morsel(again) is None and token_again == token, called(
        "GET /login a second time with the cookie",
        f"new cookie: {session_morsel(again) is not None}, csrf_token {token_again!r}",
        f"the same session (no new cookie) and the same csrf_token {token!r}",
    )


@pytest.mark.points(2)
async def test_forged_or_tampered_cookie_is_no_session():
    """A session cookie whose signature is wrong is ignored, even if its session id is real."""
    world = World()
    browser = world.browser()
    await browser.sign_in()
    value = browser.cookie(COOKIE) or ""
    session_id, _, signature = value.partition(".")
    flipped = signature[:-2] + ("A" if signature[-2:-1] != "A" else "B") + signature[-1:]
    for forged, why in (
        (f"{session_id}.{flipped}", "with one signature character changed"),
        (session_id, "without its signature"),
        (f"{session_id}.", "with an empty signature"),
        (f"x{session_id}.{signature}", "with the id changed"),
    ):
        thief = world.browser()
        thief.set_cookie(COOKIE, forged)
        who = await thief.signed_in_as()
        assert who is None, called(f"GET /account with alice's cookie {why}", who, None)
    owner = world.browser()
    owner.set_cookie("theme", "dark")
    owner.set_cookie(COOKIE, value, keep=True)
    owner.set_cookie("lang", "en", keep=True)
    who = await owner.signed_in_as()
    assert who == "alice", called(
        "GET /account with alice's untouched cookie between two others", who, "alice"
    )


# --- login ----------------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_login_rotates_the_session_against_fixation():
    """Login replaces the session id: a cookie planted before login is not signed in afterwards (session fixation)."""
    world = World()
    attacker = world.browser()
    await attacker.login_form()
    planted = attacker.cookie(COOKIE)
    victim = world.browser()
    victim.set_cookie(COOKIE, planted or "")
    response = await login_post(victim)
    new_value = victim.cookie(COOKIE)
    assert response.status_code == 303 and new_value and new_value != planted, called(
        "POST /login from a browser holding a planted session cookie",
        f"{describe(response)}, cookie {'unchanged' if new_value == planted else 'changed'}",
        "303 and a new session cookie",
    )
    assert await victim.signed_in_as() == "alice", "the victim is not signed in after login"
    who = await attacker.signed_in_as()
    assert who is None, called(
        "GET /account with the cookie planted before the victim's login", who, None
    )


@pytest.mark.points(3)
@pytest.mark.parametrize(
    "csrf",
    ["", "wrong-token", "other-session"],
    ids=["missing", "wrong", "token-of-another-session"],
)
async def test_login_needs_the_csrf_token_of_its_session(csrf):
    """POST /login without its session's CSRF token gets 403 and signs nobody in (login CSRF)."""
    world = World()
    if csrf == "other-session":
        csrf = (await world.browser().login_form())["csrf_token"]
    browser = world.browser()
    response = await login_post(browser, csrf=csrf)
    who = await browser.signed_in_as()
    assert response.status_code == 403 and who is None, called(
        f"POST /login with good credentials and csrf_token={short(csrf, 20)}",
        f"{describe(response)}, signed in as {who}",
        "403, nobody signed in",
    )


async def test_login_without_a_session_is_refused():
    """POST /login from a browser with no session at all (a cross-site form) gets 403."""
    world = World()
    browser = world.browser()
    response = await browser.send(
        "POST", "/login", data={"csrf_token": "x", "username": "alice", "password": USERS["alice"]}
    )
    assert response.status_code == 403, called(
        "POST /login with no session cookie", describe(response), 403
    )


@pytest.mark.points(2)
async def test_bad_credentials_sign_nobody_in_and_look_alike():
    """A wrong password and an unknown user get the same 200 page and sign nobody in."""
    world = World()
    pages = []
    for user, password in (("alice", "wrong"), ("mallory", USERS["alice"]), ("alice", "")):
        browser = world.browser()
        response = await login_post(browser, user=user, password=password)
        who = await browser.signed_in_as()
        assert response.status_code == 200 and who is None, called(
            f"POST /login as {user!r} with a bad password",
            f"{describe(response)}, signed in as {who}",
            "200 (the form again), nobody signed in",
        )
        token = form_inputs(response.text).get("csrf_token", "")
        pages.append(response.text.replace(token, "<token>") if token else response.text)
    assert pages[0] == pages[1], (
        "POST /login: the page for a wrong password differs from the page for an unknown user "
        "(it tells an attacker which usernames exist)"
    )


@pytest.mark.points(3)
async def test_login_is_not_an_open_redirect():
    """After login, next leads only to a path on this server; anything else goes to /account (RFC 9700 §2.1, §4.11)."""
    world = World()
    for target in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "/\n/evil.example/",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
    ):
        browser = world.browser()
        response = await login_post(browser, next_url=target)
        location = response.headers.get("location", "")
        assert response.status_code == 303 and location == "/account", called(
            f"POST /login with next={target!r}", describe(response), "303 Location: /account"
        )


async def test_login_follows_a_local_next():
    """After login, a next that is a path on this server is where the browser goes."""
    world = World()
    browser = world.browser()
    target = "/authorize?client_id=app&x=%2F%2Fy"
    response = await login_post(browser, next_url=target)
    assert response.headers.get("location") == target, called(
        f"POST /login with next={target!r}", describe(response), f"303 Location: {target}"
    )


async def test_login_page_escapes_next():
    """The login page HTML-escapes next, so a crafted link can't inject markup (XSS)."""
    world = World()
    browser = world.browser()
    evil = '"><script>alert(1)</script>'
    response = await browser.send("GET", "/login", params={"next": evil})
    ok = "<script>" not in response.text and form_inputs(response.text).get("next") == evil
    assert ok, called(
        f"GET /login?next={evil}",
        short(response.text, 300),
        "the value escaped inside the next input",
    )


# --- logout ---------------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_logout_ends_the_session_on_the_server():
    """Logout deletes the session: the old cookie, replayed, is signed in no more."""
    world = World()
    browser = world.browser()
    await browser.sign_in()
    old = browser.cookie(COOKIE) or ""
    token = await browser.csrf_of_account()
    response = await browser.send("POST", "/logout", data={"csrf_token": token})
    morsel = session_morsel(response)
    cleared = morsel is not None and (morsel["max-age"] == "0" or bool(morsel["expires"]))
    assert response.status_code == 303 and cleared, called(
        "POST /logout with the CSRF token",
        f"{describe(response)}, Set-Cookie {set_cookies(response)}",
        f"303 and {COOKIE} expired (Max-Age=0)",
    )
    replay = world.browser()
    replay.set_cookie(COOKIE, old)
    who = await replay.signed_in_as()
    assert who is None, called("GET /account with the cookie from before logout", who, None)


@pytest.mark.points(2)
async def test_logout_needs_the_csrf_token():
    """POST /logout without the session's CSRF token gets 403 and the user stays signed in."""
    world = World()
    browser = world.browser()
    await browser.sign_in()
    for form, why in (
        ({}, "without csrf_token"),
        ({"csrf_token": "forged"}, "with a forged csrf_token"),
    ):
        response = await browser.send("POST", "/logout", data=form)
        who = await browser.signed_in_as()
        assert response.status_code == 403 and who == "alice", called(
            f"POST /logout {why}", f"{describe(response)}, signed in as {who}", "403, still alice"
        )


async def test_logout_is_post_only():
    """GET /logout is 405: a link or an <img> on another site can't log the user out."""
    world = World()
    browser = world.browser()
    await browser.sign_in()
    response = await browser.send("GET", "/logout")
    who = await browser.signed_in_as()
    assert response.status_code == 405 and who == "alice", called(
        "GET /logout", f"{describe(response)}, signed in as {who}", "405, still alice"
    )


@pytest.mark.points(2)
async def test_csrf_token_rotates_with_the_session():
    """The CSRF token of the login form no longer works after login: the new session has its own."""
    world = World()
    browser = world.browser()
    old_token = (await browser.login_form())["csrf_token"]
    await browser.sign_in()
    new_token = await browser.csrf_of_account()
    response = await browser.send("POST", "/logout", data={"csrf_token": old_token})
    assert new_token != old_token and response.status_code == 403, called(
        "POST /logout with the pre-login CSRF token",
        describe(response),
        "403 (a new token after login)",
    )


# --- expiry ---------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("elapsed", "signed_in"),
    [(SESSION_LIFETIME - 1, True), (SESSION_LIFETIME, False), (SESSION_LIFETIME + 1, False)],
    ids=["lifetime-minus-1s", "at-lifetime", "lifetime-plus-1s"],
)
async def test_session_expires(elapsed, signed_in):
    """A session lasts session_lifetime seconds from login; then the user must sign in again."""
    world = World()
    browser = world.browser()
    await browser.sign_in()
    world.clock.advance(elapsed)
    who = await browser.signed_in_as()
    want = "alice" if signed_in else None
    assert who == want, called(
        f"GET /account {elapsed:g} s after login (session lifetime {SESSION_LIFETIME:g} s)",
        who,
        want,
    )


# --- page hygiene ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/login", "/account", "/authorize"], ids=["login", "account", "authorize"]
)
async def test_pages_forbid_framing_and_caching(path):
    """Pages forbid framing (clickjacking, RFC 9700 §4.16) and caching."""
    world = World()
    browser = world.browser()
    await browser.sign_in()
    response = await browser.send("GET", path)
    frame = response.headers.get("x-frame-options", "").upper() == "DENY" or re.search(
        r"frame-ancestors\s+'none'", response.headers.get("content-security-policy", "")
    )
    ok = bool(frame) and "no-store" in response.headers.get("cache-control", "")
    assert ok, called(
        f"GET {path}: headers",
        {
            k: v
            for k, v in response.headers.items()
            if k in ("x-frame-options", "content-security-policy", "cache-control")
        },
        "X-Frame-Options: DENY or CSP frame-ancestors 'none', and Cache-Control: no-store",
    )


async def test_unknown_paths_and_methods():
    """An unknown path is 404; a known path with another method is 405 with Allow."""
    world = World()
    browser = world.browser()
    for method, path, want in (
        ("GET", "/nope", 404),
        ("GET", "/token", 405),
        ("DELETE", "/login", 405),
    ):
        response = await browser.send(method, path)
        ok = response.status_code == want and (want == 404 or "allow" in response.headers)
        assert ok, called(f"{method} {path}", describe(response), want)


@pytest.mark.points(2)
async def test_cookie_signature_is_compared_in_constant_time(monkeypatch):
    """The cookie's signature is checked with hmac.compare_digest, never ==, so timing doesn't leak it."""
    world = World()
    browser = world.browser()
    await browser.sign_in()
    session_id, _, signature = (browser.cookie(COOKIE) or "").partition(".")
    forged = ("A" if signature[0] != "A" else "B") + signature[1:]
    calls = spy_compare_digest(monkeypatch, oauth_pkce)
    thief = world.browser()
    thief.set_cookie(COOKIE, f"{session_id}.{forged}")
    who = await thief.signed_in_as()
    spellings = {forged.encode(), b64url_decode(forged) or b""}
    seen = any(as_bytes(a) in spellings or as_bytes(b) in spellings for a, b in calls)
    assert who is None and seen, called(
        "GET /account with a forged cookie signature",
        f"signed in as {who}; hmac.compare_digest saw the forged signature: {seen}",
        "nobody signed in, and the signature compared with hmac.compare_digest",
    )


async def test_lifespan_scope_is_not_answered_as_http():
    """A lifespan scope (server start-up) is not an HTTP request: no HTTP response is sent for it."""
    app = AuthorizationServer(issuer=ISSUER, clients=[], users={}, secret=SECRET)
    sent: list = []

    async def receive():
        return {"type": "lifespan.startup"}

    async def send(message):
        sent.append(message)

    try:  # returning and raising are both fine for an app without lifespan support (ASGI spec)
        await bounded(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send), 5.0)
    except (AssertionError, NotImplementedError):
        raise
    except Exception:
        pass
    http = [m for m in sent if str(m.get("type", "")).startswith("http.")]
    assert http == [], called(
        "app(lifespan scope, ...)", f"sent {http}", "no http.response messages"
    )

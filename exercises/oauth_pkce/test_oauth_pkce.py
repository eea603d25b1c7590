"""Visible examples for the oauth_pkce kata. Run them with `nox -s try -- oauth_pkce`.

They show the shape of success: the RFC 7636 vector, the verifier syntax, and one whole flow
(login, code, token) driven with httpx the way a browser and a client would. The hidden specs
go much further: every attack of the OAuth Security BCP that applies here, the session cookie,
CSRF, fixation, logout and every limit at, below and above its boundary.
"""

from __future__ import annotations

import random
import re

import httpx
import pytest

try:
    from oauth_pkce import (
        AuthorizationServer,
        Client,
        begin_authorization,
        finish_authorization,
        is_valid_verifier,
        s256,
    )
except ImportError as err:
    raise ImportError(
        "MISSING NAME --> could not import AuthorizationServer, Client, begin_authorization, "
        "finish_authorization, is_valid_verifier and s256 from oauth_pkce.py"
    ) from err

ISSUER = "https://auth.example"
CALLBACK = "https://app.example/cb"

# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_rfc7636_appendix_b():
    got = s256(VERIFIER)
    assert got == CHALLENGE, f"Called s256({VERIFIER!r}); returned {got!r}; expected {CHALLENGE!r}"


@pytest.mark.parametrize(("length", "valid"), [(42, False), (43, True), (128, True), (129, False)])
def test_verifier_length(length, valid):
    got = is_valid_verifier("a" * length)
    assert got is valid, (
        f"Called is_valid_verifier('a' * {length}); returned {got}; expected {valid}"
    )


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]*)"', page)
    assert match, f'the login page has no <input name="csrf_token" value="...">: {page[:200]!r}'
    return match.group(1)


async def test_one_whole_flow():
    rng = random.Random(1)
    server = AuthorizationServer(
        issuer=ISSUER,
        clients=[Client("app", (CALLBACK,))],
        users={"alice": "correct horse battery staple"},
        secret=b"k" * 32,
        token_bytes=rng.randbytes,
    )
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as browser:
        # 1. The client sends the browser to /authorize; signed out, it is sent to log in.
        pending = begin_authorization(ISSUER + "/authorize", client_id="app", redirect_uri=CALLBACK)
        response = await browser.get(pending.url)
        assert response.status_code == 303, f"GET /authorize signed out: got {response.status_code}"
        response = await browser.get(response.headers["location"])
        assert response.status_code == 200, f"GET /login: got {response.status_code}"

        # 2. The user posts the form (with its CSRF token); the server sends the browser back.
        form = {
            "csrf_token": csrf_token(response.text),
            "next": re.search(r'name="next" value="([^"]*)"', response.text)
            .group(1)
            .replace("&amp;", "&"),
            "username": "alice",
            "password": "correct horse battery staple",
        }
        response = await browser.post("/login", data=form)
        assert response.status_code == 303, f"POST /login: got {response.status_code}, expected 303"
        set_cookie = response.headers.get("set-cookie", "")
        for attribute in ("__Host-session=", "Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
            assert attribute.lower() in set_cookie.lower(), (
                f"Set-Cookie lacks {attribute}: {set_cookie}"
            )

        # 3. Back at /authorize, signed in: a redirect to the client with code, state and iss.
        response = await browser.get(response.headers["location"])
        location = response.headers.get("location", "")
        assert location.startswith(CALLBACK + "?"), f"expected a redirect to the client: {location}"

        # 4. The client checks state and iss, then trades code + verifier for a token.
        token_form = finish_authorization(pending, location, issuer=ISSUER)
        response = await browser.post("/token", data=token_form)
        assert response.status_code == 200, f"POST /token: {response.status_code} {response.text}"
        assert response.headers.get("cache-control") == "no-store"
        token = response.json()["access_token"]

        # 5. The token works; the same code a second time does not.
        response = await browser.get("/userinfo", headers={"authorization": f"Bearer {token}"})
        assert response.json()["sub"] == "alice", f"GET /userinfo: {response.text}"
        response = await browser.post("/token", data=token_form)
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant", (
            f"a replayed code must get 400 invalid_grant; got {response.status_code} {response.text}"
        )

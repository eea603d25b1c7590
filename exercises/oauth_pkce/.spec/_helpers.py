"""Helpers for the oauth_pkce specs: a server on a fake clock, a browser, forms, token requests.

The browser is httpx over ASGITransport with its own cookie jar (http.cookiejar underneath):
it keeps and sends cookies the way a browser does, follows redirects that stay on the
authorization server, and stops at the first redirect that leaves it (the one to the client),
so a spec can read the code in it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
import urllib.parse
from html.parser import HTMLParser
from typing import Any

import httpx
from oauth_pkce import AuthorizationServer, Client

from grader.spectools import FakeClock, bounded, short

ISSUER = "https://auth.example"
APP_CB = "https://app.example/cb"
APP_CB2 = "https://app.example/cb2"
OTHER_CB = "https://other.example/cb"
TENANT_CB = "https://tenant.example/callback?tenant=7"
CLIENTS = (
    Client("app", (APP_CB, APP_CB2)),
    Client("other", (OTHER_CB,)),
    Client("tenant", (TENANT_CB,)),
    Client("twin", (APP_CB,)),  # another client that registered the same redirect URI
)
USERS = {"alice": "correct horse battery staple", "bob": "Tr0ub4dor&3"}
SECRET = bytes(range(32, 64))
START = 1_700_000_000.0
CODE_LIFETIME = 60.0
SESSION_LIFETIME = 3600.0
TOKEN_LIFETIME = 600.0

# RFC 7636 Appendix B (VECTORS.md, "OAuth 2.0 PKCE"): 32 octets, their verifier, its challenge.
APPENDIX_B_OCTETS = bytes(
    [116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186]
    + [22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121]
)
APPENDIX_B_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
APPENDIX_B_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def oracle_s256(verifier: str) -> str:
    """RFC 7636 §4.2 computed here with hashlib and base64: the spec's own reference."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class World:
    """A server on a fake clock and a seeded random source, and what it was built with."""

    def __init__(self, seed: int = 7, **options: Any) -> None:
        self.clock = FakeClock(START)
        self.rng = random.Random(seed)
        options.setdefault("code_lifetime", CODE_LIFETIME)
        options.setdefault("session_lifetime", SESSION_LIFETIME)
        options.setdefault("token_lifetime", TOKEN_LIFETIME)
        self.server = AuthorizationServer(
            issuer=ISSUER,
            clients=CLIENTS,
            users=USERS,
            secret=SECRET,
            clock=self.clock,
            token_bytes=self.rng.randbytes,
            **options,
        )
        self._verifiers = random.Random(seed + 1000)

    def browser(self) -> Browser:
        return Browser(self.server)

    def verifier(self, length: int = 43) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
        return "".join(self._verifiers.choice(alphabet) for _ in range(length))


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            named = dict(attrs)
            if named.get("name"):
                self.values.setdefault(named["name"] or "", named.get("value") or "")


def form_inputs(page: str) -> dict[str, str]:
    """The name -> value of every <input> in an HTML page (parsed by html.parser)."""
    parser = _Inputs()
    parser.feed(page)
    return parser.values


def describe(response: httpx.Response) -> str:
    text = f"{response.status_code}"
    if "location" in response.headers:
        text += f" Location: {short(response.headers['location'], 100)}"
    return text


class Browser:
    """A browser for one user: a cookie jar, and redirects followed on the server's origin."""

    def __init__(self, app: Any) -> None:
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
        self.history: list[httpx.Response] = []

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        what = f"{method} {short(url, 90)}"
        try:
            response = await bounded(
                self.client.request(method, url, **kwargs), 5.0, f"the response to {what}"
            )
        except (AssertionError, NotImplementedError):
            raise
        except Exception as exc:
            raise AssertionError(f"Sent {what}; the server raised {short(exc)}") from None
        self.history.append(response)
        return response

    async def go(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send, then follow redirects while they stay on the server (at most 10)."""
        response = await self.send(method, url, **kwargs)
        for _ in range(10):
            location = response.headers.get("location")
            if response.status_code not in (301, 302, 303) or location is None:
                return response
            target = httpx.URL(ISSUER).join(location)
            if f"{target.scheme}://{target.host}" != ISSUER:
                return response  # leaving the server: that's for the spec to look at
            response = await self.send("GET", str(target))
        raise AssertionError(f"more than 10 redirects; the last was {describe(response)}")

    def cookie(self, name: str) -> str | None:
        for cookie in self.client.cookies.jar:
            if cookie.name == name:
                return cookie.value
        return None

    def set_cookie(self, name: str, value: str, *, keep: bool = False) -> None:
        """Put one cookie in the jar (by default instead of every other one)."""
        if not keep:
            self.client.cookies.clear()
        self.client.cookies.set(name, value, domain="auth.example", path="/")

    async def login_form(self, next_url: str | None = None) -> dict[str, str]:
        params = {"next": next_url} if next_url is not None else None
        response = await self.go("GET", "/login", params=params)
        assert response.status_code == 200, (
            f"Sent GET /login; got {describe(response)}; expected 200"
        )
        inputs = form_inputs(response.text)
        assert inputs.get("csrf_token"), (
            f'Sent GET /login; the page has no <input name="csrf_token" value="...">: '
            f"{short(response.text, 200)}"
        )
        return inputs

    async def sign_in(
        self, user: str = "alice", password: str | None = None, next_url: str | None = None
    ) -> httpx.Response:
        """Fill in and post the login form; returns the response after same-origin redirects."""
        inputs = await self.login_form(next_url)
        form = {
            "csrf_token": inputs["csrf_token"],
            "username": user,
            "password": USERS[user] if password is None else password,
        }
        if next_url is not None:
            form["next"] = inputs.get("next", next_url)
        return await self.go("POST", "/login", data=form)

    async def signed_in_as(self) -> str | None:
        """Who /account says is signed in (None: it sends us to the login page)."""
        response = await self.send("GET", "/account")
        if response.status_code in (302, 303):
            return None
        assert response.status_code == 200, (
            f"Sent GET /account; got {describe(response)}; expected 200 or a redirect to /login"
        )
        for user in USERS:
            if user in response.text:
                return user
        return "?"

    async def csrf_of_account(self) -> str:
        response = await self.send("GET", "/account")
        assert response.status_code == 200, f"Sent GET /account; got {describe(response)}"
        token = form_inputs(response.text).get("csrf_token")
        assert token, "GET /account shows no logout form with a csrf_token input"
        return token


def authorize_params(
    verifier: str | None = None,
    *,
    client_id: str = "app",
    redirect_uri: str = APP_CB,
    state: str | None = "s-123",
    **extra: str | None,
) -> dict[str, str]:
    """A good authorization request for ``verifier`` (S256); ``extra`` overrides or, with
    None, removes parameters."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": oracle_s256(verifier or APPENDIX_B_VERIFIER),
        "code_challenge_method": "S256",
        "scope": "profile",
    }
    if state is not None:
        params["state"] = state
    for name, value in extra.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


def query_of(location: str) -> dict[str, list[str]]:
    """The query parameters of a Location URL, decoded by httpx (the oracle)."""
    params = httpx.URL(location).params
    return {key: params.get_list(key) for key in params}


def base_of(location: str) -> str:
    url = httpx.URL(location)
    return f"{url.scheme}://{url.host}{url.path}"


async def get_code(
    world: World, browser: Browser, verifier: str, **params: Any
) -> tuple[str, httpx.Response]:
    """A signed-in browser asks for a code; returns (code, the redirect to the client)."""
    response = await browser.go("GET", "/authorize", params=authorize_params(verifier, **params))
    location = response.headers.get("location", "")
    code = query_of(location).get("code", [""])[0] if location else ""
    assert response.status_code in (302, 303) and code, (
        f"Sent GET /authorize with a good request from a signed-in user; got "
        f"{describe(response)}; expected a redirect to the client with a code"
    )
    return code, response


async def token_request(
    world: World,
    form: dict[str, str] | list[tuple[str, str]],
    content_type: str = "application/x-www-form-urlencoded",
) -> httpx.Response:
    """POST /token from the client's back channel (no cookies), the form encoded by urllib."""
    browser = Browser(world.server)
    body = urllib.parse.urlencode(form).encode("ascii")
    return await browser.send(
        "POST", "/token", content=body, headers={"content-type": content_type}
    )


def token_form(code: str, verifier: str, /, **overrides: str | None) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": APP_CB,
        "client_id": "app",
        "code_verifier": verifier,
    }
    for name, value in overrides.items():
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    return form


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


async def userinfo(world: World, access_token: str) -> httpx.Response:
    browser = Browser(world.server)
    return await browser.send(
        "GET", "/userinfo", headers={"authorization": f"Bearer {access_token}"}
    )


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return b""


def b64url_decode(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None

"""A minimal OAuth 2.0 authorization server (authorization code + PKCE) and its browser session.

Theory of operation
-------------------
Three layers, smallest first:

* PKCE helpers, pure: ``b64url``, ``s256`` and ``is_valid_verifier`` (RFC 7636 §4.1, §4.2).
* The client side, pure (sans-IO): ``begin_authorization`` makes the verifier, the state and
  the authorization URL; ``finish_authorization`` checks the redirect that comes back (state,
  issuer) and returns the form for the token request.
* ``AuthorizationServer``, an ASGI 3 app with six routes: ``/login`` (GET form, POST
  credentials), ``/logout`` (POST), ``/account``, ``/authorize``, ``/token`` and ``/userinfo``.

Everything the server remembers lives in three dicts: browser sessions, authorization codes
(grants) and access tokens. Each is keyed by a random value from the injected ``token_bytes``
and checked against the injected ``clock``, so tests can replay a whole flow exactly.

The rule of thumb behind every check: the server trusts nothing the browser carries except
what it can look up in its own tables. A redirect URI is compared with the registered ones
character for character; a code is worth something only together with the client, the
redirect URI and the verifier it was issued for; a session is the server's record, and the
cookie only points at it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CODE_LIFETIME",
    "SESSION_COOKIE",
    "SESSION_LIFETIME",
    "TOKEN_LIFETIME",
    "AuthorizationError",
    "AuthorizationServer",
    "Client",
    "PendingAuthorization",
    "b64url",
    "begin_authorization",
    "finish_authorization",
    "is_valid_verifier",
    "s256",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
TokenBytes = Callable[[int], bytes]

# __Host- prefix: the browser only accepts it with Secure, Path=/ and no Domain, so no
# sibling subdomain can plant or overwrite it (RFC 6265bis §4.1.3.2).
SESSION_COOKIE = "__Host-session"
CODE_LIFETIME = 60.0  # seconds; RFC 6749 §4.1.2 recommends at most 10 minutes
SESSION_LIFETIME = 8 * 3600.0  # seconds from login, then sign in again
TOKEN_LIFETIME = 3600.0  # seconds an access token is good for

# RFC 7636 §4.1: 43 to 128 characters of [A-Z] [a-z] [0-9] - . _ ~ (RFC 3986 unreserved).
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# An S256 challenge is BASE64URL(SHA-256(...)): always exactly 43 base64url characters.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
# A safe place to send the browser after login: a path on this server. Not "//host" or
# "/\host" (browsers read both as another host), and printable ASCII only (browsers drop
# tabs and newlines from URLs, so "/\t/evil.example" would become "//evil.example").
_LOCAL_PATH = re.compile(r"/(?![/\\])[!-~]*")


# --- PKCE -----------------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    """Base64url without padding (RFC 7636 Appendix A, RFC 4648 §5)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    """The S256 code challenge: BASE64URL(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def is_valid_verifier(verifier: str) -> bool:
    """Whether ``verifier`` has the syntax of RFC 7636 §4.1: 43–128 unreserved characters."""
    return _VERIFIER.fullmatch(verifier) is not None


# --- the client side (sans-IO) --------------------------------------------------------------


class AuthorizationError(Exception):
    """The authorization response can't be used; ``error`` says why (an OAuth error code or
    ``state_mismatch`` / ``issuer_mismatch``)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class PendingAuthorization:
    """What the client keeps (in its own session) between the redirect out and the one back."""

    url: str
    state: str
    code_verifier: str
    client_id: str
    redirect_uri: str


def begin_authorization(
    authorize_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str = "",
    token_bytes: TokenBytes = secrets.token_bytes,
) -> PendingAuthorization:
    """Start an authorization-code flow with PKCE: a fresh verifier, state and URL."""
    # 32 random octets -> 43 characters, as RFC 7636 §4.1 recommends; then the state.
    verifier = b64url(token_bytes(32))
    state = b64url(token_bytes(16))
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    if scope:
        params["scope"] = scope
    return PendingAuthorization(
        url=_with_query(authorize_endpoint, params),
        state=state,
        code_verifier=verifier,
        client_id=client_id,
        redirect_uri=redirect_uri,
    )


def finish_authorization(
    pending: PendingAuthorization, callback_url: str, *, issuer: str
) -> dict[str, str]:
    """Check the redirect back to the client and return the token request's form fields."""
    params = _single_params(urllib.parse.urlsplit(callback_url).query)
    if params is None:
        raise AuthorizationError("invalid_request")
    # State first: a response we did not ask for (CSRF, RFC 6749 §10.12) is not even read.
    state = params.get("state", "")
    if not hmac.compare_digest(state.encode("utf-8"), pending.state.encode("utf-8")):
        raise AuthorizationError("state_mismatch")
    # Mix-up defence: the response must name the server we sent the user to (RFC 9207 §2.4).
    if params.get("iss") != issuer:
        raise AuthorizationError("issuer_mismatch")
    if "error" in params:
        raise AuthorizationError(params["error"])
    if "code" not in params:
        raise AuthorizationError("invalid_request")
    return {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": pending.redirect_uri,
        "client_id": pending.client_id,
        "code_verifier": pending.code_verifier,
    }


# --- the server's records -------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """A registered public client: its id and the exact redirect URIs it may use."""

    client_id: str
    redirect_uris: tuple[str, ...]


@dataclass
class _Session:
    csrf_token: str
    user: str | None  # None: an anonymous session (it only carries the login form's token)
    expires_at: float


@dataclass
class _Grant:
    """An authorization code and everything it is bound to (RFC 6749 §4.1.2, RFC 7636 §4.4)."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    user: str
    scope: str
    expires_at: float
    redeemed: bool = False
    tokens: list[str] = field(default_factory=list)


@dataclass
class _Token:
    user: str
    client_id: str
    scope: str
    expires_at: float


@dataclass
class _Request:
    method: str
    path: str
    query_string: str
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    def cookies(self, name: str) -> list[str]:
        found = []
        for key, value in self.headers:
            if key.lower() == b"cookie":
                for pair in value.decode("latin-1").split(";"):
                    key_text, _, val = pair.strip().partition("=")
                    if key_text == name:
                        found.append(val)
        return found


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


class _OAuthError(Exception):
    """An error for the token endpoint (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


# --- the authorization server ---------------------------------------------------------------


class AuthorizationServer:
    """ASGI 3 app: an OAuth 2.0 authorization server for public clients, with PKCE (S256 only)."""

    def __init__(
        self,
        *,
        issuer: str,
        clients: Iterable[Client],
        users: Mapping[str, str],
        secret: bytes,
        clock: Callable[[], float] = time.time,
        token_bytes: TokenBytes = secrets.token_bytes,
        code_lifetime: float = CODE_LIFETIME,
        session_lifetime: float = SESSION_LIFETIME,
        token_lifetime: float = TOKEN_LIFETIME,
    ) -> None:
        self.issuer = issuer
        self.clients = {client.client_id: client for client in clients}
        self.users = dict(users)
        self.secret = secret
        self.clock = clock
        self.token_bytes = token_bytes
        self.code_lifetime = code_lifetime
        self.session_lifetime = session_lifetime
        self.token_lifetime = token_lifetime
        self._sessions: dict[str, _Session] = {}
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, _Token] = {}
        self._routes: dict[str, dict[str, Callable[[_Request], _Response]]] = {
            "/login": {"GET": self._login_form, "POST": self._login},
            "/logout": {"POST": self._logout},
            "/account": {"GET": self._account},
            "/authorize": {"GET": self._authorize},
            "/token": {"POST": self._token},
            "/userinfo": {"GET": self._userinfo},
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        request = _Request(
            method=scope["method"],
            path=scope["path"],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=list(scope.get("headers", [])),
            body=body,
        )
        response = self._handle(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    def _handle(self, request: _Request) -> _Response:
        methods = self._routes.get(request.path)
        if methods is None:
            return _page(404, "Not found", "There is nothing here.")
        handler = methods.get(request.method)
        if handler is None:
            response = _page(405, "Method not allowed", "Not with this method.")
            response.headers.append(("Allow", ", ".join(methods)))
            return response
        return handler(request)

    # --- sessions ---------------------------------------------------------------------------

    def _sign(self, session_id: str) -> str:
        return b64url(hmac.new(self.secret, session_id.encode("utf-8"), hashlib.sha256).digest())

    def _session(self, request: _Request) -> tuple[str, _Session] | None:
        """The live session the request's cookie points at, if any."""
        for value in request.cookies(SESSION_COOKIE):
            session_id, _, signature = value.partition(".")
            # The signature lets us refuse forged or tampered cookies before any lookup.
            if not hmac.compare_digest(signature.encode(), self._sign(session_id).encode()):
                continue
            session = self._sessions.get(session_id)
            if session is None:
                continue
            if self.clock() >= session.expires_at:
                del self._sessions[session_id]
                continue
            return session_id, session
        return None

    def _new_session(self, user: str | None) -> tuple[str, _Session]:
        session_id = b64url(self.token_bytes(32))
        session = _Session(
            csrf_token=b64url(self.token_bytes(32)),
            user=user,
            expires_at=self.clock() + self.session_lifetime,
        )
        self._sessions[session_id] = session
        return session_id, session

    def _set_cookie(self, response: _Response, session_id: str) -> None:
        value = f"{session_id}.{self._sign(session_id)}"
        response.headers.append(
            ("Set-Cookie", f"{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax")
        )

    def _csrf_ok(self, request: _Request, session: _Session) -> bool:
        form = _single_params(_form_text(request)) or {}
        token = form.get("csrf_token", "")
        return hmac.compare_digest(token.encode("utf-8"), session.csrf_token.encode("utf-8"))

    # --- login, logout, account -------------------------------------------------------------

    def _login_form(self, request: _Request, error: str = "", status: int = 200) -> _Response:
        current = self._session(request)
        session_id, session = current or self._new_session(None)
        query = _single_params(request.query_string) or {}
        next_url = query.get("next", "") if request.method == "GET" else _form_next(request)
        body = (
            (f"<p class=error>{html.escape(error)}</p>" if error else "")
            + '<form method="post" action="/login">'
            + f'<input type="hidden" name="csrf_token" value="{html.escape(session.csrf_token)}">'
            + f'<input type="hidden" name="next" value="{html.escape(next_url)}">'
            + '<input name="username" autocomplete="username">'
            + '<input name="password" type="password" autocomplete="current-password">'
            + "<button>Sign in</button></form>"
        )
        response = _page(status, "Sign in", body, raw=True)
        if current is None:
            self._set_cookie(response, session_id)
        return response

    def _login(self, request: _Request) -> _Response:
        current = self._session(request)
        if current is None or not self._csrf_ok(request, current[1]):
            return _page(403, "Forbidden", "The form has expired or did not come from us.")
        form = _single_params(_form_text(request)) or {}
        user = form.get("username", "")
        if not self._password_ok(user, form.get("password", "")):
            # The same answer for an unknown user and a wrong password: no user enumeration.
            return self._login_form(request, "Wrong username or password.")
        # Session fixation defence: the pre-login session (whose id an attacker may have
        # planted) dies here, and the signed-in user gets a brand-new id and CSRF token.
        del self._sessions[current[0]]
        session_id, _ = self._new_session(user)
        response = _redirect(_safe_next(form.get("next", "")))
        self._set_cookie(response, session_id)
        return response

    def _password_ok(self, user: str, password: str) -> bool:
        # Compare digests so lengths don't leak, and compare even for unknown users so the
        # time taken doesn't tell them apart. (Real servers store slow password hashes.)
        stored = self.users.get(user, "")
        given = hashlib.sha256(password.encode("utf-8")).digest()
        same = hmac.compare_digest(given, hashlib.sha256(stored.encode("utf-8")).digest())
        return same and user in self.users

    def _logout(self, request: _Request) -> _Response:
        current = self._session(request)
        if current is None or not self._csrf_ok(request, current[1]):
            return _page(403, "Forbidden", "The form has expired or did not come from us.")
        # Logout ends the session on the server: the old cookie is worthless from now on.
        del self._sessions[current[0]]
        response = _redirect("/login")
        response.headers.append(
            (
                "Set-Cookie",
                f"{SESSION_COOKIE}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax",
            )
        )
        return response

    def _account(self, request: _Request) -> _Response:
        current = self._session(request)
        if current is None or current[1].user is None:
            return _redirect("/login?" + urllib.parse.urlencode({"next": "/account"}))
        session = current[1]
        body = (
            f"<p>Signed in as <b class=user>{html.escape(session.user or '')}</b></p>"
            + '<form method="post" action="/logout">'
            + f'<input type="hidden" name="csrf_token" value="{html.escape(session.csrf_token)}">'
            + "<button>Sign out</button></form>"
        )
        return _page(200, "Your account", body, raw=True)

    # --- the authorization endpoint (RFC 6749 §4.1.1, RFC 7636 §4.3) ------------------------

    def _authorize(self, request: _Request) -> _Response:
        params = _multi_params(request.query_string)
        client_ids = params.get("client_id", [])
        redirect_uris = params.get("redirect_uri", [])
        client = self.clients.get(client_ids[0]) if len(client_ids) == 1 else None
        # Exact string comparison with a registered URI, nothing else (RFC 9700 §4.1.3).
        # Until both are known good, never redirect: show the error here (RFC 6749 §4.1.2.1).
        if client is None or len(redirect_uris) != 1:
            return _page(400, "Invalid request", "Unknown client or missing redirect URI.")
        redirect_uri = redirect_uris[0]
        if redirect_uri not in client.redirect_uris:
            return _page(400, "Invalid request", "This redirect URI is not registered.")

        # Authenticate the user before any redirect, even an error redirect (RFC 9700 §4.11.2).
        current = self._session(request)
        if current is None or current[1].user is None:
            here = "/authorize?" + request.query_string
            return _redirect("/login?" + urllib.parse.urlencode({"next": here}))
        user = current[1].user

        state_values = params.get("state", [])
        reply: dict[str, str] = {"state": state_values[0]} if len(state_values) == 1 else {}
        error = self._authorize_error(params)
        if error is not None:
            return _redirect(
                _with_query(redirect_uri, {"error": error, **reply, "iss": self.issuer})
            )

        code = b64url(self.token_bytes(32))
        self._grants[code] = _Grant(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            code_challenge=params["code_challenge"][0],
            user=user,
            scope=params.get("scope", [""])[0],
            expires_at=self.clock() + self.code_lifetime,
        )
        return _redirect(_with_query(redirect_uri, {"code": code, **reply, "iss": self.issuer}))

    @staticmethod
    def _authorize_error(params: Mapping[str, list[str]]) -> str | None:
        """The error code for a bad authorization request, None if it is good."""
        if any(len(values) > 1 for values in params.values()):
            return "invalid_request"  # no parameter more than once (RFC 6749 §3.1)
        response_type = params.get("response_type", [""])[0]
        if not response_type:
            return "invalid_request"
        if response_type != "code":  # the implicit grant is out (RFC 9700 §2.1.2)
            return "unsupported_response_type"
        # PKCE is mandatory and S256 only: a missing method means "plain" (RFC 7636 §4.3),
        # and "plain" is the downgrade (RFC 9700 §2.1.1, §4.8): invalid_request (§4.4.1).
        if params.get("code_challenge_method", [""])[0] != "S256":
            return "invalid_request"
        if not _S256_CHALLENGE.fullmatch(params.get("code_challenge", [""])[0]):
            return "invalid_request"
        return None

    # --- the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6) --------------------------------

    def _token(self, request: _Request) -> _Response:
        try:
            body = self._redeem(request)
        except _OAuthError as exc:
            response = _json(exc.status, {"error": exc.error, "error_description": exc.description})
            if exc.status == 401:  # RFC 9110 §15.5.2: a 401 names an authentication scheme
                response.headers.append(("WWW-Authenticate", 'Basic realm="token"'))
            return response
        return _json(200, body)

    def _redeem(self, request: _Request) -> dict[str, Any]:
        content_type = (request.header(b"content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise _OAuthError("invalid_request", "send the parameters as a form")
        form = _single_params(request.body.decode("utf-8", "replace"))
        if form is None:
            raise _OAuthError("invalid_request", "a parameter is repeated")
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise _OAuthError("invalid_request", "grant_type is missing")
        if grant_type != "authorization_code":
            raise _OAuthError("unsupported_grant_type", "only authorization_code is supported")
        for name in ("client_id", "code", "redirect_uri", "code_verifier"):
            if name not in form:
                raise _OAuthError("invalid_request", f"{name} is missing")
        if form["client_id"] not in self.clients:
            raise _OAuthError("invalid_client", "unknown client", 401)
        if not is_valid_verifier(form["code_verifier"]):
            raise _OAuthError("invalid_request", "code_verifier is malformed")

        grant = self._grants.get(form["code"])
        if grant is None:
            raise _OAuthError("invalid_grant", "unknown code")
        if grant.redeemed:
            # A second use means the code leaked: refuse, and take back what the first use
            # got, since we can't tell which of the two was the attacker (RFC 6749 §4.1.2).
            for token in grant.tokens:
                self._tokens.pop(token, None)
            raise _OAuthError("invalid_grant", "code already used")
        if self.clock() >= grant.expires_at:
            raise _OAuthError("invalid_grant", "code expired")
        if grant.client_id != form["client_id"]:
            raise _OAuthError("invalid_grant", "code was issued to another client")
        if grant.redirect_uri != form["redirect_uri"]:
            raise _OAuthError(
                "invalid_grant", "redirect_uri differs from the authorization request"
            )
        # The proof of possession: only whoever made the challenge knows the verifier.
        if not hmac.compare_digest(s256(form["code_verifier"]), grant.code_challenge):
            raise _OAuthError("invalid_grant", "code_verifier does not match the challenge")

        grant.redeemed = True
        access_token = b64url(self.token_bytes(32))
        self._tokens[access_token] = _Token(
            user=grant.user,
            client_id=grant.client_id,
            scope=grant.scope,
            expires_at=self.clock() + self.token_lifetime,
        )
        grant.tokens.append(access_token)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime),
            "scope": grant.scope,
        }

    # --- a protected resource ---------------------------------------------------------------

    def _userinfo(self, request: _Request) -> _Response:
        scheme, _, value = (request.header(b"authorization") or "").partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or self.clock() >= token.expires_at:
            response = _json(401, {"error": "invalid_token"})
            response.headers.append(("WWW-Authenticate", 'Bearer error="invalid_token"'))
            return response
        return _json(200, {"sub": token.user, "client_id": token.client_id, "scope": token.scope})


# --- small helpers --------------------------------------------------------------------------


def _multi_params(text: str) -> dict[str, list[str]]:
    """Form-encoded parameters by name; a parameter without a value counts as absent (§3.1)."""
    params: dict[str, list[str]] = {}
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        if value:
            params.setdefault(name, []).append(value)
    return params


def _single_params(text: str) -> dict[str, str] | None:
    """Form-encoded parameters, or None if one is repeated (RFC 6749 §3.1, §3.2)."""
    params = _multi_params(text)
    if any(len(values) > 1 for values in params.values()):
        return None
    return {name: values[0] for name, values in params.items()}


def _form_text(request: _Request) -> str:
    return request.body.decode("utf-8", "replace")


def _form_next(request: _Request) -> str:
    return (_single_params(_form_text(request)) or {}).get("next", "")


def _safe_next(target: str) -> str:
    """Where to go after login: ``target`` if it is a path on this server, else /account."""
    if _LOCAL_PATH.fullmatch(target) and "\\" not in target:
        return target
    return "/account"


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    """``uri`` with ``params`` added to its query, keeping the query it has (RFC 6749 §3.1.2)."""
    return uri + ("&" if "?" in uri else "?") + urllib.parse.urlencode(params)


# Every response forbids framing (clickjacking, RFC 9700 §4.16), caching and Referer leaks.
_COMMON = [
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
]


def _page(status: int, title: str, text: str, *, raw: bool = False) -> _Response:
    content = text if raw else f"<p>{html.escape(text)}</p>"
    body = f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
    return _Response(
        status,
        (body + content).encode("utf-8"),
        [("Content-Type", "text/html; charset=utf-8"), *_COMMON],
    )


def _redirect(location: str) -> _Response:
    # 303, never 307: a 307 would make the browser re-send the POSTed password to the
    # target (RFC 9700 §4.12).
    return _Response(303, b"", [("Location", location), *_COMMON])


def _json(status: int, payload: Mapping[str, Any]) -> _Response:
    headers = [("Content-Type", "application/json"), ("Pragma", "no-cache"), *_COMMON]
    return _Response(status, json.dumps(payload).encode("utf-8"), headers)

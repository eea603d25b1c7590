"""A minimal OAuth 2.0 authorization server (authorization code + PKCE) and its browser session.

Three layers:

* PKCE helpers, pure: ``b64url``, ``s256``, ``is_valid_verifier`` (RFC 7636 §4.1, §4.2).
* The client side, pure: ``begin_authorization`` / ``finish_authorization``.
* ``AuthorizationServer``, an ASGI 3 app: ``/login``, ``/logout``, ``/account``,
  ``/authorize``, ``/token``, ``/userinfo``.

Standard library only (``hmac``, ``hashlib``, ``secrets``, ``base64``, ``json``, ``html``,
``urllib.parse``). See README.md for the rules in full.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
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

SESSION_COOKIE = "__Host-session"  # the name of the session cookie
CODE_LIFETIME = 60.0  # default seconds an authorization code is good for
SESSION_LIFETIME = 8 * 3600.0  # default seconds a session lasts from login
TOKEN_LIFETIME = 3600.0  # default seconds an access token is good for


# --- PKCE -----------------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    """Base64url without padding (RFC 7636 Appendix A): ``b64url(b"\\xfb\\xff") == "-_8"``.

    TODO: the URL-safe alphabet ("-" and "_" instead of "+" and "/"), no "=" at the end.
    """
    raise NotImplementedError


def s256(verifier: str) -> str:
    """The S256 code challenge of ``verifier`` (RFC 7636 §4.2).

    TODO: BASE64URL(SHA256(ASCII(code_verifier))): 43 characters.
    """
    raise NotImplementedError


def is_valid_verifier(verifier: str) -> bool:
    """Whether ``verifier`` has the syntax of a code_verifier (RFC 7636 §4.1).

    TODO: 43 to 128 characters (both included), each one of A-Z a-z 0-9 - . _ ~
    """
    raise NotImplementedError


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
    """Start an authorization-code flow with PKCE.

    TODO: code_verifier = b64url(token_bytes(32)), THEN state = b64url(token_bytes(16))
          (in this order: the specs feed known bytes).
    TODO: url = authorize_endpoint plus the query parameters response_type=code, client_id,
          redirect_uri, state, code_challenge=s256(verifier), code_challenge_method=S256, and
          scope when it is not empty; form-encoded (urllib.parse.urlencode), joined with "?"
          (or "&" if the endpoint already has a query).
    """
    raise NotImplementedError


def finish_authorization(
    pending: PendingAuthorization, callback_url: str, *, issuer: str
) -> dict[str, str]:
    """Check the redirect back to the client; return the token request's form fields.

    TODO: read the query of ``callback_url``; a repeated parameter -> invalid_request.
    TODO: "state" missing or different from pending.state -> AuthorizationError("state_mismatch")
          (compare with hmac.compare_digest, on bytes: the state may not be ASCII).
    TODO: "iss" missing or not exactly ``issuer`` -> AuthorizationError("issuer_mismatch").
    TODO: an "error" parameter -> AuthorizationError(<that error>).
    TODO: no "code" -> AuthorizationError("invalid_request").
    TODO: return {"grant_type": "authorization_code", "code": ..., "redirect_uri": ...,
          "client_id": ..., "code_verifier": ...}.
    """
    raise NotImplementedError


# --- the authorization server ---------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """A registered public client: its id and the exact redirect URIs it may use."""

    client_id: str
    redirect_uris: tuple[str, ...]


class AuthorizationServer:
    """ASGI 3 app: an OAuth 2.0 authorization server for public clients, with PKCE (S256 only).

    ``issuer`` is this server's https URL (the "iss" of its responses); ``clients`` the
    registry; ``users`` maps username -> password; ``secret`` signs session cookies;
    ``clock()`` gives the time in seconds; ``token_bytes(n)`` gives n random bytes: use it
    for EVERY random value (session ids, CSRF tokens, codes, access tokens).
    """

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
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI HTTP request (read the whole body first).

        Routes (another method on a known path: 405 with Allow; unknown path: 404):

        TODO: GET /login?next=P -> 200 HTML with <form method="post" action="/login"> holding
              <input name="csrf_token" value="..."> and <input name="next" value="P">
              (HTML-escaped!). No valid session cookie yet? Create an anonymous session
              and set its cookie.
        TODO: POST /login (form: csrf_token, username, password, next): no session or wrong
              csrf_token -> 403. Wrong username or password -> 200, the form again, the
              same page for both. Right -> delete the old session, create a NEW one (new id,
              new CSRF token) for the user, set its cookie, 303 to next if it is a local path
              ("/x", not "//x", no backslash, printable ASCII only), else 303 to /account.
        TODO: POST /logout (form: csrf_token) -> wrong token: 403. Else delete the session on
              the server, expire the cookie (Max-Age=0), 303 to /login.
        TODO: GET /account -> signed in: 200 HTML naming the user, with a logout form holding
              the csrf_token input. Else 303 to /login?next=/account.
        TODO: session cookie: SESSION_COOKIE = "<session id>.<b64url HMAC-SHA256(secret, id)>";
              attributes Path=/; Secure; HttpOnly; SameSite=Lax. A bad signature, an unknown
              id or an expired session (clock() >= login time + session_lifetime) is no session.
        TODO: GET /authorize: client_id unknown or redirect_uri not EXACTLY one of the
              client's registered URIs (either missing or repeated) -> 400 error page, no
              redirect. Not signed in -> 303 to /login?next=<this /authorize URL>. Then
              errors go back to the client: 303 to redirect_uri with error=..., state (if
              sent) and iss=issuer: repeated parameter or missing response_type ->
              invalid_request; response_type other than "code" -> unsupported_response_type;
              code_challenge_method not exactly "S256" (missing means "plain") or
              code_challenge not 43 base64url characters -> invalid_request.
              Success: a code (b64url of 32 random bytes) bound to client, redirect URI,
              challenge, user, scope, expiring at clock() + code_lifetime; 303 to
              redirect_uri with code, state (if sent), iss. Keep the registered URI's own
              query ("?tenant=7&code=...").
        TODO: POST /token (application/x-www-form-urlencoded; else invalid_request), JSON
              answers with Cache-Control: no-store. In this order:
              repeated parameter or missing grant_type -> 400 invalid_request;
              grant_type not "authorization_code" -> 400 unsupported_grant_type;
              client_id, code, redirect_uri or code_verifier missing -> 400 invalid_request;
              unknown client_id -> 401 invalid_client (with a WWW-Authenticate header);
              code_verifier not valid syntax -> 400 invalid_request;
              unknown code -> 400 invalid_grant;
              code already redeemed -> 400 invalid_grant AND revoke the tokens it gave;
              code expired (clock() >= expiry), other client, other redirect_uri, or
              s256(code_verifier) != challenge -> 400 invalid_grant (the code stays usable).
              Success: mark the code redeemed; 200 {"access_token": b64url(32 random bytes),
              "token_type": "Bearer", "expires_in": <token_lifetime as int>, "scope": ...}.
        TODO: GET /userinfo with Authorization: Bearer <access token> -> 200 {"sub": user,
              "client_id": ..., "scope": ...}; a missing, unknown, revoked or expired token
              -> 401 with WWW-Authenticate: Bearer error="invalid_token".
        TODO: redirects are 303 (never 307); every response carries Cache-Control: no-store
              and forbids framing (X-Frame-Options: DENY and/or CSP frame-ancestors 'none').
        """
        raise NotImplementedError

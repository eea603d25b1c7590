"""Hidden specs for AuthMiddleware, driven by a real HTTP client (httpx over ASGITransport).

Tokens come from PyJWT; the inner app echoes the claims it was handed.
"""

from __future__ import annotations

import json

import pytest
from _helpers import KEY, OTHER_KEY, EchoApp, b64, challenge, mint, request, segments
from auth_middleware import AuthMiddleware, Rule

from grader.spectools import FakeClock, bounded, called, short, step

START = 1_700_000_000.0
REALM = "katas"


def make(rules: list[Rule], **options) -> tuple[AuthMiddleware, EchoApp, FakeClock]:
    app = EchoApp()
    clock = options.pop("clock", None) or FakeClock(START)
    options.setdefault("realm", REALM)
    middleware = AuthMiddleware(app, key=KEY, rules=rules, clock=clock, **options)
    return middleware, app, clock


def standard_rules() -> list[Rule]:
    return [
        Rule("/public", public=True),
        Rule("/admin", roles={"admin"}),
        Rule("/reports", methods={"GET"}, scopes={"reports:read"}),
        Rule("/reports", methods={"POST"}, scopes={"reports:write"}),
        Rule("/me"),
    ]


def token_for(**claims) -> str:
    claims.setdefault("sub", "alice")
    claims.setdefault("exp", int(START) + 3600)
    return mint(claims)


def describe(response) -> str:
    value = response.headers.get("www-authenticate")
    return f"{response.status_code}" + (f" with WWW-Authenticate: {value}" if value else "")


async def expect_ok(middleware, app, method, path, token, want_claims=None, headers=None) -> None:
    before = app.calls
    response = await request(middleware, method, path, token, headers)
    what = f"{method} {path}" + (" with a valid token" if token else "")
    if headers:
        what += " with " + ", ".join(f"{name}: {short(value, 30)}" for name, value in headers)
    assert response.status_code == 200, (
        f"Sent {what}; got {describe(response)}; expected 200 from the app"
    )
    assert app.calls == before + 1, called(what, f"inner app called {app.calls - before} times", 1)
    if want_claims is not None:
        assert app.last_claims == want_claims, called(
            f'{what}; the app read scope["state"]["claims"]', app.last_claims, want_claims
        )


async def expect_refused(middleware, app, method, path, token, status, error, why, headers=None):
    """The response is ``status`` with a Bearer challenge carrying ``error`` (None: no error)."""
    before = app.calls
    response = await request(middleware, method, path, token, headers)
    what = f"{method} {path} {why}"
    params = challenge(response)
    want = f'{status} with WWW-Authenticate: Bearer realm="{REALM}"' + (
        f', error="{error}", error_description="..."' if error else " and no error"
    )
    ok = response.status_code == status and params is not None and params.get("realm") == REALM
    if ok and error is None:
        ok = "error" not in params
    if ok and error is not None:
        ok = params.get("error") == error and bool(params.get("error_description"))
    assert ok, f"Sent {what}; got {describe(response)}; expected {want}"
    assert app.calls == before, called(what, f"inner app called {app.calls - before} time(s)", 0)


# --- authentication -------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_valid_token_reaches_app_with_claims():
    """A valid bearer token reaches the inner app, which finds the claims in scope["state"]["claims"]."""
    middleware, app, _ = make(standard_rules())
    claims = {"sub": "alice", "exp": int(START) + 60, "roles": ["admin"], "scope": "reports:read"}
    token = mint(claims)
    await expect_ok(middleware, app, "GET", "/me", token, claims)
    await expect_ok(middleware, app, "GET", "/admin/users", token, claims)
    await expect_ok(middleware, app, "GET", "/reports/2024", token, claims)


@pytest.mark.points(3)
async def test_missing_token_gets_bare_401():
    """A protected route without Authorization gets 401, WWW-Authenticate: Bearer realm, no error code."""
    middleware, app, _ = make(standard_rules())
    for path in ("/me", "/admin", "/reports/1"):
        await expect_refused(middleware, app, "GET", path, None, 401, None, "without a token")


def _invalid_tokens() -> dict[str, str]:
    header, _, signature = segments(token_for(roles=["admin"]))
    forged_payload = b64(json.dumps({"sub": "alice", "roles": ["admin"], "x": 1}).encode())
    return {
        "a tampered payload": f"{header}.{forged_payload}.{signature}",
        "an expired token": token_for(exp=int(START) - 1),
        "a token signed by another key": mint({"sub": "alice"}, key=OTHER_KEY),
        "alg none": mint({"sub": "alice", "roles": ["admin"]}, key=None, algorithm="none"),
        "an HS512 token": mint({"sub": "alice", "roles": ["admin"]}, algorithm="HS512"),
        "a crit header": token_for(roles=["admin"]).replace(
            header, b64(b'{"alg":"HS256","crit":["exp"]}'), 1
        ),
        "the token 'not-a-jwt'": "not-a-jwt",
        "an empty bearer token": "",
    }


INVALID_TOKENS = _invalid_tokens()


@pytest.mark.points(1)
@pytest.mark.parametrize("token", list(INVALID_TOKENS.values()), ids=list(INVALID_TOKENS))
async def test_invalid_token_gets_401_invalid_token(token, request):
    """A bad, forged or expired token gets 401 with error="invalid_token"; the app is not called (RFC 6750 §3.1)."""
    middleware, app, _ = make(standard_rules())
    why = f"with {request.node.callspec.id}"
    await expect_refused(middleware, app, "GET", "/admin", token, 401, "invalid_token", why)


@pytest.mark.points(1)
@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_the_bearer_scheme_matches_in_any_case(scheme):
    """The auth scheme is case-insensitive: "bearer", "BEARER" and "BeArEr" all carry the token (RFC 9110 §11.1)."""
    middleware, app, _ = make(standard_rules())
    headers = [("Authorization", f"{scheme} {token_for()}")]
    await expect_ok(middleware, app, "GET", "/me", None, headers=headers)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "value", ["Basic YWxpY2U6c2VjcmV0", "Token <a valid JWT>"], ids=["Basic", "Token"]
)
async def test_another_scheme_counts_as_no_token(value):
    """Authorization with a scheme other than Bearer counts as no credentials: 401 with a bare challenge (RFC 6750 §3.1)."""
    middleware, app, _ = make(standard_rules())
    value = value.replace("<a valid JWT>", token_for())
    await expect_refused(
        middleware,
        app,
        "GET",
        "/me",
        None,
        401,
        None,
        f"with Authorization: {value.split()[0]} ...",
        headers=[("Authorization", value)],
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "second", ["the same token", "another scheme", "a bad token"], ids=lambda text: text
)
async def test_two_authorization_headers_get_400_invalid_request(second):
    """Two Authorization headers are a malformed request: 400 with error="invalid_request" (RFC 6750 §3.1)."""
    middleware, app, _ = make(standard_rules())
    token = token_for()
    other = {
        "the same token": f"Bearer {token}",
        "another scheme": "Basic YWxpY2U6c2VjcmV0",
        "a bad token": "Bearer not-a-jwt",
    }[second]
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", other)]
    await expect_refused(
        middleware,
        app,
        "GET",
        "/me",
        None,
        400,
        "invalid_request",
        f"with two Authorization headers (a valid bearer token, then {second})",
        headers=headers,
    )


@pytest.mark.points(2)
async def test_injected_clock_and_leeway_decide_expiry():
    """The middleware reads time from its clock and applies its leeway: valid until exp + leeway."""
    clock = FakeClock(START)
    middleware, app, _ = make(standard_rules(), clock=clock, leeway=10)
    exp = int(START) + 60  # long past in real time, so only the injected clock can accept it
    token = token_for(exp=exp)
    await expect_ok(middleware, app, "GET", "/me", token)
    clock.advance(60 + 9)  # exp + 9
    await expect_ok(middleware, app, "GET", "/me", token)
    clock.advance(1)  # exp + leeway
    await expect_refused(
        middleware, app, "GET", "/me", token, 401, "invalid_token", "with exp + leeway reached"
    )


@pytest.mark.points(1)
async def test_issuer_and_audience_enforced():
    """Issuer and audience configured on the middleware are enforced on every token."""
    middleware, app, _ = make(standard_rules(), issuer="https://auth.example", audience="api")
    good = token_for(iss="https://auth.example", aud=["web", "api"])
    await expect_ok(middleware, app, "GET", "/me", good)
    for token, why in [
        (token_for(iss="https://evil.example", aud="api"), "with another issuer"),
        (token_for(iss="https://auth.example", aud="web"), "with another audience"),
        (token_for(iss="https://auth.example"), "without an audience"),
    ]:
        await expect_refused(middleware, app, "GET", "/me", token, 401, "invalid_token", why)


# --- authorization --------------------------------------------------------------------------


@pytest.mark.points(3)
async def test_missing_role_gets_403_insufficient_scope():
    """A valid token without the route's role gets 403 with error="insufficient_scope"; the app is not called."""
    middleware, app, _ = make(standard_rules())
    for token, why in [
        (token_for(roles=["user"]), "with roles ['user']"),
        (token_for(), "without a roles claim"),
        (token_for(roles=["user"], scope="admin"), "with the scope 'admin' but no role"),
    ]:
        await expect_refused(
            middleware, app, "GET", "/admin/users", token, 403, "insufficient_scope", why
        )
    await expect_ok(middleware, app, "GET", "/admin/users", token_for(roles=["user", "admin"]))


@pytest.mark.points(1)
@pytest.mark.parametrize("roles", [["auditor"], ["x", "admin"]], ids=repr)
async def test_any_one_of_a_rules_roles_suffices(roles):
    """A token holding any one of a rule's roles (among others) reaches the app."""
    middleware, app, _ = make([Rule("/audit", roles={"admin", "auditor"})])
    await expect_ok(middleware, app, "GET", "/audit", token_for(roles=roles))


@pytest.mark.points(1)
async def test_a_roles_claim_that_is_not_a_list_grants_nothing():
    """A roles claim that is not a JSON array ("superadmin", "admin", an object) grants no role."""
    rules = [Rule("/audit", roles={"admin", "auditor"})]
    middleware, app, _ = make(rules)
    for roles in ("superadmin", "admin", {"admin": True}):
        await expect_refused(
            middleware,
            app,
            "GET",
            "/audit",
            token_for(roles=roles),
            403,
            "insufficient_scope",
            f"with roles {roles!r}",
        )


@pytest.mark.points(2)
async def test_scopes_all_of_whole_tokens():
    """Every scope of a rule is needed, read as whole space-separated tokens of the scope claim."""
    rules = [Rule("/ledger", scopes={"ledger:read", "ledger:export"})]
    middleware, app, _ = make(rules)
    await expect_ok(middleware, app, "GET", "/ledger", token_for(scope="ledger:export ledger:read"))
    await expect_ok(
        middleware, app, "GET", "/ledger", token_for(scope="x ledger:read y ledger:export")
    )
    for scope in (
        "ledger:read",
        "ledger:readonly ledger:export",
        "ledger:read,ledger:export",
        ["ledger:read", "ledger:export"],
    ):
        await expect_refused(
            middleware,
            app,
            "GET",
            "/ledger",
            token_for(scope=scope),
            403,
            "insufficient_scope",
            f"with scope {scope!r}",
        )


@pytest.mark.points(2)
async def test_methods_select_the_rule():
    """A rule with methods only covers those methods: GET needs reports:read, POST reports:write."""
    middleware, app, _ = make(standard_rules())
    reader = token_for(scope="reports:read")
    writer = token_for(scope="reports:write")
    await expect_ok(middleware, app, "GET", "/reports", reader)
    await expect_ok(middleware, app, "POST", "/reports", writer)
    await expect_refused(
        middleware, app, "POST", "/reports", reader, 403, "insufficient_scope", "with reports:read"
    )
    await expect_refused(
        middleware, app, "GET", "/reports", writer, 403, "insufficient_scope", "with reports:write"
    )
    await expect_refused(
        middleware,
        app,
        "DELETE",
        "/reports",
        reader,
        403,
        "insufficient_scope",
        "(no rule for DELETE)",
    )


@pytest.mark.points(2)
async def test_first_matching_rule_wins():
    """Rules are tried in list order and the first match decides, even if a later one is longer."""
    rules = [
        Rule("/api/health", public=True),
        Rule("/api", roles={"admin"}),
        Rule("/api/docs", public=True),  # shadowed by "/api": first match wins
    ]
    middleware, app, _ = make(rules)
    await expect_ok(middleware, app, "GET", "/api/health", None)
    await expect_refused(middleware, app, "GET", "/api/docs", None, 401, None, "without a token")
    await expect_refused(
        middleware,
        app,
        "GET",
        "/api/docs/intro",
        token_for(roles=["user"]),
        403,
        "insufficient_scope",
        "with roles ['user']",
    )


@pytest.mark.points(2)
async def test_prefix_matches_whole_segments():
    """A prefix covers the path itself and paths below it, never a longer segment (/public vs /publicity)."""
    rules = [Rule("/public", public=True), Rule("/admin/", roles={"admin"}), Rule("/")]
    middleware, app, _ = make(rules)
    for path in ("/public", "/public/", "/public/logo.png"):
        await expect_ok(middleware, app, "GET", path, None)
    for path in ("/publicity", "/public-keys/secret", "/publication"):
        await expect_refused(middleware, app, "GET", path, None, 401, None, "without a token")
    user = token_for(roles=["user"])
    await expect_ok(middleware, app, "GET", "/administrator", user)
    for path in ("/admin", "/admin/", "/admin/users"):
        await expect_refused(
            middleware, app, "GET", path, user, 403, "insufficient_scope", "with roles ['user']"
        )


@pytest.mark.points(1)
async def test_unmatched_path_is_denied():
    """A path no rule covers is denied: 401 without a token, 403 with a valid one."""
    middleware, app, _ = make([Rule("/me")])
    await expect_refused(middleware, app, "GET", "/elsewhere", None, 401, None, "without a token")
    await expect_refused(
        middleware,
        app,
        "GET",
        "/elsewhere",
        token_for(roles=["admin"], scope="a b"),
        403,
        "insufficient_scope",
        "with a valid token",
    )


@pytest.mark.points(2)
async def test_public_route_needs_no_token():
    """A public route reaches the app without a token, and a bad token on it is ignored."""
    middleware, app, _ = make(standard_rules())
    await expect_ok(middleware, app, "GET", "/public/index.html", None)
    await expect_ok(middleware, app, "POST", "/public/form", "garbage.token.here")
    await expect_ok(middleware, app, "GET", "/public", token_for(exp=int(START) - 100))


# --- ASGI plumbing --------------------------------------------------------------------------


@pytest.mark.points(2)
async def test_lifespan_passes_through():
    """A lifespan scope is handed to the inner app untouched, with the same receive and send."""
    seen: list = []

    async def inner(scope, receive, send):
        seen.append((scope, receive, send))
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})

    clock = FakeClock(START)
    middleware = AuthMiddleware(inner, key=KEY, rules=[Rule("/me")], clock=clock)
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    inbox = [{"type": "lifespan.startup"}]
    outbox: list = []

    async def receive():
        return inbox.pop(0)

    async def send(message):
        outbox.append(message)

    try:
        await bounded(middleware(scope, receive, send), 5.0, "the lifespan call to return")
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(
            called("middleware(lifespan scope, ...)", exc, "no exception")
        ) from None
    got = [(s is scope or s == scope, r is receive, w is send) for s, r, w in seen]
    assert got == [(True, True, True)], called(
        "middleware(lifespan scope, receive, send)",
        f"inner app calls (same scope, same receive, same send): {got}",
        [(True, True, True)],
    )
    assert outbox == [{"type": "lifespan.startup.complete"}], called(
        "lifespan startup through the middleware", outbox, [{"type": "lifespan.startup.complete"}]
    )


@pytest.mark.points(1)
async def test_existing_state_is_kept():
    """Claims are added to scope["state"] next to what the server already put there."""
    middleware, app, _ = make(standard_rules())
    token = token_for()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/me",
        "raw_path": b"/me",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        "state": {"db": "pool-1"},
    }
    sent: list = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    try:
        await bounded(middleware(scope, receive, send), 5.0, "the request to finish")
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(called("middleware(http scope, ...)", exc, "no exception")) from None
    state = app.scopes[-1].get("state") if app.scopes else None
    ok = isinstance(state, dict) and state.get("db") == "pool-1" and "claims" in state
    assert ok, called(
        'GET /me with scope["state"] == {"db": "pool-1"}; the app saw state',
        short(state),
        "a dict holding both 'db' and 'claims'",
    )


@pytest.mark.points(1)
async def test_the_servers_scope_is_left_unmodified():
    """The middleware passes a copy on: the scope dict and its state, owned by the server, are unchanged."""
    middleware, app, _ = make(standard_rules())
    token = token_for()
    state = {"db": "pool-1"}
    headers = [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/me",
        "raw_path": b"/me",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "state": state,
    }
    before = {**scope, "state": dict(state), "headers": list(headers)}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    with step("middleware(http scope for GET /me with a valid token, receive, send)"):
        await bounded(middleware(scope, receive, send), 5.0, "the request to finish")
    after = {**scope, "state": dict(scope.get("state") or {})}
    assert after == before and scope["state"] is state, called(
        "middleware(scope, ...); the caller's scope afterwards",
        {k: v for k, v in after.items() if before.get(k) != v},
        "unchanged (claims go in a copy of scope and of its state)",
    )

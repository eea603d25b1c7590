"""Hidden specs for the opening handshake (RFC 6455 §4.2): accept_key and handshake.

The 101 response is parsed with h11 (an independent HTTP/1.1 client parser) and its accept
value checked against websockets' own computation; refusals are parsed the same way.
"""

from __future__ import annotations

import h11
import pytest
from _helpers import ACCEPT, KEY, upgrade_request
from websocket import accept_key, handshake
from websockets.utils import accept_key as oracle_accept

from grader.spectools import called, short, step


def answer(request: bytes, **options):
    with step(f"handshake({short(request, 200)})"):
        return handshake(request, **options)


def parse_response(raw: bytes, what: str) -> tuple[int, dict[str, list[str]], bytes]:
    """The status, headers (lower-case names) and body of ``raw``, as h11 reads it."""
    client = h11.Connection(h11.CLIENT)
    proposal = [("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    client.send(h11.Request(method="GET", target="/", headers=proposal))
    client.receive_data(raw)
    try:
        event = client.next_event()
        if isinstance(event, h11.InformationalResponse | h11.Response):
            headers: dict[str, list[str]] = {}
            for name, value in event.headers:
                headers.setdefault(name.decode().lower(), []).append(value.decode("latin-1"))
            body = b""
            if isinstance(event, h11.Response):
                client.receive_data(b"")
                while isinstance(part := client.next_event(), h11.Data):
                    body += part.data
            return event.status_code, headers, body
    except h11.RemoteProtocolError as error:
        raise AssertionError(
            f"{what}: h11 cannot parse the response {short(raw)}: {error}"
        ) from None
    raise AssertionError(f"{what}: h11 found no whole response in {short(raw)} ({event})")


# --- accepting -----------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_accept_key_rfc_example():
    """accept_key of the RFC's sample key is the RFC's sample answer (RFC 6455 §1.3)."""
    with step(f"accept_key({KEY!r})"):
        got = accept_key(KEY)
    assert got == ACCEPT, called(f"accept_key({KEY!r})", got, ACCEPT)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "key", ["AQIDBAUGBwgJCgsMDQ4PEA==", "x3JJHMbDL1EzLkh9GBhXDw==", "/+/+/+/+/+/+/+/+/+/+/w=="]
)
def test_accept_key_matches_websockets(key):
    """accept_key is base64(SHA-1(key + the GUID)), as the websockets library computes it (RFC 6455 §4.2.2)."""
    with step(f"accept_key({key!r})"):
        got = accept_key(key)
    assert got == oracle_accept(key), called(f"accept_key({key!r})", got, oracle_accept(key))


@pytest.mark.points(3)
def test_valid_upgrade_gets_101_with_the_accept_value():
    """A valid upgrade request gets 101 Switching Protocols with Upgrade: websocket,
    Connection: Upgrade and the right Sec-WebSocket-Accept (RFC 6455 §4.2.2)."""
    got = answer(upgrade_request("/chat?room=1"))
    status, headers, _ = parse_response(got.response, "handshake(valid request).response")
    assert status == 101, called("handshake(valid request).response status", status, 101)
    assert got.status == 101 and got.accepted, called(
        "handshake(valid request).status / .accepted", (got.status, got.accepted), (101, True)
    )
    assert headers.get("sec-websocket-accept") == [ACCEPT], called(
        "handshake(valid request): Sec-WebSocket-Accept",
        headers.get("sec-websocket-accept"),
        [ACCEPT],
    )
    upgrade = [v.lower() for v in headers.get("upgrade", [])]
    connection = [v.lower() for v in headers.get("connection", [])]
    assert upgrade == ["websocket"] and connection == ["upgrade"], called(
        "handshake(valid request): Upgrade and Connection headers",
        (headers.get("upgrade"), headers.get("connection")),
        (["websocket"], ["Upgrade"]),
    )
    assert got.path == "/chat?room=1", called("handshake(...).path", got.path, "/chat?room=1")


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [
        ("WebSocket", "keep-alive, Upgrade"),
        ("websocket", "upgrade"),
        ("websocket", "Keep-Alive,upgrade"),
    ],
    ids=["mixed-case-list", "lower-case", "no-space-list"],
)
def test_header_tokens_are_case_insensitive_lists(upgrade, connection):
    """Upgrade and Connection match their tokens case-insensitively, inside comma lists, as
    browsers send them (RFC 6455 §4.2.1, RFC 9110 §7.6.1)."""
    got = answer(upgrade_request(Upgrade=upgrade, Connection=connection))
    assert got.status == 101, called(
        f"handshake(Upgrade: {upgrade}, Connection: {connection}).status", got.status, 101
    )


@pytest.mark.points(2)
def test_permessage_deflate_is_not_negotiated():
    """An offered permessage-deflate is declined: the 101 has no Sec-WebSocket-Extensions, so the
    reserved bits stay reserved (RFC 6455 §9.1, RFC 7692 §5)."""
    offer = "permessage-deflate; client_max_window_bits"
    got = answer(upgrade_request(Sec_WebSocket_Extensions=offer))
    status, headers, _ = parse_response(got.response, "handshake(request offering deflate)")
    assert status == 101 and "sec-websocket-extensions" not in headers, called(
        "handshake(request offering permessage-deflate)",
        (status, headers.get("sec-websocket-extensions")),
        (101, None),
    )


# --- refusing -------------------------------------------------------------------------------------


BAD_REQUESTS = {
    "POST": upgrade_request().replace(b"GET ", b"POST ", 1),
    "HTTP/1.0": upgrade_request().replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n", 1),
    "no Host": upgrade_request(Host=None),
    "no key": upgrade_request(Sec_WebSocket_Key=None),
    "key of 15 bytes": upgrade_request(key="AQIDBAUGBwgJCgsMDQ4P"),
    "key of 17 bytes": upgrade_request(key="AQIDBAUGBwgJCgsMDQ4PEBE="),
    "key not base64": upgrade_request(key="not base64 at all!!!!!=="),
    # base64.b64decode without validate=True drops the '!' and reads 16 bytes.
    "key with a character outside base64": upgrade_request(key="AQID!BAUGBwgJCgsMDQ4PEA=="),
    "repeated Host": upgrade_request().replace(b"\r\n\r\n", b"\r\nHost: other.example\r\n\r\n"),
    "repeated key": upgrade_request().replace(
        b"\r\n\r\n", b"\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\r\n"
    ),
    "garbage request line": b"HELLO\r\n\r\n",
    "header line without colon": upgrade_request().replace(b"\r\n\r\n", b"\r\nX-Bad\r\n\r\n"),
    "space before the colon": upgrade_request().replace(b"Host:", b"Host :"),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("request_bytes", list(BAD_REQUESTS.values()), ids=list(BAD_REQUESTS))
def test_malformed_upgrade_gets_400(request_bytes, request):
    """A handshake that is not a GET/1.1 with exactly one Host and exactly one Sec-WebSocket-Key
    (the base64 of 16 bytes) gets 400 Bad Request with Connection: close (RFC 6455 §4.2.1, §4.2.2)."""
    label = request.node.callspec.id
    got = answer(request_bytes)
    status, headers, _ = parse_response(got.response, f"handshake(<{label}>).response")
    assert (got.status, status, got.accepted) == (400, 400, False), called(
        f"handshake(<{label}>): .status, status line, .accepted",
        (got.status, status, got.accepted),
        (400, 400, False),
    )
    assert [v.lower() for v in headers.get("connection", [])] == ["close"], called(
        f"handshake(<{label}>): the refusal's Connection header",
        headers.get("connection"),
        ["close"],
    )


@pytest.mark.points(1)
@pytest.mark.parametrize(
    "changes",
    [{"Upgrade": None}, {"Upgrade": "h2c"}, {"Connection": "keep-alive"}, {"Connection": None}],
    ids=["no-Upgrade", "Upgrade-h2c", "Connection-keep-alive", "no-Connection"],
)
def test_not_an_upgrade_gets_426(changes):
    """A request that does not ask to upgrade to websocket gets 426 Upgrade Required with
    Upgrade: websocket (RFC 9110 §15.5.22, RFC 6455 §4.2.1)."""
    got = answer(upgrade_request(**changes))
    status, headers, _ = parse_response(got.response, f"handshake(<{changes}>)")
    upgrade = [v.lower() for v in headers.get("upgrade", [])]
    assert (status, upgrade) == (426, ["websocket"]), called(
        f"handshake(valid request with {changes}): status, Upgrade",
        (status, headers.get("upgrade")),
        (426, ["websocket"]),
    )


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "version", ["8", "12", "14", "13, 8", None], ids=["v8", "v12", "v14", "list", "missing"]
)
def test_other_version_gets_426_naming_13(version):
    """Sec-WebSocket-Version other than 13 gets 426 with Sec-WebSocket-Version: 13 (RFC 6455 §4.2.2, §4.4)."""
    got = answer(upgrade_request(Sec_WebSocket_Version=version))
    status, headers, _ = parse_response(got.response, f"handshake(version {version})")
    assert (status, headers.get("sec-websocket-version")) == (426, ["13"]), called(
        f"handshake(Sec-WebSocket-Version: {version}): status, Sec-WebSocket-Version",
        (status, headers.get("sec-websocket-version")),
        (426, ["13"]),
    )


ORIGINS = ["https://app.example", "https://admin.example"]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://app.example", 101),
        ("HTTPS://APP.EXAMPLE", 101),
        ("https://evil.example", 403),
        ("https://app.example.evil.example", 403),
        ("null", 403),
        (None, 403),
    ],
    ids=["listed", "listed-upper-case", "other", "suffix-trick", "null", "missing"],
)
def test_origin_allow_list(origin, status):
    """With allowed_origins, a browser handshake whose Origin is not listed (or absent) gets
    403 Forbidden; a listed one (compared case-insensitively) is accepted (RFC 6455 §4.2.2, §10.2)."""
    got = answer(upgrade_request(Origin=origin), allowed_origins=ORIGINS)
    assert got.status == status, called(
        f"handshake(Origin: {origin}, allowed_origins={ORIGINS}).status", got.status, status
    )


@pytest.mark.points(1)
def test_no_allow_list_accepts_any_origin():
    """Without allowed_origins, any Origin is accepted (RFC 6455 §4.2.2: the check is the server's choice)."""
    got = answer(upgrade_request(Origin="https://anywhere.example"))
    assert got.status == 101, called(
        "handshake(Origin: https://anywhere.example).status", got.status, 101
    )


REFUSALS = {
    "400-no-Host": (upgrade_request(Host=None), {}),
    "426-no-Upgrade": (upgrade_request(Upgrade=None), {}),
    "426-version-8": (upgrade_request(Sec_WebSocket_Version="8"), {}),
    "403-origin": (
        upgrade_request(Origin="https://evil.example"),
        {"allowed_origins": ["https://app.example"]},
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_every_refusal_carries_content_length(case):
    """Every refusal carries a Content-Length equal to the length of its body."""
    request_bytes, options = REFUSALS[case]
    got = answer(request_bytes, **options)
    head, _, body = got.response.partition(b"\r\n\r\n")
    _, headers, _ = parse_response(got.response, f"handshake(<{case}>)")
    want = [str(len(body))]
    assert headers.get("content-length") == want, called(
        f"handshake(<{case}>): the refusal's Content-Length (its body has {len(body)} bytes)",
        headers.get("content-length"),
        want,
    )

"""The Autobahn TestSuite, sections 1-7, ported to the sans-IO Connection.

Each case is the frame sequence of crossbario/autobahn-testsuite
``autobahntestsuite/autobahntestsuite/case/caseN_M.py``, fed to a fresh ``Connection`` the way the
suite's client sends it: the frames of a case in one ``receive_data`` call, per frame when the
suite sends them frame-wise (``sync=True``), or in chops of N bytes (``chopsize=N``). The spec
plays the suite's echo server around the Connection (each Message is sent back) and parses
what it writes with the websockets library. The suite's verdicts: OK, and NON_STRICT where the
suite accepts a second outcome (a message before a protocol error may or may not be echoed).
When the server has not closed by the end of a case, the client closes with 1000 as the
suite does, and the server must answer with a Close (1000, or the code it was sent).

Cases left out: 7.1.6 and 7.13.x, which the suite marks informational (the outcome of 7.1.6
depends on scheduling; the RFC leaves close codes >= 5000 undefined). The timing waits of 5.19/5.20 and 6.4.x are dropped
(sans-IO has no clock: "fail fast" is checked as "fails on the frame that breaks it").
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from _helpers import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    Run,
    chops,
    close_frame,
    connection,
    frame,
)
from websocket import Failed

from grader.spectools import called

PROTOCOL_ERROR, INVALID_DATA, NORMAL = 1002, 1007, 1000


@dataclass(frozen=True)
class Case:
    number: str
    frames: tuple[bytes, ...]
    ok: tuple[tuple, ...]  # the frames the server writes before its Close (opcode, payload)
    close: frozenset[int | None]  # acceptable codes in the server's Close frame
    failed: bool  # the server fails the connection (it sends Close first)
    mode: str = "batch"  # batch | sync | chop:N
    non_strict: tuple[tuple, ...] | None = None

    def pieces(self) -> list[bytes]:
        if self.mode == "sync":
            return list(self.frames)
        data = b"".join(self.frames)
        if self.mode.startswith("chop:"):
            return chops(data, int(self.mode[5:]))
        return [data]


CASES: list[Case] = []


def echo_case(number, frames, ok, mode="batch", close=(NORMAL,)):
    CASES.append(Case(number, tuple(frames), tuple(ok), frozenset(close), False, mode))


def fail_case(number, frames, mode="batch", ok=(), non_strict=None, codes=(PROTOCOL_ERROR,)):
    CASES.append(Case(number, tuple(frames), tuple(ok), frozenset(codes), True, mode, non_strict))


def text(payload) -> tuple:
    return (TEXT, payload.encode() if isinstance(payload, str) else payload)


# 1 Framing: text and binary messages of 0, 125, 126, 127, 128, 65535, 65536 bytes.
for kind, fill in ((1, b"*"), (2, b"\xfe")):
    for j, size in enumerate((0, 125, 126, 127, 128, 65535, 65536), start=1):
        echo_case(f"1.{kind}.{j}", [frame(kind, fill * size)], [(kind, fill * size)])
    echo_case(f"1.{kind}.8", [frame(kind, fill * 65536)], [(kind, fill * 65536)], "chop:997")

# 2 Pings and pongs.
echo_case("2.1", [frame(PING)], [(PONG, b"")])
echo_case("2.2", [frame(PING, b"Hello, world!")], [(PONG, b"Hello, world!")])
BIN8 = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
echo_case("2.3", [frame(PING, BIN8)], [(PONG, BIN8)])
echo_case("2.4", [frame(PING, b"\xfe" * 125)], [(PONG, b"\xfe" * 125)])
fail_case("2.5", [frame(PING, b"\xfe" * 126)])
echo_case("2.6", [frame(PING, b"\xfe" * 125)], [(PONG, b"\xfe" * 125)], "chop:1")
echo_case("2.7", [frame(PONG)], [])
echo_case("2.8", [frame(PONG, b"unsolicited pong payload")], [])
echo_case(
    "2.9",
    [frame(PONG, b"unsolicited pong payload"), frame(PING, b"ping payload")],
    [(PONG, b"ping payload")],
)
TEN = [f"payload-{i}".encode() for i in range(10)]
echo_case("2.10", [frame(PING, p) for p in TEN], [(PONG, p) for p in TEN])
echo_case("2.11", [frame(PING, p) for p in TEN], [(PONG, p) for p in TEN], "chop:1")

# 3 Reserved bits.
HELLO = b"Hello, world!"
fail_case("3.1", [frame(TEXT, HELLO, rsv=1)])
for number, rsv, mode in (("3.2", 2, "batch"), ("3.3", 3, "sync"), ("3.4", 4, "chop:1")):
    fail_case(
        number,
        [frame(TEXT, HELLO), frame(TEXT, HELLO, rsv=rsv), frame(PING)],
        mode,
        ok=[text(HELLO)],
        non_strict=(),
    )
fail_case("3.5", [frame(BINARY, BIN8, rsv=5)])
# The suite's code sends a Binary frame for 3.6; its description says Ping, which we send.
fail_case("3.6", [frame(PING, HELLO, rsv=6)])
fail_case("3.7", [close_frame(rsv=7)])

# 4 Opcodes: reserved non-control 3-7, reserved control 11-15.
for number, opcode in (("4.1.1", 3), ("4.2.1", 11)):
    fail_case(number, [frame(opcode)])
for number, opcode in (("4.1.2", 4), ("4.2.2", 12)):
    fail_case(number, [frame(opcode, b"reserved opcode payload")])
for number, opcode, payload, mode in (
    ("4.1.3", 5, b"", "batch"),
    ("4.1.4", 6, HELLO, "batch"),
    ("4.1.5", 7, HELLO, "chop:1"),
    ("4.2.3", 13, b"", "batch"),
    ("4.2.4", 14, HELLO, "batch"),
    ("4.2.5", 15, HELLO, "chop:1"),
):
    fail_case(
        number,
        [frame(TEXT, HELLO), frame(opcode, payload), frame(PING)],
        mode,
        ok=[text(HELLO)],
        non_strict=(),
    )

# 5 Fragmentation.
fail_case("5.1", [frame(PING, b"fragment1", fin=False), frame(CONT, b"fragment2")])
fail_case("5.2", [frame(PONG, b"fragment1", fin=False), frame(CONT, b"fragment2")])
TWO = [frame(TEXT, b"fragment1", fin=False), frame(CONT, b"fragment2")]
for number, mode in (("5.3", "batch"), ("5.4", "sync"), ("5.5", "chop:1")):
    echo_case(number, TWO, [text("fragment1fragment2")], mode)
WITH_PING = [
    frame(TEXT, b"fragment1", fin=False),
    frame(PING, b"ping payload"),
    frame(CONT, b"fragment2"),
]
for number, mode in (("5.6", "batch"), ("5.7", "sync"), ("5.8", "chop:1")):
    echo_case(number, WITH_PING, [(PONG, b"ping payload"), text("fragment1fragment2")], mode)
for numbers, fin in ((("5.9", "5.10", "5.11"), True), (("5.12", "5.13", "5.14"), False)):
    for number, mode in zip(numbers, ("batch", "sync", "chop:1"), strict=True):
        fail_case(
            number,
            [frame(CONT, b"non-continuation payload", fin=fin), frame(TEXT, HELLO)],
            mode,
        )
fail_case(
    "5.15",
    [
        frame(TEXT, b"fragment1", fin=False),
        frame(CONT, b"fragment2"),
        frame(CONT, b"fragment3", fin=False),
        frame(TEXT, b"fragment4"),
    ],
    ok=[text("fragment1fragment2")],
    non_strict=(),
)
for number, fin in (("5.16", False), ("5.17", True)):
    fail_case(
        number,
        [
            frame(CONT, b"fragment1", fin=fin),
            frame(TEXT, b"fragment2", fin=False),
            frame(CONT, b"fragment3"),
        ]
        * 2,
    )
fail_case("5.18", [frame(TEXT, b"fragment1", fin=False), frame(TEXT, b"fragment2")])
FIVE = [f"fragment{i}".encode() for i in range(1, 6)]
PINGS = [b"pongme 1!", b"pongme 2!"]
INTERLEAVED = [
    frame(TEXT, FIVE[0], fin=False),
    frame(CONT, FIVE[1], fin=False),
    frame(PING, PINGS[0]),
    frame(CONT, FIVE[2], fin=False),
    frame(CONT, FIVE[3], fin=False),
    frame(PING, PINGS[1]),
    frame(CONT, FIVE[4]),
]
for number, mode in (("5.19", "batch"), ("5.20", "sync")):
    echo_case(number, INTERLEAVED, [(PONG, PINGS[0]), (PONG, PINGS[1]), text(b"".join(FIVE))], mode)

# 6 UTF-8 handling (6.1-6.4 here; 6.5-6.23 in test_autobahn_utf8.py).
echo_case("6.1.1", [frame(TEXT)], [text("")])
echo_case("6.1.2", [frame(TEXT, fin=False), frame(CONT, fin=False), frame(CONT)], [text("")])
MIDDLE = b"middle frame payload"
echo_case(
    "6.1.3", [frame(TEXT, fin=False), frame(CONT, MIDDLE, fin=False), frame(CONT)], [text(MIDDLE)]
)
UTF = "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode()
echo_case("6.2.1", [frame(TEXT, UTF)], [text(UTF)])
FIRST, SECOND = "Hello-\u00b5@\u00df\u00f6\u00e4".encode(), "\u00fc\u00e0\u00e1-UTF-8!!".encode()
echo_case("6.2.2", [frame(TEXT, FIRST, fin=False), frame(CONT, SECOND)], [text(UTF)])


def one_octet_fragments(payload: bytes) -> list[bytes]:
    parts = [payload[i : i + 1] for i in range(len(payload))]
    return [
        frame(TEXT if i == 0 else CONT, part, fin=i == len(parts) - 1)
        for i, part in enumerate(parts)
    ]


KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
echo_case("6.2.3", one_octet_fragments(UTF), [text(UTF)])
echo_case("6.2.4", one_octet_fragments(KOSME), [text(KOSME)])
BAD = KOSME + b"\xed\xa0\x80" + b"edited"
fail_case("6.3.1", [frame(TEXT, BAD)], codes=(INVALID_DATA,))
fail_case("6.3.2", one_octet_fragments(BAD), codes=(INVALID_DATA,))

# 7 Close handling.
HW = b"Hello World!"
# 7.1.1: the suite sends the message, then closes as it ends every case: two writes.
echo_case("7.1.1", [frame(TEXT, HW), close_frame(NORMAL)], [text(HW)], "sync")
echo_case("7.1.2", [close_frame(NORMAL), close_frame()], [])
echo_case("7.1.3", [close_frame(NORMAL), frame(PING)], [])
echo_case("7.1.4", [close_frame(NORMAL), frame(TEXT, HW)], [])
echo_case(
    "7.1.5",
    [frame(TEXT, b"fragment1", fin=False), close_frame(NORMAL), frame(CONT, b"fragment2")],
    [],
)
echo_case("7.3.1", [close_frame()], [], close=(NORMAL, None))
fail_case("7.3.2", [frame(CLOSE, b"a")])
echo_case("7.3.3", [close_frame(NORMAL)], [])
echo_case("7.3.4", [close_frame(NORMAL, "Hello World!")], [])
echo_case("7.3.5", [close_frame(NORMAL, "*" * 123)], [])
fail_case("7.3.6", [close_frame(NORMAL, "*" * 124)])
fail_case(
    "7.5.1",
    [close_frame(NORMAL, KOSME + b"\xed\xa0\x80" + b"edited")],
    codes=(PROTOCOL_ERROR, INVALID_DATA),
)
VALID_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999)
for j, code in enumerate(VALID_CODES, start=1):
    echo_case(f"7.7.{j}", [close_frame(code)], [], close=(NORMAL, code))
INVALID_CODES = (0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999)
for j, code in enumerate(INVALID_CODES, start=1):
    fail_case(f"7.9.{j}", [close_frame(code)])


def play(case: Case) -> tuple[Run, list, int | None | str]:
    """Run a case: returns the run, the frames before the server's Close, and its Close code
    ("no Close" when it wrote none)."""
    result = Run(connection())
    pieces = case.pieces()
    for piece in pieces:
        result.feed(piece, echo=True, what=f"Autobahn {case.number}: connection.receive_data()")
    if not any(out.opcode == CLOSE for out in result.frames()):
        # The suite's client closes at the end of a case that did not fail.
        result.feed(close_frame(NORMAL), echo=True, what=f"Autobahn {case.number}: client Close")
    frames = result.frames()
    closes = [i for i, out in enumerate(frames) if out.opcode == CLOSE]
    if not closes:
        return result, frames, "no Close"
    return result, frames[: closes[0]], frames[closes[0]].close_code


def as_pairs(frames) -> list[tuple]:
    return [(out.opcode, out.data) for out in frames]


@pytest.mark.points(1)
@pytest.mark.parametrize("case", CASES, ids=[f"autobahn-{c.number}" for c in CASES])
def test_autobahn_case(case: Case):
    """The server passes the Autobahn TestSuite case: the frames it writes and its close code
    are what the suite expects (RFC 6455 §5, §7, §8.1)."""
    result, before, code = play(case)
    what = f"Autobahn case {case.number} ({case.mode}) fed to Connection()"
    got = as_pairs(before)
    allowed = [list(case.ok)] + ([list(case.non_strict)] if case.non_strict is not None else [])
    assert got in allowed, called(
        f"{what}; frames written before the Close", before, " or ".join(map(str, allowed))
    )
    assert code in case.close, called(
        f"{what}; close code of the server's Close frame", code, sorted(case.close, key=str)
    )
    written = result.frames()
    closes = [out for out in written if out.opcode == CLOSE]
    assert len(closes) == 1 and written[-1].opcode == CLOSE, called(
        f"{what}; every frame written", written, "exactly one Close frame, and nothing after it"
    )
    failed = result.failures()
    if case.failed:
        assert failed and failed[0].code == code, called(
            f"{what}; events", result.events, f"a Failed event with code {code}"
        )
    else:
        assert not failed, called(f"{what}; events", result.events, "no Failed event")


# 6.4: fail fast. The frame that makes the text invalid UTF-8 fails the connection at once.
P1, P2, P3 = KOSME, b"\xf4\x90\x80\x80", b"edited"
FAST = {
    "autobahn-6.4.1": [
        frame(TEXT, P1, fin=False),
        frame(CONT, P2, fin=False),
        frame(CONT, P3),
    ],
    "autobahn-6.4.2": [
        frame(TEXT, (P1 + P2)[:12], fin=False),
        frame(CONT, (P1 + P2)[12:13], fin=False),
        frame(CONT, (P1 + P2 + P3)[13:]),
    ],
}


@pytest.mark.points(1)
@pytest.mark.parametrize("frames", list(FAST.values()), ids=list(FAST))
def test_invalid_utf8_fails_on_the_fragment_that_breaks_it(frames):
    """Text that turns invalid UTF-8 in a middle fragment fails the connection with 1007 when
    that fragment arrives, not at the end of the message (RFC 6455 §8.1; Autobahn 6.4)."""
    result = Run(connection())
    result.feed(frames[0], what="receive_data(first fragment: valid UTF-8 so far)")
    assert not result.failures(), called(
        "receive_data(first fragment, valid so far)", result.events, "no Failed event yet"
    )
    events = result.feed(frames[1], what="receive_data(second fragment: breaks the UTF-8)")
    fails = [e for e in events if isinstance(e, Failed)]
    assert fails and fails[0].code == INVALID_DATA, called(
        "receive_data(the fragment holding the invalid sequence)", events, "Failed(1007, ...)"
    )
    frames_out = result.frames()
    assert [out.close_code for out in frames_out] == [INVALID_DATA], called(
        "data_to_send() after the failure", frames_out, "one Close frame with code 1007"
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("split", [11, 12], ids=["autobahn-6.4.3", "autobahn-6.4.4"])
def test_invalid_utf8_in_one_frame_sent_in_chops(split):
    """A single text frame with invalid UTF-8, arriving in three chops, fails with 1007 by the
    time it is complete (RFC 6455 §8.1; Autobahn 6.4.3-6.4.4, the suite's NON_STRICT verdict)."""
    whole = frame(TEXT, P1 + P2 + P3)
    header = len(whole) - len(P1 + P2 + P3)
    cut1, cut2 = header + split, header + split + (4 if split == 11 else 1)
    result = Run(connection())
    for piece in (whole[:cut1], whole[cut1:cut2], whole[cut2:]):
        result.feed(piece, what="receive_data(a chop of the frame)")
    fails = result.failures()
    assert fails and fails[0].code == INVALID_DATA, called(
        "receive_data() of the three chops", result.events, "Failed(1007, ...)"
    )

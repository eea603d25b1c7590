"""Autobahn TestSuite 6.5-6.23: the UTF-8 decoder tests of Markus Kuhn's UTF-8-test.txt, each
sent as one text frame (crossbario/autobahn-testsuite, ``case/case6_x_x.py``,
``createUtf8TestSequences``, translated to Python 3 bytes and numbered as the suite numbers
them: category 6.5 onwards, one case per sequence).

A valid sequence is echoed back; an invalid one fails the connection with 1007 (RFC 6455 §8.1).
"""

from __future__ import annotations

import pytest
from _helpers import TEXT, Run, close_frame, connection, frame

from grader.spectools import called

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"


def _valid(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def sequences() -> list[tuple[str, list[tuple[bool, bytes]]]]:
    out: list[tuple[str, list[tuple[bool, bytes]]]] = []
    out.append(
        (
            "Some valid UTF-8 sequences",
            [
                (True, b"hello\x24world"),
                (True, b"hello\xc2\xa2world"),
                (True, b"hello\xe2\x82\xacworld"),
                (True, b"hello\xf0\xa4\xad\xa2world"),
                (True, KOSME),
            ],
        )
    )
    out.append(
        (
            "All prefixes of a valid UTF-8 string that contains multi-byte code points",
            # the suite asks its own validator; a prefix is valid when it decodes whole
            [(_valid(KOSME[:i]), KOSME[:i]) for i in range(1, len(KOSME) + 1)],
        )
    )
    out.append(
        (
            "First possible sequence of a certain length",
            [
                (True, b"\x00"),
                (True, b"\xc2\x80"),
                (True, b"\xe0\xa0\x80"),
                (True, b"\xf0\x90\x80\x80"),
            ],
        )
    )
    out.append(
        (
            "First possible sequence length 5/6 (invalid codepoints)",
            [(False, b"\xf8\x88\x80\x80\x80"), (False, b"\xfc\x84\x80\x80\x80\x80")],
        )
    )
    out.append(
        (
            "Last possible sequence of a certain length",
            [
                (True, b"\x7f"),
                (True, b"\xdf\xbf"),
                (True, b"\xef\xbf\xbf"),
                (True, b"\xf4\x8f\xbf\xbf"),
            ],
        )
    )
    out.append(
        (
            "Last possible sequence length 4/5/6 (invalid codepoints)",
            [
                (False, b"\xf7\xbf\xbf\xbf"),
                (False, b"\xfb\xbf\xbf\xbf\xbf"),
                (False, b"\xfd\xbf\xbf\xbf\xbf\xbf"),
            ],
        )
    )
    out.append(
        (
            "Other boundary conditions",
            [
                (True, b"\xed\x9f\xbf"),
                (True, b"\xee\x80\x80"),
                (True, b"\xef\xbf\xbd"),
                (True, b"\xf4\x8f\xbf\xbf"),
                (False, b"\xf4\x90\x80\x80"),
            ],
        )
    )
    out.append(
        (
            "Unexpected continuation bytes",
            [
                (False, b"\x80"),
                (False, b"\xbf"),
                (False, b"\x80\xbf"),
                (False, b"\x80\xbf\x80"),
                (False, b"\x80\xbf\x80\xbf"),
                (False, b"\x80\xbf\x80\xbf\x80"),
                (False, b"\x80\xbf\x80\xbf\x80\xbf"),
                (False, bytes(range(0x80, 0xBF))),
            ],
        )
    )
    lonely = []
    for low, high in ((0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD)):
        lonely.append((False, b"".join(bytes([i, 0x20]) for i in range(low, high))))
    out.append(("Lonely start characters", lonely))
    missing = [
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ]
    out.append(("Sequences with last continuation byte missing", [(False, m) for m in missing]))
    out.append(("Concatenation of incomplete sequences", [(False, b"".join(missing))]))
    out.append(
        ("Impossible bytes", [(False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")])
    )
    out.append(
        (
            "Examples of an overlong ASCII character",
            [
                (False, b"\xc0\xaf"),
                (False, b"\xe0\x80\xaf"),
                (False, b"\xf0\x80\x80\xaf"),
                (False, b"\xf8\x80\x80\x80\xaf"),
                (False, b"\xfc\x80\x80\x80\x80\xaf"),
            ],
        )
    )
    out.append(
        (
            "Maximum overlong sequences",
            [
                (False, b"\xc1\xbf"),
                (False, b"\xe0\x9f\xbf"),
                (False, b"\xf0\x8f\xbf\xbf"),
                (False, b"\xf8\x87\xbf\xbf\xbf"),
                (False, b"\xfc\x83\xbf\xbf\xbf\xbf"),
            ],
        )
    )
    out.append(
        (
            "Overlong representation of the NUL character",
            [
                (False, b"\xc0\x80"),
                (False, b"\xe0\x80\x80"),
                (False, b"\xf0\x80\x80\x80"),
                (False, b"\xf8\x80\x80\x80\x80"),
                (False, b"\xfc\x80\x80\x80\x80\x80"),
            ],
        )
    )
    singles = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf", b"\xed\xb0\x80"]
    singles += [b"\xed\xbe\x80", b"\xed\xbf\xbf"]
    out.append(("Single UTF-16 surrogates", [(False, s) for s in singles]))
    paired = []
    for high in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf"):
        for low in (b"\xed\xb0\x80", b"\xed\xbf\xbf"):
            paired.append((False, high + low))
    out.append(("Paired UTF-16 surrogates", paired))
    nonchars = [(True, b"\xef\xbf\xbe"), (True, b"\xef\xbf\xbf")]
    for z1 in (0xF0, 0xF1, 0xF2, 0xF3, 0xF4):
        for z2 in (0x8F, 0x9F, 0xAF, 0xBF):
            if not (z1 == 0xF4 and z2 != 0x8F):  # those encode code points > U+10FFFF
                for z3 in (0xBE, 0xBF):
                    zz = bytes([z1, z2, 0xBF, z3])
                    if zz not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):  # overlong
                        nonchars.append((True, zz))
    out.append(("Non-character code points (valid UTF-8)", nonchars))
    specials = [(True, bytes([0xEF, 0xBF, b])) for b in (0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF)]
    out.append(("Unicode specials (i.e. replacement char)", specials))
    return out


CASES = []
for i, (category, items) in enumerate(sequences(), start=5):
    for j, (is_valid, payload) in enumerate(items, start=1):
        CASES.append(pytest.param(is_valid, payload, category, id=f"autobahn-6.{i}.{j}"))


@pytest.mark.points(1)
@pytest.mark.parametrize(("is_valid", "payload", "category"), CASES)
def test_autobahn_utf8_sequence(is_valid, payload, category):
    """A text message is echoed when its payload is valid UTF-8 and fails the connection with
    1007 when it is not (RFC 6455 §8.1; RFC 3629)."""
    result = Run(connection())
    result.feed(frame(TEXT, payload), echo=True, what=f"receive_data(text frame {payload!r})")
    if is_valid:
        result.feed(close_frame(1000), echo=True, what="receive_data(Close 1000)")
    frames = result.frames()
    got = [(out.opcode, out.data) for out in frames if out.opcode != 8]
    codes = [out.close_code for out in frames if out.opcode == 8]
    what = f"a text frame holding {payload!r} ({category})"
    if is_valid:
        assert got == [(TEXT, payload)] and codes == [1000], called(
            f"receive_data({what}) with the echo, then a Close", frames, "the echo, then Close 1000"
        )
    else:
        assert got == [] and codes == [1007], called(
            f"receive_data({what})", frames, "one Close frame with code 1007 and no echo"
        )

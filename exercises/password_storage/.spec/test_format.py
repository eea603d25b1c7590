"""Hidden specs for the PHC string format: B64, format_hash and parse_hash.

The oracle for B64 is ``base64.b64encode`` with the padding removed (phc-sf-spec.md, "B64");
the stored-string layout is ``$<id>$i=<iterations>$<salt>$<hash>`` (README, "On disk").
"""

from __future__ import annotations

import base64

import pytest
from _helpers import SCHEME, WRAPPED_SCHEME, b64
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from password_storage import InvalidHash, ParsedHash, b64decode, b64encode, format_hash, parse_hash

from grader.spectools import called, short, step

FAST = settings(max_examples=150, phases=[Phase.explicit, Phase.generate])
SALT = bytes(range(16))
DIGEST = bytes(range(100, 132))
GOOD = f"${SCHEME}$i=1000${b64(SALT)}${b64(DIGEST)}"


def rejects(fn, arg) -> tuple[bool, object]:
    """Call fn(arg); (raised InvalidHash?, what came back or was raised)."""
    try:
        got = fn(arg)
    except InvalidHash:
        return True, "InvalidHash"
    except NotImplementedError:
        raise
    except Exception as exc:  # reported to the learner
        return False, f"{type(exc).__name__}: {exc}"
    return False, got


# --- B64 ------------------------------------------------------------------------------------


@pytest.mark.points(2)
@FAST
@given(st.binary(max_size=70))
@example(b"")
@example(b"\x00")
@example(b"\xfb\xff")  # the two characters where standard and URL-safe base64 differ: + and /
@example(b"\xfb\xff\xbf")
@example(b"abc")
def test_b64encode_is_unpadded_standard_base64(raw):
    """b64encode is standard base64 (RFC 4648 §4, + and /) without "=" padding (PHC B64)."""
    with step(f"b64encode({short(raw, 40)})"):
        got = b64encode(raw)
    want = base64.b64encode(raw).decode("ascii").rstrip("=")
    assert got == want, called(f"b64encode({short(raw, 40)})", got, want)


@pytest.mark.points(1)
@FAST
@given(st.binary(max_size=70))
@example(b"")
@example(b"\xfb\xff")
def test_b64decode_reverses_b64encode(raw):
    """b64decode(b64encode(x)) == x for any bytes."""
    text = b64(raw)
    with step(f"b64decode({text!r})"):
        got = b64decode(text)
    assert got == raw, called(f"b64decode({text!r})", got, raw)


@pytest.mark.points(2)
@pytest.mark.parametrize(
    "text",
    [
        "AAECAw==",  # padding
        "AAECAw=",
        "-_8",  # URL-safe alphabet for b"\xfb\xff"
        "AAEC Aw",  # space
        "AAECAw\n",  # newline
        "AAECA",  # 4k+1 characters: impossible
        "A",
        "+/9",  # b"\xfb\xff" with a non-zero unused bit: non-canonical
        "AB",  # b"\x00" spelled with a non-zero unused bit
        "AAE*",
        "ÄÄÄÄ",
    ],
    ids=lambda t: repr(t),
)
def test_b64decode_rejects_non_canonical_text(text):
    """b64decode raises InvalidHash for padding, other alphabets, whitespace, 4k+1 lengths and non-zero trailing bits."""
    raised, got = rejects(b64decode, text)
    assert raised, called(f"b64decode({text!r})", got, "InvalidHash")


# --- format_hash ----------------------------------------------------------------------------


@pytest.mark.points(2)
def test_format_hash_writes_the_phc_string():
    """format_hash writes $<scheme>$i=<iterations>$<B64 salt>$<B64 hash>."""
    salt, digest = b"\xfb\xff" * 8, bytes(range(32))
    for scheme, iterations in [(SCHEME, 600000), (WRAPPED_SCHEME, 1)]:
        parsed = ParsedHash(scheme, iterations, salt, digest)
        with step(f"format_hash({parsed!r})"):
            got = format_hash(parsed)
        want = f"${scheme}$i={iterations}${b64(salt)}${b64(digest)}"
        assert got == want, called(f"format_hash({short(parsed, 80)})", got, want)


# --- parse_hash -----------------------------------------------------------------------------


def parsed(stored: str) -> ParsedHash:
    with step(f"parse_hash({stored!r})"):
        return parse_hash(stored)


@pytest.mark.points(2)
@FAST
@given(
    scheme=st.sampled_from([SCHEME, WRAPPED_SCHEME]),
    iterations=st.integers(1, 2**32 - 1),
    salt=st.binary(min_size=1, max_size=48),
    digest=st.binary(min_size=32, max_size=32),
)
@example(scheme=SCHEME, iterations=1, salt=b"\x00", digest=bytes(32))
@example(scheme=SCHEME, iterations=2**32 - 1, salt=bytes(16), digest=b"\xff" * 32)
def test_parse_hash_reads_what_format_hash_writes(scheme, iterations, salt, digest):
    """parse_hash reads a well-formed string into its scheme, iterations, salt and digest."""
    stored = f"${scheme}$i={iterations}${b64(salt)}${b64(digest)}"
    got = parsed(stored)
    want = ParsedHash(scheme, iterations, salt, digest)
    assert got == want, called(f"parse_hash({stored!r})", got, want)


MALFORMED = [
    ("no leading $", GOOD[1:]),
    ("trailing $", GOOD + "$"),
    ("missing hash", f"${SCHEME}$i=1000${b64(SALT)}"),
    ("extra field", f"${SCHEME}$v=1$i=1000${b64(SALT)}${b64(DIGEST)}"),
    ("unknown scheme", f"$pbkdf2-sha512$i=1000${b64(SALT)}${b64(DIGEST)}"),
    ("scheme in capitals", f"$PBKDF2-SHA256$i=1000${b64(SALT)}${b64(DIGEST)}"),
    ("passlib's rounds field", f"${SCHEME}$1000${b64(SALT)}${b64(DIGEST)}"),
    ("other param name", f"${SCHEME}$rounds=1000${b64(SALT)}${b64(DIGEST)}"),
    ("extra param", f"${SCHEME}$i=1000,l=32${b64(SALT)}${b64(DIGEST)}"),
    ("i=0", f"${SCHEME}$i=0${b64(SALT)}${b64(DIGEST)}"),
    ("i=2**32", f"${SCHEME}$i=4294967296${b64(SALT)}${b64(DIGEST)}"),
    ("i=-1", f"${SCHEME}$i=-1${b64(SALT)}${b64(DIGEST)}"),
    ("i=+1000", f"${SCHEME}$i=+1000${b64(SALT)}${b64(DIGEST)}"),
    ("i=01000", f"${SCHEME}$i=01000${b64(SALT)}${b64(DIGEST)}"),
    ("i= 1000", f"${SCHEME}$i= 1000${b64(SALT)}${b64(DIGEST)}"),
    ("i=1_000", f"${SCHEME}$i=1_000${b64(SALT)}${b64(DIGEST)}"),
    ("i=Arabic-Indic digits", f"${SCHEME}$i=\u0661\u0660\u0660\u0660${b64(SALT)}${b64(DIGEST)}"),
    ("i empty", f"${SCHEME}$i=${b64(SALT)}${b64(DIGEST)}"),
    ("empty salt", f"${SCHEME}$i=1000$${b64(DIGEST)}"),
    ("salt padded", f"${SCHEME}$i=1000${base64.b64encode(bytes(2)).decode()}${b64(DIGEST)}"),
    ("salt URL-safe", f"${SCHEME}$i=1000$-_8${b64(DIGEST)}"),
    ("hash 31 bytes", f"${SCHEME}$i=1000${b64(SALT)}${b64(DIGEST[:31])}"),
    ("hash 33 bytes", f"${SCHEME}$i=1000${b64(SALT)}${b64(DIGEST + b'x')}"),
    ("hash non-canonical", f"${SCHEME}$i=1000${b64(SALT)}${b64(DIGEST)[:-1]}B"),
    ("trailing newline", GOOD + "\n"),
    ("legacy SHA-1 row", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"),
    ("empty string", ""),
]


@pytest.mark.points(3)
@pytest.mark.parametrize("stored", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_parse_hash_rejects_malformed_strings(stored):
    """parse_hash raises InvalidHash (a ValueError) for anything but the one exact layout."""
    raised, got = rejects(parse_hash, stored)
    assert raised, called(f"parse_hash({stored!r})", got, "InvalidHash")


@pytest.mark.points(1)
def test_invalid_hash_is_a_value_error():
    """InvalidHash is a ValueError, so callers that catch ValueError see it."""
    raised, got = rejects(parse_hash, "$nope")
    assert raised, called("parse_hash('$nope')", got, "InvalidHash")
    assert issubclass(InvalidHash, ValueError), called(
        "issubclass(InvalidHash, ValueError)", False, True
    )

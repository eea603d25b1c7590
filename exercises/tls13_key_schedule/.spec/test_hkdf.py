"""Hidden specs for HKDF (RFC 5869): the published test cases and cryptography as a differential."""

from __future__ import annotations

import pytest
from _helpers import RFC5869, attempt, expect_value_error, oracle_expand, oracle_hkdf, said
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tls13_key_schedule import hkdf_expand, hkdf_extract

from grader.spectools import step

CASE_IDS = [case[0] for case in RFC5869]


@pytest.mark.points(2)
@pytest.mark.parametrize("case", RFC5869, ids=CASE_IDS)
def test_rfc5869_vectors(case):
    """HKDF-Extract gives the PRK and HKDF-Expand the OKM of RFC 5869 Appendix A (cases 1-7, SHA-256 and SHA-1)."""
    name, hash_name, ikm, salt, info, length, prk, okm = case
    shown_salt = "None" if salt is None else f"<{len(salt)} bytes>"
    call = f"hkdf_extract({shown_salt}, <{len(ikm)} bytes>, {hash_name!r}) [{name}]"
    with step(call):
        got = hkdf_extract(salt, ikm, hash_name)
    assert got == prk, said(call, got, prk)
    call = f"hkdf_expand(<PRK>, <{len(info)} bytes of info>, {length}, {hash_name!r}) [{name}]"
    with step(call):
        got = hkdf_expand(prk, info, length, hash_name)
    assert got == okm, said(call, got, okm)


HASH_NAMES = st.sampled_from(["sha256", "sha1", "sha384", "sha512"])


@pytest.mark.points(2)
@settings(max_examples=60)
@given(
    salt=st.none() | st.binary(max_size=200),
    ikm=st.binary(max_size=200),
    info=st.binary(max_size=100),
    length=st.integers(1, 300),
    hash_name=HASH_NAMES,
)
@example(salt=None, ikm=b"", info=b"", length=32, hash_name="sha256")
@example(salt=b"", ikm=b"\x00", info=b"", length=1, hash_name="sha256")
@example(salt=bytes(65), ikm=b"k", info=b"i", length=64, hash_name="sha256")  # salt > block size
@example(salt=b"s" * 200, ikm=b"k", info=b"i", length=48, hash_name="sha384")
@example(salt=b"salt", ikm=b"ikm", info=b"info", length=33, hash_name="sha512")
def test_extract_then_expand_matches_cryptography(salt, ikm, info, length, hash_name):
    """Extract-then-expand equals cryptography's HKDF for any salt, IKM, info, length and hash."""
    want = oracle_hkdf(salt, ikm, info, length, hash_name)
    call = (
        f"hkdf_expand(hkdf_extract({salt!r:.40}, {ikm!r:.40}, {hash_name!r}), "
        f"{info!r:.40}, {length}, {hash_name!r})"
    )
    with step(call):
        got = hkdf_expand(hkdf_extract(salt, ikm, hash_name), info, length, hash_name)
    assert got == want, said(call, got, want)


@pytest.mark.points(2)
@settings(max_examples=60)
@given(
    prk=st.binary(min_size=1, max_size=80),
    info=st.binary(max_size=300),
    length=st.integers(1, 700),
    hash_name=HASH_NAMES,
)
@example(prk=b"p" * 32, info=b"", length=1, hash_name="sha256")
@example(prk=b"p" * 32, info=b"x", length=31, hash_name="sha256")
@example(prk=b"p" * 32, info=b"x", length=32, hash_name="sha256")  # exactly one block
@example(prk=b"p" * 32, info=b"x", length=33, hash_name="sha256")  # one byte into block 2
@example(prk=b"p" * 32, info=b"x", length=64, hash_name="sha256")
@example(prk=b"p" * 32, info=b"x", length=65, hash_name="sha256")
@example(prk=b"p" * 20, info=b"x" * 300, length=100, hash_name="sha1")
def test_expand_matches_cryptography(prk, info, length, hash_name):
    """HKDF-Expand equals cryptography's HKDFExpand at every length, block boundaries included."""
    want = oracle_expand(prk, info, length, hash_name)
    call = f"hkdf_expand({prk!r:.30}, info of {len(info)} bytes, {length}, {hash_name!r})"
    with step(call):
        got = hkdf_expand(prk, info, length, hash_name)
    assert got == want, said(call, got, want)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("hash_name", "hash_len"), [("sha256", 32), ("sha1", 20)], ids=["sha256", "sha1"]
)
def test_expand_accepts_255_blocks(hash_name, hash_len):
    """HKDF-Expand gives up to 255 * HashLen bytes (RFC 5869 §2.3), and 0 bytes gives b""."""
    prk = bytes(range(hash_len))
    for length in (255 * hash_len, 255 * hash_len - 1, 0):
        call = f"hkdf_expand(prk, b'info', {length}, {hash_name!r})"
        want = oracle_expand(prk, b"info", length, hash_name)
        got = attempt(call, hkdf_expand, prk, b"info", length, hash_name)
        assert got == want, said(call, got, want)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("hash_name", "length"),
    [("sha256", 255 * 32 + 1), ("sha1", 255 * 20 + 1), ("sha256", -1)],
    ids=["sha256 8161", "sha1 5101", "negative"],
)
def test_expand_refuses_more_than_255_blocks(hash_name, length):
    """HKDF-Expand raises ValueError for L > 255 * HashLen (RFC 5869 §2.3) or L < 0."""
    prk = bytes(32)
    expect_value_error(
        f"hkdf_expand(prk, b'', {length}, {hash_name!r})", hkdf_expand, prk, b"", length, hash_name
    )

"""Hidden specs for sharding: the key hash and Lamping & Veach's jump consistent hash."""

from __future__ import annotations

import jump
import pytest
from _helpers import describe, oracle_hash, outcome
from hypothesis import example, given
from hypothesis import strategies as st
from sharding import jump_hash, key_hash

from grader.spectools import called, step

U64 = (1 << 64) - 1

# -- key_hash -------------------------------------------------------------------------------

HASH_INPUTS = ["", "a", "user:42", "node-3#17", "é", "日本", b"", b"\x00\xff", b"user:42"]


@pytest.mark.points(2)
@pytest.mark.parametrize("key", HASH_INPUTS, ids=lambda k: repr(k))
def test_key_hash_is_the_first_8_bytes_of_sha256_big_endian(key):
    """key_hash(key) is the first 8 bytes of SHA-256 of the key (UTF-8 for str), big-endian."""
    with step(f"key_hash({key!r})"):
        got = key_hash(key)
    want = oracle_hash(key)
    assert got == want, called(f"key_hash({key!r})", got, want)


# -- jump_hash: published vectors and the package -----------------------------------------

# ClickHouse's tests of jumpConsistentHash (tests/queries/0_stateless/
# 00580_consistent_hashing_functions.sql and .reference), the C++ of the paper.
CLICKHOUSE = [
    (1, 1, 0),
    (42, 57, 43),
    (256, 1024, 520),
    (3735883980, 1, 0),
    (3735883980, 666, 361),
    (16045690984833335023, 255, 237),
]


@pytest.mark.points(2)
@pytest.mark.parametrize(
    ("key", "buckets", "want"), CLICKHOUSE, ids=[f"jump({k},{n})" for k, n, _ in CLICKHOUSE]
)
def test_jump_hash_matches_published_vectors(key, buckets, want):
    """jump_hash gives the paper's buckets on published vectors (ClickHouse's jumpConsistentHash tests)."""
    with step(f"jump_hash({key}, {buckets})"):
        got = jump_hash(key, buckets)
    assert got == want, called(f"jump_hash({key}, {buckets})", got, want)


@pytest.mark.points(3)
@given(key=st.integers(0, U64), buckets=st.integers(1, 1 << 20))
@example(key=0, buckets=1)
@example(key=0, buckets=2)
@example(key=U64, buckets=1)
@example(key=U64, buckets=(1 << 31) - 1)
@example(key=U64 - 1, buckets=1000)
@example(key=1 << 63, buckets=10)
@example(key=(1 << 63) - 1, buckets=10)
@example(key=1 << 33, buckets=100)
def test_jump_hash_matches_the_reference_implementation(key, buckets):
    """jump_hash(key, n) equals the jump-consistent-hash package's (the paper's C++) for 64-bit keys."""
    with step(f"jump_hash({key}, {buckets})"):
        got = jump_hash(key, buckets)
    want = jump.hash(key, buckets)
    assert got == want, called(f"jump_hash({key}, {buckets})", got, want)


@pytest.mark.points(1)
@pytest.mark.parametrize(
    ("key", "ok"),
    [(0, True), (-1, False), (U64, True), (U64 + 1, False), (1 << 70, False)],
    ids=["0", "-1", "2**64-1", "2**64", "2**70"],
)
def test_jump_hash_takes_unsigned_64_bit_keys(key, ok):
    """jump_hash accepts keys in [0, 2**64) and raises ValueError outside."""
    result = outcome(jump_hash, key, 10)
    if ok:
        assert result == ("returned", jump.hash(key, 10)), (
            f"Called jump_hash({key}, 10); {describe(result)}; expected {jump.hash(key, 10)}"
        )
    else:
        assert result[0] == "raised" and isinstance(result[1], ValueError), (
            f"Called jump_hash({key}, 10); {describe(result)}; expected ValueError"
        )


@pytest.mark.points(1)
@pytest.mark.parametrize("buckets", [1, 0, -1, 2], ids=["n=1", "n=0", "n=-1", "n=2"])
def test_jump_hash_needs_at_least_one_bucket(buckets):
    """jump_hash(key, n) raises ValueError for n < 1; with one bucket every key lands in bucket 0."""
    for key in (0, 12345, U64):
        result = outcome(jump_hash, key, buckets)
        if buckets >= 1:
            want = jump.hash(key, buckets)
            assert result == ("returned", want), (
                f"Called jump_hash({key}, {buckets}); {describe(result)}; expected {want}"
            )
        else:
            assert result[0] == "raised" and isinstance(result[1], ValueError), (
                f"Called jump_hash({key}, {buckets}); {describe(result)}; expected ValueError"
            )


@pytest.mark.points(2)
@given(key=st.integers(0, U64), buckets=st.integers(1, 5000))
@example(key=0, buckets=1)
@example(key=U64, buckets=1)
@example(key=3735883980, buckets=665)
def test_jump_hash_moves_a_key_only_to_the_new_bucket(key, buckets):
    """Going from n to n+1 buckets, a key keeps its bucket or moves to the new bucket n."""
    with step(f"jump_hash({key}, {buckets}) and jump_hash({key}, {buckets + 1})"):
        before, after = jump_hash(key, buckets), jump_hash(key, buckets + 1)
    assert after in (before, buckets), called(
        f"jump_hash({key}, {buckets}) then jump_hash({key}, {buckets + 1})",
        (before, after),
        f"({before}, {before}) or ({before}, {buckets})",
    )

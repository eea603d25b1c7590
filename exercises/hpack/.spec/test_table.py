"""The dynamic table on its own: size accounting with the 32-octet overhead, FIFO eviction,
entries larger than the table, resizing (§4)."""

from __future__ import annotations

import pytest
from hpack_codec import DynamicTable
from hypothesis import example, given
from hypothesis import strategies as st

from grader.spectools import called, step


def state(table: DynamicTable) -> tuple[list[tuple[bytes, bytes]], int, int]:
    return table.entries(), table.size, table.max_size


@pytest.mark.points(2)
def test_entry_size_counts_32_octets_of_overhead() -> None:
    """An entry's size is the length of its name plus the length of its value plus 32 (§4.1)."""
    with step("DynamicTable(4096).add(b'custom-key', b'custom-header')"):
        table = DynamicTable(4096)
        table.add(b"custom-key", b"custom-header")
        got = state(table)
    want = ([(b"custom-key", b"custom-header")], 55, 4096)
    assert got == want, called("(entries(), size, max_size) after one add", got, want)
    with step("table.add(b'', b'')"):
        table.add(b"", b"")
        got = state(table)
    want = ([(b"", b""), (b"custom-key", b"custom-header")], 87, 4096)
    assert got == want, called("(entries(), size, max_size) after add(b'', b'')", got, want)


@pytest.mark.points(2)
def test_table_filled_exactly_to_its_maximum_keeps_every_entry() -> None:
    """Entries whose sizes add up to exactly the maximum size all stay; one octet more evicts
    the oldest (§4.4)."""
    with step("DynamicTable(100).add(b'a', b'x' * 17) twice"):
        table = DynamicTable(100)
        table.add(b"a", b"x" * 17)  # 50
        table.add(b"b", b"y" * 17)  # 50: exactly 100
        got = state(table)
    want = ([(b"b", b"y" * 17), (b"a", b"x" * 17)], 100, 100)
    assert got == want, called("(entries(), size, max_size) at exactly the maximum", got, want)
    with step("table.add(b'c', b'')"):
        table.add(b"c", b"")  # 33: the oldest goes
        got = state(table)
    want = ([(b"c", b""), (b"b", b"y" * 17)], 83, 100)
    assert got == want, called("(entries(), size, max_size) after one more add", got, want)


@pytest.mark.points(2)
def test_entry_larger_than_the_table_empties_it() -> None:
    """Adding an entry larger than the maximum size empties the table and adds nothing; an entry
    of exactly the maximum size replaces everything (§4.4: not an error)."""
    with step("DynamicTable(64) with two entries, then add an entry of 65 octets"):
        table = DynamicTable(64)
        table.add(b"a", b"")
        table.add(b"b", b"")
        table.add(b"c", b"v" * 32)  # 65 > 64
        got = state(table)
    assert got == ([], 0, 64), called(
        "(entries(), size, max_size) after the oversized add", got, ([], 0, 64)
    )
    with step("table.add(b'd', b'v' * 31)"):
        table.add(b"e", b"")
        table.add(b"d", b"v" * 31)  # exactly 64
        got = state(table)
    want = ([(b"d", b"v" * 31)], 64, 64)
    assert got == want, called("(entries(), size, max_size) after an add of exactly 64", got, want)


@pytest.mark.points(2)
def test_resize_evicts_oldest_until_it_fits() -> None:
    """Lowering the maximum size evicts the oldest entries until the size fits; raising it keeps
    them all; resize(0) empties the table (§4.3)."""
    with step("DynamicTable(4096) with entries of 40, 41, 42 octets, then resize(83)"):
        table = DynamicTable(4096)
        for name in (b"aaaaaaaa", b"bbbbbbbbb", b"cccccccccc"):
            table.add(name, b"")
        table.resize(83)
        got = state(table)
    want = ([(b"cccccccccc", b""), (b"bbbbbbbbb", b"")], 83, 83)
    assert got == want, called("(entries(), size, max_size) after resize(83)", got, want)
    with step("table.resize(82)"):
        table.resize(82)
        got = state(table)
    want = ([(b"cccccccccc", b"")], 42, 82)
    assert got == want, called("(entries(), size, max_size) after resize(82)", got, want)
    with step("table.resize(5000)"):
        table.resize(5000)
        got = state(table)
    want = ([(b"cccccccccc", b"")], 42, 5000)
    assert got == want, called("(entries(), size, max_size) after resize(5000)", got, want)
    with step("table.resize(0)"):
        table.resize(0)
        got = state(table)
    assert got == ([], 0, 0), called("(entries(), size, max_size) after resize(0)", got, ([], 0, 0))


@pytest.mark.points(3)
@given(
    max_size=st.integers(0, 300),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.binary(max_size=8), st.binary(max_size=120)),
            st.tuples(st.just("resize"), st.integers(0, 300)),
        ),
        max_size=30,
    ),
)
@example(max_size=0, ops=[("add", b"", b"")])
@example(max_size=32, ops=[("add", b"", b""), ("add", b"", b""), ("resize", 31)])
def test_table_matches_a_fifo_model(max_size: int, ops: list[tuple]) -> None:
    """Under any sequence of adds and resizes the table is a FIFO of the newest entries that fit,
    its size the sum of len(name) + len(value) + 32 (§4.1-§4.4)."""
    with step(f"DynamicTable({max_size})"):
        table = DynamicTable(max_size)
    model: list[tuple[bytes, bytes]] = []
    limit = max_size
    done = [f"DynamicTable({max_size})"]
    for op in ops:
        if op[0] == "add":
            _, name, value = op
            model.insert(0, (name, value))
            done.append(f"add({len(name)}+{len(value)} octets)")
            with step(" ".join(done)):
                table.add(name, value)
        else:
            limit = op[1]
            done.append(f"resize({limit})")
            with step(" ".join(done)):
                table.resize(limit)
        while model and sum(len(n) + len(v) + 32 for n, v in model) > limit:
            model.pop()
        want = (model, sum(len(n) + len(v) + 32 for n, v in model), limit)
        with step(" ".join(done)):
            got = state(table)
        assert got == want, called(
            " ".join(done)[-200:] + " -> (entries(), size, max_size)", got, want
        )

"""Examples of a working LSM tree. Run them with `nox -s try -- lsm_tree`."""

try:
    from lsm_tree import LSMTree, MemoryDisk
except ImportError as err:
    raise ImportError(
        "MISSING CLASS --> could not import LSMTree and MemoryDisk from lsm_tree.py"
    ) from err


class CountingDisk(MemoryDisk):
    """A MemoryDisk that counts reads of SSTables, the way the hidden specs count block reads."""

    def __init__(self) -> None:
        super().__init__()
        self.table_reads = 0

    def read(self, name, offset, size):
        if name.endswith(".sst"):
            self.table_reads += 1
        return super().read(name, offset, size)


def test_put_get_delete():
    tree = LSMTree(MemoryDisk())
    tree.put(b"apple", b"red")
    tree.put(b"pear", b"green")
    tree.put(b"apple", b"yellow")
    tree.delete(b"pear")
    assert tree.get(b"apple") == b"yellow", "Called tree.get(b'apple'); expected b'yellow'"
    assert tree.get(b"pear") is None, "Called tree.get(b'pear') after delete; expected None"
    assert tree.get(b"plum") is None, "Called tree.get(b'plum'); expected None"


def test_flush_writes_a_table_and_reads_still_work():
    disk = MemoryDisk()
    tree = LSMTree(disk, memtable_limit=4)
    for i in range(10):
        tree.put(b"key%02d" % i, b"value%d" % i)
    assert any(name.endswith(".sst") for name in disk.names()), "Expected a .sst after 10 puts"
    assert tree.get(b"key03") == b"value3", "Called tree.get(b'key03'); expected b'value3'"
    got = list(tree.scan(b"key02", b"key05"))
    want = [(b"key02", b"value2"), (b"key03", b"value3"), (b"key04", b"value4")]
    assert got == want, (
        f"Called list(tree.scan(b'key02', b'key05')); returned {got}; expected {want}"
    )


def test_reopen_recovers_from_the_wal():
    disk = MemoryDisk()
    tree = LSMTree(disk, memtable_limit=100)
    tree.put(b"a", b"1")
    tree.put(b"b", b"2")
    # no close(): a crash. A new tree on the same disk replays the WAL.
    tree = LSMTree(disk, memtable_limit=100)
    assert tree.get(b"b") == b"2", "Called tree.get(b'b') after a reopen; expected b'2'"


def test_a_compacted_tree_reads_one_block_per_get():
    disk = CountingDisk()
    tree = LSMTree(disk, memtable_limit=16, block_size=64)
    for i in range(200):
        tree.put(b"key%03d" % i, b"v%d" % i)
    tree.compact()
    before = disk.table_reads
    assert tree.get(b"key123") == b"v123", "Called tree.get(b'key123'); expected b'v123'"
    reads = disk.table_reads - before
    assert reads == 1, (
        f"Called tree.get(b'key123') on a compacted tree; read {reads} blocks; expected 1"
    )

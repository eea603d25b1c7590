"""HPACK: header compression for HTTP/2 (RFC 7541), encoder and decoder.

A header block is a sequence of representations, each starting with a pattern in its first
octet (§6):

    1xxxxxxx  indexed field: the whole (name, value) is a table entry (§6.1)
    01xxxxxx  literal with incremental indexing: send it, both sides add it to the table (§6.2.1)
    001xxxxx  dynamic table size update (§6.3)
    0001xxxx  literal never indexed: send it, nobody may ever index it (§6.2.3)
    0000xxxx  literal without indexing: send it, don't add it (§6.2.2)

Indexes 1..61 name the static table (STATIC_TABLE below, Appendix A); 62 and up the dynamic
table, newest entry first (§2.3.3). Names and values are bytes everywhere.

Standard library only. See README.md for the rules in full; the tables are at the end of this
file, as data.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ENTRY_OVERHEAD",
    "HUFFMAN_CODES",
    "MAX_INTEGER_CONTINUATION_OCTETS",
    "STATIC_TABLE",
    "Decoder",
    "DynamicTable",
    "Encoder",
    "HPACKError",
    "NeverIndexed",
    "NotIndexed",
    "OversizedHeaderListError",
    "decode_integer",
    "encode_integer",
    "huffman_decode",
    "huffman_encode",
]

ENTRY_OVERHEAD = 32  # §4.1: an entry's size is len(name) + len(value) + 32
MAX_INTEGER_CONTINUATION_OCTETS = 5  # 5 x 7 bits hold any 32-bit value; more is an attack (§5.1)


class HPACKError(Exception):
    """The header block can't be decoded: a decoding error (RFC 7541), COMPRESSION_ERROR in HTTP/2."""


class OversizedHeaderListError(HPACKError):
    """The decoded header list would be larger than ``max_header_list_size`` (RFC 9113 §6.5.2)."""


class NeverIndexed(tuple[bytes, bytes]):
    """A field that must travel as a literal never indexed (§6.2.3): a secret, such as a cookie
    or an authorization header, that no compressor on the way may put in a table.

    It is a ``(name, value)`` pair (it compares equal to the plain tuple); the decoder returns
    this type for fields that arrived never-indexed, so a proxy that re-encodes them keeps the
    promise (§6.2.3: intermediaries MUST use the same representation).
    """

    __slots__ = ()

    def __new__(cls, name: bytes, value: bytes) -> NeverIndexed:
        return super().__new__(cls, (name, value))

    def __repr__(self) -> str:
        return f"NeverIndexed({self[0]!r}, {self[1]!r})"


class NotIndexed(tuple[bytes, bytes]):
    """A field to send as a literal without indexing (§6.2.2): a value that won't repeat (a
    content-length, a request id), so storing it would only evict useful entries."""

    __slots__ = ()

    def __new__(cls, name: bytes, value: bytes) -> NotIndexed:
        return super().__new__(cls, (name, value))

    def __repr__(self) -> str:
        return f"NotIndexed({self[0]!r}, {self[1]!r})"


# --- primitives: integers (§5.1) and Huffman strings (§5.2) -----------------------------------


def encode_integer(value: int, prefix_bits: int, first_byte: int = 0) -> bytes:
    """``value`` in an N-bit prefix integer (§5.1); ``first_byte`` holds the pattern bits above
    the prefix (for instance 0x80 for an indexed field).

    TODO: a value below 2^N - 1 fits in the prefix: one octet, first_byte | value.
    TODO: otherwise the prefix is all ones (2^N - 1) and value - (2^N - 1) follows in octets of
          7 bits, least significant group first, the high bit set on every octet but the last.
          encode_integer(1337, 5) == b"\\x1f\\x9a\\x0a" (Appendix C.1.2).
    TODO: a negative value, or a prefix outside 1..8 bits, is a ValueError.
    """
    raise NotImplementedError


def decode_integer(data: bytes, offset: int, prefix_bits: int) -> tuple[int, int]:
    """Read an N-bit prefix integer starting at ``data[offset]``; return (value, next offset).

    TODO: ignore the bits above the prefix in the first octet (they are the pattern).
    TODO: raise HPACKError when the data ends before or inside the integer.
    TODO: at most MAX_INTEGER_CONTINUATION_OCTETS continuation octets: a sixth raises
          HPACKError (§5.1: encodings that exceed implementation limits MUST be errors).
    """
    raise NotImplementedError


def huffman_encode(data: bytes) -> bytes:
    """``data`` in the Huffman code of Appendix B (HUFFMAN_CODES below).

    TODO: write each octet's code, most significant bit first, bits packed across octets.
    TODO: pad the last octet with the most significant bits of EOS, that is with 1 bits (§5.2).
    """
    raise NotImplementedError


def huffman_decode(data: bytes) -> bytes:
    """Decode a Huffman-coded string (§5.2).

    TODO: read bits until they form a code of HUFFMAN_CODES (the code is prefix-free).
    TODO: raise HPACKError when the string holds EOS (symbol 256), when the padding left at the
          end is longer than 7 bits, or when it is not all 1 bits (§5.2: decoding errors).
    """
    raise NotImplementedError


# --- the dynamic table (§2.3.2, §4) -----------------------------------------------------------


class DynamicTable:
    """The dynamic table: a FIFO of (name, value) entries, newest first, bounded in size (§4)."""

    def __init__(self, max_size: int = 4096) -> None:
        """An empty table whose entries may add up to ``max_size`` octets."""
        raise NotImplementedError

    @property
    def size(self) -> int:
        """The sum of the entries' sizes: len(name) + len(value) + 32 each (§4.1)."""
        raise NotImplementedError

    @property
    def max_size(self) -> int:
        """The maximum size the entries may reach (§4.2)."""
        raise NotImplementedError

    def entries(self) -> list[tuple[bytes, bytes]]:
        """The entries, newest first: entries()[0] is index 62 (§2.3.3)."""
        raise NotImplementedError

    def __len__(self) -> int:
        """The number of entries."""
        raise NotImplementedError

    def __getitem__(self, position: int) -> tuple[bytes, bytes]:
        """The entry at ``position`` (0 = newest)."""
        raise NotImplementedError

    def add(self, name: bytes, value: bytes) -> None:
        """Insert a new entry as the newest.

        TODO: first evict the oldest entries until the new one fits (§4.4).
        TODO: an entry larger than max_size empties the table and is not added; that is not an
              error (§4.4).
        """
        raise NotImplementedError

    def resize(self, max_size: int) -> None:
        """Set a new maximum size.

        TODO: evict the oldest entries until size <= max_size (§4.3); 0 empties the table.
        """
        raise NotImplementedError


# --- the encoder ------------------------------------------------------------------------------


class Encoder:
    """Turns header lists into header blocks, one block per call, keeping its dynamic table in
    step with the peer's decoder. ``table`` is its DynamicTable.

    ``max_table_size`` is the table's size at the start, agreed with the peer out of band (in
    HTTP/2, 4096 until the peer's SETTINGS say otherwise): no size update is sent for it.
    ``huffman`` True codes every string, False none, None whichever is strictly shorter.
    """

    def __init__(self, max_table_size: int = 4096, *, huffman: bool | None = None) -> None:
        """TODO: self.table = DynamicTable(max_table_size); remember huffman; no pending update."""
        raise NotImplementedError

    def set_max_table_size(self, size: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE is now ``size``: the table takes that maximum
        size, announced at the start of the next block (§4.2, §6.3).

        TODO: remember the change; nothing is sent until the next encode().
        TODO: a negative size is a ValueError.
        """
        raise NotImplementedError

    def encode(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """One header block for ``headers`` (in order): any iterable of (name, value) pairs.

        TODO: if set_max_table_size was called since the last block, start with dynamic table
              size updates (pattern 001, 5-bit prefix, §6.3), resizing the table as you go: the
              smallest size set in between if it is below the final one, then the final one
              (§4.2: at most two); nothing if the size did not change.
        TODO: a NeverIndexed field: literal never indexed (0001, 4-bit name index, §6.2.3), even
              if the table holds the field; never added to the table.
        TODO: a NotIndexed field: literal without indexing (0000, 4-bit name index, §6.2.2).
        TODO: any other field: if (name, value) is in a table, the indexed representation at the
              lowest such index (1, 7-bit index, §6.1); otherwise a literal with incremental
              indexing (01, 6-bit name index, §6.2.1), then add it to the table.
        TODO: a literal names the lowest index whose entry has the name, or index 0 followed by
              the name as a string literal.
        TODO: a string literal is the H bit, a 7-bit prefix length and the octets (§5.2).
        """
        raise NotImplementedError


# --- the decoder ------------------------------------------------------------------------------


class Decoder:
    """Turns header blocks into header lists, keeping its dynamic table in step with the peer's
    encoder. ``table`` is its DynamicTable. Every malformed block raises HPACKError; after one
    the connection is done for (in HTTP/2 a COMPRESSION_ERROR).

    ``max_table_size`` is the limit this side announced (SETTINGS_HEADER_TABLE_SIZE): the table
    starts at that size and a size update may not exceed it. ``max_header_list_size`` bounds the
    decoded list: name + value + 32 per field (RFC 9113 §6.5.2).
    """

    def __init__(self, max_table_size: int = 4096, max_header_list_size: int = 65536) -> None:
        """TODO: self.table = DynamicTable(max_table_size); remember both limits."""
        raise NotImplementedError

    def set_max_table_size(self, size: int) -> None:
        """This side's SETTINGS_HEADER_TABLE_SIZE is now ``size`` (and acknowledged).

        TODO: size updates above ``size`` are errors from now on.
        TODO: when the table's max_size is above ``size``, the next block must start with a size
              update that brings it within ``size`` (RFC 9113 §4.3.1); a block that doesn't
              raises HPACKError.
        """
        raise NotImplementedError

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The header list of one complete header block.

        TODO: dynamic table size updates are allowed only before the first field (§4.2); each
              may not exceed the limit (§6.3) and resizes the table.
        TODO: indexed field (§6.1): index 0, or an index past the static and dynamic tables, is
              an error (§2.3.3).
        TODO: literals (§6.2): a name index (or 0 and a literal name), then the value; only
              "with incremental indexing" adds the field to the table; a field that arrived
              "never indexed" is returned as NeverIndexed(name, value). Resolve an indexed name
              before adding: the insertion may evict the very entry it names (§4.4).
        TODO: string literals (§5.2): H bit, 7-bit length; a length past the end of the block is
              an error; Huffman-decode when H is set.
        TODO: count name + value + 32 for every field as you go, and raise
              OversizedHeaderListError as soon as the total passes max_header_list_size: never
              build the over-limit list.
        TODO: every problem raises HPACKError (or a subclass), never IndexError or another.
        """
        raise NotImplementedError


# --- the tables, as data ----------------------------------------------------------------------

# RFC 7541 Appendix A: the static table. Index 1 is STATIC_TABLE[0].
STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = (
    (b":authority", b""),  # 1
    (b":method", b"GET"),  # 2
    (b":method", b"POST"),  # 3
    (b":path", b"/"),  # 4
    (b":path", b"/index.html"),  # 5
    (b":scheme", b"http"),  # 6
    (b":scheme", b"https"),  # 7
    (b":status", b"200"),  # 8
    (b":status", b"204"),  # 9
    (b":status", b"206"),  # 10
    (b":status", b"304"),  # 11
    (b":status", b"400"),  # 12
    (b":status", b"404"),  # 13
    (b":status", b"500"),  # 14
    (b"accept-charset", b""),  # 15
    (b"accept-encoding", b"gzip, deflate"),  # 16
    (b"accept-language", b""),  # 17
    (b"accept-ranges", b""),  # 18
    (b"accept", b""),  # 19
    (b"access-control-allow-origin", b""),  # 20
    (b"age", b""),  # 21
    (b"allow", b""),  # 22
    (b"authorization", b""),  # 23
    (b"cache-control", b""),  # 24
    (b"content-disposition", b""),  # 25
    (b"content-encoding", b""),  # 26
    (b"content-language", b""),  # 27
    (b"content-length", b""),  # 28
    (b"content-location", b""),  # 29
    (b"content-range", b""),  # 30
    (b"content-type", b""),  # 31
    (b"cookie", b""),  # 32
    (b"date", b""),  # 33
    (b"etag", b""),  # 34
    (b"expect", b""),  # 35
    (b"expires", b""),  # 36
    (b"from", b""),  # 37
    (b"host", b""),  # 38
    (b"if-match", b""),  # 39
    (b"if-modified-since", b""),  # 40
    (b"if-none-match", b""),  # 41
    (b"if-range", b""),  # 42
    (b"if-unmodified-since", b""),  # 43
    (b"last-modified", b""),  # 44
    (b"link", b""),  # 45
    (b"location", b""),  # 46
    (b"max-forwards", b""),  # 47
    (b"proxy-authenticate", b""),  # 48
    (b"proxy-authorization", b""),  # 49
    (b"range", b""),  # 50
    (b"referer", b""),  # 51
    (b"refresh", b""),  # 52
    (b"retry-after", b""),  # 53
    (b"server", b""),  # 54
    (b"set-cookie", b""),  # 55
    (b"strict-transport-security", b""),  # 56
    (b"transfer-encoding", b""),  # 57
    (b"user-agent", b""),  # 58
    (b"vary", b""),  # 59
    (b"via", b""),  # 60
    (b"www-authenticate", b""),  # 61
)

# RFC 7541 Appendix B: the Huffman code of every symbol, as (code, length in bits);
# HUFFMAN_CODES[s] is the code of octet s, HUFFMAN_CODES[256] is EOS. The code is the low
# `length` bits of `code`, most significant bit first: 'a' (97) is (0x3, 5), the bits 00011.
HUFFMAN_CODES: tuple[tuple[int, int], ...] = (
    (0x1FF8, 13),  #   0
    (0x7FFFD8, 23),  #   1
    (0xFFFFFE2, 28),  #   2
    (0xFFFFFE3, 28),  #   3
    (0xFFFFFE4, 28),  #   4
    (0xFFFFFE5, 28),  #   5
    (0xFFFFFE6, 28),  #   6
    (0xFFFFFE7, 28),  #   7
    (0xFFFFFE8, 28),  #   8
    (0xFFFFEA, 24),  #   9
    (0x3FFFFFFC, 30),  #  10
    (0xFFFFFE9, 28),  #  11
    (0xFFFFFEA, 28),  #  12
    (0x3FFFFFFD, 30),  #  13
    (0xFFFFFEB, 28),  #  14
    (0xFFFFFEC, 28),  #  15
    (0xFFFFFED, 28),  #  16
    (0xFFFFFEE, 28),  #  17
    (0xFFFFFEF, 28),  #  18
    (0xFFFFFF0, 28),  #  19
    (0xFFFFFF1, 28),  #  20
    (0xFFFFFF2, 28),  #  21
    (0x3FFFFFFE, 30),  #  22
    (0xFFFFFF3, 28),  #  23
    (0xFFFFFF4, 28),  #  24
    (0xFFFFFF5, 28),  #  25
    (0xFFFFFF6, 28),  #  26
    (0xFFFFFF7, 28),  #  27
    (0xFFFFFF8, 28),  #  28
    (0xFFFFFF9, 28),  #  29
    (0xFFFFFFA, 28),  #  30
    (0xFFFFFFB, 28),  #  31
    (0x14, 6),  #  32 ' '
    (0x3F8, 10),  #  33 '!'
    (0x3F9, 10),  #  34 '"'
    (0xFFA, 12),  #  35 '#'
    (0x1FF9, 13),  #  36 '$'
    (0x15, 6),  #  37 '%'
    (0xF8, 8),  #  38 '&'
    (0x7FA, 11),  #  39
    (0x3FA, 10),  #  40 '('
    (0x3FB, 10),  #  41 ')'
    (0xF9, 8),  #  42 '*'
    (0x7FB, 11),  #  43 '+'
    (0xFA, 8),  #  44 ','
    (0x16, 6),  #  45 '-'
    (0x17, 6),  #  46 '.'
    (0x18, 6),  #  47 '/'
    (0x0, 5),  #  48 '0'
    (0x1, 5),  #  49 '1'
    (0x2, 5),  #  50 '2'
    (0x19, 6),  #  51 '3'
    (0x1A, 6),  #  52 '4'
    (0x1B, 6),  #  53 '5'
    (0x1C, 6),  #  54 '6'
    (0x1D, 6),  #  55 '7'
    (0x1E, 6),  #  56 '8'
    (0x1F, 6),  #  57 '9'
    (0x5C, 7),  #  58 ':'
    (0xFB, 8),  #  59 ';'
    (0x7FFC, 15),  #  60 '<'
    (0x20, 6),  #  61 '='
    (0xFFB, 12),  #  62 '>'
    (0x3FC, 10),  #  63 '?'
    (0x1FFA, 13),  #  64 '@'
    (0x21, 6),  #  65 'A'
    (0x5D, 7),  #  66 'B'
    (0x5E, 7),  #  67 'C'
    (0x5F, 7),  #  68 'D'
    (0x60, 7),  #  69 'E'
    (0x61, 7),  #  70 'F'
    (0x62, 7),  #  71 'G'
    (0x63, 7),  #  72 'H'
    (0x64, 7),  #  73 'I'
    (0x65, 7),  #  74 'J'
    (0x66, 7),  #  75 'K'
    (0x67, 7),  #  76 'L'
    (0x68, 7),  #  77 'M'
    (0x69, 7),  #  78 'N'
    (0x6A, 7),  #  79 'O'
    (0x6B, 7),  #  80 'P'
    (0x6C, 7),  #  81 'Q'
    (0x6D, 7),  #  82 'R'
    (0x6E, 7),  #  83 'S'
    (0x6F, 7),  #  84 'T'
    (0x70, 7),  #  85 'U'
    (0x71, 7),  #  86 'V'
    (0x72, 7),  #  87 'W'
    (0xFC, 8),  #  88 'X'
    (0x73, 7),  #  89 'Y'
    (0xFD, 8),  #  90 'Z'
    (0x1FFB, 13),  #  91 '['
    (0x7FFF0, 19),  #  92
    (0x1FFC, 13),  #  93 ']'
    (0x3FFC, 14),  #  94 '^'
    (0x22, 6),  #  95 '_'
    (0x7FFD, 15),  #  96 '`'
    (0x3, 5),  #  97 'a'
    (0x23, 6),  #  98 'b'
    (0x4, 5),  #  99 'c'
    (0x24, 6),  # 100 'd'
    (0x5, 5),  # 101 'e'
    (0x25, 6),  # 102 'f'
    (0x26, 6),  # 103 'g'
    (0x27, 6),  # 104 'h'
    (0x6, 5),  # 105 'i'
    (0x74, 7),  # 106 'j'
    (0x75, 7),  # 107 'k'
    (0x28, 6),  # 108 'l'
    (0x29, 6),  # 109 'm'
    (0x2A, 6),  # 110 'n'
    (0x7, 5),  # 111 'o'
    (0x2B, 6),  # 112 'p'
    (0x76, 7),  # 113 'q'
    (0x2C, 6),  # 114 'r'
    (0x8, 5),  # 115 's'
    (0x9, 5),  # 116 't'
    (0x2D, 6),  # 117 'u'
    (0x77, 7),  # 118 'v'
    (0x78, 7),  # 119 'w'
    (0x79, 7),  # 120 'x'
    (0x7A, 7),  # 121 'y'
    (0x7B, 7),  # 122 'z'
    (0x7FFE, 15),  # 123 '{'
    (0x7FC, 11),  # 124 '|'
    (0x3FFD, 14),  # 125 '}'
    (0x1FFD, 13),  # 126 '~'
    (0xFFFFFFC, 28),  # 127
    (0xFFFE6, 20),  # 128
    (0x3FFFD2, 22),  # 129
    (0xFFFE7, 20),  # 130
    (0xFFFE8, 20),  # 131
    (0x3FFFD3, 22),  # 132
    (0x3FFFD4, 22),  # 133
    (0x3FFFD5, 22),  # 134
    (0x7FFFD9, 23),  # 135
    (0x3FFFD6, 22),  # 136
    (0x7FFFDA, 23),  # 137
    (0x7FFFDB, 23),  # 138
    (0x7FFFDC, 23),  # 139
    (0x7FFFDD, 23),  # 140
    (0x7FFFDE, 23),  # 141
    (0xFFFFEB, 24),  # 142
    (0x7FFFDF, 23),  # 143
    (0xFFFFEC, 24),  # 144
    (0xFFFFED, 24),  # 145
    (0x3FFFD7, 22),  # 146
    (0x7FFFE0, 23),  # 147
    (0xFFFFEE, 24),  # 148
    (0x7FFFE1, 23),  # 149
    (0x7FFFE2, 23),  # 150
    (0x7FFFE3, 23),  # 151
    (0x7FFFE4, 23),  # 152
    (0x1FFFDC, 21),  # 153
    (0x3FFFD8, 22),  # 154
    (0x7FFFE5, 23),  # 155
    (0x3FFFD9, 22),  # 156
    (0x7FFFE6, 23),  # 157
    (0x7FFFE7, 23),  # 158
    (0xFFFFEF, 24),  # 159
    (0x3FFFDA, 22),  # 160
    (0x1FFFDD, 21),  # 161
    (0xFFFE9, 20),  # 162
    (0x3FFFDB, 22),  # 163
    (0x3FFFDC, 22),  # 164
    (0x7FFFE8, 23),  # 165
    (0x7FFFE9, 23),  # 166
    (0x1FFFDE, 21),  # 167
    (0x7FFFEA, 23),  # 168
    (0x3FFFDD, 22),  # 169
    (0x3FFFDE, 22),  # 170
    (0xFFFFF0, 24),  # 171
    (0x1FFFDF, 21),  # 172
    (0x3FFFDF, 22),  # 173
    (0x7FFFEB, 23),  # 174
    (0x7FFFEC, 23),  # 175
    (0x1FFFE0, 21),  # 176
    (0x1FFFE1, 21),  # 177
    (0x3FFFE0, 22),  # 178
    (0x1FFFE2, 21),  # 179
    (0x7FFFED, 23),  # 180
    (0x3FFFE1, 22),  # 181
    (0x7FFFEE, 23),  # 182
    (0x7FFFEF, 23),  # 183
    (0xFFFEA, 20),  # 184
    (0x3FFFE2, 22),  # 185
    (0x3FFFE3, 22),  # 186
    (0x3FFFE4, 22),  # 187
    (0x7FFFF0, 23),  # 188
    (0x3FFFE5, 22),  # 189
    (0x3FFFE6, 22),  # 190
    (0x7FFFF1, 23),  # 191
    (0x3FFFFE0, 26),  # 192
    (0x3FFFFE1, 26),  # 193
    (0xFFFEB, 20),  # 194
    (0x7FFF1, 19),  # 195
    (0x3FFFE7, 22),  # 196
    (0x7FFFF2, 23),  # 197
    (0x3FFFE8, 22),  # 198
    (0x1FFFFEC, 25),  # 199
    (0x3FFFFE2, 26),  # 200
    (0x3FFFFE3, 26),  # 201
    (0x3FFFFE4, 26),  # 202
    (0x7FFFFDE, 27),  # 203
    (0x7FFFFDF, 27),  # 204
    (0x3FFFFE5, 26),  # 205
    (0xFFFFF1, 24),  # 206
    (0x1FFFFED, 25),  # 207
    (0x7FFF2, 19),  # 208
    (0x1FFFE3, 21),  # 209
    (0x3FFFFE6, 26),  # 210
    (0x7FFFFE0, 27),  # 211
    (0x7FFFFE1, 27),  # 212
    (0x3FFFFE7, 26),  # 213
    (0x7FFFFE2, 27),  # 214
    (0xFFFFF2, 24),  # 215
    (0x1FFFE4, 21),  # 216
    (0x1FFFE5, 21),  # 217
    (0x3FFFFE8, 26),  # 218
    (0x3FFFFE9, 26),  # 219
    (0xFFFFFFD, 28),  # 220
    (0x7FFFFE3, 27),  # 221
    (0x7FFFFE4, 27),  # 222
    (0x7FFFFE5, 27),  # 223
    (0xFFFEC, 20),  # 224
    (0xFFFFF3, 24),  # 225
    (0xFFFED, 20),  # 226
    (0x1FFFE6, 21),  # 227
    (0x3FFFE9, 22),  # 228
    (0x1FFFE7, 21),  # 229
    (0x1FFFE8, 21),  # 230
    (0x7FFFF3, 23),  # 231
    (0x3FFFEA, 22),  # 232
    (0x3FFFEB, 22),  # 233
    (0x1FFFFEE, 25),  # 234
    (0x1FFFFEF, 25),  # 235
    (0xFFFFF4, 24),  # 236
    (0xFFFFF5, 24),  # 237
    (0x3FFFFEA, 26),  # 238
    (0x7FFFF4, 23),  # 239
    (0x3FFFFEB, 26),  # 240
    (0x7FFFFE6, 27),  # 241
    (0x3FFFFEC, 26),  # 242
    (0x3FFFFED, 26),  # 243
    (0x7FFFFE7, 27),  # 244
    (0x7FFFFE8, 27),  # 245
    (0x7FFFFE9, 27),  # 246
    (0x7FFFFEA, 27),  # 247
    (0x7FFFFEB, 27),  # 248
    (0xFFFFFFE, 28),  # 249
    (0x7FFFFEC, 27),  # 250
    (0x7FFFFED, 27),  # 251
    (0x7FFFFEE, 27),  # 252
    (0x7FFFFEF, 27),  # 253
    (0x7FFFFF0, 27),  # 254
    (0x3FFFFEE, 26),  # 255
    (0x3FFFFFFF, 30),  # 256 EOS
)

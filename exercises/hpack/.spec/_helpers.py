"""Helpers for the hpack specs: the oracle library and the RFC 7541 Appendix C examples.

The learner's module is ``hpack_codec``; ``hpack`` is the python-hyper library, the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import hpack as oracle
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

OracleEncoder = oracle.Encoder
OracleDecoder = oracle.Decoder
OracleNeverIndexed = oracle.NeverIndexedHeaderTuple
oracle_huffman_encoder = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def h(text: str) -> bytes:
    """Bytes from the RFC's hex dump notation ("8286 8441 ..."), spaces ignored."""
    return bytes.fromhex(text.replace(" ", ""))


Field = tuple[bytes, bytes]


@dataclass(frozen=True)
class Example:
    """One header block of RFC 7541 Appendix C: the list, its encoding, the table after it."""

    section: str
    headers: list[Field]
    block: bytes
    table: list[Field]  # the dynamic table after this block, newest first
    size: int  # the dynamic table size after this block


@dataclass(frozen=True)
class Sequence:
    """Consecutive blocks on one connection (C.3 to C.6), with the table size and Huffman use."""

    name: str
    max_table_size: int
    huffman: bool
    examples: list[Example]


REQUEST_1 = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":path", b"/"),
    (b":authority", b"www.example.com"),
]
REQUEST_2 = [*REQUEST_1, (b"cache-control", b"no-cache")]
REQUEST_3 = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":path", b"/index.html"),
    (b":authority", b"www.example.com"),
    (b"custom-key", b"custom-value"),
]
TABLE_R1 = [(b":authority", b"www.example.com")]
TABLE_R2 = [(b"cache-control", b"no-cache"), *TABLE_R1]
TABLE_R3 = [(b"custom-key", b"custom-value"), *TABLE_R2]

DATE_1 = b"Mon, 21 Oct 2013 20:13:21 GMT"
DATE_2 = b"Mon, 21 Oct 2013 20:13:22 GMT"
LOCATION = b"https://www.example.com"
COOKIE = b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
RESPONSE_1 = [
    (b":status", b"302"),
    (b"cache-control", b"private"),
    (b"date", DATE_1),
    (b"location", LOCATION),
]
RESPONSE_2 = [(b":status", b"307"), *RESPONSE_1[1:]]
RESPONSE_3 = [
    (b":status", b"200"),
    (b"cache-control", b"private"),
    (b"date", DATE_2),
    (b"location", LOCATION),
    (b"content-encoding", b"gzip"),
    (b"set-cookie", COOKIE),
]
TABLE_S1 = [
    (b"location", LOCATION),
    (b"date", DATE_1),
    (b"cache-control", b"private"),
    (b":status", b"302"),
]
TABLE_S2 = [(b":status", b"307"), *TABLE_S1[:3]]
TABLE_S3 = [(b"set-cookie", COOKIE), (b"content-encoding", b"gzip"), (b"date", DATE_2)]

# RFC 7541 Appendix C.3 to C.6, hex dumps as printed in the RFC.
SEQUENCES = [
    Sequence(
        "C.3",
        4096,
        False,
        [
            Example(
                "C.3.1",
                REQUEST_1,
                h("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
                TABLE_R1,
                57,
            ),
            Example("C.3.2", REQUEST_2, h("8286 84be 5808 6e6f 2d63 6163 6865"), TABLE_R2, 110),
            Example(
                "C.3.3",
                REQUEST_3,
                h("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
                TABLE_R3,
                164,
            ),
        ],
    ),
    Sequence(
        "C.4",
        4096,
        True,
        [
            Example(
                "C.4.1", REQUEST_1, h("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), TABLE_R1, 57
            ),
            Example("C.4.2", REQUEST_2, h("8286 84be 5886 a8eb 1064 9cbf"), TABLE_R2, 110),
            Example(
                "C.4.3",
                REQUEST_3,
                h("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
                TABLE_R3,
                164,
            ),
        ],
    ),
    Sequence(
        "C.5",
        256,
        False,
        [
            Example(
                "C.5.1",
                RESPONSE_1,
                h(
                    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133"
                    "2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70"
                    "6c65 2e63 6f6d"
                ),
                TABLE_S1,
                222,
            ),
            Example("C.5.2", RESPONSE_2, h("4803 3330 37c1 c0bf"), TABLE_S2, 222),
            Example(
                "C.5.3",
                RESPONSE_3,
                h(
                    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d"
                    "54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049"
                    "5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e"
                    "3d31"
                ),
                TABLE_S3,
                215,
            ),
        ],
    ),
    Sequence(
        "C.6",
        256,
        True,
        [
            Example(
                "C.6.1",
                RESPONSE_1,
                h(
                    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6"
                    "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"
                ),
                TABLE_S1,
                222,
            ),
            Example("C.6.2", RESPONSE_2, h("4883 640e ffc1 c0bf"), TABLE_S2, 222),
            Example(
                "C.6.3",
                RESPONSE_3,
                h(
                    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab"
                    "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f"
                    "9587 3160 65c0 03ed 4ee5 b106 3d50 07"
                ),
                TABLE_S3,
                215,
            ),
        ],
    ),
]

# (sequence, position) for every block of C.3-C.6: a spec per block replays the ones before it.
STEPS = [
    (sequence, position) for sequence in SEQUENCES for position in range(len(sequence.examples))
]
STEP_IDS = [sequence.examples[position].section for sequence, position in STEPS]

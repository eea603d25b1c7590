"""A Redis-compatible server on asyncio speaking RESP2: strings, expiry and pub/sub.

Read README.md first: it explains RESP2, pipelining, expiry, pub/sub and every rule below.
Standard library only (no redis, fakeredis or hiredis).

The parts, from the wire inwards:

    RespParser        sans-IO: feed(bytes), next_command() -> [b"SET", b"k", b"v"] or None
    encode(value)     a reply value -> RESP2 bytes
    glob_match(p, s)  Redis's glob, for PSUBSCRIBE
    MiniRedis         the server: handle(reader, writer) serves one connection;
                      start() listens; expire_cycle() is one step of active expiry
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

MAX_BULK = 512 * 1024 * 1024  # proto-max-bulk-len, Redis's default
MAX_ARRAY = 1024 * 1024  # elements in one command
MAX_INLINE = 64 * 1024  # PROTO_INLINE_MAX_SIZE: one inline line, or a header line


class ProtocolError(Exception):
    """The client broke RESP; ``str(error)`` is the text to answer after ``-ERR ``,
    e.g. ``Protocol error: invalid bulk length``."""


class Simple(str):
    """A simple-string reply: ``encode(Simple("OK")) == b"+OK\\r\\n"``."""


class Error(str):
    """An error reply, its text starting with the error code:
    ``encode(Error("ERR syntax error")) == b"-ERR syntax error\\r\\n"``."""


class Encoded(bytes):
    """Replies already encoded (SUBSCRIBE a b answers with two arrays): ``encode`` sends them as they are."""


def encode(value: object) -> bytes:
    """One RESP2 reply.

    ``Encoded`` -> as is; ``Simple`` -> ``+text``; ``Error`` -> ``-text``; ``int`` -> ``:n``;
    ``bytes`` (or ``str``, as UTF-8) -> bulk ``$len\\r\\ndata``; ``None`` -> null bulk ``$-1``;
    ``list``/``tuple`` -> ``*n`` then each element encoded. Every line ends in ``\\r\\n``.
    """
    # TODO: check Encoded, Simple and Error before str: they are str (and bytes) subclasses.
    raise NotImplementedError


class RespParser:
    """Sans-IO RESP2 request parser: ``feed`` bytes as they arrive, take commands with ``next_command``."""

    def __init__(
        self, *, max_bulk: int = MAX_BULK, max_array: int = MAX_ARRAY, max_inline: int = MAX_INLINE
    ) -> None:
        """``max_bulk``: the longest bulk string accepted, in bytes; ``max_array``: the most
        elements in one command; ``max_inline``: the longest inline line (line ending excluded)."""
        raise NotImplementedError

    def feed(self, data: bytes) -> None:
        """Append bytes received from the client."""
        raise NotImplementedError

    def next_command(self) -> list[bytes] | None:
        """The next complete command as a list of arguments, or None until more bytes arrive.

        Raises ProtocolError (its text as Redis words it) when the bytes can't be a request.
        """
        # TODO: a command starting with '*' is an array: "*<count>\r\n", then <count> times
        #   "$<len>\r\n<len bytes>\r\n". Counts and lengths are strict integers (no '+', no
        #   spaces, no leading zeros). Anything but '$' where a bulk starts -> "Protocol error:
        #   expected '$', got '<c>'"; a bad count, or one over max_array -> "Protocol error:
        #   invalid multibulk length"; a bad length, negative, or over max_bulk -> "Protocol
        #   error: invalid bulk length" (refuse from the header, before the body arrives); a
        #   bulk not followed by \r\n -> a "Protocol error: ..." of your wording.
        # TODO: *0 and *-1 hold no command: skip them.
        # TODO: any other first byte starts an inline command: a line ending in \n (or \r\n),
        #   split on spaces and tabs; a blank line is skipped. A line longer than max_inline,
        #   or more than max_inline + 1 bytes with no \n yet -> "Protocol error: too big
        #   inline request".
        # TODO: an incomplete command returns None and keeps its bytes; return commands one
        #   at a time, and don't re-scan a long pipeline from its start for each one.
        raise NotImplementedError


def glob_match(pattern: bytes, name: bytes) -> bool:
    """Whether ``name`` matches ``pattern`` by Redis's glob rules (util.c ``stringmatchlen``).

    ``*`` any run of bytes (empty too), ``?`` one byte, ``[abc]`` one of, ``[^abc]`` none of,
    ``[a-z]`` a range (``[z-a]`` too), ``\\x`` the byte x itself (also inside brackets).
    """
    # TODO: fnmatch is not this: it spells negation [!a], not [^a], and has no backslash escape.
    raise NotImplementedError


class MiniRedis:
    """A RESP2 server: strings with expiry, and pub/sub with a per-subscriber output-buffer limit."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        pubsub_limit: int = 1024 * 1024,
        expire_interval: float | None = 0.1,
        expire_samples: int = 20,
        max_bulk: int = MAX_BULK,
        max_array: int = MAX_ARRAY,
        max_inline: int = MAX_INLINE,
    ) -> None:
        """Create a server; nothing listens until ``start``.

        ``clock``: seconds on a monotonic clock; every TTL is measured on it (the specs inject
        a fake one). ``pubsub_limit``: bytes a subscriber may leave unread before it is
        disconnected. ``expire_interval``: seconds between two ``expire_cycle()`` calls while
        started (None: never). ``expire_samples``: keys one ``expire_cycle()`` may visit.
        ``max_*``: the parser's limits, per connection.
        """
        # TODO: the keyspace (key -> value bytes), the deadlines of keys with a TTL, channel
        #   and pattern subscriptions both ways (name -> clients, client -> names).
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen with ``asyncio.start_server(self.handle, ...)``; start the periodic expiry;
        return the bound port (port 0 asks the kernel for a free one)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop listening, stop the periodic expiry, close every connection; return once each
        connection's ``handle`` has finished."""
        raise NotImplementedError

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until the client leaves, sends QUIT, breaks the protocol or is cut.

        Read what the socket has, run every complete command in it, write all their replies
        at once. On a ProtocolError answer ``-ERR <text>`` after the replies before it, and close.
        """
        # TODO: commands, names case-insensitive; arity errors as "ERR wrong number of
        #   arguments for '<name>' command"; unknown ones as "ERR unknown command '<NAME>',
        #   with args beginning with: '<a>' '<b>' " (README.md: cut at 128 bytes, CR LF -> spaces):
        #   PING [msg], ECHO msg, QUIT, HELLO [2] (anything else: "NOPROTO unsupported protocol
        #   version"), CLIENT SETINFO attr value (+OK), GET, SET key value [NX|XX] [GET]
        #   [EX s|PX ms|KEEPTTL], DEL, EXISTS, DBSIZE, INCR, INCRBY, EXPIRE key s, TTL, PERSIST,
        #   PUBLISH, SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE. README.md has each reply.
        # TODO: a key is expired when clock() > its deadline: every command treats it as
        #   missing (and deletes it: lazy expiry).
        # TODO: with a subscription, only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING and QUIT run;
        #   others answer the README's "Can't execute" error.
        # TODO: PUBLISH writes to each subscriber's writer without awaiting anything; a
        #   subscriber whose unread bytes (writer.transport.get_write_buffer_size(), plus any
        #   queue of your own) reach pubsub_limit is cut at once: writer.transport.abort().
        # TODO: when the connection ends, forget its subscriptions.
        raise NotImplementedError

    def expire_cycle(self) -> int:
        """One step of active expiry: visit the next ``expire_samples`` keys that have a TTL,
        continuing where the previous step stopped, and delete the expired ones; return how
        many it deleted. Keys without a TTL are never visited."""
        raise NotImplementedError

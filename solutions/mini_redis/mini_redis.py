"""A Redis-compatible server on asyncio speaking RESP2: strings, expiry and pub/sub.

Theory of operation: the protocol is a sans-IO core. ``RespParser`` takes bytes and hands out
commands (lists of bulk strings); ``encode`` turns a reply value into bytes. Neither knows
about sockets, so both are tested with plain bytes. ``MiniRedis.handle`` is the thin adapter:
it reads what the socket has, runs every complete command in it (a pipeline of 10,000
commands runs without a single await in between) and writes all the replies in one go.

Pub/sub is push: ``PUBLISH`` writes the message into every subscriber's transport and moves
on; it never waits for a subscriber. A subscriber that does not read lets bytes pile up in
its transport's buffer; past ``pubsub_limit`` bytes it is disconnected, as Redis does with
``client-output-buffer-limit pubsub``, so one slow reader can't make the server hoard memory.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "Encoded",
    "Error",
    "MiniRedis",
    "ProtocolError",
    "RespParser",
    "Simple",
    "encode",
    "glob_match",
]

MAX_BULK = 512 * 1024 * 1024  # proto-max-bulk-len, Redis's default
MAX_ARRAY = 1024 * 1024  # elements in one command
MAX_INLINE = 64 * 1024  # PROTO_INLINE_MAX_SIZE: one inline line, or a header line
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# string2ll: an optional minus, then digits without a leading zero (or a lone 0).
_INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]*)")


class ProtocolError(Exception):
    """The client broke RESP; ``str(error)`` is the error text to send, e.g. ``Protocol error: ...``."""


class Simple(str):
    """A simple-string reply: ``+OK\\r\\n``."""


class Error(str):
    """An error reply: ``-ERR ...\\r\\n`` (the text starts with the error code)."""


class Encoded(bytes):
    """Replies already encoded (a SUBSCRIBE answers with one array per channel): sent as is."""


def encode(value: object) -> bytes:
    """One RESP2 reply: Simple -> ``+``, Error -> ``-``, int -> ``:``, bytes/str -> bulk,
    None -> null bulk ``$-1``, list/tuple -> array of encoded elements."""
    if isinstance(value, Encoded):
        return value
    if isinstance(value, Simple):
        return b"+%s\r\n" % value.encode()
    if isinstance(value, Error):
        return b"-%s\r\n" % value.encode()
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, list | tuple):
        return b"*%d\r\n" % len(value) + b"".join(encode(item) for item in value)
    raise TypeError(f"no RESP2 encoding for {type(value).__name__}")


class RespParser:
    """Sans-IO RESP2 request parser: ``feed`` bytes, then take commands with ``next_command``."""

    def __init__(
        self, *, max_bulk: int = MAX_BULK, max_array: int = MAX_ARRAY, max_inline: int = MAX_INLINE
    ) -> None:
        self.max_bulk = max_bulk
        self.max_array = max_array
        self.max_inline = max_inline
        self._buffer = bytearray()
        self._pos = 0  # where the next unparsed command starts

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_command(self) -> list[bytes] | None:
        """The next complete command, or None until more bytes arrive.

        Empty commands (a blank inline line, ``*0``, ``*-1``) are skipped. Raises ProtocolError.
        """
        while self._pos < len(self._buffer):
            multibulk = self._buffer[self._pos] == ord("*")
            command = self._multibulk() if multibulk else self._inline()
            if command is None:
                break
            if command:
                return command
        # Drop what was consumed, so a long pipeline never rescans old bytes.
        del self._buffer[: self._pos]
        self._pos = 0
        return None

    def _line(self, start: int, too_big: str) -> tuple[bytes, int] | None:
        """The header line starting at ``start`` (up to CR LF) and where the next one starts."""
        end = self._buffer.find(b"\r\n", start)
        if end < 0:
            if len(self._buffer) - start > self.max_inline + 1:
                raise ProtocolError(f"Protocol error: {too_big}")
            return None
        if end - start > self.max_inline:
            raise ProtocolError(f"Protocol error: {too_big}")
        return bytes(self._buffer[start:end]), end + 2

    def _inline(self) -> list[bytes] | None:
        end = self._buffer.find(b"\n", self._pos)
        if end < 0:
            # Room for a line of max_inline bytes and its CR before the LF comes.
            if len(self._buffer) - self._pos > self.max_inline + 1:
                raise ProtocolError("Protocol error: too big inline request")
            return None
        line = bytes(self._buffer[self._pos : end]).removesuffix(b"\r")
        if len(line) > self.max_inline:
            raise ProtocolError("Protocol error: too big inline request")
        self._pos = end + 1
        return line.split()

    def _multibulk(self) -> list[bytes] | None:
        header = self._line(self._pos + 1, "too big mbulk count string")
        if header is None:
            return None
        text, pos = header
        if not _INTEGER.fullmatch(text) or int(text) > self.max_array:
            raise ProtocolError("Protocol error: invalid multibulk length")
        args: list[bytes] = []
        for _ in range(int(text)):
            if pos >= len(self._buffer):
                return None
            if self._buffer[pos] != ord("$"):
                got = chr(self._buffer[pos])
                raise ProtocolError(f"Protocol error: expected '$', got '{got}'")
            header = self._line(pos + 1, "too big bulk count string")
            if header is None:
                return None
            text, pos = header
            if not _INTEGER.fullmatch(text) or not 0 <= int(text) <= self.max_bulk:
                raise ProtocolError("Protocol error: invalid bulk length")
            end = pos + int(text)
            if len(self._buffer) < end + 2:
                return None
            if self._buffer[end : end + 2] != b"\r\n":
                raise ProtocolError("Protocol error: expected '\\r\\n' after bulk data")
            args.append(bytes(self._buffer[pos:end]))
            pos = end + 2
        self._pos = pos  # consumed only once the whole command is here
        return args


def glob_match(pattern: bytes, name: bytes) -> bool:
    """Redis's glob (util.c stringmatchlen): ``*``, ``?``, ``[abc]``, ``[^a]``, ``[a-z]``, ``\\x``."""
    p = n = 0
    star_p = star_n = -1  # where to resume after the last '*': backtrack point
    while n < len(name):
        if p < len(pattern) and pattern[p] == ord("*"):
            star_p, star_n = p, n
            p += 1
            continue
        if p < len(pattern):
            matched, width = _match_one(pattern, p, name[n])
            if matched:
                p += width
                n += 1
                continue
        if star_p < 0:
            return False
        star_n += 1  # let the last '*' swallow one more byte and retry
        p, n = star_p + 1, star_n
    return all(byte == ord("*") for byte in pattern[p:])


def _match_one(pattern: bytes, p: int, byte: int) -> tuple[bool, int]:
    """Does the pattern element at ``p`` match ``byte``; and how many pattern bytes it spans."""
    head = pattern[p]
    if head == ord("?"):
        return True, 1
    if head == ord("\\") and p + 1 < len(pattern):
        return pattern[p + 1] == byte, 2
    if head != ord("["):
        return head == byte, 1
    i = p + 1
    negate = i < len(pattern) and pattern[i] == ord("^")
    i += negate
    found = False
    while i < len(pattern) and pattern[i] != ord("]"):
        if pattern[i] == ord("\\") and i + 1 < len(pattern):
            found |= pattern[i + 1] == byte
            i += 2
        elif i + 2 < len(pattern) and pattern[i + 1] == ord("-"):
            low, high = sorted((pattern[i], pattern[i + 2]))
            found |= low <= byte <= high
            i += 3
        else:
            found |= pattern[i] == byte
            i += 1
    return found != negate, min(i + 1, len(pattern)) - p


def _unknown_command(command: list[bytes]) -> Encoded:
    """Redis's text (server.c, commandCheckExistence): the name and the first arguments,
    each quoted and followed by a space, cut at 128 bytes, CR and LF made spaces."""
    args = b""
    for arg in command[1:]:
        if len(args) >= 128:
            break
        args += b"'" + arg[: 128 - len(args)] + b"' "
    text = b"-ERR unknown command '%s', with args beginning with: %s" % (command[0][:128], args)
    return Encoded(text.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n")


OK = Simple("OK")
SYNTAX = Error("ERR syntax error")
NOT_INTEGER = Error("ERR value is not an integer or out of range")
OVERFLOW = Error("ERR increment or decrement would overflow")
# Allowed to a RESP2 connection with subscriptions (server.c, processCommand).
PUBSUB_ONLY = {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit"}


@dataclass(eq=False)
class _Client:
    writer: asyncio.StreamWriter
    channels: set[bytes] = field(default_factory=set)
    patterns: set[bytes] = field(default_factory=set)
    closing: bool = False  # QUIT, or cut for a full output buffer

    @property
    def subscriptions(self) -> int:
        return len(self.channels) + len(self.patterns)


def _integer(text: bytes) -> int | None:
    """A signed 64-bit integer in Redis's strict form, or None."""
    if not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


class MiniRedis:
    """A RESP2 server: GET/SET and friends with expiry, and pub/sub with an output-buffer limit."""

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
        self._clock = clock
        self.pubsub_limit = pubsub_limit
        self.expire_interval = expire_interval
        self.expire_samples = expire_samples
        self._limits = {"max_bulk": max_bulk, "max_array": max_array, "max_inline": max_inline}
        self._data: dict[bytes, bytes] = {}
        self._expires: dict[bytes, float] = {}  # key -> deadline on the clock, in seconds
        self._sweep: list[bytes] = []  # keys with a TTL the expiry cycle has still to visit
        self._channels: dict[bytes, set[_Client]] = {}
        self._patterns: dict[bytes, set[_Client]] = {}
        self._server: asyncio.Server | None = None
        self._expirer: asyncio.Task[None] | None = None
        self._clients: set[_Client] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._commands: dict[str, tuple[Callable[[_Client, list[bytes]], object], int]] = {
            # name: (method, arity): arity counts the name; -n means at least n.
            "ping": (self._ping, -1),
            "echo": (self._echo, 2),
            "quit": (self._quit, 1),
            "client": (self._client, -2),
            "hello": (self._hello, -1),
            "get": (self._get, 2),
            "set": (self._set, -3),
            "del": (self._del, -2),
            "exists": (self._exists, -2),
            "dbsize": (self._dbsize, 1),
            "incr": (self._incr, 2),
            "incrby": (self._incrby, 3),
            "expire": (self._expire, 3),
            "ttl": (self._ttl, 2),
            "persist": (self._persist, 2),
            "publish": (self._publish, 3),
            "subscribe": (self._subscribe, -2),
            "psubscribe": (self._psubscribe, -2),
            "unsubscribe": (self._unsubscribe, -1),
            "punsubscribe": (self._punsubscribe, -1),
        }

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        # Redis's tcp-backlog is 511; asyncio's default of 100 drops SYNs in a connection burst.
        self._server = await asyncio.start_server(self.handle, host, port, backlog=511)
        if self.expire_interval is not None:
            self._expirer = asyncio.create_task(self._expire_periodically(self.expire_interval))
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._expirer is not None:
            self._expirer.cancel()
            self._expirer = None
        if self._server is not None:
            self._server.close()
            self._server = None
        for client in list(self._clients):
            client.writer.close()  # each handler sees EOF and finishes
        if self._handlers:
            await asyncio.wait(self._handlers)

    async def _expire_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.expire_cycle()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until the client leaves, QUITs, breaks the protocol or is cut."""
        client = _Client(writer)
        self._clients.add(client)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        parser = RespParser(**self._limits)
        try:
            while not client.closing and (data := await reader.read(65536)):
                parser.feed(data)
                replies: list[bytes] = []
                try:
                    while not client.closing and (command := parser.next_command()) is not None:
                        replies.append(self._execute(client, command))
                except ProtocolError as error:
                    replies.append(encode(Error(f"ERR {error}")))
                    client.closing = True
                if writer.is_closing():
                    break  # cut while a reply was on its way: nothing more to say
                writer.write(b"".join(replies))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._forget(client)
            self._handlers.discard(task)
            writer.close()

    def _forget(self, client: _Client) -> None:
        self._clients.discard(client)
        for channel in client.channels:
            self._unlink(self._channels, channel, client)
        for pattern in client.patterns:
            self._unlink(self._patterns, pattern, client)
        client.channels.clear()
        client.patterns.clear()

    @staticmethod
    def _unlink(index: dict[bytes, set[_Client]], name: bytes, client: _Client) -> None:
        members = index.get(name)
        if members is not None:
            members.discard(client)
            if not members:
                del index[name]

    # --- dispatch ----------------------------------------------------------------------

    def _execute(self, client: _Client, command: list[bytes]) -> bytes:
        """Run one command for ``client``; return the encoded reply (or replies)."""
        name = command[0].decode("utf-8", "replace").lower()
        entry = self._commands.get(name)
        if entry is None:
            return _unknown_command(command)
        method, arity = entry
        if (arity > 0 and len(command) != arity) or len(command) < -arity:
            return encode(Error(f"ERR wrong number of arguments for '{name}' command"))
        if client.subscriptions and name not in PUBSUB_ONLY:
            return encode(
                Error(
                    f"ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                    "PING / QUIT / RESET are allowed in this context"
                )
            )
        return encode(method(client, command[1:]))

    # --- connection commands -----------------------------------------------------------

    def _ping(self, client: _Client, args: list[bytes]) -> object:
        if len(args) > 1:
            return Error("ERR wrong number of arguments for 'ping' command")
        if client.subscriptions:  # RESP2 subscribed mode answers PING with a push-like array
            return [b"pong", args[0] if args else b""]
        return args[0] if args else Simple("PONG")

    def _echo(self, client: _Client, args: list[bytes]) -> object:
        return args[0]

    def _quit(self, client: _Client, args: list[bytes]) -> object:
        client.closing = True
        return OK

    def _client(self, client: _Client, args: list[bytes]) -> object:
        # redis-py sends CLIENT SETINFO LIB-NAME / LIB-VER on connect; accept and ignore.
        if args[0].lower() == b"setinfo" and len(args) == 3:
            return OK
        sub = args[0].decode("utf-8", "replace")
        return Error(f"ERR unknown subcommand '{sub}'. Try CLIENT HELP.")

    def _hello(self, client: _Client, args: list[bytes]) -> object:
        # RESP2 only. redis-py 8 opens with HELLO 3 unless told protocol=2: refuse it plainly.
        if args and args[0] != b"2":
            return Error("NOPROTO unsupported protocol version")
        return [b"server", b"mini_redis", b"proto", 2]

    # --- the keyspace ------------------------------------------------------------------

    def _alive(self, key: bytes) -> bool:
        """Lazy expiry: a key past its deadline is deleted the moment anyone looks at it."""
        deadline = self._expires.get(key)
        if deadline is not None and self._clock() > deadline:
            self._delete(key)
        return key in self._data

    def _delete(self, key: bytes) -> bool:
        self._expires.pop(key, None)
        return self._data.pop(key, None) is not None

    def expire_cycle(self) -> int:
        """Active expiry, one step: visit the next ``expire_samples`` keys that have a TTL
        (round-robin, continuing where the last step stopped) and delete the expired ones.
        Returns how many keys it deleted."""
        now = self._clock()
        removed = 0
        refilled = False
        for _ in range(self.expire_samples):
            if not self._sweep:
                if refilled or not self._expires:
                    break
                self._sweep = list(self._expires)  # a new round over every key with a TTL
                refilled = True
            key = self._sweep.pop()
            deadline = self._expires.get(key)
            if deadline is not None and now > deadline:
                self._delete(key)
                removed += 1
        return removed

    def _get(self, client: _Client, args: list[bytes]) -> object:
        return self._data[args[0]] if self._alive(args[0]) else None

    def _set(self, client: _Client, args: list[bytes]) -> object:
        key, value, options = args[0], args[1], args[2:]
        condition = unit = ttl_ms = None
        keep_ttl = want_old = False
        i = 0
        while i < len(options):
            # The options combine as in t_string.c: NX or XX, EX or PX or KEEPTTL, and GET.
            option = options[i].upper()
            if option in (b"NX", b"XX") and condition in (None, option):
                condition = option
            elif option == b"GET":
                want_old = True
            elif option == b"KEEPTTL" and unit is None:
                keep_ttl = True
            elif option in (b"EX", b"PX") and unit in (None, option) and not keep_ttl:
                if i + 1 == len(options):
                    return SYNTAX
                amount = _integer(options[i + 1])
                if amount is None:
                    return NOT_INTEGER
                if amount <= 0 or (option == b"EX" and amount > INT64_MAX // 1000):
                    return Error("ERR invalid expire time in 'set' command")
                unit = option
                ttl_ms = amount * 1000 if option == b"EX" else amount
                i += 1
            else:
                return SYNTAX
            i += 1
        exists = self._alive(key)
        old = self._data.get(key)
        if (condition == b"NX" and exists) or (condition == b"XX" and not exists):
            return old if want_old else None
        self._data[key] = value
        if ttl_ms is not None:
            self._expires[key] = self._clock() + ttl_ms / 1000
        elif not keep_ttl:
            self._expires.pop(key, None)  # a plain SET forgets the old TTL
        return old if want_old else OK

    def _del(self, client: _Client, args: list[bytes]) -> object:
        return sum(self._alive(key) and self._delete(key) for key in args)

    def _exists(self, client: _Client, args: list[bytes]) -> object:
        return sum(self._alive(key) for key in args)  # a key named twice counts twice

    def _dbsize(self, client: _Client, args: list[bytes]) -> object:
        return len(self._data)  # expired keys not yet deleted still count, as in Redis

    def _incr(self, client: _Client, args: list[bytes]) -> object:
        return self._add(args[0], 1)

    def _incrby(self, client: _Client, args: list[bytes]) -> object:
        step = _integer(args[1])
        return NOT_INTEGER if step is None else self._add(args[0], step)

    def _add(self, key: bytes, step: int) -> object:
        current = _integer(self._data[key]) if self._alive(key) else 0
        if current is None:
            return NOT_INTEGER
        result = current + step
        if not INT64_MIN <= result <= INT64_MAX:
            return OVERFLOW
        self._data[key] = b"%d" % result  # the TTL, if any, stays
        return result

    def _expire(self, client: _Client, args: list[bytes]) -> object:
        seconds = _integer(args[1])
        if seconds is None:
            return NOT_INTEGER
        if not self._alive(args[0]):
            return 0
        if seconds <= 0:  # a deadline already past: the key goes now
            self._delete(args[0])
        else:
            self._expires[args[0]] = self._clock() + seconds
        return 1

    def _ttl(self, client: _Client, args: list[bytes]) -> object:
        if not self._alive(args[0]):
            return -2
        deadline = self._expires.get(args[0])
        if deadline is None:
            return -1
        remaining_ms = round((deadline - self._clock()) * 1000)
        return (remaining_ms + 500) // 1000  # rounded to the nearest second, as expire.c does

    def _persist(self, client: _Client, args: list[bytes]) -> object:
        if not self._alive(args[0]):
            return 0
        return int(self._expires.pop(args[0], None) is not None)

    # --- pub/sub -----------------------------------------------------------------------

    def _publish(self, client: _Client, args: list[bytes]) -> object:
        channel, message = args
        members = list(self._channels.get(channel, ()))
        if members:
            frame = encode([b"message", channel, message])
            for member in members:
                self._push(member, frame)
        receivers = len(members)  # a subscriber cut for this very message still counts
        for pattern, clients in list(self._patterns.items()):
            if glob_match(pattern, channel):
                frame = encode([b"pmessage", pattern, channel, message])
                for member in list(clients):
                    self._push(member, frame)
                    receivers += 1
        return receivers

    def _push(self, client: _Client, frame: bytes) -> None:
        """Queue a message for a subscriber without waiting; cut it if its buffer is full."""
        if client.closing:
            return
        client.writer.write(frame)
        if client.writer.transport.get_write_buffer_size() >= self.pubsub_limit:
            # client-output-buffer-limit pubsub: drop the connection and what it had pending.
            client.closing = True
            self._forget(client)
            client.writer.transport.abort()

    def _subscribe(self, client: _Client, args: list[bytes]) -> bytes:
        return self._join(client, args, client.channels, self._channels, b"subscribe")

    def _psubscribe(self, client: _Client, args: list[bytes]) -> bytes:
        return self._join(client, args, client.patterns, self._patterns, b"psubscribe")

    def _join(
        self,
        client: _Client,
        names: list[bytes],
        mine: set[bytes],
        index: dict[bytes, set[_Client]],
        kind: bytes,
    ) -> bytes:
        replies = []
        for name in names:
            mine.add(name)
            index.setdefault(name, set()).add(client)
            replies.append(encode([kind, name, client.subscriptions]))
        return Encoded(b"".join(replies))

    def _unsubscribe(self, client: _Client, args: list[bytes]) -> bytes:
        return self._leave(client, args, client.channels, self._channels, b"unsubscribe")

    def _punsubscribe(self, client: _Client, args: list[bytes]) -> bytes:
        return self._leave(client, args, client.patterns, self._patterns, b"punsubscribe")

    def _leave(
        self,
        client: _Client,
        names: list[bytes],
        mine: set[bytes],
        index: dict[bytes, set[_Client]],
        kind: bytes,
    ) -> bytes:
        if not names:  # no names: leave every one; with none, still one reply with a nil name
            names = sorted(mine)
            if not names:
                return Encoded(encode([kind, None, client.subscriptions]))
        replies = []
        for name in names:
            mine.discard(name)
            self._unlink(index, name, client)
            replies.append(encode([kind, name, client.subscriptions]))
        return Encoded(b"".join(replies))

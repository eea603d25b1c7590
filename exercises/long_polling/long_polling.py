"""Long polling over HTTP/1.1, served from plain asyncio streams.

Read README.md first: it explains long polling, the wire format and every rule below.
Standard library only; in particular you write the HTTP/1.1 parsing and the responses
yourself on top of ``asyncio.start_server`` (no http.server, no aiohttp).

The HTTP API:

    POST /messages            body = the message (UTF-8)     -> 201 {"id": n}
    GET  /messages?after=N[&limit=L][&timeout=S]
        messages with id > N exist                          -> 200 {"messages": [...], "cursor": c}
        none before the timeout                             -> 204 No Content (no body)

Every response carries ``Connection: close``; the server closes the connection after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

MAX_HEAD = 16 * 1024  # bytes of the request head, its empty line included; more gets 431


class LongPollServer:
    """A log of messages served over HTTP/1.1, with long polling for new ones."""

    def __init__(
        self,
        *,
        poll_timeout: float = 30.0,
        max_batch: int = 100,
        max_body: int = 64 * 1024,
        request_timeout: float = 10.0,
        on_waiting: Callable[[int], None] | None = None,
    ) -> None:
        """Create a server; nothing listens until ``start``.

        ``poll_timeout``: seconds a poll may wait; the default and the cap of ``?timeout=``.
        ``max_batch``: the most messages one answer holds; the default and cap of ``?limit=``.
        ``max_body``: the largest POST body accepted, in bytes (larger: 413).
        ``request_timeout``: seconds from the connection opening to the whole request (head
        and body) received; later: 408 (or just the close). A parked poll is past this point:
        it waits up to its own timeout.
        ``on_waiting``: if given, called with the new count of parked polls every time a poll
        parks or stops waiting (a metrics gauge; the specs use it to know when a poll waits).
        """
        # TODO: keep the log (ids 1, 2, 3, ...), the set of parked polls, the listening server.
        raise NotImplementedError

    @property
    def waiting(self) -> int:
        """How many polls are parked (waiting for a message) right now."""
        raise NotImplementedError

    def publish(self, body: str) -> int:
        """Append ``body`` to the log, wake every parked poll, and return the new id.

        Ids start at 1 and go up by one; ``POST /messages`` uses the same sequence.
        """
        # TODO: wake *every* parked poll, not just one; each re-checks the log itself.
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` with ``asyncio.start_server``; return the bound port.

        Port 0 asks the kernel for any free port.
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Stop listening and end every open connection, parked polls included.

        Returns once every connection is closed. Calling it twice is harmless.
        """
        raise NotImplementedError

    # TODO: one request per connection. Read the head (request line + header fields, ending
    #   in an empty line, at most MAX_HEAD bytes -> else 431), then the body if any:
    #   - request line "METHOD SP /target SP HTTP/1.0|HTTP/1.1", method a token -> else 400
    #   - the whole request (head and body) within request_timeout of the connection opening
    #     -> else 408 and close: one deadline for the request, not one per read (slowloris)
    #   - header fields "name: value", name a token (no space before the colon, no folded
    #     lines) -> else 400; an HTTP/1.1 request without Host -> 400; any request with two
    #     Host fields -> 400 (RFC 9112 §3.2)
    #   - Transfer-Encoding -> 501; POST without Content-Length -> 411; Content-Length not
    #     ASCII digits, or repeated with different values -> 400; over max_body -> 413
    #     (answer before reading the body). Trim only SP and HTAB: str.strip() also eats
    #     "\x85" and "\xa0", so "2\xa0" would pass as 2.
    #   - HTTP/1.1 with "Expect: 100-continue" and a body to come: answer at once, before
    #     reading the body: the final status if the head decides it (404, 405, 413...), else
    #     "HTTP/1.1 100 Continue\r\n\r\n". HTTP/1.0: ignore Expect (RFC 9110 §10.1.1).
    #   - path other than /messages -> 404; method other than GET/POST -> 405 + Allow header;
    #     the answer to a HEAD request has its fields and no body (RFC 9110 §9.3.2)
    #   - POST body not UTF-8 -> 400
    #   - an answer sent before the body was read (400, 411, 413, 431, 501 ..., not 408): write
    #     it, write_eof(), read and drop what the client still sends (5 s without a byte,
    #     30 s in all), then close (RFC 9112 §9.6); a plain close resets a client still sending.
    # TODO: GET query: after (default 0), limit (default max_batch) are ASCII digits, limit >= 1,
    #   timeout is seconds: ASCII digits with an optional fraction ("25", "0.5"; never a bare
    #   float(), which takes " 5", "1_0", "1e1", "inf"); anything else -> 400. limit is capped
    #   by max_batch, timeout by poll_timeout.
    # TODO: messages with id > after exist -> 200 at once with up to `limit` of them, oldest
    #   first; "cursor" = id of the LAST message in this answer.
    # TODO: none -> park: wait for a publish, the timeout, or the client closing its socket,
    #   whichever comes first, without a thread and without polling in a loop. After a wake-up
    #   check again (the cursor may still be ahead of the log). Timeout -> 204, no body.
    #   Client gone -> stop waiting at once and write nothing.
    # TODO: every response: "HTTP/1.1 <code> <reason>", Connection: close; a JSON body with
    #   Content-Type: application/json and Content-Length (errors: {"error": "..."}); a 204
    #   has neither body nor Content-Length.

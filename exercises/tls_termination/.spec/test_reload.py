"""Certificate reload: new handshakes get the new certificates, open connections keep theirs."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from _helpers import connect, get_request, leaves, pki, read_all, stack, standard_config, status_of
from tls_termination import Certificate

from grader.spectools import LOCALHOST, bounded, called, step


@pytest.mark.points(3)
async def test_reload_keeps_open_connections() -> None:
    """After reload(), new handshakes get the new certificate while a connection opened before keeps
    its certificate and still gets its request answered."""
    fresh = pki().issue("a.test")
    config = standard_config()
    async with stack(config) as (backend, proxy, port):
        with step("a TLS handshake for a.test before the reload"):
            before = await connect(port, "a.test")
        with step("proxy.reload(config with a new a.test certificate)"):
            proxy.reload(replace(config, names={**config.names, "a.test": fresh.cert}))
        with step("a TLS handshake for a.test after the reload"):
            after = await connect(port, "a.test")
        serials = (before.serial, after.serial)
        with step("GET / on the connection opened before the reload"):
            old_answer = await before.request(get_request(), "GET / on the old connection")
            new_answer = await after.request(get_request(), "GET / on the new connection")
    want = (leaves()["a.test"].serial, fresh.serial)
    assert serials == want, called(
        "serials served to a.test before and after reload()",
        serials,
        "the old certificate's, then the new one's",
    )
    got = (status_of(old_answer), status_of(new_answer))
    assert got == (200, 200), called(
        "GET / on the connection opened before reload() and on a new one (statuses)",
        got,
        (200, 200),
    )


async def test_reload_reaches_clients_without_sni() -> None:
    """reload() replaces the default certificate too: a client without SNI gets the new one."""
    fresh = pki().issue("default.test")
    config = standard_config()
    async with stack(config) as (_, proxy, port):
        with step("proxy.reload(config with a new default certificate)"):
            proxy.reload(replace(config, default=fresh.cert))
        with step("a TLS handshake without SNI after the reload"):
            tls = await connect(port, None)
        got = tls.serial
        tls.close()
    assert got == fresh.serial, called(
        "a handshake without SNI after reload(new default) (serial)",
        got,
        "the new default certificate's serial",
    )


async def test_failed_reload_keeps_the_old_certificates() -> None:
    """A reload() whose certificates don't load raises and changes nothing: the old certificates,
    all of them, are still served."""
    fresh = pki().issue("b.test")
    broken = Certificate(
        fresh.cert.cert_file, leaves()["a.test"].cert.key_file
    )  # the key of another certificate
    config = standard_config()
    async with stack(config) as (_, proxy, port):
        try:
            proxy.reload(
                replace(
                    config,
                    names={
                        "b.test": fresh.cert,
                        "a.test": broken,
                        "*.w.test": config.names["*.w.test"],
                    },
                )
            )
        except Exception as err:  # noqa: BLE001 - any exception will do; NotImplementedError re-raised below
            if isinstance(err, NotImplementedError):
                raise
            raised = type(err).__name__
        else:
            raised = None
        with step("a TLS handshake for b.test after the failed reload"):
            tls = await connect(port, "b.test")
        got = (raised is not None, tls.serial == leaves()["b.test"].serial)
        tls.close()
    assert got == (True, True), called(
        "reload() with a.test's key not matching its certificate (raised, b.test still the old certificate)",
        (raised, got[1]),
        "an exception, and the old b.test certificate",
    )


async def test_close_ends_connections_and_listening() -> None:
    """close() stops listening and closes connections that are open."""
    async with stack() as (_, proxy, port):
        with step("a TLS handshake"):
            tls = await connect(port, "a.test")
        with step("await proxy.close()"):
            await bounded(proxy.close(), 10, "proxy.close()")
        with step("reading from a connection after proxy.close()"):
            data = await bounded(read_all(tls.reader), 10, "the connection to end after close()")
        tls.close()
        try:
            _, writer = await asyncio.open_connection(LOCALHOST, port)
        except OSError:
            listening = False
        else:
            listening = True
            writer.close()
    assert (data, listening) == (b"", False), called(
        "proxy.close() (read on an open connection, still listening)",
        (data, listening),
        (b"", False),
    )

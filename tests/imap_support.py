"""Test support for reading bounces over IMAP: a real IMAP server on loopback (pymap's
in-memory backend, in a thread of its own) that speaks implicit TLS, as a provider's port 993
does, and a client that fills its mailbox and looks at its flags."""

from __future__ import annotations

import asyncio
import imaplib
import ssl
import threading
from argparse import Namespace
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import DictBackend
from pymap.concurrent import Subsystem
from pymap.imap import IMAPServer
from pysasl.hashing import Cleartext

IMAP_USER = "bounces@example.org"
IMAP_PASSWORD = "tr0ub4dor&3-imap"


@dataclass(frozen=True)
class Mailbox:
    """The running server: its port, and a client of its own to fill and inspect it."""

    port: int
    cafile: Path

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4_SSL]:
        """A logged-in client (trusting the test certificate)."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        try:
            imap.login(IMAP_USER, IMAP_PASSWORD)
            yield imap
        finally:
            with suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def append(self, raw: bytes, folder: str = "INBOX", flags: str | None = None) -> None:
        """Deliver one message into the folder (APPEND), with flags such as r"(\\Seen)"."""
        with self.client() as imap:
            typ, data = imap.append(folder, flags, None, raw.replace(b"\n", b"\r\n"))
            assert typ == "OK", data

    def unseen(self, folder: str = "INBOX") -> int:
        """How many messages of the folder are not \\Seen."""
        with self.client() as imap:
            typ, data = imap.select(folder, readonly=True)
            assert typ == "OK", data
            typ, data = imap.uid("SEARCH", "UNSEEN")
            assert typ == "OK", data
            return len((data[0] or b"").split())


@contextmanager
def imap_server(cert: Path, key: Path) -> Iterator[Mailbox]:
    """An IMAP server on 127.0.0.1 (a free port), implicit TLS with the test certificate,
    one user (IMAP_USER, IMAP_PASSWORD) whose INBOX starts empty."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    ready = threading.Event()
    started: dict[str, object] = {}
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        # The arguments pymap's command line would give its in-memory backend: TLS is the
        # listening socket's (so no STARTTLS, and LOGIN is allowed, as on port 993).
        args = Namespace(host=None, port=0, debug=False, cert=None, key=None, tls=False,
                         passlib_cfg=None, proxy_protocol=None, demo_data=False,
                         demo_user=IMAP_USER, demo_password=IMAP_PASSWORD)
        # a test password needs no costly hash (pymap's default takes 0.2 s a login)
        backend, config = await DictBackend.init(args, hash_context=Cleartext(),
                                                 cpu_subsystem=Subsystem.for_asyncio())
        config.apply_context()
        handler = ProxyProtocolReader(config.proxy_protocol).get_callback(
            IMAPServer(backend.login, config))
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
        started["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await stop.wait()
        # connections a client left open (a refused login) end with the server
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # handed to the test, which would otherwise just wait
            started["error"] = exc
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="imap-server", daemon=True)
    thread.start()
    if not ready.wait(10) or "error" in started:
        raise RuntimeError(f"the IMAP server did not start: {started.get('error')!r}")
    port = started["port"]
    assert isinstance(port, int)
    try:
        yield Mailbox(port, cert)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)

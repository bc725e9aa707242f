"""Bench: `digest send` to a loopback SMTP sink (STARTTLS + AUTH) against a bare smtplib loop
sending one pre-built message over the same number of connections, measured in the same run:
on a plain sink, and on a sink that answers each message after 20 ms, as a real relay does
(there the connections count: digest at `delivery.connections` = 4 against itself at one);
and the peak memory of a send at 1,000 and 10,000 subscribers (flat in the count)."""

from __future__ import annotations

import gc
import logging
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline import services, store
from pipeline.deliver.mail import MessageBuilder, unsubscribe_mailto
from tests.deliver_support import (
    DAY,
    PASSWORD,
    SECRET,
    USER,
    Sink,
    add_subscribers,
    build_issue,
    make_cert,
    newsletter,
    quiet_runtime,
    smtp_server,
)

COUNT = int(os.environ.get("BENCH_SEND_COUNT", "10000"))
RELAY_DELAY = 0.020  # seconds a relay takes to answer one message
CONNECTIONS = 4
ONE_CONNECTION_COUNT = max(COUNT // 10, 100)  # one connection at 20 ms: 1,000 take 20 s
PLAIN_COUNT = max(COUNT // 5, 100)  # the plain sink's ratio settles long before 10,000


@contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _bare_connection(port: int, cert: Path) -> smtplib.SMTP:
    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
    # TCP_NODELAY as digest's transport sets it: without it every DATA reply waits ~40 ms
    # for a delayed ACK, and the baseline would be a strawman.
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.starttls(context=ssl.create_default_context(cafile=str(cert)))
    conn.login(USER, PASSWORD)
    return conn


def bare_loop(port: int, cert: Path, data: bytes, count: int, connections: int = 1) -> float:
    """Messages per second of the simplest client: `connections` threads, each one connection
    sending its share of one pre-built message, no state."""
    conns = [_bare_connection(port, cert) for _ in range(connections)]

    def send(conn: smtplib.SMTP, first: int) -> None:
        for i in range(first, count, connections):
            conn.sendmail("digest@example.org", [f"reader{i:05d}@example.org"], data)

    threads = [threading.Thread(target=send, args=(c, n)) for n, c in enumerate(conns)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for c in conns:
        c.quit()
    return count / elapsed


def digest_send(root: Path, port: int, count: int, trace: bool = False,
                connections: int = CONNECTIONS) -> tuple[float, int]:
    """Messages per second of `services.send` to `count` subscribers, and its traced peak bytes."""
    settings = newsletter(root, port=port, rate=0, connections=connections)
    build_issue(settings)
    add_subscribers(settings, count)
    if trace:
        gc.collect()
        tracemalloc.start()
    start = time.perf_counter()
    services.send(settings, DAY, quiet_runtime())
    elapsed = time.perf_counter() - start
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return count / elapsed, peak


@contextmanager
def sink_process(cert: Path, key: Path, delay: float = 0.0) -> Iterator[int]:
    """The SMTP sink in its own process, so neither the GIL nor tracemalloc is shared with
    the sender; yields its port. Closing its stdin stops it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench_send", "--sink", str(cert), str(key), str(delay)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.stdin.close()
        proc.wait(30)


def serve_sink(cert: Path, key: Path, delay: float) -> None:
    """Run the counting sink until stdin closes (the child side of sink_process); each
    connection is its own asyncio task, so `delay` overlaps across connections."""
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own deprecation notes
    with smtp_server(cert, key, Sink(keep=False, delay=delay)) as (_sink, port):
        print(port, flush=True)
        sys.stdin.read()


def main() -> None:
    """Print the throughput ratio and the peak memory figures."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cert, key = make_cert(root)
        with _env(DIGEST_SECRET=SECRET, DIGEST_SMTP_PASSWORD=PASSWORD, SSL_CERT_FILE=str(cert)), \
                sink_process(cert, key) as port:
            settings = newsletter(root / "sample", port=port)
            variants = build_issue(settings)
            one = MessageBuilder(settings, DAY, variants).build(
                "all", "reader00000@example.org", "https://digest.example.org/unsubscribe/1.x",
                unsubscribe_mailto(settings, "1.x"), quiet_runtime().now(),
            )
            # the baseline runs before and after, and its better run counts (the machine is
            # shared: this keeps a slow moment from flattering digest's ratio)
            before = bare_loop(port, cert, one.data, PLAIN_COUNT)
            ours, _ = digest_send(root / "send", port, PLAIN_COUNT, connections=1)
            after = bare_loop(port, cert, one.data, PLAIN_COUNT)
            baseline = max(before, after)
            print(f"message size: {len(one.data) / 1024:.1f} KiB; "
                  "loopback aiosmtpd with STARTTLS + AUTH in its own process")
            print(f"plain sink (answers at once; the CPU is the limit), {PLAIN_COUNT:,} subscribers:")
            print(f"bare smtplib loop, one connection (one pre-built message): "
                  f"{before:,.0f} / {after:,.0f} msg/s")
            print(f"digest send, one connection (ledger, per-recipient build): {ours:,.0f} msg/s")
            print(f"ratio to the better baseline: {ours / baseline:.2f} (aim >= 0.80)")
            peaks = {}
            for count in (1_000, 10_000):
                _, peaks[count] = digest_send(root / f"mem{count}", port, count, trace=True)
                print(f"peak traced memory of a send to {count:>6,} subscribers: "
                      f"{peaks[count] / 1024:,.0f} KiB")
            print(f"memory 10,000 vs 1,000: x{peaks[10_000] / peaks[1_000]:.2f} (flat = 1.0)")
        with _env(DIGEST_SECRET=SECRET, DIGEST_SMTP_PASSWORD=PASSWORD, SSL_CERT_FILE=str(cert)), \
                sink_process(cert, key, RELAY_DELAY) as port:
            relay(root, port, cert, one.data)


def ledger_rate(root: Path, count: int, threads: int = CONNECTIONS) -> float:
    """Readers per second the SQLite ledger alone records (claim, then finish as sent), with
    `threads` writers each on its own connection, as the sending connections do: the
    ceiling of a send however fast the relay."""
    settings = newsletter(root, port=25)
    build_issue(settings)
    ids = [s.id for s in add_subscribers(settings, count)]

    def work(share: list[int | None]) -> None:
        conn = store.connect(settings.db_path)
        for sid in share:
            assert sid is not None
            store.claim_delivery(conn, DAY, sid, f"<{sid}@example.org>")
            store.finish_delivery(conn, DAY, sid, "sent", None)
        conn.close()

    workers = [threading.Thread(target=work, args=(ids[n::threads],)) for n in range(threads)]
    start = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return count / (time.perf_counter() - start)


def relay(root: Path, port: int, cert: Path, data: bytes) -> None:
    """The relay figures: digest over CONNECTIONS connections against a bare loop over as
    many, and against digest over one connection."""
    n = CONNECTIONS
    bare = bare_loop(port, cert, data, COUNT, n)
    ours, _ = digest_send(root / "relay", port, COUNT, connections=n)
    single, _ = digest_send(root / "relay1", port, ONE_CONNECTION_COUNT, connections=1)
    print(f"relay sink answering after {RELAY_DELAY * 1000:.0f} ms, {COUNT:,} subscribers:")
    print(f"bare smtplib loop over {n} connections:     {bare:,.0f} msg/s")
    print(f"digest send, delivery.connections = {n}:     {ours:,.0f} msg/s "
          f"({COUNT / ours:.0f} s; {ours * 86400 / 1e6:.1f} million readers a day)")
    print(f"digest send, one connection ({ONE_CONNECTION_COUNT:,} subscribers): {single:,.0f} msg/s")
    print(f"ratio to the bare loop over {n} connections: {ours / bare:.2f} (aim >= 0.80)")
    print(f"speed-up of {n} connections over one: x{ours / single:.2f} (aim >= 3.5)")
    ledger = ledger_rate(root / "ledger", COUNT)
    print(f"the SQLite ledger alone ({n} writer threads, claim + finish per reader): "
          f"{ledger:,.0f} readers/s ({ledger * 86400 / 1e6:.0f} million a day)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sink"]:
        serve_sink(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]))
    else:
        main()

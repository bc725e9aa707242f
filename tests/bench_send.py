"""Bench: `digest send` to a loopback SMTP sink (STARTTLS + AUTH) against a bare smtplib loop
sending one pre-built message over one connection, measured in the same run; and the peak
memory of a send at 1,000 and 10,000 subscribers (it must not grow with the count)."""

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
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline import run
from pipeline.mail import MessageBuilder, unsubscribe_mailto
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


def bare_loop(port: int, cert: Path, data: bytes, count: int) -> float:
    """Messages per second of the simplest client: one connection, one message, no state."""
    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
    # TCP_NODELAY as digest's transport sets it: without it every DATA reply waits ~40 ms
    # for a delayed ACK, and the baseline would be a strawman.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.starttls(context=ssl.create_default_context(cafile=str(cert)))
    conn.login(USER, PASSWORD)
    start = time.perf_counter()
    for i in range(count):
        conn.sendmail("digest@example.org", [f"reader{i:05d}@example.org"], data)
    elapsed = time.perf_counter() - start
    conn.quit()
    return count / elapsed


def digest_send(root: Path, port: int, count: int, trace: bool = False) -> tuple[float, int]:
    """Messages per second of `run.send` to `count` subscribers, and its traced peak bytes."""
    settings = newsletter(root, port=port, rate=1_000_000)
    build_issue(settings)
    add_subscribers(settings, count)
    if trace:
        gc.collect()
        tracemalloc.start()
    start = time.perf_counter()
    run.send(settings, DAY, quiet_runtime())
    elapsed = time.perf_counter() - start
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return count / elapsed, peak


@contextmanager
def sink_process(cert: Path, key: Path) -> Iterator[int]:
    """The SMTP sink in its own process, so neither the GIL nor tracemalloc is shared with
    the sender; yields its port. Closing its stdin stops it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench_send", "--sink", str(cert), str(key)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.stdin.close()
        proc.wait(30)


def serve_sink(cert: Path, key: Path) -> None:
    """Run the counting sink until stdin closes (the child side of sink_process)."""
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own deprecation notes
    with smtp_server(cert, key, Sink(keep=False)) as (_sink, port):
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
            before = bare_loop(port, cert, one.data, COUNT)
            ours, _ = digest_send(root / "send", port, COUNT)
            after = bare_loop(port, cert, one.data, COUNT)
            baseline = max(before, after)
            print(f"message size: {len(one.data) / 1024:.1f} KiB; {COUNT:,} subscribers; "
                  "loopback aiosmtpd with STARTTLS + AUTH in its own process")
            print(f"bare smtplib loop (one pre-built message): {before:,.0f} / {after:,.0f} msg/s")
            print(f"digest send (ledger, per-recipient build):  {ours:,.0f} msg/s")
            print(f"ratio to the better baseline: {ours / baseline:.2f} (aim >= 0.80)")
            peaks = {}
            for count in (1_000, 10_000):
                _, peaks[count] = digest_send(root / f"mem{count}", port, count, trace=True)
                print(f"peak traced memory of a send to {count:>6,} subscribers: "
                      f"{peaks[count] / 1024:,.0f} KiB")
            print(f"memory 10,000 vs 1,000: x{peaks[10_000] / peaks[1_000]:.2f} (flat = 1.0)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sink"]:
        serve_sink(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()

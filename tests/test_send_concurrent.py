"""`digest send` over several SMTP connections to a real server on loopback: one queue, one
ledger, one rate for them all, and a deferring connection that holds nobody else back.

The clock is injected, as everywhere: here a virtual clock that runs `scale` times faster
than real time, so that the connections' threads really wait side by side (a clock whose
sleep returns at once would serialise them and prove nothing about concurrency)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline import services, store
from pipeline.core.errors import ConfigError
from pipeline.interfaces import present
from tests.deliver_support import (
    DAY,
    Sink,
    add_subscribers,
    build_issue,
    newsletter,
    quiet_runtime,
)


class FastClock:
    """Virtual seconds that pass `scale` times faster than real ones."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.origin = time.monotonic()
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        return (time.monotonic() - self.origin) * self.scale

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
        time.sleep(seconds / self.scale)


pytestmark = pytest.mark.usefixtures("env")  # tests/conftest.py


@pytest.mark.slow
def test_rate_limit_is_global_across_connections(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port, rate=2, connections=4)
    build_issue(settings)
    subs = add_subscribers(settings, 40)
    clock = FastClock(scale=20)  # 2 virtual messages/s = 40 real ones: the cap binds
    lines: list[str] = []
    rt = quiet_runtime(echo=lines.append, sleep=clock.sleep, monotonic=clock.monotonic)

    start = clock.monotonic()
    lines += present.lines(services.send(settings, DAY, rt))
    took = clock.monotonic() - start

    assert {r: len(m) for r, m in sink.by_recipient().items()} == {s.email: 1 for s in subs}
    assert len(sink.per_session) == 4 and all(sink.per_session.values())  # all four sent
    # 40 messages at 2 per second take 19.5 s however many connections share them; four
    # connections each pacing itself would take a quarter of that.
    assert took >= 39 / 2
    assert lines[-1] == f"issue {DAY}: sent 40, failed 0, skipped 0"


@pytest.mark.slow
def test_a_deferring_connection_does_not_stall_the_others(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port, rate=0, connections=4, retries=5)
    build_issue(settings)
    subs = add_subscribers(settings, 40)
    slow = subs[2].email
    # The server throttles one reader (451) until it has taken everyone else's message: the
    # send only completes if the other connections keep going while that one backs off.
    sink.defer_until[slow] = 39
    clock = FastClock(scale=10)  # backoff 2, 4, 8, 16, 32 virtual s = 6.2 real s at most
    lines: list[str] = []
    rt = quiet_runtime(echo=lines.append, sleep=clock.sleep, monotonic=clock.monotonic)

    lines += present.lines(services.send(settings, DAY, rt))

    assert {r: len(m) for r, m in sink.by_recipient().items()} == {s.email: 1 for s in subs}
    assert sink.messages[-1].recipients == [slow]
    assert 2.0 in clock.sleeps  # it did back off
    assert lines[-1] == f"issue {DAY}: sent 40, failed 0, skipped 0"
    conn = services.open_store(settings)
    assert store.delivery_counts(conn, DAY) == {"sent": 40}
    assert store.get_issue(conn, DAY).state == "sent"
    conn.close()


def test_one_connection_serves_a_deferred_reader_only_after_its_backoff(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    # The same throttling over one connection: nobody else can go first, so after every
    # retry the reader is deferred to the next run (what the test above must not see).
    sink, port = server
    settings = newsletter(tmp_path, port=port, rate=0, connections=1, retries=2)
    build_issue(settings)
    subs = add_subscribers(settings, 6)
    sink.defer_until[subs[0].email] = 5
    clock = FastClock(scale=100)
    rt = quiet_runtime(sleep=clock.sleep, monotonic=clock.monotonic)
    with pytest.raises(Exception, match="1 messages of the issue of 2024-12-05 were deferred"):
        services.send(settings, DAY, rt)
    assert sorted(sink.by_recipient()) == sorted(s.email for s in subs[1:])
    services.send(settings, DAY, rt)  # the next run retries just that one
    assert {r: len(m) for r, m in sink.by_recipient().items()} == {s.email: 1 for s in subs}


@pytest.mark.slow
def test_5xx_on_any_connection_is_recorded_failed_and_counted(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port, rate=0, connections=4)
    build_issue(settings)
    subs = add_subscribers(settings, 30)
    rejected = {subs[i].email for i in (1, 8, 15, 22, 29)}
    for addr in rejected:
        sink.reject[addr] = "550 5.1.1 No such user here"
    lines: list[str] = []
    lines += present.lines(services.send(settings, DAY, quiet_runtime(echo=lines.append)))
    assert set(sink.by_recipient()) == {s.email for s in subs} - rejected
    assert lines[-1] == f"issue {DAY}: sent 25, failed 5, skipped 0"
    assert sorted(ln for ln in lines if ln.startswith("failed: ")) == sorted(
        f"failed: {a}: refused by the server: 550 5.1.1 No such user here" for a in rejected
    )
    conn = services.open_store(settings)
    assert store.delivery_counts(conn, DAY) == {"sent": 25, "failed": 5}
    conn.close()


def test_fewer_readers_than_connections_opens_only_what_it_needs(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port, connections=8)
    build_issue(settings)
    add_subscribers(settings, 2)
    services.send(settings, DAY, quiet_runtime())
    assert sink.sessions == 2 and sink.count == 2


def test_every_connection_stamps_the_ledger_with_the_runtimes_clock(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    """The worker threads open their own SQLite connections; they take the runtime's clock
    from the send's, not the system's, so the ledger says when the send ran."""
    _sink, port = server
    settings = newsletter(tmp_path, port=port, rate=0, connections=4)
    build_issue(settings)
    add_subscribers(settings, 12)
    then = datetime(2024, 12, 5, 14, 0, 7, tzinfo=UTC)
    services.send(settings, DAY, quiet_runtime(now=lambda: then))
    with contextlib.closing(services.open_store(settings)) as conn:
        stamps = {r[0] for r in conn.execute(
            "SELECT updated_at FROM deliveries WHERE issue_date = ?", (DAY.isoformat(),))}
    assert stamps == {"2024-12-05T14:00:07+00:00"}


@contextmanager
def capped_relay(port: int, allowed: int) -> Iterator[int]:
    """A relay in front of the sink that takes `allowed` connections at a time and answers
    any more with `421 Too many connections` in its greeting, as relays with a per-client
    cap do; yields its port. The accepted connections are piped through to the sink."""
    lock = threading.Lock()
    open_now = [0]

    class Pipe(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with lock:
                refused = open_now[0] >= allowed
                open_now[0] += 0 if refused else 1
            if refused:
                self.request.sendall(b"421 4.7.0 Too many connections from your host\r\n")
                return
            try:
                with socket.create_connection(("127.0.0.1", port)) as upstream:
                    def pump(src: socket.socket, dst: socket.socket) -> None:
                        with contextlib.suppress(OSError):  # either side may close first
                            while data := src.recv(65536):
                                dst.sendall(data)
                            dst.shutdown(socket.SHUT_WR)

                    back = threading.Thread(target=pump, args=(upstream, self.request))
                    back.start()
                    pump(self.request, upstream)
                    back.join()
            except OSError:
                pass
            finally:
                with lock:
                    open_now[0] -= 1

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Pipe)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_relay_capping_connections_gets_a_warning_and_fewer_connections(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    sink, port = server
    with capped_relay(port, allowed=2) as relay_port:
        settings = newsletter(tmp_path, port=relay_port, rate=0, connections=4)
        build_issue(settings)
        subs = add_subscribers(settings, 20)
        lines: list[str] = []
        lines += present.lines(services.send(settings, DAY, quiet_runtime(echo=lines.append)))
    assert {r: len(m) for r, m in sink.by_recipient().items()} == {s.email: 1 for s in subs}
    assert len(sink.per_session) == 2
    assert lines[0].startswith("warning: sending over 2 of 4 connections: cannot connect to "
                               f"SMTP server 127.0.0.1:{relay_port}")
    assert "421" in lines[0] and "Too many connections" in lines[0]
    assert lines[-1] == f"issue {DAY}: sent 20, failed 0, skipped 0"


@pytest.mark.parametrize(("value", "message"), [
    (0, "expected at least 1, got 0"),
    (65, "expected at most 64, got 65"),
    ("4", "expected a whole number"),
])
def test_connections_setting_is_checked(tmp_path: Path, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        newsletter(tmp_path, connections=value)
    assert "delivery.connections" in str(info.value)


def test_negative_rate_is_refused_and_zero_means_no_cap(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected at least 0"):
        newsletter(tmp_path, rate=-1)
    assert newsletter(tmp_path, rate=0).delivery.rate_per_second == 0

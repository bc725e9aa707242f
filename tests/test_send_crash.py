"""Crash safety: `digest send` in a subprocess is SIGKILLed midway and run again; every reader
ends with exactly one message (the message in flight on each connection at the kill may
come twice)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import store
from pipeline.core.config import Settings
from tests.deliver_support import (
    DAY,
    PASSWORD,
    SECRET,
    Sink,
    add_subscribers,
    build_issue,
    newsletter,
)

REPO = Path(__file__).resolve().parent.parent


pytestmark = [pytest.mark.usefixtures("digest_secret"), pytest.mark.slow]  # fixtures: tests/conftest.py


def _send(settings: Settings, cert: Path) -> subprocess.Popen[bytes]:
    """`python -m pipeline --config CONFIG send` as its own process."""
    env = {**os.environ, "DIGEST_SECRET": SECRET, "DIGEST_SMTP_PASSWORD": PASSWORD,
           "SSL_CERT_FILE": str(cert)}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(settings.source), "send",
         "--date", str(DAY)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def _ledger(settings: Settings) -> dict[str, int]:
    conn = store.connect(settings.db_path)
    try:
        return store.delivery_counts(conn, DAY)
    finally:
        conn.close()


def _sending(settings: Settings) -> set[str]:
    """The readers whose delivery is claimed but not recorded (in flight at a kill)."""
    conn = store.connect(settings.db_path)
    try:
        rows = conn.execute(
            "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.status = 'sending'"
        )
        return {r[0] for r in rows}
    finally:
        conn.close()


@pytest.mark.parametrize("connections", [1, 4])
def test_sigkill_midway_then_rerun_sends_each_reader_once(
    tmp_path: Path, server: tuple[Sink, int], cert: tuple[Path, Path], connections: int
) -> None:
    sink, port = server
    sink.delay = 0.02  # a relay's answer time: every connection has a message in flight
    settings = newsletter(tmp_path, port=port, connections=connections)
    build_issue(settings)
    subs = add_subscribers(settings, 80)
    sink.notify_at = 20

    proc = _send(settings, cert[0])
    assert sink.arrived.wait(30), proc.stderr.read() if proc.stderr else ""
    _kill(proc)
    first = sink.count
    assert 20 <= first < 80
    assert len(sink.per_session) == connections  # the kill caught a concurrent send
    ledger = _ledger(settings)
    in_flight = _sending(settings)
    assert len(in_flight) == ledger.get("sending", 0) <= connections
    assert ledger["sent"] >= first - connections

    rerun = _send(settings, cert[0])
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    copies = {r: len(m) for r, m in sink.by_recipient().items()}
    assert set(copies) == {s.email for s in subs}  # nobody skipped
    twice = {r for r, n in copies.items() if n > 1}
    assert twice <= in_flight  # only a message in flight at the kill can repeat
    assert max(copies.values()) <= 2
    assert _ledger(settings) == {"sent": 80}
    assert f"sent {80 - ledger['sent']}, failed 0, skipped {ledger['sent']}" in err.decode()


def test_message_in_flight_at_the_kill_is_the_only_repeat(
    tmp_path: Path, server: tuple[Sink, int], cert: tuple[Path, Path]
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port, connections=1)
    build_issue(settings)
    subs = add_subscribers(settings, 20)
    sink.hold_at = 7  # the server has the 7th message but has not answered yet

    proc = _send(settings, cert[0])
    assert sink.arrived.wait(30)
    _kill(proc)
    assert _ledger(settings) == {"sent": 6, "sending": 1}

    sink.hold_at = None
    rerun = _send(settings, cert[0])
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    copies = {r: len(m) for r, m in sink.by_recipient().items()}
    assert copies == {s.email: 2 if s is subs[6] else 1 for s in subs}


def test_a_second_send_at_the_same_time_says_so_and_sends_nothing(
    tmp_path: Path, server: tuple[Sink, int], cert: tuple[Path, Path]
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port, connections=1)
    build_issue(settings)
    add_subscribers(settings, 10)
    sink.hold_at = 3

    first = _send(settings, cert[0])
    assert sink.arrived.wait(30)
    second = _send(settings, cert[0])
    _, err = second.communicate(timeout=60)
    assert second.returncode == 1
    assert err.decode().splitlines() == [
        f"digest: error: another `digest send` of the issue of {DAY} is running; "
        "this one sent nothing (wait for it to finish)"
    ]
    assert sink.count == 3
    _kill(first)

"""Issue #22 items 7, 8, 10 on `digest serve`: an old confirmation link after the address
was unsubscribed and subscribed again by someone else is 410; one client cannot starve
everyone's confirmations; waitress's own error answers carry the security headers; an
unknown subscriber id answers like a forged token. SQLite on disk; the real waitress server
in its own process where the HTTP server itself is under test."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.runtime import Runtime
from pipeline.deliver import tokens
from pipeline.interfaces.serve import QUEUE_CLIENT_HOURLY, SECURITY_HEADERS, create_app
from tests.deliver_support import SECRET, add_subscribers, newsletter, serving
from tests.test_web_hardening import _raw


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return newsletter(tmp_path, transport="outbox")


def _status(settings: Settings, email: str) -> str:
    conn = services.open_store(settings)
    try:
        sub = store.get_subscriber(conn, email)
        assert sub is not None
        return sub.status
    finally:
        conn.close()


def _links(settings: Settings, email: str) -> list[str]:
    """The confirmation links mailed to `email` (the outbox keeps the latest file)."""
    path = settings.paths.outbox / "subscribe" / f"{email}.eml"
    import email as email_lib
    from email import policy

    msg = email_lib.message_from_bytes(path.read_bytes(), policy=policy.default)
    body = msg.get_body(("plain",))
    assert body is not None
    return re.findall(r"/confirm/(\S+)", body.get_content())


def test_an_old_confirmation_link_cannot_reactivate_a_resubscribed_address(
    settings: Settings
) -> None:
    clock = [datetime(2024, 12, 5, 9, 0, tzinfo=UTC)]
    app = create_app(settings, Runtime(now=lambda: clock[0]))
    client = app.test_client()
    queue = app.extensions["mail_queue"]
    victim = "victim@example.org"
    assert client.post("/subscribe", data={"email": victim}).status_code == 200
    assert queue.drain() == 1
    (old,) = _links(settings, victim)
    assert client.post(f"/confirm/{old}").status_code == 200
    assert _status(settings, victim) == "active"
    conn = services.open_store(settings)
    sub = store.get_subscriber(conn, victim)
    conn.close()
    assert sub is not None and sub.id is not None
    unsubscribe = tokens.sign(SECRET.encode(), "unsubscribe", sub.id, victim)
    clock[0] += timedelta(minutes=10)
    assert client.post(f"/unsubscribe/{unsubscribe}").status_code == 200
    # a stranger puts the address in the form again, within the hour and the week
    clock[0] += timedelta(minutes=10)
    stranger = client.post("/subscribe", data={"email": victim},
                           environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert stranger.status_code == 200
    assert _status(settings, victim) == "pending"
    for method in ("GET", "POST"):
        assert client.open(f"/confirm/{old}", method=method).status_code == 410
    assert _status(settings, victim) == "pending"
    # the mail the new request sent is the one that confirms
    assert queue.drain() == 1
    (new,) = _links(settings, victim)
    assert new != old
    clock[0] += timedelta(minutes=1)
    assert client.post(f"/confirm/{new}").status_code == 200
    assert _status(settings, victim) == "active"


def test_one_busy_client_cannot_starve_the_others(settings: Settings) -> None:
    clock = [datetime(2024, 12, 5, 9, 0, tzinfo=UTC)]
    app = create_app(settings, Runtime(now=lambda: clock[0]))
    client = app.test_client()
    queue = app.extensions["mail_queue"]
    # the busy client posts at the allowed rate (10 a minute) for 10 minutes: 100 strangers
    for minute in range(10):
        for i in range(10):
            reply = client.post("/subscribe", data={"email": f"x{minute}-{i}@example.org"},
                                environ_base={"REMOTE_ADDR": "203.0.113.9"})
            assert reply.status_code == 200
        clock[0] += timedelta(seconds=61)
    # then three real readers, each from their own address
    for n in range(3):
        reply = client.post("/subscribe", data={"email": f"reader{n}@example.org"},
                            environ_base={"REMOTE_ADDR": f"192.0.2.{n + 1}"})
        assert reply.status_code == 200
    sent = queue.drain()
    assert sent == QUEUE_CLIENT_HOURLY + 3  # the busy client's share, then the others
    outbox = {p.name for p in (settings.paths.outbox / "subscribe").iterdir()}
    assert {f"reader{n}@example.org.eml" for n in range(3)} <= outbox
    busy = [n for n in outbox if n.startswith("x")]
    assert len(busy) == QUEUE_CLIENT_HOURLY
    assert queue.drain() == 0  # the busy client waits for the next hour
    clock[0] += timedelta(minutes=61)
    assert queue.drain() == QUEUE_CLIENT_HOURLY


def test_waitress_error_answers_carry_the_security_headers(settings: Settings) -> None:
    with serving(settings) as base:
        replies = {
            413: _raw(base, b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: "
                            b"100000000\r\nConnection: close\r\n\r\nemail=x"),
            431: _raw(base, b"GET / HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"j" * 20000
                      + b"\r\nConnection: close\r\n\r\n"),
            400: _raw(base, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n"
                            b"Connection: close\r\n\r\n"),
        }
    for code, reply in replies.items():
        head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        assert re.match(rf"HTTP/1\.[01] {code} ", head), head
        for name, value in SECURITY_HEADERS.items():
            assert f"{name}: {value}" in head, (code, name)


def test_a_token_for_an_unknown_id_answers_like_a_forged_one(settings: Settings) -> None:
    (known,) = add_subscribers(settings, 1)
    assert known.id is not None
    unknown = tokens.sign(b"x" * 32, "unsubscribe", 987654, "who@example.org")
    forged = tokens.sign(b"x" * 32, "unsubscribe", known.id, known.email)
    with serving(settings) as base:
        answers = [requests.post(f"{base}/unsubscribe/{t}", timeout=10)
                   for t in (unknown, forged)]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].text == answers[1].text
    assert _status(settings, known.email) == "active"

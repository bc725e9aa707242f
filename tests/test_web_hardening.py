"""`digest serve` as an attacker and an unlucky operator meet it (issue #13), over real HTTP
(waitress in its own process) with the real SMTP sink: rate limits, no membership oracle,
request limits, idle sockets, security headers, redacted logs, site/ confinement, a broken
store."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.errors import StoreError
from pipeline.core.models import Subscriber
from pipeline.deliver import tokens
from pipeline.interfaces.serve import CLIENT_LIMIT, SECURITY_HEADERS
from tests.deliver_support import (
    PASSWORD,
    SECRET,
    add_subscribers,
    make_cert,
    newsletter,
    serving,
    serving_logged,
    smtp_server,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("digest_secret")  # tests/conftest.py


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return newsletter(tmp_path, transport="outbox")


@pytest.fixture
def base(settings: Settings) -> Iterator[str]:
    with serving(settings) as url:
        yield url


def _statuses(settings: Settings) -> dict[str, str]:
    conn = services.open_store(settings)
    try:
        return {s.email: s.status for s in store.iter_subscribers(conn)}
    finally:
        conn.close()


def _unsubscribe_token(sub: Subscriber) -> str:
    assert sub.id is not None
    return tokens.sign(SECRET.encode(), "unsubscribe", sub.id, sub.email)


# --- 2. rate limits ---------------------------------------------------------------------------


@pytest.mark.slow
def test_fifty_concurrent_subscribes_send_one_confirmation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 POSTs used to send 30 mails to the same victim. Now: one per address per hour,
    through the real SMTP server, however the requests race."""
    cert, key = make_cert(tmp_path)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with smtp_server(cert, key) as (sink, port):
        settings = newsletter(tmp_path / "nl", port=port)
        with serving(settings) as base:
            def post(_: int) -> int:
                reply = requests.post(f"{base}/subscribe",
                                      data={"email": "victim@example.org"}, timeout=30)
                return reply.status_code

            with ThreadPoolExecutor(50) as pool:
                codes = list(pool.map(post, range(50)))
            wait_for(lambda: sink.messages)
            # let the worker finish anything else it might (wrongly) have queued
            conn = services.open_store(settings)
            try:
                wait_for(lambda: store.mail_counts(conn).get("queued", 0) == 0)
                counts = store.mail_counts(conn)
            finally:
                conn.close()
    assert set(codes) <= {200, 429} and codes.count(200) == CLIENT_LIMIT
    assert [m.recipients for m in sink.messages] == [["victim@example.org"]]
    assert counts == {"sent": 1}


@pytest.mark.slow
def test_the_per_client_limit_survives_a_restart(settings: Settings) -> None:
    with serving(settings) as base:
        for i in range(CLIENT_LIMIT):
            reply = requests.post(f"{base}/subscribe", data={"email": f"r{i}@example.org"},
                                  timeout=10)
            assert reply.status_code == 200
    with serving(settings) as base:  # a new process: the count is in SQLite
        reply = requests.post(f"{base}/subscribe", data={"email": "one-more@example.org"},
                              timeout=10)
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "60"
    assert "one-more@example.org" not in _statuses(settings)


# --- 3. no membership oracle ------------------------------------------------------------------


@pytest.mark.slow
def test_subscribe_answers_alike_for_every_address_even_with_smtp_down(tmp_path: Path) -> None:
    """The answer used to be 200 for a subscribed address and 503 for the others when the
    mail server was down. The mail is queued now: same status, same page."""
    settings = newsletter(tmp_path, port=1)  # nothing listens on port 1
    conn = services.open_store(settings)
    store.save_subscriber(conn, Subscriber("member@example.org", "all", (), "active"))
    store.save_subscriber(conn, Subscriber("gone@example.org", "all", (), "unsubscribed"))
    conn.close()
    replies = {}
    with serving(settings) as base:
        for addr in ("member@example.org", "stranger@example.org", "gone@example.org"):
            reply = requests.post(f"{base}/subscribe", data={"email": addr}, timeout=10)
            replies[addr] = (reply.status_code, reply.text.replace(addr, "ADDRESS"),
                             reply.headers["Content-Type"])
        conn = services.open_store(settings)
        try:  # the worker tried, failed to connect, and keeps the mails for later
            wait_for(lambda: conn.execute(
                "SELECT COUNT(*) FROM mail_queue WHERE last_error IS NOT NULL").fetchone()[0])
            queued = conn.execute("SELECT status FROM mail_queue").fetchall()
        finally:
            conn.close()
    assert len(set(replies.values())) == 1, replies
    assert replies["member@example.org"][0] == 200
    # stranger and gone wait for the server; the member's request is dropped, never sent
    assert sorted(r[0] for r in queued) == ["dropped", "queued", "queued"]


def test_queued_confirmation_goes_out_once_the_mail_server_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.core.runtime import Runtime
    from pipeline.interfaces.serve import create_app

    cert, key = make_cert(tmp_path)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with smtp_server(cert, key) as (sink, port):
        down = newsletter(tmp_path / "nl", port=1)
        app = create_app(down, Runtime())
        assert app.test_client().post("/subscribe", data={"email": "r@example.org"}
                                      ).status_code == 200
        queue = app.extensions["mail_queue"]
        assert queue.drain() == 0 and sink.messages == []
        up = newsletter(tmp_path / "nl", port=port)  # the same newsletter, server back
        later = Runtime(now=lambda: Runtime().now() + __import__("datetime").timedelta(hours=1))
        assert create_app(up, later).extensions["mail_queue"].drain() == 1
    assert [m.recipients for m in sink.messages] == [["r@example.org"]]


# --- 4. confirmation by POST only: see test_web.test_subscribe_is_double_opt_in ---------------


# --- 5. request limits ------------------------------------------------------------------------


def _raw(base: str, request: bytes, timeout: float = 10) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


@pytest.mark.slow
def test_a_huge_post_is_refused_unread_and_never_echoed(base: str) -> None:
    marker = b"<ECHO-ME>"
    head = (
        b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
        b"\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\nemail=" + marker * 100
    )
    reply = _raw(base, head)
    assert reply.startswith(b"HTTP/1.1 413")
    assert marker not in reply
    # a bad address inside the limit is not echoed either
    junk = "<ECHO-ME>" * 1000
    page = requests.post(f"{base}/subscribe", data={"email": junk}, timeout=10)
    assert page.status_code == 400 and "ECHO-ME" not in page.text


def test_long_urls_headers_and_paths_get_4xx_not_500(base: str) -> None:
    assert requests.get(f"{base}/{'a' * 300}", timeout=10).status_code == 404
    assert requests.get(f"{base}/{'a' * 300}/index.html", timeout=10).status_code == 404
    assert requests.get(f"{base}/x?{'q' * 3000}", timeout=10).status_code == 414
    assert requests.get(f"{base}/unsubscribe/{'A' * 3000}", timeout=10).status_code == 414
    assert requests.get(f"{base}/unsubscribe/{'A' * 1000}", timeout=10).status_code == 400
    big = requests.get(f"{base}/", headers={"X-Junk": "j" * 20000}, timeout=10)
    assert big.status_code == 431
    assert requests.get(f"{base}/a%00b", timeout=10).status_code == 404


def test_a_hundred_idle_sockets_do_not_starve_one_click_unsubscribe(
    settings: Settings, base: str
) -> None:
    """~100 idle connections used to exhaust waitress: the unsubscribe POST hung."""
    sub = add_subscribers(settings, 1)[0]
    host, port = base.removeprefix("http://").split(":")
    idle = []
    try:
        for i in range(150):
            s = socket.create_connection((host, int(port)), timeout=10)
            if i % 2:  # half of them say half a request and stop (slowloris)
                s.sendall(b"POST /subscribe HTTP/1.1\r\nHost: x\r\n")
            idle.append(s)
        reply = requests.post(f"{base}/unsubscribe/{_unsubscribe_token(sub)}",
                              data={"List-Unsubscribe": "One-Click"}, timeout=10)
    finally:
        for s in idle:
            s.close()
    assert reply.status_code == 200
    assert _statuses(settings)[sub.email] == "unsubscribed"


# --- 6. headers, logs, site/ ------------------------------------------------------------------


@pytest.mark.slow
def test_every_response_carries_the_security_headers(settings: Settings, base: str) -> None:
    site = settings.paths.site
    site.mkdir(parents=True)
    (site / "index.html").write_text("<h1>archive</h1>", encoding="utf-8")
    sub = add_subscribers(settings, 1)[0]
    replies = [
        requests.get(f"{base}/", timeout=10),
        requests.get(f"{base}/subscribe", timeout=10),
        requests.post(f"{base}/subscribe", data={"email": "bad"}, timeout=10),
        requests.get(f"{base}/nothing-here", timeout=10),
        requests.get(f"{base}/unsubscribe/junk", timeout=10),
        requests.get(f"{base}/unsubscribe/{_unsubscribe_token(sub)}", timeout=10),
        requests.delete(f"{base}/subscribe", timeout=10),
    ]
    assert [r.status_code for r in replies] == [200, 200, 400, 404, 400, 200, 405]
    for reply in replies:
        for name, value in SECURITY_HEADERS.items():
            assert reply.headers.get(name) == value, (reply.url, name)
    assert "frame-ancestors 'none'" in SECURITY_HEADERS["Content-Security-Policy"]


@pytest.mark.slow
def test_the_log_never_holds_a_token(settings: Settings) -> None:
    sub = add_subscribers(settings, 1)[0]
    token = _unsubscribe_token(sub)
    with serving_logged(settings) as (base, log):
        requests.get(f"{base}/unsubscribe/{token}", timeout=10)
        requests.post(f"{base}/unsubscribe/{token}", timeout=10)
        requests.post(f"{base}/confirm/{token}", timeout=10)
        wait_for(lambda: sum("/confirm/" in line for line in log))
    text = "".join(log)
    assert '"POST /unsubscribe/[token]" 200' in text
    assert '"POST /confirm/[token]" 400' in text
    assert token not in text and token.split(".")[1] not in text


def test_site_files_stay_inside_the_resolved_site_folder(settings: Settings, tmp_path: Path,
                                                          base: str) -> None:
    secret = settings.root / "secret.txt"
    secret.write_text("private", encoding="utf-8")
    # site/ is a symlink to the published version (atomic publishing): it is followed,
    # but nothing inside it may lead out
    version = settings.root / "versions" / "v1"
    (version / "issues").mkdir(parents=True)
    (version / "index.html").write_text("<h1>v1</h1>", encoding="utf-8")
    (version / "issues" / "a.html").write_text("a", encoding="utf-8")
    (version / "leak.txt").symlink_to(secret)
    (version / "up").symlink_to(settings.root)
    (version / ".hidden").write_text("no", encoding="utf-8")
    settings.paths.site.symlink_to(version, target_is_directory=True)
    assert requests.get(f"{base}/", timeout=10).text == "<h1>v1</h1>"
    assert requests.get(f"{base}/issues/a.html", timeout=10).text == "a"
    for path in ("/leak.txt", "/up/secret.txt", "/.hidden",
                 "/../secret.txt", "/%2e%2e/secret.txt", "/issues/..%2f..%2fsecret.txt"):
        reply = requests.get(base + path, timeout=10)
        assert reply.status_code == 404, path
        assert "private" not in reply.text


# --- 8. the store -----------------------------------------------------------------------------


def test_a_broken_store_is_503_on_the_web(settings: Settings) -> None:
    sub = add_subscribers(settings, 1)[0]
    with serving(settings) as base:
        settings.db_path.write_bytes(b"this is not a database" * 300)
        for name in ("digest.db-wal", "digest.db-shm"):
            (settings.db_path.parent / name).unlink(missing_ok=True)
        reply = requests.post(f"{base}/unsubscribe/{_unsubscribe_token(sub)}", timeout=10)
        form = requests.post(f"{base}/subscribe", data={"email": "x@example.org"}, timeout=10)
    assert (reply.status_code, form.status_code) == (503, 503)
    assert reply.headers["Retry-After"] == "60"
    assert "Traceback" not in reply.text and "sqlite" not in reply.text.lower()


def test_sqlite_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "digest.db"
    conn = store.connect(path)
    with pytest.raises(StoreError) as info:
        conn.execute("SELECT nope FROM nowhere")
    assert str(info.value).startswith(f"{path}: database error: no such table")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    conn.close()


@pytest.mark.parametrize("proxied", [False, True], ids=["direct", "behind-proxy"])
@pytest.mark.slow
def test_the_client_limit_reads_x_forwarded_for_only_from_the_trusted_proxy(
    tmp_path: Path, proxied: bool
) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    if proxied:
        assert settings.source is not None
        settings.source.write_text(settings.source.read_text(encoding="utf-8")
                                   + '\n[web]\ntrusted_proxy = "127.0.0.1"\n', encoding="utf-8")
    with serving(settings) as base:
        codes = [
            requests.post(f"{base}/subscribe", data={"email": f"r{i}@example.org"},
                          headers={"X-Forwarded-For": f"198.51.100.{i}"}, timeout=10).status_code
            for i in range(CLIENT_LIMIT + 2)
        ]
        same = [
            requests.post(f"{base}/subscribe", data={"email": f"s{i}@example.org"},
                          headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10).status_code
            for i in range(CLIENT_LIMIT + 1)
        ]
    if proxied:  # each reader has their own budget; one reader still has a limit
        assert codes == [200] * (CLIENT_LIMIT + 2)
        assert same == [200] * CLIENT_LIMIT + [429]
    else:  # a header anyone can send changes nothing
        assert codes == [200] * CLIENT_LIMIT + [429] * 2
        assert same == [429] * (CLIENT_LIMIT + 1)


@pytest.mark.slow
def test_the_form_takes_idn_domains_and_refuses_utf8_names_without_smtputf8(
    settings: Settings, base: str
) -> None:
    from pipeline.interfaces.web_pages import WEB_UI

    utf8 = requests.post(f"{base}/subscribe", data={"email": "üser@example.org"}, timeout=10)
    assert utf8.status_code == 400
    assert WEB_UI["ko"]["bad_email_utf8"] in utf8.text
    idn = requests.post(f"{base}/subscribe", data={"email": "reader@xn--exmple-cua.org"},
                        timeout=10)
    assert idn.status_code == 200
    assert _statuses(settings) == {"reader@exämple.org": "pending"}
    eml = settings.paths.outbox / "subscribe" / "reader@xn--exmple-cua.org.eml"
    wait_for(eml.exists)
    assert b"To: reader@xn--exmple-cua.org\n" in eml.read_bytes().replace(b"\r\n", b"\n")


def test_the_per_client_limit_counts_an_ipv6_host_by_its_64() -> None:
    from pipeline.interfaces.serve import client_key

    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") != client_key("192.0.2.8")
    assert client_key(None) == "unknown"


def test_a_locked_store_is_one_store_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "digest.db"
    holder = store.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    other = store.connect(path)
    other.execute("PRAGMA busy_timeout = 50")  # the store's 30 s, shortened for the test
    try:
        with pytest.raises(StoreError) as info:
            other.execute("BEGIN IMMEDIATE")
        assert str(info.value).startswith(f"{path}: the database is locked")
    finally:
        other.close()
        holder.execute("ROLLBACK")
        holder.close()


def test_the_mail_queue_forgets_finished_mail_after_a_while(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "digest.db")
    try:
        _, sub = store.save_subscriber(conn, Subscriber("q@example.org", "all", (), "pending"))
        assert sub.id is not None
        t0 = datetime(2024, 12, 5, 9, 0, tzinfo=UTC)
        old, new, waiting = (store.queue_mail(conn, "confirm", sub.id, t0 + timedelta(seconds=t))
                             for t in (10, 20, 5))
        store.finish_mail(conn, old, "sent", None, t0 + timedelta(seconds=30))
        store.finish_mail(conn, new, "dropped", None, t0 + timedelta(seconds=30))
        # `old`; `waiting` is still queued
        assert store.prune_mail(conn, before=t0 + timedelta(seconds=15)) == 1
        assert store.mail_counts(conn) == {"dropped": 1, "queued": 1}
        assert store.last_mail(conn, sub.id, "confirm") == t0 + timedelta(seconds=20)
        assert waiting
    finally:
        conn.close()


def test_confirmations_go_out_within_an_hourly_budget(settings: Settings) -> None:
    """Many clients each asking for a few strangers: the mails wait their turn instead of
    getting the curator's SMTP account blocklisted."""
    from pipeline.core.runtime import Runtime
    from pipeline.interfaces.serve import create_app

    clock = [datetime(2024, 12, 5, 9, 0, tzinfo=UTC)]
    app = create_app(settings, Runtime(now=lambda: clock[0]))
    client = app.test_client()
    for i in range(3):
        reply = client.post("/subscribe", data={"email": f"s{i}@example.org"},
                            environ_base={"REMOTE_ADDR": f"192.0.2.{i}"})
        assert reply.status_code == 200
    queue = app.extensions["mail_queue"]
    queue.hourly = 2
    assert queue.drain() == 2
    assert queue.drain() == 0
    clock[0] += timedelta(minutes=61)
    assert queue.drain() == 1
    sent = sorted(p.name for p in (settings.paths.outbox / "subscribe").iterdir())
    assert sent == ["s0@example.org.eml", "s1@example.org.eml", "s2@example.org.eml"]


def test_a_database_deleted_under_the_server_is_503_not_a_silent_loss(
    settings: Settings
) -> None:
    a, b = add_subscribers(settings, 2)
    with serving(settings) as base:
        ok = requests.post(f"{base}/unsubscribe/{_unsubscribe_token(a)}", timeout=10)
        for f in settings.db_path.parent.glob("digest.db*"):
            if f != store.marker_path(settings.db_path):
                f.unlink()
        gone = requests.post(f"{base}/unsubscribe/{_unsubscribe_token(b)}", timeout=10)
    assert (ok.status_code, gone.status_code) == (200, 503)
    assert not settings.db_path.exists()  # not recreated empty by the server either


def test_a_kept_connection_notices_its_database_was_deleted(settings: Settings) -> None:
    """The same on one thread, whose connection is kept between requests (deterministic)."""
    from pipeline.interfaces.serve import create_app

    a, b = add_subscribers(settings, 2)
    client = create_app(settings).test_client()
    assert client.post(f"/unsubscribe/{_unsubscribe_token(a)}").status_code == 200
    for f in settings.db_path.parent.glob("digest.db*"):
        if f != store.marker_path(settings.db_path):
            f.unlink()
    assert client.post(f"/unsubscribe/{_unsubscribe_token(b)}").status_code == 503
    assert not settings.db_path.exists()

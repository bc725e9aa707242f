"""`digest serve` over real HTTP (waitress): one-click unsubscribe, tokens, double opt-in, site/."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import requests

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.models import Subscriber
from pipeline.core.runtime import Runtime
from pipeline.deliver import tokens
from pipeline.interfaces.serve import CONFIRM_DAYS, create_app
from tests.deliver_support import (
    PASSWORD,
    SECRET,
    Sink,
    add_subscribers,
    make_cert,
    newsletter,
    serving,
    smtp_server,
    wait_for,
)

REPO = Path(__file__).resolve().parent.parent


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


def _token(sub: Subscriber, secret: str = SECRET, purpose: str = "unsubscribe") -> str:
    assert sub.id is not None
    return tokens.sign(secret.encode(), purpose, sub.id, sub.email)


@pytest.mark.slow
def test_get_shows_a_confirm_form_and_never_unsubscribes(settings: Settings, base: str) -> None:
    sub = add_subscribers(settings, 2)[0]
    url = f"{base}/unsubscribe/{_token(sub)}"
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    assert f'<form method="post" action="/unsubscribe/{_token(sub)}">' in page.text
    assert sub.email in page.text
    assert set(_statuses(settings).values()) == {"active"}
    # the page's button posts the form, which unsubscribes
    reply = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert reply.status_code == 200
    assert _statuses(settings)[sub.email] == "unsubscribed"


@pytest.mark.slow
def test_one_click_post_is_200_without_redirect_and_idempotent(
    settings: Settings, base: str
) -> None:
    subs = add_subscribers(settings, 3)
    url = f"{base}/unsubscribe/{_token(subs[1])}"
    for _ in range(3):
        reply = requests.post(url, data="List-Unsubscribe=One-Click", allow_redirects=False,
                              headers={"Content-Type": "application/x-www-form-urlencoded"},
                              timeout=10)
        assert reply.status_code == 200
        assert "Location" not in reply.headers
    assert _statuses(settings) == {
        subs[0].email: "active", subs[1].email: "unsubscribed", subs[2].email: "active"
    }


@pytest.mark.slow
def test_bad_tokens_unsubscribe_nobody(settings: Settings, base: str) -> None:
    a, b = add_subscribers(settings, 2)
    good = _token(a)
    payload, sig = good.split(".")
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    b_payload = _token(b).split(".")[0]
    assert b.id is not None
    cases = {
        f"{payload}.{flipped}": 400,  # tampered signature
        _token(a, secret="another-secret-of-16+"): 400,  # signed with another secret
        f"{b_payload}.{sig}": 400,  # a's signature on b's id
        _token(a, purpose="confirm"): 400,  # a confirmation link is no unsubscribe link
        tokens.sign(SECRET.encode(), "unsubscribe", 999999, "x@example.org"): 400,  # no such id: as forged
        "not-a-token": 400,
        f"{payload}.": 400,
        f"\u00b2.{sig}": 400,  # a digit to str.isdigit, not to int()
        # the old format (links in old mailboxes), forged
        tokens.legacy_sign(b"another-secret-of-16+", "unsubscribe", b.id, b.email): 400,
    }
    for token, status in cases.items():
        for method in ("GET", "POST"):
            reply = requests.request(method, f"{base}/unsubscribe/{token}", timeout=10)
            assert reply.status_code == status, (token, method)
    assert _statuses(settings) == {a.email: "active", b.email: "active"}
    # b's own, untampered token unsubscribes b only
    assert requests.post(f"{base}/unsubscribe/{_token(b)}", timeout=10).status_code == 200
    assert _statuses(settings) == {a.email: "active", b.email: "unsubscribed"}


def test_unsubscribe_links_of_the_old_format_keep_working(settings: Settings, base: str) -> None:
    """Links sent before tokens moved to itsdangerous sit in readers' mailboxes: the old
    `<id>.<HMAC>` form still unsubscribes its reader (and nobody else)."""
    a, b = add_subscribers(settings, 2)
    assert a.id is not None
    old = tokens.legacy_sign(SECRET.encode(), "unsubscribe", a.id, a.email)
    assert old.startswith(f"{a.id}.")
    page = requests.get(f"{base}/unsubscribe/{old}", timeout=10)
    assert page.status_code == 200 and a.email in page.text
    assert requests.post(f"{base}/unsubscribe/{old}", timeout=10).status_code == 200
    assert _statuses(settings) == {a.email: "unsubscribed", b.email: "active"}
    # an old-format confirmation link confirms nobody: it has expired
    conn = services.open_store(settings)
    _, p = store.save_subscriber(conn, Subscriber("p@example.org", "all", (), "pending"))
    conn.close()
    assert p.id is not None
    old_confirm = tokens.legacy_sign(SECRET.encode(), "confirm", p.id, p.email)
    assert requests.post(f"{base}/confirm/{old_confirm}", timeout=10).status_code == 410
    assert _statuses(settings)["p@example.org"] == "pending"


def _confirm_link(eml: Path) -> str:
    msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
    body = msg.get_body(("plain",))
    assert body is not None
    found = re.search(r"https://digest\.example\.org(/confirm/\S+)", body.get_content())
    assert found, body.get_content()
    return found.group(1)


@pytest.mark.slow
def test_subscribe_is_double_opt_in(settings: Settings, base: str) -> None:
    form = requests.get(f"{base}/subscribe", timeout=10)
    assert form.status_code == 200 and 'name="email"' in form.text
    reply = requests.post(f"{base}/subscribe", data={"email": "New.Reader@Example.org",
                                                     "language": "en"}, timeout=10)
    assert reply.status_code == 200
    assert _statuses(settings) == {"New.Reader@example.org": "pending"}
    eml = settings.paths.outbox / "subscribe" / "New.Reader@example.org.eml"
    wait_for(eml.exists)  # the mail worker sends it in the background
    path = _confirm_link(eml)
    # GET and HEAD only show a button (mail scanners prefetch links): nobody is confirmed
    page = requests.get(base + path, timeout=10)
    assert page.status_code == 200
    assert f'<form method="post" action="{path}">' in page.text
    assert requests.head(base + path, timeout=10).status_code == 200
    assert _statuses(settings) == {"New.Reader@example.org": "pending"}
    # the button's POST confirms
    assert requests.post(base + path, timeout=10).status_code == 200
    assert _statuses(settings) == {"New.Reader@example.org": "active"}
    assert requests.post(base + path, timeout=10).status_code == 200  # harmless twice
    # an active reader subscribing again gets the same answer and no new mail
    eml.unlink()
    reply = requests.post(f"{base}/subscribe", data={"email": "new.reader@example.org"},
                          timeout=10)
    assert reply.status_code == 200 and not eml.exists()
    # after unsubscribing, the old confirmation link cannot bring the reader back
    conn = services.open_store(settings)
    sub = store.get_subscriber(conn, "new.reader@example.org")
    conn.close()
    assert sub is not None
    requests.post(f"{base}/unsubscribe/{_token(sub)}", timeout=10)
    assert requests.get(base + path, timeout=10).status_code == 410
    assert requests.post(base + path, timeout=10).status_code == 410
    assert _statuses(settings) == {"New.Reader@example.org": "unsubscribed"}


def test_subscribe_rejects_bad_input(settings: Settings, base: str) -> None:
    bad_email = requests.post(f"{base}/subscribe", data={"email": "not an address"}, timeout=10)
    bad_lang = requests.post(f"{base}/subscribe", data={"email": "x@example.org",
                                                        "language": "fr"}, timeout=10)
    assert (bad_email.status_code, bad_lang.status_code) == (400, 400)
    assert _statuses(settings) == {}


@pytest.mark.slow
def test_confirmation_goes_through_the_smtp_transport(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = make_cert(tmp_path)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    sink: Sink
    with smtp_server(cert, key) as (sink, port):
        settings = newsletter(tmp_path / "nl", port=port)
        with serving(settings) as base:
            reply = requests.post(f"{base}/subscribe", data={"email": "r@example.org"},
                                  timeout=10)
            wait_for(lambda: sink.messages)
    assert reply.status_code == 200
    assert [m.recipients for m in sink.messages] == [["r@example.org"]]
    msg = sink.messages[0].parsed()
    assert msg["Subject"] == "ML Papers Digest 구독 확인"  # a Korean list (locale ko)
    assert "/confirm/" in msg.get_content()


def test_serves_site_files(settings: Settings, base: str) -> None:
    site = settings.paths.site
    (site / "issues").mkdir(parents=True)
    (site / "index.html").write_text("<h1>archive</h1>", encoding="utf-8")
    (site / "issues" / "2024-12-05.html").write_text("<h1>issue</h1>", encoding="utf-8")
    (site / "feed.xml").write_text("<rss/>", encoding="utf-8")
    (settings.root / "secret.txt").write_text("no", encoding="utf-8")
    assert requests.get(f"{base}/", timeout=10).text == "<h1>archive</h1>"
    assert requests.get(f"{base}/issues/2024-12-05.html", timeout=10).text == "<h1>issue</h1>"
    feed = requests.get(f"{base}/feed.xml", timeout=10)
    assert feed.status_code == 200 and feed.headers["Content-Type"].startswith(
        ("application/xml", "text/xml"))
    assert requests.get(f"{base}/missing.html", timeout=10).status_code == 404
    assert requests.get(f"{base}/../secret.txt", timeout=10).status_code == 404
    assert requests.get(f"{base}/%2e%2e/secret.txt", timeout=10).status_code == 404


@pytest.mark.slow
def test_digest_serve_is_waitress(settings: Settings, base: str) -> None:
    settings.paths.site.mkdir(parents=True)
    (settings.paths.site / "index.html").write_text("hello", encoding="utf-8")
    reply = requests.get(base + "/", timeout=10)
    assert reply.text == "hello"
    assert reply.headers["Server"] == "waitress"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "DIGEST_SECRET is not set"),
        # A reader holds their own token: a short secret is found offline by brute force,
        # and with it every reader's unsubscribe link.
        ("hunter2", "DIGEST_SECRET is too short (7 characters)"),
    ],
)
@pytest.mark.slow
def test_serve_refuses_to_start_without_a_good_secret(
    settings: Settings, secret: str | None, message: str
) -> None:
    assert settings.source is not None
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_SECRET"}
    if secret is not None:
        env["DIGEST_SECRET"] = secret
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(settings.source), "serve",
         "--port", "0"],
        cwd=REPO, env=env, capture_output=True, timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.decode().startswith(f"digest: error: DIGEST_SECRET: {message}")
    assert done.stderr.decode().count("\n") == 1


@pytest.mark.slow
def test_port_0_is_a_free_port_even_when_web_port_is_taken(tmp_path: Path) -> None:
    """`--port 0` was read as "no --port" (falsy), so serve tried web.port and failed with
    'Address already in use' whenever something else listened there."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        settings = newsletter(tmp_path, transport="outbox")
        assert settings.source is not None
        settings.source.write_text(
            settings.source.read_text(encoding="utf-8")
            + f"\n[web]\nport = {busy.getsockname()[1]}\n", encoding="utf-8")
        with serving(settings) as url:
            assert not url.endswith(f":{busy.getsockname()[1]}")
            assert requests.get(f"{url}/missing.html", timeout=10).status_code == 404


def test_a_confirmation_link_expires_after_a_week(settings: Settings) -> None:
    """A confirmation link in an old mailbox (or a leaked one) must not subscribe anyone
    weeks later; within CONFIRM_DAYS it works. Driven through the real WSGI app, whose
    clock (the runtime's) itsdangerous reads too."""
    conn = services.open_store(settings)
    _, sub = store.save_subscriber(conn, Subscriber("late@example.org", "all", (), "pending"))
    conn.close()
    assert sub.id is not None
    sent = datetime(2024, 12, 5, 9, 0, tzinfo=UTC)
    token = tokens.sign(SECRET.encode(), "confirm", sub.id, sub.email, now=lambda: sent)
    late = create_app(settings, Runtime(
        now=lambda: sent + timedelta(days=CONFIRM_DAYS, seconds=1)))
    for method in ("GET", "POST"):
        assert late.test_client().open(f"/confirm/{token}", method=method).status_code == 410
    assert _statuses(settings)["late@example.org"] == "pending"
    # the time cannot be moved: it is signed
    payload, _stamp, sig = token.split(".")
    forged = f"{payload}.{tokens.sign(SECRET.encode(), 'confirm', sub.id, sub.email).split('.')[1]}.{sig}"
    in_time = create_app(settings, Runtime(now=lambda: sent + timedelta(days=CONFIRM_DAYS)))
    assert in_time.test_client().post(f"/confirm/{forged}").status_code == 400
    # an unsubscribe token confirms nobody
    assert in_time.test_client().post(f"/confirm/{_token(sub)}").status_code == 400
    assert _statuses(settings)["late@example.org"] == "pending"
    assert in_time.test_client().post(f"/confirm/{token}").status_code == 200
    assert _statuses(settings)["late@example.org"] == "active"

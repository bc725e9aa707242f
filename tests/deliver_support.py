"""Test support for delivery: a real SMTP server on loopback (aiosmtpd, STARTTLS + AUTH,
with injectable faults), a self-signed certificate, and a newsletter with a built issue."""

from __future__ import annotations

import asyncio
import html
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pipeline import services, store
from pipeline.core import lifecycle
from pipeline.core.config import Settings
from pipeline.core.digest_format import parse_digest
from pipeline.core.models import (
    UNSUBSCRIBE_PLACEHOLDER,
    EmailVariant,
    Issue,
    Subscriber,
    has_hangul,
)
from tests.support import FIXTURES, write_newsletter

DAY = date(2024, 12, 5)
USER = "digest-sender"
PASSWORD = "correct horse battery staple"
SECRET = "test-secret-3f9a0c71d2e84b6f"


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (openssl CLI); returns (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


@dataclass
class Received:
    """One message the server accepted."""

    sender: str
    recipients: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Sink:
    """The aiosmtpd handler: records accepted messages (or only counts them) and injects
    faults: `defer[addr] = n` answers 451 to RCPT n times, `reject[addr]` answers 550,
    `drop_after = n` closes the connection right after the n-th accepted message,
    `reject_sender` answers MAIL FROM with that reply, `defer_until[addr] = n` answers 451
    to RCPT of addr until n messages have been accepted, `delay` seconds pass before each
    DATA reply (a relay's answer time; connections wait concurrently, as on a real relay)."""

    keep: bool = True
    defer: dict[str, int] = field(default_factory=dict)
    reject: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None
    reject_sender: str | None = None
    defer_until: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    messages: list[Received] = field(default_factory=list)
    count: int = 0
    sessions: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    notify_at: int | None = None
    hold_at: int | None = None  # keep the n-th message's DATA reply back (a message in flight)
    lock: threading.Lock = field(default_factory=threading.Lock)
    per_session: dict[int, int] = field(default_factory=dict)  # messages per connection

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if session.ssl is not None or not server.tls_context:  # one per connection
            self.sessions += 1
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if self.reject_sender:
            return self.reject_sender
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.reject:
            return self.reject[address]
        with self.lock:
            if self.defer.get(address, 0) > 0:
                self.defer[address] -= 1
                return "451 4.3.0 Temporary failure, try again later"
            if self.count < self.defer_until.get(address, 0):
                return "451 4.7.1 Throttled, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.count += 1
            self.per_session[id(session)] = self.per_session.get(id(session), 0) + 1
            if self.keep:
                self.messages.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
                )
            if self.notify_at is not None and self.count >= self.notify_at:
                self.arrived.set()
            drop = self.drop_after is not None and self.count == self.drop_after
            hold = self.hold_at is not None and self.count == self.hold_at
        if hold:
            self.arrived.set()
            await asyncio.sleep(30)
        if drop:  # close after the 250 reply is flushed: the client finds a dead connection
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 2.0.0 Message accepted"

    def by_recipient(self) -> dict[str, list[Received]]:
        out: dict[str, list[Received]] = {}
        for m in self.messages:
            for r in m.recipients:
                out.setdefault(r, []).append(m)
        return out


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


class _Controller(Controller):
    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]  # bound to port 0: learn the port
        super()._trigger_server()


@contextmanager
def smtp_server(
    cert: Path, key: Path, sink: Sink | None = None, security: str = "starttls",
    smtputf8: bool = False,
) -> Iterator[tuple[Sink, int]]:
    """An SMTP server on 127.0.0.1 (a free port) that requires AUTH and, by default, STARTTLS
    (`security="tls"`: implicit TLS; `"none"`: plain text, AUTH still required); with
    `smtputf8` it offers SMTPUTF8."""
    sink = sink or Sink()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    tls: dict[str, Any] = {
        "starttls": {"tls_context": ctx, "require_starttls": True, "auth_require_tls": True},
        # aiosmtpd counts only STARTTLS as TLS for AUTH; implicit TLS is encrypted all along
        "tls": {"ssl_context": ctx, "auth_require_tls": False},
        "none": {"auth_require_tls": False},
    }[security]
    controller = _Controller(
        sink, hostname="127.0.0.1", port=0, server_hostname="localhost",
        auth_required=True, authenticator=_authenticate, enable_SMTPUTF8=smtputf8, **tls,
    )
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


# --- a newsletter with a built, approved issue ------------------------------------------------


def smtp_tables(*, port: int = 25, transport: str = "smtp", rate: float = 1000.0,
                approval: bool = True, retries: int = 3, connections: int = 4,
                **more: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The config tables of a newsletter that sends to 127.0.0.1:port (STARTTLS, AUTH as
    USER); `more` adds tables or keys to one, e.g. `delivery={"max_message_bytes": 200_000}`."""
    tables: dict[str, dict[str, Any]] = {
        "newsletter": {"title": "ML Papers Digest", "languages": ["ko", "en"],
                       "base_url": "https://digest.example.org",
                       "from": "ML Papers Digest <digest@example.org>"},
        "approval": {"required": approval},
        "delivery": {"transport": transport, "rate_per_second": rate,
                     "connections": connections},
        "smtp": {"host": "127.0.0.1", "port": port, "security": "starttls", "username": USER,
                 "timeout": 10.0, "retries": retries},
    }
    for name, table in more.items():
        tables[name] = {**tables.get(name, {}), **table}
    return tables


def _entries(text: str) -> list[list[str]]:
    """The reference digest split into entries (title, authors, abstract, notes..., tags)."""
    entries: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        current.append(line)
        if line.startswith("#"):
            entries.append(current)
            current = []
    return entries


def make_variants() -> list[EmailVariant]:
    """Realistic variants from the reference issue: the text part in the digest format, an
    HTML part, each with the unsubscribe placeholder in a link."""
    source = (FIXTURES / "digest" / "2024-12-05.txt").read_text(encoding="utf-8")
    entries = _entries(source)[:6]
    out = []
    for variant in ("ko", "en", "all"):
        text_lines = ["2024년 12월 5일" if variant != "en" else "December 5, 2024"]
        html_parts = [f'<html lang="{variant}"><body><h1>ML Papers Digest</h1>']
        for e in entries:
            title, authors, abstract, *notes, tags = e
            kept = [n for n in notes if variant == "all" or has_hangul(n) == (variant == "ko")]
            text_lines += [title, authors, abstract, *kept, tags]
            html_parts.append(
                f"<h2>{html.escape(title)}</h2><p>{html.escape(authors)}</p>"
                + "".join(f"<p>{html.escape(n)}</p>" for n in kept)
                + f"<p>{html.escape(tags)}</p>"
            )
        text_lines += ["", f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}"]
        html_parts.append(
            f'<p><a href="{UNSUBSCRIBE_PLACEHOLDER}">Unsubscribe</a></p></body></html>'
        )
        when = "December 5, 2024" if variant == "en" else "2024년 12월 5일"
        text = "\n".join(text_lines) + "\n"
        out.append(EmailVariant(variant, f"ML Papers Digest — {when}", "".join(html_parts), text))
    return out


def store_build(
    conn: Any, day: date, sha: str, variants: list[EmailVariant], issue: Issue | None = None
) -> None:
    """Record a build as `digest build` does (state, hashes, summary, Issue); the Issue
    defaults to the reference issue's first six entries, which the variants show."""
    if issue is None:
        parsed = parse_digest((FIXTURES / "digest" / "2024-12-05.txt").read_text("utf-8"))
        issue = Issue(day, "ML Papers Digest", parsed.entries[:6])
    built = store.variants_hash(sha, variants)
    state = lifecycle.state_after_build(store.get_issue_record(conn, day), built)
    store.save_built_issue(conn, day, state, sha, built, variants,
                           lifecycle.summarize_build(issue, variants), issue)


def build_issue(settings: Settings, day: date = DAY, approve: bool = True) -> list[EmailVariant]:
    """Simulate `digest build` (+ `digest approve`): a draft file and stored variants."""
    draft = services.draft_path(settings, day)
    draft.parent.mkdir(parents=True, exist_ok=True)
    draft.write_bytes((FIXTURES / "digest" / "2024-12-05.txt").read_bytes())
    variants = make_variants()
    conn = services.open_store(settings)
    try:
        sha = services.file_sha(draft)
        assert sha is not None
        store_build(conn, day, sha, variants)
    finally:
        conn.close()
    if approve:
        services.approve(settings, day, quiet_runtime())
    return variants


def add_subscribers(settings: Settings, count: int, start: int = 0) -> list[Subscriber]:
    """`count` active subscribers, languages cycling ko, en, all."""
    langs = settings.variants
    subs = [
        Subscriber(f"reader{i:05d}@example.org", langs[i % len(langs)], (), "active")
        for i in range(start, start + count)
    ]
    conn = services.open_store(settings)
    try:
        with store.transaction(conn):
            saved = [store.save_subscriber(conn, s)[1] for s in subs]
    finally:
        conn.close()
    return saved


def quiet_runtime(**kwargs: Any) -> Any:
    """A Runtime whose echo goes nowhere (pass `echo=lines.append` to keep the lines)."""
    from pipeline.core.runtime import Runtime

    kwargs.setdefault("echo", lambda _m: None)
    return Runtime(**kwargs)


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The real `digest serve` (waitress) in its own process on a free port; yields its base
    URL. It inherits the environment (DIGEST_SECRET, SMTP password, trusted CA)."""
    with serving_logged(settings) as (url, _log):
        yield url


@contextmanager
def serving_logged(settings: Settings) -> Iterator[tuple[str, list[str]]]:
    """`serving`, also yielding the server's log lines (stderr, read as they come, so a
    busy server never blocks on a full pipe)."""
    assert settings.source is not None
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(settings.source), "serve",
         "--host", "127.0.0.1", "--port", "0"],
        cwd=Path(__file__).resolve().parent.parent, stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        found = re.match(r"serving on (http://127\.0\.0\.1:\d+)", line)
        assert found, line + proc.stderr.read().decode()
        stderr = proc.stderr
        reader = threading.Thread(
            target=lambda: lines.extend(raw.decode("utf-8", "replace") for raw in stderr),
            daemon=True,
        )
        reader.start()
        yield found.group(1), lines
    finally:
        proc.terminate()
        proc.wait(10)


def wait_for(predicate: Any, timeout: float = 15.0) -> Any:
    """Poll `predicate` until it returns something truthy (the background mail worker sends
    asynchronously); fails the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            assert value, "timed out waiting"
            return value
        time.sleep(0.05)


def newsletter(root: Path, **config: Any) -> Settings:
    """Settings of a newsletter in `root` that sends to 127.0.0.1 (tests/support.py's
    write_newsletter with smtp_tables(**config))."""
    return write_newsletter(root, **smtp_tables(**config))

"""Issue #22, whole-message size and DKIM: a 5 MB note or a 500-entry issue makes an email
that fits (cut, with a link to the web page, and the build says so); a relay refusing a
message for its size fails that message, not the sender; DKIM signatures verify with dkimpy
against the public key. Real aiosmtpd on loopback for the relay."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.errors import ConfigError, DeliveryError
from pipeline.core.models import Entry, Issue
from pipeline.deliver.mail import MessageBuilder
from pipeline.publish.render import Renderer
from pipeline.publish.size_guard import EMAIL_COMMENTARY_CHARS, layout_note
from tests.deliver_support import (
    DAY,
    PASSWORD,
    SECRET,
    Sink,
    _authenticate,
    _Controller,
    add_subscribers,
    build_issue,
    make_cert,
    make_variants,
    newsletter,
    quiet_runtime,
)
from tests.render_support import big_issue

NOW = datetime(2024, 12, 5, 9, 0, tzinfo=UTC)


def _whole_message(settings: Settings, variant: object) -> bytes:
    builder = MessageBuilder(settings, DAY, [variant])  # type: ignore[list-item]
    name = variant.variant  # type: ignore[attr-defined]
    return builder.build(name, "reader@example.org", "https://digest.example.org/unsubscribe/"
                         + "t" * 60, "mailto:u@example.org", NOW).data


def test_a_5_mb_note_is_cut_in_the_email_with_a_link(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    huge = "이 논문은 중요하다. " * 400_000  # ~5 MB of Korean commentary
    entry = Entry(title="A paper with a long note", authors=("A. Author",), abstract="x",
                  commentary=(huge, "A short English note."), tags=("llm",),
                  arxiv_id="2412.01981")
    issue = Issue(DAY, "ML Papers Digest", (entry,))
    variants = Renderer(settings).emails(issue)
    for v in variants:
        data = _whole_message(settings, v)
        assert len(data) < settings.delivery.max_message_bytes
        assert len(data) < 200_000  # the cut leaves a normal-sized message
        if v.variant != "en":
            assert v.layout != "full" and "cut to" in v.reason
            assert "https://digest.example.org/" in v.text and " … " in v.text
            assert len(v.text) < EMAIL_COMMENTARY_CHARS * 3
    note = layout_note(variants)
    assert note is not None and "the web page has it whole" in note  # build says so


def test_a_500_entry_issue_stays_under_the_html_aim(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    issue = big_issue(500)
    issue = replace(issue, entries=tuple(replace(e, arxiv_id=f"2412.{n:05d}")
                                         for n, e in enumerate(issue.entries)))
    for v in Renderer(settings).emails(issue):
        assert len(v.html.encode("utf-8")) <= 90 * 1024, v.variant
        assert "contents list cut" in v.reason or "papers (the rest on the web)" in v.reason
        assert len(_whole_message(settings, v)) < settings.delivery.max_message_bytes


def test_the_text_part_is_cut_when_the_whole_message_would_be_too_big(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox", delivery={"max_message_bytes": 200000})
    issue = big_issue(400)
    variants = Renderer(settings).emails(issue)
    for v in variants:
        data = _whole_message(settings, v)
        assert len(data) <= 200_000, (v.variant, len(data))
        assert "the text part shows" in v.reason


def test_a_message_over_the_limit_is_refused_before_sending(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox", delivery={"max_message_bytes": 200000})
    big = make_variants()[0]
    big = replace(big, html=big.html + "<p>" + "x" * 300_000 + "</p>")
    with pytest.raises(DeliveryError) as info:
        _whole_message(settings, big)
    assert info.value.key == "delivery.max_message_bytes"


def test_config_caps_max_message_bytes_under_10_mb(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        newsletter(tmp_path, transport="outbox", delivery={"max_message_bytes": 10485760})
    assert info.value.key == "delivery.max_message_bytes"


# --- a relay with a size limit ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@contextmanager
def small_relay(cert: tuple[Path, Path], limit: int) -> Iterator[tuple[Sink, int]]:
    """aiosmtpd with STARTTLS + AUTH that advertises SIZE `limit` (as relays do)."""
    sink = Sink()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    controller = _Controller(sink, hostname="127.0.0.1", port=0, server_hostname="localhost",
                             auth_required=True, authenticator=_authenticate, tls_context=ctx,
                             require_starttls=True, auth_require_tls=True,
                             data_size_limit=limit)
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


def test_a_relay_refusing_the_size_fails_the_message_not_the_sender(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cert: tuple[Path, Path]
) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    with small_relay(cert, 8_000) as (sink, port):
        settings = newsletter(tmp_path, port=port)
        build_issue(settings)
        subs = add_subscribers(settings, 3)
        lines: list[str] = []
        services.send(settings, DAY, quiet_runtime(echo=lines.append))
    assert not sink.messages
    conn = services.open_store(settings)
    try:
        assert store.delivery_counts(conn, DAY) == {"failed": len(subs)}
        response = conn.execute("SELECT response FROM deliveries LIMIT 1").fetchone()[0]
    finally:
        conn.close()
    assert "552" in response and "delivery.max_message_bytes" in response
    assert "newsletter.from" not in response


# --- DKIM ------------------------------------------------------------------------------------


def test_dkim_signature_verifies_against_the_public_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    settings = newsletter(tmp_path, transport="outbox", delivery={
        "dkim_key": "dkim.pem", "dkim_selector": "digest2024"})
    data = _whole_message(settings, make_variants()[0])
    assert data.startswith(b"DKIM-Signature: ")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"d=example.org" in head and b"s=digest2024" in head
    assert b"list-unsubscribe-post" in head.lower()
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(data, dnsfunc=dns)
    assert asked == [b"digest2024._domainkey.example.org."]
    tampered = data.replace(b"ML Papers Digest", b"ML Papers Digesr", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_a_missing_dkim_key_is_a_config_error(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox", delivery={
        "dkim_key": "missing.pem", "dkim_selector": "s"})
    with pytest.raises(ConfigError) as info:
        MessageBuilder(settings, DAY, make_variants())
    assert info.value.key == "delivery.dkim_key"
    with pytest.raises(ConfigError) as half:
        newsletter(tmp_path / "b", transport="outbox", delivery={"dkim_key": "k.pem"})
    assert half.value.key == "delivery.dkim_selector"

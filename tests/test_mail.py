"""Message building (pure), signed tokens, and the outbox and SMTP transports."""

from __future__ import annotations

import ssl
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline.core.config import Settings, SmtpSettings
from pipeline.core.errors import DeliveryError
from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER
from pipeline.deliver import tokens
from pipeline.deliver.mail import (
    MessageBuilder,
    OutboxTransport,
    Outgoing,
    RateLimiter,
    RecipientRejected,
    SmtpTransport,
    message_id,
    unsubscribe_mailto,
)
from tests.deliver_support import (
    DAY,
    PASSWORD,
    USER,
    make_variants,
    newsletter,
    quiet_runtime,
    smtp_server,
)
from tests.support import FakeClock

NOW = datetime(2024, 12, 5, 9, 0, tzinfo=UTC)
URL = "https://digest.example.org/unsubscribe/12." + "x" * 43


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return newsletter(tmp_path, transport="outbox")


def _parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _build(settings: Settings, variant: str = "ko", to: str = "ann@example.org",
           prefix: str = "") -> Outgoing:
    builder = MessageBuilder(settings, DAY, make_variants(), subject_prefix=prefix)
    return builder.build(variant, to, URL, unsubscribe_mailto(settings, "12.xyz"), NOW)


def test_message_is_multipart_alternative_text_first_with_every_header(
    settings: Settings,
) -> None:
    out = _build(settings)
    variants = {v.variant: v for v in make_variants()}
    msg = _parse(out.data)
    assert msg.defects == [] and all(p.defects == [] for p in msg.walk())
    assert msg["From"] == "ML Papers Digest <digest@example.org>"
    assert msg["To"] == "ann@example.org"
    assert msg["Subject"] == variants["ko"].subject  # Korean, RFC 2047-encoded on the wire
    assert b"=?utf-8?" in out.data.split(b"\r\n\r\n")[0]
    assert msg["Date"].datetime == NOW
    assert msg["Message-ID"] == out.message_id == message_id(settings, DAY, "ann@example.org")
    assert msg["List-Id"] == '"ML Papers Digest" <ml-papers-digest.example.org>'
    assert msg["List-Unsubscribe"] == (
        f"<{URL}>, <mailto:unsubscribe@example.org?subject=unsubscribe%2012.xyz>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert (text.get_param("format"), text.get_param("delsp")) == ("flowed", "no")
    assert text.get_content() == variants["ko"].text.replace(UNSUBSCRIBE_PLACEHOLDER, URL).replace(
        "\n", "\r\n")  # text/* in canonical form
    assert html.get_content() == variants["ko"].html.replace(UNSUBSCRIBE_PLACEHOLDER, URL)
    assert UNSUBSCRIBE_PLACEHOLDER.encode() not in out.data
    assert all(len(line) <= 998 for line in out.data.split(b"\r\n"))
    assert b"\n" not in out.data.replace(b"\r\n", b"")  # CRLF line ends only


def test_list_unsubscribe_stays_on_one_line_however_long(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    long_url = "https://a-very-long-host-name.newsletters.example.org/unsubscribe/" + "9" * 90
    out = MessageBuilder(settings, DAY, make_variants()).build(
        "en", "ann@example.org", long_url, "mailto:u@example.org?subject=x", NOW
    )
    head = out.data.split(b"\r\n\r\n")[0].decode("ascii").split("\r\n")
    line = next(h for h in head if h.startswith("List-Unsubscribe:"))
    assert line == f"List-Unsubscribe: <{long_url}>, <mailto:u@example.org?subject=x>"
    assert head[head.index(line) + 1].startswith("List-Unsubscribe-Post:")  # no continuation


def test_message_id_is_stable_per_issue_and_recipient(settings: Settings) -> None:
    first, again = _build(settings), _build(settings)
    assert first.message_id == again.message_id
    assert first.data == again.data  # same inputs, same bytes
    assert _build(settings, to="bob@example.org").message_id != first.message_id
    assert message_id(settings, date(2024, 12, 6), "ann@example.org") != first.message_id
    assert _build(settings, prefix="[PREVIEW] ").message_id != first.message_id
    assert first.message_id.endswith("@example.org>")


def test_each_variant_carries_its_own_content(settings: Settings) -> None:
    bodies = {v: _parse(_build(settings, v).data).get_body(("plain",)) for v in ("ko", "en")}
    ko, en = (b.get_content() for b in bodies.values() if b is not None)
    assert "이 연구" in ko or "연구" in ko
    assert "연구" not in en.split("\n", 1)[1]  # no Korean commentary in the English variant


def test_tokens_bind_purpose_subscriber_address_and_secret() -> None:
    secret = b"s3cret"
    token = tokens.sign(secret, "unsubscribe", 42, "Ann@example.org")
    assert tokens.subscriber_id(token) == 42
    assert tokens.verify(secret, "unsubscribe", token, "ann@EXAMPLE.org")
    assert not tokens.verify(b"other", "unsubscribe", token, "ann@example.org")
    assert not tokens.verify(secret, "confirm", token, "ann@example.org")
    assert not tokens.verify(secret, "unsubscribe", token, "bob@example.org")
    assert not tokens.verify(secret, "unsubscribe", "43" + token[2:], "ann@example.org")
    assert not tokens.verify(secret, "unsubscribe", token[:-1], "ann@example.org")
    for bad in ("", "42", "x.y", ".abc", "42.", "-1.abc"):
        with pytest.raises(tokens.TokenError):
            tokens.subscriber_id(bad)
        assert not tokens.verify(secret, "unsubscribe", bad, "ann@example.org")


def test_outbox_writes_one_file_per_recipient_atomically(tmp_path: Path,
                                                          settings: Settings) -> None:
    out = _build(settings)
    transport = OutboxTransport(tmp_path / "outbox" / "2024-12-05")
    transport.open()
    transport.send(out)
    transport.send(out)  # rewriting is harmless
    transport.close()
    files = sorted((tmp_path / "outbox" / "2024-12-05").iterdir())
    assert [f.name for f in files] == ["ann@example.org.eml"]
    assert files[0].read_bytes() == out.data


def _smtp(cert: Path, port: int, security: str, clock: FakeClock,
          rate: float | RateLimiter = 1000.0,
          password: str = PASSWORD) -> SmtpTransport:
    settings = SmtpSettings(host="127.0.0.1", port=port, security=security, username=USER,
                            timeout=10.0)
    rt = quiet_runtime(sleep=clock.sleep, monotonic=clock.monotonic)
    return SmtpTransport(settings, password, rt, rate,
                         context=ssl.create_default_context(cafile=str(cert)))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["starttls", "tls", "none"])
def test_smtp_security_modes_deliver_over_one_connection(
    cert: tuple[Path, Path], settings: Settings, clock: FakeClock, security: str
) -> None:
    with smtp_server(*cert, security=security) as (sink, port):
        transport = _smtp(cert[0], port, security, clock, rate=5)
        transport.open()
        for to in ("a@example.org", "b@example.org", "c@example.org"):
            transport.send(_build(settings, to=to))
        transport.close()
    assert [m.recipients for m in sink.messages] == [["a@example.org"], ["b@example.org"],
                                                     ["c@example.org"]]
    assert sink.sessions == 1
    assert clock.sleeps == [pytest.approx(0.2), pytest.approx(0.2)]  # 5 per second


def test_connections_sharing_a_rate_limiter_share_its_rate(
    cert: tuple[Path, Path], settings: Settings, clock: FakeClock
) -> None:
    with smtp_server(*cert) as (sink, port):
        limiter = RateLimiter(5, clock.monotonic, clock.sleep)
        first, second = (_smtp(cert[0], port, "starttls", clock, rate=limiter) for _ in "ab")
        for transport in (first, second):
            transport.open()
        for n in range(6):  # taking turns: each connection alone would wait only every other
            (first, second)[n % 2].send(_build(settings, to=f"r{n}@example.org"))
        for transport in (first, second):
            transport.close()
    assert sink.sessions == 2 and sink.count == 6
    assert clock.sleeps == [pytest.approx(0.2)] * 5  # 5 per second for the two together


def test_rate_zero_never_waits(clock: FakeClock) -> None:
    limiter = RateLimiter(0, clock.monotonic, clock.sleep)
    for _ in range(100):
        limiter.wait()
    assert clock.sleeps == []


def test_smtp_rejection_carries_the_server_reply(
    cert: tuple[Path, Path], settings: Settings, clock: FakeClock
) -> None:
    with smtp_server(*cert) as (sink, port):
        sink.reject["gone@example.org"] = "550 5.1.1 Mailbox unavailable"
        transport = _smtp(cert[0], port, "starttls", clock)
        transport.open()
        with pytest.raises(RecipientRejected) as info:
            transport.send(_build(settings, to="gone@example.org"))
        transport.send(_build(settings, to="ok@example.org"))  # the connection is still good
        transport.close()
    assert info.value.reply == "550 5.1.1 Mailbox unavailable"
    assert [m.recipients for m in sink.messages] == [["ok@example.org"]]


def test_smtp_wrong_password_and_unreachable_server(
    cert: tuple[Path, Path], clock: FakeClock
) -> None:
    with smtp_server(*cert) as (_sink, port):
        transport = _smtp(cert[0], port, "starttls", clock, password="nope")
        with pytest.raises(DeliveryError, match=r"refused the login of 'digest-sender' \(535"):
            transport.open()
    transport = _smtp(cert[0], port, "starttls", clock)  # the server is gone now
    with pytest.raises(DeliveryError, match=r"cannot connect to SMTP server 127\.0\.0\.1:"):
        transport.open()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_untrusted_certificate_is_a_clear_error(
    cert: tuple[Path, Path], clock: FakeClock, security: str
) -> None:
    with smtp_server(*cert, security=security) as (_sink, port):
        settings = SmtpSettings(host="127.0.0.1", port=port, security=security, username=USER)
        rt = quiet_runtime(sleep=clock.sleep, monotonic=clock.monotonic)
        transport = SmtpTransport(settings, PASSWORD, rt, 10.0,
                                  context=ssl.create_default_context())
        with pytest.raises(DeliveryError, match="TLS certificate not trusted"):
            transport.open()

"""Email messages (built per recipient from the pre-rendered variant) and their transports."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import idna

from pipeline.core.config import Settings, SmtpSettings
from pipeline.core.errors import ConfigError, DeliveryError
from pipeline.core.files import write_atomic
from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER as PLACEHOLDER
from pipeline.core.models import EmailVariant
from pipeline.core.runtime import Runtime

CRLF = b"\r\n"


@dataclass(frozen=True)
class Outgoing:
    """One message ready for a transport: envelope sender and recipient, and the bytes."""

    sender: str
    recipient: str  # as it goes on the wire (mail.wire_address)
    message_id: str
    data: bytes

    @property
    def smtputf8(self) -> bool:
        """The recipient has a non-ASCII name: only SMTPUTF8 carries it."""
        return not self.recipient.isascii()


class RecipientError(DeliveryError):
    """The server's last word on one message; the send goes on with the others."""

    verb = "answered"

    def __init__(self, recipient: str, code: int, reply: str) -> None:
        self.reason = f"{self.verb} by the server: {code} {reply}"  # the message, less whom
        super().__init__(f"{recipient}: {self.reason}")
        self.recipient = recipient
        self.code = code
        self.reply = f"{code} {reply}"


class RecipientRejected(RecipientError):
    """The server refused this one message for good (a 5xx reply)."""

    verb = "refused"


class RecipientDeferred(RecipientError):
    """The server kept answering 4xx for this message after every retry."""

    verb = "deferred"


class RecipientUndeliverable(RecipientRejected):
    """An address this transport cannot put on the wire (a non-ASCII name before the @ and
    a server without SMTPUTF8): recorded as failed like a 5xx, and the send goes on."""

    def __init__(self, recipient: str, reason: str) -> None:
        self.reason = self.reply = f"not sent: {reason}"
        DeliveryError.__init__(self, f"{recipient}: {self.reason}")
        self.recipient = recipient
        self.code = 0


def wire_address(address: str) -> str:
    """The address as SMTP and the To header carry it: an internationalised domain
    IDNA-encoded (user@exämple.org -> user@xn--exmple-cua.org); a non-ASCII name before the
    @ stays UTF-8, which only a server with SMTPUTF8 accepts."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return address  # stays non-ASCII: refused as undeliverable, never a crash


class Transport(Protocol):
    """Delivers messages one at a time; raises RecipientRejected/Deferred for one message,
    DeliveryError when nothing more can be sent."""

    def open(self) -> None:
        """Get ready to send (connect and log in); fails early on a wrong password."""

    def send(self, message: Outgoing) -> None:
        """Deliver one message, or raise."""

    def close(self) -> None:
        """Release the connection."""


# --- building messages (pure) ----------------------------------------------------------------


def _header(name: str, value: str) -> bytes:
    """One header, RFC 2047-encoded and folded as the stdlib SMTP policy does."""
    folded: str = SMTP.header_factory(name, value).fold(policy=SMTP)
    return folded.encode("ascii")


def _base64_lines(raw: bytes) -> bytes:
    """Base64 in CRLF-ended lines of 76 characters (RFC 2045)."""
    return base64.encodebytes(raw).replace(b"\n", CRLF)


def _part_header(content_type: str, params: dict[str, str]) -> bytes:
    """A body part's headers (base64, UTF-8, the given Content-Type parameters), as the
    stdlib writes them."""
    part = MIMEPart(policy=SMTP)
    part["Content-Type"] = content_type
    for name, value in {"charset": "utf-8", **params}.items():
        part.set_param(name, value)
    part["Content-Transfer-Encoding"] = "base64"
    return bytes(part)


# The text part is RFC 3676 format=flowed (render.email_text wraps it): a line ending in a
# space is a soft break that capable clients join and reflow.
_PART_PARAMS = {"text/plain": {"format": "flowed", "delsp": "no"}, "text/html": {}}


class _BodyTemplate:
    """One MIME body part with the unsubscribe placeholder, encoded once: the base64 of
    everything before the first placeholder (cut at a 57-byte line boundary) is reused for
    every recipient, so only the short rest is encoded per message."""

    def __init__(self, content_type: str, text: str) -> None:
        if content_type == "text/plain":  # text in its canonical form: CRLF line ends
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        first, *rest = [p.encode("utf-8") for p in text.split(PLACEHOLDER)]
        cut = len(first) - len(first) % 57  # 57 bytes = one 76-character base64 line
        self.fixed = _part_header(content_type, _PART_PARAMS[content_type])
        self.fixed += _base64_lines(first[:cut])
        self.head = first[cut:]
        self.rest = rest

    def render(self, url: str) -> bytes:
        tail = url.encode("utf-8").join([self.head, *self.rest])
        return self.fixed + _base64_lines(tail)


def list_id(settings: Settings) -> str:
    """The List-Id value: the newsletter's title and `<slug.domain>` (RFC 2919)."""
    title = settings.newsletter.title
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "digest"
    phrase = f'"{title}" ' if title.isascii() and '"' not in title else ""
    return f"{phrase}<{slug}.{sender_domain(settings)}>"


def sender_domain(settings: Settings) -> str:
    """The domain of the From address (names Message-IDs and the list)."""
    return parseaddr(settings.newsletter.from_)[1].rpartition("@")[2] or "localhost"


def message_id(settings: Settings, day: date, recipient: str, salt: str = "") -> str:
    """A Message-ID that is the same every time this issue goes to this recipient."""
    return _message_id(sender_domain(settings), day, recipient, salt)


def _message_id(domain: str, day: date, recipient: str, salt: str) -> str:
    key = f"{day.isoformat()}\0{recipient.casefold()}\0{salt}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"<{day.strftime('%Y%m%d')}.{digest[:24]}@{domain}>"


class MessageBuilder:
    """Builds each recipient's message from one issue's variants: the constant headers are
    encoded once, and per recipient only the address, ids and unsubscribe URL change."""

    def __init__(
        self, settings: Settings, day: date, variants: list[EmailVariant], subject_prefix: str = "",
        salt: str | None = None,
    ) -> None:
        self.settings = settings
        self.day = day
        self.salt = subject_prefix if salt is None else salt
        self.domain = sender_domain(settings)
        self.sender = parseaddr(settings.newsletter.from_)[1]
        if not self.sender:
            raise DeliveryError(
                "newsletter.from has no address (expected e.g. Digest <digest@example.org>)",
                key="newsletter.from",
            )
        self.max_bytes = settings.delivery.max_message_bytes
        self.dkim = _dkim_signer(settings, self.domain)
        common = _header("From", settings.newsletter.from_) + _header(
            "List-Id", list_id(settings)
        )
        self._heads = {
            v.variant: common + _header("Subject", subject_prefix + v.subject) for v in variants
        }
        self._bodies = {
            v.variant: (_BodyTemplate("text/plain", v.text), _BodyTemplate("text/html", v.html))
            for v in variants
        }
        for v in variants:  # too big for the relay: refused now, before anyone is claimed
            self.build(v.variant, "r" * 64 + "@" + "d" * 60 + ".org", "https://"
                       + "u" * 250, "mailto:" + "m" * 250, datetime(2000, 1, 1, tzinfo=UTC))

    def build(
        self, variant: str, recipient: str, unsubscribe_url: str, mailto: str, now: datetime
    ) -> Outgoing:
        """The whole message for one recipient: multipart/alternative, text first."""
        text, html = self._bodies[variant]
        mid = _message_id(self.domain, self.day, recipient, self.salt)
        recipient = wire_address(recipient)
        boundary = f"=_{mid[1:25]}"
        # RFC 8058 wants both URIs; one unfolded line, as some receivers misread folded ones.
        unsubscribe = f"List-Unsubscribe: <{unsubscribe_url}>, <{mailto}>\r\n".encode("ascii")
        head = (
            self._heads[variant]
            # an address is never RFC 2047-encoded: ASCII (IDNA domain), or UTF-8 for SMTPUTF8
            + f"To: {recipient}\r\nDate: {format_datetime(now)}\r\n".encode()
            + f"Message-ID: {mid}\r\n".encode("ascii")
            + unsubscribe
            + b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            + b"MIME-Version: 1.0\r\n"
            + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode()
        )
        sep = f"--{boundary}\r\n".encode()
        data = b"".join(
            (
                head,
                sep,
                text.render(unsubscribe_url),
                sep,
                html.render(unsubscribe_url),
                f"--{boundary}--\r\n".encode(),
            )
        )
        if len(data) > self.max_bytes:  # every part and header counted, as a relay counts
            raise DeliveryError(
                f"the {variant} message is {len(data):,} bytes, over delivery."
                f"max_message_bytes = {self.max_bytes:,}: run `digest build` again (it cuts "
                "the email to fit, with a link to the web page)", key="delivery.max_message_bytes")
        if self.dkim is not None:
            data = self.dkim(data) + data
        return Outgoing(self.sender, recipient, mid, data)


# Signed by DKIM (RFC 6376; RFC 8058 asks that List-Unsubscribe and -Post be covered).
DKIM_HEADERS = (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"List-Id",
                b"List-Unsubscribe", b"List-Unsubscribe-Post", b"MIME-Version",
                b"Content-Type")


def _dkim_signer(settings: Settings, from_domain: str) -> Callable[[bytes], bytes] | None:
    """A function giving the DKIM-Signature header for a message (None: not signing)."""
    path = settings.dkim_key_path
    if path is None:
        return None
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the DKIM key {path}: {exc.strerror}",
                          key="delivery.dkim_key") from exc
    import dkim

    selector = settings.delivery.dkim_selector.encode("ascii")
    domain = (settings.delivery.dkim_domain or from_domain).encode("ascii")
    try:  # one trial signature, so a bad key fails before the first message
        dkim.sign(b"From: a@b\r\n\r\nx\r\n", selector, domain, key,
                  include_headers=[b"From"])
    except dkim.DKIMException as exc:
        raise ConfigError(f"the DKIM key {path} cannot sign: {exc}",
                          key="delivery.dkim_key") from exc

    def sign(data: bytes) -> bytes:
        signature: bytes = dkim.sign(data, selector, domain, key, canonicalize=(b"relaxed", b"relaxed"),
                                     include_headers=list(DKIM_HEADERS))
        return signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    return sign


# The token of previews and test copies: its link and mailto name nobody.
PREVIEW_TOKEN = "preview"


def unsubscribe_url(settings: Settings, token: str) -> str:
    """The one-click unsubscribe URL served by `digest serve`."""
    return f"{settings.newsletter.base_url.rstrip('/')}/unsubscribe/{token}"


def unsubscribe_mailto(settings: Settings, token: str) -> str:
    """The mailto: half of List-Unsubscribe; the token in the subject names the reader."""
    subject = quote(f"unsubscribe {token}")
    return f"mailto:{settings.newsletter.unsubscribe_mailto}?subject={subject}"


def simple_message(
    settings: Settings, recipient: str, subject: str, text: str, now: datetime, mid: str
) -> Outgoing:
    """A plain-text message (the subscription confirmation); off the hot path, so the stdlib
    builds it whole."""
    recipient = wire_address(recipient)
    msg = EmailMessage(policy=SMTP if recipient.isascii() else SMTPUTF8)
    msg["From"] = settings.newsletter.from_
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = mid
    msg.set_content(text, cte="base64")  # 7-bit safe on servers without 8BITMIME
    return Outgoing(parseaddr(settings.newsletter.from_)[1], recipient, mid, msg.as_bytes())


# --- transports ------------------------------------------------------------------------------


def outbox_file(folder: Path, recipient: str) -> Path:
    """Where the outbox keeps one recipient's message."""
    return folder / f"{recipient.replace('/', '_')}.eml"


class OutboxTransport:
    """Writes each message to <folder>/<email>.eml (atomically) instead of sending it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self) -> None:
        """Create the folder."""
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, message: Outgoing) -> None:
        """Write the message file."""
        write_atomic(outbox_file(self.folder, message.recipient), message.data)

    def close(self) -> None:
        """Nothing to release."""


class RateLimiter:
    """At most `rate` messages per second (0 = no limit) over every connection that shares
    it: each message takes the next free slot on the injected clock, one `1/rate` apart
    (a token bucket holding one token, so no burst exceeds the relay's rate). Thread-safe:
    the slot is taken under a lock, the wait for it happens outside, in the caller's thread."""

    def __init__(
        self, rate: float, monotonic: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.monotonic = monotonic
        self.sleep = sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until this caller may send one message."""
        if not self.interval:
            return
        with self._lock:
            now = self.monotonic()
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


class SmtpTransport:
    """SMTP with STARTTLS, implicit TLS or none; AUTH; ONE connection reused and reopened
    when dropped; paced by `rate` (messages per second, or a RateLimiter shared with other
    connections) on the injected clock; 4xx retried with exponential backoff in this
    connection's own thread, 5xx raised as RecipientRejected."""

    def __init__(
        self,
        smtp: SmtpSettings,
        password: str,
        rt: Runtime,
        rate: float | RateLimiter,
        context: ssl.SSLContext | None = None,
        backoff: float = 2.0,
    ) -> None:
        self.smtp = smtp
        self.password = password
        self.rt = rt
        self.limiter = rate if isinstance(rate, RateLimiter) else RateLimiter(
            rate, rt.monotonic, rt.sleep
        )
        self.context = context or ssl.create_default_context()
        self.backoff = backoff
        self._conn: smtplib.SMTP | None = None
        self.reconnects = 0

    @property
    def _where(self) -> str:
        return f"{self.smtp.host}:{self.smtp.port}"

    def _connect(self) -> smtplib.SMTP:
        """A new logged-in connection. A refused login, a missing STARTTLS and an untrusted
        certificate are DeliveryErrors (retrying cannot help); network errors stay OSErrors."""
        try:
            return self._log_in()
        except ssl.SSLCertVerificationError as exc:  # implicit TLS or STARTTLS
            raise DeliveryError(
                f"SMTP server {self._where}: TLS certificate not trusted: {exc.verify_message}"
            ) from exc

    def _log_in(self) -> smtplib.SMTP:
        s = self.smtp
        conn: smtplib.SMTP
        if s.security == "tls":
            conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self.context)
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            # Without this, Nagle's algorithm and delayed ACKs stall each DATA reply ~40 ms.
            if conn.sock is not None:
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.ehlo()
            if s.security == "starttls":
                conn.starttls(context=self.context)
                conn.ehlo()
            if s.username:
                conn.login(s.username, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            conn.close()
            raise DeliveryError(
                f"SMTP server {self._where} refused the login of {s.username!r} "
                f"({exc.smtp_code} {_text(exc.smtp_error)}): check smtp.username and "
                "DIGEST_SMTP_PASSWORD"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            conn.close()
            raise DeliveryError(
                f"SMTP server {self._where}: {exc} (check smtp.security and smtp.port)"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def open(self) -> None:
        """Connect and log in now, so a wrong password stops the send before it starts."""
        if self._conn is None:
            try:
                self._conn = self._connect()
            except socket.gaierror as exc:
                if exc.errno not in _NO_SUCH_HOST:  # a DNS hiccup: a failed run, not bad input
                    raise DeliveryError(f"cannot resolve SMTP server {self._where}: {exc}") from exc
                raise ConfigError(f"cannot resolve host {self.smtp.host!r}: {exc.strerror}",
                                  key="smtp.host") from exc
            except OSError as exc:  # smtplib's errors are OSErrors too
                raise DeliveryError(f"cannot connect to SMTP server {self._where}: {exc}") from exc

    def send(self, message: Outgoing) -> None:
        """Send one message; retries 4xx and dropped connections, raises on 5xx."""
        tries = self.smtp.retries + 1
        for attempt in range(tries):
            last = attempt == tries - 1
            self.limiter.wait()  # every attempt counts against the relay's rate
            try:
                if self._conn is None:
                    self._conn = self._connect()
                    self.reconnects += 1
                self._conn.sendmail(message.sender, [message.recipient], message.data,
                                    ["SMTPUTF8"] if message.smtputf8 else [])
                return
            except (smtplib.SMTPNotSupportedError, UnicodeEncodeError) as exc:  # needs SMTPUTF8
                raise RecipientUndeliverable(
                    message.recipient, f"the address needs SMTPUTF8, which SMTP server "
                    f"{self._where} does not offer"
                ) from exc
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = exc.recipients.get(message.recipient, (550, b"refused"))
                self._handle_reply(message, code, reply, last)
            except smtplib.SMTPSenderRefused as exc:
                if exc.smtp_code == 552 or b"5.3.4" in _bytes(exc.smtp_error):
                    # SIZE= refused: this message is too big for the relay, not a bad sender
                    raise RecipientRejected(
                        message.recipient, exc.smtp_code,
                        f"{_text(exc.smtp_error)} (the message is {len(message.data):,} bytes: "
                        "lower delivery.max_message_bytes and build again)") from exc
                # MAIL FROM refused: every message would fail the same way, so stop the send
                # (the claimed message stays 'sending' and goes out on the next run).
                if exc.smtp_code >= 500 or last:
                    raise DeliveryError(
                        f"SMTP server {self._where} refused the sender {exc.sender!r}: "
                        f"{exc.smtp_code} {_text(exc.smtp_error)} (check newsletter.from)"
                    ) from exc
            except smtplib.SMTPResponseException as exc:  # DATA refused, or 421
                if exc.smtp_code == 421:  # the server is closing this connection
                    self._drop()
                self._handle_reply(message, exc.smtp_code, exc.smtp_error, last)
            except OSError as exc:  # dropped, reset, timed out, or reconnecting failed
                self._drop()
                if last:
                    raise DeliveryError(
                        f"lost the connection to SMTP server {self._where} "
                        f"{tries} times in a row: {exc}"
                    ) from exc
                # the first reconnect is immediate: servers close idle or long-lived sessions
                self.rt.sleep(self.backoff * attempt)
                continue
            self.rt.sleep(self.backoff * 2**attempt)

    def _handle_reply(self, message: Outgoing, code: int, reply: bytes | str, last: bool) -> None:
        if 500 <= code < 600:
            raise RecipientRejected(message.recipient, code, _text(reply))
        if last:
            raise RecipientDeferred(message.recipient, code, _text(reply))

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        """Say QUIT and close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


# getaddrinfo's answers for a name that does not exist (EAI_NODATA is not on every platform)
_NO_SUCH_HOST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def _bytes(reply: bytes | str) -> bytes:
    return reply if isinstance(reply, bytes) else reply.encode("utf-8", "replace")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def make_transport(settings: Settings, rt: Runtime, outbox: Path) -> Transport:
    """The transport the config names: the outbox folder, or the SMTP server."""
    return make_transports(settings, rt, outbox, 1)[0]


def make_transports(settings: Settings, rt: Runtime, outbox: Path, count: int) -> list[Transport]:
    """Up to `count` transports to send at once: as many SMTP connections, all paced by one
    RateLimiter (delivery.rate_per_second is the rate of them all), or the one outbox
    folder (a disk gains nothing from several writers)."""
    if settings.delivery.transport == "smtp":
        limiter = RateLimiter(settings.delivery.rate_per_second, rt.monotonic, rt.sleep)
        return [
            SmtpTransport(settings.smtp, settings.smtp_password, rt, limiter)
            for _ in range(max(count, 1))
        ]
    return [OutboxTransport(outbox)]

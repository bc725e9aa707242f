"""Bounces and complaints: what they do to a reader, delivery reports read from a mailbox,
and the rates the large mailbox providers judge a bulk sender by.

Hard bounces (a 5.x.x failure: no such user, no such domain) set the reader `bounced` and
spam complaints set them `complained`: neither gets mail again (only `subscribers add`
brings them back). Soft bounces (mailbox full, a 4.x.x failure after the server's retries)
only count: `bounces.soft_limit` of them within `bounces.soft_days` set the reader `bounced`.
Every event is stored once per (source, its id): a provider resending a webhook, or a
mailbox read twice, counts once. The webhooks live in pipeline.interfaces.webhooks.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import mailbox
import sqlite3
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from email.utils import parseaddr
from pathlib import Path

from pipeline.core.config import Settings
from pipeline.core.errors import DeliveryError, InputError
from pipeline.store import bounces as events
from pipeline.store.db import transaction

# The large mailbox providers' bulk-sender limits: Gmail and Yahoo require a spam complaint
# rate under 0.3% (and advise under 0.1%); Amazon SES reviews an account from a 5% bounce
# rate (and 0.1% complaints), so a sender aims under 2%.
COMPLAINT_LIMIT = 0.003
COMPLAINT_AIM = 0.001
BOUNCE_LIMIT = 0.05
BOUNCE_AIM = 0.02
RATE_DAYS = 30  # the window status reports rates over


@dataclass(frozen=True)
class BounceEvent:
    """One bounce or complaint, as a provider or a delivery report told it."""

    source: str  # 'ses', 'postmark', 'mailgun', 'sendgrid', 'dsn'
    event_id: str  # unique per source: a repeated event is recognised
    email: str
    kind: str  # 'hard', 'soft', 'complaint'
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in events.EVENT_KINDS:
            raise ValueError(f"unknown bounce kind {self.kind!r}")
        if "@" not in self.email:
            raise ValueError(f"not an address: {self.email!r}")


@dataclass(frozen=True)
class Applied:
    """What a batch of events did: stored, seen before, and the readers it stopped."""

    recorded: int = 0
    repeated: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    stopped: tuple[str, ...] = ()


def apply_events(conn: sqlite3.Connection, settings: Settings, batch: Iterable[BounceEvent],
                 now: datetime) -> Applied:
    """Store the events and stop the readers they call for, in one transaction."""
    recorded = repeated = 0
    by_kind: dict[str, int] = {}
    stopped: list[str] = []
    soft_since = now - timedelta(days=settings.bounces.soft_days)
    with transaction(conn):
        for ev in batch:
            if not events.record_bounce(conn, ev.source, ev.event_id, ev.email, ev.kind,
                                        ev.detail):
                repeated += 1
                continue
            recorded += 1
            by_kind[ev.kind] = by_kind.get(ev.kind, 0) + 1
            if ev.kind == "complaint":
                status = "complained"
                changed = events.set_status_for_email(conn, ev.email, status,
                                                      ("active", "pending", "bounced"))
            elif ev.kind == "hard" or events.soft_bounce_count(
                    conn, ev.email, soft_since) >= settings.bounces.soft_limit:
                changed = events.set_status_for_email(conn, ev.email, "bounced",
                                                      ("active", "pending"))
            else:
                changed = False
            if changed:
                stopped.append(ev.email)
    return Applied(recorded, repeated, by_kind, tuple(stopped))


# --- rates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """Bounces and complaints over the messages sent since `since`."""

    since: datetime
    sent: int
    bounced: int  # addresses with a hard bounce
    soft: int  # addresses with a soft bounce
    complained: int

    @property
    def bounce_rate(self) -> float:
        """Hard-bounced addresses per message sent (0 when nothing was sent)."""
        return self.bounced / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        """Complaining addresses per message sent (0 when nothing was sent)."""
        return self.complained / self.sent if self.sent else 0.0

    @property
    def warnings(self) -> tuple[str, ...]:
        """What a provider would hold against this sender."""
        out = []
        if self.complaint_rate >= COMPLAINT_LIMIT:
            out.append(f"complaint rate {self.complaint_rate:.2%} is at or over the 0.3% "
                       "Gmail and Yahoo allow bulk senders: mail will be refused or filtered")
        elif self.complaint_rate >= COMPLAINT_AIM:
            out.append(f"complaint rate {self.complaint_rate:.2%} is over the 0.1% the "
                       "providers advise")
        if self.bounce_rate >= BOUNCE_LIMIT:
            out.append(f"bounce rate {self.bounce_rate:.2%} is at or over 5% (Amazon SES "
                       "reviews accounts from there): clean the list")
        elif self.bounce_rate >= BOUNCE_AIM:
            out.append(f"bounce rate {self.bounce_rate:.2%} is over the 2% to aim under")
        return tuple(out)

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict (status --json)."""
        return {"since": self.since.isoformat(), "sent": self.sent, "bounced": self.bounced,
                "soft_bounced": self.soft, "complained": self.complained,
                "bounce_rate": round(self.bounce_rate, 6),
                "complaint_rate": round(self.complaint_rate, 6),
                "complaint_limit": COMPLAINT_LIMIT, "bounce_limit": BOUNCE_LIMIT,
                "warnings": list(self.warnings)}

    def text_line(self) -> str:
        """One line for `digest status`."""
        days = RATE_DAYS
        return (f"deliverability ({days} days, {self.sent} sent): bounces "
                f"{self.bounce_rate:.2%} (limit 5%), complaints {self.complaint_rate:.2%} "
                f"(limit 0.3%)" + (f", soft bounces {self.soft}" if self.soft else ""))


def rates(conn: sqlite3.Connection, since: datetime) -> Rates:
    """Bounce and complaint rates over what was sent since `since`."""
    counts = events.event_counts(conn, since)
    return Rates(since, events.sent_count(conn, since), counts.get("hard", 0),
                 counts.get("soft", 0), counts.get("complaint", 0))


# --- delivery reports (RFC 3464), feedback reports (RFC 5965) ---------------------------------


def _event_id(msg: Message, raw: bytes, recipient: str) -> str:
    base = str(msg.get("Message-ID") or "") or hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(f"{base}\0{recipient.casefold()}".encode()).hexdigest()[:32]


def _address(value: str) -> str:
    """The address of a `Final-Recipient: rfc822; a@b` field (or a bare one)."""
    _kind, _sep, rest = value.partition(";")
    return parseaddr(rest.strip() if _sep else value.strip())[1]


def parse_report(raw: bytes) -> list[BounceEvent]:
    """The bounces or complaint one message reports; [] when it reports none."""
    msg = message_from_bytes(raw, policy=policy.compat32)
    if msg.get_content_type() == "multipart/report":
        report_type = (msg.get_param("report-type") or "")
        kind = report_type.lower() if isinstance(report_type, str) else ""
        if kind == "delivery-status":
            return _delivery_status(msg, raw)
        if kind == "feedback-report":
            return _feedback(msg, raw)
    from flufl.bounce import all_failures  # the many non-standard formats MTAs still send

    temporary, permanent = all_failures(msg)
    found = [("hard", a) for a in permanent] + [("soft", a) for a in temporary - permanent]
    out = []
    for kind, addr in found:
        email = addr.decode("utf-8", "replace") if isinstance(addr, bytes) else str(addr)
        if "@" in email:
            out.append(BounceEvent("dsn", _event_id(msg, raw, email), email, kind,
                                   "non-standard bounce"))
    return out


def _delivery_status(msg: Message, raw: bytes) -> list[BounceEvent]:
    out = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:  # the first block is per message, the rest per recipient
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).strip().lower()
            status = str(block.get("Status", "")).strip()
            email = _address(str(block.get("Final-Recipient")
                                 or block.get("Original-Recipient") or ""))
            if action != "failed" or "@" not in email:
                continue  # delayed, delivered, relayed: nothing went wrong for good
            kind = "hard" if status.startswith("5") else "soft"
            diag = str(block.get("Diagnostic-Code", "")).strip()
            out.append(BounceEvent("dsn", _event_id(msg, raw, email), email, kind,
                                   f"{status} {diag}".strip()))
    return out


def _feedback(msg: Message, raw: bytes) -> list[BounceEvent]:
    recipients: list[str] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report":
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else []:
                if not isinstance(block, Message):
                    continue
                rcpt = block.get("Original-Rcpt-To")
                if rcpt:
                    recipients.append(_address(str(rcpt)))
        elif ctype in ("message/rfc822", "text/rfc822-headers") and not recipients:
            inner = part.get_payload()
            original = inner[0] if isinstance(inner, list) and inner else (
                message_from_bytes(inner.encode() if isinstance(inner, str) else b"",
                                   policy=policy.compat32))
            to = original.get("To") if isinstance(original, Message) else None
            if to:
                recipients.append(parseaddr(str(to))[1])
    return [BounceEvent("dsn", _event_id(msg, raw, r), r, "complaint", "feedback report")
            for r in dict.fromkeys(recipients) if "@" in r]


# --- mailboxes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """What reading a mailbox found: the events, and messages that reported nothing."""

    events: tuple[BounceEvent, ...]
    messages: int
    not_reports: int


@contextlib.contextmanager
def read_maildir(path: Path) -> Iterator[Scan]:
    """Every message of the maildir not marked seen, as a Scan for the `with` block; when the
    block ends without an error each one read is marked seen (S), so the next run reads only
    what arrived since. Marking comes after the block has recorded the events: a run killed
    in between reads them again, and recording them again counts nothing twice."""
    if not (path / "cur").is_dir() or not (path / "new").is_dir():
        raise InputError("not a maildir (expected cur/ and new/ in it)", path=path,
                         key="bounces.maildir")
    box = mailbox.Maildir(path, factory=None, create=False)
    found: list[BounceEvent] = []
    read: list[str] = []
    empty = 0
    for key in list(box.keys()):
        item = box.get_message(key)
        if "S" in item.get_flags():
            continue
        reported = parse_report(item.as_bytes())
        read.append(key)
        empty += not reported
        found.extend(reported)
    yield Scan(tuple(found), len(read), empty)
    for key in read:
        item = box.get_message(key)
        item.set_subdir("cur")
        item.add_flag("S")
        box[key] = item


def _reply(data: object) -> str:
    """An IMAP reply's text (imaplib gives bytes, or a list or tuple of them)."""
    first = data[0] if isinstance(data, list | tuple) and data else data
    text = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
    return text.strip() or "no reason given"


IMAP_TIMEOUT = 30.0  # seconds, for the connection and each reply


@contextlib.contextmanager
def read_imap(settings: Settings, password: str, context: ssl.SSLContext | None = None,
              timeout: float = IMAP_TIMEOUT) -> Iterator[Scan]:
    """The unseen messages of the IMAP folder (TLS), as a Scan for the `with` block; when the
    block ends without an error each one read is marked \\Seen (after the events are
    recorded, as read_maildir does)."""
    b = settings.bounces
    where = f"{b.imap_host}:{b.imap_port}"
    try:
        # a timeout on every read: a server that accepts and never answers must not hang the job
        imap = imaplib.IMAP4_SSL(b.imap_host, b.imap_port,
                                 ssl_context=context or ssl.create_default_context(),
                                 timeout=timeout)
    except OSError as exc:
        raise DeliveryError(f"cannot connect to IMAP server {where}: {exc}") from exc
    try:
        with _imap_errors(where, b.imap_folder):
            uids, scan = _read_unseen(imap, settings, password, where)
        yield scan
        with _imap_errors(where, b.imap_folder):
            for uid in uids:
                imap.uid("STORE", uid, "+FLAGS", "(\\Seen)")
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            imap.logout()


def _read_unseen(imap: imaplib.IMAP4, settings: Settings, password: str,
                 where: str) -> tuple[list[str], Scan]:
    """Log in, open the folder and read its unseen messages without marking them."""
    b = settings.bounces
    try:
        imap.login(b.imap_user, password)
    except imaplib.IMAP4.error as exc:
        raise DeliveryError(f"IMAP server {where} refused the login of {b.imap_user!r} "
                            f"({_reply(exc.args)}): check bounces.imap_user and "
                            "DIGEST_IMAP_PASSWORD") from exc
    # a folder that cannot be opened is a NO reply, not an exception, in imaplib
    typ, data = imap.select(b.imap_folder)
    if typ != "OK":
        raise DeliveryError(f"IMAP server {where} cannot open the folder "
                            f"{b.imap_folder!r} ({_reply(data)})", key="bounces.imap_folder")
    _typ, data = imap.uid("SEARCH", "UNSEEN")
    uids = (data[0] or b"").decode("ascii").split()
    found: list[BounceEvent] = []
    empty = 0
    for uid in uids:
        _typ, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = next((p[1] for p in parts if isinstance(p, tuple)), b"")
        reported = parse_report(raw)
        empty += not reported
        found.extend(reported)
    return uids, Scan(tuple(found), len(uids), empty)


@contextlib.contextmanager
def _imap_errors(where: str, folder: str) -> Iterator[None]:
    """The IMAP session's failures as one DeliveryError naming the server and folder."""
    try:
        yield
    except imaplib.IMAP4.error as exc:
        raise DeliveryError(f"IMAP server {where}, folder {folder!r}: "
                            f"{_reply(exc.args)}") from exc
    except OSError as exc:  # the connection dropped or timed out mid-read
        raise DeliveryError(f"IMAP server {where}: the connection failed while reading "
                            f"{folder!r}: {exc}") from exc


def iter_kinds(applied: Applied) -> Iterator[tuple[str, int]]:
    """(kind, count) in a fixed order, for summaries."""
    for kind in events.EVENT_KINDS:
        yield kind, applied.by_kind.get(kind, 0)

"""Sending an issue: one message per active subscriber, with a ledger so nobody gets it twice.

The ledger (`deliveries`, unique per issue and subscriber) is written around each message:
the row is claimed as 'sending' before the message is handed to the server and marked 'sent'
once the server accepts it. A rerun after a crash skips every 'sent' row and sends the rest;
the one message that was in flight when the process died (claimed, maybe accepted, not yet
marked) is sent again, so at most that one recipient can get the issue twice. A file lock per
issue keeps two sends of the same issue from running at once.

Over SMTP, `delivery.connections` connections work one shared queue, each in its own thread
with its own SQLite connection: a worker claims a row just before its message goes out and
finishes it when the server answers, so a crash repeats at most one message per connection.
One RateLimiter paces them all; a 4xx backoff sleeps only the connection that got it.

The outbox transport is a trial (the demo, tests, a look before the first real send): its
rows are marked 'outbox' and dedupe later outbox sends, but a real send takes them over and
sends to every reader; only a real transport makes the issue 'sent'.
"""

from __future__ import annotations

import queue
import secrets
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from pipeline import store
from pipeline.core import layout, locks
from pipeline.core.config import Settings
from pipeline.core.errors import ConfigError, DeliveryError, InputError
from pipeline.core.models import EmailVariant, Subscriber, normalize_tag
from pipeline.core.runtime import Runtime
from pipeline.deliver import tokens
from pipeline.deliver.mail import (
    PREVIEW_TOKEN,
    MessageBuilder,
    OutboxTransport,
    Outgoing,
    RecipientDeferred,
    RecipientRejected,
    Transport,
    make_transport,
    make_transports,
    outbox_file,
    unsubscribe_mailto,
    unsubscribe_url,
)
from pipeline.deliver.subscribers import normalize_email


@dataclass(frozen=True)
class Failure:
    """A reader's message the server did not take: `status` 'failed' (a 5xx, or an address
    the transport cannot carry: final) or 'deferred' (4xx after every retry: a later send
    tries again)."""

    recipient: str  # as it went on the wire
    status: str
    reason: str  # what the server said, e.g. "refused by the server: 550 5.1.1 No such user"


@dataclass(frozen=True)
class Shortfall:
    """Fewer connections than asked: the server turned the next one away (a relay's cap)."""

    opened: int
    asked: int
    reason: str


@dataclass(frozen=True)
class Summary:
    """What one send did, as data: the caller's report carries it, the interface words it."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    failures: tuple[Failure, ...] = ()
    outbox: Path | None = None  # sent through the outbox: the folder; nothing reached a reader
    shortfall: Shortfall | None = None
    already_sent_at: datetime | None = None  # sent meanwhile (another send won): nothing done


@dataclass
class Tally:
    """The counts one connection adds up as it sends (merged into one Summary at the end)."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    failures: list[Failure] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        """Count another connection's work into this tally."""
        self.sent += other.sent
        self.failed += other.failed
        self.skipped += other.skipped
        self.deferred += other.deferred
        self.failures += other.failures

    def summary(self, outbox: Path | None, shortfall: Shortfall | None) -> Summary:
        """The tally as the send's result."""
        return Summary(self.sent, self.failed, self.skipped, self.deferred,
                       tuple(self.failures), outbox, shortfall)


def wants(sub: Subscriber, tags: Collection[str]) -> bool:
    """Whether a subscriber gets an issue with these tags (no tags chosen = everything)."""
    return not sub.tags or any(normalize_tag(t) in tags for t in sub.tags)


@contextmanager
def issue_lock(settings: Settings, day: date) -> Iterator[None]:
    """Hold the send lock of one issue; raise LockedError at once if another send has it."""
    with locks.hold_lock(
        layout.issue_lock(settings, day),
        "another `digest send`",
        busy=f"another `digest send` of the issue of {day} is running; "
        "this one sent nothing (wait for it to finish)",
    ):
        yield


def _variant_for(sub_language: str | None, names: list[str], settings: Settings) -> str:
    if sub_language is not None and sub_language in names:
        return sub_language
    # A language dropped from the config falls back to the widest variant.
    return settings.variants[-1] if settings.variants[-1] in names else names[-1]


# The interface's progress display (the CLI's bar): given how many readers there are, a
# context whose value is called with the number of readers passed since the last call.
Progress = Callable[[int], AbstractContextManager[Callable[[int], None]]]


@contextmanager
def no_progress(_total: int) -> Iterator[Callable[[int], None]]:
    """No progress display."""
    yield lambda _n: None


def send_issue(
    conn: sqlite3.Connection,
    settings: Settings,
    day: date,
    rt: Runtime,
    variants: list[EmailVariant],
    *,
    tags: Collection[str],
    dry_run: bool = False,
    transport: Transport | None = None,
    progress: Progress = no_progress,
) -> Summary:
    """Send the issue to each active subscriber not yet sent it who wants its `tags` (the
    issue record's); with `dry_run` write every message to outbox/DAY/ and record nothing.
    Marks the issue sent when all are done through a real transport (through the outbox:
    records the trial, which a later real send does not count); with messages deferred it
    stays unsent, and the summary counts them (a later send retries them). Says nothing:
    what it did is the Summary; `progress` hears of each reader passed."""
    record = store.get_issue_record(conn, day)
    if record is not None and record.sent and not dry_run:
        return Summary(already_sent_at=record.sent_at)
    if not variants:
        raise DeliveryError(f"the issue of {day} has no rendered variants: run `digest build`")
    if not dry_run and transport is None and not settings.transport_chosen:
        raise ConfigError(
            "no [delivery] transport in the config, so nothing goes to readers: set "
            'transport = "smtp" (or "outbox" to write the mails to files)',
            path=settings.source, key="delivery.transport")
    names = [v.variant for v in variants]
    builder = MessageBuilder(settings, day, variants)
    tags = frozenset(normalize_tag(t) for t in tags)
    secret = settings.secret
    outbox = layout.dry_run_folder(settings, day)
    active = store.count_subscribers(conn, "active")
    if transport is not None:
        transports = [transport]
    elif dry_run:
        transports = [OutboxTransport(outbox)]
    else:  # no more connections than readers: a small list needs no idle sessions
        transports = make_transports(settings, rt, outbox, min(settings.delivery.connections,
                                                               max(active, 1)))
    transports, shortfall = _open_all(transports)
    transport = transports[0]
    kind = store.REAL
    trial = None
    if isinstance(transport, OutboxTransport):
        kind = store.OUTBOX
        trial = None if dry_run else transport.folder
    tally = Tally()
    try:
        with progress(active) as advance, _Pool(conn, day, transports, kind) as pool:
            for sub, done in store.iter_recipients(conn, day, transport=kind):
                advance(1)
                assert sub.id is not None
                if done in ("sent", "failed") or not wants(sub, tags):
                    tally.skipped += 1
                    continue
                token = tokens.sign(secret, "unsubscribe", sub.id, sub.email)
                message = builder.build(
                    _variant_for(sub.language, names, settings),
                    sub.email,
                    unsubscribe_url(settings, token),
                    unsubscribe_mailto(settings, token),
                    rt.now(),
                )
                if dry_run:
                    transport.send(message)
                    tally.sent += 1
                else:
                    pool.submit(sub.id, message)
        tally.add(pool.tally)
    finally:
        for each in transports:
            each.close()
    summary = tally.summary(trial, shortfall)
    if not dry_run:
        _record(conn, day, summary)
    return summary


def _open_all(transports: list[Transport]) -> tuple[list[Transport], Shortfall | None]:
    """Open every transport; the first must open (a wrong password stops the send before it
    starts), a later one the server turns away (a relay's cap on connections) is left out,
    and the shortfall says so."""
    transports[0].open()
    opened = [transports[0]]
    for each in transports[1:]:
        try:
            each.open()
        except DeliveryError as exc:
            return opened, Shortfall(len(opened), len(transports), str(exc))
        opened.append(each)
    return opened, None


def send_one(
    conn: sqlite3.Connection,
    day: date,
    subscriber_id: int,
    transport: Transport,
    message: Outgoing,
    tally: Tally,
    kind: str = store.REAL,
) -> None:
    """One reader's message: claimed in the ledger (as sent through `kind`, 'outbox' or a
    real transport), handed to the transport, recorded as the server answered (skipped when
    an earlier run already finished it)."""
    if not store.claim_delivery(conn, day, subscriber_id, message.message_id, kind):
        tally.skipped += 1
        return
    try:
        transport.send(message)
    except RecipientRejected as exc:
        store.finish_delivery(conn, day, subscriber_id, "failed", exc.reply)
        tally.failed += 1
        tally.failures.append(Failure(exc.recipient, "failed", exc.reason))
    except RecipientDeferred as exc:
        store.finish_delivery(conn, day, subscriber_id, "deferred", exc.reply)
        tally.deferred += 1
        tally.failures.append(Failure(exc.recipient, "deferred", exc.reason))
    else:
        store.finish_delivery(conn, day, subscriber_id, "sent", None)
        tally.sent += 1


def _database_path(conn: sqlite3.Connection) -> Path:
    """The file behind a connection (each sending thread opens its own connection to it)."""
    return Path(conn.execute("PRAGMA database_list").fetchone()[2])


class _Pool:
    """The connections working one queue of messages. One transport sends in the caller's
    thread; several send each from a thread of its own, with its own SQLite connection and
    Tally (merged into `tally` at the end). The queue holds two messages per connection,
    so a crash finds at most one claimed-and-unrecorded message per connection and nothing
    else half done. A worker's DeliveryError (the relay refused the sender, the connection
    kept dropping) stops the others after their current message and is raised here."""

    def __init__(self, conn: sqlite3.Connection, day: date, transports: list[Transport],
                 kind: str = store.REAL) -> None:
        self.conn = conn
        self.day = day
        self.transports = transports
        self.kind = kind
        self.tally = Tally()
        self._jobs: queue.Queue[tuple[int, Outgoing] | None] = queue.Queue(2 * len(transports))
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._tallies: list[Tally] = []

    def __enter__(self) -> _Pool:
        if len(self.transports) > 1:
            path = _database_path(self.conn)
            for number, transport in enumerate(self.transports, 1):
                tally = Tally()
                self._tallies.append(tally)
                thread = threading.Thread(
                    target=self._work, args=(transport, path, tally),
                    name=f"digest-send-{number}", daemon=True,
                )
                thread.start()
                self._threads.append(thread)
        return self

    def submit(self, subscriber_id: int, message: Outgoing) -> None:
        """Send one reader's message (queued for the next free connection)."""
        if not self._threads:
            send_one(self.conn, self.day, subscriber_id, self.transports[0], message,
                     self.tally, self.kind)
            return
        if self._stop.is_set():
            raise self._errors[0] if self._errors else DeliveryError("the send was stopped")
        self._jobs.put((subscriber_id, message))

    def _work(self, transport: Transport, path: Path, tally: Tally) -> None:
        try:
            conn = store.connect(path, store.clock_of(self.conn))
        except BaseException as exc:
            self._fail(exc)
            conn = None
        try:
            while (job := self._jobs.get()) is not None:
                if self._stop.is_set() or conn is None:
                    continue  # drain the queue: nothing was claimed for these
                try:
                    send_one(conn, self.day, job[0], transport, job[1], tally, self.kind)
                except BaseException as exc:
                    self._fail(exc)
        finally:
            if conn is not None:
                conn.close()

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self._stop.set()

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if not self._threads:
            return
        if exc is not None:
            self._stop.set()  # interrupted: each connection ends its current message only
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        for tally in self._tallies:
            self.tally.add(tally)
        if exc is None and self._errors:
            raise self._errors[0]


def _record(conn: sqlite3.Connection, day: date, summary: Summary) -> None:
    """Record how the send ended: the issue sent (through the outbox: the trial written),
    unless messages were deferred."""
    # The loop claimed every delivery still owed (a 'deferred' or 'sending' row of an earlier
    # run included), so only this run's deferrals are left to retry; the rows of readers who
    # have since unsubscribed or dropped the issue's tags must not hold the issue back forever.
    if summary.deferred:
        return  # the issue stays unsent: the next send retries them
    if summary.outbox is not None:
        store.mark_issue_outboxed(conn, day)  # a trial: the issue stays unsent
    else:
        store.mark_issue_sent(conn, day)


TEST_PREFIX = "[TEST] "


@dataclass(frozen=True)
class SentCopy:
    """A test copy sent: its variant, and where it went (a file, or the address over SMTP)."""

    variant: str
    target: str


def send_preview(
    conn: sqlite3.Connection,
    settings: Settings,
    day: date,
    rt: Runtime,
    variants: list[EmailVariant],
    to: str,
    transport: Transport | None = None,
    *,
    variant: str | None = None,
) -> tuple[SentCopy, ...]:
    """Send test copies with [TEST] in the subject to `to`; records nothing. `variant`
    picks one ("all" when it is no variant name of the config: every variant); by default
    a subscriber gets their own variant and link, anyone else the widest variant and a
    dummy link. Returns what was sent where."""
    try:
        addr = normalize_email(to, smtputf8=settings.smtp.smtputf8)
    except ValueError as exc:
        raise InputError(str(exc), key="--to") from exc
    names = [v.variant for v in variants]
    if not names:
        raise DeliveryError(f"the issue of {day} has no rendered variants: run `digest build`")
    sub = store.get_subscriber(conn, addr)
    if variant is None:
        chosen = [_variant_for(sub.language if sub else None, names, settings)]
    elif variant in names:
        chosen = [variant]
    elif variant == "all":
        chosen = names
    else:
        raise InputError(f"no variant {variant!r} in this build (it has {', '.join(names)})",
                         key="--variant")
    token = PREVIEW_TOKEN  # its link and mailto do nothing
    if sub is not None and sub.id is not None:
        token = tokens.sign(settings.secret, "unsubscribe", sub.id, sub.email)
    url, mailto = unsubscribe_url(settings, token), unsubscribe_mailto(settings, token)
    folder = layout.test_copies(settings, day)
    done: list[SentCopy] = []
    sent_at = rt.now()
    for name in chosen:
        # Its own Message-ID, new for every copy: a receiver must not drop the real issue, or
        # the second test copy, as a duplicate. The subject names the variant.
        builder = MessageBuilder(
            settings, day, variants, subject_prefix=f"{TEST_PREFIX}[{name}] ",
            salt=f"{TEST_PREFIX}{name}\0{sent_at.isoformat()}\0{secrets.token_hex(8)}")
        # With the outbox, each variant's copy gets its own folder (one file per recipient).
        one = transport if transport is not None else make_transport(settings, rt, folder / name)
        message = builder.build(name, addr, url, mailto, sent_at)
        one.open()
        try:
            one.send(message)
        finally:
            one.close()
        target = (str(outbox_file(one.folder, addr)) if isinstance(one, OutboxTransport)
                  else f"{addr} (SMTP {settings.smtp.host}:{settings.smtp.port})")
        done.append(SentCopy(name, target))
    return tuple(done)

"""Sending an issue: one message per active subscriber, with a ledger so nobody gets it twice.

The ledger (`deliveries`, unique per issue and subscriber) is written around each message:
the row is claimed as 'sending' before the message is handed to the server and marked 'sent'
once the server accepts it. A rerun after a crash skips every 'sent' row and sends the rest;
the one message that was in flight when the process died (claimed, maybe accepted, not yet
marked) is sent again, so at most that one recipient can get the issue twice. A file lock per
issue keeps two sends of the same issue from running at once.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import click

from pipeline import locks, store, tokens
from pipeline.config import Settings
from pipeline.digest import parse_tags_line
from pipeline.errors import DeliveryError, InputError
from pipeline.mail import (
    PREVIEW_TOKEN,
    MessageBuilder,
    OutboxTransport,
    Outgoing,
    RecipientDeferred,
    RecipientRejected,
    Transport,
    make_transport,
    unsubscribe_mailto,
    unsubscribe_url,
)
from pipeline.models import EmailVariant, Subscriber, normalize_tag
from pipeline.runtime import Runtime
from pipeline.subscribers import normalize_email


@dataclass
class Summary:
    """What one send did."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    failures: list[str] = field(default_factory=list)


def issue_tags(variants: list[EmailVariant]) -> frozenset[str]:
    """The issue's tags, read from the hashtag lines of the plain-text (digest format) parts."""
    return frozenset(
        normalize_tag(tag)
        for variant in variants
        for line in variant.text.splitlines()
        for tag in parse_tags_line(line) or ()
    )


def wants(sub: Subscriber, tags: frozenset[str]) -> bool:
    """Whether a subscriber gets an issue with these tags (no tags chosen = everything)."""
    return not sub.tags or any(normalize_tag(t) in tags for t in sub.tags)


@contextmanager
def issue_lock(settings: Settings, day: date) -> Iterator[None]:
    """Hold the send lock of one issue; raise LockedError at once if another send has it."""
    with locks.hold_lock(
        settings.paths.data / f"send-{day.isoformat()}.lock",
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


class _NoProgress:
    def update(self, n: int) -> None:
        pass


@contextmanager
def _progress(rt: Runtime, total: int) -> Iterator[Any]:
    if rt.progress:
        with click.progressbar(length=total, label="sending", file=sys.stderr) as bar:
            yield bar
    else:
        yield _NoProgress()


def send_issue(
    conn: sqlite3.Connection,
    settings: Settings,
    day: date,
    rt: Runtime,
    variants: list[EmailVariant],
    *,
    dry_run: bool = False,
    transport: Transport | None = None,
) -> Summary:
    """Send the issue to each active subscriber not yet sent it; with `dry_run` write every
    message to outbox/DAY/ and record nothing. Marks the issue 'sent' when all are done."""
    summary = Summary()
    row = store.get_issue(conn, day)
    if row is not None and row["state"] == "sent" and not dry_run:
        rt.echo(f"the issue of {day} was already sent ({row['sent_at']}); nothing to do")
        return summary
    if not variants:
        raise DeliveryError(f"the issue of {day} has no rendered variants: run `digest build`")
    names = [v.variant for v in variants]
    builder = MessageBuilder(settings, day, variants)
    tags = issue_tags(variants)
    secret = settings.secret
    outbox = settings.paths.outbox / day.isoformat()
    if transport is None:
        transport = OutboxTransport(outbox) if dry_run else make_transport(settings, rt, outbox)
    transport.open()
    try:
        with _progress(rt, store.count_subscribers(conn, "active")) as bar:
            for sub, done in store.iter_recipients(conn, day):
                bar.update(1)
                assert sub.id is not None
                if done in ("sent", "failed") or not wants(sub, tags):
                    summary.skipped += 1
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
                    summary.sent += 1
                elif store.claim_delivery(conn, day, sub.id, message.message_id):
                    _deliver(conn, day, sub.id, transport, message, summary)
                else:
                    summary.skipped += 1
    finally:
        transport.close()
    _report(conn, day, rt, summary, dry_run, outbox)
    return summary


def _deliver(
    conn: sqlite3.Connection,
    day: date,
    subscriber_id: int,
    transport: Transport,
    message: Outgoing,
    summary: Summary,
) -> None:
    try:
        transport.send(message)
    except RecipientRejected as exc:
        store.finish_delivery(conn, day, subscriber_id, "failed", exc.reply)
        summary.failed += 1
        summary.failures.append(str(exc))
    except RecipientDeferred as exc:
        store.finish_delivery(conn, day, subscriber_id, "deferred", exc.reply)
        summary.deferred += 1
        summary.failures.append(str(exc))
    else:
        store.finish_delivery(conn, day, subscriber_id, "sent", None)
        summary.sent += 1


def _report(
    conn: sqlite3.Connection, day: date, rt: Runtime, summary: Summary, dry_run: bool,
    outbox: Path,
) -> None:
    for line in summary.failures:
        rt.echo(f"failed: {line}")
    if dry_run:
        rt.echo(f"dry run: wrote {summary.sent} messages to {outbox}; recorded nothing")
        return
    rt.echo(
        f"issue {day}: sent {summary.sent}, failed {summary.failed}, skipped {summary.skipped}"
        + (f", deferred {summary.deferred}" if summary.deferred else "")
    )
    # The loop claimed every delivery still owed (a 'deferred' or 'sending' row of an earlier
    # run included), so only this run's deferrals are left to retry; the rows of readers who
    # have since unsubscribed or dropped the issue's tags must not hold the issue back forever.
    if summary.deferred:
        raise DeliveryError(
            f"{summary.deferred} messages of the issue of {day} were deferred by the "
            f"server (4xx); run `digest send --date {day}` again later to retry them"
        )
    store.mark_issue_sent(conn, day)


def send_preview(
    conn: sqlite3.Connection,
    settings: Settings,
    day: date,
    rt: Runtime,
    variants: list[EmailVariant],
    to: str,
    transport: Transport | None = None,
) -> None:
    """Send one copy with [PREVIEW] in the subject to `to`; records nothing. A subscriber
    gets their own variant and link; anyone else the widest variant and a dummy link."""
    try:
        addr = normalize_email(to, smtputf8=settings.smtp.smtputf8)
    except ValueError as exc:
        raise InputError(str(exc), key="--to") from exc
    sub = store.get_subscriber(conn, addr)
    names = [v.variant for v in variants]
    variant = _variant_for(sub.language if sub else None, names, settings)
    token = PREVIEW_TOKEN
    url = unsubscribe_url(settings, token)  # a link that does nothing
    if sub is not None and sub.id is not None:
        token = tokens.sign(settings.secret, "unsubscribe", sub.id, sub.email)
        url = unsubscribe_url(settings, token)
    # Its own Message-ID: a preview must not make a receiver drop the real issue as a copy.
    builder = MessageBuilder(settings, day, variants, subject_prefix="[PREVIEW] ")
    message = builder.build(variant, addr, url, unsubscribe_mailto(settings, token), rt.now())
    if transport is None:
        folder = settings.paths.outbox / day.isoformat() / "preview"
        transport = make_transport(settings, rt, folder)
    transport.open()
    try:
        transport.send(message)
    finally:
        transport.close()
    rt.echo(f"sent a [PREVIEW] copy ({variant}) of the issue of {day} to {addr}")

"""`digest send`: the approved issue to every reader; test copies; dry runs."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from pipeline import store
from pipeline.core import layout, lifecycle
from pipeline.core.config import Settings
from pipeline.core.errors import DeliveryError
from pipeline.core.models import EmailVariant
from pipeline.core.runtime import Runtime
from pipeline.deliver import dispatch as delivery
from pipeline.deliver.dispatch import Failure, SentCopy, Shortfall
from pipeline.services.approving import PublishReport, current_build, publish
from pipeline.services.common import draft_sha, open_store


@dataclass(frozen=True)
class SendReport:
    """What `send` did. `mode`: 'sent' (to the readers), 'dry-run' (every message into
    `folder`), 'test' (test copies, in `test_copies`) or 'already-sent' (nothing to do).
    Facts only: pipeline.interfaces.present words them."""

    day: date
    mode: str
    draft: Path
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    failures: tuple[Failure, ...] = ()  # each reader the server did not take, and why
    folder: Path | None = None  # dry run: where the messages are
    test_copies: tuple[SentCopy, ...] = ()  # each variant's copy and where it went
    publish: PublishReport | None = None  # the publishing right before the send (auto mode)
    outbox: Path | None = None  # sent through the outbox (a trial): the folder, no reader got it
    sent_at: datetime | None = None  # already sent: when
    correction_pending: bool = False  # already sent: a correction is built, not published
    warnings: tuple[str, ...] = ()  # about the draft (test copies, dry run)
    shortfall: Shortfall | None = None  # fewer connections than asked: the server's reason


def approved_variants(conn: sqlite3.Connection, settings: Settings, day: date) -> list[EmailVariant]:
    """The variants to send: refuses an unbuilt issue, an unapproved one (when approval is
    required) and one whose draft or rendering changed since approval."""
    record = current_build(conn, settings, day)
    lifecycle.require_approved(record, day, settings.approval.required)
    return store.load_built_issue(conn, day)


def _ignore(_report: PublishReport) -> None:
    pass


def send(
    settings: Settings,
    day: date,
    rt: Runtime,
    *,
    dry_run: bool = False,
    to: str | None = None,
    variant: str | None = None,
    on_publish: Callable[[PublishReport], None] = _ignore,
    progress: delivery.Progress | None = None,
) -> SendReport:
    """Send the approved issue to every active subscriber (publishing it first when site/
    does not show it yet: auto mode; `on_publish` hears of that before any mail goes out).
    `to`: one test copy of the built issue (any state after build; `variant` picks it,
    "all" of the variants sends each); `dry_run`: every message into outbox/D/. Neither
    needs approval, publishes or records anything. `progress` hears of each reader passed
    (the interface's progress bar). Messages the server deferred raise a DeliveryError
    whose `report` is this send's. The ledger and the lock that make it safe to rerun are
    described in pipeline.deliver.dispatch."""
    path = layout.draft_path(settings, day)
    progress = progress or delivery.no_progress
    with closing(open_store(settings, rt)) as conn:
        record = store.get_issue_record(conn, day)
        if to is not None or dry_run:
            # An issue built by an older version has nothing to send: "not built" here.
            built = lifecycle.require_built(
                record if record is not None and record.build is not None else None, day)
            warnings = () if draft_sha(settings, day) == built.draft_sha else (
                f"{path.name} changed since the build; this is the build as it was",)
            variants = store.load_built_issue(conn, day)
            if to is not None:
                done = delivery.send_preview(conn, settings, day, rt, variants, to,
                                             variant=variant)
                return SendReport(day, "test", path, test_copies=done, warnings=warnings)
            summary = delivery.send_issue(conn, settings, day, rt, variants, dry_run=True,
                                          tags=built.tags, progress=progress)
            return SendReport(day, "dry-run", path, sent=summary.sent,
                              folder=layout.dry_run_folder(settings, day), warnings=warnings)
        if record is not None and record.sent:
            return _already_sent(record, path)
        variants = approved_variants(conn, settings, day)
        record = current_build(conn, settings, day)
        lifecycle.require_build_summary(record, day)
        published = publish(conn, settings, day, rt)
        on_publish(published)
        with delivery.issue_lock(settings, day):
            summary = delivery.send_issue(conn, settings, day, rt, variants, tags=record.tags,
                                          progress=progress)
        if summary.already_sent_at is not None:  # another send finished it meanwhile
            now = store.get_issue_record(conn, day)
            assert now is not None
            return replace(_already_sent(now, path), publish=published)
    report = SendReport(day, "sent", path, sent=summary.sent, failed=summary.failed,
                        skipped=summary.skipped, deferred=summary.deferred,
                        failures=summary.failures, publish=published, outbox=summary.outbox,
                        shortfall=summary.shortfall)
    if summary.deferred:
        raise DeliveryError(
            f"{summary.deferred} messages of the issue of {day} were deferred by the "
            f"server (4xx); run `digest send --date {day}` again later to retry them",
            report=report)
    return report


def _already_sent(record: lifecycle.IssueRecord, path: Path) -> SendReport:
    """Nothing to do: the issue went out (at `sent_at`); a correction may wait."""
    return SendReport(record.day, "already-sent", path, sent_at=record.sent_at,
                      correction_pending=record.correction_pending)

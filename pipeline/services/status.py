"""`digest status`: one day's issue at a glance, read from the store and the draft on disk
(read only). The studio shows the same report; pipeline.interfaces.present words it."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any

from pipeline import store
from pipeline.core import digest_format as digest
from pipeline.core import layout
from pipeline.core.config import Settings
from pipeline.core.errors import DigestError
from pipeline.core.lifecycle import IssueRecord, Progress, State, Uncommented, uncommented
from pipeline.core.runtime import Runtime
from pipeline.deliver.dispatch import wants
from pipeline.services.common import draft_sha


@dataclass(frozen=True)
class DraftStatus:
    """drafts/D.txt as it is now."""

    path: str
    exists: bool
    entries: int = 0
    commented: int = 0
    uncommented: tuple[Uncommented, ...] = ()
    error: str | None = None  # the draft does not parse
    built_from_it: bool = False  # the current build was made from exactly these bytes


@dataclass(frozen=True)
class BuiltStatus:
    """The current build."""

    hash: str
    at: str | None
    entries: int | None
    tags: tuple[str, ...]
    sizes: dict[str, int]  # variant -> HTML bytes
    preview: str  # the preview folder


@dataclass(frozen=True)
class DayStatus:
    """One day's issue at a glance (`digest status`, the studio); `as_json()` for scripts."""

    day: date
    state: str | None  # a State value, or None when nothing was collected
    collected: str | None  # 'collected' | 'empty' | None
    announced: int | None
    kept: int | None
    candidates: int
    draft: DraftStatus
    built: BuiltStatus | None
    approved: bool  # the current build is approved
    approved_at: str | None
    published: bool  # site/ shows the current build
    published_at: str | None
    correction_pending: bool
    sent_at: str | None
    deliveries: dict[str, int]  # sent / failed / deferred / sending through the configured transport
    pending: int  # active readers who want the issue and have no final delivery yet
    approval_required: bool
    next_step: str  # what the curator (or the job) does next
    next_scheduled: str | None  # e.g. "send at 2024-12-05 18:00 KST"
    warnings: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        """Plain data for `--json` (dates as ISO text)."""
        data = asdict(self)
        data["day"] = self.day.isoformat()
        return data


def progress(conn: sqlite3.Connection, settings: Settings, day: date) -> Progress:
    """Read the day's progress from the store (days, issues) and the draft on disk."""
    collected = store.get_day(conn, day)
    return Progress(
        collected=collected.status if collected is not None else None,
        record=store.get_issue_record(conn, day),
        draft_sha=draft_sha(settings, day),
        outbox_done=settings.delivery.transport == store.OUTBOX
        and store.issue_outboxed_at(conn, day) is not None,
    )


def next_step(day: date, progress: Progress, draft: DraftStatus, approval_required: bool) -> str:
    """What comes next for the day, as one instruction."""
    record = progress.record
    d = f"--date {day}"
    if progress.collected is None:
        return f"collect: `digest collect {d}` (or `digest run {d}`)"
    if progress.collected == "empty":
        return "nothing: arXiv announced nothing that day"
    if not draft.exists:
        return f"draft: `digest draft {d}`"
    if draft.error is not None:
        return f"fix the draft ({draft.error})"
    if record is not None and record.sent:
        if record.correction_pending:
            return f"approve the correction: `digest approve {d}` (no email is sent again)"
        if not progress.built_current:
            return f"correction: `digest build {d}`, check the preview, `digest approve {d}`"
        return "nothing: the issue was sent"
    if not progress.built_current:
        return f"build: `digest build {d}`"
    if approval_required and not progress.approved_current:
        more = " (or --allow-uncommented)" if draft.uncommented else ""
        return f"check the preview, then approve: `digest approve {d}`{more}"
    if record is not None and record.approved_current and not record.published_current:
        return f"publish: `digest approve {d}` or `digest send {d}`"
    if progress.outbox_done:
        return ("nothing while the config sends through the outbox: the issue was written "
                'there (a trial, no reader was mailed); with transport = "smtp", '
                f"`digest send {d}` sends it to every reader")
    return f"send: `digest send {d}` (or the scheduled send)"


def status(settings: Settings, day: date, rt: Runtime) -> DayStatus:
    """Read the day's issue from the store and the draft on disk (read only)."""
    path = layout.draft_path(settings, day)
    draft = DraftStatus(path=str(path), exists=path.exists())
    sha: str | None = None
    if draft.exists:
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        try:
            parsed = digest.parse_digest(digest.decode_text(data, path), path)
        except DigestError as exc:
            draft = replace(draft, error=str(exc))
        else:
            missing = uncommented(parsed.entries)
            draft = replace(draft, entries=len(parsed.entries),
                            commented=len(parsed.entries) - len(missing), uncommented=missing)
    if not store.check_present(layout.store_path(settings)):  # gone after it was created: an error
        return _day_status(settings, day, rt, Progress(None, None, sha), draft, None, 0, {}, 0)
    with closing(store.connect(layout.store_path(settings), rt.now)) as conn:
        collected = store.get_day(conn, day)
        record = store.get_issue_record(conn, day)
        now = Progress(collected.status if collected is not None else None, record, sha,
                       outbox_done=settings.delivery.transport == store.OUTBOX
                       and store.issue_outboxed_at(conn, day) is not None)
        candidates = store.count_candidates(conn, day)
        # an outbox trial delivered nothing for a real transport: count only the configured one
        counts = store.delivery_counts(conn, day, transport=settings.delivery.transport)
        pending = (_pending_readers(conn, day, record, settings.delivery.transport)
                   if record is not None else 0)
    draft = replace(draft, built_from_it=now.built_current)
    return _day_status(settings, day, rt, now, draft, collected, candidates, counts, pending)


def _pending_readers(
    conn: sqlite3.Connection, day: date, record: IssueRecord, transport: str
) -> int:
    """Active readers who want the issue (by its recorded tags) with no final delivery
    through the configured transport (an outbox trial is none for a real one)."""
    if record.sent:
        return 0
    tags = record.tags
    return sum(
        1 for sub, done in store.iter_recipients(conn, day, transport=transport)
        if done not in ("sent", "failed") and wants(sub, tags)
    )


def _day_status(
    settings: Settings, day: date, rt: Runtime, progress: Progress, draft: DraftStatus,
    collected: store.DayRecord | None, candidates: int, counts: dict[str, int], pending: int,
) -> DayStatus:
    record = progress.record
    built = None
    if record is not None and record.built_hash is not None:
        summary = record.build
        built = BuiltStatus(
            hash=record.built_hash,
            at=record.built_at.isoformat() if record.built_at else None,
            entries=summary.entries if summary else None,
            tags=summary.tags if summary else (),
            sizes={v.name: v.html_bytes for v in summary.variants} if summary else {},
            preview=str(layout.outbox_day(settings, day)),
        )
    warnings: list[str] = []
    if draft.exists and record is not None and record.built and not progress.built_current:
        warnings.append("the draft changed since the build")
    if record is not None and record.built and record.build is None:
        warnings.append("built by an older version: build again before sending")
    return DayStatus(
        day=day,
        state=record.state.value if record is not None
        else State.COLLECTED.value if progress.collected == "collected" else None,
        collected=progress.collected,
        announced=collected.announced if collected is not None else None,
        kept=collected.kept if collected is not None else None,
        candidates=candidates,
        draft=draft,
        built=built,
        approved=record is not None and record.approved_current,
        approved_at=_iso(record.approved_at) if record else None,
        published=record is not None and record.published_current,
        published_at=_iso(record.published_at) if record else None,
        correction_pending=record is not None and record.sent and record.correction_pending,
        sent_at=_iso(record.sent_at) if record else None,
        deliveries=counts,
        pending=pending,
        approval_required=settings.approval.required,
        next_step=next_step(day, progress, draft, settings.approval.required),
        next_scheduled=next_scheduled(settings, rt.now()),
        warnings=tuple(warnings),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def next_scheduled(settings: Settings, now: datetime) -> str | None:
    """The next fire of the [schedule] cron lines after `now`, in newsletter time (what
    `digest schedule` would run next)."""
    from pipeline.services.timetable import triggers_for  # APScheduler, only when asked

    fires = []
    for job, trigger in triggers_for(settings).items():
        fire = trigger.get_next_fire_time(None, now.astimezone(settings.tzinfo))
        if fire is not None:
            fires.append((fire, job))
    if not fires:
        return None
    fire, job = min(fires)
    return f"{job} at {fire.strftime('%Y-%m-%d %H:%M %Z')}"

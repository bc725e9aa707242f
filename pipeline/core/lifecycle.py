"""The one home of an issue's lifecycle: its states, the record build writes, the day's status.

    collected → drafted → built → approved → published → sent

- `collected`: the day's papers and candidates are stored; `drafted`: drafts/D.txt exists.
- `built`: `digest build` merged the draft and rendered the emails and the private preview
  (outbox/D/preview.*, outbox/D/site/); it wrote the issue's `IssueRecord` (hashes, variants,
  tags, entries without commentary) once. Nothing of D is in site/ or a feed yet.
- `approved`: `digest approve` recorded the built hash (approval mode); it publishes at once,
  so `approved` only lasts when that publish was interrupted (the send publishes first).
- `published`: site/ and the feeds show the issue (approve in approval mode; in auto mode the
  send step publishes right before sending).
- `sent`: every reader was handled. A sent issue is final for email: editing its draft, then
  build + approve is a *correction* (page and feed item updated in place, re-dated, never a
  second email).

Every stage reads the record (send gets its variants and tags from it, status and the studio
their figures); none re-derives it from rendered text. `status()` is the day at a glance.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.models import EmailVariant, Entry, Issue

if TYPE_CHECKING:
    from pipeline.core.config import Settings
    from pipeline.core.runtime import Runtime


class State(StrEnum):
    """Where an issue is in its lifecycle; each state includes every earlier one."""

    COLLECTED = "collected"
    DRAFTED = "drafted"
    BUILT = "built"
    APPROVED = "approved"
    PUBLISHED = "published"
    SENT = "sent"

    @property
    def rank(self) -> int:
        """Position in the lifecycle (collected = 0)."""
        return list(State).index(self)

    def at_least(self, other: State) -> bool:
        """Whether this state is `other` or later."""
        return self.rank >= other.rank


@dataclass(frozen=True)
class VariantInfo:
    """One rendered email variant as the record keeps it: name, subject, sizes in bytes."""

    name: str
    subject: str
    html_bytes: int
    text_bytes: int


@dataclass(frozen=True)
class Uncommented:
    """A draft entry published without commentary (an auto-picked candidate left as is)."""

    line: int | None
    title: str


@dataclass(frozen=True)
class BuildSummary:
    """What build found, written once with the build and read by send, status, the studio."""

    variants: tuple[VariantInfo, ...]
    tags: tuple[str, ...]  # normalised, in order of first appearance
    entries: int
    uncommented: tuple[Uncommented, ...]

    def to_json(self) -> str:
        """Stable JSON for the store."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BuildSummary:
        """Read back what to_json wrote."""
        data = json.loads(text)
        return cls(
            variants=tuple(VariantInfo(**v) for v in data["variants"]),
            tags=tuple(data["tags"]),
            entries=int(data["entries"]),
            uncommented=tuple(Uncommented(**u) for u in data["uncommented"]),
        )


def uncommented(entries: Sequence[Entry]) -> tuple[Uncommented, ...]:
    """The entries with no commentary at all (what the curator has not written about)."""
    return tuple(Uncommented(e.line, e.title) for e in entries if not e.commentary)


def summarize_build(issue: Issue, variants: Sequence[EmailVariant]) -> BuildSummary:
    """The record's build part, from the merged issue and its rendered variants."""
    return BuildSummary(
        variants=tuple(
            VariantInfo(v.variant, v.subject, len(v.html.encode("utf-8")),
                        len(v.text.encode("utf-8")))
            for v in variants
        ),
        tags=issue.tags,
        entries=len(issue.entries),
        uncommented=uncommented(issue.entries),
    )


@dataclass(frozen=True)
class IssueRecord:
    """Everything the store knows about one day's issue (see the module docstring)."""

    day: date
    state: State
    draft_sha: str | None = None  # sha256 of the draft bytes the build read
    built_hash: str | None = None  # sha256 over draft_sha and every rendered variant
    approved_hash: str | None = None
    published_hash: str | None = None  # the built hash site/ shows
    build: BuildSummary | None = None  # None: never built (or built by an older version)
    built_at: datetime | None = None
    approved_at: datetime | None = None
    published_at: datetime | None = None
    sent_at: datetime | None = None

    @property
    def built(self) -> bool:
        """Whether a build exists."""
        return self.built_hash is not None

    @property
    def approved_current(self) -> bool:
        """Whether the current build is the approved one."""
        return self.built and self.approved_hash == self.built_hash

    @property
    def published_current(self) -> bool:
        """Whether site/ shows the current build."""
        return self.built and self.published_hash == self.built_hash

    @property
    def sent(self) -> bool:
        """Whether the email went out (the issue is final for email)."""
        return self.state is State.SENT

    @property
    def correction_pending(self) -> bool:
        """A published issue rebuilt with other content: approve publishes the correction."""
        return self.published_hash is not None and self.built and not self.published_current

    @property
    def tags(self) -> frozenset[str]:
        """The issue's tags (who gets it), as the build recorded them."""
        return frozenset(self.build.tags) if self.build is not None else frozenset()


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def record_from_row(row: sqlite3.Row) -> IssueRecord:
    """An IssueRecord from a store `issues` row (`SELECT *`)."""
    return IssueRecord(
        day=date.fromisoformat(row["date"]),
        state=State(row["state"]),
        draft_sha=row["draft_sha"],
        built_hash=row["built_hash"],
        approved_hash=row["approved_hash"],
        published_hash=row["published_hash"],
        build=BuildSummary.from_json(row["build"]) if row["build"] else None,
        built_at=_when(row["built_at"]),
        approved_at=_when(row["approved_at"]),
        published_at=_when(row["published_at"]),
        sent_at=_when(row["sent_at"]),
    )


# --- transitions (pure) ----------------------------------------------------------------------


def state_after_build(record: IssueRecord | None, built_hash: str) -> State:
    """The state a build leaves: a published or sent issue stays so (the new build is a
    correction to approve); an approval survives only a byte-identical rebuild."""
    if record is not None and record.state.at_least(State.PUBLISHED):
        return record.state
    if record is not None and record.approved_hash == built_hash:
        return State.APPROVED
    return State.BUILT


def state_after_draft(record: IssueRecord | None) -> State:
    """Drafting moves a collected (or unknown) issue to drafted and leaves later ones."""
    if record is None or record.state is State.COLLECTED:
        return State.DRAFTED
    return record.state


def state_after_approve(record: IssueRecord) -> State:
    """Approving makes a built issue approved; a published or sent one stays so (approving
    its rebuild publishes the correction)."""
    return record.state if record.state.at_least(State.PUBLISHED) else State.APPROVED


def state_after_publish(record: IssueRecord) -> State:
    """Publishing makes an issue published; a sent one stays sent."""
    return State.SENT if record.sent else State.PUBLISHED


def with_correction(previous: Issue | None, issue: Issue, now: datetime) -> Issue:
    """The issue as it is published: republishing other content than what readers saw is a
    correction dated `now`; the same content keeps the earlier correction date (if any)."""
    if previous is None:
        return replace(issue, corrected=None)
    if _same_content(previous, issue):
        return replace(issue, corrected=previous.corrected)
    return replace(issue, corrected=now)


def _same_content(a: Issue, b: Issue) -> bool:
    from pipeline.store import issue_json  # the archive's own notion of what is shown

    return issue_json(replace(a, corrected=None)) == issue_json(replace(b, corrected=None))


# --- the daily job's view: what is done (pure) -----------------------------------------------

STEPS = ("collect", "draft", "build", "send")


@dataclass(frozen=True)
class Progress:
    """What the store and the draft on disk say is done for a day (the daily job's view)."""

    collected: str | None  # days.status: 'collected' | 'empty' | None
    record: IssueRecord | None
    draft_sha: str | None  # sha256 of drafts/D.txt now (None: no draft)

    @property
    def state(self) -> State | None:
        """The issue's state, if it has a row."""
        return self.record.state if self.record is not None else None

    @property
    def built_current(self) -> bool:
        """Built from the draft as it is now."""
        return self.record is not None and self.record.built \
            and self.record.draft_sha == self.draft_sha

    @property
    def approved_current(self) -> bool:
        """Built from the draft as it is now, and that build is the approved one."""
        return self.built_current and self.record is not None and self.record.approved_current


def step_done(step: str, progress: Progress) -> bool:
    """Whether `step` of the daily job needs no run: a sent issue is final for the daily job
    (a correction is the curator's build + approve); an edited draft makes the build stale."""
    if progress.state is State.SENT:
        return True
    if step == "collect":
        return progress.collected is not None
    if step == "draft":
        return progress.draft_sha is not None and progress.state is not None \
            and progress.state.at_least(State.DRAFTED)
    if step == "build":
        return progress.built_current
    return False


def approval_missing(required: bool, progress: Progress) -> bool:
    """Whether the send must wait for `digest approve`."""
    return required and not progress.approved_current


# --- the day at a glance ---------------------------------------------------------------------


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
    deliveries: dict[str, int]  # sent / failed / deferred / sending, from the ledger
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

    def text_lines(self) -> list[str]:
        """`digest status` as text: one line per stage."""
        def yes(flag: bool, when: str | None) -> str:
            return f"yes ({when})" if flag and when else "yes" if flag else "no"

        lines = [f"issue of {self.day}: {self.state or 'nothing yet'}"
                 + (" (approval required)" if self.approval_required else " (auto mode)")]
        if self.collected == "empty":
            lines.append("collected:   no announcement that day (the feed was empty)")
        elif self.collected:
            lines.append(f"collected:   {self.announced} announced, {self.kept} kept, "
                         f"{self.candidates} candidates")
        else:
            lines.append("collected:   no")
        d = self.draft
        if not d.exists:
            lines.append(f"draft:       none ({d.path})")
        elif d.error:
            lines.append(f"draft:       does not parse: {d.error}")
        else:
            lines.append(f"draft:       {d.entries} entries, {d.commented} with commentary, "
                         f"{len(d.uncommented)} without ({d.path})")
            for entry in d.uncommented[:10]:
                lines.append(f"               no commentary: line {entry.line}: {entry.title}")
            if len(d.uncommented) > 10:
                lines.append(f"               … {len(d.uncommented) - 10} more")
        if self.built:
            b = self.built
            sizes = ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in b.sizes.items())
            lines.append(f"built:       {b.hash[:12]} ({b.at}; {b.entries} entries; {sizes}); "
                         f"preview {b.preview}")
        else:
            lines.append("built:       no")
        lines.append(f"approved:    {yes(self.approved, self.approved_at)}" if self.approval_required
                     or self.approved else "approved:    not needed (auto mode)")
        lines.append(f"published:   {yes(self.published, self.published_at)}"
                     + ("; a correction is built, not published" if self.correction_pending else ""))
        counts = self.deliveries
        lines.append(f"sent:        {counts.get('sent', 0)} sent, {counts.get('failed', 0)} failed, "
                     f"{counts.get('deferred', 0) + counts.get('sending', 0)} to retry, "
                     f"{self.pending} pending" + (f" (done {self.sent_at})" if self.sent_at else ""))
        for warning in self.warnings:
            lines.append(f"warning:     {warning}")
        lines.append(f"next:        {self.next_step}")
        if self.next_scheduled:
            lines.append(f"scheduled:   {self.next_scheduled} (when `digest schedule` runs)")
        return lines


def next_step(
    day: date, progress: Progress, draft: DraftStatus, approval_required: bool
) -> str:
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
    return f"send: `digest send {d}` (or the scheduled send)"


def status(settings: Settings, day: date, rt: Runtime) -> DayStatus:
    """Read the day's issue from the store and the draft on disk (read only)."""
    # Imported here: the store imports this module's types.
    import hashlib

    from pipeline import store
    from pipeline.core import digest_format as digest
    from pipeline.core.errors import DigestError

    path = settings.paths.drafts / f"{day.isoformat()}.txt"
    draft = DraftStatus(path=str(path), exists=path.exists())
    draft_sha: str | None = None
    if draft.exists:
        data = path.read_bytes()
        draft_sha = hashlib.sha256(data).hexdigest()
        try:
            parsed = digest.parse_digest(digest.decode_text(data, path), path)
        except DigestError as exc:
            draft = replace(draft, error=str(exc))
        else:
            missing = uncommented(parsed.entries)
            draft = replace(draft, entries=len(parsed.entries),
                            commented=len(parsed.entries) - len(missing), uncommented=missing)
    if not store.check_present(settings.db_path):  # gone after it was created: an error
        progress = Progress(None, None, draft_sha)
        return _day_status(settings, day, rt, progress, draft, None, 0, {}, 0)
    conn = store.connect(settings.db_path)
    try:
        day_row = store.get_day(conn, day)
        record = store.get_issue_record(conn, day)
        progress = Progress(day_row["status"] if day_row is not None else None, record,
                            draft_sha)
        candidates = store.count_candidates(conn, day)
        counts = store.delivery_counts(conn, day)
        pending = _pending_readers(conn, day, record) if record is not None else 0
    finally:
        conn.close()
    draft = replace(draft, built_from_it=progress.built_current)
    return _day_status(settings, day, rt, progress, draft, day_row, candidates, counts, pending)


def _pending_readers(conn: sqlite3.Connection, day: date, record: IssueRecord) -> int:
    """Active readers who want the issue (by its recorded tags) with no final delivery."""
    from pipeline import store
    from pipeline.deliver.dispatch import wants

    if record.sent:
        return 0
    tags = record.tags
    return sum(
        1 for sub, done in store.iter_recipients(conn, day)
        if done not in ("sent", "failed") and wants(sub, tags)
    )


def _day_status(
    settings: Settings, day: date, rt: Runtime, progress: Progress, draft: DraftStatus,
    day_row: sqlite3.Row | None, candidates: int, counts: dict[str, int], pending: int,
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
            preview=str(settings.paths.outbox / day.isoformat()),
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
        announced=day_row["announced"] if day_row is not None else None,
        kept=day_row["kept"] if day_row is not None else None,
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
    from pipeline.services.schedule import triggers_for  # APScheduler, only when asked

    fires = []
    for job, trigger in triggers_for(settings).items():
        fire = trigger.get_next_fire_time(None, now.astimezone(settings.tzinfo))
        if fire is not None:
            fires.append((fire, job))
    if not fires:
        return None
    fire, job = min(fires)
    return f"{job} at {fire.strftime('%Y-%m-%d %H:%M %Z')}"


def preview_paths(settings: Settings, day: date) -> tuple[Path, Path]:
    """The email preview of the widest variant and the site preview of the day."""
    folder = settings.paths.outbox / day.isoformat()
    return folder / f"preview.{settings.variants[-1]}.html", folder / "site"

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
their figures); none re-derives it from rendered text. The guards at the end are the one
place each step's refusals are written (pure functions of the record). The day at a glance
(`digest status`) is pipeline.services.status: it reads the store, which core never opens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from pipeline.core.errors import ApprovalError
from pipeline.core.issue_codec import issue_json
from pipeline.core.models import EmailVariant, Entry, Issue


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
    # the archive's own notion of what is shown: the JSON the store keeps
    return issue_json(replace(a, corrected=None)) == issue_json(replace(b, corrected=None))


# --- the daily job's view: what is done (pure) -----------------------------------------------

STEPS = ("collect", "draft", "build", "send")  # the daily job's steps, in order


@dataclass(frozen=True)
class Progress:
    """What the store and the draft on disk say is done for a day (the daily job's view)."""

    collected: str | None  # days.status: 'collected' | 'empty' | None
    record: IssueRecord | None
    draft_sha: str | None  # sha256 of drafts/D.txt now (None: no draft)
    # The config sends through the outbox and an outbox send of the issue finished: for the
    # daily job that trial is final like a sent issue (a real transport sends it again).
    outbox_done: bool = False

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
    if progress.state is State.SENT or progress.outbox_done:
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


# --- guards (pure): what each step refuses ---------------------------------------------------


def require_built(record: IssueRecord | None, day: date) -> IssueRecord:
    """The record of a built issue; refuses an issue never built."""
    if record is None or not record.built:
        raise ApprovalError(f"the issue of {day} is not built yet: run `digest build --date {day}`")
    return record


def require_build_summary(record: IssueRecord, day: date) -> BuildSummary:
    """The build's summary; refuses an issue built by an older version (no summary)."""
    if record.build is None:
        raise older_build(day)
    return record.build


def older_build(day: date) -> ApprovalError:
    """The refusal of an issue built by an older version (no summary, no content stored)."""
    return ApprovalError(f"the issue of {day} was built by an older version: run "
                         f"`digest build --date {day}` first")


def require_current_build(
    record: IssueRecord | None, day: date, draft_sha: str | None, draft_name: str
) -> IssueRecord:
    """The record of an issue built from the draft whose bytes hash to `draft_sha` now;
    refuses one never built, or built from another draft."""
    record = require_built(record, day)
    if draft_sha != record.draft_sha:
        raise ApprovalError(
            f"{draft_name} changed since the issue was built: "
            f"run `digest build --date {day}`, check the preview, then `digest approve --date {day}`"
        )
    return record


def require_approved(record: IssueRecord, day: date, required: bool) -> None:
    """Refuses, when approval is required, an issue not approved or changed since."""
    if not required:
        return
    if record.approved_hash is None:
        raise ApprovalError(
            f"the issue of {day} is not approved: check outbox/{day}/preview.*.html and "
            f"outbox/{day}/site/, then run `digest approve --date {day}`"
        )
    if not record.approved_current:
        raise ApprovalError(
            f"the issue of {day} changed since it was approved: check the preview, "
            f"then run `digest approve --date {day}` again"
        )


def require_commentary(
    summary: BuildSummary, day: date, required: bool, allow_uncommented: bool, draft_name: str
) -> None:
    """Refuses, in approval mode, entries without commentary unless `allow_uncommented`; the
    error carries the entries (`UncommentedError.entries`) for the caller to list."""
    missing = summary.uncommented
    if missing and required and not allow_uncommented:
        raise UncommentedError(
            f"{len(missing)} entr{'y has' if len(missing) == 1 else 'ies have'} no "
            f"commentary (listed above): write it or delete the entries, `digest build "
            f"--date {day}`, or approve as is with `digest approve --date {day} "
            "--allow-uncommented`",
            missing, draft_name,
        )


class UncommentedError(ApprovalError):
    """Approval refused: entries without commentary (listed in `entries`)."""

    def __init__(self, message: str, entries: tuple[Uncommented, ...], draft_name: str) -> None:
        super().__init__(message)
        self.entries = entries
        self.draft_name = draft_name

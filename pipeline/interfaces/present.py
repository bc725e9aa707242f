"""The one presenter: a service's report as the CLI's lines, as `--json` data, and as the
studio's messages (the same lines). Services return reports and print nothing."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pipeline.core.errors import DigestError
from pipeline.core.lifecycle import UncommentedError
from pipeline.deliver.dispatch import TEST_PREFIX, Progress
from pipeline.services import (
    ApproveReport,
    BuildReport,
    CollectReport,
    DailyReport,
    DayStatus,
    DraftReport,
    PublishReport,
    SendReport,
    StepEvent,
)
from pipeline.services.ranking import TrainReport

# --- lines -----------------------------------------------------------------------------------


def lines(report: object, *, published_shown: bool = False) -> list[str]:
    """The report as the lines the CLI prints (and the studio shows). `published_shown`: a
    send's publishing was shown already, as it happened."""
    if isinstance(report, CollectReport):
        return collect_lines(report)
    if isinstance(report, DraftReport):
        return draft_lines(report)
    if isinstance(report, BuildReport):
        return build_lines(report)
    if isinstance(report, PublishReport):
        return publish_lines(report)
    if isinstance(report, ApproveReport):
        return approve_lines(report)
    if isinstance(report, SendReport):
        return send_lines(report, published_shown=published_shown)
    if isinstance(report, StepEvent):
        return [step_line(report)]
    if isinstance(report, DailyReport):
        return [report.outcome]
    if isinstance(report, DayStatus):
        return status_lines(report)
    if isinstance(report, TrainReport):
        return train_lines(report)
    raise TypeError(f"no presenter for {type(report).__name__}")


def _warnings(warnings: Iterable[str], prefix: str = "warning") -> list[str]:
    return [f"{prefix}: {w}" for w in warnings]


def collect_lines(r: CollectReport) -> list[str]:
    """`digest collect`."""
    if r.outcome == "no-announcement":
        return [f"{r.reason}; nothing to collect"]
    if r.outcome == "kept":
        return [f"{r.day}: the feed is empty now; keeping what was collected earlier"]
    if r.outcome == "empty":
        return [f"{r.day}: no announcement (the feed is empty); nothing collected"]
    types = ", ".join(f"{k} {n}" for k, n in r.by_type)
    return [
        f"{r.day}: announced {r.announced} ({types}); kept {r.kept} "
        f"({', '.join(r.announce_types)}"
        + (f", +{r.from_api} from API searches" if r.from_api else "")
        + f"); {r.candidates} candidates ({r.added} new); "
        f"{r.updated} papers updated to a new version",
        "matched: " + ", ".join(f"#{name} {n}" for name, n in r.matched),
        *([ranked_line(r.ranking)] if r.ranking is not None else []),
        *_warnings(r.warnings),
    ]


def ranked_line(r: TrainReport) -> str:
    """How the candidates were ordered: by the learned model, and what it learned from."""
    return (f"ranked by the model learned from your picks ({r.positives} picks, {r.negatives} "
            f"other candidates from the days before {r.trained_on}"
            + ("; retrained now)" if r.outcome == "trained" else ")"))


def train_lines(r: TrainReport) -> list[str]:
    """`digest rank train`."""
    if r.outcome == "cold start":
        return _warnings(r.warnings, "note")
    what = "trained" if r.outcome == "trained" else "up to date:"
    return [f"{what} {r.model} ({r.positives} picks, {r.negatives} other candidates, "
            f"learned from the days before {r.trained_on})"]


def draft_lines(r: DraftReport) -> list[str]:
    """`digest draft`."""
    out = _warnings(r.warnings)
    if r.outcome == "sent":
        return [*out, f"the issue of {r.day} was already sent; {r.path.name} left as it is (to "
                      f"correct it: edit it, `digest build --date {r.day}`, `digest approve "
                      f"--date {r.day}`)"]
    what = "unchanged:" if r.outcome == "unchanged" else r.outcome
    return [*out, f"{what} {r.path} ({r.entries} entr{'y' if r.entries == 1 else 'ies'}; "
                  f"{r.added} added" + (f", {r.filled} filled from notes" if r.filled else "")
                  + ")"]


def build_line(r: BuildReport) -> str:
    """The one line that says what was built (the studio's message for a build)."""
    sizes = ", ".join(f"{name} {size / 1024:.0f} KB" for name, size in r.sizes)
    return f"built the issue of {r.day} ({r.entries} entries; {sizes}; {r.built_hash[:12]})"


def build_lines(r: BuildReport) -> list[str]:
    """`digest build`."""
    out = [*_warnings(r.warnings), build_line(r)]
    if r.layout_note:  # the size guard switched to compact: say so
        out.append(r.layout_note)
    if r.uncommented:
        out.append(f"{r.uncommented} of {r.entries} entries have no commentary"
                   + (" (`digest approve` refuses them unless --allow-uncommented)"
                      if r.approval_required else ""))
    out.append(f"site preview: {r.site_preview} ({r.site_changes} files will change in "
               f"{r.site_folder}; nothing there changed yet)")
    out += [f"preview: {p}" for p in r.previews]
    if r.record.sent:
        out.append(f"the issue of {r.day} was sent: this build is a correction; "
                   f"`digest approve --date {r.day}` publishes it (no email is sent again)")
    return out


def publish_lines(r: PublishReport) -> list[str]:
    """What publishing did (nothing: no line)."""
    if not r.published:
        return []
    what = "published the correction of" if r.correction else "published"
    return [f"{what} the issue of {r.day}: {r.index} ({r.changed} files changed)"]


def approve_lines(r: ApproveReport) -> list[str]:
    """`digest approve`."""
    out = [f"approved the issue of {r.day} ({r.built_hash[:12]})", *publish_lines(r.publish)]
    if r.sent_at is not None:
        out.append(("the correction is published; " if r.publish.published
                    else "site/ already shows it; ")
                   + f"the issue was already sent ({r.sent_at}), so no email goes out again")
    else:
        out.append(f"next: `digest send --date {r.day}` (or the scheduled send)")
    return out


def send_lines(r: SendReport, *, published_shown: bool = False) -> list[str]:
    """`digest send`, in the order it happened: the publishing right before it (unless
    `published_shown`: said already, as it happened), then what the send did."""
    out = publish_lines(r.publish) if r.publish is not None and not published_shown else []
    if r.shortfall is not None:
        out.append(f"warning: sending over {r.shortfall.opened} of {r.shortfall.asked} "
                   f"connections: {r.shortfall.reason}")
    out += [f"failed: {f.recipient}: {f.reason}" for f in r.failures]
    if r.mode == "dry-run":
        out.append(f"dry run: wrote {r.sent} messages to {r.folder}; recorded nothing")
    elif r.mode == "test":
        out += [f"sent a {TEST_PREFIX.strip()} copy ({c.variant}) of the issue of {r.day} to "
                f"{c.target}; recorded nothing" for c in r.test_copies]
    elif r.mode == "sent":
        out.append(f"issue {r.day}: sent {r.sent}, failed {r.failed}, skipped {r.skipped}"
                   + (f", deferred {r.deferred}" if r.deferred else ""))
        if r.outbox is not None:
            out.append(f"outbox: the messages are files in {r.outbox}; nothing reached a "
                       "reader (a trial: with transport = \"smtp\" `digest send` still sends "
                       "to every reader)")
    out += _warnings(r.warnings, "note")
    if r.mode == "already-sent":
        out.append(
            f"the issue of {r.day} was already sent ({r.sent_at}); nothing to do. "
            + (f"Its correction is built: `digest approve --date {r.day}` publishes it "
               "(no email goes out again)" if r.correction_pending else
               f"To correct it: edit {r.draft}, `digest build --date {r.day}`, `digest approve "
               f"--date {r.day}`: the page and feed item are updated, no email goes out again"))
    return out


def step_line(e: StepEvent) -> str:
    """A step of the daily job starting, skipped as done, or an issue sent late."""
    if e.what == "late":
        return f"{e.day}: approved after its send; sending it now"
    if e.what == "done":
        return f"{e.day}: {e.step}: already done"
    return f"{e.day}: {e.step} ..."


def error_lines(exc: DigestError, *, published_shown: bool = False) -> list[str]:
    """What an error lists before its one line: the entries approval refused; what the
    failed step did before it stopped (a send's totals before "... were deferred")."""
    if isinstance(exc, UncommentedError):
        return [f"no commentary: {exc.draft_name}:{e.line}: {e.title}" for e in exc.entries]
    if exc.report is not None:
        return lines(exc.report, published_shown=published_shown)
    return []


# --- the day's status: worded once, laid out per medium ----------------------------------------


def status_rows(s: DayStatus) -> list[tuple[str | None, str]]:
    """The day at a glance as (label, text) rows; label None continues the row above."""
    def when(flag: bool, at: str | None) -> str:
        return f"yes ({at})" if flag and at else "yes" if flag else "no"

    rows: list[tuple[str | None, str]] = [
        (f"issue of {s.day}", (s.state or "nothing yet")
         + (" (approval required)" if s.approval_required else " (auto mode)"))]
    if s.collected == "empty":
        rows.append(("collected", "no announcement that day (the feed was empty)"))
    elif s.collected:
        rows.append(("collected", f"{s.announced} announced, {s.kept} kept, "
                                  f"{s.candidates} candidates"))
    else:
        rows.append(("collected", "no"))
    d = s.draft
    if not d.exists:
        rows.append(("draft", f"none ({d.path})"))
    elif d.error:
        rows.append(("draft", f"does not parse: {d.error}"))
    else:
        rows.append(("draft", f"{d.entries} entries, {d.commented} with commentary, "
                              f"{len(d.uncommented)} without ({d.path})"))
        rows += [(None, f"no commentary: line {e.line}: {e.title}") for e in d.uncommented[:10]]
        if len(d.uncommented) > 10:
            rows.append((None, f"… {len(d.uncommented) - 10} more"))
    if s.built:
        b = s.built
        sizes = ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in b.sizes.items())
        rows.append(("built", f"{b.hash[:12]} ({b.at}; {b.entries} entries; {sizes}); "
                              f"preview {b.preview}"
                     + ("" if d.built_from_it or not d.exists else
                        "; stale: the draft changed since")))
    else:
        rows.append(("built", "no"))
    if s.approved and (d.built_from_it or not d.exists):
        approval = f"current ({s.approved_at})" if s.approved_at else "current"
    elif s.approved:
        approval = "not approved for this draft (it changed since the approved build)"
    elif s.approval_required:
        approval = "not approved"
    else:
        approval = "not required (auto mode)"
    rows.append(("approval", approval))
    rows.append(("published", when(s.published, s.published_at)
                 + ("; a correction is built, not published" if s.correction_pending else "")))
    counts = s.deliveries
    rows.append(("sent", f"{counts.get('sent', 0)} sent, {counts.get('failed', 0)} failed, "
                         f"{counts.get('deferred', 0) + counts.get('sending', 0)} to retry, "
                         f"{s.pending} pending" + (f" (done {s.sent_at})" if s.sent_at else "")))
    rows += [("warning", w) for w in s.warnings]
    rows.append(("next", s.next_step))
    if s.next_scheduled:
        rows.append(("scheduled", f"{s.next_scheduled} (when `digest schedule` runs)"))
    return rows


STATUS_LABEL_WIDTH = 12  # "scheduled:" and the rest line up in a terminal


def status_lines(s: DayStatus) -> list[str]:
    """`digest status` as text: one line per stage, labels in a column."""
    out = []
    for label, text in status_rows(s):
        if label is None:
            out.append(" " * (STATUS_LABEL_WIDTH + 3) + text)
        else:
            out.append(f"{label + ':':<{STATUS_LABEL_WIDTH}} {text}")
    return out


def status_web_lines(s: DayStatus, *, skip: Sequence[str] = ("next",)) -> list[str]:
    """The status as the studio lists it: the same rows, `label: text` (`skip`: rows the
    page shows elsewhere)."""
    return [f"{label}: {text}" if label is not None else f"  {text}"
            for label, text in status_rows(s) if label not in skip]


# --- JSON ------------------------------------------------------------------------------------


def to_json(report: object) -> dict[str, Any]:
    """The report as plain JSON data: its fields (dates and times as ISO text, paths as
    text), plus "report": which kind it is."""
    data = _plain(report)
    assert isinstance(data, dict)
    kind = type(report).__name__.removesuffix("Report").lower()
    return {"report": kind, **data}


def _plain(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


# --- progress --------------------------------------------------------------------------------


def progress_bar(label: str) -> Any:
    """A `track` for a service: wraps its items in a progress bar on stderr."""
    import click

    def track(items: list[Any]) -> AbstractContextManager[Iterable[Any]]:
        return click.progressbar(items, label=label, file=sys.stderr)

    return track


def progress_counter(label: str) -> Progress:
    """A `progress` for a service that counts as it goes (a send: readers passed): given
    the total, a progress bar on stderr whose value advances it."""
    import click

    @contextmanager
    def progress(total: int) -> Iterator[Callable[[int], None]]:
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield bar.update

    return progress

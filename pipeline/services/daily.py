"""`digest run`: one daily cycle — collect, draft, build, then send when approved."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta

from pipeline import store
from pipeline.core import calendar as arxiv_calendar
from pipeline.core import layout, lifecycle, locks
from pipeline.core.config import Settings
from pipeline.core.errors import DigestError, InputError
from pipeline.core.lifecycle import State
from pipeline.core.runtime import Runtime
from pipeline.deliver.dispatch import Progress
from pipeline.services import sending
from pipeline.services.building import build
from pipeline.services.collecting import collect
from pipeline.services.common import open_store, read_draft
from pipeline.services.drafting import draft
from pipeline.services.status import progress

StepFn = Callable[[Settings, date, Runtime], object]


@dataclass(frozen=True)
class Steps:
    """The stage functions the daily job calls, in order; tests pass fakes."""

    collect: StepFn
    draft: StepFn
    build: StepFn
    send: StepFn


@dataclass(frozen=True)
class StepEvent:
    """The daily job at a step: `what` is 'start', 'done' (already done: skipped) or, for
    the send step of an issue approved after its own send, 'late'."""

    day: date
    step: str
    what: str


@dataclass(frozen=True)
class DailyReport:
    """What one daily cycle did: the steps it ran, the issue's state after, one line."""

    day: date | None
    ran: tuple[str, ...]
    state: str | None
    outcome: str


Listener = Callable[[object], None]


def _ignore(_event: object) -> None:
    pass


def default_steps(on_event: Listener = _ignore, progress: Progress | None = None) -> Steps:
    """The real stages; `on_event` hears of the send's publishing as it happens, `progress`
    of each reader the send passes (the interface's progress bar)."""
    def send(settings: Settings, day: date, rt: Runtime) -> object:
        return sending.send(settings, day, rt, on_publish=on_event, progress=progress)

    return Steps(collect=collect, draft=draft, build=build, send=send)


class StepFailed(DigestError):
    """A step of the daily job failed; keeps the exit code of the error that stopped it."""

    def __init__(self, day: date, step: str, cause: DigestError) -> None:
        super().__init__(
            f"{day}: {step} failed: {cause} (`digest run --date {day}` continues from {step})",
            report=cause.report,
        )
        self.exit_code = cause.exit_code


def _held_back(
    settings: Settings, day: date, status: lifecycle.Progress, send_issue: bool
) -> str | None:
    """Why the send step waits (what the curator should do next), or None when it may run."""
    mail, pages = layout.previews(settings, day)
    where = (f"draft {layout.draft_path(settings, day)}, preview {mail} and "
             f"{pages / 'index.html'}")
    if lifecycle.approval_missing(settings.approval.required, status):
        return (
            f"{day}: built, waiting for approval (nothing is public yet): check the {where}; "
            f"then `digest approve --date {day}` publishes it, and `digest run --date {day}` "
            "(or the scheduled send) sends it"
        )
    if not send_issue:
        return f"{day}: ready ({where}); it goes out at the scheduled send"
    return None


def daily(
    settings: Settings,
    day: date | None,
    rt: Runtime,
    *,
    send_issue: bool = True,
    steps: Steps | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_event: Listener = _ignore,
    progress: Progress | None = None,
) -> DailyReport:
    """One daily cycle: collect, draft, build, then send when approved (or approval is off).

    `day` None = the latest announcement out now. Steps the store records as done are
    skipped; a failing step raises StepFailed and the next run resumes there. `on_event`
    hears, as they happen, each StepEvent, each step's report and, last, the DailyReport
    returned; `progress`, the readers the real send step passes."""
    if steps is None:
        steps = default_steps(on_event, progress)
    report = _daily(settings, day, rt, send_issue, steps, should_stop, on_event)
    on_event(report)
    return report


def _daily(
    settings: Settings, day: date | None, rt: Runtime, send_issue: bool, steps: Steps,
    should_stop: Callable[[], bool], on_event: Listener,
) -> DailyReport:
    if day is None:
        day = arxiv_calendar.announcement_for(rt.now())
    reason = arxiv_calendar.why_no_announcement(day)
    if reason is not None:
        return DailyReport(day, (), None, f"{reason}; nothing to send")
    out_at = arxiv_calendar.announced_at(day)
    if rt.now() < out_at:
        local = out_at.astimezone(settings.tzinfo).strftime("%Y-%m-%d %H:%M %Z")
        raise InputError(f"the announcement of {day} is not out yet: arXiv publishes it at {local}")
    ran: list[str] = []
    with locks.hold_lock(layout.run_lock(settings), "another `digest run`"), \
            closing(open_store(settings, rt)) as conn:

        def report(line: str) -> DailyReport:
            return DailyReport(day, tuple(ran), progress(conn, settings, day).state, line)

        for step in lifecycle.STEPS:
            status = progress(conn, settings, day)
            if status.collected == "empty":
                return report(f"{day}: no announcement (the feed was empty: an arXiv "
                              "holiday); nothing to send")
            if lifecycle.step_done(step, status):
                on_event(StepEvent(day, step, "done"))
                continue
            waiting = _held_back(settings, day, status, send_issue) if step == "send" else None
            if waiting is not None:
                return report(waiting)
            if step == "build" and _nothing_picked(settings, day):
                return report(
                    f"{day}: the draft has no entries yet (no notes for the day's papers): "
                    f"pick papers in `digest studio --date {day}` or edit "
                    f"{layout.draft_path(settings, day)}, then `digest run --date {day}`")
            if should_stop():
                return report(f"{day}: stopped before {step} as asked; "
                              f"`digest run --date {day}` continues from there")
            on_event(StepEvent(day, step, "start"))
            try:
                done = getattr(steps, step)(settings, day, rt)
            except DigestError as exc:
                raise StepFailed(day, step, exc) from exc
            if done is not None:
                on_event(done)
            ran.append(step)
        final = progress(conn, settings, day)
        state = final.state
    if not ran and final.outbox_done and state is not State.SENT:
        return DailyReport(day, (), state, f"{day}: already sent to the outbox (a trial: no "
                           "reader was mailed); nothing to do")
    if not ran:
        return DailyReport(day, (), state, f"{day}: already {state}; nothing to do")
    trial = (" (sent to the outbox only: no reader was mailed)"
             if final.outbox_done and state is not State.SENT else "")
    return DailyReport(day, tuple(ran), state,
                       f"{day}: {', '.join(ran)} done; the issue is {state}{trial}")


def _nothing_picked(settings: Settings, day: date) -> bool:
    """Whether the day's draft reads as a draft with no entries (the curator has not picked
    yet); a missing or unreadable draft is the build's to report."""
    try:
        parsed, _ = read_draft(settings, day)
    except DigestError:
        return False
    return not parsed.entries


# An issue approved after its scheduled send still goes out at a later send, up to this many
# days after its date (older ones are news no longer: `digest send --date D` sends them).
LATE_SEND_DAYS = 7


def late_approved(settings: Settings, day: date) -> list[date]:
    """Issues before `day`, approved (and maybe published) but not sent, recent enough to
    send late."""
    since = day - timedelta(days=LATE_SEND_DAYS)
    trial = settings.delivery.transport == store.OUTBOX
    with closing(open_store(settings)) as conn:
        return sorted(
            d for state in (State.APPROVED, State.PUBLISHED)
            for d in store.issues_in_state(conn, state, since, day)
            # through the outbox, an issue already written there is done (see step_done)
            if not (trial and store.issue_outboxed_at(conn, d) is not None)
        )


def send_late(
    settings: Settings,
    day: date,
    rt: Runtime,
    *,
    steps: Steps | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_event: Listener = _ignore,
    progress: Progress | None = None,
) -> list[DailyReport]:
    """Send the issues approved after their own send went out (see LATE_SEND_DAYS); returns
    each one's outcome."""
    outcomes = []
    for late in late_approved(settings, day):
        on_event(StepEvent(late, "send", "late"))
        outcomes.append(daily(settings, late, rt, steps=steps, should_stop=should_stop,
                              on_event=on_event, progress=progress))
    return outcomes

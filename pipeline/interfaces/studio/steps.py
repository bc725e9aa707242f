"""The studio's only calls into the services (`run.build`, `run.approve`, `run.send`, …) and
the status panel: one small adapter, so that a change to how services report stays here."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import date

from pipeline import store
from pipeline.core.config import Settings
from pipeline.core.models import Digest, Paper
from pipeline.core.runtime import Runtime
from pipeline.services import run

# --- the issue's lifecycle: the one adapter over pipeline.core.lifecycle and run ------------------


@dataclass(frozen=True)
class Status:
    """What the status panel shows: `digest status` for the day, as lines."""

    lines: tuple[str, ...]
    next_step: str
    state: str | None
    built_current: bool
    approved_current: bool
    sent_at: str | None = None
    next_scheduled: str | None = None  # when the scheduled send runs next


def day_status(settings: Settings, day: date, rt: Runtime) -> Status:
    """The day at a glance, from `lifecycle.status` (what `digest status` prints)."""
    from pipeline.core import lifecycle

    s = lifecycle.status(settings, day, rt)
    d = s.draft
    lines = [
        f"state: {s.state or 'nothing collected yet'}",
        f"collected: {s.collected or 'not yet'}"
        + (f" ({s.kept} kept of {s.announced} announced; {s.candidates} candidates)"
           if s.collected == "collected" else ""),
        ("draft: " + (f"{d.entries} entries, {d.commented} with commentary" if d.exists and
                      d.error is None else d.error or "none yet")),
        "build: " + ((f"current ({s.built.at})" if d.built_from_it else
                      "stale: the draft changed since (build to refresh)")
                     if s.built is not None else "none yet"),
        "approval: " + (f"current ({s.approved_at})" if s.approved and d.built_from_it
                        else "not approved for this draft" if s.approval_required
                        else "not required (auto mode)"),
        "published: " + ("yes" if s.published else "no")
        + (" — a correction is waiting for approval" if s.correction_pending else ""),
    ]
    if s.sent_at:
        lines.append(f"sent: {s.sent_at} ({', '.join(f'{n} {k}' for k, n in sorted(s.deliveries.items()))})")
    elif s.pending:
        lines.append(f"readers waiting for it: {s.pending}")
    if s.next_scheduled:
        lines.append(f"next scheduled: {s.next_scheduled}")
    lines += [f"warning: {w}" for w in s.warnings]
    return Status(tuple(lines), s.next_step, s.state, d.built_from_it,
                  s.approved and d.built_from_it, s.sent_at or None,
                  next_send(settings, rt))


def next_send(settings: Settings, rt: Runtime) -> str | None:
    """When the scheduled send (`[schedule] send`) runs next, in newsletter time."""
    from pipeline.services.schedule import triggers_for

    trigger = triggers_for(settings).get("send")
    fire = (trigger.get_next_fire_time(None, rt.now().astimezone(settings.tzinfo))
            if trigger is not None else None)
    return fire.strftime("%Y-%m-%d %H:%M %Z") if fire is not None else None


def last_approved(settings: Settings, day: date) -> Digest | None:
    """The issue as last approved (approval publishes it: the archive's copy), if any."""
    with closing(run.open_store(settings)) as conn:
        published = store.archived_issue(conn, day)
    return None if published is None else Digest(day, published.entries)


def _build_if_stale(settings: Settings, day: date, rt: Runtime) -> None:
    with closing(run.open_store(settings, rt)) as conn:
        current = run.progress(conn, settings, day).built_current
    if not current:
        run.build(settings, day, rt)


def build(settings: Settings, day: date, rt: Runtime) -> None:
    """`digest build` (may look unresolved entries up on arXiv)."""
    run.build(settings, day, rt)


def approve(settings: Settings, day: date, rt: Runtime, allow_uncommented: bool) -> None:
    """Build if the draft changed since the last build, then `digest approve`
    [--allow-uncommented] (which publishes the issue)."""
    _build_if_stale(settings, day, rt)
    run.approve(settings, day, rt, allow_uncommented=allow_uncommented)


def send_test_copy(settings: Settings, day: date, rt: Runtime, to: str, variant: str) -> None:
    """`digest send --to ADDR --variant V`, built first if the draft changed (the copy is
    what the preview shows); records nothing."""
    _build_if_stale(settings, day, rt)
    run.send(settings, day, rt, to=to, variant=variant)


def draft(settings: Settings, day: date, rt: Runtime) -> None:
    """`digest draft`."""
    run.draft(settings, day, rt)



def lookup_paper(settings: Settings, day: date, rt: Runtime, arxiv_id: str) -> Paper | None:
    """A paper by id from the store, else the arXiv API (a paper no tag matched)."""
    return run.lookup_paper(settings, day, rt, arxiv_id)


def send(settings: Settings, day: date, rt: Runtime) -> None:
    """`digest send`: the approved issue to every subscriber, now."""
    run.send(settings, day, rt)

"""The studio's only calls into the services (`services.build`, `services.approve`, …), each
returning the services' reports, and the status panel worded by the presenter."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import date

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.models import Digest, Paper
from pipeline.core.runtime import Runtime
from pipeline.interfaces import present

# --- the issue's lifecycle: the one adapter over the services ------------------------------------


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
    """The day at a glance, from `services.status`, worded as `digest status` words it."""
    s = services.status(settings, day, rt)
    d = s.draft
    return Status(tuple(present.status_web_lines(s)), s.next_step, s.state, d.built_from_it,
                  s.approved and d.built_from_it, s.sent_at or None, next_send(settings, rt))


def next_send(settings: Settings, rt: Runtime) -> str | None:
    """When the scheduled send (`[schedule] send`) runs next, in newsletter time."""
    from pipeline.services.timetable import triggers_for

    trigger = triggers_for(settings).get("send")
    fire = (trigger.get_next_fire_time(None, rt.now().astimezone(settings.tzinfo))
            if trigger is not None else None)
    return fire.strftime("%Y-%m-%d %H:%M %Z") if fire is not None else None


def last_approved(settings: Settings, day: date) -> Digest | None:
    """The issue as last approved (approval publishes it: the archive's copy), if any."""
    with closing(services.open_store(settings)) as conn:
        published = store.archived_issue(conn, day)
    return None if published is None else Digest(day, published.entries)


def _build_if_stale(settings: Settings, day: date, rt: Runtime) -> list[object]:
    with closing(services.open_store(settings, rt)) as conn:
        current = services.progress(conn, settings, day).built_current
    return [] if current else [services.build(settings, day, rt)]


def build(settings: Settings, day: date, rt: Runtime) -> list[object]:
    """`digest build` (may look unresolved entries up on arXiv); its report."""
    return [services.build(settings, day, rt)]


def approve(settings: Settings, day: date, rt: Runtime, allow_uncommented: bool) -> list[object]:
    """Build if the draft changed since the last build, then `digest approve`
    [--allow-uncommented] (which publishes the issue); their reports."""
    built = _build_if_stale(settings, day, rt)
    return [*built, services.approve(settings, day, rt, allow_uncommented=allow_uncommented)]


def send_test_copy(
    settings: Settings, day: date, rt: Runtime, to: str, variant: str
) -> list[object]:
    """`digest send --to ADDR --variant V`, built first if the draft changed (the copy is
    what the preview shows); records nothing."""
    built = _build_if_stale(settings, day, rt)
    return [*built, services.send(settings, day, rt, to=to, variant=variant)]


def draft(settings: Settings, day: date, rt: Runtime) -> list[object]:
    """`digest draft`; its report."""
    return [services.draft(settings, day, rt)]


def lookup_paper(settings: Settings, day: date, rt: Runtime, arxiv_id: str) -> Paper | None:
    """A paper by id from the store, else the arXiv API (a paper no tag matched)."""
    return services.lookup_paper(settings, day, rt, arxiv_id)


def send(settings: Settings, day: date, rt: Runtime) -> list[object]:
    """`digest send`: the approved issue to every subscriber, now; its report."""
    return [services.send(settings, day, rt)]

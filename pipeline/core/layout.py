"""The newsletter folder's layout: every path under it is named here, once.

    data/digest.db                the store
    data/run.lock                 one `digest run` at a time
    data/send-D.lock              one send of the issue of D at a time
    data/schedule.lock, data/schedule-state.json   the scheduler
    data/rank-model.*             the ranking model (when there is one)
    drafts/D.txt                  the day's draft
    outbox/D/preview.V.html|.eml  the build's email previews, per variant
    outbox/D/site/                site/ as publishing the build would make it
    outbox/D/test/V/              test copies (outbox transport)
    outbox/D/                     dry-run messages, and the outbox transport's real sends
    outbox/subscribe/             confirmation mails (outbox transport)
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Protocol


# What the layout needs of the settings, as protocols: config's Settings has them, and this
# module imports no config (config asks it where the store is; no cycle, not even for types).
class _Folders(Protocol):
    @property
    def data(self) -> Path: ...
    @property
    def drafts(self) -> Path: ...
    @property
    def outbox(self) -> Path: ...


class Settings(Protocol):
    """The part of pipeline.core.config.Settings the layout reads."""

    @property
    def paths(self) -> _Folders: ...
    @property
    def variants(self) -> tuple[str, ...]: ...


def store_path(settings: Settings) -> Path:
    """data/digest.db: the SQLite store."""
    return settings.paths.data / "digest.db"


def draft_path(settings: Settings, day: date) -> Path:
    """Where the day's draft lives: drafts/YYYY-MM-DD.txt."""
    return settings.paths.drafts / f"{day.isoformat()}.txt"


def outbox_day(settings: Settings, day: date) -> Path:
    """outbox/D/: the day's previews, dry-run messages and outbox-transport sends."""
    return settings.paths.outbox / day.isoformat()


def preview_html(settings: Settings, day: date, variant: str) -> Path:
    """outbox/D/preview.V.html: the email preview of one variant."""
    return outbox_day(settings, day) / f"preview.{variant}.html"


def preview_eml(settings: Settings, day: date, variant: str) -> Path:
    """outbox/D/preview.V.eml: the preview as a message file."""
    return outbox_day(settings, day) / f"preview.{variant}.eml"


def preview_site(settings: Settings, day: date) -> Path:
    """outbox/D/site/: the site as publishing the built issue of D would make it."""
    return outbox_day(settings, day) / "site"


def previews(settings: Settings, day: date) -> tuple[Path, Path]:
    """The email preview of the widest variant and the site preview of the day."""
    return preview_html(settings, day, settings.variants[-1]), preview_site(settings, day)


def test_copies(settings: Settings, day: date) -> Path:
    """outbox/D/test/: where test copies go with the outbox transport (one folder per variant)."""
    return outbox_day(settings, day) / "test"


def dry_run_folder(settings: Settings, day: date) -> Path:
    """Where `digest send --dry-run` writes every reader's message."""
    return outbox_day(settings, day)


def subscribe_outbox(settings: Settings) -> Path:
    """outbox/subscribe/: confirmation mails with the outbox transport."""
    return settings.paths.outbox / "subscribe"


def run_lock(settings: Settings) -> Path:
    """data/run.lock: one `digest run` per newsletter."""
    return settings.paths.data / "run.lock"


def issue_lock(settings: Settings, day: date) -> Path:
    """data/send-D.lock: one send of an issue at a time."""
    return settings.paths.data / f"send-{day.isoformat()}.lock"


def schedule_lock(settings: Settings) -> Path:
    """data/schedule.lock: one scheduler per newsletter."""
    return settings.paths.data / "schedule.lock"


def schedule_state(settings: Settings) -> Path:
    """data/schedule-state.json: the fires the scheduler handled."""
    return settings.paths.data / "schedule-state.json"


def rank_model(settings: Settings, suffix: str = "json") -> Path:
    """data/rank-model.<suffix>: where a ranking model is kept."""
    return settings.paths.data / f"rank-model.{suffix}"

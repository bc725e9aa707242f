"""The one place that knows the order of stages; used by the CLI and the scheduler."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import NotBuiltError
from pipeline.runtime import Runtime


def today(settings: Settings, rt: Runtime) -> date:
    """Today's date in the newsletter's time zone (the default announcement date)."""
    return rt.now().astimezone(settings.tzinfo).date()


# --- collect ---------------------------------------------------------------------------------


def collect(settings: Settings, day: date, rt: Runtime) -> None:
    """Fetch the day's announcement (+ API searches), store papers and candidates."""
    raise NotBuiltError("`digest collect` is not built yet")


# --- curator: draft, approve ----------------------------------------------------------------


def draft(settings: Settings, day: date, rt: Runtime) -> Path:
    """Write (or update, keeping the curator's edits) drafts/DAY.txt."""
    raise NotBuiltError("`digest draft` is not built yet")


def approve(settings: Settings, day: date, rt: Runtime) -> None:
    """Record the hash of the built issue as approved."""
    raise NotBuiltError("`digest approve` is not built yet")


# --- build -----------------------------------------------------------------------------------


def build(settings: Settings, day: date, rt: Runtime) -> None:
    """Merge the draft into an issue and render site/ and the email previews."""
    raise NotBuiltError("`digest build` is not built yet")


# --- send ------------------------------------------------------------------------------------


def send(
    settings: Settings, day: date, rt: Runtime, *, dry_run: bool = False, to: str | None = None
) -> None:
    """Send the approved issue to every active subscriber (or one preview copy with `to`)."""
    raise NotBuiltError("`digest send` is not built yet")


# --- daily job and scheduler -----------------------------------------------------------------


def daily(settings: Settings, day: date, rt: Runtime) -> None:
    """One daily cycle: collect, draft, build, then send when approved."""
    raise NotBuiltError("`digest run` is not built yet")


def schedule(settings: Settings, rt: Runtime) -> None:
    """Run the scheduler in the foreground until SIGTERM/SIGINT."""
    raise NotBuiltError("`digest schedule` is not built yet")

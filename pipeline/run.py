"""The one place that knows the order of stages; used by the CLI and the scheduler."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date
from pathlib import Path

from pipeline import render, site, store
from pipeline.config import Settings
from pipeline.errors import ApprovalError, NotBuiltError
from pipeline.models import EmailVariant, Issue
from pipeline.runtime import Runtime


def today(settings: Settings, rt: Runtime) -> date:
    """Today's date in the newsletter's time zone (the default announcement date)."""
    return rt.now().astimezone(settings.tzinfo).date()


def open_store(settings: Settings) -> sqlite3.Connection:
    """The newsletter's SQLite store, migrated."""
    return store.connect(settings.db_path)


def draft_path(settings: Settings, day: date) -> Path:
    """Where the day's draft lives: drafts/YYYY-MM-DD.txt."""
    return settings.paths.drafts / f"{day.isoformat()}.txt"


def file_sha(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it does not exist."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


# --- collect ---------------------------------------------------------------------------------


def collect(settings: Settings, day: date, rt: Runtime) -> None:
    """Fetch the day's announcement (+ API searches), store papers and candidates."""
    raise NotBuiltError("`digest collect` is not built yet")


# --- curator: draft, approve ----------------------------------------------------------------


def draft(settings: Settings, day: date, rt: Runtime) -> Path:
    """Write (or update, keeping the curator's edits) drafts/DAY.txt."""
    raise NotBuiltError("`digest draft` is not built yet")


def merged_issue(settings: Settings, day: date, rt: Runtime) -> Issue:
    """Read drafts/DAY.txt and resolve its entries to papers (store, then arXiv API)."""
    raise NotBuiltError("merging a draft into an issue is not built yet")


def _built_row(conn: sqlite3.Connection, settings: Settings, day: date) -> sqlite3.Row:
    row = store.get_issue(conn, day)
    if row is None or row["built_hash"] is None:
        raise ApprovalError(f"the issue of {day} is not built yet: run `digest build --date {day}`")
    if file_sha(draft_path(settings, day)) != row["draft_sha"]:
        raise ApprovalError(
            f"{draft_path(settings, day).name} changed since the issue was built: "
            f"run `digest build --date {day}`, check the preview, then `digest approve --date {day}`"
        )
    return row


def approve(settings: Settings, day: date, rt: Runtime) -> None:
    """Record the hash of the built issue as approved."""
    with open_store(settings) as conn:
        row = _built_row(conn, settings, day)
        if row["state"] == "sent":
            raise ApprovalError(f"the issue of {day} was already sent")
        store.approve_issue(conn, day, row["built_hash"])
    rt.echo(f"approved the issue of {day} ({row['built_hash'][:12]}); `digest send --date {day}`")


def approved_variants(conn: sqlite3.Connection, settings: Settings, day: date) -> list[EmailVariant]:
    """The variants to send: refuses an unbuilt issue, an unapproved one (when approval is
    required) and one whose draft or rendering changed since approval."""
    row = _built_row(conn, settings, day)
    if settings.approval.required:
        if row["approved_hash"] is None:
            raise ApprovalError(
                f"the issue of {day} is not approved: check outbox/{day}/preview.*.html, "
                f"then run `digest approve --date {day}`"
            )
        if row["approved_hash"] != row["built_hash"]:
            raise ApprovalError(
                f"the issue of {day} changed since it was approved: check the preview, "
                f"then run `digest approve --date {day}` again"
            )
    return store.load_built_issue(conn, day)


# --- build -----------------------------------------------------------------------------------


def build(settings: Settings, day: date, rt: Runtime) -> None:
    """Merge the draft into an issue and render site/ and the email previews."""
    issue = merged_issue(settings, day, rt)
    renderer = render.Renderer(settings)
    variants = renderer.emails(issue)
    conn = open_store(settings)
    try:
        changed = site.publish_issue(settings, conn, issue, renderer)
        previews = site.write_previews(settings, day, variants)
        draft_sha = file_sha(draft_path(settings, day)) or ""
        built = store.save_built_issue(conn, day, draft_sha, variants)
    finally:
        conn.close()
    sizes = ", ".join(f"{v.variant} {len(v.html.encode('utf-8')) / 1024:.0f} KB" for v in variants)
    rt.echo(f"built the issue of {day} ({len(issue.entries)} entries; {sizes}; {built[:12]})")
    rt.echo(f"site: {settings.paths.site / 'index.html'} ({len(changed)} files changed)")
    for path in previews[::2]:
        rt.echo(f"preview: {path}")


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

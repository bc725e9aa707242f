"""Thin disk adapter for rendering: site/ (incremental, atomic) and the email previews.

What the archive and the feeds need about past issues lives in the store (the `archive`
tables), so a build renders only the pages `pipeline.archive` lists for the new issue; every
file goes through `write_if_changed`, so a rebuild from the same inputs leaves every byte
(and mtime) as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

from pipeline import archive, store
from pipeline.config import Settings
from pipeline.files import write_if_changed
from pipeline.mail import PREVIEW_TOKEN, MessageBuilder, unsubscribe_mailto, unsubscribe_url
from pipeline.models import UNSUBSCRIBE_PLACEHOLDER, EmailVariant, Issue
from pipeline.render import Renderer, pub_datetime

PREVIEW_RECIPIENT = "preview@example.invalid"


def write_files(root: Path, files: Mapping[str, str | None]) -> list[Path]:
    """Write each file under root (atomically, only when changed; None deletes it);
    returns the paths that changed."""
    changed = []
    for name, text in sorted(files.items()):
        path = root / name
        if text is None:
            if path.exists():
                path.unlink()
                changed.append(path)
        elif write_if_changed(path, text):
            changed.append(path)
    return changed


def issue_files(conn: sqlite3.Connection, issue: Issue, r: Renderer) -> dict[str, str | None]:
    """The files of site/ that publishing `issue` changes, as they will be: its pages, its
    neighbours' (their prev/next links), the newest index pages, the feeds, its tags' pages,
    the tags page (None = a file to delete). Stores nothing but rendered feed items."""
    return archive.planned_files(r, conn, issue)


def publish_issue(
    settings: Settings, conn: sqlite3.Connection, issue: Issue, renderer: Renderer | None = None
) -> list[Path]:
    """Archive the issue and update site/ (see issue_files); and every page once when the
    templates, the program or the settings changed since the last time."""
    r = renderer or Renderer(settings)
    # Render everything before storing anything: a broken template changes nothing. The
    # archive row is stored after the files: killed in between, the next publish redoes it.
    files = issue_files(conn, issue, r)
    changed = write_files(settings.paths.site, files)
    with store.transaction(conn):
        store.save_archived_issue(conn, issue)
        stale = store.site_fingerprint(conn) != r.fingerprint
    if stale:  # full pages are never rewritten by a build: render them all, once
        changed += rebuild_site(settings, conn, r)
    return changed


def rebuild_site(
    settings: Settings, conn: sqlite3.Connection, renderer: Renderer | None = None
) -> list[Path]:
    """Render every archived issue, index page and tag page again (after a template
    change), a few pages at a time so memory stays flat however long the archive."""
    r = renderer or Renderer(settings)
    changed = []
    for files in archive.all_files(r, conn):
        changed += write_files(settings.paths.site, files)
    with store.transaction(conn):
        store.set_site_fingerprint(conn, r.fingerprint)
    return changed


def preview_unsubscribe_url(settings: Settings) -> str:
    """What the unsubscribe placeholder becomes in a preview (a link that does nothing)."""
    return unsubscribe_url(settings, PREVIEW_TOKEN)


def preview_message(settings: Settings, day: date, variant: EmailVariant) -> bytes:
    """The whole message a subscriber of this variant gets, addressed to a placeholder
    recipient and dated at the issue's midnight so rebuilds are byte-identical."""
    builder = MessageBuilder(settings, day, [variant])
    when = pub_datetime(day, settings)
    mailto = unsubscribe_mailto(settings, PREVIEW_TOKEN)
    url = preview_unsubscribe_url(settings)
    return builder.build(variant.variant, PREVIEW_RECIPIENT, url, mailto, when).data


def write_previews(settings: Settings, day: date, variants: Sequence[EmailVariant]) -> list[Path]:
    """outbox/D/preview.<variant>.html and .eml; returns every preview path."""
    folder = settings.paths.outbox / day.isoformat()
    paths = []
    for v in variants:
        html_path = folder / f"preview.{v.variant}.html"
        eml_path = folder / f"preview.{v.variant}.eml"
        write_if_changed(
            html_path, v.html.replace(UNSUBSCRIBE_PLACEHOLDER, preview_unsubscribe_url(settings))
        )
        write_if_changed(eml_path, preview_message(settings, day, v))
        paths += [html_path, eml_path]
    return paths

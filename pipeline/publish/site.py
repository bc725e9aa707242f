"""Thin disk adapter for rendering: where and when site/ and its preview are written.

What the archive and the feeds need about past issues lives in the store (the `archive`
tables, published issues only), so publishing renders only the pages `pipeline.publish.archive`
lists for the issue. `digest build` writes those files, as they will be, into the private
preview `outbox/D/site/` (the live site with them applied); only publishing (`digest
approve`, or the send in auto mode) puts them in site/, in one atomic swap
(pipeline.publish.versioned). An unchanged file keeps its bytes and mtime, so a rebuild from the
same inputs changes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path

from pipeline import store
from pipeline.core import layout
from pipeline.core.config import Settings
from pipeline.core.models import Issue
from pipeline.publish import archive, versioned
from pipeline.publish.render import Renderer


def issue_files(conn: sqlite3.Connection, issue: Issue, r: Renderer) -> dict[str, str | None]:
    """The files of site/ that publishing `issue` changes, as they will be: its pages, its
    neighbours' (their prev/next links), the newest index pages, the feeds, its tags' pages,
    the tags page (None = a file to delete). Stores nothing but rendered feed items."""
    return archive.planned_files(r, conn, issue)


def publish_issue(
    settings: Settings, conn: sqlite3.Connection, issue: Issue, renderer: Renderer | None = None
) -> list[Path]:
    """Archive the issue and publish site/ with it (see issue_files) in one atomic swap; and
    every page in that same swap when the templates, the program or the settings changed
    since the last time. Returns the paths that changed. (Callers decide WHEN: see
    pipeline.core.lifecycle.)"""
    r = renderer or Renderer(settings)
    # Render everything before storing anything: a broken template changes nothing. The
    # archive row is stored after the swap: killed in between, the next publish redoes it.
    files = issue_files(conn, issue, r)
    if store.site_fingerprint(conn) == r.fingerprint:
        changed = versioned.publish(settings.paths.site, files.items())
        with store.transaction(conn):
            store.save_archived_issue(conn, issue)
        return [settings.paths.site / name for name in changed]
    # Full pages are never rewritten by a publish: render them all, once. The whole site is
    # rendered from the archive, so the issue is archived first; killed before the swap, the
    # fingerprint is still stale and the next publish renders everything again.
    with store.transaction(conn):
        store.save_archived_issue(conn, issue)
    return rebuild_site(settings, conn, r, also=files)


def preview_site_root(settings: Settings, day: date) -> Path:
    """outbox/D/site/: the site as publishing the built issue of D would make it."""
    return layout.preview_site(settings, day)


def preview_site(
    settings: Settings, conn: sqlite3.Connection, issue: Issue, renderer: Renderer | None = None
) -> tuple[Path, list[str]]:
    """Write the private preview of site/ with `issue` published (site/ is not touched);
    returns its root and the names that publishing would change in site/."""
    r = renderer or Renderer(settings)
    root = preview_site_root(settings, issue.date)
    published = versioned.current(settings.paths.site)
    # Nothing published yet: the preview starts from nothing, not from an earlier preview
    # (whose pages, of entries or tags since removed, would otherwise linger).
    changed = versioned.publish(
        root, issue_files(conn, issue, r).items(),
        base=published, keep=0, from_empty=published is None,
    )
    return root, changed


def rebuild_site(
    settings: Settings,
    conn: sqlite3.Connection,
    renderer: Renderer | None = None,
    *,
    also: Mapping[str, str | None] | None = None,
) -> list[Path]:
    """Render every archived issue, index page and tag page again (after a template
    change), a few pages at a time so memory stays flat however long the archive, and
    publish them (with `also`: a publish's own files, deletions included) in one atomic
    swap."""
    r = renderer or Renderer(settings)

    def files() -> Iterator[tuple[str, str | None]]:
        for group in archive.all_files(r, conn):
            yield from group.items()
        yield from (also or {}).items()  # after: a page rendered twice keeps the first

    changed = versioned.publish(settings.paths.site, files())
    with store.transaction(conn):
        store.set_site_fingerprint(conn, r.fingerprint)
    return [settings.paths.site / name for name in changed]

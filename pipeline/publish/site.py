"""Thin disk adapter for rendering: where and when site/ and the previews are written.

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
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path

from pipeline import store
from pipeline.core import layout
from pipeline.core.config import Settings
from pipeline.core.files import write_if_changed
from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER, EmailVariant, Issue
from pipeline.deliver.mail import PREVIEW_TOKEN, MessageBuilder, unsubscribe_mailto, unsubscribe_url
from pipeline.publish import archive, versioned
from pipeline.publish.render import Renderer, pub_datetime

PREVIEW_RECIPIENT = "preview@example.invalid"


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


def preview_unsubscribe_url(settings: Settings) -> str:
    """What the unsubscribe placeholder becomes in a preview (a link that does nothing)."""
    return unsubscribe_url(settings, PREVIEW_TOKEN)


def preview_message(settings: Settings, day: date, variant: EmailVariant) -> bytes:
    """The whole message a subscriber of this variant gets, addressed to a placeholder
    recipient and dated at the issue's midnight so rebuilds are byte-identical."""
    builder = MessageBuilder(settings, day, [variant])
    builder.dkim = None  # a DKIM signature is dated: previews stay byte-identical on rebuild
    when = pub_datetime(day, settings)
    mailto = unsubscribe_mailto(settings, PREVIEW_TOKEN)
    url = preview_unsubscribe_url(settings)
    return builder.build(variant.variant, PREVIEW_RECIPIENT, url, mailto, when).data


def write_previews(settings: Settings, day: date, variants: Sequence[EmailVariant]) -> list[Path]:
    """outbox/D/preview.<variant>.html and .eml; returns every preview path."""
    folder = layout.outbox_day(settings, day)
    for stale in folder.glob(".preview.*.tmp"):  # a build killed mid-write left it
        stale.unlink(missing_ok=True)
    paths = []
    for v in variants:
        html_path = layout.preview_html(settings, day, v.variant)
        eml_path = layout.preview_eml(settings, day, v.variant)
        write_if_changed(
            html_path, v.html.replace(UNSUBSCRIBE_PLACEHOLDER, preview_unsubscribe_url(settings))
        )
        write_if_changed(eml_path, preview_message(settings, day, v))
        paths += [html_path, eml_path]
    return paths

"""`digest approve`: record the built issue as approved and publish it (site/, feeds)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from pipeline import store
from pipeline.core import layout, lifecycle
from pipeline.core.config import Settings
from pipeline.core.lifecycle import IssueRecord
from pipeline.core.runtime import Runtime
from pipeline.publish import site
from pipeline.services.common import draft_sha, open_store


@dataclass(frozen=True)
class PublishReport:
    """What publishing did: nothing (site/ showed the build already), or put the issue (or
    its correction) on site/ and the feeds."""

    day: date
    published: bool
    correction: bool = False
    index: Path | None = None  # site/index.html
    changed: int = 0  # files changed in site/


@dataclass(frozen=True)
class ApproveReport:
    """What `approve` did: the hash approved, and the publishing that followed."""

    day: date
    built_hash: str
    publish: PublishReport
    sent_at: datetime | None  # the issue was sent before: this was a correction


def current_build(conn: sqlite3.Connection, settings: Settings, day: date) -> IssueRecord:
    """The day's issue record; refuses an issue never built, or built from another draft
    than the one on disk now."""
    return lifecycle.require_current_build(
        store.get_issue_record(conn, day), day, draft_sha(settings, day),
        layout.draft_path(settings, day).name,
    )


def approve(
    settings: Settings, day: date, rt: Runtime, *, allow_uncommented: bool = False
) -> ApproveReport:
    """Record the hash of the built issue as approved and publish it (site/, feeds). In
    approval mode, refuses while entries have no commentary unless `allow_uncommented`.
    For a sent issue this publishes the correction; no email is sent again."""
    with closing(open_store(settings, rt)) as conn:
        record = current_build(conn, settings, day)
        summary = lifecycle.require_build_summary(record, day)
        lifecycle.require_commentary(summary, day, settings.approval.required,
                                     allow_uncommented, layout.draft_path(settings, day).name)
        assert record.built_hash is not None
        with store.transaction(conn):
            store.approve_issue(conn, day, record.built_hash, lifecycle.state_after_approve(record))
        published = publish(conn, settings, day, rt)
    return ApproveReport(day, record.built_hash, published,
                         record.sent_at if record.sent else None)


def publish(conn: sqlite3.Connection, settings: Settings, day: date, rt: Runtime) -> PublishReport:
    """Put the current build of the day's issue on site/ and the feeds (atomically), unless
    they show it already; a published issue republished with other content is a
    correction (dated now)."""
    record = lifecycle.require_built(store.get_issue_record(conn, day), day)
    content = store.load_built_content(conn, day)
    if content is None:
        raise lifecycle.older_build(day)
    previous = store.archived_issue(conn, day)
    if record.published_current and previous is not None:
        return PublishReport(day, False)
    assert record.built_hash is not None
    issue = lifecycle.with_correction(previous, content, rt.now())
    changed = site.publish_issue(settings, conn, issue)
    with store.transaction(conn):
        store.mark_published(conn, day, record.built_hash, lifecycle.state_after_publish(record))
    correction = issue.corrected is not None \
        and issue.corrected != (previous.corrected if previous else None)
    return PublishReport(day, True, correction, settings.paths.site / "index.html", len(changed))

"""The published archive: archived issues, per-entry and per-tag summaries, the render cache."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import date, datetime

from pipeline.core.issue_codec import entry_dict, entry_from_dict, issue_from_json, issue_json
from pipeline.core.models import (
    ArchivedEntry,
    Entry,
    Issue,
    archived_entries,
)
from pipeline.store.db import _ARCHIVE_INDEX, DATA_MIGRATIONS


def save_archived_issue(conn: sqlite3.Connection, issue: Issue) -> None:
    """Store the issue as site/ shows it (replacing an earlier build of the same date)."""
    day = issue.date.isoformat()
    conn.execute(
        "INSERT INTO archive (date, issue, title) VALUES (?, ?, ?)"
        " ON CONFLICT (date) DO UPDATE SET issue = excluded.issue, title = excluded.title",
        (day, issue_json(issue), issue.title),
    )
    _index_archived(conn, issue)


def _index_archived(conn: sqlite3.Connection, issue: Issue) -> None:
    day = issue.date.isoformat()
    conn.execute("DELETE FROM archive_tags WHERE date = ?", (day,))
    conn.execute("DELETE FROM archive_entries WHERE date = ?", (day,))
    # Cached items are checked by digest; only those of entries it no longer has go.
    conn.execute("DELETE FROM render_cache WHERE date = ? AND number > ?",
                 (day, len(issue.entries)))
    for row, e in zip(archived_entries(issue), issue.entries, strict=True):
        conn.execute(
            "INSERT INTO archive_entries (date, number, title, arxiv_id, tags, entry)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (day, row.number, row.title, row.arxiv_id, json.dumps(list(row.tags)),
             json.dumps(entry_dict(e), ensure_ascii=False, sort_keys=True)),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO archive_tags (tag, date, number) VALUES (?, ?, ?)",
            [(tag, day, row.number) for tag in row.tags],
        )


def _index_every_archived(conn: sqlite3.Connection) -> None:
    """Fill archive_entries and archive_tags for issues archived before they existed."""
    for (text,) in conn.execute("SELECT issue FROM archive ORDER BY date").fetchall():
        issue = issue_from_json(text)
        conn.execute("UPDATE archive SET title = ? WHERE date = ?",
                     (issue.title, issue.date.isoformat()))
        _index_archived(conn, issue)


class RenderCache:
    """render.FragmentCache in the store: feed items rendered once, reused by later builds.

    What a build renders and drops is buffered and written by `flush`, so a build that only
    plans its files (and rolls its transaction back) still keeps them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.puts: dict[tuple[str, int, str], tuple[str, str]] = {}
        self.issues_before: date | None = None
        self.dropped: set[tuple[str, int]] = set()

    def get(self, day: date, number: int, variant: str, digest: str) -> str | None:
        """The HTML kept for this place, if rendered from the same inputs."""
        pending = self.puts.get((day.isoformat(), number, variant))
        if pending is not None and pending[0] == digest:
            return pending[1]
        row = self.conn.execute(
            "SELECT html FROM render_cache WHERE date = ? AND number = ? AND variant = ?"
            " AND digest = ?", (day.isoformat(), number, variant, digest),
        ).fetchone()
        return str(row[0]) if row is not None else None

    def put(self, day: date, number: int, variant: str, digest: str, html: str) -> None:
        """Keep the HTML rendered for this place (replacing a stale one)."""
        self.puts[(day.isoformat(), number, variant)] = (digest, html)

    def forget_issues_before(self, day: date) -> None:
        """Drop the whole-issue items of issues older than `day` (no feed shows them)."""
        self.issues_before = day

    def forget_entries(self, places: Iterable[tuple[date, int]]) -> None:
        """Drop these entries' items (no tag feed shows them any more)."""
        self.dropped.update((d.isoformat(), n) for d, n in places)

    def flush(self) -> None:
        """Write what was rendered and dropped since the last flush (inside a transaction)."""
        if self.issues_before is not None:
            self.conn.execute("DELETE FROM render_cache WHERE number = 0 AND date < ?",
                              (self.issues_before.isoformat(),))
        self.conn.executemany("DELETE FROM render_cache WHERE date = ? AND number = ?",
                              sorted(self.dropped))
        self.conn.executemany(
            "INSERT INTO render_cache (date, number, variant, digest, html) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (date, number, variant) DO UPDATE SET digest = excluded.digest,"
            " html = excluded.html",
            [(*place, *value) for place, value in self.puts.items()
             if place[:2] not in self.dropped],
        )
        self.puts, self.issues_before, self.dropped = {}, None, set()


def site_fingerprint(conn: sqlite3.Connection) -> str | None:
    """The render fingerprint site/ was last rendered in full with, if any."""
    row = conn.execute("SELECT value FROM site_state WHERE name = 'fingerprint'").fetchone()
    return str(row[0]) if row is not None else None


def set_site_fingerprint(conn: sqlite3.Connection, fingerprint: str) -> None:
    """Record that site/ was rendered in full with this fingerprint."""
    conn.execute(
        "INSERT INTO site_state (name, value) VALUES ('fingerprint', ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value", (fingerprint,),
    )


def clear_renders(conn: sqlite3.Connection) -> None:
    """Drop every cached feed item."""
    conn.execute("DELETE FROM render_cache")


def among_newest_tagged(conn: sqlite3.Connection, tag: str, day: date, number: int, n: int) -> bool:
    """True when fewer than `n` archived entries with the tag come after this one."""
    sql = ("SELECT 1 FROM archive_tags WHERE tag = ? AND (date, number) > (?, ?)"
           " ORDER BY date, number LIMIT 1 OFFSET ?")
    return conn.execute(sql, (tag, day.isoformat(), number, n - 1)).fetchone() is None


def entry_tags(conn: sqlite3.Connection, day: date, number: int) -> tuple[str, ...]:
    """The normalised tags of an archived entry."""
    row = conn.execute("SELECT tags FROM archive_entries WHERE date = ? AND number = ?",
                       (day.isoformat(), number)).fetchone()
    return tuple(json.loads(row[0])) if row is not None else ()


def tagged_places(
    conn: sqlite3.Connection, tag: str, offset: int, limit: int
) -> list[tuple[date, int]]:
    """(date, number) of the archived entries with the tag, oldest first, a slice."""
    rows = conn.execute(
        "SELECT date, number FROM archive_tags WHERE tag = ? ORDER BY date, number"
        " LIMIT ? OFFSET ?", (tag, limit, offset),
    )
    return [(date.fromisoformat(r[0]), int(r[1])) for r in rows]


# Python steps run right after a migration's SQL, in its transaction (by migration, so the
# order of the migrations can change before they ship).
DATA_MIGRATIONS[_ARCHIVE_INDEX] = _index_every_archived


def load_archived_issues(conn: sqlite3.Connection) -> list[Issue]:
    """Every archived issue, oldest first (small archives and tests; pages use the rest)."""
    return list(iter_archived_issues(conn))


def iter_archived_issues(conn: sqlite3.Connection) -> Iterator[Issue]:
    """Every archived issue, oldest first, one at a time."""
    for day in archived_dates(conn):
        issue = archived_issue(conn, day)
        if issue is not None:
            yield issue


def archived_issue(conn: sqlite3.Connection, day: date) -> Issue | None:
    """The archived issue of a day, or None."""
    row = conn.execute("SELECT issue FROM archive WHERE date = ?", (day.isoformat(),)).fetchone()
    return issue_from_json(row["issue"]) if row is not None else None


def is_archived(conn: sqlite3.Connection, day: date) -> bool:
    """True when an issue of that day is in the archive."""
    sql = "SELECT 1 FROM archive WHERE date = ?"
    return conn.execute(sql, (day.isoformat(),)).fetchone() is not None


def newest_archived_issues(conn: sqlite3.Connection, limit: int) -> list[Issue]:
    """The newest `limit` archived issues, newest first."""
    rows = conn.execute("SELECT issue FROM archive ORDER BY date DESC LIMIT ?", (limit,))
    return [issue_from_json(r["issue"]) for r in rows]


def archive_count(conn: sqlite3.Connection, before: date | None = None) -> int:
    """How many issues are archived (dated before `before`, when given)."""
    if before is None:
        return int(conn.execute("SELECT COUNT(*) FROM archive").fetchone()[0])
    sql = "SELECT COUNT(*) FROM archive WHERE date < ?"
    return int(conn.execute(sql, (before.isoformat(),)).fetchone()[0])


def archived_dates(conn: sqlite3.Connection, offset: int = 0, limit: int = -1) -> list[date]:
    """Archived issue dates, oldest first, from the `offset`-th (at most `limit`; -1 = all)."""
    rows = conn.execute("SELECT date FROM archive ORDER BY date LIMIT ? OFFSET ?", (limit, offset))
    return [date.fromisoformat(r[0]) for r in rows]


def archive_neighbours(conn: sqlite3.Connection, day: date) -> tuple[date | None, date | None]:
    """The archived issues just before and just after `day` (None where there is none)."""
    iso = day.isoformat()
    prev = conn.execute("SELECT MAX(date) FROM archive WHERE date < ?", (iso,)).fetchone()[0]
    nxt = conn.execute("SELECT MIN(date) FROM archive WHERE date > ?", (iso,)).fetchone()[0]
    return (date.fromisoformat(prev) if prev else None, date.fromisoformat(nxt) if nxt else None)


def archived_entries_between(
    conn: sqlite3.Connection, first: date, last: date
) -> list[ArchivedEntry]:
    """The index rows of the issues from `first` to `last` (inclusive), oldest first."""
    rows = conn.execute(
        "SELECT date, number, title, arxiv_id, tags FROM archive_entries"
        " WHERE date BETWEEN ? AND ? ORDER BY date, number",
        (first.isoformat(), last.isoformat()),
    )
    return [
        ArchivedEntry(date.fromisoformat(r[0]), r[1], r[2], r[3], tuple(json.loads(r[4])))
        for r in rows
    ]


def tag_count(conn: sqlite3.Connection, tag: str, before: date | None = None) -> int:
    """How many archived entries carry the tag (in issues dated before `before`, if given)."""
    sql = "SELECT COUNT(*) FROM archive_tags WHERE tag = ? AND date < ?"
    last = before.isoformat() if before is not None else "9999-12-31"
    return int(conn.execute(sql, (tag, last)).fetchone()[0])


def tag_counts(conn: sqlite3.Connection, day: date | None = None) -> dict[str, int]:
    """Archived entries per tag (in one issue's, when `day` is given), by tag."""
    if day is None:
        rows = conn.execute("SELECT tag, COUNT(*) FROM archive_tags GROUP BY tag ORDER BY tag")
    else:
        rows = conn.execute(
            "SELECT tag, COUNT(*) FROM archive_tags WHERE date = ? GROUP BY tag ORDER BY tag",
            (day.isoformat(),),
        )
    return {r[0]: int(r[1]) for r in rows}


def tagged_entries(
    conn: sqlite3.Connection, tag: str, offset: int, limit: int
) -> list[tuple[date, int, str, Entry]]:
    """(date, number, issue title, entry) of the archived entries with the tag, oldest first,
    from the `offset`-th, at most `limit`."""
    rows = conn.execute(  # the slice first: OFFSET then skips index rows, not joined ones
        "SELECT t.date, t.number, a.title, e.entry FROM"
        " (SELECT date, number FROM archive_tags WHERE tag = ? ORDER BY date, number"
        "  LIMIT ? OFFSET ?) t"
        " JOIN archive_entries e USING (date, number) JOIN archive a USING (date)"
        " ORDER BY t.date, t.number",
        (tag, limit, offset),
    )
    return [
        (date.fromisoformat(r[0]), r[1], r[2], entry_from_dict(json.loads(r[3]))) for r in rows
    ]


def corrections(conn: sqlite3.Connection, days: Iterable[date]) -> dict[date, datetime]:
    """When each of these archived issues was last corrected (issues never corrected are
    left out): tag feeds re-date a corrected issue's papers too."""
    wanted = sorted({d.isoformat() for d in days})
    found: dict[date, datetime] = {}
    for start in range(0, len(wanted), 500):  # SQLite's limit on host parameters
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            "SELECT date, json_extract(issue, '$.corrected') FROM archive"
            f" WHERE date IN ({', '.join('?' * len(chunk))})"
            " AND json_extract(issue, '$.corrected') IS NOT NULL",
            chunk,
        )
        found.update({date.fromisoformat(d): datetime.fromisoformat(c) for d, c in rows})
    return found


# --- subscribers and deliveries (deliver) ----------------------------------------------------


def sent_papers(conn: sqlite3.Connection, day: date) -> dict[str, date]:
    """The arXiv ids that an issue already sent on another day than `day` carried, with the
    first such day (a paper sent once is never offered again)."""
    rows = conn.execute(
        "SELECT e.arxiv_id, MIN(e.date) FROM archive_entries e JOIN issues i ON i.date = e.date"
        " WHERE e.arxiv_id IS NOT NULL AND e.date != ?"
        " AND (i.sent_at IS NOT NULL OR i.state = 'sent') GROUP BY e.arxiv_id",
        (day.isoformat(),),
    ).fetchall()
    return {arxiv_id: date.fromisoformat(first) for arxiv_id, first in rows}

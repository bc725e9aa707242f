"""Issue records: states, builds, approvals, and the built content as JSON."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime

from pipeline.core.issue_codec import issue_from_json, issue_json
from pipeline.core.lifecycle import BuildSummary, IssueRecord, State
from pipeline.core.models import (
    EmailVariant,
    Issue,
)
from pipeline.store.db import _now, transaction


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def record_from_row(row: sqlite3.Row) -> IssueRecord:
    """An IssueRecord from an `issues` row (`SELECT *`)."""
    return IssueRecord(
        day=date.fromisoformat(row["date"]),
        state=State(row["state"]),
        draft_sha=row["draft_sha"],
        built_hash=row["built_hash"],
        approved_hash=row["approved_hash"],
        published_hash=row["published_hash"],
        build=BuildSummary.from_json(row["build"]) if row["build"] else None,
        built_at=_when(row["built_at"]),
        approved_at=_when(row["approved_at"]),
        published_at=_when(row["published_at"]),
        sent_at=_when(row["sent_at"]),
    )


def get_issue_record(conn: sqlite3.Connection, day: date) -> IssueRecord | None:
    """The day's issue as a typed lifecycle record: state, hashes, build summary, times
    (None: no issue row yet)."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM issues WHERE date = ?", (day.isoformat(),)
    ).fetchone()
    return record_from_row(row) if row is not None else None


get_issue = get_issue_record  # the issue of a day (a record, as every store reader returns)


def set_issue_state(conn: sqlite3.Connection, day: date, state: State) -> None:
    """Move an issue to `state` (creating its row if needed)."""
    state = State(state)  # refuses a value that is no state
    conn.execute(
        "INSERT INTO issues (date, state) VALUES (?, ?)"
        " ON CONFLICT (date) DO UPDATE SET state = excluded.state",
        (day.isoformat(), state.value),
    )


def variants_hash(draft_sha: str, variants: Sequence[EmailVariant]) -> str:
    """The hash that approval records: the draft's sha and every rendered variant."""
    h = hashlib.sha256(draft_sha.encode())
    for v in sorted(variants, key=lambda v: v.variant):
        for part in (v.variant, v.subject, v.html, v.text):
            h.update(b"\0" + part.encode("utf-8"))
    return h.hexdigest()


def save_built_issue(
    conn: sqlite3.Connection,
    day: date,
    state: State,
    draft_sha: str,
    built_hash: str,
    variants: Sequence[EmailVariant],
    summary: BuildSummary,
    issue: Issue,
) -> None:
    """Store a build: its record (state, hashes, summary), the Issue that publishing
    renders and the rendered variants that sending sends, in one transaction."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO issues (date, state, draft_sha, built_hash, built_at, build, issue)"
            " VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT (date) DO UPDATE SET state=excluded.state, draft_sha=excluded.draft_sha,"
            " built_hash=excluded.built_hash, built_at=excluded.built_at, build=excluded.build,"
            " issue=excluded.issue",
            (day.isoformat(), State(state).value, draft_sha, built_hash, _now(conn),
             summary.to_json(), issue_json(issue)),
        )
        conn.execute("DELETE FROM issue_variants WHERE date = ?", (day.isoformat(),))
        conn.executemany(
            "INSERT INTO issue_variants (date, variant, subject, html, text) VALUES (?,?,?,?,?)",
            [(day.isoformat(), v.variant, v.subject, v.html, v.text) for v in variants],
        )


def load_built_issue(conn: sqlite3.Connection, day: date) -> list[EmailVariant]:
    """The rendered variants stored by the last build of the day (empty if never built)."""
    rows = conn.execute(
        "SELECT variant, subject, html, text FROM issue_variants WHERE date = ? ORDER BY variant",
        (day.isoformat(),),
    )
    return [EmailVariant(r["variant"], r["subject"], r["html"], r["text"]) for r in rows]


def load_built_content(conn: sqlite3.Connection, day: date) -> Issue | None:
    """The Issue the last build of the day merged (what publishing renders)."""
    row = conn.execute("SELECT issue FROM issues WHERE date = ?", (day.isoformat(),)).fetchone()
    return issue_from_json(row["issue"]) if row is not None and row["issue"] else None


def issues_in_state(conn: sqlite3.Connection, state: State, since: date, before: date) -> list[date]:
    """Dates in [since, before) whose issue is in `state`, oldest first."""
    rows = conn.execute(
        "SELECT date FROM issues WHERE state = ? AND date >= ? AND date < ? ORDER BY date",
        (State(state).value, since.isoformat(), before.isoformat()),
    )
    return [date.fromisoformat(r["date"]) for r in rows]


def approve_issue(conn: sqlite3.Connection, day: date, built_hash: str, state: State) -> None:
    """Record `built_hash` as the approved content of the day's issue, in `state`."""
    conn.execute(
        "UPDATE issues SET approved_hash = ?, approved_at = ?, state = ? WHERE date = ?",
        (built_hash, _now(conn), State(state).value, day.isoformat()),
    )


def mark_published(conn: sqlite3.Connection, day: date, built_hash: str, state: State) -> None:
    """Record that site/ now shows the build `built_hash` of the day's issue."""
    conn.execute(
        "UPDATE issues SET published_hash = ?, published_at = ?, state = ? WHERE date = ?",
        (built_hash, _now(conn), State(state).value, day.isoformat()),
    )


# The archive is kept twice over: the whole issue (for its own pages and the issue feeds) and
# one row per entry and per tag, so an index or tag page reads only the rows it shows.

"""Papers, the day's candidates, collected days and what drafts offered."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from pipeline.core.latex import title_key
from pipeline.core.models import (
    Candidate,
    Paper,
)
from pipeline.store.db import _iso, _now


def paper_from_row(row: sqlite3.Row) -> Paper:
    """Rebuild a Paper from a `papers` row."""
    return Paper(
        arxiv_id=row["arxiv_id"],
        version=row["version"],
        title=row["title"],
        authors=tuple(json.loads(row["authors"])),
        abstract=row["abstract"],
        categories=tuple(json.loads(row["categories"])),
        doi=row["doi"],
        journal_ref=row["journal_ref"],
        comment=row["comment"],
        published=datetime.fromisoformat(row["published"]) if row["published"] else None,
        updated=datetime.fromisoformat(row["updated"]) if row["updated"] else None,
    )


def upsert_paper(conn: sqlite3.Connection, paper: Paper, seen_on: date) -> str:
    """Insert or update a paper; returns 'new', 'updated' (newer version) or 'same'."""
    return upsert_papers(conn, [paper], seen_on)[paper.arxiv_id]


_PAPER_COLUMNS = ("version, title, authors, abstract, categories, doi, journal_ref, comment,"
                  " published, updated, title_key")


def upsert_papers(
    conn: sqlite3.Connection, papers: Iterable[Paper], seen_on: date
) -> dict[str, str]:
    """Insert or update papers (the first of a repeated id counts) in one pass: one query
    for the stored versions, one batch of inserts and one of updates; returns each id's
    outcome, 'new', 'updated' (newer version) or 'same'."""
    unique: dict[str, Paper] = {}
    for paper in papers:
        unique.setdefault(paper.arxiv_id, paper)
    query = "SELECT arxiv_id, version FROM papers WHERE arxiv_id IN ({marks})"
    stored = {row[0]: row[1] for row in _rows_in(conn, query, unique)}
    inserts: list[tuple[object, ...]] = []
    updates: list[tuple[object, ...]] = []
    outcome: dict[str, str] = {}
    for arxiv_id, paper in unique.items():
        old = stored.get(arxiv_id)
        if old is not None and paper.version <= old:
            outcome[arxiv_id] = "same"
            continue
        values = (
            paper.version, paper.title, json.dumps(paper.authors, ensure_ascii=False),
            paper.abstract, json.dumps(paper.categories), paper.doi, paper.journal_ref,
            paper.comment, _iso(paper.published), _iso(paper.updated), title_key(paper.title),
            arxiv_id,
        )
        if old is None:
            inserts.append((*values, seen_on.isoformat()))
            outcome[arxiv_id] = "new"
        else:
            updates.append(values)
            outcome[arxiv_id] = "updated"
    conn.executemany(
        f"INSERT INTO papers ({_PAPER_COLUMNS}, arxiv_id, first_seen)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        inserts,
    )
    conn.executemany(
        "UPDATE papers SET version=?, title=?, authors=?, abstract=?, categories=?, doi=?,"
        " journal_ref=?, comment=?, published=?, updated=?, title_key=? WHERE arxiv_id=?",
        updates,
    )
    return outcome


def _rows_in(
    conn: sqlite3.Connection, query: str, values: Iterable[str], *params: str
) -> Iterator[sqlite3.Row]:
    """Rows of `query`, whose `{marks}` is filled with placeholders for `values` in chunks
    (SQLite caps the number of parameters of one statement); `params` come first."""
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        yield from conn.execute(query.format(marks=",".join("?" * len(chunk))), (*params, *chunk))


def get_papers(conn: sqlite3.Connection, arxiv_ids: Iterable[str]) -> dict[str, Paper]:
    """Stored papers by id (missing ids are simply absent)."""
    rows = _rows_in(conn, "SELECT * FROM papers WHERE arxiv_id IN ({marks})", arxiv_ids)
    return {row["arxiv_id"]: paper_from_row(row) for row in rows}


def find_papers_by_title(conn: sqlite3.Connection, title: str) -> list[Paper]:
    """Stored papers whose normalised title equals this one's."""
    rows = conn.execute("SELECT * FROM papers WHERE title_key = ?", (title_key(title),))
    return [paper_from_row(r) for r in rows]


def save_candidates(conn: sqlite3.Connection, day: date, candidates: Sequence[Candidate]) -> int:
    """Store the day's candidates (idempotent); returns how many were new."""
    rows = conn.execute("SELECT arxiv_id FROM candidates WHERE date = ?", (day.isoformat(),))
    existing = {r[0] for r in rows}
    conn.executemany(
        "INSERT INTO candidates (date, arxiv_id, announce_type, tags, score) VALUES (?,?,?,?,?)"
        " ON CONFLICT (date, arxiv_id) DO UPDATE SET tags = excluded.tags, score = excluded.score",
        [
            (day.isoformat(), c.paper.arxiv_id, c.paper.announce_type or "new",
             json.dumps(c.tags, ensure_ascii=False), c.score)
            for c in candidates
        ],
    )
    return sum(1 for c in candidates if c.paper.arxiv_id not in existing)


def load_candidates(conn: sqlite3.Connection, day: date) -> list[Candidate]:
    """The day's candidates, best score first, then by id."""
    rows = conn.execute(
        "SELECT p.*, c.announce_type AS c_type, c.tags AS c_tags, c.score AS c_score"
        " FROM candidates c JOIN papers p USING (arxiv_id) WHERE c.date = ?"
        " ORDER BY c.score DESC, c.arxiv_id",
        (day.isoformat(),),
    )
    return [
        Candidate(
            replace(paper_from_row(row), announce_type=row["c_type"]),
            tuple(json.loads(row["c_tags"])),
            row["c_score"],
        )
        for row in rows
    ]


def save_day(conn: sqlite3.Connection, day: date, status: str, announced: int, kept: int) -> None:
    """Record that a day was collected ('collected') or had no announcement ('empty')."""
    conn.execute(
        "INSERT INTO days (date, status, announced, kept, collected_at) VALUES (?,?,?,?,?)"
        " ON CONFLICT (date) DO UPDATE SET status=excluded.status, announced=excluded.announced,"
        " kept=excluded.kept, collected_at=excluded.collected_at",
        (day.isoformat(), status, announced, kept, _now(conn)),
    )


@dataclass(frozen=True)
class DayRecord:
    """The collection record of a day: 'collected' or 'empty', how many items were
    announced and kept, and when."""

    day: date
    status: str  # 'collected' | 'empty'
    announced: int
    kept: int
    collected_at: datetime


def get_day(conn: sqlite3.Connection, day: date) -> DayRecord | None:
    """The collection record of a day, if it was collected."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM days WHERE date = ?", (day.isoformat(),)
    ).fetchone()
    if row is None:
        return None
    return DayRecord(date.fromisoformat(row["date"]), row["status"], row["announced"],
                     row["kept"], datetime.fromisoformat(row["collected_at"]))


def first_seen(conn: sqlite3.Connection, arxiv_ids: Iterable[str]) -> dict[str, date]:
    """The announcement date each stored paper was first collected on (unknown ids absent)."""
    query = "SELECT arxiv_id, first_seen FROM papers WHERE arxiv_id IN ({marks})"
    return {row[0]: date.fromisoformat(row[1]) for row in _rows_in(conn, query, arxiv_ids)}


def prune_candidates(conn: sqlite3.Connection, day: date, keep: Iterable[str]) -> int:
    """Drop the day's candidates not in `keep` (a rerun with other tags); returns how many."""
    rows = conn.execute("SELECT arxiv_id FROM candidates WHERE date = ?", (day.isoformat(),))
    stale = {r[0] for r in rows} - set(keep)
    conn.executemany(
        "DELETE FROM candidates WHERE date = ? AND arxiv_id = ?",
        [(day.isoformat(), arxiv_id) for arxiv_id in sorted(stale)],
    )
    return len(stale)



# --- issues, drafts and approval (curator, render) -------------------------------------------

def count_candidates(conn: sqlite3.Connection, day: date) -> int:
    """How many candidates the day has."""
    row = conn.execute("SELECT COUNT(*) FROM candidates WHERE date = ?", (day.isoformat(),))
    return int(row.fetchone()[0])


def offered_keys(conn: sqlite3.Connection, day: date) -> set[str]:
    """Entry keys (arXiv ids or 'title:' keys) ever offered in the day's draft."""
    rows = conn.execute("SELECT entry_key FROM draft_offers WHERE date = ?", (day.isoformat(),))
    return {r[0] for r in rows}


def offered_on_other_days(conn: sqlite3.Connection, day: date, keys: Iterable[str]) -> set[str]:
    """Which of these keys were offered in the draft of another day."""
    query = "SELECT DISTINCT entry_key FROM draft_offers WHERE date != ? AND entry_key IN ({marks})"
    return {row[0] for row in _rows_in(conn, query, keys, day.isoformat())}


def record_offered(conn: sqlite3.Connection, day: date, keys: Iterable[str]) -> None:
    """Remember that these entries were offered in the day's draft (idempotent)."""
    conn.executemany(
        "INSERT OR IGNORE INTO draft_offers (date, entry_key, offered_at) VALUES (?,?,?)",
        [(day.isoformat(), key, _now(conn)) for key in keys],
    )


def forget_offered(conn: sqlite3.Connection, day: date) -> None:
    """Forget the day's offers (its draft file was removed: the next draft starts afresh)."""
    conn.execute("DELETE FROM draft_offers WHERE date = ?", (day.isoformat(),))


def papers_first_seen_between(
    conn: sqlite3.Connection, arxiv_ids: Iterable[str], first: date, last: date
) -> dict[str, Paper]:
    """Stored papers among these ids first collected between `first` and `last` (inclusive)."""
    seen = first_seen(conn, arxiv_ids)
    return get_papers(conn, [i for i, day in seen.items() if first <= day <= last])


def candidates_before(conn: sqlite3.Connection, day: date) -> Iterator[tuple[date, Paper]]:
    """Every candidate of the days before `day` with the day it was a candidate on, oldest
    first (what the ranking learns its non-picks from)."""
    rows = conn.execute(
        "SELECT c.date AS c_date, p.* FROM candidates c JOIN papers p USING (arxiv_id)"
        " WHERE c.date < ? ORDER BY c.date, c.arxiv_id",
        (day.isoformat(),),
    )
    for row in rows:
        yield date.fromisoformat(row["c_date"]), paper_from_row(row)


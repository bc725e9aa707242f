"""SQLite store (WAL, migrations by PRAGMA user_version): papers, issues, subscribers, deliveries."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from pipeline.errors import StoreError
from pipeline.files import write_atomic
from pipeline.lifecycle import BuildSummary, IssueRecord, State, record_from_row
from pipeline.models import (
    ArchivedEntry,
    Candidate,
    EmailVariant,
    Entry,
    Issue,
    Paper,
    Subscriber,
    archived_entries,
)
from pipeline.text import title_key

# What archive pages need, so a build never loads every archived issue (issue #15); the
# archived issues are indexed by _index_every_archived right after it.
_ARCHIVE_INDEX = """
    ALTER TABLE archive ADD COLUMN title TEXT NOT NULL DEFAULT '';  -- the issue's title
    CREATE TABLE archive_entries (          -- one row per entry of an archived issue
        date          TEXT NOT NULL REFERENCES archive(date),
        number        INTEGER NOT NULL,      -- its place in the issue, from 1
        title         TEXT NOT NULL,
        arxiv_id      TEXT,
        tags          TEXT NOT NULL,         -- JSON list of normalised tags, in order
        entry         TEXT NOT NULL,         -- JSON of the Entry (see issue_json)
        PRIMARY KEY (date, number)
    );

    CREATE TABLE archive_tags (             -- which archived entries carry a tag
        tag           TEXT NOT NULL,         -- normalised (models.normalize_tag)
        date          TEXT NOT NULL,
        number        INTEGER NOT NULL,
        PRIMARY KEY (tag, date, number)
    ) WITHOUT ROWID;

    CREATE TABLE render_cache (             -- feed items of archived issues, reused by builds
        date          TEXT NOT NULL,
        number        INTEGER NOT NULL,      -- the entry's place, 0 = the whole issue
        variant       TEXT NOT NULL,
        digest        TEXT NOT NULL,         -- of the templates, code, settings and content
        html          TEXT NOT NULL,
        PRIMARY KEY (date, number, variant)
    );

    CREATE TABLE site_state (               -- facts about site/ as last rendered in full
        name          TEXT PRIMARY KEY,      -- 'fingerprint': of templates, code and settings
        value         TEXT NOT NULL
    );
    """

# Each migration moves the schema one version up; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE papers (
        arxiv_id     TEXT PRIMARY KEY,
        version      INTEGER NOT NULL,
        title        TEXT NOT NULL,
        authors      TEXT NOT NULL,          -- JSON list
        abstract     TEXT NOT NULL,
        categories   TEXT NOT NULL,          -- JSON list, primary first
        doi          TEXT,
        journal_ref  TEXT,
        comment      TEXT,
        published    TEXT,
        updated      TEXT,
        first_seen   TEXT NOT NULL,          -- announcement date it was first collected on
        title_key    TEXT NOT NULL           -- normalised title, for matching notes
    );
    CREATE INDEX papers_title_key ON papers(title_key);

    CREATE TABLE days (
        date          TEXT PRIMARY KEY,      -- announcement date, YYYY-MM-DD
        status        TEXT NOT NULL,         -- 'collected' | 'empty'
        announced     INTEGER NOT NULL,
        kept          INTEGER NOT NULL,
        collected_at  TEXT NOT NULL
    );

    CREATE TABLE candidates (
        date          TEXT NOT NULL,
        arxiv_id      TEXT NOT NULL REFERENCES papers(arxiv_id),
        announce_type TEXT NOT NULL,
        tags          TEXT NOT NULL,         -- JSON list of tag names
        score         REAL NOT NULL,
        PRIMARY KEY (date, arxiv_id)
    );

    CREATE TABLE issues (
        date          TEXT PRIMARY KEY,
        state         TEXT NOT NULL,         -- collected, drafted, built, approved, sent
        draft_sha     TEXT,                  -- sha256 of the draft the issue was built from
        built_hash    TEXT,                  -- sha256 over draft_sha and every variant
        approved_hash TEXT,
        built_at      TEXT,
        approved_at   TEXT,
        sent_at       TEXT
    );

    CREATE TABLE issue_variants (
        date          TEXT NOT NULL REFERENCES issues(date),
        variant       TEXT NOT NULL,         -- 'ko', 'en', 'all'
        subject       TEXT NOT NULL,
        html          TEXT NOT NULL,         -- inlined, with the unsubscribe placeholder
        text          TEXT NOT NULL,
        PRIMARY KEY (date, variant)
    );

    CREATE TABLE archive (                  -- what site/ shows of each built issue
        date          TEXT PRIMARY KEY,
        issue         TEXT NOT NULL          -- JSON of the Issue as rendered (see issue_json)
    );

    CREATE TABLE subscribers (
        id            INTEGER PRIMARY KEY,
        email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
        language      TEXT NOT NULL,
        tags          TEXT NOT NULL DEFAULT '',   -- space-separated, empty = everything
        status        TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );

    CREATE TABLE deliveries (
        issue_date    TEXT NOT NULL,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
        -- 'sending' (claimed, handed to the server), 'sent' (accepted), 'failed' (5xx, final),
        -- 'deferred' (4xx after every retry; the next run tries again)
        status        TEXT NOT NULL,
        message_id    TEXT NOT NULL,
        response      TEXT,
        attempts      INTEGER NOT NULL DEFAULT 0,
        updated_at    TEXT NOT NULL,
        PRIMARY KEY (issue_date, subscriber_id)
    );

    CREATE TABLE draft_offers (              -- what `digest draft` put in a day's draft, once
        date          TEXT NOT NULL,         -- so that an entry the curator deleted stays deleted
        entry_key     TEXT NOT NULL,         -- arXiv id, or 'title:' + normalised title
        offered_at    TEXT NOT NULL,
        PRIMARY KEY (date, entry_key)
    );
    """,
    _ARCHIVE_INDEX,
    # v3: the issue's lifecycle (pipeline.lifecycle): what build found, the built Issue that
    # publishing renders, and when site/ got which build. `archive` holds published issues.
    """
    ALTER TABLE issues ADD COLUMN build TEXT;            -- JSON lifecycle.BuildSummary
    ALTER TABLE issues ADD COLUMN issue TEXT;            -- JSON of the built Issue
    ALTER TABLE issues ADD COLUMN published_hash TEXT;   -- the built hash site/ shows
    ALTER TABLE issues ADD COLUMN published_at TEXT;
    UPDATE issues SET published_hash = built_hash, published_at = built_at,
        state = CASE WHEN state = 'sent' THEN 'sent' ELSE 'published' END
        WHERE date IN (SELECT date FROM archive) AND built_hash IS NOT NULL;
    """,
    # v4: the web's rate limits and the confirmation mail queue (digest serve)
    """
    CREATE TABLE mail_queue (                -- mail `digest serve` sends in the background
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL,         -- 'confirm'
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
        status        TEXT NOT NULL,         -- queued, sent, failed (gave up), dropped
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_try      REAL NOT NULL,         -- unix time
        last_error    TEXT,
        created_at    REAL NOT NULL,
        finished_at   REAL                   -- when it was sent, failed or dropped
    );
    CREATE INDEX mail_queue_due ON mail_queue(status, next_try);
    CREATE INDEX mail_queue_subscriber ON mail_queue(subscriber_id, created_at);

    CREATE TABLE rate_events (               -- recent requests, for the web's rate limits
        key           TEXT NOT NULL,         -- 'client:<ip>' or 'address:<email>'
        at            REAL NOT NULL          -- unix time
    );
    CREATE INDEX rate_events_key ON rate_events(key, at);
    CREATE INDEX rate_events_at ON rate_events(at);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

# What a failing SQLite call means for the operator, by its result code (extended codes such
# as SQLITE_IOERR_WRITE match their primary code's prefix).
_FAILURES = {
    "SQLITE_READONLY": "the database is read-only (check the permissions of the file and its folder)",
    "SQLITE_FULL": "the disk is full",
    "SQLITE_BUSY": "the database is locked by another process (try again later)",
    "SQLITE_LOCKED": "the database is locked (try again later)",
    "SQLITE_CORRUPT": "the database file is corrupt (restore it from a backup)",
    "SQLITE_NOTADB": "the file is not a SQLite database (restore it from a backup)",
    "SQLITE_CANTOPEN": "cannot open the database file (check that its folder exists and is writable)",
    "SQLITE_IOERR": "a disk I/O error",
    "SQLITE_PERM": "permission denied",
    "SQLITE_AUTH": "permission denied",
}


def store_error(exc: sqlite3.Error, path: Path) -> StoreError:
    """One line naming the database file and what went wrong, for any SQLite failure."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    what = next((text for code, text in _FAILURES.items() if name.startswith(code)), None)
    return StoreError(f"{what} ({exc})" if what else f"database error: {exc}", path=path)


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _reporting(method: Callable[Concatenate[Any, _P], _T]) -> Callable[Concatenate[Any, _P], _T]:
    """`method`, its SQLite failures turned into StoreErrors naming `self.path`."""

    @wraps(method)
    def reported(self: Any, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise store_error(exc, self.path) from exc

    return reported


class _Cursor(sqlite3.Cursor):
    """A cursor whose failures are StoreErrors naming the database file."""

    path: Path

    execute = _reporting(sqlite3.Cursor.execute)
    executemany = _reporting(sqlite3.Cursor.executemany)
    fetchone = _reporting(sqlite3.Cursor.fetchone)
    fetchall = _reporting(sqlite3.Cursor.fetchall)
    __next__ = _reporting(sqlite3.Cursor.__next__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Connection(sqlite3.Connection):
    """A connection whose every failure (read-only, disk full, locked, corrupt) is a
    StoreError naming the file: one line and exit 1 on the CLI, 503 on the web; it carries
    the clock its timestamps come from (the runtime's, see connect)."""

    path: Path
    clock: Callable[[], datetime] = staticmethod(_utcnow)

    def cursor(self, factory: Any = None) -> _Cursor:  # type: ignore[override]
        cur = super().cursor(_Cursor)
        assert isinstance(cur, _Cursor)
        cur.path = self.path
        return cur

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        cur = self.cursor()
        cur.execute(sql, parameters)
        return cur

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        cur = self.cursor()
        cur.executemany(sql, parameters)
        return cur

    commit = _reporting(sqlite3.Connection.commit)


def marker_path(path: Path) -> Path:
    """The file written beside a database when it is created: while it exists, a missing
    database is an error (deleted, or its disk not mounted), never a silent fresh start."""
    return path.with_name(path.name + ".created")


def _use_wal(conn: _Connection, tries: int = 200) -> None:
    """Switch to WAL (it sticks to the file). SQLite does not wait for a busy database while
    changing the journal mode, so two processes opening a new database at once retry."""
    for attempt in range(tries):
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except StoreError as exc:
            cause = exc.__cause__
            busy = getattr(cause, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
            if not busy or attempt == tries - 1:
                raise
            time.sleep(0.05)


def connect(path: Path, clock: Callable[[], datetime] | None = None) -> sqlite3.Connection:
    """Open the database at `path` (creating it, and its marker, on first use) and bring its
    schema up to date; `clock` (the runtime's `now`) stamps what it stores. A database that
    existed before and is gone is a StoreError."""
    marker = marker_path(path)
    existed = path.exists()
    if not existed and marker.exists():
        raise StoreError(
            f"the database is missing, but one was created here before ({marker.name} says "
            f"when): restore it from a backup, or delete {marker.name} to start an empty one",
            path=path,
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the database folder: {exc.strerror}", path=path) from exc
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, factory=_Connection)
    except sqlite3.Error as exc:
        raise store_error(exc, path) from exc
    assert isinstance(conn, _Connection)
    conn.path = path
    if clock is not None:
        conn.clock = clock
    try:
        conn.row_factory = sqlite3.Row
        _use_wal(conn)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, path)
        if not marker.exists():
            write_atomic(marker, f"{_now(conn)} {path.name} created (or first seen) here\n")
    except OSError as exc:
        conn.close()
        raise StoreError(f"cannot write {marker.name}: {exc.strerror}", path=path) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations this database has not seen yet, each in its own transaction.
    The version is read again under the write lock: two processes opening a new database at
    once (`digest serve` and a command) must not both run a migration."""
    while True:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database schema v{current} is newer than this program (v{SCHEMA_VERSION})",
                path=path,
            )
        if current == SCHEMA_VERSION:
            return
        with transaction(conn):
            if conn.execute("PRAGMA user_version").fetchone()[0] != current:
                continue  # another process migrated meanwhile: look again
            for statement in _statements(MIGRATIONS[current]):
                conn.execute(statement)
            if (fill := _MIGRATION_DATA.get(MIGRATIONS[current])) is not None:
                fill(conn)
            conn.execute(f"PRAGMA user_version = {current + 1}")


def _statements(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""


@contextmanager
def savepoint(conn: sqlite3.Connection, name: str) -> Iterator[sqlite3.Connection]:
    """A transaction that nests: inside the caller's, or on its own (released on success,
    rolled back on any exception)."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


@contextmanager
def rolled_back(conn: sqlite3.Connection, name: str) -> Iterator[sqlite3.Connection]:
    """Changes made to see their effect, then undone (a savepoint, so it nests too)."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    finally:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite has already rolled back after some errors (a full disk, an I/O error): then
        # there is nothing to roll back, and the error to report is the first one.
        if conn.in_transaction:
            with suppress(StoreError, sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- papers, days and candidates (collect) ---------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _now(conn: sqlite3.Connection) -> str:
    """The connection's clock (see connect) as stored text, UTC."""
    clock: Callable[[], datetime] = getattr(conn, "clock", _utcnow)
    return clock().astimezone(UTC).isoformat(timespec="seconds")


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


def get_day(conn: sqlite3.Connection, day: date) -> sqlite3.Row | None:
    """The collection record of a day, if it was collected."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM days WHERE date = ?", (day.isoformat(),)
    ).fetchone()
    return row


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

def get_issue(conn: sqlite3.Connection, day: date) -> sqlite3.Row | None:
    """The issue row of a day: state, hashes and timestamps."""
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM issues WHERE date = ?", (day.isoformat(),)
    ).fetchone()
    return row


def get_issue_record(conn: sqlite3.Connection, day: date) -> IssueRecord | None:
    """The day's issue as a typed lifecycle record (None: no issue row yet)."""
    row = get_issue(conn, day)
    return record_from_row(row) if row is not None else None


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



def _entry_dict(e: Entry) -> dict[str, object]:
    return {
        "title": e.title, "authors": list(e.authors), "abstract": e.abstract,
        "commentary": list(e.commentary), "tags": list(e.tags), "arxiv_id": e.arxiv_id,
        "version": e.version, "url": e.url,
    }


def _entry_from_dict(e: dict[str, Any]) -> Entry:
    return Entry(
        title=e["title"], authors=tuple(e["authors"]), abstract=e["abstract"],
        commentary=tuple(e["commentary"]), tags=tuple(e["tags"]),
        arxiv_id=e["arxiv_id"], version=e["version"], url=e["url"],
    )


def issue_json(issue: Issue) -> str:
    """An Issue as stable JSON (what the archive pages and feeds need)."""

    def paper(p: Paper) -> dict[str, object]:
        return {
            "arxiv_id": p.arxiv_id, "version": p.version, "title": p.title,
            "authors": list(p.authors), "abstract": p.abstract, "categories": list(p.categories),
        }

    data: dict[str, object] = {
        "date": issue.date.isoformat(), "title": issue.title,
        "entries": [_entry_dict(e) for e in issue.entries],
        "more_papers": [paper(p) for p in issue.more_papers],
    }
    if issue.corrected is not None:
        data["corrected"] = issue.corrected.isoformat()
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def issue_from_json(text: str) -> Issue:
    """Rebuild an Issue stored by issue_json."""
    data = json.loads(text)
    return Issue(
        date=date.fromisoformat(data["date"]),
        title=data["title"],
        entries=tuple(_entry_from_dict(e) for e in data["entries"]),
        more_papers=tuple(
            Paper(arxiv_id=p["arxiv_id"], version=p["version"], title=p["title"],
                  authors=tuple(p["authors"]), abstract=p["abstract"],
                  categories=tuple(p["categories"]))
            for p in data["more_papers"]
        ),
        corrected=datetime.fromisoformat(data["corrected"]) if data.get("corrected") else None,
    )


# The archive is kept twice over: the whole issue (for its own pages and the issue feeds) and
# one row per entry and per tag, so an index or tag page reads only the rows it shows.


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
             json.dumps(_entry_dict(e), ensure_ascii=False, sort_keys=True)),
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
_MIGRATION_DATA: dict[str, Callable[[sqlite3.Connection], None]] = {
    _ARCHIVE_INDEX: _index_every_archived,
}


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
        (date.fromisoformat(r[0]), r[1], r[2], _entry_from_dict(json.loads(r[3]))) for r in rows
    ]


# --- subscribers and deliveries (deliver) ----------------------------------------------------


def subscriber_from_row(row: sqlite3.Row) -> Subscriber:
    """Rebuild a Subscriber from a `subscribers` row."""
    return Subscriber(
        email=row["email"],
        language=row["language"],
        tags=tuple(row["tags"].split()),
        status=row["status"],
        id=row["id"],
    )


def get_subscriber(conn: sqlite3.Connection, email: str) -> Subscriber | None:
    """The subscriber with this address (case-insensitive), if any."""
    row = conn.execute("SELECT * FROM subscribers WHERE email = ?", (email,)).fetchone()
    return subscriber_from_row(row) if row else None


def get_subscriber_by_id(conn: sqlite3.Connection, subscriber_id: int) -> Subscriber | None:
    """The subscriber with this id, if any."""
    row = conn.execute("SELECT * FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
    return subscriber_from_row(row) if row else None


def save_subscriber(conn: sqlite3.Connection, sub: Subscriber) -> tuple[str, Subscriber]:
    """Insert or update a subscriber by email; returns ('added'|'updated'|'same', stored).
    An unchanged subscriber keeps its updated_at, so saving twice changes nothing."""
    old = get_subscriber(conn, sub.email)
    tags = " ".join(sub.tags)
    now = _now(conn)
    if old is None:
        cur = conn.execute(
            "INSERT INTO subscribers (email, language, tags, status, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?)",
            (sub.email, sub.language, tags, sub.status, now, now),
        )
        assert cur.lastrowid is not None
        return "added", Subscriber(sub.email, sub.language, sub.tags, sub.status, cur.lastrowid)
    new = Subscriber(old.email, sub.language, sub.tags, sub.status, old.id)
    if new == old:
        return "same", old
    conn.execute(
        "UPDATE subscribers SET language = ?, tags = ?, status = ?, updated_at = ? WHERE id = ?",
        (sub.language, tags, sub.status, now, old.id),
    )
    return "updated", new


def set_subscriber_status(conn: sqlite3.Connection, subscriber_id: int, status: str) -> bool:
    """Set a subscriber's status; True when it changed (so repeating it is harmless)."""
    cur = conn.execute(
        "UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ? AND status != ?",
        (status, _now(conn), subscriber_id, status),
    )
    return cur.rowcount == 1


def iter_subscribers(
    conn: sqlite3.Connection, status: str | None = None, batch: int = 500
) -> Iterator[Subscriber]:
    """Subscribers in id order, read in batches so memory does not grow with the list."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT * FROM subscribers WHERE id > ? AND (? IS NULL OR status = ?)"
            " ORDER BY id LIMIT ?",
            (last, status, status, batch),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield subscriber_from_row(row)
        last = rows[-1]["id"]


def count_subscribers(conn: sqlite3.Connection, status: str | None = None) -> int:
    """How many subscribers (with this status)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM subscribers WHERE (? IS NULL OR status = ?)", (status, status)
    ).fetchone()
    return int(row[0])


def iter_recipients(
    conn: sqlite3.Connection, day: date, batch: int = 500
) -> Iterator[tuple[Subscriber, str | None]]:
    """Active subscribers with the status of their delivery of the day's issue (None if
    none yet), in id order and in batches (memory stays flat for any list size)."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT s.*, d.status AS d_status FROM subscribers s LEFT JOIN deliveries d"
            " ON d.issue_date = ? AND d.subscriber_id = s.id"
            " WHERE s.status = 'active' AND s.id > ? ORDER BY s.id LIMIT ?",
            (day.isoformat(), last, batch),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield subscriber_from_row(row), row["d_status"]
        last = rows[-1]["id"]


def claim_delivery(
    conn: sqlite3.Connection, day: date, subscriber_id: int, message_id: str
) -> bool:
    """Mark a delivery 'sending' before the message goes out. False when it is already
    'sent' or 'failed'. A 'sending' row left by a crashed run is claimed again: that one
    message may have reached the server, so it is the one that can repeat."""
    cur = conn.execute(
        "INSERT INTO deliveries (issue_date, subscriber_id, status, message_id, attempts,"
        " updated_at) VALUES (?, ?, 'sending', ?, 1, ?)"
        " ON CONFLICT (issue_date, subscriber_id) DO UPDATE SET status = 'sending',"
        " attempts = attempts + 1, updated_at = excluded.updated_at"
        " WHERE deliveries.status IN ('sending', 'deferred')",
        (day.isoformat(), subscriber_id, message_id, _now(conn)),
    )
    return cur.rowcount == 1


def finish_delivery(
    conn: sqlite3.Connection, day: date, subscriber_id: int, status: str, response: str | None
) -> None:
    """Record how a claimed delivery ended: 'sent', 'failed' or 'deferred'."""
    if status not in ("sent", "failed", "deferred"):
        raise ValueError(f"unknown delivery status {status!r}")
    conn.execute(
        "UPDATE deliveries SET status = ?, response = ?, updated_at = ?"
        " WHERE issue_date = ? AND subscriber_id = ?",
        (status, response, _now(conn), day.isoformat(), subscriber_id),
    )


def delivery_counts(conn: sqlite3.Connection, day: date) -> dict[str, int]:
    """Deliveries of the day's issue by status."""
    rows = conn.execute(
        "SELECT status, COUNT(*) FROM deliveries WHERE issue_date = ? GROUP BY status",
        (day.isoformat(),),
    )
    return {r[0]: int(r[1]) for r in rows}


def mark_issue_sent(conn: sqlite3.Connection, day: date) -> None:
    """Record that every subscriber of the day's issue has been handled."""
    conn.execute(
        "UPDATE issues SET state = ?, sent_at = ? WHERE date = ?",
        (State.SENT.value, _now(conn), day.isoformat()),
    )


# --- web: rate limits and the mail queue (digest serve) --------------------------------------

# Rate-limit events older than this are pruned (longer than any window that reads them).
EVENT_RETENTION = 86400.0


def count_events(conn: sqlite3.Connection, key: str, since: float) -> int:
    """How many events of `key` happened at or after `since` (a unix time)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM rate_events WHERE key = ? AND at >= ?", (key, since)
    ).fetchone()
    return int(row[0])


def record_event(conn: sqlite3.Connection, key: str, at: float) -> None:
    """Record one event of `key` at `at`, and forget events older than a day."""
    conn.execute("DELETE FROM rate_events WHERE at < ?", (at - EVENT_RETENTION,))
    conn.execute("INSERT INTO rate_events (key, at) VALUES (?, ?)", (key, at))


def queue_mail(conn: sqlite3.Connection, kind: str, subscriber_id: int, at: float) -> int:
    """Queue a mail of `kind` ('confirm') for a subscriber, due now; returns its id."""
    cur = conn.execute(
        "INSERT INTO mail_queue (kind, subscriber_id, status, next_try, created_at)"
        " VALUES (?, ?, 'queued', ?, ?)",
        (kind, subscriber_id, at, at),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def last_mail(conn: sqlite3.Connection, subscriber_id: int, kind: str) -> float | None:
    """When the newest mail of `kind` for this subscriber was queued (None: never)."""
    row = conn.execute(
        "SELECT MAX(created_at) FROM mail_queue WHERE subscriber_id = ? AND kind = ?",
        (subscriber_id, kind),
    ).fetchone()
    return float(row[0]) if row[0] is not None else None


def claim_mail(conn: sqlite3.Connection, at: float, lease: float) -> sqlite3.Row | None:
    """The oldest queued mail due at `at`, claimed for `lease` seconds (its next_try moves
    on, so a second worker does not take it too); None when nothing is due."""
    with transaction(conn):
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM mail_queue WHERE status = 'queued' AND next_try <= ?"
            " ORDER BY next_try, id LIMIT 1", (at,),
        ).fetchone()
        if row is not None:
            conn.execute("UPDATE mail_queue SET next_try = ?, attempts = attempts + 1"
                         " WHERE id = ?", (at + lease, row["id"]))
    return row


def retry_mail(conn: sqlite3.Connection, mail_id: int, next_try: float, error: str) -> None:
    """Leave a claimed mail queued, to be tried again at `next_try`."""
    conn.execute("UPDATE mail_queue SET next_try = ?, last_error = ? WHERE id = ?",
                 (next_try, error, mail_id))


def finish_mail(
    conn: sqlite3.Connection, mail_id: int, status: str, error: str | None,
    at: float | None = None,
) -> None:
    """Record how a claimed mail ended (at `at`, a unix time): 'sent', 'failed' (gave up)
    or 'dropped' (no longer needed)."""
    if status not in ("sent", "failed", "dropped"):
        raise ValueError(f"unknown mail status {status!r}")
    conn.execute("UPDATE mail_queue SET status = ?, last_error = ?, finished_at = ? WHERE id = ?",
                 (status, error, at if at is not None else time.time(), mail_id))


def mails_sent_since(conn: sqlite3.Connection, since: float) -> int:
    """How many queued mails went out at or after `since`."""
    row = conn.execute(
        "SELECT COUNT(*) FROM mail_queue WHERE status = 'sent' AND finished_at >= ?", (since,)
    ).fetchone()
    return int(row[0])


def prune_mail(conn: sqlite3.Connection, before: float) -> int:
    """Forget finished mails queued before `before` (the queue keeps no history forever);
    returns how many."""
    cur = conn.execute(
        "DELETE FROM mail_queue WHERE status != 'queued' AND created_at < ?", (before,)
    )
    return cur.rowcount


def mail_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Queued mails by status."""
    rows = conn.execute("SELECT status, COUNT(*) FROM mail_queue GROUP BY status")
    return {r[0]: int(r[1]) for r in rows}

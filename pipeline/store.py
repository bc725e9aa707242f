"""SQLite store (WAL, migrations by PRAGMA user_version): papers, issues, subscribers, deliveries."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import StoreError

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
        built_hash    TEXT,
        approved_hash TEXT,
        built_at      TEXT,
        approved_at   TEXT,
        sent_at       TEXT
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
        status        TEXT NOT NULL,         -- 'sending' | 'sent' | 'failed'
        message_id    TEXT NOT NULL,
        response      TEXT,
        attempts      INTEGER NOT NULL DEFAULT 0,
        updated_at    TEXT NOT NULL,
        PRIMARY KEY (issue_date, subscriber_id)
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database at `path` and bring its schema up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the database: {exc}", path=path) from exc
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations this database has not seen yet, each in its own transaction."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"database schema v{current} is newer than this program (v{SCHEMA_VERSION})",
            path=path,
        )
    for version in range(current, SCHEMA_VERSION):
        with transaction(conn):
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")


def _statements(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- papers, days and candidates (collect) ---------------------------------------------------



# --- issues, drafts and approval (curator, render) -------------------------------------------



# --- subscribers and deliveries (deliver) ----------------------------------------------------

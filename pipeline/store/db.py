"""Opening the newsletter's SQLite store: schema, migrations, transactions, failures as StoreErrors."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from pipeline.core.errors import StoreError
from pipeline.core.files import write_atomic

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
    # v3: the lifecycle (pipeline.core.lifecycle): what build found, the built Issue that
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
    # v5: the studio's triage (picked, dismissed, seen: the ranking learner's feedback too)
    # and its undo history
    """
    CREATE TABLE triage (                    -- what the curator did with a day's candidate
        date          TEXT NOT NULL,
        arxiv_id      TEXT NOT NULL,
        state         TEXT NOT NULL,         -- 'seen', 'picked', 'dismissed'
        at            TEXT NOT NULL,         -- when it was last set
        PRIMARY KEY (date, arxiv_id)
    ) WITHOUT ROWID;

    CREATE TABLE studio_undo (               -- entries the studio removed, newest last
        id            INTEGER PRIMARY KEY,
        date          TEXT NOT NULL,
        position      INTEGER NOT NULL,      -- its index in the draft when removed
        entry         TEXT NOT NULL,         -- JSON of the Entry
        at            TEXT NOT NULL
    );
    CREATE INDEX studio_undo_date ON studio_undo(date, id);
    """,
    # v6 (issue #22): bounces and complaints (pipeline.deliver.bounces), from webhooks and
    # delivery reports; confirmation links bound to their pending period; fair mail queue
    """
    CREATE TABLE bounce_events (
        id            INTEGER PRIMARY KEY,
        source        TEXT NOT NULL,         -- 'ses', 'postmark', 'mailgun', 'sendgrid', 'dsn'
        event_id      TEXT NOT NULL,         -- the provider's id: a resent webhook counts once
        email         TEXT NOT NULL COLLATE NOCASE,
        subscriber_id INTEGER REFERENCES subscribers(id),
        kind          TEXT NOT NULL,         -- 'hard', 'soft', 'complaint'
        detail        TEXT NOT NULL DEFAULT '',
        at            TEXT NOT NULL,         -- when it was recorded (UTC)
        UNIQUE (source, event_id)
    );
    CREATE INDEX bounce_events_email ON bounce_events(email, at);
    CREATE INDEX bounce_events_at ON bounce_events(at);
    -- when the address last became pending: a confirmation link signed before that is
    -- an old one (the address was unsubscribed and subscribed again since), answered 410
    ALTER TABLE subscribers ADD COLUMN pending_since REAL;
    -- who asked for a queued mail (the client key of web.client_key): the hourly budget
    -- is shared out per client, so one client cannot starve everyone's confirmations
    ALTER TABLE mail_queue ADD COLUMN client TEXT NOT NULL DEFAULT '';
    CREATE INDEX mail_queue_client ON mail_queue(client, status, finished_at);
    """,
    # v7: which transport each delivery went through. An 'outbox' row is a trial (a file
    # written, nobody reached): it dedupes later outbox sends and counts as nothing for a
    # real one. Rows from before are taken as real, so nobody can get an issue twice.
    # issues.outbox_at: when an outbox send of the issue finished (its state stays unsent).
    """
    ALTER TABLE deliveries ADD COLUMN transport TEXT NOT NULL DEFAULT 'smtp';
    ALTER TABLE issues ADD COLUMN outbox_at TEXT;
    """,
    # v8: one time encoding. The web's mail queue, rate events and subscribers.pending_since
    # held unix times (REAL); they become ISO 8601 text in UTC like every other time in the
    # store (encode_time, to the microsecond). unix_to_text is _unix_to_text, which migrate
    # registers on the connection. SQLite cannot change a column's type: the two tables are
    # copied into new ones, and pending_since into a new column that takes its name.
    """
    ALTER TABLE subscribers ADD COLUMN pending_since_text TEXT;
    UPDATE subscribers SET pending_since_text = unix_to_text(pending_since);
    ALTER TABLE subscribers DROP COLUMN pending_since;
    ALTER TABLE subscribers RENAME COLUMN pending_since_text TO pending_since;

    CREATE TABLE mail_queue_text (
        id            INTEGER PRIMARY KEY,
        kind          TEXT NOT NULL,         -- 'confirm'
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
        status        TEXT NOT NULL,         -- queued, sent, failed (gave up), dropped
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_try      TEXT NOT NULL,
        last_error    TEXT,
        created_at    TEXT NOT NULL,
        finished_at   TEXT,                  -- when it was sent, failed or dropped
        client        TEXT NOT NULL DEFAULT ''  -- who asked for it (web.client_key)
    );
    INSERT INTO mail_queue_text (id, kind, subscriber_id, status, attempts, next_try,
                                 last_error, created_at, finished_at, client)
        SELECT id, kind, subscriber_id, status, attempts, unix_to_text(next_try), last_error,
               unix_to_text(created_at), unix_to_text(finished_at), client FROM mail_queue;
    DROP TABLE mail_queue;
    ALTER TABLE mail_queue_text RENAME TO mail_queue;
    CREATE INDEX mail_queue_due ON mail_queue(status, next_try);
    CREATE INDEX mail_queue_subscriber ON mail_queue(subscriber_id, created_at);
    CREATE INDEX mail_queue_client ON mail_queue(client, status, finished_at);

    CREATE TABLE rate_events_text (
        key           TEXT NOT NULL,         -- 'client:<ip>' or 'address:<email>'
        at            TEXT NOT NULL
    );
    INSERT INTO rate_events_text (key, at) SELECT key, unix_to_text(at) FROM rate_events;
    DROP TABLE rate_events;
    ALTER TABLE rate_events_text RENAME TO rate_events;
    CREATE INDEX rate_events_key ON rate_events(key, at);
    CREATE INDEX rate_events_at ON rate_events(at);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

# Migrations that also fill data, keyed by their SQL; the module owning the data registers
# its filler (pipeline.store.archive), so this module imports none of them.
DATA_MIGRATIONS: dict[str, Callable[[sqlite3.Connection], None]] = {}

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
    or emptied database is an error (deleted, truncated, or its disk not mounted), never a
    silent fresh start. Named `digest.created`, not `digest.db.created`, so that clearing
    the WAL files with `rm data/digest.db*` does not take it along."""
    return path.with_name(path.stem + ".created")


def _legacy_marker(path: Path) -> Path:
    """The marker's earlier name (still honoured; the current one is written beside it)."""
    return path.with_name(path.name + ".created")


def check_present(path: Path) -> bool:
    """Whether the database at `path` holds a store: False when none was ever created here
    (a new newsletter), a StoreError when one was and is now missing or empty (0 bytes)."""
    markers = [m for m in (marker_path(path), _legacy_marker(path)) if m.exists()]
    try:
        size: int | None = path.stat().st_size
    except FileNotFoundError:
        size = None
    except OSError as exc:
        raise StoreError(f"cannot read the database file: {exc.strerror}", path=path) from exc
    if size:
        return True
    if not markers:
        return False
    what = "missing" if size is None else "empty (0 bytes: truncated?)"
    name = markers[0].name
    raise StoreError(
        f"the database is {what}, but one was created here before ({name} says when): "
        f"restore it from a backup, or delete {name} to start an empty one", path=path,
    )


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
    existed before and is gone or emptied is a StoreError (see check_present)."""
    marker = marker_path(path)
    # a store was created here (its marker says so) and its file is there
    guarded = check_present(path) and (marker.exists() or _legacy_marker(path).exists())
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
        # Emptied between the check above and the open (truncated as we came in): an empty
        # database under a marker is a lost one, never one to set up afresh.
        if guarded and conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            check_present(path)
            raise StoreError("the database is empty (0 bytes: truncated?), but one was created "
                             f"here before: restore it from a backup, or delete {marker.name} "
                             "to start an empty one", path=path)
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
        # v8 converts unix times with it (SQLite's own strftime keeps milliseconds only)
        conn.create_function("unix_to_text", 1, _unix_to_text, deterministic=True)
        with transaction(conn):
            if conn.execute("PRAGMA user_version").fetchone()[0] != current:
                continue  # another process migrated meanwhile: look again
            for statement in _statements(MIGRATIONS[current]):
                conn.execute(statement)
            if (fill := DATA_MIGRATIONS.get(MIGRATIONS[current])) is not None:
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


# --- the one time encoding --------------------------------------------------------------------

# Every time in the store is ISO 8601 text in UTC with its offset, as datetime.isoformat
# writes it: "2024-12-05T06:00:00+00:00". Stamps of records (created_at, sent_at, ...) are
# to the second; the web's mail queue, rate events and subscribers.pending_since, whose
# windows and leases are compared in SQL, to the microsecond: "2024-12-05T06:00:00.250000+00:00".
# Each column has one width and one zone, so comparing its text compares the moments.
Precision = Literal["seconds", "microseconds"]


def encode_time(at: datetime, timespec: Precision = "seconds") -> str:
    """A moment as the store keeps it (an aware datetime, in any zone)."""
    if at.tzinfo is None:
        raise ValueError(f"a time without a zone cannot be stored: {at.isoformat()}")
    return at.astimezone(UTC).isoformat(timespec=timespec)


def decode_time(text: str) -> datetime:
    """A moment the store kept (encode_time), as an aware datetime in UTC."""
    return datetime.fromisoformat(text).astimezone(UTC)


def _unix_to_text(value: float | str | bytes | None) -> float | str | bytes | None:
    """A unix time of the stores before v8 in the store's encoding (anything else as it is)."""
    if isinstance(value, int | float):
        return encode_time(datetime.fromtimestamp(value, UTC), "microseconds")
    return value


# --- stored times ----------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def clock_of(conn: sqlite3.Connection) -> Callable[[], datetime]:
    """The clock a connection stamps with (see connect): a second connection of the same
    work (a send's worker thread) opens with it, so both write the same time."""
    clock: Callable[[], datetime] = getattr(conn, "clock", _utcnow)
    return clock


def _now(conn: sqlite3.Connection) -> str:
    """The connection's clock (see connect) as stored text, UTC."""
    return encode_time(clock_of(conn)())

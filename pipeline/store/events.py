"""Rate-limit events and the queue of confirmation mails.

Times are aware datetimes, kept to the microsecond (db.encode_time): the text of one column
compares as its moments do, so the due, window and pruning comparisons run in SQL. The
clock is the caller's (the runtime's `now`): nothing here reads the system's.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.store.db import decode_time, encode_time, transaction

# Rate-limit events older than this are pruned (longer than any window that reads them).
EVENT_RETENTION = timedelta(days=1)
# a client's mails sent within this long count against its share (claim_mail's per_client)
_CLIENT_PERIOD = timedelta(hours=1)


def _at(moment: datetime) -> str:
    return encode_time(moment, "microseconds")


def count_events(conn: sqlite3.Connection, key: str, since: datetime) -> int:
    """How many events of `key` happened at or after `since`."""
    row = conn.execute(
        "SELECT COUNT(*) FROM rate_events WHERE key = ? AND at >= ?", (key, _at(since))
    ).fetchone()
    return int(row[0])


def record_event(conn: sqlite3.Connection, key: str, at: datetime) -> None:
    """Record one event of `key` at `at`, and forget events older than a day."""
    conn.execute("DELETE FROM rate_events WHERE at < ?", (_at(at - EVENT_RETENTION),))
    conn.execute("INSERT INTO rate_events (key, at) VALUES (?, ?)", (key, _at(at)))


def queue_mail(conn: sqlite3.Connection, kind: str, subscriber_id: int, at: datetime,
               client: str = "") -> int:
    """Queue a mail of `kind` ('confirm') for a subscriber, due at `at` (now), asked for by
    `client`; returns its id."""
    cur = conn.execute(
        "INSERT INTO mail_queue (kind, subscriber_id, status, next_try, created_at, client)"
        " VALUES (?, ?, 'queued', ?, ?, ?)",
        (kind, subscriber_id, _at(at), _at(at), client),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def last_mail(conn: sqlite3.Connection, subscriber_id: int, kind: str) -> datetime | None:
    """When the newest mail of `kind` for this subscriber was queued (None: never)."""
    row = conn.execute(
        "SELECT MAX(created_at) FROM mail_queue WHERE subscriber_id = ? AND kind = ?",
        (subscriber_id, kind),
    ).fetchone()
    return decode_time(row[0]) if row[0] is not None else None


@dataclass(frozen=True)
class QueuedMail:
    """One mail of the queue, as claimed."""

    id: int
    kind: str
    subscriber_id: int
    attempts: int  # tries before this claim
    created_at: datetime


def claim_mail(conn: sqlite3.Connection, at: datetime, lease: timedelta,
               per_client: int | None = None) -> QueuedMail | None:
    """The next queued mail due at `at`, claimed for `lease` (its next_try moves on, so a
    second worker does not take it too); None when nothing is due. Fair between clients:
    the mail of the client with the fewest mails sent in the last hour goes first (then
    the oldest), and a client with `per_client` sent in the hour waits."""
    with transaction(conn):
        row: sqlite3.Row | None = conn.execute(
            "SELECT q.*, (SELECT COUNT(*) FROM mail_queue s WHERE s.client = q.client"
            "  AND s.status = 'sent' AND s.finished_at >= ?) AS client_sent"
            " FROM mail_queue q WHERE q.status = 'queued' AND q.next_try <= ?"
            " AND (? IS NULL OR client_sent < ?)"
            " ORDER BY client_sent, q.next_try, q.id LIMIT 1",
            (_at(at - _CLIENT_PERIOD), _at(at), per_client, per_client),
        ).fetchone()
        if row is not None:
            conn.execute("UPDATE mail_queue SET next_try = ?, attempts = attempts + 1"
                         " WHERE id = ?", (_at(at + lease), row["id"]))
    if row is None:
        return None
    return QueuedMail(row["id"], row["kind"], row["subscriber_id"], row["attempts"],
                      decode_time(row["created_at"]))


def retry_mail(conn: sqlite3.Connection, mail_id: int, next_try: datetime, error: str) -> None:
    """Leave a claimed mail queued, to be tried again at `next_try`."""
    conn.execute("UPDATE mail_queue SET next_try = ?, last_error = ? WHERE id = ?",
                 (_at(next_try), error, mail_id))


def finish_mail(
    conn: sqlite3.Connection, mail_id: int, status: str, error: str | None, at: datetime,
) -> None:
    """Record how a claimed mail ended at `at`: 'sent', 'failed' (gave up) or 'dropped'
    (no longer needed)."""
    if status not in ("sent", "failed", "dropped"):
        raise ValueError(f"unknown mail status {status!r}")
    conn.execute("UPDATE mail_queue SET status = ?, last_error = ?, finished_at = ? WHERE id = ?",
                 (status, error, _at(at), mail_id))


def mails_sent_since(conn: sqlite3.Connection, since: datetime) -> int:
    """How many queued mails went out at or after `since`."""
    row = conn.execute(
        "SELECT COUNT(*) FROM mail_queue WHERE status = 'sent' AND finished_at >= ?",
        (_at(since),),
    ).fetchone()
    return int(row[0])


def prune_mail(conn: sqlite3.Connection, before: datetime) -> int:
    """Forget finished mails queued before `before` (the queue keeps no history forever);
    returns how many."""
    cur = conn.execute(
        "DELETE FROM mail_queue WHERE status != 'queued' AND created_at < ?", (_at(before),)
    )
    return cur.rowcount


def mail_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Queued mails by status."""
    rows = conn.execute("SELECT status, COUNT(*) FROM mail_queue GROUP BY status")
    return {r[0]: int(r[1]) for r in rows}

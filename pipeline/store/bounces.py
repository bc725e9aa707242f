"""Bounce and complaint events (table `bounce_events`), and the counts their rates need."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from pipeline.store.db import _now, encode_time

EVENT_KINDS = ("hard", "soft", "complaint")


def record_bounce(
    conn: sqlite3.Connection, source: str, event_id: str, email: str, kind: str, detail: str,
) -> bool:
    """Store one event; False when this (source, event_id) was stored before (providers
    resend a webhook until it is answered, a mailbox is read again)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown bounce kind {kind!r}")
    row = conn.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
    cur = conn.execute(
        "INSERT OR IGNORE INTO bounce_events (source, event_id, email, subscriber_id, kind,"
        " detail, at) VALUES (?,?,?,?,?,?,?)",
        (source, event_id, email, row["id"] if row else None, kind, detail[:500], _now(conn)),
    )
    return cur.rowcount == 1


def soft_bounce_count(conn: sqlite3.Connection, email: str, since: datetime) -> int:
    """Soft bounces of `email` recorded at or after `since`."""
    row = conn.execute(
        "SELECT COUNT(*) FROM bounce_events WHERE email = ? AND kind = 'soft' AND at >= ?",
        (email, encode_time(since)),
    ).fetchone()
    return int(row[0])


def set_status_for_email(conn: sqlite3.Connection, email: str, status: str,
                         only_from: tuple[str, ...]) -> bool:
    """Set a subscriber's status when it is one of `only_from`; True when it changed."""
    marks = ",".join("?" * len(only_from))
    cur = conn.execute(
        f"UPDATE subscribers SET status = ?, updated_at = ? WHERE email = ? AND status IN "
        f"({marks})", (status, _now(conn), email, *only_from),
    )
    return cur.rowcount > 0


def event_counts(conn: sqlite3.Connection, since: datetime) -> dict[str, int]:
    """Events per kind recorded at or after `since` (distinct addresses per kind)."""
    rows = conn.execute(
        "SELECT kind, COUNT(DISTINCT email) FROM bounce_events WHERE at >= ? GROUP BY kind",
        (encode_time(since),),
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def sent_count(conn: sqlite3.Connection, since: datetime) -> int:
    """Messages servers accepted at or after `since` (the ledger's `sent` rows)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND updated_at >= ?",
        (encode_time(since),),
    ).fetchone()
    return int(row[0])

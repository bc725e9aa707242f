"""Subscribers and the send ledger (one row per reader and issue)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime

from pipeline.core.lifecycle import State
from pipeline.core.models import (
    Subscriber,
)
from pipeline.store.db import _now, decode_time, encode_time


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


# The transports a delivery row records: only 'outbox' is a trial that reaches nobody.
OUTBOX = "outbox"
REAL = "smtp"


def iter_recipients(
    conn: sqlite3.Connection, day: date, batch: int = 500, transport: str = REAL
) -> Iterator[tuple[Subscriber, str | None]]:
    """Active subscribers with the status of their delivery of the day's issue (None if
    none yet) as a send through `transport` sees it: an outbox row is none for a real send.
    In id order and in batches (memory stays flat for any list size)."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT s.*, CASE WHEN d.transport = 'outbox' AND ? != 'outbox' THEN NULL"
            " ELSE d.status END AS d_status FROM subscribers s LEFT JOIN deliveries d"
            " ON d.issue_date = ? AND d.subscriber_id = s.id"
            " WHERE s.status = 'active' AND s.id > ? ORDER BY s.id LIMIT ?",
            (transport, day.isoformat(), last, batch),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield subscriber_from_row(row), row["d_status"]
        last = rows[-1]["id"]


def claim_delivery(
    conn: sqlite3.Connection, day: date, subscriber_id: int, message_id: str,
    transport: str = REAL,
) -> bool:
    """Mark a delivery 'sending' through `transport` before the message goes out. False
    when it is already 'sent' or 'failed' (for a real send: through a real transport; an
    outbox row is a trial, taken over). A 'sending' row left by a crashed run is claimed
    again: that one message may have reached the server, so it is the one that can repeat."""
    cur = conn.execute(
        "INSERT INTO deliveries (issue_date, subscriber_id, status, message_id, attempts,"
        " updated_at, transport) VALUES (?, ?, 'sending', ?, 1, ?, ?)"
        " ON CONFLICT (issue_date, subscriber_id) DO UPDATE SET status = 'sending',"
        " attempts = CASE WHEN deliveries.transport = excluded.transport"
        " THEN deliveries.attempts + 1 ELSE 1 END, response = NULL,"
        " transport = excluded.transport, updated_at = excluded.updated_at"
        " WHERE deliveries.status IN ('sending', 'deferred')"
        " OR (deliveries.transport = 'outbox' AND excluded.transport != 'outbox')",
        (day.isoformat(), subscriber_id, message_id, _now(conn), transport),
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


def delivery_counts(
    conn: sqlite3.Connection, day: date, transport: str | None = None
) -> dict[str, int]:
    """Deliveries of the day's issue by status (through `transport` only, if given)."""
    rows = conn.execute(
        "SELECT status, COUNT(*) FROM deliveries WHERE issue_date = ?"
        " AND (? IS NULL OR transport = ?) GROUP BY status",
        (day.isoformat(), transport, transport),
    )
    return {r[0]: int(r[1]) for r in rows}


def mark_issue_outboxed(conn: sqlite3.Connection, day: date) -> None:
    """Record that an outbox send of the day's issue finished (its state stays unsent)."""
    conn.execute("UPDATE issues SET outbox_at = ? WHERE date = ?", (_now(conn), day.isoformat()))


def issue_outboxed_at(conn: sqlite3.Connection, day: date) -> str | None:
    """When an outbox send of the day's issue finished, if one did."""
    row = conn.execute("SELECT outbox_at FROM issues WHERE date = ?",
                       (day.isoformat(),)).fetchone()
    return row[0] if row is not None else None


def mark_issue_sent(conn: sqlite3.Connection, day: date) -> None:
    """Record that every subscriber of the day's issue has been handled."""
    conn.execute(
        "UPDATE issues SET state = ?, sent_at = ? WHERE date = ?",
        (State.SENT.value, _now(conn), day.isoformat()),
    )


# --- web: confirmation links (digest serve) ---------------------------------------------------


def mark_pending(conn: sqlite3.Connection, subscriber_id: int, at: datetime) -> None:
    """Record that the address became pending at `at`: confirmation links signed before
    then belong to an earlier subscription."""
    conn.execute("UPDATE subscribers SET pending_since = ? WHERE id = ?",
                 (encode_time(at, "microseconds"), subscriber_id))


def pending_since(conn: sqlite3.Connection, subscriber_id: int) -> datetime | None:
    """When the address last became pending (None: before this was recorded)."""
    row = conn.execute("SELECT pending_since FROM subscribers WHERE id = ?",
                       (subscriber_id,)).fetchone()
    return decode_time(row[0]) if row is not None and row[0] is not None else None

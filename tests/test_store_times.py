"""The store's one time encoding (issue #18): every time is ISO 8601 text in UTC, so a store
from before v8, whose web tables (mail queue, rate events, pending_since) held unix times,
keeps every instant on upgrade and its queue claims in the same order."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline import store
from pipeline.core.models import Subscriber

# 2024-12-05 09:00:00 UTC as a unix time, and the same moment as a datetime
T = 1733389200.0
NINE = datetime(2024, 12, 5, 9, 0, tzinfo=UTC)
V7 = 7  # the schema that still held unix times


def _at(seconds: float) -> datetime:
    """NINE plus `seconds` (a fraction that floats hold exactly)."""
    return NINE + timedelta(seconds=seconds)


def _v7_store(path: Path) -> None:
    """A database as v7 left it: subscribers with a REAL pending_since, and the mail queue
    and rate events in unix times, some with fractions of a second."""
    with closing(sqlite3.connect(path, isolation_level=None)) as raw:
        for script in store.MIGRATIONS[:V7]:
            for statement in store.db._statements(script):
                raw.execute(statement)
        raw.execute(f"PRAGMA user_version = {V7}")
        raw.executemany(
            "INSERT INTO subscribers (id, email, language, tags, status, created_at,"
            " updated_at, pending_since) VALUES (?, ?, 'all', '', ?, ?, ?, ?)",
            [(1, "a@example.org", "pending", "2024-12-05T08:59:00+00:00",
              "2024-12-05T08:59:00+00:00", T + 0.123456),
             (2, "b@example.org", "active", "2024-12-01T00:00:00+00:00",
              "2024-12-01T00:00:00+00:00", None)],
        )
        raw.executemany(
            "INSERT INTO mail_queue (id, kind, subscriber_id, status, attempts, next_try,"
            " last_error, created_at, finished_at, client) VALUES (?, 'confirm', ?, ?, ?, ?,"
            " ?, ?, ?, ?)",
            [
                # due after `early`, though queued first
                (1, 1, "queued", 0, T + 10.25, None, T + 0.5, None, "client:b"),
                (2, 1, "queued", 2, T + 9.5, "421 busy", T + 1.0, None, "client:b"),  # early
                (3, 1, "queued", 0, T + 3600, None, T + 2.0, None, "client:b"),  # not due
                (4, 2, "sent", 1, T + 5.0, None, T + 1.0, T + 5.75, "client:a"),
            ],
        )
        raw.executemany("INSERT INTO rate_events (key, at) VALUES (?, ?)",
                        [("client:x", T + 1.5), ("client:x", T + 50.25),
                         ("client:x", T + 59.75), ("client:y", T + 55.0)])


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    path = tmp_path / "digest.db"
    _v7_store(path)
    conn = store.connect(path)
    yield conn
    conn.close()


def test_the_upgrade_stores_every_time_as_text_in_text_columns(upgraded: sqlite3.Connection) -> None:
    assert upgraded.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    columns = {
        table: {r["name"]: r["type"] for r in upgraded.execute(f"PRAGMA table_info({table})")}
        for table in ("mail_queue", "rate_events", "subscribers")
    }
    assert {c: columns["mail_queue"][c] for c in ("next_try", "created_at", "finished_at")} == {
        "next_try": "TEXT", "created_at": "TEXT", "finished_at": "TEXT"}
    assert columns["rate_events"]["at"] == "TEXT"
    assert columns["subscribers"]["pending_since"] == "TEXT"
    kinds = {r[0] for r in upgraded.execute(
        "SELECT typeof(next_try) FROM mail_queue UNION SELECT typeof(created_at) FROM mail_queue"
        " UNION SELECT typeof(at) FROM rate_events")}
    assert kinds == {"text"}
    assert upgraded.execute("SELECT next_try FROM mail_queue WHERE id = 2").fetchone()[0] == (
        "2024-12-05T09:00:09.500000+00:00")
    indexes = {r[0] for r in upgraded.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN"
        " ('mail_queue', 'rate_events')")}
    assert indexes == {"mail_queue_due", "mail_queue_subscriber", "mail_queue_client",
                       "rate_events_key", "rate_events_at"}
    # the rest of the subscriber rows came through the column swap untouched
    subs = [(s.id, s.email, s.status) for s in store.iter_subscribers(upgraded)]
    assert subs == [(1, "a@example.org", "pending"), (2, "b@example.org", "active")]


def test_the_upgrade_keeps_every_instant(upgraded: sqlite3.Connection) -> None:
    assert store.pending_since(upgraded, 1) == datetime(2024, 12, 5, 9, 0, 0, 123456, tzinfo=UTC)
    assert store.pending_since(upgraded, 2) is None
    assert store.last_mail(upgraded, 1, "confirm") == _at(2.0)
    # `since` exactly at a migrated instant counts it: no fraction of a second was lost
    assert store.count_events(upgraded, "client:x", _at(50.25)) == 2
    assert store.count_events(upgraded, "client:x", _at(50.25) + timedelta(microseconds=1)) == 1
    assert store.mails_sent_since(upgraded, _at(5.75)) == 1
    assert store.mails_sent_since(upgraded, _at(5.75) + timedelta(microseconds=1)) == 0


def test_the_upgraded_queue_claims_in_due_order(upgraded: sqlite3.Connection) -> None:
    now = _at(60)
    first = store.claim_mail(upgraded, now, lease=timedelta(minutes=5))
    second = store.claim_mail(upgraded, now, lease=timedelta(minutes=5))
    assert first is not None and second is not None
    assert (first.id, first.attempts, first.created_at) == (2, 2, _at(1.0))
    assert (second.id, second.attempts, second.created_at) == (1, 0, _at(0.5))
    assert store.claim_mail(upgraded, now, lease=timedelta(minutes=5)) is None  # 3 is not due
    # the leases end together: both are due again (the older id first), not the one due in
    # an hour
    again = now + timedelta(minutes=5)
    later = [store.claim_mail(upgraded, again, lease=timedelta(minutes=5)) for _ in range(3)]
    assert [m.id if m else None for m in later] == [1, 2, None]


def test_the_upgraded_times_prune_by_age(upgraded: sqlite3.Connection) -> None:
    assert store.prune_mail(upgraded, before=_at(1.0)) == 0  # created at 1.0: not before it
    assert store.prune_mail(upgraded, before=_at(1.5)) == 1  # the sent one; queued ones stay
    store.record_event(upgraded, "client:x", _at(2.0) + store.EVENT_RETENTION)
    # events older than a day before the new one are forgotten: 1.5 goes, 50.25 and 59.75 stay
    assert store.count_events(upgraded, "client:x", _at(-3600)) == 3


def test_times_are_stored_in_utc_whatever_zone_they_come_in(tmp_path: Path) -> None:
    with closing(store.connect(tmp_path / "digest.db")) as conn:
        _, sub = store.save_subscriber(conn, Subscriber("k@example.org", "ko", (), "pending"))
        assert sub.id is not None
        seoul = NINE.astimezone(timezone(timedelta(hours=9)))
        store.queue_mail(conn, "confirm", sub.id, seoul)
        store.mark_pending(conn, sub.id, seoul)
        stored = conn.execute("SELECT created_at, next_try FROM mail_queue").fetchone()
        assert tuple(stored) == ("2024-12-05T09:00:00.000000+00:00",) * 2
        assert store.last_mail(conn, sub.id, "confirm") == NINE
        assert store.pending_since(conn, sub.id) == NINE
        with pytest.raises(ValueError, match="without a zone"):
            store.record_event(conn, "client:z", datetime(2024, 12, 5, 9, 0))

"""The studio's triage of a day's candidates (seen, picked, dismissed: also the ranking
learner's feedback) and its undo history of removed entries."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pipeline.core.issue_codec import entry_dict, entry_from_dict
from pipeline.core.models import Entry
from pipeline.store.db import _now

TriageState = Literal["seen", "picked", "dismissed"]
TRIAGE_STATES: tuple[TriageState, ...] = ("seen", "picked", "dismissed")


def triage_states(conn: sqlite3.Connection, day: date) -> dict[str, TriageState]:
    """What the curator did with each of the day's candidates so far (absent: not seen)."""
    rows = conn.execute("SELECT arxiv_id, state FROM triage WHERE date = ?", (day.isoformat(),))
    return {arxiv_id: state for arxiv_id, state in rows.fetchall()}


def triage_decisions(conn: sqlite3.Connection) -> list[tuple[date, str, TriageState]]:
    """Every pick and dismissal of every day, oldest first: the ranking learner's feedback."""
    rows = conn.execute("SELECT date, arxiv_id, state FROM triage WHERE state != 'seen'"
                        " ORDER BY date, arxiv_id")
    return [(date.fromisoformat(d), arxiv_id, state) for d, arxiv_id, state in rows.fetchall()]


def set_triage(conn: sqlite3.Connection, day: date, ids: Iterable[str], state: TriageState,
               *, only_unseen: bool = False) -> None:
    """Record `state` for the papers; `only_unseen` leaves picks and dismissals as they are
    (marking a page seen does not undo a decision)."""
    if state not in TRIAGE_STATES:
        raise ValueError(f"not a triage state: {state!r}")
    rows = [(day.isoformat(), arxiv_id, state, _now(conn)) for arxiv_id in ids]
    conflict = "DO NOTHING" if only_unseen else "DO UPDATE SET state = excluded.state, at = excluded.at"
    conn.executemany(
        "INSERT INTO triage (date, arxiv_id, state, at) VALUES (?, ?, ?, ?)"
        f" ON CONFLICT (date, arxiv_id) {conflict}", rows,
    )


@dataclass(frozen=True)
class Removed:
    """An entry the studio removed from a day's draft, and where it was."""

    id: int
    position: int
    entry: Entry


def push_removed(conn: sqlite3.Connection, day: date, position: int, entry: Entry) -> None:
    """Remember a removed entry on the day's undo history."""
    conn.execute(
        "INSERT INTO studio_undo (date, position, entry, at) VALUES (?, ?, ?, ?)",
        (day.isoformat(), position, json.dumps(entry_dict(entry), ensure_ascii=False),
         _now(conn)),
    )


def removed_entries(conn: sqlite3.Connection, day: date, limit: int = 20) -> list[Removed]:
    """The day's undo history, newest first."""
    rows = conn.execute(
        "SELECT id, position, entry FROM studio_undo WHERE date = ? ORDER BY id DESC LIMIT ?",
        (day.isoformat(), limit),
    ).fetchall()
    return [Removed(i, pos, entry_from_dict(json.loads(text))) for i, pos, text in rows]


def drop_removed(conn: sqlite3.Connection, day: date, removed_id: int) -> None:
    """Forget one entry of the undo history (it was brought back)."""
    conn.execute("DELETE FROM studio_undo WHERE date = ? AND id = ?", (day.isoformat(), removed_id))

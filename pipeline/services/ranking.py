"""The learned ranking in the product: trained from the newsletter's own history (its notes,
the issues it sent, the studio's picks and dismissals, the candidates it collected), kept
under data/, and asked by `collect` to score each day's candidates.

Positives are the papers the curator wrote a note about, sent, or picked in the studio;
negatives are the candidates of earlier days that are none of those, plus what the studio
dismissed. A paper counts on the day it was first collected (a note's file-name date when the
paper was never collected), and training uses only days before the day it ranks. Training
runs again only when that history changed (its fingerprint, kept beside the model); with no
positives or no negatives yet there is no model, and candidates keep the tag rules' order.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from pipeline import store
from pipeline.core import layout
from pipeline.core.config import Settings
from pipeline.core.errors import RankError
from pipeline.core.files import write_atomic
from pipeline.core.models import Candidate, Paper
from pipeline.core.runtime import Runtime
from pipeline.curate import notes as notes_reader
from pipeline.curate.ranking import (
    Explanation,
    Model,
    RankPaper,
    load_model,
    save_model,
    train_model,
)
from pipeline.services.common import open_store

_NOTE_DATE_RE = re.compile(r"^(\d{2})(\d{2})(\d{2})\b")


@dataclass(frozen=True)
class TrainReport:
    """What `train` did: trained a model, found it up to date, or had too little history."""

    outcome: str  # "trained" | "up to date" | "cold start"
    positives: int
    negatives: int
    model: Path
    trained_on: date | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class History:
    """The ranking's training data: picks and non-picks, each dated, and its fingerprint."""

    positives: tuple[RankPaper, ...]
    negatives: tuple[RankPaper, ...]
    fingerprint: str


def model_path(settings: Settings) -> Path:
    """data/rank-model.npz: the trained model."""
    return layout.rank_model(settings, "npz")


def state_path(settings: Settings) -> Path:
    """data/rank-model.json: what the model was trained from (its history's fingerprint)."""
    return layout.rank_model(settings, "json")


def _note_day(path: Path) -> date | None:
    """The date a note's file name starts with (YYMMDD), if any."""
    m = _NOTE_DATE_RE.match(path.name)
    if m is None:
        return None
    try:
        return date(2000 + int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def read_history(settings: Settings, conn: sqlite3.Connection, before: date) -> History:
    """The training data as of `before` (only earlier days count)."""
    shelf = notes_reader.read_notes(settings.paths.notes)
    noted: dict[str, tuple[Paper | None, RankPaper | None]] = {}
    for note in shelf.notes:
        for entry in note.entries:
            if entry.arxiv_id is None or not entry.title.strip():
                continue
            day = _note_day(note.path)
            as_noted = (RankPaper(entry.arxiv_id, entry.title, entry.authors, entry.abstract, day)
                        if day is not None else None)
            noted[entry.arxiv_id] = (None, as_noted)
    decisions = store.triage_decisions(conn)
    picked = {i for _, i, state in decisions if state == "picked"}
    sent = store.sent_papers(conn, before)
    wanted = set(noted) | picked | set(sent)
    stored = store.get_papers(conn, wanted)
    seen = store.first_seen(conn, wanted)
    positives: dict[str, RankPaper] = {}
    for arxiv_id in sorted(wanted):
        paper, day = stored.get(arxiv_id), seen.get(arxiv_id)
        if paper is not None and day is not None:
            positives[arxiv_id] = RankPaper.from_paper(paper, day)
        elif arxiv_id in noted and noted[arxiv_id][1] is not None:
            positives[arxiv_id] = noted[arxiv_id][1]  # type: ignore[assignment]
    negatives = [RankPaper.from_paper(paper, day) for day, paper in store.candidates_before(conn, before)
                 if paper.arxiv_id not in positives]  # a dismissal is a candidate not picked
    pos = tuple(p for p in positives.values() if p.day < before)
    neg = tuple(negatives)
    digest = hashlib.sha256()
    for p in pos:
        digest.update(f"+{p.arxiv_id}\0{p.day}\0{p.title}\n".encode())
    for p in neg:
        digest.update(f"-{p.arxiv_id}\0{p.day}\n".encode())
    return History(pos, neg, digest.hexdigest())


def _state(settings: Settings) -> dict[str, object]:
    try:
        loaded = json.loads(state_path(settings).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def train(settings: Settings, day: date, rt: Runtime, *, force: bool = False,
          conn: sqlite3.Connection | None = None) -> TrainReport:
    """Retrain the model for ranking `day` when the history changed since the last training
    (or `force`); keep it under data/."""
    if conn is None:
        with closing(open_store(settings, rt)) as own:
            return train(settings, day, rt, force=force, conn=own)
    history = read_history(settings, conn, day)
    path = model_path(settings)
    counts = (len(history.positives), len(history.negatives))
    state = _state(settings)
    if not force and path.exists() and state.get("fingerprint") == history.fingerprint:
        trained_on = state.get("trained_on")
        return TrainReport("up to date", *counts, path,
                           date.fromisoformat(trained_on) if isinstance(trained_on, str) else None)
    model = train_model(history.positives, history.negatives, day)
    if model is None:
        return TrainReport("cold start", *counts, path, None,
                           ("no model yet: it needs at least one pick and one other candidate "
                            "from earlier days; candidates keep the tag rules' order",))
    save_model(path, model)
    write_atomic(state_path(settings), json.dumps(
        {"fingerprint": history.fingerprint, "trained_on": model.trained_on.isoformat(),
         "positives": counts[0], "negatives": counts[1]}, indent=1) + "\n")
    return TrainReport("trained", *counts, path, model.trained_on)


def current_model(settings: Settings) -> tuple[Model | None, str | None]:
    """The kept model, if any, and why it could not be used (an unreadable file)."""
    try:
        return load_model(model_path(settings)), None
    except RankError as exc:
        return None, f"{exc}; candidates keep the tag rules' order (`digest rank train` makes a new one)"


def score_candidates(model: Model | None, candidates: Iterable[Candidate], day: date) -> list[Candidate]:
    """The candidates with the model's scores (unchanged without a model: the tag rules')."""
    found = list(candidates)
    if model is None or not found:
        return found
    scores = model.score([RankPaper.from_paper(c.paper, day) for c in found])
    return [replace(c, score=round(s, 6)) for c, s in zip(found, scores, strict=True)]


def explain_candidate(model: Model, candidate: Candidate, day: date, top: int = 3) -> Explanation:
    """Why the model ranks a candidate where it does (authors picked before, top terms)."""
    return model.explain(RankPaper.from_paper(candidate.paper, day), top)

"""Evaluating the learned ranking on real listing days, online: each test day is ranked by a
model that learned only from the history and the days strictly before it (pure but for reading
the input files)."""

from __future__ import annotations

import gzip
import json
import math
import random
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import InputError
from pipeline.curate.ranking import (
    Hashed,
    Model,
    RankPaper,
    RankSettings,
    author_affinity,
    split_authors,
    train_hashed,
)

METHODS = ("learned", "tag rules", "random")
CUTOFFS = (10, 20)


@dataclass(frozen=True)
class Day:
    """One listing day: its candidates in listing order and the ids the curator picked."""

    day: date
    candidates: tuple[RankPaper, ...]
    picks: tuple[str, ...]

    def __post_init__(self) -> None:
        ids = {c.arxiv_id for c in self.candidates}
        if None in ids or len(ids) != len(self.candidates):
            raise ValueError("Day.candidates need distinct arXiv ids")
        if not set(self.picks) <= ids or len(set(self.picks)) != len(self.picks):
            raise ValueError("Day.picks must be distinct ids of the day's candidates")


# --- reading the files ----------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    """The file's text lines; gzip is recognised by its magic bytes, not the name."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError("file not found", path=path) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"damaged gzip file: {exc}", path=path) from exc
    try:
        return raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError("not UTF-8 text (expected JSON lines)", path=path) from exc


def _objects(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", path=path, line=number) from exc
        if not isinstance(value, dict):
            raise InputError("expected a JSON object", path=path, line=number)
        out.append((number, value))
    return out


def _text(obj: Mapping[str, Any], key: str, path: Path, line: int, *, empty: bool = True) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or (not empty and not value.strip()):
        what = "a string" if empty else "a non-empty string"
        raise InputError(f"expected {what}", path=path, line=line, key=key)
    return value


def _date(obj: Mapping[str, Any], key: str, path: Path, line: int) -> date:
    value = obj.get(key)
    try:
        return date.fromisoformat(value) if isinstance(value, str) else date.fromisoformat("")
    except ValueError:
        raise InputError(f"expected a date YYYY-MM-DD, got {value!r}",
                         path=path, line=line, key=key) from None


def _paper(obj: Mapping[str, Any], day: date, path: Path, line: int, key: str,
           *, need_id: bool) -> RankPaper:
    if not isinstance(obj, dict):
        raise InputError("expected a JSON object", path=path, line=line, key=key)
    arxiv_id = obj.get("id")
    if not (isinstance(arxiv_id, str) and arxiv_id.strip()) and (need_id or arxiv_id is not None):
        raise InputError("expected an arXiv id string", path=path, line=line, key=f"{key}.id")
    return RankPaper(
        arxiv_id=arxiv_id.strip() if isinstance(arxiv_id, str) else None,
        title=_text(obj, "title", path, line, empty=False),
        authors=split_authors(_text(obj, "authors", path, line)),
        abstract=_text(obj, "abstract", path, line),
        day=day,
    )


def read_days(path: Path) -> tuple[Day, ...]:
    """Listing days from a JSON-lines file (gzip or plain), by date; InputError at file:line
    for anything else (see docs/ranking.md for the format)."""
    days: dict[date, Day] = {}
    for number, obj in _objects(path):
        day = _date(obj, "date", path, number)
        if day in days:
            raise InputError(f"a second line for {day.isoformat()}", path=path, line=number,
                             key="date")
        raw = obj.get("candidates")
        if not isinstance(raw, list):
            raise InputError("expected a list of papers", path=path, line=number, key="candidates")
        candidates: dict[str, RankPaper] = {}
        for i, item in enumerate(raw):
            paper = _paper(item, day, path, number, f"candidates[{i}]", need_id=True)
            candidates.setdefault(str(paper.arxiv_id), paper)  # a repeated listing counts once
        picks = obj.get("picks")
        if not isinstance(picks, list) or not all(isinstance(p, str) for p in picks):
            raise InputError("expected a list of arXiv ids", path=path, line=number, key="picks")
        unknown = [p for p in picks if p not in candidates]
        if unknown:
            raise InputError(f"pick {unknown[0]} is not among the day's candidates",
                             path=path, line=number, key="picks")
        days[day] = Day(day, tuple(candidates.values()), tuple(dict.fromkeys(picks)))
    return tuple(days[d] for d in sorted(days))


def read_history(path: Path) -> tuple[RankPaper, ...]:
    """Earlier picks (positives only) from a JSON-lines file, oldest first."""
    out = []
    for number, obj in _objects(path):
        out.append(_paper(obj, _date(obj, "date", path, number), path, number, "paper",
                          need_id=False))
    return tuple(sorted(out, key=lambda p: p.day))


# --- metrics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    """Means over the days with picks: recall@10, recall@20, nDCG@10, MRR."""

    recall_at_10: float
    recall_at_20: float
    ndcg_at_10: float
    mrr: float
    days: int

    def as_json(self) -> dict[str, float | int]:
        """A plain mapping for --json."""
        return {"recall@10": self.recall_at_10, "recall@20": self.recall_at_20,
                "ndcg@10": self.ndcg_at_10, "mrr": self.mrr, "days": self.days}


def day_metrics(ranking: Sequence[str], picks: Sequence[str]) -> tuple[float, float, float, float]:
    """recall@10, recall@20, nDCG@10 and reciprocal rank of one day's ranking (picks given)."""
    wanted = set(picks)
    if not wanted:
        raise ValueError("day_metrics needs at least one pick")
    r10, r20 = (len(wanted & set(ranking[:k])) / len(wanted) for k in CUTOFFS)
    dcg = sum(1.0 / math.log2(i + 2) for i, x in enumerate(ranking[:10]) if x in wanted)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(wanted), 10)))
    rr = next((1.0 / (i + 1) for i, x in enumerate(ranking) if x in wanted), 0.0)
    return r10, r20, dcg / ideal, rr


def mean_metrics(rows: Sequence[tuple[float, float, float, float]]) -> Metrics:
    """The mean of per-day metrics (zeros for no days)."""
    if not rows:
        return Metrics(0.0, 0.0, 0.0, 0.0, 0)
    m = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
    return Metrics(float(m[0]), float(m[1]), float(m[2]), float(m[3]), len(rows))


# --- the online protocol --------------------------------------------------------------------


@dataclass(frozen=True)
class EvalReport:
    """Rankings of the learned method per test day, and each method's mean metrics."""

    rankings: Mapping[date, tuple[str, ...]]
    metrics: Mapping[str, Metrics]  # by method: learned, tag rules, random
    retrained: tuple[date, ...]  # the days a new model was trained for
    fallback_days: tuple[date, ...]  # test days ranked by the tag rules: no model yet
    history_used: int  # earlier picks used (those listed on a given day are counted there)

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        return {
            "rankings": {d.isoformat(): list(ids) for d, ids in self.rankings.items()},
            "metrics": {name: m.as_json() for name, m in self.metrics.items()},
            "retrained": [d.isoformat() for d in self.retrained],
            "fallback_days": [d.isoformat() for d in self.fallback_days],
            "history_used": self.history_used,
        }


def _stable_order(ids: Sequence[str], scores: Sequence[float]) -> tuple[str, ...]:
    return tuple(ids[i] for i in sorted(range(len(ids)), key=lambda i: -scores[i]))


def random_order(day: Day, seed: int) -> tuple[str, ...]:
    """The day's candidates shuffled by a generator seeded with `seed` and the date."""
    ids = [str(c.arxiv_id) for c in day.candidates]
    random.Random(f"{seed}:{day.day.isoformat()}").shuffle(ids)
    return tuple(ids)


def evaluate(
    history: Sequence[RankPaper],
    train_days: Sequence[Day],
    test_days: Sequence[Day],
    tag_score: Callable[[RankPaper], float],
    settings: RankSettings | None = None,
    retrain_days: int = 7,
    seed: int = 0,
) -> EvalReport:
    """Rank each test day with a model trained on the history and on the training and test
    days strictly before it (retrained once `retrain_days` have passed), beside the tag rules'
    order and a seeded random order."""
    s = settings or RankSettings()
    if retrain_days < 1:
        raise ValueError("retrain_days must be >= 1")
    labelled = sorted([*train_days, *test_days], key=lambda d: d.day)
    dates = [d.day for d in labelled]
    if len(set(dates)) != len(dates):
        raise InputError("a day is both a training and a test day (split them by date)")
    listed = {c.arxiv_id for d in labelled for c in d.candidates}
    # A note may be dated before its paper's listing day: the day's own picks stand for it.
    past = [p for p in history if p.arxiv_id is None or p.arxiv_id not in listed]
    # Each paper is hashed once; a retraining only picks rows (features are stateless).
    papers = [*past, *(c for d in labelled for c in d.candidates)]
    hashed = s.featurise(papers)
    first_row: dict[date, int] = {}
    row = len(past)
    for d in labelled:
        first_row[d.day] = row
        row += len(d.candidates)

    rankings: dict[date, tuple[str, ...]] = {}
    per_method: dict[str, list[tuple[float, float, float, float]]] = {m: [] for m in METHODS}
    retrained: list[date] = []
    fallback: list[date] = []
    model: Model | None = None
    for day in sorted(test_days, key=lambda d: d.day):
        if model is None or (day.day - model.trained_on).days >= retrain_days:
            model = _train_before(day.day, past, labelled, first_row, hashed, s)
            if model is not None:
                retrained.append(day.day)
        ids = [str(c.arxiv_id) for c in day.candidates]
        tags = [tag_score(c) for c in day.candidates]
        if model is None:
            fallback.append(day.day)
            learned = _stable_order(ids, tags)
        else:
            start = first_row[day.day]
            scores = model.score_hashed(hashed.take(range(start, start + len(ids))))
            learned = _stable_order(ids, scores.tolist())
        rankings[day.day] = learned
        if day.picks:
            per_method["learned"].append(day_metrics(learned, day.picks))
            per_method["tag rules"].append(day_metrics(_stable_order(ids, tags), day.picks))
            per_method["random"].append(day_metrics(random_order(day, seed), day.picks))
    return EvalReport(
        rankings=rankings,
        metrics={m: mean_metrics(rows) for m, rows in per_method.items()},
        retrained=tuple(retrained),
        fallback_days=tuple(fallback),
        history_used=len(past),
    )


def _train_before(
    today: date,
    past: Sequence[RankPaper],
    labelled: Sequence[Day],
    first_row: Mapping[date, int],
    hashed: Hashed,
    settings: RankSettings,
) -> Model | None:
    """A model from the history and the labelled days strictly before `today`."""
    pos_rows = [i for i, p in enumerate(past) if p.day < today]
    pos_papers = [past[i] for i in pos_rows]
    neg_rows: list[int] = []
    for d in labelled:
        if d.day >= today:
            break
        picked = set(d.picks)
        start = first_row[d.day]
        for i, c in enumerate(d.candidates):
            if c.arxiv_id in picked:
                pos_rows.append(start + i)
                pos_papers.append(c)
            else:
                neg_rows.append(start + i)
    if not pos_rows or not neg_rows:
        return None
    return train_hashed(hashed, [p.day for p in pos_papers], len(neg_rows), today, settings,
                        author_affinity(pos_papers), rows=pos_rows + neg_rows)


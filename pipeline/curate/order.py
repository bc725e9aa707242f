"""The one place that orders a day's candidates, best first (the draft, the studio's triage,
the issue's "more new papers" all ask here).

Today the score is the tag rules' (`Candidate.score`). The learned ranking (being built as
`pipeline.curate.ranking`) plugs in through `score`: pass a function of a candidate, e.g.
`candidate_order(found, score=model.score)`; ties keep a stable order (by arXiv id), so a
page of candidates never reshuffles between two views.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pipeline.core.models import Candidate

Score = Callable[[Candidate], float]


def tag_score(candidate: Candidate) -> float:
    """The tag rules' score: the cold-start order, until a learned model replaces it."""
    return candidate.score


def candidate_order(candidates: Iterable[Candidate], score: Score | None = None) -> list[Candidate]:
    """The candidates best first by `score` (default: the tag rules'), ties by arXiv id."""
    rank = score or tag_score
    return sorted(candidates, key=lambda c: (-rank(c), c.paper.arxiv_id))

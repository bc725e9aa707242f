"""The one place that orders a day's candidates, best first (the draft, the studio's triage,
the issue's "more new papers" all ask here).

The score is `Candidate.score` as `collect` stored it: the learned ranking's when the
newsletter has a model (pipeline.services.ranking), else the tag rules'. `score` overrides it;
ties keep a stable order (by arXiv id), so a page of candidates never reshuffles between two
views.
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

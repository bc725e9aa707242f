"""A trained ranking model (its settings, per-block columns, idf and weights, the author prior
and affinities), how it scores hashed papers, and why it scores a paper as it does."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from pipeline.curate.rank_features import (
    BLOCKS,
    FloatArray,
    Hashed,
    IndexArray,
    RankPaper,
    _tfidf,
    author_key,
    author_terms,
    hash_papers,
    select_columns,
    term_columns,
    text_words,
)


@dataclass(frozen=True)
class RankSettings:
    """The learner's knobs; the defaults were tuned on the development days only."""

    half_life_days: float = 60.0  # a pick's weight halves every half-life: tastes drift
    c: float = 0.02  # inverse regularisation of the linear SVM
    # A lighter title than abstract: the short title's pairs otherwise weigh as much as the
    # whole abstract (development days, 0.8 against 1.0: recall@10 0.697 / 0.690, recall@20
    # 0.844 / 0.821; see docs/ranking.md).
    title_weight: float = 0.8
    abstract_weight: float = 1.0
    author_weight: float = 0.1  # more overfits to one-off co-authors (worse on development days)
    # Off by default: computed as of the training day, the prior is higher for recent papers
    # (mostly non-picks) than for old picks, so it learns time, not taste (recall@10 0.61 →
    # 0.51 at 0.1 on the development days). A prior as of each paper's own day would not.
    prior_weight: float = 0.0
    min_df: int = 2  # a word seen in fewer training papers carries no signal, only noise
    hash_bits: int = 20
    # Abstracts as words only: their word pairs are many and rare, and a model over them fits
    # the last picks' phrasing (recall@10 on the development days 0.69 without, 0.64 with).
    abstract_pairs: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.abstract_pairs, bool):
            raise ValueError(f"RankSettings.abstract_pairs must be true or false, "
                             f"got {self.abstract_pairs!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "abstract_pairs":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"RankSettings.{f.name} must be a finite number, got {value!r}")
        if self.half_life_days <= 0 or self.c <= 0:
            raise ValueError("RankSettings.half_life_days and c must be positive")
        if min(self.title_weight, self.abstract_weight, self.author_weight, self.prior_weight) < 0:
            raise ValueError("RankSettings weights must not be negative")
        if not isinstance(self.min_df, int) or self.min_df < 1:
            raise ValueError("RankSettings.min_df must be an integer >= 1")
        if not isinstance(self.hash_bits, int) or not 10 <= self.hash_bits <= 24:
            raise ValueError("RankSettings.hash_bits must be an integer from 10 to 24")

    def featurise(self, papers: Sequence[RankPaper]) -> Hashed:
        """The papers' term counts as these settings featurise them (see hash_papers)."""
        return hash_papers(papers, self.hash_bits, abstract_pairs=self.abstract_pairs)


@dataclass(frozen=True, eq=False)
class Block:
    """The columns of one block the model knows, sorted, with their idf and learned weight."""

    columns: IndexArray
    idf: FloatArray
    coef: FloatArray

    def __post_init__(self) -> None:
        n = len(self.columns)
        if self.columns.ndim != 1 or self.idf.shape != (n,) or self.coef.shape != (n,):
            raise ValueError("Block arrays must be one-dimensional and of one length")
        if n and (np.any(np.diff(self.columns) <= 0) or self.columns[0] < 0):
            raise ValueError("Block.columns must be sorted, distinct and non-negative")
        if not (np.all(np.isfinite(self.idf)) and np.all(np.isfinite(self.coef))):
            raise ValueError("Block weights must be finite")


@dataclass(frozen=True, eq=False)
class Prior:
    """The author prior: for each author column, the recency-weighted picks of that author; a
    paper's feature is log(1 + the sum over its authors), with one learned weight."""

    columns: IndexArray
    picks: FloatArray
    coef: float

    def __post_init__(self) -> None:
        if self.columns.ndim != 1 or self.picks.shape != self.columns.shape:
            raise ValueError("Prior arrays must be one-dimensional and of one length")
        if len(self.columns) and (np.any(np.diff(self.columns) <= 0) or self.columns[0] < 0):
            raise ValueError("Prior.columns must be sorted, distinct and non-negative")
        if not (np.all(np.isfinite(self.picks)) and np.all(self.picks >= 0)
                and math.isfinite(self.coef)):
            raise ValueError("Prior weights must be finite and picks not negative")

    def feature(self, authors: sp.csr_matrix) -> npt.NDArray[np.float64]:
        """log(1 + recency-weighted earlier picks of each row's authors)."""
        if not len(self.columns):
            return np.zeros(authors.shape[0])
        known = select_columns(authors, self.columns)
        known.data[:] = 1.0
        return np.asarray(np.log1p(known @ self.picks.astype(np.float64)), dtype=np.float64)


NO_PRIOR = Prior(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), 0.0)


@dataclass(frozen=True)
class Affinity:
    """An author the curator picked before: as written last, how often, when last."""

    name: str
    picks: int
    last: date


@dataclass(frozen=True)
class TermHit:
    """A term of the paper and how much it added to (or took from) the score."""

    term: str
    block: str
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Why a paper ranks where it does: its score, authors picked before, the top terms."""

    arxiv_id: str | None
    score: float
    authors: tuple[Affinity, ...]  # its authors picked before, named as this paper names them
    terms: tuple[TermHit, ...]

    def lines(self) -> tuple[str, ...]:
        """The explanation as short lines for a person."""
        out = []
        if self.authors:
            out.append("authors you picked before: " + ", ".join(
                f"{a.name} ({a.picks}×, last {a.last.isoformat()})" for a in self.authors))
        if self.terms:
            out.append("top terms: " + ", ".join(
                f"{t.term} ({t.block}, {t.contribution:+.2f})" for t in self.terms))
        return tuple(out)


@dataclass(frozen=True, eq=False)
class Model:
    """A trained ranking model: higher scores are likelier picks."""

    trained_on: date  # the first day it may rank: it learned only from earlier days
    settings: RankSettings
    title: Block
    abstract: Block
    authors: Block
    intercept: float
    prior: Prior = NO_PRIOR
    affinity: Mapping[str, Affinity] = field(default_factory=dict)
    positives: int = 0
    negatives: int = 0

    def blocks(self) -> tuple[Block, Block, Block]:
        """The three blocks in BLOCKS order."""
        return (self.title, self.abstract, self.authors)

    def weights(self) -> tuple[float, float, float]:
        """Each block's weight in the feature vector, in BLOCKS order."""
        s = self.settings
        return (s.title_weight, s.abstract_weight, s.author_weight)

    def score(self, papers: Sequence[RankPaper]) -> list[float]:
        """One score per paper, in order."""
        return [float(x) for x in self.score_hashed(self.settings.featurise(papers))]

    def score_hashed(self, hashed: Hashed) -> npt.NDArray[np.float64]:
        """Scores of already hashed papers (see hash_papers)."""
        total = np.full(hashed.rows, self.intercept, dtype=np.float64)
        for counts, block, weight in zip(hashed.blocks(), self.blocks(), self.weights(), strict=True):
            if weight == 0.0 or not len(block.columns):
                continue
            total += _tfidf(counts, block.columns, block.idf, weight) @ block.coef.astype(np.float64)
        if self.settings.prior_weight:
            total += self.prior.coef * self.settings.prior_weight * self.prior.feature(hashed.authors)
        return total

    def explain(self, paper: RankPaper, top: int = 5) -> Explanation:
        """Why this paper scores as it does (see explain)."""
        return explain(self, paper, top)


def explain(model: Model, paper: RankPaper, top: int = 5) -> Explanation:
    """Why `model` scores `paper` as it does: its authors the curator picked before and the
    terms that added the most to its score."""
    seen: dict[str, Affinity] = {}
    for name in paper.authors:
        key = author_key(name)
        hit = model.affinity.get(key) if key else None
        if key is not None and hit is not None and key not in seen:
            seen[key] = replace(hit, name=name)
    bits = model.settings.hash_bits
    contributions: dict[tuple[str, str], float] = {}
    word_lists = ((text_words(paper.title), True),
                  (text_words(paper.abstract), model.settings.abstract_pairs),
                  (author_terms(paper.authors), False))
    hashed = model.settings.featurise([paper])
    for block_name, (words, pairs), counts, block, weight in zip(
        BLOCKS, word_lists, hashed.blocks(), model.blocks(), model.weights(), strict=True
    ):
        if not words or weight == 0.0 or not len(block.columns):
            continue
        row = _tfidf(counts, block.columns, block.idf)
        value = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
        # The row's indices are positions among the block's columns; map each term to its own.
        terms, columns = term_columns(words, bits, pairs)
        first = _first_of(terms)
        wanted = columns[first]
        positions = np.minimum(np.searchsorted(block.columns, wanted), len(block.columns) - 1)
        for i, pos in zip(first.tolist(), positions.tolist(), strict=True):
            if block.columns[pos] == columns[i] and pos in value:
                contributions[(terms[i], block_name)] = weight * value[pos] * float(block.coef[pos])
    ranked = sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))
    terms_out = tuple(TermHit(term, blk, round(c, 6)) for (term, blk), c in ranked[:top] if c > 0)
    score = float(model.score_hashed(hashed)[0])
    authors = tuple(sorted(seen.values(), key=lambda a: (-a.picks, a.name)))
    return Explanation(paper.arxiv_id, score, authors, terms_out)


def _first_of(terms: Sequence[str]) -> IndexArray:
    """Index of each distinct term's first occurrence, in order of first occurrence."""
    first: dict[str, int] = {}
    for i, t in enumerate(terms):
        first.setdefault(t, i)
    return np.fromiter(first.values(), dtype=np.int64, count=len(first))

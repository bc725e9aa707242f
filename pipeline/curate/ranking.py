"""The learned ranking of a day's candidates: features, training, scoring, explanations, and the
model file (pure, but for save_model/load_model).

The model is a linear one over hashed tf-idf features of the title (words and word pairs), the
abstract (words; pairs only if `abstract_pairs`) and the authors, trained on the curator's
picks (positives, weighted by recency: tastes drift) against the candidates they did not pick.
Hashing makes the features stateless, so a day's candidates are featurised once and every
retraining reuses them; only the columns the training data used are kept in the model, with
their idf and weight. See docs/ranking.md.

This module trains and ranks; the features live in rank_features, the model and its
explanations in rank_model, the model file in rank_store, and this module re-exports them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from pipeline.curate.rank_features import BLOCKS as BLOCKS
from pipeline.curate.rank_features import FloatArray as FloatArray
from pipeline.curate.rank_features import Hashed as Hashed
from pipeline.curate.rank_features import IndexArray as IndexArray
from pipeline.curate.rank_features import RankPaper as RankPaper
from pipeline.curate.rank_features import _tfidf
from pipeline.curate.rank_features import author_key as author_key
from pipeline.curate.rank_features import author_terms as author_terms
from pipeline.curate.rank_features import hash_papers as hash_papers
from pipeline.curate.rank_features import select_columns as select_columns
from pipeline.curate.rank_features import split_authors as split_authors
from pipeline.curate.rank_features import term_columns as term_columns
from pipeline.curate.rank_features import text_terms as text_terms
from pipeline.curate.rank_features import text_words as text_words
from pipeline.curate.rank_model import NO_PRIOR as NO_PRIOR
from pipeline.curate.rank_model import Affinity as Affinity
from pipeline.curate.rank_model import Block as Block
from pipeline.curate.rank_model import Explanation as Explanation
from pipeline.curate.rank_model import Model as Model
from pipeline.curate.rank_model import Prior as Prior
from pipeline.curate.rank_model import RankSettings as RankSettings
from pipeline.curate.rank_model import TermHit as TermHit
from pipeline.curate.rank_model import explain as explain
from pipeline.curate.rank_store import FORMAT as FORMAT
from pipeline.curate.rank_store import FORMAT_VERSION as FORMAT_VERSION
from pipeline.curate.rank_store import load_model as load_model
from pipeline.curate.rank_store import model_bytes as model_bytes
from pipeline.curate.rank_store import parse_model as parse_model
from pipeline.curate.rank_store import save_model as save_model


def _fit_block(parts: Iterable[sp.csr_matrix], width: int,
               min_df: int) -> tuple[IndexArray, FloatArray]:
    """The columns at least `min_df` training papers use (their counts come in parts of a few
    thousand rows, `width` columns), and their smoothed idf."""
    n = 0
    df = np.zeros(width, dtype=np.int64)
    for counts in parts:
        # A paper's columns are distinct: a column's document frequency is how often it occurs.
        df += np.bincount(counts.indices, minlength=width)
        n += counts.shape[0]
    df32 = df.astype(np.float32)  # the dtype scipy's sum of the float32 counts had
    columns = np.flatnonzero(df32 >= min_df).astype(np.int64)
    idf = (np.log((1.0 + n) / (1.0 + df32[columns])) + 1.0).astype(np.float32)
    return columns, idf


_ROWS_AT_ONCE = 8192  # papers whose features are computed together while training


def _row_parts(counts: sp.csr_matrix, rows: IndexArray | None) -> Iterator[sp.csr_matrix]:
    """The given rows of a matrix (all by default), _ROWS_AT_ONCE at a time."""
    n = counts.shape[0] if rows is None else len(rows)
    for start in range(0, n, _ROWS_AT_ONCE):
        end = min(start + _ROWS_AT_ONCE, n)
        yield counts[start:end] if rows is None else counts[rows[start:end]]


def _design_rows(blocks: Sequence[sp.csr_matrix], rows: IndexArray | None,
                 fitted: Sequence[tuple[IndexArray, FloatArray]], weights: Sequence[float],
                 extra: npt.NDArray[np.float64]) -> Iterator[sp.csr_matrix]:
    """The design matrix _ROWS_AT_ONCE rows at a time: each block's tf-idf over its fitted
    columns times its weight, side by side, then one more column (`extra`, the prior)."""
    start = 0
    for part in zip(*(_row_parts(counts, rows) for counts in blocks), strict=True):
        end = start + part[0].shape[0]
        yield sp.hstack([*(_tfidf(counts, columns, idf, weight) for counts, (columns, idf), weight
                           in zip(part, fitted, weights, strict=True)),
                         sp.csr_matrix(extra[start:end, None])], format="csr")
        start = end


def _write_rows(parts: Iterable[sp.csr_matrix], rows: int, columns: int,
                most: int) -> sp.csr_matrix:
    """The parts' rows one after another in one CSR matrix of at most `most` non-zeros: each
    part is copied and let go as it comes, and of the room set aside only the pages written
    become resident (scipy's vstack would hold all the parts and the result at once)."""
    index = np.int32 if max(most, columns) < 2**31 else np.int64  # liblinear wants int32
    data = np.empty(most, dtype=np.float64)
    indices = np.empty(most, dtype=index)
    indptr = np.zeros(rows + 1, dtype=index)
    at = row = 0
    for part in parts:
        data[at:at + part.nnz] = part.data
        indices[at:at + part.nnz] = part.indices
        indptr[row + 1:row + 1 + part.shape[0]] = part.indptr[1:] + at
        at += part.nnz
        row += part.shape[0]
    if row != rows:  # liblinear trusts the matrix: a short one would crash it, not fail
        raise ValueError(f"_write_rows: {row} rows written, {rows} expected")
    return sp.csr_matrix((data[:at], indices[:at], indptr), shape=(rows, columns))


def pick_weights(days_before: Sequence[int], half_life: float) -> npt.NDArray[np.float64]:
    """A pick's weight by its age in days: 1 today, halving every half-life."""
    age = np.maximum(np.asarray(days_before, dtype=np.float64), 0.0)
    return np.asarray(0.5 ** (age / half_life), dtype=np.float64)


def author_affinity(positives: Sequence[RankPaper]) -> dict[str, Affinity]:
    """Authors of the positives by key: the name as last written, picks, the last pick's day."""
    out: dict[str, Affinity] = {}
    for paper in sorted(positives, key=lambda p: p.day):
        for name in paper.authors:
            key = author_key(name)
            if key is None:
                continue
            seen = out.get(key)
            out[key] = Affinity(name, (seen.picks if seen else 0) + 1, paper.day)
    return out


def train_model(
    positives: Sequence[RankPaper],
    negatives: Sequence[RankPaper],
    today: date,
    settings: RankSettings | None = None,
) -> Model | None:
    """Learn from picks and non-picks dated before `today`; None (cold start: keep the tag
    rules' order) while either side is empty."""
    s = settings or RankSettings()
    pos = [p for p in positives if p.day < today]
    neg = [p for p in negatives if p.day < today]
    if not pos or not neg:
        return None
    design = _Design.of(s.featurise([*pos, *neg]), [p.day for p in pos], today, s)
    # The counts are gone now: while the SVM fits, its copy of the design is the other big thing.
    return design.fit(len(neg), today, s, author_affinity(pos))


def train_hashed(
    hashed: Hashed,
    positive_days: Sequence[date],
    negatives: int,
    today: date,
    settings: RankSettings,
    affinity: Mapping[str, Affinity],
    rows: Sequence[int] | None = None,
) -> Model | None:
    """Train on hashed papers: the first len(positive_days) rows are picks (listed on those
    days), the next `negatives` rows are not; `rows` picks and orders the rows of `hashed` to
    use (all by default). None when either side is empty."""
    n_pos = len(positive_days)
    if n_pos == 0 or negatives == 0:
        return None
    if (hashed.rows if rows is None else len(rows)) != n_pos + negatives:
        raise ValueError("train_hashed: rows must be the positives then the negatives")
    index = None if rows is None else np.asarray(rows, dtype=np.int64)
    design = _Design.of(hashed, positive_days, today, settings, index)
    return design.fit(negatives, today, settings, affinity)


@dataclass(frozen=True, eq=False)
class _Design:
    """What a training learns from: the feature matrix (picks first), each block's columns and
    idf, the author prior, and the picks' recency weights."""

    x: sp.csr_matrix
    fitted: tuple[tuple[IndexArray, FloatArray], ...]
    prior: Prior
    recency: npt.NDArray[np.float64]

    @classmethod
    def of(cls, hashed: Hashed, positive_days: Sequence[date], today: date,
           settings: RankSettings, rows: IndexArray | None = None) -> _Design:
        """The design of the given rows of `hashed` (all by default), the picks first, built a
        few thousand rows at a time: of the float64 features of 50,000 abstracts only the
        finished matrix is ever whole."""
        s = settings
        recency = pick_weights([(today - d).days for d in positive_days], s.half_life_days)
        min_dfs = (s.min_df, s.min_df, 1)  # one earlier pick of an author is already a signal
        weights = (s.title_weight, s.abstract_weight, s.author_weight)
        blocks = hashed.blocks()
        fitted = tuple(_fit_block(_row_parts(counts, rows), counts.shape[1], min_df)
                       for counts, min_df in zip(blocks, min_dfs, strict=True))
        prior, prior_x = _fit_prior(hashed.authors if rows is None else hashed.authors[rows],
                                    recency)
        n = hashed.rows if rows is None else len(rows)
        most = n + sum(counts.nnz if rows is None else int(np.diff(counts.indptr)[rows].sum())
                       for counts in blocks)  # every count kept, and the prior
        parts = _design_rows(blocks, rows, fitted, weights, prior_x * s.prior_weight)
        x = _write_rows(parts, n, sum(len(cols) for cols, _ in fitted) + 1, most)
        return cls(x, fitted, prior, recency)

    def fit(self, negatives: int, today: date, settings: RankSettings,
            affinity: Mapping[str, Affinity]) -> Model:
        """The model a linear SVM learns from this design."""
        from sklearn.svm import LinearSVC

        recency = self.recency
        n_pos = len(recency)
        y = np.r_[np.ones(n_pos), np.zeros(negatives)]
        # Balanced classes: all picks together weigh as much as all non-picks.
        sample = np.r_[recency * (negatives / recency.sum()), np.ones(negatives)]
        svm = LinearSVC(C=settings.c, max_iter=5000, random_state=0)
        svm.fit(self.x, y, sample_weight=sample)
        coef = np.asarray(svm.coef_, dtype=np.float64).ravel()
        blocks = []
        start = 0
        for cols, idf in self.fitted:
            blocks.append(Block(cols, idf, coef[start:start + len(cols)].astype(np.float32)))
            start += len(cols)
        return Model(
            trained_on=today,
            settings=settings,
            title=blocks[0],
            abstract=blocks[1],
            authors=blocks[2],
            intercept=float(np.asarray(svm.intercept_).ravel()[0]),
            prior=Prior(self.prior.columns, self.prior.picks, float(coef[start])),
            affinity=dict(affinity),
            positives=n_pos,
            negatives=negatives,
        )


def _fit_prior(authors: sp.csr_matrix, recency: npt.NDArray[np.float64],
               ) -> tuple[Prior, npt.NDArray[np.float64]]:
    """The author prior from the picks (the first len(recency) rows), and each training row's
    feature; a pick's own authorship is left out of its own feature, or the prior would only
    learn that a pick's authors were picked."""
    binary = authors.tocsr().copy()
    binary.data[:] = 1.0
    n_pos = len(recency)
    per_column = np.asarray(binary[:n_pos].T @ recency).ravel()
    columns = np.flatnonzero(per_column > 0).astype(np.int64)
    picks = per_column[columns].astype(np.float32)
    prior = Prior(columns, picks, 0.0)
    known = select_columns(binary, columns)
    total = known @ picks.astype(np.float64)
    own = np.zeros(binary.shape[0])
    own[:n_pos] = recency * np.diff(known.indptr)[:n_pos]
    return prior, np.log1p(np.maximum(total - own, 0.0))


def rank(papers: Sequence[RankPaper], model: Model | None, fallback: Sequence[float]) -> list[int]:
    """Indices of `papers`, best first: by the model's score, or by `fallback` (the tag rules'
    score) without a model; ties keep listing order."""
    if len(fallback) != len(papers):
        raise ValueError("rank: one fallback score per paper")
    scores = model.score(papers) if model is not None else list(fallback)
    return sorted(range(len(papers)), key=lambda i: -scores[i])

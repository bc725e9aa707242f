"""The learned ranking of a day's candidates: features, training, scoring, explanations, and the
model file (pure, but for save_model/load_model).

The model is a linear one over hashed tf-idf features of the title, the abstract (words and word
pairs) and the authors, trained on the curator's picks (positives, weighted by recency: tastes
drift) against the candidates they did not pick. Hashing makes the features stateless, so a day's
candidates are featurised once and every retraining reuses them; only the columns the training
data used are kept in the model, with their idf and weight. See docs/ranking.md.

This module trains and ranks; the features live in rank_features, the model and its
explanations in rank_model, the model file in rank_store, and this module re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from pipeline.curate.rank_model import AuthorHit as AuthorHit
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


def _fit_block(counts: sp.csr_matrix, min_df: int) -> tuple[IndexArray, FloatArray]:
    """The columns at least `min_df` training papers use, and their smoothed idf."""
    binary = counts.copy()
    binary.data[:] = 1.0
    df = np.asarray(binary.sum(axis=0)).ravel()
    columns = np.flatnonzero(df >= min_df).astype(np.int64)
    n = counts.shape[0]
    idf = (np.log((1.0 + n) / (1.0 + df[columns])) + 1.0).astype(np.float32)
    return columns, idf


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
    return train_hashed(s.featurise([*pos, *neg]), [p.day for p in pos], len(neg),
                        today, s, author_affinity(pos))


def train_hashed(
    hashed: Hashed,
    positive_days: Sequence[date],
    negatives: int,
    today: date,
    settings: RankSettings,
    affinity: Mapping[str, Affinity],
) -> Model | None:
    """Train on hashed papers: the first len(positive_days) rows are picks (listed on those
    days), the next `negatives` rows are not. None when either side is empty."""
    from sklearn.svm import LinearSVC

    n_pos = len(positive_days)
    if n_pos == 0 or negatives == 0:
        return None
    if hashed.rows != n_pos + negatives:
        raise ValueError("train_hashed: rows must be the positives then the negatives")
    s = settings
    min_dfs = (s.min_df, s.min_df, 1)  # one earlier pick of an author is already a signal
    fitted = [_fit_block(counts, m) for counts, m in zip(hashed.blocks(), min_dfs, strict=True)]
    weights = (s.title_weight, s.abstract_weight, s.author_weight)
    recency = pick_weights([(today - d).days for d in positive_days], s.half_life_days)
    prior, prior_x = _fit_prior(hashed.authors, recency)
    x = sp.hstack([*(_tfidf(counts, cols, idf) * w for counts, (cols, idf), w
                     in zip(hashed.blocks(), fitted, weights, strict=True)),
                   sp.csr_matrix(prior_x[:, None] * s.prior_weight)]).tocsr()
    y = np.r_[np.ones(n_pos), np.zeros(negatives)]
    # Balanced classes: all picks together weigh as much as all non-picks.
    sample = np.r_[recency * (negatives / recency.sum()), np.ones(negatives)]
    svm = LinearSVC(C=s.c, max_iter=5000, random_state=0)
    svm.fit(x, y, sample_weight=sample)
    coef = np.asarray(svm.coef_, dtype=np.float64).ravel()
    blocks = []
    start = 0
    for cols, idf in fitted:
        blocks.append(Block(cols, idf, coef[start:start + len(cols)].astype(np.float32)))
        start += len(cols)
    prior = Prior(prior.columns, prior.picks, float(coef[start]))
    return Model(
        trained_on=today,
        settings=s,
        title=blocks[0],
        abstract=blocks[1],
        authors=blocks[2],
        intercept=float(np.asarray(svm.intercept_).ravel()[0]),
        prior=prior,
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

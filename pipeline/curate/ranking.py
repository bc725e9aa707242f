"""The learned ranking of a day's candidates: features, training, scoring, explanations, and the
model file (pure, but for save_model/load_model).

The model is a linear one over hashed tf-idf features of the title, the abstract (words and word
pairs) and the authors, trained on the curator's picks (positives, weighted by recency: tastes
drift) against the candidates they did not pick. Hashing makes the features stateless, so a day's
candidates are featurised once and every retraining reuses them; only the columns the training
data used are kept in the model, with their idf and weight. See docs/ranking.md.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from pipeline.core.errors import RankError
from pipeline.core.models import Paper

FORMAT = "arxiv-digest-ranking"
FORMAT_VERSION = 1

T = TypeVar("T")
FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int64]

_WORD_RE = re.compile(r"[a-z_][a-z0-9_]+")
_NAME_PART_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class RankPaper:
    """What the ranking knows of a paper: its text and the day it was listed (or noted)."""

    arxiv_id: str | None
    title: str
    authors: tuple[str, ...]
    abstract: str
    day: date

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError("RankPaper.title must be a non-empty string")
        if not isinstance(self.abstract, str):
            raise ValueError("RankPaper.abstract must be a string")
        if not isinstance(self.authors, tuple) or not all(isinstance(a, str) for a in self.authors):
            raise ValueError("RankPaper.authors must be a tuple of strings")
        if not isinstance(self.day, date):
            raise ValueError("RankPaper.day must be a date")

    @classmethod
    def from_paper(cls, paper: Paper, day: date) -> RankPaper:
        """The ranking's view of a collected paper listed on `day`."""
        return cls(paper.arxiv_id, paper.title, paper.authors, paper.abstract, day)


def split_authors(text: str) -> tuple[str, ...]:
    """'A. One, B. Two' → ('A. One', 'B. Two'): the comma-separated form of arXiv listings."""
    return tuple(a for a in (part.strip() for part in text.split(",")) if a)


@dataclass(frozen=True)
class RankSettings:
    """The learner's knobs; the defaults were tuned on the development days only."""

    half_life_days: float = 90.0  # a pick's weight halves every half-life: tastes drift
    c: float = 0.05  # inverse regularisation of the linear SVM
    title_weight: float = 1.0
    abstract_weight: float = 1.0
    author_weight: float = 0.1  # more overfits to one-off co-authors (worse on development days)
    # Off by default: computed as of the training day, the prior is higher for recent papers
    # (mostly non-picks) than for old picks, so it learns time, not taste (recall@10 0.61 →
    # 0.51 at 0.1 on the development days). A prior as of each paper's own day would not.
    prior_weight: float = 0.0
    min_df: int = 2  # a word seen in fewer training papers carries no signal, only noise
    hash_bits: int = 20

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
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


# --- features -------------------------------------------------------------------------------


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


_STOP: frozenset[str] | None = None


def text_words(text: str) -> list[str]:
    """The text's words, lower-cased, stop words dropped."""
    global _STOP
    if _STOP is None:
        _STOP = _stop_words()
    return [w for w in _WORD_RE.findall(text.lower()) if w not in _STOP]


def text_terms(text: str) -> list[str]:
    """Words (stop words dropped) and pairs of neighbouring kept words, lower-cased."""
    words = text_words(text)
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def author_key(name: str) -> str | None:
    """A name folded for matching across spellings: first initial and last name, no accents
    ('Jürgen Schmidhuber', 'J. Schmidhuber' → 'j schmidhuber')."""
    if name.isascii():  # most names: nothing to strip
        parts = _NAME_PART_RE.findall(name.lower())
    else:
        folded = unicodedata.normalize("NFKD", name).casefold()
        parts = _NAME_PART_RE.findall("".join(c for c in folded if not unicodedata.combining(c)))
    if not parts:
        return None
    return f"{parts[0][0]} {parts[-1]}" if len(parts) > 1 else parts[0]


def author_terms(authors: Iterable[str]) -> list[str]:
    """One term per distinct author key (the author block's vocabulary)."""
    return list(dict.fromkeys(k for k in (author_key(a) for a in authors) if k))


BLOCKS = ("title", "abstract", "authors")


@dataclass(frozen=True, eq=False)
class Hashed:
    """Term counts of papers, one CSR matrix per block (rows = papers, 2**bits columns)."""

    title: sp.csr_matrix
    abstract: sp.csr_matrix
    authors: sp.csr_matrix

    def __post_init__(self) -> None:
        rows = {m.shape[0] for m in self.blocks()}
        if len(rows) != 1:
            raise ValueError("Hashed blocks must have the same number of rows")

    def blocks(self) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
        """The three blocks in BLOCKS order."""
        return (self.title, self.abstract, self.authors)

    @property
    def rows(self) -> int:
        """How many papers."""
        return int(self.title.shape[0])

    def take(self, rows: Sequence[int] | IndexArray) -> Hashed:
        """The given rows, in that order."""
        index = np.asarray(rows, dtype=np.int64)
        return Hashed(self.title[index], self.abstract[index], self.authors[index])


# A word's column is its 32-bit MurmurHash3 (stable across versions and runs, unlike hash());
# a pair's column mixes its two words' hashes with a multiplicative hash, in numpy: hashing
# every pair string would make scoring a day's candidates several times slower.
_HASHES: dict[str, int] = {}
_HASHES_MAX = 2_000_000
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _word_hashes(words: Sequence[str]) -> npt.NDArray[np.uint64]:
    from sklearn.utils import murmurhash3_32

    if len(_HASHES) > _HASHES_MAX:
        _HASHES.clear()
    for word in set(words).difference(_HASHES):
        _HASHES[word] = int(murmurhash3_32(word, seed=0, positive=True))
    return np.fromiter(map(_HASHES.__getitem__, words), dtype=np.uint64, count=len(words))


def _columns(hashes: npt.NDArray[np.uint64], bits: int) -> IndexArray:
    return (hashes & np.uint64(2**bits - 1)).astype(np.int64)


def _pair_columns(first: npt.NDArray[np.uint64], second: npt.NDArray[np.uint64],
                  bits: int) -> IndexArray:
    mixed = ((first << np.uint64(32)) | second) * _MIX
    return (mixed >> np.uint64(64 - bits)).astype(np.int64)


def _hash_lists(lists: Sequence[Sequence[str]], bits: int, pairs: bool) -> sp.csr_matrix:
    """Counts of each list's words (and of neighbouring pairs) in hashed columns."""
    n = len(lists)
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=n)
    hashes = _word_hashes([w for x in lists for w in x])
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    columns = [_columns(hashes, bits)]
    row_parts = [rows]
    if pairs and len(hashes) > 1:
        same = rows[1:] == rows[:-1]
        columns.append(_pair_columns(hashes[:-1], hashes[1:], bits)[same])
        row_parts.append(rows[:-1][same])
    column = np.concatenate(columns)
    matrix = sp.csr_matrix(
        (np.ones(len(column), dtype=np.float32), (np.concatenate(row_parts), column)),
        shape=(n, 2**bits),
    )
    matrix.sum_duplicates()
    return matrix


def _hash_texts(items: Sequence[T], words: Callable[[T], list[str]], bits: int, pairs: bool,
                batch: int = 4096) -> sp.csr_matrix:
    """Hash in batches, so the word lists of 50,000 abstracts never exist at once."""
    parts = [_hash_lists([words(t) for t in items[i:i + batch]], bits, pairs)
             for i in range(0, len(items), batch)]
    if not parts:
        return sp.csr_matrix((0, 2**bits), dtype=np.float32)
    return sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]


def term_columns(words: Sequence[str], bits: int, pairs: bool) -> tuple[list[str], IndexArray]:
    """The terms of a word list (words, then neighbouring pairs) and each one's column, hashed
    as the features are."""
    hashes = _word_hashes(words)
    terms = list(words)
    columns = [_columns(hashes, bits)]
    if pairs and len(words) > 1:
        terms += [f"{a} {b}" for a, b in itertools.pairwise(words)]
        columns.append(_pair_columns(hashes[:-1], hashes[1:], bits))
    return terms, np.concatenate(columns)


def hash_papers(papers: Sequence[RankPaper], bits: int) -> Hashed:
    """Count each paper's terms into hashed columns (stateless: no vocabulary to fit)."""
    return Hashed(
        _hash_texts([p.title for p in papers], text_words, bits, pairs=True),
        _hash_texts([p.abstract for p in papers], text_words, bits, pairs=True),
        _hash_texts([p.authors for p in papers], author_terms, bits, pairs=False),
    )


# --- the model ------------------------------------------------------------------------------


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
class AuthorHit:
    """One of a paper's authors the curator picked before."""

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
    authors: tuple[AuthorHit, ...]
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
        return [float(x) for x in self.score_hashed(hash_papers(papers, self.settings.hash_bits))]

    def score_hashed(self, hashed: Hashed) -> npt.NDArray[np.float64]:
        """Scores of already hashed papers (see hash_papers)."""
        total = np.full(hashed.rows, self.intercept, dtype=np.float64)
        for counts, block, weight in zip(hashed.blocks(), self.blocks(), self.weights(), strict=True):
            if weight == 0.0 or not len(block.columns):
                continue
            matrix = _tfidf(counts, block.columns, block.idf) * weight
            total += matrix @ block.coef.astype(np.float64)
        if self.settings.prior_weight:
            total += self.prior.coef * self.settings.prior_weight * self.prior.feature(hashed.authors)
        return total

    def explain(self, paper: RankPaper, top: int = 5) -> Explanation:
        """Why this paper scores as it does (see explain)."""
        return explain(self, paper, top)


def select_columns(counts: sp.csr_matrix, columns: IndexArray) -> sp.csr_matrix:
    """The given (sorted) columns of a hashed matrix, renumbered 0..len-1, in O(non-zeros):
    scipy's column indexing would build a 2**bits-row selection matrix on every call."""
    counts = counts.tocsr()
    lookup = np.full(counts.shape[1], -1, dtype=np.int64)
    lookup[columns] = np.arange(len(columns), dtype=np.int64)
    mapped = lookup[counts.indices]
    keep = mapped >= 0
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return sp.csr_matrix((counts.data[keep], mapped[keep], kept_before[counts.indptr]),
                         shape=(counts.shape[0], len(columns)))


def _tfidf(counts: sp.csr_matrix, columns: IndexArray, idf: FloatArray) -> sp.csr_matrix:
    """Sublinear tf times idf over the model's columns, each row scaled to unit length."""
    known = select_columns(counts, columns).astype(np.float64)
    known.data = (1.0 + np.log(known.data)) * idf.astype(np.float64)[known.indices]
    norms = np.sqrt(np.asarray(known.multiply(known).sum(axis=1)).ravel())
    norms[norms == 0.0] = 1.0
    scaled: sp.csr_matrix = sp.diags(1.0 / norms) @ known
    return scaled.tocsr()


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
    return train_hashed(hash_papers([*pos, *neg], s.hash_bits), [p.day for p in pos], len(neg),
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


def explain(model: Model, paper: RankPaper, top: int = 5) -> Explanation:
    """Why `model` scores `paper` as it does: its authors the curator picked before and the
    terms that added the most to its score."""
    seen: dict[str, AuthorHit] = {}
    for name in paper.authors:
        key = author_key(name)
        hit = model.affinity.get(key) if key else None
        if key is not None and hit is not None and key not in seen:
            seen[key] = AuthorHit(name, hit.picks, hit.last)
    bits = model.settings.hash_bits
    contributions: dict[tuple[str, str], float] = {}
    word_lists = ((text_words(paper.title), True), (text_words(paper.abstract), True),
                  (author_terms(paper.authors), False))
    hashed = hash_papers([paper], bits)
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


def rank(papers: Sequence[RankPaper], model: Model | None, fallback: Sequence[float]) -> list[int]:
    """Indices of `papers`, best first: by the model's score, or by `fallback` (the tag rules'
    score) without a model; ties keep listing order."""
    if len(fallback) != len(papers):
        raise ValueError("rank: one fallback score per paper")
    scores = model.score(papers) if model is not None else list(fallback)
    return sorted(range(len(papers)), key=lambda i: -scores[i])


# --- the model file -------------------------------------------------------------------------


def model_bytes(model: Model) -> bytes:
    """The model as an .npz archive: arrays plus a JSON header, no pickled objects."""
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "trained_on": model.trained_on.isoformat(),
        "settings": asdict(model.settings),
        "intercept": model.intercept,
        "prior_coef": model.prior.coef,
        "positives": model.positives,
        "negatives": model.negatives,
        "affinity": {k: [a.name, a.picks, a.last.isoformat()] for k, a in model.affinity.items()},
    }
    arrays: dict[str, Any] = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    arrays["prior_columns"] = model.prior.columns
    arrays["prior_picks"] = model.prior.picks
    for name, block in zip(BLOCKS, model.blocks(), strict=True):
        arrays[f"{name}_columns"] = block.columns
        arrays[f"{name}_idf"] = block.idf
        arrays[f"{name}_coef"] = block.coef
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def save_model(path: Path, model: Model) -> None:
    """Write the model file atomically (a reader never sees half a model)."""
    from pipeline.core.files import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, model_bytes(model))


def load_model(path: Path) -> Model | None:
    """Read a model file; None when there is none (cold start), RankError when it is not a
    model this version wrote (corrupt, foreign, or of another format version)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RankError(f"cannot read the ranking model: {exc.strerror}", path=path) from exc
    return parse_model(raw, path)


def parse_model(raw: bytes, path: Path) -> Model:
    """A model from the bytes of its file; RankError naming `path` when they are not one."""
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise RankError("not a ranking model file (expected an .npz archive written by "
                        "`digest`; delete it to retrain)", path=path) from exc
    try:
        meta = json.loads(bytes(arrays.pop("meta").astype(np.uint8)).decode())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise RankError("not a ranking model file (no arxiv-digest header)", path=path)
        if meta.get("version") != FORMAT_VERSION:
            raise RankError(f"ranking model format {meta.get('version')!r}; this version reads "
                            f"{FORMAT_VERSION} (delete the file to retrain)", path=path)
        blocks = [
            Block(
                np.asarray(arrays[f"{name}_columns"], dtype=np.int64),
                np.asarray(arrays[f"{name}_idf"], dtype=np.float32),
                np.asarray(arrays[f"{name}_coef"], dtype=np.float32),
            )
            for name in BLOCKS
        ]
        settings = RankSettings(**meta["settings"])
        affinity = {
            str(k): Affinity(str(v[0]), int(v[1]), date.fromisoformat(v[2]))
            for k, v in meta["affinity"].items()
        }
        prior = Prior(np.asarray(arrays["prior_columns"], dtype=np.int64),
                      np.asarray(arrays["prior_picks"], dtype=np.float32),
                      float(meta["prior_coef"]))
        intercept = float(meta["intercept"])
        if not math.isfinite(intercept):
            raise ValueError("intercept is not finite")
        limit = 2**settings.hash_bits
        if any(len(c) and c[-1] >= limit for c in [*(b.columns for b in blocks), prior.columns]):
            raise ValueError("a column beyond the hashing space")
        return Model(
            trained_on=date.fromisoformat(meta["trained_on"]),
            settings=settings,
            title=blocks[0],
            abstract=blocks[1],
            authors=blocks[2],
            intercept=intercept,
            prior=prior,
            affinity=affinity,
            positives=int(meta["positives"]),
            negatives=int(meta["negatives"]),
        )
    except RankError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, UnicodeDecodeError) as exc:
        raise RankError(f"damaged ranking model file ({exc}; delete it to retrain)",
                        path=path) from exc

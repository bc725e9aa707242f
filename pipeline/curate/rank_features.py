"""The ranking's features: a paper's text as words, word pairs and author keys, hashed into
sparse count matrices (stateless: a day's candidates are featurised once), and their tf-idf over
a model's columns."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from pipeline.core.models import Paper
from pipeline.curate.rank_hashing import Hashes, term_hashes, word_hashes

T = TypeVar("T")
FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int64]

_WORD_RE = re.compile(r"[a-z_][a-z0-9_]+")  # rank_hashing finds the same words, in bulk
_NAME_PART_RE = re.compile(r"\w+")
_MEMO_MAX = 2_000_000  # distinct strings a memo keeps before it starts afresh


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
    return list(dict.fromkeys(k for k in map(_AUTHOR_KEYS.__getitem__, authors) if k))


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


# A word's column is its 32-bit MurmurHash3 (stable across versions and runs, unlike hash();
# rank_hashing computes it in numpy as scikit-learn's murmurhash3_32 does); a pair's column
# mixes its two words' hashes with a multiplicative hash: hashing every pair string would make
# scoring a day's candidates several times slower.
_MIX = np.uint64(0x9E3779B97F4A7C15)


class _AuthorKeys(dict[str, str | None]):
    """author_key of each name, worked out once per name (authors recur day after day)."""

    def __missing__(self, name: str) -> str | None:
        if len(self) >= _MEMO_MAX:
            self.clear()
        key = self[name] = author_key(name)
        return key


_AUTHOR_KEYS = _AuthorKeys()


def _columns(hashes: npt.NDArray[np.uint64], bits: int) -> IndexArray:
    return (hashes & np.uint64(2**bits - 1)).astype(np.int64)


def _pair_columns(first: npt.NDArray[np.uint64], second: npt.NDArray[np.uint64],
                  bits: int) -> IndexArray:
    mixed = ((first << np.uint64(32)) | second) * _MIX
    return (mixed >> np.uint64(64 - bits)).astype(np.int64)


def _term_lists(lists: Sequence[Sequence[str]]) -> tuple[IndexArray, Hashes]:
    """The index of the list each listed term is in, and the term's hash."""
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    rows = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
    return rows, term_hashes(list(itertools.chain.from_iterable(lists)))


def _term_counts(rows: IndexArray, hashes: Hashes, n: int, bits: int,
                 pairs: bool) -> sp.csr_matrix:
    """Counts of the terms (row by row, in order, with their hashes) and, with `pairs`, of each
    two neighbouring terms of a row, in hashed columns."""
    words = hashes.astype(np.uint64)
    columns = [_columns(words, bits)]
    row_parts = [rows]
    if pairs and len(words) > 1:
        same = rows[1:] == rows[:-1]
        columns.append(_pair_columns(words[:-1], words[1:], bits)[same])
        row_parts.append(rows[:-1][same])
    return _counts(np.concatenate(row_parts), np.concatenate(columns), n, bits)


def _counts(rows: IndexArray, columns: IndexArray, n: int, bits: int) -> sp.csr_matrix:
    """How often each (row, column) occurs, as a CSR matrix with sorted, distinct columns."""
    # A stable sort: the keys come in runs already sorted by row, which it exploits.
    keys = np.sort((rows << bits) | columns, kind="stable")
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(keys))).astype(np.float32)
    distinct = keys[starts]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(distinct >> bits, minlength=n), out=indptr[1:])
    return sp.csr_matrix((counts, distinct & (2**bits - 1), indptr), shape=(n, 2**bits))


def _hash_texts(texts: Sequence[str], bits: int, *, pairs: bool) -> sp.csr_matrix:
    """Counts of the texts' words (and pairs of neighbouring words, if asked)."""
    return _batched(texts, lambda batch: _term_counts(*word_hashes(batch), len(batch), bits,
                                                      pairs=pairs), bits)


def _hash_authors(authors: Sequence[Sequence[str]], bits: int) -> sp.csr_matrix:
    """Counts of each paper's author keys."""
    return _batched(authors, lambda batch: _term_counts(
        *_term_lists([author_terms(a) for a in batch]), len(batch), bits, pairs=False), bits)


def _batched(items: Sequence[T], count: Callable[[Sequence[T]], sp.csr_matrix], bits: int,
             batch: int = 4096) -> sp.csr_matrix:
    """Count in batches, so the words of 50,000 abstracts never exist at once."""
    parts = [count(items[i:i + batch]) for i in range(0, len(items), batch)]
    if not parts:
        return sp.csr_matrix((0, 2**bits), dtype=np.float32)
    return sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0]


def term_columns(words: Sequence[str], bits: int, pairs: bool) -> tuple[list[str], IndexArray]:
    """The terms of a word list (words, then neighbouring pairs) and each one's column, hashed
    as the features are."""
    hashes = term_hashes(words).astype(np.uint64)
    terms = list(words)
    columns = [_columns(hashes, bits)]
    if pairs and len(words) > 1:
        terms += [f"{a} {b}" for a, b in itertools.pairwise(words)]
        columns.append(_pair_columns(hashes[:-1], hashes[1:], bits))
    return terms, np.concatenate(columns)


def hash_papers(papers: Sequence[RankPaper], bits: int, *, abstract_pairs: bool) -> Hashed:
    """Count each paper's terms into hashed columns (stateless: no vocabulary to fit): title
    words and pairs, abstract words (and pairs if asked), author keys."""
    return Hashed(
        _hash_texts([p.title for p in papers], bits, pairs=True),
        _hash_texts([p.abstract for p in papers], bits, pairs=abstract_pairs),
        _hash_authors([p.authors for p in papers], bits),
    )


def select_columns(counts: sp.csr_matrix, columns: IndexArray) -> sp.csr_matrix:
    """The given (sorted) columns of a hashed matrix, renumbered 0..len-1, in O(non-zeros):
    scipy's column indexing would build a 2**bits-row selection matrix on every call."""
    counts = counts.tocsr()
    index = np.int32 if max(counts.nnz, counts.shape[1]) < 2**31 else np.int64
    lookup = np.full(counts.shape[1], -1, dtype=index)
    lookup[columns] = np.arange(len(columns), dtype=index)
    mapped = lookup[counts.indices]
    keep = mapped >= 0
    kept_before = np.zeros(len(keep) + 1, dtype=index)
    np.cumsum(keep, out=kept_before[1:])
    return sp.csr_matrix((counts.data[keep], mapped[keep], kept_before[counts.indptr]),
                         shape=(counts.shape[0], len(columns)))


def _tfidf(counts: sp.csr_matrix, columns: IndexArray, idf: FloatArray,
           weight: float = 1.0) -> sp.csr_matrix:
    """Sublinear tf times idf over the model's columns, each row scaled to unit length, times
    `weight`: float64, computed in place (a training's matrices are large)."""
    known = select_columns(counts, columns)
    data = np.log(known.data, dtype=np.float64)
    data += 1.0
    data *= idf.astype(np.float64)[known.indices]
    squares = sp.csr_matrix((np.square(data), known.indices, known.indptr), shape=known.shape)
    norms = np.sqrt(np.asarray(squares.sum(axis=1)).ravel())
    del squares
    norms[norms == 0.0] = 1.0
    data *= np.repeat(1.0 / norms, np.diff(known.indptr))
    if weight != 1.0:
        data *= weight
    return sp.csr_matrix((data, known.indices, known.indptr), shape=known.shape)

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


def hash_papers(papers: Sequence[RankPaper], bits: int, *, abstract_pairs: bool) -> Hashed:
    """Count each paper's terms into hashed columns (stateless: no vocabulary to fit): title
    words and pairs, abstract words (and pairs if asked), author keys."""
    return Hashed(
        _hash_texts([p.title for p in papers], text_words, bits, pairs=True),
        _hash_texts([p.abstract for p in papers], text_words, bits, pairs=abstract_pairs),
        _hash_texts([p.authors for p in papers], author_terms, bits, pairs=False),
    )


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

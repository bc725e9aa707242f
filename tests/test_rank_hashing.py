"""The ranking's features computed in bulk: the same words as the word regex, the same hashes as
scikit-learn's murmurhash3_32, and the same counts a paper's explanation works from."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import numpy as np
from sklearn.utils import murmurhash3_32

from pipeline.curate import rank_hashing
from pipeline.curate.rank_eval import read_days, read_history
from pipeline.curate.ranking import (
    RankPaper,
    author_terms,
    hash_papers,
    term_columns,
    text_words,
)
from tests.support import FIXTURES

RANKING = FIXTURES / "ranking"

# Words led by digits, one letter long, with "_", outside ASCII, stop words of every length
# (and near misses), a lone surrogate, and nothing at all.
ODD_TEXTS = [
    "Naïve über-3D models: 123abc a_b __ x1 2x y Zürich-based façade",
    "THE the Thé İstanbul \u212aelvin ſtraße ﬁne — “quoted” it's e.g. i.e.",
    "2024 123 _1 1_ __init__ a1b2 9lives x 3d 0x1f R2-D2",
    "nevertheless neverthelesss nevertheles thereafter thes a an of to be is",
    "tab\tnew\nline\r\nend\x00null\ud800lone surrogate",
    "αβγ mixed ascii 漢字 text",
    "",
    "a",
    "LoRA-based RLHF (RLHF) for LLMs; GPT-4o vs. o1-preview",
]


def _fixture_texts() -> list[str]:
    days = [*read_days(RANKING / "test-days.jsonl"), *read_days(RANKING / "train-days.jsonl.gz")]
    papers = [*read_history(RANKING / "history.jsonl"), *(c for d in days for c in d.candidates)]
    return [t for p in papers for t in (p.title, p.abstract)]


def test_bulk_words_and_hashes_are_the_regexs_words_and_sklearns_hashes() -> None:
    texts = [*ODD_TEXTS, *_fixture_texts()]
    rows, hashes = rank_hashing.word_hashes(texts)
    words = [(i, w) for i, t in enumerate(texts) for w in text_words(t)]
    assert len(words) > 10_000
    assert rows.tolist() == [i for i, _ in words]
    assert hashes.tolist() == [murmurhash3_32(w, seed=0, positive=True) for _, w in words]


def test_stop_words_go_and_their_look_alikes_stay() -> None:
    rows, hashes = rank_hashing.word_hashes(["the neverthelesss of thes nevertheless ok"])
    assert hashes.tolist() == [murmurhash3_32(w, positive=True) for w in ("neverthelesss", "thes", "ok")]
    assert rows.tolist() == [0, 0, 0]
    # A word whose hash were a stop word's (same length too) is still a word: the bytes decide.
    buffer = b"thf" + b"\0" * 4
    at = rank_hashing._words_at(buffer)
    the = np.array([murmurhash3_32("the", positive=True)], dtype=np.uint32)
    starts, lengths = np.array([0]), np.array([3])
    assert rank_hashing._stop_words().find(at, starts, lengths, the).tolist() == []
    at = rank_hashing._words_at(b"the" + b"\0" * 4)
    assert rank_hashing._stop_words().find(at, starts, lengths, the).tolist() == [0]


def test_term_hashes_are_sklearns_for_any_text() -> None:
    rng = random.Random(7)
    alphabet = "abcxyz019_ -éßü漢字😀"
    terms = ["", "a", "ab", "abc", "abcd", "j schmidhuber", "ø",
             *("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000))]
    assert rank_hashing.term_hashes(terms).tolist() == [
        murmurhash3_32(t, seed=0, positive=True) for t in terms]


def _reference_row(words: list[str], bits: int, pairs: bool) -> dict[int, float]:
    """A paper's counts as its explanation sees them: term by term."""
    return dict(Counter(term_columns(words, bits, pairs)[1].tolist()))


def test_bulk_counts_are_the_counts_an_explanation_works_from() -> None:
    texts = [*ODD_TEXTS, *_fixture_texts()[:400]]
    papers = [RankPaper(None, t or "x", (t, "Jürgen Schmidhuber", "J. Schmidhuber", " "), t,
                        date(2025, 1, 1)) for t in texts]
    for bits in (20, 12):  # 12: many columns shared, so counts add up
        hashed = hash_papers(papers, bits, abstract_pairs=True)
        for i, paper in enumerate(papers):
            for matrix, words, pairs in (
                (hashed.title, text_words(paper.title), True),
                (hashed.abstract, text_words(paper.abstract), True),
                (hashed.authors, author_terms(paper.authors), False),
            ):
                row = matrix[i]
                assert dict(zip(row.indices.tolist(), row.data.tolist(), strict=True)) == \
                    _reference_row(words, bits, pairs), (i, words)
                assert np.all(np.diff(row.indices) > 0)

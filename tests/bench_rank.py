"""`make bench`: the learned ranking on data of the real size (4,000 picks, 50,000 non-picks,
1,500 candidates a day, 127 days online), built from the words of the fixture slice of the real
ranking data. Baselines in the same run: an arxiv-sanity-style tf-idf + LinearSVC training on
the same papers; for scoring, scikit-learn's HashingVectorizer (words and pairs, hashed) and a
dot product over the same candidates, and the tag rules matching them."""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.collect.tags import compile_rules, match_paper
from pipeline.core.config import TagRule, load_config
from pipeline.core.models import Paper
from pipeline.curate.rank_eval import Day, evaluate, read_days, read_history
from pipeline.curate.ranking import RankPaper, train_model
from tests.support import FIXTURES, best_time

START = date(2025, 1, 1)
REPEATS = 5


class Corpus:
    """Papers made of the fixture papers' sentences and authors (so word statistics stay those
    of real abstracts), lengths as there; picks draw more from the picked papers' sentences so
    the learner has something to find."""

    def __init__(self, seed: int = 0) -> None:
        days = [*read_days(FIXTURES / "ranking" / "test-days.jsonl"),
                *read_days(FIXTURES / "ranking" / "train-days.jsonl.gz")]
        picked = [c for d in days for c in d.candidates if c.arxiv_id in d.picks]
        picked += list(read_history(FIXTURES / "ranking" / "history.jsonl"))
        others = [c for d in days for c in d.candidates if c.arxiv_id not in d.picks]
        self.liked = self._sentences(picked)
        self.plain = self._sentences(others)
        self.titles = [p.title for p in [*picked, *others]]
        self.authors = sorted({a for p in [*picked, *others] for a in p.authors})
        self.rng = random.Random(seed)
        self.n = 0

    @staticmethod
    def _sentences(papers: Sequence[RankPaper]) -> list[str]:
        return [s.strip() for p in papers for s in p.abstract.split(". ") if s.strip()]

    def paper(self, day: date, picked: bool, new_authors: bool = False) -> RankPaper:
        """One made-up paper listed on `day` (`new_authors`: names never seen before)."""
        rng = self.rng
        self.n += 1
        pool = self.liked if picked else self.plain
        sentences = [rng.choice(pool if rng.random() < 0.5 else self.plain)
                     for _ in range(rng.randint(5, 10))]
        title = " ".join(rng.choice(self.titles).split()[: rng.randint(5, 14)])
        authors = rng.sample(self.authors, rng.randint(1, 8))
        if new_authors:
            authors = [f"{a}{self.n}" for a in authors]
        return RankPaper(f"2501.{self.n % 100000:05d}", title, tuple(authors),
                         ". ".join(sentences), day)

    def papers(self, n: int, picked: bool, days: int = 365) -> list[RankPaper]:
        """`n` papers spread over the `days` before START."""
        return [self.paper(START - timedelta(days=1 + i % days), picked) for i in range(n)]


def _arxiv_sanity(pos: Sequence[RankPaper], neg: Sequence[RankPaper]) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    docs = [f"{p.title} {p.abstract} {', '.join(p.authors)}" for p in [*pos, *neg]]
    vec = TfidfVectorizer(strip_accents="unicode", stop_words="english", ngram_range=(1, 2),
                          max_features=20000, sublinear_tf=True, max_df=0.1, min_df=5,
                          token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b")
    x = vec.fit_transform(docs)
    LinearSVC(class_weight="balanced", C=0.01, max_iter=10000, tol=1e-6).fit(
        x, [1] * len(pos) + [0] * len(neg))


def _hashing_vectorizer(papers: Sequence[RankPaper], weights: npt.NDArray[np.float64]) -> None:
    """The plain scikit-learn way to score hashed text: HashingVectorizer, then a dot product."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(n_features=2**20, ngram_range=(1, 2), stop_words="english",
                            alternate_sign=False, token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b")
    vec.transform([f"{p.title} {p.abstract} {', '.join(p.authors)}" for p in papers]) @ weights


def child() -> None:
    """Train once in this process; print the resident memory before and the peak (KiB)."""
    corpus = Corpus()
    pos, neg = corpus.papers(4_000, True), corpus.papers(50_000, False)
    page_kib = resource.getpagesize() // 1024
    before = int(Path("/proc/self/statm").read_text().split()[1]) * page_kib  # resident now
    train_model(pos, neg, START)
    print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main() -> None:
    """Print training time and memory, scoring time and the online eval's time."""
    import sklearn.svm  # noqa: F401  (loaded before the clocks start: both trainings use it)

    corpus = Corpus()
    pos, neg = corpus.papers(4_000, True), corpus.papers(50_000, False)
    start = time.perf_counter()
    model = train_model(pos, neg, START)
    train = time.perf_counter() - start
    assert model is not None
    start = time.perf_counter()
    _arxiv_sanity(pos, neg)
    sanity = time.perf_counter() - start
    # Two fresh processes: what the allocator keeps of freed memory varies from run to run.
    runs = [subprocess.run([sys.executable, "-m", "tests.bench_rank", "--child"], check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(2)]
    before = min(int(r[0]) for r in runs) / 1024
    peaks = sorted(int(r[1]) / 1024 for r in runs)
    print(f"train: {len(pos):,} picks + {len(neg):,} non-picks {train:.1f} s "
          f"({train / sanity:.2f}x arxiv-sanity's tf-idf + LinearSVC, {sanity:.1f} s); "
          f"peak RSS {peaks[0]:.0f}-{peaks[-1]:.0f} MiB in 2 runs ({before:.0f} MiB with the "
          f"papers loaded, before training)")

    # A new day's candidates each time, by authors never seen before: nothing is remembered.
    day = START + timedelta(days=1)
    batches = [[corpus.paper(day, False, new_authors=True) for _ in range(1_500)]
               for _ in range(2 * REPEATS)]
    ours, theirs = iter(batches[:REPEATS]), iter(batches[REPEATS:])
    score = best_time(lambda: model.score(next(ours)), REPEATS)
    weights = np.random.default_rng(0).standard_normal(2**20)
    vectorizer = best_time(lambda: _hashing_vectorizer(next(theirs), weights), REPEATS)
    rules = compile_rules(_rules())
    as_papers = [Paper(str(c.arxiv_id), c.title, c.authors, c.abstract) for c in batches[0]]
    tags = best_time(lambda: [match_paper(p, rules) for p in as_papers], REPEATS)
    tracemalloc.start()
    model.score(batches[0])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"score: 1,500 candidates {score * 1e3:.0f} ms (aim < 100 ms; {score / vectorizer:.2f}x "
          f"scikit-learn's HashingVectorizer + dot, {vectorizer * 1e3:.0f} ms; the tag rules' "
          f"matching {tags * 1e3:.0f} ms); peak {peak / 1e6:.0f} MB")

    history = corpus.papers(2_920, True, days=700)
    days = []
    for i in range(127):
        listed = START + timedelta(days=i)
        cands = [corpus.paper(listed, j < 3) for j in range(300)]
        picks = tuple(str(c.arxiv_id) for c in cands[:3])
        days.append(Day(listed, tuple(cands), picks))
    start = time.perf_counter()
    report = evaluate(history, days[:6], days[6:], lambda p: 0.0)
    took = time.perf_counter() - start
    print(f"eval: {len(days) - 6} test days online, {len(report.retrained)} trainings, "
          f"{took:.0f} s (aim < 300 s)")


def _rules() -> tuple[TagRule, ...]:
    return load_config(Path(__file__).parent.parent / "config" / "digest.toml").tags


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child()
    else:
        main()

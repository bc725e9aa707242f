"""The learned ranking: training, scoring, explanations, the model file, the online protocol."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import DigestError, RankError
from pipeline.curate import ranking
from pipeline.curate.rank_eval import Day, day_metrics, evaluate, read_days, read_history
from pipeline.curate.ranking import (
    Explanation,
    Model,
    RankPaper,
    RankSettings,
    author_affinity,
    author_key,
    load_model,
    model_bytes,
    rank,
    save_model,
    train_hashed,
    train_model,
)
from tests.support import FIXTURES

RANKING = FIXTURES / "ranking"
TODAY = date(2025, 1, 8)


def _paper(i: int, title: str, authors: tuple[str, ...] = ("Some One",), days_ago: int = 3,
           abstract: str = "") -> RankPaper:
    return RankPaper(f"2501.{i:05d}", title, authors, abstract or title,
                     TODAY - timedelta(days=days_ago))


def _toy() -> tuple[list[RankPaper], list[RankPaper]]:
    pos = [_paper(i, f"Reward model training for language model alignment {i}",
                  ("Ada Lovelace", f"Author {i}")) for i in range(8)]
    neg = [_paper(100 + i, f"Protein folding with graph networks on molecule data {i}",
                  (f"Other {i}",)) for i in range(30)]
    return pos, neg


def _tag_score(p: RankPaper) -> float:
    """A stand-in for the tag rules: how often 'model' occurs (ties are common)."""
    return float(f"{p.title} {p.abstract}".lower().count("model"))


def test_a_trained_model_ranks_like_the_picks_first() -> None:
    pos, neg = _toy()
    model = train_model(pos, neg, TODAY)
    assert model is not None
    new = [_paper(900, "Crystal structure prediction for molecule data", ("X Y",), 0),
           _paper(901, "A process reward model for language model reasoning", ("Z W",), 0)]
    scores = model.score(new)
    assert scores[1] > scores[0]
    assert rank(new, model, [5.0, 0.0]) == [1, 0]  # the model's order, not the fallback's


def test_training_uses_only_papers_dated_before_today() -> None:
    pos, neg = _toy()
    assert train_model([replace(p, day=TODAY) for p in pos], neg, TODAY) is None


def test_cold_start_gives_no_model_and_rank_keeps_the_tag_order() -> None:
    pos, neg = _toy()
    assert train_model([], neg, TODAY) is None
    assert train_model(pos, [], TODAY) is None
    papers = pos[:4]
    # Ties keep listing order, as the tag rules' order does.
    assert rank(papers, None, [1.0, 3.0, 1.0, 3.0]) == [1, 3, 0, 2]


def test_explanation_names_authors_picked_before_and_the_terms_that_counted() -> None:
    pos, neg = _toy()
    model = train_model(pos, neg, TODAY)
    assert model is not None
    paper = _paper(902, "Reward model ensembles", ("Ada Lovelace", "New Person"), 0)
    why = model.explain(paper)
    assert isinstance(why, Explanation)
    assert [(a.name, a.picks) for a in why.authors] == [("Ada Lovelace", 8)]
    assert why.authors[0].last == TODAY - timedelta(days=3)
    terms = [t.term for t in why.terms]
    assert "reward" in terms or "reward model" in terms
    assert all(t.contribution > 0 for t in why.terms)
    assert why.score == pytest.approx(model.score([paper])[0])
    assert why.lines()[0].startswith("authors you picked before: Ada Lovelace (8×")
    with pytest.raises(dataclasses.FrozenInstanceError):
        why.score = 0.0  # type: ignore[misc]
    stranger = model.explain(_paper(903, "Protein folding", ("Nobody Known",), 0))
    assert stranger.authors == ()


def test_the_author_prior_lifts_papers_by_authors_picked_before() -> None:
    pos, neg = _toy()
    # Half the picks share an author and a neutral title; non-picks with that title do not.
    pos += [_paper(200 + i, f"Neutral study {i}", ("Grace Hopper",)) for i in range(6)]
    neg += [_paper(300 + i, f"Neutral study {i}", (f"Stranger {i}",)) for i in range(6)]
    settings = RankSettings(author_weight=0.0, prior_weight=1.0)
    model = train_model(pos, neg, TODAY, settings)
    assert model is not None and model.prior.coef > 0
    by_hopper = _paper(905, "Neutral study", ("G. Hopper",), 0)
    by_stranger = _paper(906, "Neutral study", ("Someone Else",), 0)
    assert model.score([by_hopper])[0] > model.score([by_stranger])[0]
    off = train_model(pos, neg, TODAY, replace(settings, prior_weight=0.0))
    assert off is not None
    assert off.score([by_hopper]) == off.score([by_stranger])


def _same_model(a: Model | None, b: Model | None) -> bool:
    assert a is not None and b is not None
    return a.intercept == b.intercept and all(
        np.array_equal(x.columns, y.columns) and np.array_equal(x.idf, y.idf)
        and np.array_equal(x.coef, y.coef) for x, y in zip(a.blocks(), b.blocks(), strict=True))


def test_training_a_few_rows_at_a_time_or_on_chosen_rows_learns_the_same_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pos, neg = _toy()
    settings = RankSettings(author_weight=0.5, prior_weight=0.5)  # every block counts
    whole = train_model(pos, neg, TODAY, settings)
    monkeypatch.setattr(ranking, "_ROWS_AT_ONCE", 5)  # rows in parts of 5, the last one short
    assert _same_model(train_model(pos, neg, TODAY, settings), whole)
    # Training on chosen rows of papers hashed once (as the online evaluation does).
    extra = [_paper(500 + i, f"Unrelated filler paper {i}") for i in range(4)]
    hashed = settings.featurise([*extra[:2], *neg, *pos, *extra[2:]])
    rows = [*range(2 + len(neg), 2 + len(neg) + len(pos)), *range(2, 2 + len(neg))]
    chosen = train_hashed(hashed, [p.day for p in pos], len(neg), TODAY, settings,
                          author_affinity(pos), rows=rows)
    assert _same_model(chosen, whole)


def test_author_key_matches_initials_and_accents() -> None:
    assert author_key("Jürgen Schmidhuber") == author_key("J. Schmidhuber") == "j schmidhuber"
    assert author_key("  ") is None


def test_save_and_load_give_identical_scores(tmp_path: Path) -> None:
    pos, neg = _toy()
    model = train_model(pos, neg, TODAY, RankSettings(half_life_days=30.0, author_weight=0.5))
    assert model is not None
    path = tmp_path / "data" / "ranking.npz"
    save_model(path, model)
    loaded = load_model(path)
    assert loaded is not None
    papers = [*pos, *neg, _paper(904, "Reward shaping", ("Ada Lovelace",), 0)]
    assert loaded.score(papers) == model.score(papers)
    assert loaded.settings == model.settings and loaded.trained_on == model.trained_on
    assert loaded.affinity == model.affinity
    assert loaded.explain(papers[-1]) == model.explain(papers[-1])
    assert model_bytes(loaded) == model_bytes(model)


def test_no_model_file_is_a_cold_start(tmp_path: Path) -> None:
    assert load_model(tmp_path / "missing.npz") is None


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _corruptions(good: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = np.load(io.BytesIO(good))["meta"]
    text = bytes(meta).decode()
    newer = io.BytesIO()
    with zipfile.ZipFile(newer, "w") as z:
        for name, data in members.items():
            if name == "meta.npy":
                patched = np.frombuffer(text.replace('"version": 1', '"version": 99').encode(),
                                        dtype=np.uint8)
                data = _npy(patched)
            z.writestr(name, data)
    return {
        "empty": b"",
        "text": b"hello, not a model\n",
        "truncated": good[: len(good) // 2],
        "foreign npz": _npz(weights=np.arange(3.0)),
        "pickled objects": _npz(meta=np.array([{"format": "x"}], dtype=object)),
        "newer version": newer.getvalue(),
        "missing block": _npz(meta=meta),
    }


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_corrupt_or_foreign_model_file_is_a_rank_error_and_ranking_falls_back(
    tmp_path: Path,
) -> None:
    pos, neg = _toy()
    model = train_model(pos, neg, TODAY)
    assert model is not None
    papers = neg[:5]
    fallback = [0.0, 2.0, 1.0, 2.0, 0.0]
    for name, raw in _corruptions(model_bytes(model)).items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(raw)
        with pytest.raises(RankError) as info:
            load_model(path)
        assert isinstance(info.value, DigestError)
        assert str(info.value).startswith(f"{path}: "), name
        assert "model" in str(info.value)
        assert info.value.__cause__ is not None or "version" in str(info.value) or name == "text"
        # What a caller does with the error: rank by the tag rules.
        try:
            loaded = load_model(path)
        except RankError:
            loaded = None
        assert rank(papers, loaded, fallback) == [1, 3, 2, 0, 4]


def _header_without(raw: bytes, key: str) -> bytes:
    """The model file with `key` left out of the header's settings (as an older file wrote it)."""
    import json

    arrays = dict(np.load(io.BytesIO(raw)))
    meta = json.loads(bytes(arrays["meta"]).decode())
    del meta["settings"][key]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return _npz(**arrays)


def test_abstracts_count_words_only_unless_pairs_are_asked_for() -> None:
    pos, neg = _toy()
    pos = [replace(p, abstract=f"dense retrieval beats sparse retrieval {i}")
           for i, p in enumerate(pos)]
    neg = [replace(p, abstract=f"sparse retrieval beats dense retrieval {i}")
           for i, p in enumerate(neg)]
    words = train_model(pos, neg, TODAY)
    pairs = train_model(pos, neg, TODAY, RankSettings(abstract_pairs=True))
    assert words is not None and pairs is not None
    assert not words.settings.abstract_pairs
    # Same title, same abstract words in another order: only word pairs can tell them apart.
    new = [_paper(950, "A study", ("X Y",), 0, "dense retrieval beats sparse retrieval"),
           _paper(951, "A study", ("X Y",), 0, "sparse retrieval beats dense retrieval")]
    first, second = words.score(new)
    assert first == pytest.approx(second)
    first, second = pairs.score(new)
    assert first > second


def test_a_model_file_from_before_abstract_pairs_was_a_setting_scores_as_it_did(
    tmp_path: Path,
) -> None:
    pos, neg = _toy()
    pos = [replace(p, abstract=f"reward model training beats plain training {i}")
           for i, p in enumerate(pos)]
    model = train_model(pos, neg, TODAY, RankSettings(abstract_pairs=True))
    assert model is not None
    path = tmp_path / "old.npz"
    path.write_bytes(_header_without(model_bytes(model), "abstract_pairs"))
    loaded = load_model(path)
    assert loaded is not None and loaded.settings.abstract_pairs
    papers = [*pos, *neg]
    assert loaded.score(papers) == model.score(papers)


def test_the_title_weight_scales_the_title_blocks_part_of_a_score() -> None:
    pos, neg = _toy()
    model = train_model(pos, neg, TODAY)
    assert model is not None and model.settings.title_weight != 1.0
    # Title words the model knows, abstract and authors it does not: only the title counts.
    paper = [_paper(960, "Reward model training", ("Nobody Known",), 0, "zzz qqq")]
    title_part = model.score(paper)[0] - model.intercept
    assert title_part != pytest.approx(0.0)
    heavier = replace(model, settings=replace(model.settings, title_weight=2.0))
    assert heavier.score(paper)[0] - model.intercept == pytest.approx(
        title_part * 2.0 / model.settings.title_weight)


def test_a_model_file_keeps_the_title_weight_it_was_trained_with(tmp_path: Path) -> None:
    pos, neg = _toy()
    old = train_model(pos, neg, TODAY, RankSettings(title_weight=1.0))
    new = train_model(pos, neg, TODAY)
    assert old is not None and new is not None
    path = tmp_path / "old.npz"
    save_model(path, old)
    loaded = load_model(path)
    assert loaded is not None and loaded.settings.title_weight == 1.0
    papers = [*pos, *neg]
    assert loaded.score(papers) == old.score(papers)
    assert loaded.score(papers) != new.score(papers)


def test_settings_are_validated() -> None:
    for bad in ({"c": 0.0}, {"half_life_days": -1.0}, {"hash_bits": 40}, {"min_df": 0},
                {"author_weight": float("nan")}, {"abstract_pairs": 1}):
        with pytest.raises(ValueError):
            RankSettings(**bad)  # type: ignore[arg-type]


# --- the online protocol --------------------------------------------------------------------


def _days() -> tuple[tuple[RankPaper, ...], tuple[Day, ...], tuple[Day, ...]]:
    return (read_history(RANKING / "history.jsonl"), read_days(RANKING / "train-days.jsonl.gz"),
            read_days(RANKING / "test-days.jsonl"))


def test_reading_the_fixture_files() -> None:
    history, train, test = _days()
    assert len(history) == 40 and all(p.day <= date(2024, 12, 17) for p in history)
    assert [d.day.isoformat() for d in (*train, *test)] == [
        "2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09", "2025-01-10"]
    assert test[1].picks == ("2501.04519", "2501.04697", "2501.04682")
    assert test[1].candidates[0].authors[0]


def test_changing_a_days_picks_changes_no_ranking_up_to_that_day() -> None:
    history, train, test = _days()
    base = evaluate(history, train, test, _tag_score, retrain_days=1)
    assert base.fallback_days == ()
    assert base.retrained == tuple(d.day for d in test)
    # Move the middle test day's picks to three other candidates.
    middle = test[1]
    others = tuple(str(c.arxiv_id) for c in middle.candidates if c.arxiv_id not in middle.picks)
    changed = (test[0], replace(middle, picks=others[:3]), test[2])
    after = evaluate(history, train, changed, _tag_score, retrain_days=1)
    for day in (test[0].day, middle.day):
        assert after.rankings[day] == base.rankings[day]
    # The change does reach the model: the next day's ranking moves.
    assert after.rankings[test[2].day] != base.rankings[test[2].day]
    # So does changing an earlier training day's picks change the first test day's ranking.
    moved = (replace(train[1], picks=tuple(str(c.arxiv_id) for c in train[1].candidates[:2])),)
    earlier = evaluate(history, (train[0], *moved), test, _tag_score, retrain_days=1)
    assert earlier.rankings[test[0].day] != base.rankings[test[0].day]


def test_without_history_or_training_days_the_first_day_keeps_the_tag_order() -> None:
    _history, _train, test = _days()
    report = evaluate((), (), test, _tag_score, retrain_days=1)
    first = test[0]
    assert report.fallback_days[0] == first.day
    scores = [_tag_score(c) for c in first.candidates]
    expected = [str(first.candidates[i].arxiv_id)
                for i in sorted(range(len(scores)), key=lambda i: -scores[i])]
    assert list(report.rankings[first.day]) == expected
    assert report.retrained[0] == test[1].day  # the first day's picks and non-picks now count


def test_every_ranking_is_a_permutation_of_the_days_candidates() -> None:
    history, train, test = _days()
    report = evaluate(history, train, test, _tag_score)
    for day in test:
        assert sorted(report.rankings[day.day]) == sorted(str(c.arxiv_id) for c in day.candidates)
    assert report.metrics["learned"].days == 3


def test_history_picks_listed_on_a_day_do_not_leak_into_earlier_models() -> None:
    history, train, test = _days()
    # The curator's note is dated before the listing: the same paper in the history.
    pick = next(c for c in test[0].candidates if c.arxiv_id in test[0].picks)
    leaky = (*history, replace(pick, day=date(2024, 12, 17)))
    assert (evaluate(leaky, train, test, _tag_score).rankings
            == evaluate(history, train, test, _tag_score).rankings)


def test_day_metrics() -> None:
    ranking = [f"p{i}" for i in range(30)]
    r10, r20, ndcg, rr = day_metrics(ranking, ["p0", "p15", "p29"])
    assert (r10, r20, rr) == (pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0)
    assert ndcg == pytest.approx(1.0 / (1 + 1 / np.log2(3) + 1 / np.log2(4)))
    assert day_metrics(ranking, ["p4"])[3] == pytest.approx(0.2)

"""The learned ranking in the product: `collect` trains it from the newsletter's own history
(notes, studio picks, earlier candidates) when that history changed, stores each candidate's
learned score, and falls back to the tag rules' order with no history or a broken model."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline import services, store
from pipeline.collect import tags
from pipeline.core.config import Settings
from pipeline.core.models import Candidate, Paper
from pipeline.curate.ranking import RankPaper, load_model, split_authors
from pipeline.interfaces import cli, present
from pipeline.services import ranking
from tests.arxiv_support import REAL_FEED, RSS_PATH, runtime_for, settings_for
from tests.support import FIXTURES, FakeClock, RecordingServer, Reply

DAY = date(2024, 11, 28)  # the real feed's announcement
HISTORY_DAYS = FIXTURES / "ranking" / "test-days.jsonl"


def seed_history(settings: Settings) -> tuple[list[str], list[str]]:
    """Real listing days with the curator's picks, stored as candidates of the days before
    DAY, and a note for each pick (as the curator writes them); returns (picks, others)."""
    days = [json.loads(line) for line in HISTORY_DAYS.read_text("utf-8").splitlines()]
    picks, others = [], []
    settings.paths.notes.mkdir(parents=True, exist_ok=True)
    with closing(store.connect(settings.db_path)) as conn, store.transaction(conn):
        for back, day in enumerate(reversed(days), start=1):
            on = DAY - timedelta(days=back)
            papers = [Paper(c["id"], c["title"], split_authors(c["authors"]), c["abstract"])
                      for c in day["candidates"]]
            store.upsert_papers(conn, papers, on)
            store.save_candidates(conn, on, [Candidate(p, ("llm",), 1.0) for p in papers])
            store.save_day(conn, on, "collected", len(papers), len(papers))
            for p in papers:
                if p.arxiv_id in day["picks"]:
                    picks.append(p.arxiv_id)
                    name = f"{on:%y%m%d} {p.arxiv_id}.md"
                    (settings.paths.notes / name).write_text(
                        f"https://arxiv.org/abs/{p.arxiv_id}\n\n*{p.title}* "
                        f"({', '.join(p.authors)})\n\n> {p.abstract}\n\n흥미로운 논문.\n\n#llm\n",
                        "utf-8")
                else:
                    others.append(p.arxiv_id)
    return picks, others


@pytest.fixture
def served(http_server: RecordingServer, tmp_path: Path) -> Settings:
    http_server.route(RSS_PATH, Reply(REAL_FEED.read_bytes()))
    return settings_for(tmp_path, http_server.url)


def stored_scores(settings: Settings, day: date = DAY) -> dict[str, float]:
    with closing(store.connect(settings.db_path)) as conn:
        return {c.paper.arxiv_id: c.score for c in store.load_candidates(conn, day)}


def test_no_history_keeps_the_tag_rules_order_and_writes_no_model(
    served: Settings, clock: FakeClock
) -> None:
    report = services.collect(served, DAY, runtime_for(clock))
    assert report.ranking is None and report.candidates > 0
    assert not ranking.model_path(served).exists()
    rules = tags.compile_rules(served.tags)
    with closing(store.connect(served.db_path)) as conn:
        found = store.load_candidates(conn, DAY)
    assert found and all(c.score == tags.match_paper(c.paper, rules).score for c in found)
    assert not any(line.startswith("ranked by") for line in present.lines(report))


def test_collect_trains_from_the_history_and_stores_learned_scores(
    served: Settings, clock: FakeClock
) -> None:
    picks, others = seed_history(served)
    assert picks and others
    report = services.collect(served, DAY, runtime_for(clock))
    assert report.ranking is not None and report.ranking.outcome == "trained"
    assert (report.ranking.positives, report.ranking.negatives) == (len(picks), len(others))
    assert report.ranking.trained_on == DAY
    assert any(line.startswith("ranked by the model learned from your picks (")
               for line in present.lines(report))

    model = load_model(ranking.model_path(served))
    assert model is not None and model.trained_on == DAY
    scores = stored_scores(served)
    with closing(store.connect(served.db_path)) as conn:
        papers = store.get_papers(conn, scores)
    expected = model.score([RankPaper.from_paper(papers[i], DAY) for i in scores])
    assert list(scores.values()) == pytest.approx(expected, abs=1e-5)
    # The learned scores order the day: not the tag rules' few integer values.
    assert len(set(scores.values())) > len(scores) // 2

    # Nothing new to learn from: the same model, the same scores.
    again = services.collect(served, DAY, runtime_for(clock))
    assert again.ranking is not None and again.ranking.outcome == "up to date"
    assert stored_scores(served) == scores


def test_new_feedback_retrains_and_a_note_about_the_day_itself_does_not(
    served: Settings, clock: FakeClock
) -> None:
    picks, others = seed_history(served)
    assert ranking.train(served, DAY, runtime_for(clock)).outcome == "trained"
    # A note about one of DAY's own candidates: a pick of the day being ranked never
    # informs its ranking, so the model stays as it was.
    services.collect(served, DAY, runtime_for(clock))
    todays = next(iter(stored_scores(served)))
    (served.paths.notes / f"{DAY:%y%m%d} today.md").write_text(
        f"https://arxiv.org/abs/{todays}\n\n*A paper of the day* (A. Author)\n\n노트.\n\n#llm\n",
        "utf-8")
    assert ranking.train(served, DAY, runtime_for(clock)).outcome == "up to date"
    # A pick in the studio on an earlier day is feedback: the model is trained again.
    with closing(store.connect(served.db_path)) as conn, store.transaction(conn):
        store.set_triage(conn, DAY - timedelta(days=1), [others[-1]], "picked")
    again = ranking.train(served, DAY, runtime_for(clock))
    assert again.outcome == "trained" and again.positives == len(picks) + 1


def test_a_broken_model_file_is_reported_and_the_tag_rules_order_kept(
    served: Settings, clock: FakeClock
) -> None:
    seed_history(served)
    assert ranking.train(served, DAY, runtime_for(clock)).outcome == "trained"
    ranking.model_path(served).write_bytes(b"not a model at all")
    report = services.collect(served, DAY, runtime_for(clock))
    assert report.ranking is None
    assert any(str(ranking.model_path(served)) in w and "tag rules" in w for w in report.warnings)
    rules = tags.compile_rules(served.tags)
    with closing(store.connect(served.db_path)) as conn:
        found = store.load_candidates(conn, DAY)
    assert all(c.score == tags.match_paper(c.paper, rules).score for c in found)


def test_rank_train_command_reports_as_text_and_json(
    served: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    picks, _ = seed_history(served)
    config = str(served.source)
    with pytest.raises(SystemExit) as done:
        cli.main(["--config", config, "rank", "train", "--date", DAY.isoformat(), "--json"])
    assert done.value.code in (0, None)
    data = json.loads(capsys.readouterr().out)
    assert data["report"] == "train" and data["outcome"] == "trained"
    assert data["positives"] == len(picks) and data["trained_on"] == DAY.isoformat()
    with pytest.raises(SystemExit):
        cli.main(["--config", config, "rank", "train", "--date", DAY.isoformat()])
    assert "up to date:" in capsys.readouterr().err

"""`digest rank eval`: the online evaluation from the command line, and its input errors."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from pipeline.interfaces.cli import main
from tests.support import FIXTURES

RANKING = FIXTURES / "ranking"
CONFIG = Path(__file__).parent.parent / "config" / "digest.toml"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["--config", str(CONFIG), "rank", "eval", *args])
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def _files() -> list[str]:
    return ["--history", str(RANKING / "history.jsonl"),
            "--train", str(RANKING / "train-days.jsonl.gz"),
            "--test", str(RANKING / "test-days.jsonl")]


def test_eval_json_gives_rankings_and_metrics_of_each_method(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(capsys, *_files(), "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    test_days = [json.loads(line) for line in (RANKING / "test-days.jsonl").read_text().splitlines()]
    assert list(report["rankings"]) == [d["date"] for d in test_days]
    for day in test_days:
        assert sorted(report["rankings"][day["date"]]) == sorted(c["id"] for c in day["candidates"])
    assert set(report["metrics"]) == {"learned", "tag rules", "random"}
    for metrics in report["metrics"].values():
        assert metrics["days"] == 3
        assert set(metrics) == {"recall@10", "recall@20", "ndcg@10", "mrr", "days"}
        assert all(0.0 <= metrics[k] <= 1.0 for k in ("recall@10", "recall@20", "ndcg@10", "mrr"))
    assert report["fallback_days"] == []
    assert report["history_used"] == 40


def test_eval_text_prints_a_line_per_day_then_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, *_files(), "--retrain-days", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("2025-01-08 ") and lines[2].startswith("2025-01-10 ")
    _, json_out, _ = _run(capsys, *_files(), "--retrain-days", "1", "--json")
    assert lines[1].split()[1:] == json.loads(json_out)["rankings"]["2025-01-09"]
    table = out.split("method")[1]
    for name in ("learned", "tag rules", "random"):
        assert f"\n{name} " in table


def test_eval_with_test_days_alone_starts_cold(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--test", str(RANKING / "train-days.jsonl.gz"), "--json")
    assert code == 0
    assert json.loads(out)["fallback_days"] == ["2025-01-06"]


def _bad(tmp_path: Path, lines: list[str], gz: bool = False) -> Path:
    good = (RANKING / "test-days.jsonl").read_text(encoding="utf-8").splitlines()
    text = "\n".join([good[0], *lines]) + "\n"
    path = tmp_path / ("bad.jsonl.gz" if gz else "bad.jsonl")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


@pytest.mark.parametrize(("line", "expected"), [
    ("{not json", ":2: not valid JSON"),
    ("[1, 2]", ":2: expected a JSON object"),
    ('{"date": "2025-13-01", "candidates": [], "picks": []}', ":2: date: expected a date"),
    ('{"date": "2025-01-20", "candidates": [{"id": "2501.00001", "authors": "", "abstract": ""}],'
     ' "picks": []}', ":2: title: expected a non-empty string"),
    ('{"date": "2025-01-20", "candidates": [], "picks": ["2501.00001"]}',
     ":2: picks: pick 2501.00001 is not among the day's candidates"),
    ('{"date": "2025-01-20", "candidates": {}, "picks": []}', ":2: candidates: expected a list"),
    ('{"date": "2025-01-08", "candidates": [], "picks": []}', ":2: date: a second line for"),
])
def test_bad_input_is_exit_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, expected: str,
) -> None:
    for gz in (False, True):
        path = _bad(tmp_path, [line], gz)
        code, out, err = _run(capsys, "--test", str(path))
        assert code == 2 and out == ""
        assert err.startswith(f"digest: error: {path}{expected}"), err
        assert err.count("\n") == 1


def test_bad_history_and_missing_and_damaged_files_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    history = tmp_path / "history.jsonl"
    shutil.copy(RANKING / "history.jsonl", history)
    with history.open("a", encoding="utf-8") as fh:
        fh.write('{"id": 5, "date": "2024-12-01", "title": "T", "authors": "", "abstract": ""}\n')
    code, _, err = _run(capsys, "--history", str(history), "--test", str(RANKING / "test-days.jsonl"))
    assert code == 2 and err.startswith(f"digest: error: {history}:41: paper.id: expected")
    missing = tmp_path / "nope.jsonl"
    code, _, err = _run(capsys, "--test", str(missing))
    assert code == 2 and err == f"digest: error: {missing}: file not found\n"
    damaged = tmp_path / "cut.jsonl.gz"
    damaged.write_bytes((RANKING / "train-days.jsonl.gz").read_bytes()[:500])
    code, _, err = _run(capsys, "--test", str(damaged))
    assert code == 2 and err.startswith(f"digest: error: {damaged}: damaged gzip file")
    code, _, err = _run(capsys, "--train", str(RANKING / "test-days.jsonl"),
                        "--test", str(RANKING / "test-days.jsonl"))
    assert code == 2 and "both a training and a test day" in err

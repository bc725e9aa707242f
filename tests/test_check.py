"""`digest check FILE [--json]` on notes and digests: parsed entries, lint errors and warnings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from pipeline import store
from pipeline.interfaces.cli import main
from tests.sample_day import DAY, REFERENCE, add_candidates, sample_papers
from tests.support import FIXTURES, newsletter_config, write_newsletter

VARIANTS = FIXTURES / "notes" / "variants"


def _check(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["check", *args])
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no config/digest.toml here: structural checks only
    return tmp_path


def test_a_note_as_json_gives_no_date_and_one_entry(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _check([str(VARIANTS / "240206 Qwen 1.5.md"), "--json"], capsys)
    assert (code, err) == (0, "")
    (data,) = json.loads(out)
    assert data["date"] is None and len(data["entries"]) == 1
    assert data["path"] == str(VARIANTS / "240206 Qwen 1.5.md") and data["status"] == "ok"
    (entry,) = data["entries"]
    assert entry["url"] == "https://qwenlm.github.io/blog/qwen1.5/"
    assert entry["arxiv_id"] is None and entry["title"] == "Qwen 1.5" and entry["line"] == 1
    # The repository URL is a link: in no language (not the first English paragraph).
    assert entry["links"] == ["https://github.com/QwenLM/Qwen1.5"]
    assert len(entry["notes"]["ko"]) == 3 and len(entry["notes"]["en"]) == 3
    assert entry["notes"]["en"][0].startswith("Qwen 1.5 is released.")
    assert entry["tags"] == ["llm"]


def test_a_paper_note_as_json(no_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = FIXTURES / "notes" / "2412" / "241204 TokenFlow.md"
    code, out, _ = _check([str(note), "--json"], capsys)
    ((entry,),) = [obj["entries"] for obj in json.loads(out)]
    assert code == 0 and entry["arxiv_id"] == "2412.03069" and entry["url"] is None
    assert entry["authors"][0] == "Liao Qu" and "384×384" in entry["abstract"]
    assert entry["tags"] == ["vq", "image-generation", "image-text"]


@pytest.mark.parametrize(
    ("name", "summary", "warning"),
    [
        ("240103 Instruct-Imagen.md", "ok, note, 1 warning", "Korean commentary without English"),
        ("240110 PIXART-δ.md", "ok, note, 1 warning", "Korean commentary without English"),
        ("240206 Qwen 1.5.md", "ok, note", None),
        ("250326 Wan.md", "ok, note", None),
    ],
)
def test_notes_with_a_language_missing_get_a_warning_only(
    no_config: Path, capsys: pytest.CaptureFixture[str], name: str, summary: str,
    warning: str | None,
) -> None:
    code, out, err = _check([str(VARIANTS / name)], capsys)
    assert code == 0 and out == f"{VARIANTS / name}: {summary}\n"
    if warning is None:
        assert err == ""
    else:
        assert err.startswith(f"digest: warning: {VARIANTS / name}:1: ") and warning in err


def test_the_reference_issue_is_clean(no_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _check([str(REFERENCE)], capsys)
    assert (code, out, err) == (0, f"{REFERENCE}: ok, 10 entries\n", "")


def _digest(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "d.txt"
    path.write_text("2024-12-05\n" + "".join(entries), encoding="utf-8")
    return path


KO_EN = "Title A\n(X)\narXiv:2412.03572\nAbs.\n한국어\nEnglish\n#t\n"


def test_the_same_paper_twice_is_an_error(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _digest(no_config, KO_EN, "Title B\n(Y)\narXiv:2412.03572v2\n메모\nmemo\n#t\n",
                   "title  a.\n(Z)\n메모\nmemo\n#t\n")
    code, out, err = _check([str(path)], capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"digest: error: {path}:9: the same paper twice: arXiv:2412.03572 is also the entry at "
        "line 2",
        f"digest: error: {path}:15: the same paper twice: 'title  a.' is also the entry at "
        "line 2",
        f"digest: error: {path}: 2 errors (see above)",
    ]


def test_one_language_without_the_other_is_an_error(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _digest(no_config, "Only Korean\n(X)\nAbs.\n한국어만\n#t\n",
                   "Only English\n(Y)\nAbs.\nEnglish only\n(https://example.org)\n#t\n",
                   "Only a link\n(Y)\nAbs.\n한국어\nhttps://example.org/x\n#t\n",
                   "No words yet\n(Z)\nAbs.\n#\n")
    code, _, err = _check([str(path)], capsys)
    assert code == 2
    assert err.splitlines()[:3] == [
        f"digest: error: {path}:2: 'Only Korean': Korean commentary without English "
        "(the en edition would show none)",
        f"digest: error: {path}:7: 'Only English': English commentary without Korean "
        "(the ko edition would show none)",
        f"digest: error: {path}:13: 'Only a link': Korean commentary without English "
        "(the en edition would show none)",
    ]
    # The entry with no commentary at all is no language error, only a warning (issue #10).
    assert err.splitlines()[3] == (f"digest: warning: {path}:19: 'No words yet': no commentary "
                                   "(write some, or delete the entry)")
    assert len(err.splitlines()) == 5


def test_a_malformed_digest_is_one_line_exit_2(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _digest(no_config, "A title\nno authors\n")
    code, out, err = _check([str(path)], capsys)
    assert (code, out) == (2, "")
    assert err == (f"digest: error: {path}:3: expected the authors line '(Author One, Author "
                   "Two)' after the title 'A title' (line 2)\n")


def test_an_unusable_note_is_one_line_exit_2(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = no_config / "n.md"
    note.write_text("https://arxiv.org/abs/2412.03572\n\n한국어\n> a quote later\n",
                    encoding="utf-8")
    message = ("a '>' quote after the commentary started (expected the abstract right after "
               "the title)")
    code, out, err = _check([str(note)], capsys)
    assert (code, out, err) == (2, "", f"digest: error: {note}:4: {message}\n")
    code, out, err = _check([str(note), "--json"], capsys)
    (data,) = json.loads(out)
    assert code == 2 and data["status"] == "error" and data["entries"] == []
    assert data["messages"] == [{"level": "error", "line": 4, "path": None, "kind": "refused",
                                 "message": message}]
    assert err == f"digest: error: {note}: 1 of 1 files with errors\n"


@pytest.fixture
def newsletter_dir(tmp_path: Path) -> Path:
    """A newsletter with a config (two tags, languages ko+en), notes, and a store holding
    three of the sample papers."""
    write_newsletter(tmp_path, tags={"reward-model": {"keywords": ["reward model"]},
                                     "vq": {"keywords": ["vector quantization"]}})
    notes = tmp_path / "notes"
    notes.mkdir()
    for name in ("241202 Free Process Rewards without Process Labels.md", "241202 RandAR.md",
                 "241204 TokenFlow.md"):
        shutil.copy(FIXTURES / "notes" / "2412" / name, notes / name)
    (notes / "broken.md").write_text("no url here\n", encoding="utf-8")
    papers = {p.arxiv_id: p for p in sample_papers()}
    with closing(store.connect(tmp_path / "data" / "digest.db")) as conn:
        add_candidates(conn, DAY, [(papers[i], (), 1.0)
                                   for i in ("2412.01981", "2412.03069", "2412.02692")])
    return tmp_path


def test_with_a_config_and_store_unknown_tags_ids_and_waiting_notes_are_warnings(
    newsletter_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _digest(newsletter_dir, "Free Process Rewards without Process Labels\n(L)\n"
                   "arXiv:2412.01981\nAbs.\n한국어\nEnglish\n#reward_model #Vq\n",
                   "Unknown\n(U)\narXiv:2412.99999\nAbs.\n한국어\nEnglish\n#world-models #vq\n")
    config = newsletter_dir / "config" / "digest.toml"
    code, out, err = _run_with_config(config, path, capsys)
    notes = newsletter_dir / "notes"
    assert code == 0 and out == f"{path}: ok, 2 entries, 4 warnings\n"
    assert err.splitlines() == [
        f"digest: warning: {path}:9: 'Unknown': tag #world-models not in the config's [tags]",
        f"digest: warning: {path}:9: arXiv:2412.99999 is not among the stored papers "
        "(`digest build` will look it up on arXiv)",
        f"digest: warning: {notes / '241202 RandAR.md'}:1: waits for its paper arXiv:2412.01827 "
        "(never collected)",
        f"digest: warning: {notes / 'broken.md'}:1: note not used: expected the paper's URL "
        "(e.g. https://arxiv.org/abs/2412.01981) on the first line, got 'no url here'",
    ]


def _run_with_config(
    config: Path, path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["--config", str(config), "check", str(path)])
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_a_config_with_one_language_does_not_ask_for_the_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = newsletter_config(tmp_path, newsletter={"from": "D <digest@example.org>",
                                                     "languages": ["ko"]})
    path = _digest(tmp_path, "Only Korean\n(X)\nAbs.\n한국어만\n#t\n")
    code, out, err = _run_with_config(config, path, capsys)
    assert code == 0 and out == f"{path}: ok, 1 entry, 1 warning\n"
    assert err.startswith(f"digest: warning: {path}:2: 'Only Korean': tag #t ")


def test_thousands_of_findings_are_capped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = "Same Title\n(A)\nAbs.\n한국어\nEnglish\n#x\n"
    path = tmp_path / "many.txt"
    path.write_text("2024-12-05\n" + entry * 300, encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["--config", str(tmp_path / "none.toml"), "check", str(path)])
    err = capsys.readouterr().err.splitlines()
    assert info.value.code == 2
    assert len(err) == 52  # 50 findings, the count of the rest, the closing error
    assert err[-2] == "digest: … 249 more findings not shown"
    assert err[-1] == f"digest: error: {path}: 299 errors (see above)"


def _folder(tmp_path: Path) -> Path:
    """Notes of every status in nested folders, a digest, and files check must pass over."""
    root = tmp_path / "archive"
    (root / "2020").mkdir(parents=True)
    (root / ".obsidian").mkdir()
    shapes = FIXTURES / "notes" / "shapes"
    shutil.copy(shapes / "210318 CvT.md", root / "2020" / "a.md")  # ok: no commentary at all
    shutil.copy(shapes / "241126 Scaling Speech-Text Pre-training with Synthetic Interleaved "
                "Data.md", root / "b.md")  # a stray word in its tags line: a warning
    (root / "c.md").write_text("https://arxiv.org/abs/2412.03572\n\n한국어\n> late quote\n",
                               encoding="utf-8")  # refused
    shutil.copy(REFERENCE, root / "d.txt")
    (root / ".obsidian" / "app.md").write_text("not a note", encoding="utf-8")
    (root / "image.png").write_bytes(b"\x89PNG")
    return root


def test_a_folder_is_checked_recursively_in_one_process(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder(no_config)
    code, out, err = _check([str(root)], capsys)
    assert code == 2
    assert out.splitlines() == [
        f"{root / '2020' / 'a.md'}: ok, note",
        f"{root / 'b.md'}: ok, note, 1 warning",
        f"{root / 'c.md'}:4: error: a '>' quote after the commentary started (expected the "
        "abstract right after the title)",
        f"{root / 'd.txt'}: ok, 10 entries",
        "  refused: 1 error in 1 file",  # counts by kind, errors first
        "  tag-stray-word: 1 warning in 1 file",
        "checked 4 files: 2 ok, 1 with warnings, 1 with errors",
    ]
    assert err.splitlines() == [
        f"digest: warning: {root / 'b.md'}:13: 'a' in the #tags line is not a tag: ignored "
        "(write #a to make it one)",
        f"digest: error: {root / 'c.md'}:4: a '>' quote after the commentary started (expected "
        "the abstract right after the title)",
        "digest: error: 1 of 4 files with errors (see above)",
    ]


def test_files_and_folders_mixed_and_a_missing_path(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder(no_config)
    code, out, _ = _check([str(root / "2020"), str(root / "b.md"), str(no_config / "gone.txt")],
                          capsys)
    assert code == 2
    assert out.splitlines()[-4:] == [f"{no_config / 'gone.txt'}: error: no such file",
                                     "  refused: 1 error in 1 file",
                                     "  tag-stray-word: 1 warning in 1 file",
                                     "checked 3 files: 1 ok, 1 with warnings, 1 with errors"]
    # every file well: exit 0, still one line each and the summary
    code, out, _ = _check([str(root / "2020"), str(root / "b.md")], capsys)
    assert code == 0
    assert out.splitlines()[-1] == "checked 2 files: 1 ok, 1 with warnings, 0 with errors"


def test_json_is_one_object_per_file(no_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _folder(no_config)
    code, out, err = _check([str(root), "--json"], capsys)
    data = json.loads(out)
    assert code == 2 and err == "digest: error: 1 of 4 files with errors\n"
    assert [(Path(d["path"]).name, d["status"]) for d in data] == [
        ("a.md", "ok"), ("b.md", "warnings"), ("c.md", "error"), ("d.txt", "ok")]
    a, b, c, d = data
    assert a["date"] is None and a["entries"][0]["arxiv_id"] == "2103.15808"
    assert b["messages"] == [{
        "level": "warning", "line": 13, "path": None, "kind": "tag-stray-word",
        "message": "'a' in the #tags line is not a tag: ignored (write #a to make it one)"}]
    assert b["entries"][0]["tags"] == ["speech-text", "synthetic-data"]
    assert c["entries"] == [] and c["messages"][0]["level"] == "error"
    assert d["date"] == "2024-12-05" and len(d["entries"]) == 10


def test_a_note_reader_warning_reaches_the_single_file_check(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = no_config / "n.md"
    note.write_text("https://arxiv.org/abs/2412.03572\n\n한국어\n<english>\nEnglish\n\n#t\n",
                    encoding="utf-8")
    code, out, err = _check([str(note)], capsys)
    assert (code, out) == (0, f"{note}: ok, note, 1 warning\n")
    assert err == (f"digest: warning: {note}:4: <english> is never closed: the English ends at "
                   "the #tags line 7\n")


def test_a_folder_without_notes_or_digests_is_bad_input(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (no_config / "empty").mkdir()
    (no_config / "empty" / "photo.jpg").write_bytes(b"\xff\xd8")
    code, out, err = _check([str(no_config / "empty")], capsys)
    assert (code, out) == (2, "")
    assert err == ("digest: error: no *.md, *.markdown or *.txt files to check under "
                   f"{no_config / 'empty'}\n")


HEAVY = ("flask", "jinja2", "premailer", "arxiv", "feedparser", "requests", "apscheduler",
         "lxml", "waitress", "sqlite3", "pylatexenc", "babel")


@pytest.mark.parametrize(("note", "latex"), [("variants/240206 Qwen 1.5.md", False),
                                              ("2412/241204 TokenFlow.md", True)])
def test_checking_a_note_imports_only_what_it_uses(tmp_path: Path, note: str,
                                                   latex: bool) -> None:
    # What makes `digest check` start fast: no renderer, network or store on its path, and
    # pylatexenc only for a note that holds LaTeX. (A structural check, not a timing.)
    script = ("import sys\nfrom pipeline.interfaces.cli import main\ntry:\n    main(['check', sys.argv[1]])\n"
              "except SystemExit:\n    pass\nprint(' '.join(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(FIXTURES / "notes" / note)],
                          cwd=tmp_path, capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in proc.stdout.split()}
    expected = {"pylatexenc"} if latex else set()
    assert loaded & set(HEAVY) == expected


def test_the_notes_folder_is_reported_once_for_many_digests(
    newsletter_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = ("Free Process Rewards without Process Labels\n(L)\narXiv:2412.01981\nAbs.\n한국어\n"
             "English\n#reward-model\n")
    drafts = newsletter_dir / "drafts"
    drafts.mkdir()
    for name in ("2024-12-05.txt", "2024-12-06.txt"):
        (drafts / name).write_text("2024-12-05\n" + entry, encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["--config", str(newsletter_dir / "config" / "digest.toml"), "check", str(drafts)])
    out, err = capsys.readouterr()
    notes = newsletter_dir / "notes"
    assert info.value.code == 0
    assert out.splitlines() == [f"{drafts / '2024-12-05.txt'}: ok, 1 entry, 2 warnings",
                                f"{drafts / '2024-12-06.txt'}: ok, 1 entry",
                                "  note-unused: 1 warning in 1 file",
                                "  waiting: 1 warning in 1 file",
                                "checked 2 files: 1 ok, 1 with warnings, 0 with errors"]
    assert [line.split(": ")[2] for line in err.splitlines()] == [
        f"{notes / '241202 RandAR.md'}:1", f"{notes / 'broken.md'}:1"]


def test_an_unreadable_file_is_one_bad_file_not_the_end_of_the_run(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder(no_config)
    (root / "e.txt").symlink_to(no_config / "nowhere.txt")  # a broken link
    code, out, _ = _check([str(root)], capsys)
    assert code == 2
    assert f"{root / 'e.txt'}: error: no such file" in out.splitlines()
    assert out.splitlines()[-1] == "checked 5 files: 2 ok, 1 with warnings, 2 with errors"


def _archive(root: Path, korean_only: int) -> Path:
    """Many Korean-only notes (the old archive), one English-only note, one second title."""
    root.mkdir()
    for i in range(korean_only):
        (root / f"k{i:02}.md").write_text(
            f"https://arxiv.org/abs/2001.{10000 + i}\n\n*Paper {i}* (Ann Lee)\n\n한국어 코멘트.\n",
            encoding="utf-8")
    (root / "z-english.md").write_text(
        "https://arxiv.org/abs/2002.00001\n\n*English Only* (Ann Lee)\n\nOnly English here.\n",
        encoding="utf-8")
    (root / "z-second.md").write_text(
        "https://arxiv.org/abs/2002.00002\n\n*Second* (Ann Lee, Bo Kim)\n"
        "Second: Another Version (Ann Lee, Bo Kim)\n\n한국어.\n", encoding="utf-8")
    return root


def test_a_folder_check_counts_warnings_by_kind_and_shows_a_few_of_each(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _archive(no_config / "notes", 5)
    code, out, err = _check([str(root)], capsys)
    assert code == 0
    assert out.splitlines()[-5:] == [
        "  no-english: 6 warnings in 6 files",
        "  no-korean: 1 warning in 1 file",
        "  second-title: 1 warning in 1 file",
        "  (3 more warnings not shown: the first 3 of each kind are; all with `digest -v check`)",
        "checked 7 files: 0 ok, 7 with warnings, 0 with errors",
    ]
    shown = err.splitlines()
    assert sum("Korean commentary without English" in line for line in shown) == 3
    # the rare kinds are all there, with their file and line
    assert f"digest: warning: {root / 'z-english.md'}:1: 'English Only': English commentary " \
           "without Korean (the ko edition would show none)" in shown
    assert any(line.startswith(f"digest: warning: {root / 'z-second.md'}:4: a second title")
               for line in shown)
    with pytest.raises(SystemExit):
        main(["-v", "check", str(root)])
    out_v, err_v = capsys.readouterr()
    assert sum("Korean commentary without English" in line for line in err_v.splitlines()) == 6
    assert "more warnings not shown" not in out_v


def test_language_warnings_follow_the_editions_the_config_publishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _archive(tmp_path / "notes", 2)
    for languages, kinds in ((["ko"], ["no-korean"]), (["en"], ["no-english"]),
                             (["ko", "en"], ["no-english", "no-korean"])):
        config = newsletter_config(tmp_path, newsletter={"from": "D <digest@example.org>",
                                                         "languages": languages})
        with pytest.raises(SystemExit):
            main(["--config", str(config), "check", "--json", str(root)])
        data = json.loads(capsys.readouterr().out)
        found = sorted({m["kind"] for d in data for m in d["messages"]} - {"second-title"})
        assert found == kinds, languages


def test_a_note_about_several_papers_checks_as_one_entry_each(
    no_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = no_config / "190901 Papers.md"
    note.write_text("SpanBERT https://arxiv.org/abs/1907.10529\n"
                    "ALBERT https://arxiv.org/abs/1909.11942\n\n좋은 방법들.\n\nGood methods.\n"
                    "#pretraining\n", encoding="utf-8")
    code, out, _ = _check([str(note), "--json"], capsys)
    (data,) = json.loads(out)
    assert code == 0 and [e["arxiv_id"] for e in data["entries"]] == ["1907.10529",
                                                                       "1909.11942"]
    assert [m["kind"] for m in data["messages"]] == ["multi-paper"]

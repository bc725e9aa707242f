"""The digest format: the reference issue, round trips, and one clear line for bad input."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.digest_format import (
    END_OF_PAPERS,
    parse_digest,
    parse_reader_text,
    parse_tags_line,
    read_digest,
    reader_heading,
    write_digest,
    write_reader_entry,
)
from pipeline.core.errors import FormatError
from pipeline.core.models import Digest, Entry, has_hangul
from pipeline.interfaces.cli import main
from tests.support import FIXTURES

REFERENCE = FIXTURES / "digest" / "2024-12-05.txt"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def reference_blocks() -> list[list[str]]:
    """The reference file split into entries independently of the parser: an entry ends at
    a line that starts with '#'."""
    lines = REFERENCE.read_text(encoding="utf-8").split("\n")[1:]
    blocks: list[list[str]] = [[]]
    for line in lines:
        blocks[-1].append(line)
        if line.startswith("#"):
            blocks.append([])
    return [b for b in blocks if b]


def test_check_json_on_reference_gives_every_field_exactly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(["check", "--json", str(REFERENCE)], capsys)
    assert code == 0
    (data,) = json.loads(out)  # one object per file checked
    assert data["path"] == str(REFERENCE)  # the repository's config may warn about tags
    assert data["status"] == ("warnings" if data["messages"] else "ok")
    assert all(m["level"] == "warning" for m in data["messages"])
    assert data["date"] == "2024-12-05"
    blocks = reference_blocks()
    assert len(data["entries"]) == len(blocks) == 10
    for entry, block in zip(data["entries"], blocks, strict=True):
        title, authors, abstract, *commentary, tags = block
        assert entry["title"] == title
        assert entry["authors"] == authors[1:-1].split(", ")
        assert entry["abstract"] == abstract
        assert entry["arxiv_id"] is None
        assert entry["notes"]["ko"] + entry["notes"]["en"] == commentary
        assert entry["links"] == []
        assert all(any("\uac00" <= ch <= "\ud7a3" for ch in p) for p in entry["notes"]["ko"])
        assert entry["tags"] == [t.lstrip("#") for t in tags.split()]
    nemotron = data["entries"][1]
    assert nemotron["title"].startswith("Nemotron-CC")
    assert len(nemotron["notes"]["ko"]) == 2 and len(nemotron["notes"]["en"]) == 2
    assert nemotron["tags"] == ["corpus", "pretraining"]
    assert nemotron["line"] == 8


def test_fmt_gives_back_the_reference_bytes(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    raw = REFERENCE.read_bytes()
    assert not raw.endswith(b"\n")  # the reference has no final newline; fmt keeps that
    with pytest.raises(SystemExit) as exit_info:
        main(["fmt", str(REFERENCE)])
    assert exit_info.value.code == 0
    assert capsysbinary.readouterr().out == raw


def test_blank_lines_iso_date_and_id_lines_are_read() -> None:
    text = (
        "\n2024-12-05\n\n"
        "A Title (with parentheses)\n(Ann One, Bo Two)\narXiv:2412.01981v2\nAbstract.\n"
        "한국어 문단.\nEnglish paragraph.\n#reward-model\n\n\n"
        "Second\n(Cy Three)\nhttps://arxiv.org/abs/2412.02595\nAbstract two.\n#corpus\n\n"
        "Old style\n(Di Four)\nhttps://arxiv.org/abs/quant-ph/0201082v1\nAbs.\n#physics\n"
    )
    digest = parse_digest(text, "x.txt")
    assert digest.date == date(2024, 12, 5) and digest.date_style == "iso"
    first, second, third = digest.entries
    assert first.title == "A Title (with parentheses)"
    assert (first.arxiv_id, first.version) == ("2412.01981", 2)
    assert first.notes_ko == ("한국어 문단.",) and first.notes_en == ("English paragraph.",)
    assert (second.arxiv_id, second.version) == ("2412.02595", None)
    assert (third.arxiv_id, third.version) == ("quant-ph/0201082", 1)
    assert first.line == 4 and second.line == 13


def test_english_date_line_round_trips() -> None:
    text = "December 5, 2024\nT\n(A)\nAbs.\n#x"
    digest = parse_digest(text)
    assert digest.date == date(2024, 12, 5) and digest.date_style == "en"
    assert write_digest(digest) == text


def test_abs_url_is_written_back_as_canonical_id_line() -> None:
    digest = parse_digest("2024-12-05\nT\n(A)\nhttps://arxiv.org/abs/2412.01981v3\nAbs.\n#x\n")
    assert write_digest(digest) == "2024-12-05\nT\n(A)\narXiv:2412.01981v3\nAbs.\n#x\n"


def test_link_entry_and_untagged_entry_round_trip() -> None:
    text = "2024-12-05\nQwen 1.5\n(Qwen Team)\nhttps://qwenlm.github.io/blog/qwen1.5/\n" \
           "Qwen 1.5가 나왔습니다.\n#llm\nUntagged\n(A)\nAbs.\n#\n"
    digest = parse_digest(text)
    assert digest.entries[0].url == "https://qwenlm.github.io/blog/qwen1.5/"
    assert digest.entries[0].abstract == "" and digest.entries[0].notes_ko
    assert digest.entries[1].tags == ()
    assert write_digest(digest) == text


@pytest.mark.parametrize(
    ("content", "line", "expected"),
    [
        ("T\n(A)\nAbs.\n#x", 1, "expected a date line like"),
        ("2024-12-05\nTitle\nNo authors here\n#x", 3, "expected the authors line"),
        (
            "2024-12-05\nOne\n(A)\nAbs one.\nComment.\nTwo\n(B)\nAbs two.\n#x",
            6,
            "expected a #tags line to end the entry 'One' (line 2) before the next entry",
        ),
        ("2024-12-05\nOne\n(A)\nAbs one.\n한국어", None, "file ends mid-entry"),
        ("2024-12-05\nOne", 2, "file ends after the title"),
        ("", None, "empty file: expected a date line"),
        ("\n\n  \n", None, "empty file: expected a date line"),
        ("2024-13-45\nT\n(A)\nAbs\n#x", 1, "expected a date line like"),
    ],
)
def test_malformed_digests_give_one_line_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, line: int | None,
    expected: str,
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    code, out, err = run_cli(["check", str(path)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    where = f"{path}:{line}: " if line else f"{path}: "
    assert err.startswith(f"digest: error: {where}")
    assert expected in err


def test_binary_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    code, _, err = run_cli(["check", str(path)], capsys)
    assert code == 2
    assert err == f"digest: error: {path}: binary file: expected UTF-8 text\n"


def test_euc_kr_file_is_refused_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "euckr.txt"
    path.write_bytes(REFERENCE.read_text(encoding="utf-8").encode("cp949", errors="replace"))
    code, _, err = run_cli(["fmt", str(path)], capsys)
    assert code == 2
    assert err.startswith(f"digest: error: {path}:1: not UTF-8 text")
    assert "EUC-KR" in err and err.count("\n") == 1


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_file_is_refused_as_utf16_not_binary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    """Notepad's "Unicode" (UTF-16, with its byte-order mark) was called a binary file."""
    path = tmp_path / "draft.txt"
    path.write_bytes(("\ufeff" + REFERENCE.read_text(encoding="utf-8")).encode(encoding))
    code, _, err = run_cli(["check", str(path)], capsys)
    assert code == 2 and err == (
        f"digest: error: {path}: UTF-16 text, expected UTF-8 "
        "(convert it with `iconv -f utf-16 -t utf-8`)\n")


def test_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["check", str(tmp_path / "nope.txt")], capsys)
    assert code == 2 and "no such file" in err and err.count("\n") == 1


def test_reading_a_file_keeps_its_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("2024년 12월 5일\nT\n(A)\nAbs.\n#x\n", encoding="utf-8")
    assert write_digest(read_digest(path)) == path.read_text(encoding="utf-8")


# --- property: write -> parse -> write is stable --------------------------------------------

_words = st.text(
    alphabet=st.characters(
        codec="utf-8",
        categories=("L", "N", "P", "Zs", "So"),
        exclude_characters="\n\r\x85\u2028\u2029\x0b\x0c\x1c\x1d\x1e",
    ),
    min_size=1,
    max_size=40,
).map(str.strip).filter(lambda w: bool(w) and parse_tags_line(w) is None)
_hangul = st.text(alphabet="가나다라마바사아자차카타파하한국어논문", min_size=1, max_size=12)
_url = st.from_regex(r"https://[a-z]{1,10}\.org/[a-z0-9_]{0,10}", fullmatch=True)
_tag = st.text(alphabet="abcxyz-_0123한글", min_size=1, max_size=12)


@st.composite
def _entries(draw: st.DrawFn) -> Entry:
    title = draw(_words)
    if draw(st.booleans()):
        title = f"{title} ({draw(_words)})"
    ko = [f"{draw(_hangul)} {draw(_words)} {draw(_url)} 🎉" for _ in range(draw(st.integers(0, 2)))]
    en = [f"{draw(_words)} ({draw(_url)})" for _ in range(draw(st.integers(0, 2)))]
    has_id = draw(st.booleans())
    return Entry(
        title=title,
        authors=tuple(w.replace(",", " ").strip() or "X" for w in draw(
            st.lists(_words, min_size=1, max_size=5))),
        # An abstract is English by the format's rule: a Hangul line after the authors is
        # commentary, so generated abstracts carry none.
        abstract=f"Abstract: {draw(_words.filter(lambda w: not has_hangul(w)))}",
        commentary=tuple(ko + en),
        tags=tuple(draw(st.lists(_tag, min_size=1, max_size=4))),
        arxiv_id=f"24{draw(st.integers(10, 12))}.{draw(st.integers(10000, 99999))}"
        if has_id else None,
        version=draw(st.one_of(st.none(), st.integers(1, 9))) if has_id else None,
    )


@settings(max_examples=int(os.environ.get("DIGEST_HYPOTHESIS_EXAMPLES", "150")), deadline=None)
@given(
    entries=st.lists(_entries(), min_size=0, max_size=5),
    day=st.dates(min_value=date(1991, 1, 1), max_value=date(2099, 12, 31)),
    style=st.sampled_from(["ko", "iso", "en"]),
    final_newline=st.booleans(),
)
@pytest.mark.slow
def test_write_parse_write_is_stable(
    entries: list[Entry], day: date, style: str, final_newline: bool
) -> None:
    digest = Digest(day, tuple(entries), style, final_newline)  # type: ignore[arg-type]
    text = write_digest(digest)
    parsed = parse_digest(text)
    assert write_digest(parsed) == text
    assert parsed.date == day
    for got, want in zip(parsed.entries, entries, strict=True):
        assert (got.title, got.abstract, got.commentary, got.tags) == (
            want.title, want.abstract, want.commentary, want.tags)
        assert (got.arxiv_id, got.version) == (want.arxiv_id, want.version)


def test_writing_text_that_reads_as_a_tags_line_is_refused() -> None:
    entry = Entry(title="#MeToo #Research", authors=("A",), abstract="Abs.", tags=("x",))
    with pytest.raises(FormatError, match="would read back as a #tags line"):
        write_digest(Digest(date(2024, 12, 5), (entry,)))


def test_check_reports_format_error_type() -> None:
    with pytest.raises(FormatError) as info:
        parse_digest("nonsense", "f.txt")
    assert info.value.line == 1 and info.value.path == "f.txt"


def test_a_zero_byte_past_the_first_8_kb_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.txt"
    text = REFERENCE.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) > 8192
    path.write_text(text + "\nmore\x00text\n", encoding="utf-8")
    code, out, err = run_cli(["check", str(path)], capsys)
    line = text.count("\n") + 2
    assert (code, out) == (2, "")
    assert err == (f"digest: error: {path}:{line}: a zero byte (NUL) in the text: the file is "
                   "damaged or not text (remove it)\n")


# --- the reader's form (an email's text part, site/issues/D.txt) ------------------------------


def _reader_text(digest: Digest, label: str = "Abstract:") -> str:
    lines = [reader_heading("ML Papers Digest", REF_DAY, "en")]
    for e in digest.entries:
        lines += ["", "", *write_reader_entry(e, label)]
    return "\n".join([*lines, "", END_OF_PAPERS, "* Another paper", "  https://arxiv.org/abs/2401.99999",
                      "", "-- ", "ML Papers Digest"]) + "\n"


REF_DAY = date(2024, 12, 5)


def test_reader_form_reads_back_the_reference_and_the_old_layout(tmp_path: Path) -> None:
    ref = read_digest(FIXTURES / "digest" / "2024-12-05.txt")
    for label in ("Abstract:", "초록:"):
        parsed = parse_reader_text(_reader_text(ref, label), "t.txt")
        assert parsed.date == REF_DAY
        assert [(e.title, e.authors, e.abstract, e.commentary, e.tags, e.arxiv_id, e.url)
                for e in parsed.entries] == [
            (e.title, e.authors, e.abstract, e.commentary, e.tags, e.arxiv_id, e.url)
            for e in ref.entries]
    # an earlier D.txt (a bare date line, the spaced digest) still reads
    old = write_digest(ref, spaced=True, abs_urls=True).rstrip("\n") + "\n-- \nlinks\n"
    assert parse_reader_text(old, "old.txt").entries == parse_digest(old, "old.txt").entries


def test_reader_form_errors_name_the_line() -> None:
    with pytest.raises(FormatError, match=r"t.txt:1: expected a heading line"):
        parse_reader_text("Not a heading\n", "t.txt")
    with pytest.raises(FormatError, match=r"t.txt:5: expected the authors line"):
        parse_reader_text("Digest · December 5, 2024\n\n\nA title\nno authors\n#t\n", "t.txt")
    with pytest.raises(FormatError, match=r"has no #tags line"):
        parse_reader_text("Digest · December 5, 2024\n\nA title\n(A)\n\nnote\n", "t.txt")
    # the rule line ends the papers; a title that is the rule line is still a paper
    text = ("Digest · December 5, 2024\n\n" + END_OF_PAPERS + "\n(A)\n\nAbstract: x\n#t\n\n"
            + END_OF_PAPERS + "\nWeb: https://example.org\n")
    [entry] = parse_reader_text(text, "t.txt").entries
    assert (entry.title, entry.abstract) == (END_OF_PAPERS, "x")

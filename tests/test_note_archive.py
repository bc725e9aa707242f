"""The last shapes of the curator's archive (issue #23): each class read field by field, the
near-misses that must stay as they were, and a warning of a stable kind wherever the reader
guessed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.errors import FormatError
from pipeline.core.models import Entry
from pipeline.curate import notes as N
from pipeline.curate.notes import Note, parse_note_file, read_notes

URL = "https://arxiv.org/abs/2005.04318"
TITLE = "*Big Self-Supervised Models are Strong Semi-Supervised Learners* (Ting Chen, Simon Kornblith)"


def _note(text: str, name: str = "200504 Big Models.md") -> Note:
    return parse_note_file(text, name)


def _kinds(note: Note) -> list[str]:
    return [w.kind for w in note.warnings]


# --- a second "Title (Authors)" line: another version's title ------------------------------


@pytest.mark.parametrize("second", [
    "Big Self-Supervised Models are Strong Learners (Ting Chen, Simon Kornblith, Kevin Swersky)",
    "*SimCLRv2: Big Self-Supervised Models* (Ting Chen, Simon Kornblith)",
    "Big Self-Supervised Models (Ting Chen)",  # one author, but the same title's words
])
@pytest.mark.parametrize("where", ["after-title", "after-abstract"])
def test_a_second_title_line_is_not_published_and_the_language_gap_shows(
    second: str, where: str
) -> None:
    abstract = "> We present a simple method for semi-supervised learning."
    body = ([second, abstract] if where == "after-title" else [abstract, second])
    note = _note("\n".join([URL, "", TITLE, *body, "", "레이블이 적을 때 큰 모델이 유리하다.",
                            "", "#semi-supervised", ""]))
    entry = note.entry
    assert entry.title == "Big Self-Supervised Models are Strong Semi-Supervised Learners"
    assert entry.authors == ("Ting Chen", "Simon Kornblith")
    assert entry.abstract == "We present a simple method for semi-supervised learning."
    assert entry.notes_ko == ("레이블이 적을 때 큰 모델이 유리하다.",)
    assert entry.notes_en == ()  # so "Korean without English" is no longer hidden
    assert entry.tags == ("semi-supervised",)
    assert _kinds(note) == [N.SECOND_TITLE]


@pytest.mark.parametrize("line", [
    "Strong results on ImageNet (Table 2)",  # a sentence with a parenthesis: no names
    "A good baseline (see Chen et al.)",
    "Works well (Google Research)",  # one 'name' and no word of the title
])
def test_an_english_line_with_parentheses_stays_commentary(line: str) -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\n{line}\n\n한국어 코멘트.\n#x\n")
    assert note.entry.notes_en == (line,) and N.SECOND_TITLE not in _kinds(note)


# --- a copied id line -------------------------------------------------------------------------


@pytest.mark.parametrize("id_line", ["| 2005.04318", "arXiv:2005.04318", "|2005.04318v2|",
                                     "2005.04318"])
@pytest.mark.parametrize("where", ["before-title", "after-title", "after-commentary"])
def test_a_copied_id_line_of_the_paper_goes_silently(id_line: str, where: str) -> None:
    lines = [URL, "", TITLE, "", "한국어 코멘트.", "<english>", "English comment.", "</english>",
             "#ssl"]
    at = {"before-title": 1, "after-title": 3, "after-commentary": 5}[where]
    note = _note("\n".join([*lines[:at], id_line, *lines[at:]]))
    entry = note.entry
    assert entry.arxiv_id == "2005.04318" and entry.authors == ("Ting Chen", "Simon Kornblith")
    assert entry.title.startswith("Big Self-Supervised Models")
    assert entry.notes_ko == ("한국어 코멘트.",) and entry.notes_en == ("English comment.",)
    assert note.warnings == ()


def test_an_id_line_of_another_paper_is_dropped_with_a_warning() -> None:
    note = _note(f"{URL}\n\n{TITLE}\n| 2006.10029\n\n한국어.\n#x\n")
    assert note.entry.notes_en == () and note.entry.arxiv_id == "2005.04318"
    (warning,) = note.warnings
    assert warning.kind == N.ID_LINE and warning.line == 4 and "2006.10029" in warning.message


# --- lines without Hangul inside Korean paragraphs --------------------------------------------


def test_a_lines_language_follows_its_korean_paragraph() -> None:
    note = _note("\n".join([
        URL, "", TITLE, "",
        "이 논문의 트릭은 다음과 같다.",
        "1. label smoothing",
        "2. 믹스업",
        "확산 과정은 다음과 같이 쓴다.",
        "x_t = C_t x_0 + s_t n_t",
        "속도가 빨라졌다.",
        "3.5",
        "",
        "The tricks are label smoothing and mixup, written as a formula.",
        "#tricks",
    ]))
    entry = note.entry
    assert entry.notes_ko == (
        "이 논문의 트릭은 다음과 같다. 1. label smoothing",
        "2. 믹스업",
        "확산 과정은 다음과 같이 쓴다. x_t = C_t x_0 + s_t n_t",
        "속도가 빨라졌다. 3.5",
    )
    assert entry.notes_en == ("The tricks are label smoothing and mixup, written as a formula.",)


def test_a_formula_opening_a_korean_paragraph_joins_the_line_after_it() -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\nL = L_ce + 0.1 L_kd\n위 손실을 사용한다.\n#x\n")
    assert note.entry.notes_ko == ("L = L_ce + 0.1 L_kd 위 손실을 사용한다.",)
    assert note.entry.notes_en == ()


@pytest.mark.parametrize("english", [
    "This paper shows that bigger models are better learners.",
    "Interesting.",
    "https://github.com/google-research/simclr",  # a link: every edition shows it
])
def test_english_sentences_and_links_next_to_korean_keep_their_place(english: str) -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\n재미있는 결과다.\n{english}\n#x\n")
    assert note.entry.commentary == ("재미있는 결과다.", english)


def test_lines_inside_an_english_block_stay_english() -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\n한국어.\n<english>\n1. label smoothing\n</english>\n#x\n")
    assert note.entry.notes_en == ("1. label smoothing",)


# --- notes about several papers ---------------------------------------------------------------


def _by_id(note: Note) -> dict[str | None, Entry]:
    return {e.arxiv_id: e for e in note.entries}


@pytest.mark.parametrize("bullet", ["", "- ", "* ", "1. "])
def test_a_list_of_named_papers_then_commentary_is_one_entry_each(bullet: str) -> None:
    note = _note("\n".join([
        f"{bullet}SpanBERT https://arxiv.org/abs/1907.10529",
        f"{bullet}ALBERT https://arxiv.org/abs/1909.11942v2",
        f"{bullet}XLNet (https://arxiv.org/abs/1906.08237)",
        "", "프리트레이닝 방법들이 쏟아진다.", "", "Pretraining methods keep coming.", "",
        "#pretraining", "", "# Links", "[[190620 XLNet]]",
    ]), "190901 Papers.md")
    assert [e.arxiv_id for e in note.entries] == ["1907.10529", "1909.11942", "1906.08237"]
    assert [e.title for e in note.entries] == ["SpanBERT", "ALBERT", "XLNet"]
    assert note.entries[1].version == 2
    for entry in note.entries:
        assert entry.notes_ko == ("프리트레이닝 방법들이 쏟아진다.",)
        assert entry.notes_en == ("Pretraining methods keep coming.",)
        assert entry.tags == ("pretraining",) and entry.abstract == ""
    (warning,) = note.warnings
    assert warning.kind == N.MULTI_PAPER and warning.line == 1 and "3 papers" in warning.message


def test_a_run_of_arxiv_urls_then_a_review_is_one_entry_each() -> None:
    note = _note("https://arxiv.org/abs/2006.02595\nhttps://arxiv.org/abs/2006.05338\n"
                 "https://github.com/mit-han-lab/data-efficient-gans\n"
                 "https://arxiv.org/abs/2006.06676\n이번 달에 gan 학습에 augmentation 결과가 "
                 "쏟아졌다.\n\n#review\n", "200619 Augmentation for GANs.md")
    assert [e.arxiv_id for e in note.entries] == ["2006.02595", "2006.05338", "2006.06676"]
    # no line names the papers: the id stands in until arXiv gives the title in the draft
    assert [e.title for e in note.entries] == [f"arXiv:{e.arxiv_id}" for e in note.entries]
    assert all(e.tags == ("review",) for e in note.entries)
    assert note.entry.links == ("https://github.com/mit-han-lab/data-efficient-gans",)
    assert _kinds(note) == [N.MULTI_PAPER]


def test_two_notes_pasted_into_one_file_are_two_entries_with_their_own_commentary() -> None:
    note = _note("\n".join([
        "https://arxiv.org/abs/2401.00001", "*First Paper* (Ann Lee)", "> First abstract.",
        "첫 논문 코멘트.", "#a", "",
        "https://arxiv.org/abs/2401.00002", "", "*Second Paper* (Bo Kim, Cy Park)",
        "두번째 코멘트.", "Second comment.", "#b",
    ]))
    first, second = note.entries
    assert (first.title, first.authors, first.abstract) == ("First Paper", ("Ann Lee",),
                                                            "First abstract.")
    assert (first.commentary, first.tags) == (("첫 논문 코멘트.",), ("a",))
    assert (second.title, second.authors, second.line) == ("Second Paper", ("Bo Kim", "Cy Park"),
                                                           7)
    assert (second.notes_ko, second.notes_en, second.tags) == (
        ("두번째 코멘트.",), ("Second comment.",), ("b",))
    assert "each with the commentary below it" in note.warnings[0].message


@pytest.mark.parametrize("text", [
    # the paper's pdf again: the same paper
    f"{URL}\nhttps://arxiv.org/pdf/2005.04318v2\n\n{TITLE}\n\n한국어.\n#x\n",
    # an arXiv reference alone inside the commentary, no title under it: a link
    f"{URL}\n\n{TITLE}\n\n한국어.\n\nhttps://arxiv.org/abs/2003.08505\n\n더 한국어.\n#x\n",
    # 'See also <arXiv URL>' in English commentary: no paper line
    f"{URL}\n\n{TITLE}\n\n한국어.\nSee also https://arxiv.org/abs/2003.08505\n#x\n",
])
def test_references_to_other_papers_do_not_split_a_note(text: str) -> None:
    note = _note(text)
    assert note.more == () and note.entry.arxiv_id == "2005.04318"
    assert N.MULTI_PAPER not in _kinds(note)


def test_each_paper_of_a_note_is_a_note_for_the_draft(tmp_path: Path) -> None:
    (tmp_path / "190901 Papers.md").write_text(
        "SpanBERT https://arxiv.org/abs/1907.10529\nALBERT https://arxiv.org/abs/1909.11942\n\n"
        "좋은 방법들.\n#pretraining\n", encoding="utf-8")
    (tmp_path / "190920 ALBERT.md").write_text(
        "https://arxiv.org/abs/1909.11942\n\n*ALBERT* (Zhenzhong Lan)\n\n또 다른 노트.\n",
        encoding="utf-8")
    shelf = read_notes(tmp_path)
    assert sorted(shelf.by_id()) == ["1907.10529", "1909.11942"]
    assert shelf.by_id()["1909.11942"].entry.notes_ko == ("좋은 방법들.",)  # first in order
    (error,) = shelf.errors
    assert "a second note about arXiv:1909.11942" in error.message


# --- a bare title after a non-arXiv URL ---------------------------------------------------------


@pytest.mark.parametrize("title", ["Introducing Foo: A Faster Model", "Qwen2.5-Max",
                                   "Scaling Monosemanticity"])
def test_a_bare_title_after_a_link_is_the_title(title: str) -> None:
    note = _note(f"https://example.org/blog/post\n\n{title}\n\n새 모델이 나왔습니다.\n\n#llm\n")
    entry = note.entry
    assert (entry.title, entry.url, entry.arxiv_id) == (title, "https://example.org/blog/post",
                                                        None)
    assert entry.commentary == ("새 모델이 나왔습니다.",) and entry.tags == ("llm",)
    assert _kinds(note) == [N.BARE_TITLE]


@pytest.mark.parametrize("line", ["Qwen 1.5 is released.", "A short remark, then more:",
                                  "New model out\nand it is fast"])
def test_english_prose_after_a_link_is_commentary(line: str) -> None:
    note = _note(f"https://example.org/blog/post\n\n{line}\n\n한국어.\n#llm\n", "240206 Post.md")
    assert note.entry.title == "Post" and N.BARE_TITLE not in _kinds(note)


# --- titles: an unclosed '(', a wrap after "vs.", a title starting with '#' ------------------


@pytest.mark.parametrize(("lines", "title", "authors"), [
    (["Deep Stuff (Ann Lee, Bo Kim, Cy Park"], "Deep Stuff", ("Ann Lee", "Bo Kim", "Cy Park")),
    (["*Deep Stuff* (Ann Lee, Bo Kim,", "Cy Park"], "Deep Stuff",
     ("Ann Lee", "Bo Kim", "Cy Park")),
    (["A Study of Things", "(Ann Lee, Bo Kim"], "A Study of Things", ("Ann Lee", "Bo Kim")),
])
def test_a_title_whose_parenthesis_never_closes(lines: list[str], title: str,
                                                authors: tuple[str, ...]) -> None:
    note = _note("\n".join([URL, "", *lines, "", "한국어.", "#x"]))
    assert (note.entry.title, note.entry.authors) == (title, authors)
    assert note.entry.commentary == ("한국어.",)
    assert _kinds(note) == [N.UNCLOSED_TITLE]


@pytest.mark.parametrize("lines", [
    ["Transformers vs.", "RNNs: A Study (Ann Lee, Bo Kim)"],
    ["Dense vs. Sparse", "Retrieval (Ann Lee, Bo Kim)"],
])
def test_a_title_wraps_after_an_abbreviation(lines: list[str]) -> None:
    note = _note("\n".join([URL, "", *lines, "", "한국어.", "#x"]))
    assert note.entry.title == " ".join(lines).split(" (")[0]
    assert note.entry.authors == ("Ann Lee", "Bo Kim") and note.warnings == ()


@pytest.mark.parametrize("where", ["below", "above"])
def test_a_title_starting_with_a_hash_is_a_title(where: str) -> None:
    title = "#InsTag: Instruction Tagging for Analyzing Supervised Fine-tuning (Keming Lu, Hongyi Yuan)"
    url = "https://arxiv.org/abs/2308.07074"
    text = f"{url}\n\n{title}\n" if where == "below" else f"{title}\n{url}\n"
    entry = _note(text + "\n좋은 데이터 분석.\n#sft\n").entry
    assert entry.title == "#InsTag: Instruction Tagging for Analyzing Supervised Fine-tuning"
    assert entry.authors == ("Keming Lu", "Hongyi Yuan") and entry.tags == ("sft",)


# --- an abstract pasted without '>' -----------------------------------------------------------

ABSTRACT = ("We present Some Model, a new approach to training large language models that is "
            "both efficient and accurate. We show that it outperforms prior work on reasoning, "
            "coding and math while using fewer resources.")
LONG = " ".join([ABSTRACT] * 3)


@pytest.mark.parametrize(("text", "abstract"), [
    (LONG, LONG),
    (ABSTRACT, ABSTRACT),  # shorter, but it opens as abstracts do
    ("let> " + ABSTRACT, ABSTRACT),  # a stray key before the '>'
    ("b>" + ABSTRACT, ABSTRACT),
])
def test_an_abstract_pasted_without_its_quote_marker(text: str, abstract: str) -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\n{text}\n\n좋은 모델.\n\nA good model.\n#x\n")
    entry = note.entry
    assert entry.abstract == abstract
    assert entry.notes_ko == ("좋은 모델.",) and entry.notes_en == ("A good model.",)
    assert _kinds(note) == [N.UNQUOTED_ABSTRACT]


def test_short_english_commentary_before_the_korean_stays_commentary() -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\nA neat trick for semi-supervised learning.\n\n좋은 모델.\n")
    assert note.entry.abstract == "" and note.entry.notes_en == (
        "A neat trick for semi-supervised learning.",)


# --- links, markers, tags, images, authors ----------------------------------------------------


@pytest.mark.parametrize("line", [
    "[https://arxiv.org/abs/2310.00426](https://t.co/AbCdEf)",
    "[arxiv.org/abs/2310.00426v3](https://l.facebook.com/l.php?u=x)",
])
def test_an_arxiv_url_behind_a_tracker_link_keeps_its_id(line: str) -> None:
    entry = _note(f"{line}\n\n*PixArt-α* (Junsong Chen)\n\n좋은 모델.\n#x\n").entry
    assert entry.arxiv_id == "2310.00426" and entry.url is None and entry.title == "PixArt-α"


@pytest.mark.parametrize(("open_", "close"), [("<enligsh>", "</enligsh>"),
                                              ("<englsih>", "</english>"),
                                              ("<Englsh>", "</Englihs>")])
def test_a_misspelt_english_marker_is_read_as_one(open_: str, close: str) -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\n좋은 모델.\n{open_}\nA good model.\n{close}\n#x\n")
    assert note.entry.notes_en == ("A good model.",)
    assert all("english" not in p.casefold() for p in note.entry.commentary)
    assert set(_kinds(note)) == {N.ENGLISH_BLOCK}


@pytest.mark.parametrize(("line", "kept", "tags"), [
    ("좋은 모델. #llm #moe 나중에 다시 보기", "좋은 모델. 나중에 다시 보기", ("llm", "moe")),
    ("#llm #moe 나중에 다시 읽기", "나중에 다시 읽기", ("llm", "moe")),
    ("A good model. #vision (to read again)", "A good model. (to read again)", ("vision",)),
])
def test_tags_inside_a_line_with_a_remark_after_them(line: str, kept: str,
                                                      tags: tuple[str, ...]) -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\n{line}\n")
    assert note.entry.commentary == (kept,) and note.entry.tags == tags
    assert _kinds(note) == [N.MID_LINE_TAGS]


@pytest.mark.parametrize("line", ["#GPT4 가 최고라는 이야기.", "C# 으로 짠 코드 #1 순위",
                                  "이 모델은 #llm 계열이다"])
def test_a_hashtag_used_as_a_word_stays_in_the_line(line: str) -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\n{line}\n")
    assert note.entry.commentary == (line,) and note.entry.tags == ()


@pytest.mark.parametrize("image", ["![img](https://x.org/fig1.png)", "![[figure 1.png]]"])
def test_an_image_line_is_not_published(image: str) -> None:
    note = _note(f"{URL}\n\n{TITLE}\n\n좋은 모델.\n{image}\n#x\n")
    assert note.entry.commentary == ("좋은 모델.",) and _kinds(note) == [N.IMAGE]


@pytest.mark.parametrize("authors", ["Ann Lee, Bo Kim (additional authors not shown)",
                                     "Ann Lee, Bo Kim, (additional authors not shown)"])
def test_arxivs_marker_for_a_cut_author_list_is_no_name(authors: str) -> None:
    entry = _note(f"{URL}\n\n*Big Models* ({authors})\n\n한국어.\n").entry
    assert entry.authors == ("Ann Lee", "Bo Kim")


# --- refused wrongly before ---------------------------------------------------------------------


@pytest.mark.parametrize(("first", "kinds"), [
    ("arxiv.org/abs/2010.07922", []),
    ("www.arxiv.org/abs/2010.07922v2", []),
    ("zhttps://arxiv.org/abs/2010.07922", [N.URL_TYPO]),
    ("`https://arxiv.org/abs/2010.07922", [N.URL_TYPO]),
])
def test_a_first_url_with_a_slip_is_read(first: str, kinds: list[str]) -> None:
    note = _note(f"{first}\n\n*Title Here* (Ann Lee)\n\n한국어.\n#x\n")
    assert note.entry.arxiv_id == "2010.07922" and note.entry.title == "Title Here"
    assert _kinds(note) == kinds


def test_a_refusal_names_the_line_at_fault() -> None:
    text = "\n".join([URL, "", TITLE, "", "한국어 한 줄.", "", "한국어 두 줄.", "", "More English.",
                      "", "English then.", "(An aside in parentheses)", "한국어 끝."])
    with pytest.raises(FormatError) as info:
        _note(text, "n.md")
    assert info.value.line == 12 and str(info.value).startswith("n.md:12: the commentary line")

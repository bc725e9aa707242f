"""Every shape of note in the curator's six years of notes: read as meant, or refused precisely.

Each class has its real example (tests/fixtures/notes/shapes/, one file per shape) and
variations built here: other wording, other wrapping points, Hangul and English mixed, the
near-misses that must not be read as the shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.errors import FormatError
from pipeline.curate.notes import Note, load_note, parse_note, parse_note_file
from tests.support import FIXTURES

SHAPES = FIXTURES / "notes" / "shapes"
URL = "https://arxiv.org/abs/2412.03572"


def _shape(prefix: str) -> Note:
    (path,) = [p for p in SHAPES.glob("*.md") if p.name.startswith(prefix)]
    return load_note(path)


def _note(text: str) -> Note:
    return parse_note_file(text, "n.md")


def _warnings(note: Note) -> list[str]:
    return [str(w) for w in note.warnings]


def test_every_shape_file_reads_without_error() -> None:
    names = sorted(p.name for p in SHAPES.glob("*.md"))
    assert len(names) == 12
    for name in names:
        note = load_note(SHAPES / name)
        assert note.entry.arxiv_id is not None and note.entry.title
        for paragraph in note.entry.commentary:
            assert not paragraph.startswith(("*", ">", "#")) and "english>" not in paragraph


# --- a title or an author list wrapped onto a second line ----------------------------------


def test_real_title_wrapped_before_its_author_list() -> None:
    entry = _shape("200207").entry
    assert entry.title == ("How to train your neural ODE: the world of Jacobian and kinetic "
                           "regularization")
    assert entry.authors == ("Chris Finlay", "Jörn-Henrik Jacobsen", "Levon Nurbekyan",
                             "Adam M Oberman")
    assert len(entry.commentary) == 1 and entry.commentary[0].startswith("Neural ODE는")
    assert entry.tags == ("neural_ode",)


def test_real_author_list_wrapped_inside_a_name() -> None:
    entry = _shape("210922").entry
    assert entry.title == ("Scale Efficiently: Insights from Pre-training and Fine-tuning "
                           "Transformers")
    assert len(entry.authors) == 10 and "Hyung Won Chung" in entry.authors
    assert entry.authors[-1] == "Donald Metzler" and entry.notes_en == ()


@pytest.mark.parametrize(
    ("lines", "title", "authors"),
    [
        # the author list over three lines
        (["*Deep Nets* (Ann Lee, Bo Kim,", "Cy Park, Di Choi,", "Ed Yoon)"], "Deep Nets",
         ("Ann Lee", "Bo Kim", "Cy Park", "Di Choi", "Ed Yoon")),
        # a starred title broken before its closing star, authors on the next line
        (["*Scaling Laws for", "Sparse Models*", "(Ann Lee)"], "Scaling Laws for Sparse Models",
         ("Ann Lee",)),
        # the author list on a line of its own
        (["Mixture of Experts Revisited", "(Ann Lee, Bo Kim)"], "Mixture of Experts Revisited",
         ("Ann Lee", "Bo Kim")),
        # a starred title, then its author list wrapped over two lines
        (["*Mixture of Experts*", "(Ann Lee, Bo Kim,", "Cy Park)"], "Mixture of Experts",
         ("Ann Lee", "Bo Kim", "Cy Park")),
        # broken after a hyphen: one word again
        (["Self-Supervised Pre-", "training at Scale (Ann Lee)"],
         "Self-Supervised Pre-training at Scale", ("Ann Lee",)),
        # broken after a colon, indented continuation
        (["Attention:", "    all you need, again (Ann Lee)"], "Attention: all you need, again",
         ("Ann Lee",)),
    ],
)
def test_wrapped_titles_and_author_lists(lines: list[str], title: str,
                                         authors: tuple[str, ...]) -> None:
    note = _note(URL + "\n\n" + "\n".join(lines) + "\n\n한국어 코멘트.\n\nEnglish note.\n")
    assert (note.entry.title, note.entry.authors) == (title, authors)
    assert note.entry.commentary == ("한국어 코멘트.", "English note.") and not note.warnings


def test_english_sentences_are_not_a_wrapped_title() -> None:
    # Two lines of English commentary, the second ending in a parenthesis: not a title.
    entry = parse_note(URL + "\n\nThis paper is neat.\nSee also (Smith, 2020)\n\n한국어\n",
                       "241204 Navigation World Models.md")
    assert entry.title == "Navigation World Models" and entry.authors == ()
    assert entry.commentary[:2] == ("This paper is neat.", "See also (Smith, 2020)")
    # Nor is a blank line crossed to complete a title.
    entry = parse_note(URL + "\n\n*Unfinished title\n\nmore* (A)\n\n한국어\n", "x.md")
    assert entry.title == "x" and entry.commentary[0] == "*Unfinished title"


# --- hashtags at the end of the last commentary line ----------------------------------------


def test_real_hashtags_at_the_end_of_the_commentary() -> None:
    entry = _shape("200706").entry
    assert entry.tags == ("group_equivariance", "meta_learning")
    assert entry.commentary == ("대칭 구조에 따라 weight sharing이 발생하도록 weight를 "
                                "reparameterize한 다음 이 대칭 구조를 메타 러닝으로 학습.",)


@pytest.mark.parametrize(
    ("last", "kept", "tags"),
    [
        ("Neat idea. #moe #sparsity", "Neat idea.", ("moe", "sparsity")),
        ("재미있네요 #llm, #scaling_law", "재미있네요", ("llm", "scaling_law")),
        ("비교 실험이 좋습니다. #비전 #vision-language", "비교 실험이 좋습니다.",
         ("비전", "vision-language")),
        # not hashtags: a rank, C#, an anchor in a URL
        ("It ranks #1", "It ranks #1", ()),
        ("Written in C#", "Written in C#", ()),
        ("See https://x.org/page#intro", "See https://x.org/page#intro", ()),
    ],
)
def test_trailing_hashtags_of_the_last_line(last: str, kept: str, tags: tuple[str, ...]) -> None:
    entry = parse_note(URL + "\n\n한국어 첫 문단.\n\n" + last + "\n", "n.md")
    assert entry.commentary == ("한국어 첫 문단.", kept) and entry.tags == tags


def test_hashtags_inside_an_earlier_paragraph_stay_there() -> None:
    entry = parse_note(URL + "\n\n이건 #중간 #tag 입니다\n\n마지막 문단\n\n#end\n", "n.md")
    assert entry.commentary == ("이건 #중간 #tag 입니다", "마지막 문단")
    assert entry.tags == ("end",)


# --- a tags line with one stray word --------------------------------------------------------


def test_real_tags_line_with_a_stray_word_keeps_the_tags_and_warns() -> None:
    note = _shape("241126")
    assert note.entry.tags == ("speech-text", "synthetic-data")
    assert note.entry.notes_en == ("First build model that converts text to speech tokens, and "
                                   "using this model constructing interleaved data by replacing "
                                   "intermediate spans of the text to speech tokens. "
                                   "Interesting.",)
    assert [(w.line, w.message) for w in note.warnings] == [
        (13, "'a' in the #tags line is not a tag: ignored (write #a to make it one)")]


def test_a_stray_word_anywhere_in_the_tags_line() -> None:
    note = _note(URL + "\n\n한국어\n\n#llm oops #moe\n")
    assert note.entry.tags == ("llm", "moe") and note.entry.commentary == ("한국어",)
    assert _warnings(note) == [
        "n.md:5: 'oops' in the #tags line is not a tag: ignored (write #oops to make it one)"]


def test_a_sentence_that_starts_with_a_hashtag_is_commentary() -> None:
    note = _note(URL + "\n\n#llm 이 좋은 이유\n\nEnglish\n\n#tag\n")
    assert note.entry.commentary == ("#llm 이 좋은 이유", "English")
    assert note.entry.tags == ("tag",) and not note.warnings


# --- the title and the URL on one line --------------------------------------------------------


def test_real_title_then_url_in_parentheses() -> None:
    entry = _shape("210318").entry
    assert (entry.arxiv_id, entry.title) == ("2103.15808",
                                             "CvT: Introducing Convolutions to Vision Transformers")
    assert entry.authors == () and entry.commentary == ()
    assert entry.tags == ("vision_transformer",)


@pytest.mark.parametrize(
    "first",
    [
        f"*Deep Nets: A Study* ({URL})",
        f"[Deep Nets: A Study]({URL})",
        f"Deep Nets: A Study <{URL}>",
        f"*Deep Nets: A Study* {URL}",
        f"Deep Nets: A Study: {URL}",
    ],
)
def test_title_and_url_on_one_line_in_other_spellings(first: str) -> None:
    note = _note(first + "\n(Ann Lee, Bo Kim)\n\n한국어 설명\n")
    assert note.entry.arxiv_id == "2412.03572" and note.entry.title == "Deep Nets: A Study"
    assert note.entry.authors == ("Ann Lee", "Bo Kim")
    assert note.entry.commentary == ("한국어 설명",) and note.entry.line == 1


def test_title_and_a_bracketed_blog_url_make_a_link_note() -> None:
    entry = parse_note("Qwen 2.5 release (https://qwenlm.github.io/blog/qwen2.5/)\n\n한국어\n",
                       "n.md")
    assert entry.url == "https://qwenlm.github.io/blog/qwen2.5/" and entry.arxiv_id is None
    assert entry.title == "Qwen 2.5 release"


def test_a_sentence_ending_in_a_plain_url_is_not_a_title() -> None:
    with pytest.raises(FormatError) as info:
        parse_note("Saw this on https://example.org/post\n\n한국어\n", "n.md")
    assert str(info.value) == (
        "n.md:1: expected the paper's URL alone on the first line (or first on it), got a URL "
        "inside the text 'Saw this on https://example.org/post'")


# --- the URL followed by commentary on the same line -----------------------------------------


def test_real_url_then_korean_commentary_and_a_folded_post() -> None:
    note = _shape("190620")
    entry = note.entry
    assert entry.arxiv_id == "1906.08237" and entry.title == "XLNet" and entry.line == 1
    assert len(entry.commentary) == 3
    assert entry.commentary[0].startswith("새로운 프리트레이닝 알고리즘/모델.")
    assert entry.commentary[2].endswith("New is a city를 사용해서 York를 예측하면 된다.")
    assert entry.tags == ("pretraining", "language_model")
    assert [(w.line, w.message) for w in note.warnings] == [
        (3, "the line ends with '… 더 보기' (a post copied while folded): cut there")]


@pytest.mark.parametrize(
    ("first", "title", "authors", "commentary"),
    [
        (f"{URL} Great read on world models.", "n", (), ("Great read on world models.",)),
        (f"<{URL}> 세계 모델 논문", "n", (), ("세계 모델 논문",)),
        (f"{URL} *Navigation World Models* (Amir Bar, Yann LeCun)", "Navigation World Models",
         ("Amir Bar", "Yann LeCun"), ()),
    ],
)
def test_url_then_text_on_the_same_line(first: str, title: str, authors: tuple[str, ...],
                                        commentary: tuple[str, ...]) -> None:
    entry = parse_note(first + "\n\n#world-models\n", "n.md")
    assert entry.arxiv_id == "2412.03572"
    assert (entry.title, entry.authors, entry.commentary) == (title, authors, commentary)
    assert entry.tags == ("world-models",)


@pytest.mark.parametrize(
    "first",
    [f"재미있는 논문 ({URL}v2)", f"재미있는 논문 {URL}v2", f"재미있는 <{URL}v2> 논문"],
)
def test_korean_commentary_around_the_papers_url_on_the_first_line(first: str) -> None:
    entry = parse_note(first + "\n\n*Navigation World Models* (Amir Bar)\n\n#tag\n", "n.md")
    assert (entry.arxiv_id, entry.version) == ("2412.03572", 2)
    assert entry.title == "Navigation World Models" and entry.authors == ("Amir Bar",)
    assert entry.commentary[0] == "재미있는 논문" and entry.tags == ("tag",)


def test_another_papers_url_inside_later_commentary_does_not_pin_the_note() -> None:
    with pytest.raises(FormatError) as info:
        parse_note("논문 소개\n\n자세한 건 UMAP (https://arxiv.org/abs/1802.03426) 참고\n", "n.md")
    assert str(info.value) == (
        "n.md:1: expected the paper's URL (e.g. https://arxiv.org/abs/2412.01981) on the "
        "first line, got '논문 소개'")


# --- an introductory sentence before the URL -----------------------------------------------------


def test_real_introduction_before_the_url() -> None:
    entry = _shape("200725").entry
    assert entry.arxiv_id == "2007.08902" and entry.title == "Neighbor Embedding"
    assert entry.line == 3  # the entry starts at its URL
    assert entry.commentary[0] == "최근 트위터에서 화제가 됐던 논문을 하나 소개."
    assert len(entry.commentary) == 9 and entry.tags == ("review",)
    # URLs inside the commentary are the curator's references, not the paper
    assert "UMAP (https://arxiv.org/abs/1802.03426)" in entry.commentary[1]


def test_two_lines_of_english_introduction() -> None:
    entry = parse_note("A paper everyone discussed this week.\nWorth a look:\n\n" + URL
                       + "\n\n*Navigation World Models* (Amir Bar)\n\n한국어\n", "n.md")
    assert entry.title == "Navigation World Models" and entry.authors == ("Amir Bar",)
    assert entry.commentary == ("A paper everyone discussed this week.", "Worth a look:",
                                "한국어")


@pytest.mark.parametrize("title", ["*Navigation World Models* (Amir Bar, Yann LeCun)",
                                   "*Navigation World\nModels* (Amir Bar, Yann LeCun)"])
def test_the_title_line_written_above_the_url(title: str) -> None:
    entry = parse_note(title + "\n\n" + URL + "\n\n> Abstract.\n\n한국어\n", "n.md")
    assert (entry.title, entry.authors) == ("Navigation World Models", ("Amir Bar", "Yann LeCun"))
    assert entry.abstract == "Abstract." and entry.commentary == ("한국어",)


# --- an abstract continued on lines without '>' ----------------------------------------------------


def test_real_abstract_continued_without_quote_marks() -> None:
    entry = _shape("250804").entry
    assert entry.abstract.startswith("Recent advances in large language models (LLMs)")
    assert "end-to-end omni-modal training. We present VeOmni, a modular" in entry.abstract
    assert entry.abstract.endswith("scalability for training large omni-modal LLMs.")
    assert "%" not in entry.abstract  # the LaTeX comment signs that ended two lines
    assert entry.commentary == ("바이트댄스의 옴니모달 모델 학습을 위한 프레임워크. 파이토치 "
                                "네이티브 구현.",
                                "ByteDance's framework for omni-modal model training. "
                                "PyTorch-native implementation.")


@pytest.mark.parametrize(
    ("body", "abstract", "commentary"),
    [
        # the blank line ends the abstract: what follows is English commentary
        ("> First part.\nSecond part.\n\nMy English note.\n\n한국어\n",
         "First part. Second part.", ("My English note.", "한국어")),
        # Korean right after the abstract, no blank line: the commentary starts there
        ("> First part.\nSecond part.\n한국어 코멘트\nEnglish after.\n",
         "First part. Second part.", ("한국어 코멘트", "English after.")),
        # a URL alone after the abstract is a link, not more abstract
        ("> First part.\nhttps://github.com/x/y\n\n한국어\n", "First part.",
         ("https://github.com/x/y", "한국어")),
        # 90% at the end of a line is a percentage, not a comment sign
        ("> It improves by 90%\nof the cases. %\n\n한국어\n",
         "It improves by 90% of the cases.", ("한국어",)),
    ],
)
def test_where_an_abstract_without_quote_marks_ends(body: str, abstract: str,
                                                    commentary: tuple[str, ...]) -> None:
    entry = parse_note(URL + "\n\n*T* (A)\n\n" + body, "n.md")
    assert (entry.abstract, entry.commentary) == (abstract, commentary)


# --- <english> never closed, or closed twice -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "warnings"),
    [
        ("한국어\n\n<english>\nEnglish\n\n#tag\n",
         ["n.md:7: <english> is never closed: the English ends at the #tags line 10"]),
        ("한국어\n\n<english>\nEnglish\n",
         ["n.md:7: <english> is never closed: the English ends at the end of the note"]),
        ("한국어\n<english>\nEnglish\n</english>\n</english>\n\n#tag\n",
         ["n.md:9: </english> again (the block was closed at line 8): ignored"]),
        ("한국어\n</english>\nEnglish\n\n#tag\n",
         ["n.md:6: </english> without an <english> before it: ignored"]),
        ("한국어\n<english>\n<english>\nEnglish\n</english>\n#tag\n",
         ["n.md:7: a second <english> while the one of line 6 is open: read as one block"]),
        ("한국어\n<english>English</english>\n#tag\n", []),
    ],
)
def test_english_markers_a_person_reads_plainly(body: str, warnings: list[str]) -> None:
    note = _note(URL + "\n\n*T* (A)\n\n" + body)
    assert note.entry.commentary == ("한국어", "English")
    assert _warnings(note) == warnings


# --- a note with only *Title* and no authors line ---------------------------------------------------


@pytest.mark.parametrize("title_line", ["*Navigation World Models*",
                                        "**Navigation World Models**"])
def test_starred_title_without_authors(title_line: str) -> None:
    entry = parse_note(URL + "\n\n" + title_line + "\n\n> Abstract.\n\n한국어\n\nEnglish\n",
                       "n.md")
    assert entry.title == "Navigation World Models" and entry.authors == ()
    assert entry.abstract == "Abstract." and entry.commentary == ("한국어", "English")


# --- a URL-only line is a link, not English commentary ---------------------------------------------


def test_a_url_only_line_is_a_link_in_no_language() -> None:
    entry = parse_note(URL + "\n\n*T* (A)\n\n한국어 코멘트\n\nhttps://github.com/x/y\n", "n.md")
    assert entry.notes_ko == ("한국어 코멘트",) and entry.notes_en == ()
    assert entry.links == ("https://github.com/x/y",)


# --- a zero byte -------------------------------------------------------------------------------------


def test_a_zero_byte_after_the_first_8_kb_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "n.md"
    text = URL + "\n\n*T* (A)\n\n" + "한국어 문단입니다.\n" * 1000 + "English\x00 text\n"
    path.write_bytes(text.encode("utf-8"))
    assert len(text.encode("utf-8")) > 8192
    with pytest.raises(FormatError) as info:
        load_note(path)
    assert str(info.value) == (f"{path}:1005: a zero byte (NUL) in the text: the file is "
                               "damaged or not text (remove it)")


# --- LaTeX in the real abstracts ---------------------------------------------------------------------


def test_real_abstracts_with_latex_keep_their_words() -> None:
    over = _shape("240313").entry.abstract
    assert "6.9B parameter, 138B token run—each from experiments that take 300× less" in over
    chart = _shape("240319").entry.abstract
    assert "applied on the PaLI3-5B VLM by, while also enabling" in chart
    assert "<cit.>" not in chart and "citet" not in chart
    state = _shape("240412").entry.abstract
    assert "outside the complexity class TC^0." in state
    textbook = _shape("250101").entry.abstract
    assert "a high-quality multimodal textbook corpus" in textbook
    assert textbook.endswith("for task solving (Our code are available at "
                             "https://github.com/DAMO-NLP-SG/multimodal_textbook).")
    for abstract in (over, chart, state, textbook):
        assert not any(ch in abstract for ch in "$\\{}")


def test_tags_separated_by_commas() -> None:
    note = _note(URL + "\n\n한국어\n\n#llm, #moe; #scaling_law.\n")
    assert note.entry.tags == ("llm", "moe", "scaling_law") and not note.warnings

"""The curator's real note files parse into entries; what cannot be used is one clear line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.digest_format import parse_digest, write_entry
from pipeline.core.errors import FormatError
from pipeline.core.models import has_hangul
from pipeline.curate.notes import parse_note, read_note, read_notes
from tests.support import FIXTURES

NOTES = FIXTURES / "notes"

# Every note of notes/2412: file-name prefix, arXiv id, title start, author count, last author,
# Korean and English paragraph counts, tags (read by eye from each file).
DEC_2024 = [
    ("241202 Free Process", "2412.01981", "Free Process Rewards without P", 9, "Hao Peng", 1, 1,
     "#reward-model"),
    ("241202 RandAR", "2412.01827", "RandAR: Decoder-only Autoregre", 8, "Yu-Xiong Wang", 1, 1,
     "#autoregressive-model #image-generation"),
    ("241202 Scaling Law", "2412.01505", "Scaling Law for Language Model", 5, "Xiaozhe Ren", 1, 1,
     "#scaling-law #hyperparameter"),
    ("241202 Yi-Lightning", "2412.01253", "Yi-Lightning Technical Report", 42, "Zirui Zhang", 1, 1,
     "#llm"),
    ("241203 Mind the Gap", "2412.02674", "Mind the Gap: Examining the Se", 6, "Udaya Ghai", 1, 1,
     "#self-improvement #search"),
    ("241203 Nemotron-CC", "2412.02595", "Nemotron-CC: Transforming Comm", 9, "Bryan Catanzaro",
     2, 2, "#corpus #pretraining"),
    ("241203 Taming", "2412.02692", "Taming Scalable Visual Tokeniz", 6, "Limin Wang", 1, 1,
     "#vq"),
    ("241204 Navigation", "2412.03572", "Navigation World Models", 5, "Yann LeCun", 1, 1,
     "#world-models"),
    ("241204 PaliGemma 2", "2412.03555", "PaliGemma 2: A Family of Versa", 18, "Xiaohua Zhai",
     1, 1, "#vision-language"),
    ("241204 Perception", "2412.03548", "Perception Tokens Enhance Visu", 7, "Ranjay Krishna",
     2, 2, "#reasoning"),
    ("241204 RedStone", "2412.03398", "RedStone: Curating General, Co", 16, "Xingxing Zhang",
     1, 1, "#pretraining #corpus"),
    ("241204 The Matrix", "2412.03568", "The Matrix: Infinite-Horizon W", 10, "Hongyang Zhang",
     1, 1, "#world-models"),
    ("241204 TokenFlow", "2412.03069", "TokenFlow: Unified Image Token", 10, "Xinglong Wu", 1, 1,
     "#vq #image-generation #image-text"),
    ("241205 ALMA", "2412.04305", "ALMA: Alignment with Minimal A", 7, "Marjan Ghazvininejad",
     1, 1, "#alignment #reward-model"),
    ("241205 Densing", "2412.04315", "Densing Law of LLMs", 7, "Maosong Sun", 1, 1,
     "#llm #scaling-law"),
    ("241205 Establishing", "2412.04403", "Establishing Task Scaling Laws", 12,
     "Hannaneh Hajishirzi", 1, 1, "#scaling-law"),
    ("241205 Infinity", "2412.04431", "Infinity: Scaling Bitwise Auto", 8, "Xiaobing Liu", 1, 1,
     "#vq #autoregressive-model"),
    ("241205 Liquid", "2412.04332", "Liquid: Language Models are Sc", 8, "Xiang Bai", 1, 1,
     "#multimodal #autoregressive-model #image-generation"),
    ("241205 NVILA", "2412.04468", "NVILA: Efficient Frontier Visu", 27, "Yao Lu", 1, 1,
     "#vision-language #multimodal #video-language"),
    ("241205 The Hyperfitting", "2412.04318", "The Hyperfitting Phenomenon: S", 5, "Joakim Nivre",
     1, 1, "#autoregressive-model"),
    ("241206 CompCap", "2412.05243", "CompCap: Improving Multimodal ", 11, "Baosheng He", 1, 1,
     "#dataset #captioning #vision-language"),
    ("241206 Expanding", "2412.05271", "Expanding Performance Boundari", 40, "Wenhai Wang", 1, 1,
     "#multimodal #vision-language"),
    ("241206 Transformers Can", "2412.05117", "Transformers Can Navigate Maze", 5, "Mark Ibrahim",
     1, 1, "#transformer #autoregressive-model"),
    ("241206 Transformers Struggle", "2412.04703", "Transformers Struggle to Learn", 9, "He He",
     1, 1, "#transformer #mechanistic-interpretation"),
    ("241207 Mixture", "2412.05644", "Mixture of Hidden-Dimensions T", 9, "Haifeng Wang", 1, 1,
     "#moe #sparsity"),
    ("241208 Does RLHF", "2412.06000", "Does RLHF Scale? Exploring the", 10, "Yuxiao Dong", 1, 1,
     "#rlhf #reward-model"),
    ("241208 Language-Guided", "2412.05796", "Language-Guided Image Tokeniza", 7, "Xiuye Gu",
     1, 1, "#tokenizer #image-generation"),
    ("241209 Normalizing", "2412.06329", "Normalizing Flows are Capable ", 10, "Josh Susskind",
     1, 1, "#flow"),
    ("241209 ProcessBench", "2412.06559", "ProcessBench: Identifying Proc", 9, "Junyang Lin", 4, 4,
     "#reward-model #reasoning #math #benchmark"),
    ("241209 Sloth", "2412.06540", "Sloth: scaling laws for LLM sk", 5, "Mikhail Yurochkin", 2, 2,
     "#scaling-law"),
    ("241209 Training", "2412.06769", "Training Large Language Models", 7, "Yuandong Tian", 1, 1,
     "#reasoning"),
    ("241209 Visual Lexicon", "2412.06774", "Visual Lexicon: Rich Image Fea", 5,
     "Cordelia Schmid", 1, 1, "#tokenizer #image-generation"),
]


def _note(prefix: str) -> Path:
    (path,) = [p for p in NOTES.rglob("*.md") if p.name.startswith(prefix)]
    return path


def test_the_table_covers_every_note_of_december() -> None:
    on_disk = {p.name for p in (NOTES / "2412").glob("*.md")}
    assert {_note(row[0]).name for row in DEC_2024} == on_disk


@pytest.mark.parametrize("row", DEC_2024, ids=[row[0] for row in DEC_2024])
def test_every_december_note_parses(row: tuple[str, str, str, int, str, int, int, str]) -> None:
    prefix, arxiv_id, title, n_authors, last_author, n_ko, n_en, tags = row
    entry = read_note(_note(prefix))
    assert entry.arxiv_id == arxiv_id and entry.version is None and entry.url is None
    assert entry.title.startswith(title) and "*" not in entry.title
    assert len(entry.authors) == n_authors and entry.authors[-1] == last_author
    assert (len(entry.notes_ko), len(entry.notes_en)) == (n_ko, n_en)
    assert " ".join("#" + t for t in entry.tags) == tags
    # The abstract is one readable line: no quote marker, no LaTeX left.
    assert len(entry.abstract) > 500 and not entry.abstract.startswith(">")
    assert not any(ch in entry.abstract for ch in "$\\{}")
    # Markup and the notes app's links never leak into what readers see.
    for paragraph in entry.commentary:
        assert "english>" not in paragraph and "[[" not in paragraph
        assert not paragraph.startswith(("#", ">"))
    assert entry.line == 1


def test_team_prefixed_author_lists_keep_every_name() -> None:
    yi = read_note(_note("241202 Yi-Lightning"))
    assert yi.authors[:3] == ("01.AI", "Alan Wake", "Albert Wang")
    wan = read_note(_note("250326 Wan"))
    assert len(wan.authors) == 62
    assert wan.authors[:3] == ("WanTeam", "Ang Wang", "Baole Ai")
    assert wan.authors.count("Wei Wang") == 2 and wan.authors[-1] == "Ziyu Liu"


def test_variant_without_stars_or_abstract_with_underscore_tags() -> None:
    entry = read_note(_note("240103 Instruct-Imagen"))
    assert entry.arxiv_id == "2401.01952"
    assert entry.title == "Instruct-Imagen: Image Generation with Multi-modal Instruction"
    assert entry.authors[:2] == ("Hexiang Hu", "Kelvin C.K. Chan") and len(entry.authors) == 12
    assert entry.abstract == ""
    assert len(entry.notes_ko) == 2 and entry.notes_en == ()
    assert entry.notes_ko[1].startswith("Controllability라거나 Identity 보존")
    assert entry.tags == ("instruction-tuning", "multimodal", "image_generation")


def test_variant_with_latex_title_and_project_link() -> None:
    entry = read_note(_note("240110 PIXART"))
    assert entry.arxiv_id == "2401.05252"
    assert entry.title == ("PIXART-δ: Fast and Controllable Image Generation with Latent "
                           "Consistency Models")
    assert entry.abstract.startswith(
        "This technical report introduces PIXART-δ, a text-to-image synthesis framework that "
        "integrates the Latent Consistency Model (LCM) and ControlNet into the advanced PIXART-α"
    )
    assert "(von Platen et al., 2023)" in entry.abstract and "{" not in entry.abstract
    # The bare project URL between abstract and commentary stays, as a paragraph of its own.
    assert entry.commentary[0] == "https://pixart-alpha.github.io/"
    assert len(entry.notes_ko) == 1 and entry.notes_ko[0].startswith("PixArt-α (https://")
    assert entry.tags == ("image_generation", "diffusion")


def test_variant_blog_post_is_a_link_entry_with_tags_before_plain_english() -> None:
    entry = read_note(_note("240206 Qwen"))
    assert entry.arxiv_id is None
    assert entry.url == "https://qwenlm.github.io/blog/qwen1.5/"
    assert entry.title == "Qwen 1.5"  # no title line: the file name gives it
    assert entry.authors == () and entry.abstract == ""
    # The second header URL is kept as a link paragraph; the English after '#llm' is English.
    assert entry.commentary[0] == "https://github.com/QwenLM/Qwen1.5"
    assert len(entry.notes_ko) == 3 and entry.notes_ko[0].startswith("Qwen 1.5가 나왔습니다.")
    assert entry.links == ("https://github.com/QwenLM/Qwen1.5",)  # a link is no English
    assert entry.notes_en == (
        "Qwen 1.5 is released. I initially thought it is an enhancement centered around "
        "alignment, but it suggests that base pretraining model itself is updated. Team says "
        "that this is beta version of Qwen 2.",
        "But it looks like that benchmark score of base model itself is does not largely "
        "improved. I think they focused more on 32K context lengths and supporting "
        "multilinguality.",
        "In alignment aspect they mentions tool use and code interpreter. I think maybe tunings "
        "for long context/rag was done.",
    )
    assert entry.tags == ("llm",)


def test_variant_with_abstract_only() -> None:
    entry = read_note(_note("250326 Wan"))
    assert entry.arxiv_id == "2503.20314"
    assert entry.title == "Wan: Open and Advanced Large-Scale Video Generative Models"
    assert entry.abstract.startswith("This report presents Wan, a comprehensive and open suite")
    assert entry.abstract.endswith("https://github.com/Wan-Video/Wan2.1.")
    assert entry.commentary == () and entry.tags == ()


def test_every_variant_file_is_covered() -> None:
    tested = {"240103 Instruct-Imagen.md", "240110 PIXART-δ.md", "240206 Qwen 1.5.md",
              "250326 Wan.md"}
    assert {p.name for p in (NOTES / "variants").glob("*.md")} == tested


def test_abstract_latex_becomes_text_and_the_times_sign_comes_back() -> None:
    free = read_note(_note("241202 Free Process"))
    assert "an implicit PRM can be obtained" in free.abstract  # \textit{implicit PRM}
    assert "less than 1/38 of the training data" in free.abstract  # $1/38$
    assert "baseline á la Math-Shepherd" in free.abstract  # \textit{\'a la}
    taming = read_note(_note("241203 Taming"))
    assert "a large-scale codebook (2^18) with high dimension (256)" in taming.abstract
    token_flow = read_note(_note("241204 TokenFlow"))
    assert "0.63 at 384×384 resolution" in token_flow.abstract  # the note has 384*384


def test_read_notes_indexes_the_whole_folder_by_id(tmp_path: Path) -> None:
    shelf = read_notes(NOTES)
    assert shelf.errors == ()
    assert len(shelf.notes) == 36 + 12  # 2412/, variants/ and shapes/
    by_id = shelf.by_id()
    assert len(by_id) == 35 + 12  # all but the Qwen blog post
    assert by_id["2412.03069"].path.name == "241204 TokenFlow.md"
    assert read_notes(tmp_path / "absent").notes == ()


def test_read_notes_reports_bad_and_duplicate_notes_and_keeps_the_rest(tmp_path: Path) -> None:
    good = _note("241204 Navigation").read_text(encoding="utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "241204 Navigation.md").write_text(good, encoding="utf-8")
    (tmp_path / "b.md").write_text(good, encoding="utf-8")  # the same paper again
    (tmp_path / "c.md").write_bytes("한국어".encode("cp949"))
    (tmp_path / ".obsidian").mkdir()
    (tmp_path / ".obsidian" / "x.md").write_text("not a note", encoding="utf-8")
    shelf = read_notes(tmp_path)
    assert [n.path.name for n in shelf.notes] == ["241204 Navigation.md"]
    assert [str(e) for e in shelf.errors] == [
        f"{tmp_path / 'b.md'}:1: a second note about arXiv:2412.03572 "
        f"(the first is {tmp_path / 'a' / '241204 Navigation.md'}); this one is not used",
        f"{tmp_path / 'c.md'}:1: not UTF-8 text (it looks like EUC-KR/CP949: convert it with "
        "`iconv -f cp949 -t utf-8`)",
    ]


GOOD = "https://arxiv.org/abs/2412.03572v2\n\n*Navigation World Models* (Amir Bar, Yann LeCun)\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\n \n", "n.md:1: empty note (expected a URL on the first line)"),
        ("*Title* (A, B)\n\n> abstract\n",
         "n.md:1: expected the paper's URL (e.g. https://arxiv.org/abs/2412.01981) on the first "
         "line, got '*Title* (A, B)'"),
        # an introduction is a sentence or two of prose (or the title line): not a title and
        # commentary, not five paragraphs
        ("*Title* (A, B)\n\n한국어\n\nhttps://arxiv.org/abs/2412.03572\n",
         "n.md:1: the paper's URL comes on line 5, after 2 lines of text starting with "
         "'*Title* (A, B)' (expected it on the first line, or after a sentence or two of "
         "introduction)"),
        ("하나\n\n둘\n\n셋\n\n넷\n\nhttps://arxiv.org/abs/2412.03572\n",
         "n.md:1: the paper's URL comes on line 9, after 4 lines of text starting with '하나' "
         "(expected it on the first line, or after a sentence or two of introduction)"),
        (GOOD + "\n한국어\x00 문단\n",
         "n.md:5: a zero byte (NUL) in the text: the file is damaged or not text (remove it)"),
        ("https://arxiv.org/abs/notanid\n",
         "n.md:1: 'https://arxiv.org/abs/notanid' names no arXiv id "
         "(expected e.g. https://arxiv.org/abs/2412.01981)"),
        (GOOD + "\n한국어\n\n> a quote later\n",
         "n.md:7: a '>' quote after the commentary started "
         "(expected the abstract right after the title)"),
        (GOOD + "\n한국어\n\n## Thoughts\n",
         "n.md:7: unexpected heading '## Thoughts' (only '# Links' may follow the commentary)"),
        # what the digest format could not give back, once the note is in a draft
        (GOOD + "\n> 초록을 한국어로\n",
         "n.md:5: the abstract '초록을 한국어로' contains Hangul, so in a draft it would read "
         "back as commentary (abstracts are English: move it below the '>' lines)"),
        (GOOD + "\nEnglish first.\n(An aside in parentheses)\n한국어\n",
         "n.md:6: the commentary line '(An aside in parentheses)' follows an English line, so in "
         "a draft the two would read back as the title and authors of a new entry: reword it"),
        (GOOD + "\n> #MeToo #Research\n",
         "n.md:5: the abstract '#MeToo #Research' would read back as a #tags line: reword it"),
    ],
)
def test_what_a_note_parser_cannot_use_is_one_line(text: str, message: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_note(text, "n.md")
    assert str(info.value) == message and "\n" not in message


def test_a_small_note_with_version_and_links_section() -> None:
    text = GOOD + "\n> A $\\delta$ abstract\n\n한국어 문단\n\n#tag-1 #Tag_2\n\n# Links\n\n[[x]]\n#not-a-tag\n"
    entry = parse_note(text, "notes/241204 Navigation World Models.md")
    assert (entry.arxiv_id, entry.version) == ("2412.03572", 2)
    assert entry.authors == ("Amir Bar", "Yann LeCun") and entry.abstract == "A δ abstract"
    assert entry.commentary == ("한국어 문단",) and entry.tags == ("tag-1", "Tag_2")


def test_note_entries_write_as_digest_entries_and_read_back() -> None:
    from pipeline.core.digest_format import write_digest
    from pipeline.core.models import Digest

    entries = tuple(read_note(_note(row[0])) for row in DEC_2024[:5])
    text = write_digest(Digest(None, entries))
    again = parse_digest("2024-12-05\n" + text, "d.txt")
    assert [e.arxiv_id for e in again.entries] == [e.arxiv_id for e in entries]
    assert [e.commentary for e in again.entries] == [e.commentary for e in entries]


LINES = st.sampled_from([
    "https://arxiv.org/abs/2412.03572", "https://example.org/post", "*Title* (A, B)",
    "Title (A)", "> abstract $x^2$ \\textit{y}", "한국어 문단", "English words (https://x.y)",
    "<english>", "</english>", "#tag #other_tag", "# Links", "## Heading", "[[link]]", "",
    "*unclosed (A", "(", ")", "> ", "#", "https://arxiv.org/abs/99", "\ufeff",
    # the shapes of older notes: URL and text on one line, title and URL on one line,
    # wrapped titles, trailing hashtags, stray words, a folded post, a LaTeX comment sign
    "https://arxiv.org/abs/2412.03572 한국어", "Title (https://arxiv.org/abs/2412.03572)",
    "재미 https://arxiv.org/abs/2412.03572", "  regularization (A, B)", "more* (C)", "*Only*",
    "#a b", "text #t1 #t2", "continued abstract", "… 더 보기", "x %", "<english>Text</english>",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINES, st.text(max_size=30)), max_size=14))
def test_any_text_gives_an_entry_or_a_one_line_format_error(lines: list[str]) -> None:
    try:
        entry = parse_note("\n".join(lines), "n.md")
    except FormatError as exc:
        assert str(exc).startswith("n.md") and "\n" not in str(exc)
    else:
        assert entry.title.strip() and (entry.arxiv_id is None) != (entry.url is None)
        if entry.abstract or not entry.commentary or has_hangul(entry.commentary[0]):
            # what a draft gets is what the note said (but for the format's one limit)
            written = "2024-12-05\n" + "\n".join(write_entry(entry))
            (again,) = parse_digest(written, "d.txt").entries
            assert replace(again, line=entry.line) == entry


def test_notes_folder_reads_markdown_in_any_case_and_reports_a_missing_folder(
    tmp_path: Path,
) -> None:
    src = FIXTURES / "notes" / "2412"
    folder = tmp_path / "notes"
    folder.mkdir()
    for i, name in enumerate(("a.md", "b.MD", "c.markdown")):
        note = sorted(src.glob("*.md"))[i]
        (folder / name).write_bytes(note.read_bytes())
    (folder / "ignored.txt").write_text("not a note", encoding="utf-8")
    shelf = read_notes(folder)
    assert len(shelf.notes) == 3 and not shelf.errors
    missing = read_notes(tmp_path / "nope")
    assert not missing.notes
    assert [str(e) for e in missing.errors] == [
        f"{tmp_path / 'nope'}: no such folder (paths.notes): no notes are used"
    ]

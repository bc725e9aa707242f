"""The curator's per-paper note files (notes/**/*.md) read into entries, indexed by arXiv id.

A note, in the curator's layout (every part but the URL may be missing):

    https://arxiv.org/abs/2412.01981          the paper (or another URL: a link note)
    *Title* (Author One, Team: Author Two)    the title, with or without *...*
    > abstract, LaTeX as arXiv serves it
    Korean paragraphs
    <english> English paragraphs </english>   or plain English paragraphs
    #tag1 #tag_2                              before or after the English
    # Links                                   the notes app's links: ignored from here on

Each non-blank line of commentary is one paragraph, as in the digest format.

Six years of notes stray from this layout, and each stray shape is read as the curator meant
it (docs/curator.md lists them): a title or author list wrapped over lines, `*Title*` alone,
`Title (URL)` on one line, commentary after the URL on its line or a sentence before it, an
abstract going on without `>`, hashtags ending the last paragraph, a note about several
papers (one entry each). What the reader repairs or guesses in a way the curator may not have
meant (a stray word in the tags line, an unclosed <english>, a second title line, an abstract
without '>') is a NoteWarning naming the line, with a stable kind; what it cannot read is a
FormatError naming the line at fault.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.core.digest_format import decode_text, format_problem_at
from pipeline.core.errors import FormatError
from pipeline.core.latex import known_macro, latex_to_text
from pipeline.core.models import (
    TAG_RE,
    Entry,
    has_hangul,
    is_links_only,
    normalize_tag,
    split_arxiv_id,
)

_URL_LINE_RE = re.compile(r"<?(https?://\S+?)>?")
_ARXIV_URL_RE = re.compile(
    r"https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/(?P<id>[^\s?#]+?)(?:\.pdf)?/?"
)
_URL_THEN_TEXT_RE = re.compile(r"<?(?P<url>https?://[^\s<>]+?)>?\s+(?P<rest>\S.*)")
_TITLE_THEN_URL_RE = re.compile(
    r"\[?(?P<title>[^\[\]]*?\S)\]?\s*(?P<open>[(<])?(?P<url>https?://[^\s()<>]+)(?(open)[)>])"
)
_ARXIV_IN_TEXT_RE = re.compile(
    r"[(<]?(?P<url>https?://(?:www\.)?arxiv\.org/(?:abs|pdf|html)/[^\s()<>]+?)[)>]?(?=\s|$)"
)
_ANY_URL_RE = re.compile(r"https?://")
_LETTER_RE = re.compile(r"[^\W\d_]")
_STARRED_RE = re.compile(r"\*{1,2}(?P<title>[^*].*?)\*{1,2}")
_AUTHORS_ONLY_RE = re.compile(r"\((.+)\)")
_TRAILING_TAGS_RE = re.compile(r"(?:(?<=\s)#[\w\-]+[,;]?\s*)+$")
_TRAILING_COMMENT_RE = re.compile(r"(?:^|(?<=\s))(?<!\\)%\s*$")
_MACRO_RE = re.compile(r"\\([a-zA-Z]+)(?:\{\})?")
_INLINE_ENGLISH_RE = re.compile(r"</?english>", re.IGNORECASE)
_SEE_MORE_RE = re.compile(r"\s*(?:…|\.\.\.)\s*(?:더\s*보기|See more)\s*$")
_WIKILINK_LINE_RE = re.compile(r"(?:\[\[[^\]]*\]\]\s*)+")
_HEADING_RE = re.compile(r"#{1,6}\s+(?P<name>.*)")
_FILE_DATE_RE = re.compile(r"^\d{6}\s+")
# "384*384": a multiplication sign typed as '*' (the reference issue lost it as "384384").
_TIMES_RE = re.compile(r"(?<=\d)\s?\*\s?(?=\d)")
_TEAM_RE = re.compile(r"^(?P<team>[^,:()]{1,40}):\s+(?P<first>\S.*)$")
_NOT_SHOWN_RE = re.compile(r"\(?\s*additional authors not shown\s*\)?", re.IGNORECASE)
# 'arxiv.org/abs/…' without its scheme, and 'zhttps://…' (a key pressed with the paste).
_SCHEMELESS_RE = re.compile(r"(?:www\.)?arxiv\.org/(?:abs|pdf|html)/\S+")
_URL_TYPO_RE = re.compile(r"(?P<junk>[^\s:/<(\[*]{1,3})(?P<url>https?://\S+)")
# '[https://arxiv.org/abs/…](https://tracker…/…)': the paper is the link's text.
_MD_LINK_RE = re.compile(r"\[(?P<text>[^\[\]]+)\]\((?P<url>https?://[^\s()]+)\)")
_ARXIV_SOMEWHERE_RE = re.compile(
    r"(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/[^\s?#()\[\]<>]+")
# A copied id line ('| 2005.04318', 'arXiv:2005.04318v2'): the note's URL already says it.
_ID_LINE_RE = re.compile(
    r"\|?\s*(?:arXiv:\s*)?(?P<id>\d{4}\.\d{4,5}(?:v\d+)?|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}"
    r"(?:v\d+)?)\s*\|?", re.IGNORECASE)
_BULLET_RE = re.compile(r"(?:[-*+\u2022]|\d{1,2}[.)])\s+")
_LIST_ITEM_RE = re.compile(r"(?:[-*+\u2022]|\(?\d{1,2}[.)])\s+\S")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\u2019\-]+")
_IMAGE_LINE_RE = re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[\[[^\]]*\]\]")
_MARKER_RE = re.compile(r"<(?P<close>/?)(?P<word>[A-Za-z]{4,10})>")
# A run of #tags, after a sentence's end or at the line's start, with a remark after it.
_MID_TAGS_RE = re.compile(
    r"(?:^|(?<=[.!?)\]]\s))(?:#[\w\-]*[^\W\d_][\w\-]*[,;]?\s+)+(?=[^\s#])")
# Abbreviations that end with '.' but end no sentence: a title wraps after "vs.".
_ABBREV_END_RE = re.compile(r"(?:\b(?:vs|v|al|e\.g|i\.e|cf|etc|Dr|Mr|Ms|St|No|Fig|Eq|approx))\.$",
                            re.IGNORECASE)
_ABSTRACT_OPENER_RE = re.compile(
    r"(?:We |In this (?:paper|work|study|report)|This (?:paper|work|study|report) )")
_NAME_PARTICLES = frozenset((
    "van", "von", "de", "der", "den", "da", "di", "del", "della", "le", "la", "du", "dos",
    "das", "bin", "al", "el", "y", "zu", "ter", "ten", "and",
))
# An abstract pasted without '>' is a long English paragraph right after the title.
ABSTRACT_MIN_WORDS = 80
OPENER_ABSTRACT_MIN_WORDS = 30


# Stable kinds of NoteWarning: `digest check` counts findings by kind.
STRAY_TAG_WORD = "tag-stray-word"  # one word that is no #tag in the tags line
ENGLISH_BLOCK = "english-block"  # <english> unclosed, closed twice, misspelt
SEE_MORE = "see-more"  # '… 더 보기': a post copied while folded
SECOND_TITLE = "second-title"  # another 'Title (Authors)' line: not published
ID_LINE = "id-line"  # an id line naming another paper than the note's
MULTI_PAPER = "multi-paper"  # a note about several papers: one entry each
BARE_TITLE = "bare-title"  # a link note's title read from a line without *…* or authors
UNCLOSED_TITLE = "unclosed-title"  # 'Title (Authors' whose '(' never closes
UNQUOTED_ABSTRACT = "unquoted-abstract"  # an abstract pasted without '>'
MID_LINE_TAGS = "mid-line-tags"  # #tags inside a commentary line, with a remark after
IMAGE = "image"  # a Markdown image line: not published
URL_TYPO = "url-typo"  # stray characters before the URL of the first line


@dataclass(frozen=True)
class NoteWarning:
    """Something read in a note that the curator may not have meant: the note is used."""

    path: str
    line: int | None
    message: str
    kind: str = "note"  # one of the kinds above: what `digest check` counts

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Note:
    """One note file, the entry it holds, and what the reader repaired (warnings). A note
    about several papers holds one entry each: `entry` is the first, `more` the others."""

    path: Path
    entry: Entry
    warnings: tuple[NoteWarning, ...] = ()
    more: tuple[Entry, ...] = ()

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every entry of the note, in order."""
        return (self.entry, *self.more)


@dataclass(frozen=True)
class Notes:
    """Every readable note of a folder, plus the files that could not be used (and why)."""

    notes: tuple[Note, ...] = ()
    errors: tuple[FormatError, ...] = field(default=())

    def by_id(self) -> dict[str, Note]:
        """Notes about arXiv papers, by version-less arXiv id."""
        return {n.entry.arxiv_id: n for n in self.notes if n.entry.arxiv_id is not None}


def _split_authors(text: str) -> tuple[str, ...]:
    # arXiv's marker for a list it cut, not part of the last author's name
    text = _NOT_SHOWN_RE.sub("", text)
    names = [name.strip() for name in latex_to_text(text).split(",")]
    names = [name for name in names if name]
    if names:
        # "WanTeam: Ang Wang, ..." — the team is listed as an author of its own, as arXiv does.
        m = _TEAM_RE.match(names[0])
        if m is not None:
            names[:1] = [m.group("team").strip(), m.group("first").strip()]
    return tuple(names)


def _split_title_line(line: str) -> tuple[str, tuple[str, ...]] | None:
    """'*Title* (A, B)', 'Title (A, B)' or '*Title*' alone -> (title, authors); None when it
    is no title line."""
    if has_hangul(line):
        return None
    if (m := _STARRED_RE.fullmatch(line)) is not None:
        return latex_to_text(m.group("title")), ()
    if not line.endswith(")"):
        return None
    depth = 0
    for pos in range(len(line) - 1, -1, -1):
        if line[pos] == ")":
            depth += 1
        elif line[pos] == "(":
            depth -= 1
            if depth == 0:
                break
    else:
        return None
    title, authors = line[:pos].strip(), line[pos + 1 : -1]
    if title.startswith("*"):
        if (m := _STARRED_RE.fullmatch(title)) is None:
            return None
        title = m.group("title")
    if not title or not authors.strip() or "://" in authors:
        return None  # "(https://...)" after a sentence is a link, not an author list
    return latex_to_text(title), _split_authors(authors)


def _plausible_authors(authors: tuple[str, ...]) -> bool:
    """Names, not a sentence: what a title wrapped over lines must end with."""
    return all((len(name) <= 80 and len(name.split()) <= 8 and not name.endswith((".", "!", "?")))
               or name.endswith(" et al.") for name in authors)


def _join_wrapped(lines: list[str]) -> str:
    """Lines of one wrapped title or author list, as one line ('Pre-' + 'training' stays
    'Pre-training'; any other break is a space)."""
    text = lines[0]
    for line in lines[1:]:
        glue = "" if re.search(r"[^\W\d_]-$", text) else " "
        text = text.rstrip() + glue + line.lstrip()
    return text


def _title_from_file_name(path: Path) -> str:
    return _FILE_DATE_RE.sub("", Path(path).stem).strip()


def _arxiv_id(url: str, path: str | Path, line: int) -> tuple[str, int | None] | None:
    m = _ARXIV_URL_RE.fullmatch(url)
    if m is None:
        return None
    try:
        return split_arxiv_id(m.group("id"))
    except ValueError:
        raise FormatError(
            f"{url!r} names no arXiv id (expected e.g. https://arxiv.org/abs/2412.01981)",
            path=path,
            line=line,
        ) from None


@dataclass(frozen=True)
class _UrlLine:
    """A line that gives the note's URL, and what else it holds."""

    url: str
    title: str | None = None  # 'Title (https://…)': the title written before the URL
    rest: str | None = None  # 'https://… commentary': the text after the URL


def _url_line(line: str, first: bool = False) -> _UrlLine | None:
    """The URL of a header line: the URL alone, the URL then commentary, or the title then
    the URL ('Title (URL)', '*Title* URL', '[Title](URL)'); on the note's first line, also
    Korean commentary holding the paper's arXiv URL. None for any other line."""
    if (m := _URL_LINE_RE.fullmatch(line)) is not None:
        return _UrlLine(m.group(1))
    if (m := _MD_LINK_RE.fullmatch(line)) is not None and (
            a := _ARXIV_SOMEWHERE_RE.search(m.group("text"))) is not None:
        # '[https://arxiv.org/abs/…](https://t.co/…)': the tracker hides the paper's id.
        url = a.group(0)
        return _UrlLine(url if url.startswith("http") else "https://" + url)
    if (m := _URL_THEN_TEXT_RE.fullmatch(line)) is not None:
        return _UrlLine(m.group("url"), rest=m.group("rest"))
    if has_hangul(line):
        m = _ARXIV_IN_TEXT_RE.search(line) if first else None
        if m is None:
            return None
        # '재미있는 논문 (https://arxiv.org/abs/…)': the paper, and the sentence about it.
        rest = " ".join((line[: m.start()] + " " + line[m.end():]).split())
        return _UrlLine(m.group("url"), rest=rest or None)
    if (m := _TITLE_THEN_URL_RE.fullmatch(line)) is not None:
        title, url = m.group("title").strip(), m.group("url")
        bracketed = m.group("open") is not None or title.startswith("*")
        # 'Saw this on https://…' is a sentence: only an arXiv URL, or one set off by
        # brackets or after a *title*, makes the text before it a title.
        if bracketed or _ARXIV_URL_RE.fullmatch(url):
            if (star := _STARRED_RE.fullmatch(title)) is not None:
                title = star.group("title")
            title = title.rstrip(":—–- ").strip()
            if title:
                return _UrlLine(url, title=title)
    return None


@dataclass(frozen=True)
class _Header:
    arxiv_id: str | None
    version: int | None
    link: str | None  # the note's URL when it is not an arXiv paper
    extra: tuple[str, ...]  # further URLs (a project page, a repository)
    line: int
    title: str | None  # a title written on the URL line
    intro: tuple[tuple[int, str], ...]  # lines before the URL: commentary
    rest: tuple[tuple[int, str], ...]  # text after the URL on its line: a content line
    end: int  # index of the first content line after the URL lines


# A sentence or two may come before the URL ("A paper that was much discussed this week:").
MAX_INTRO_LINES = 3


def _read_header(content: list[tuple[int, str]], path: str | Path) -> _Header:
    """The URL lines at the top: the first arXiv URL pins the paper, else the first URL."""
    first = next(
        (i for i, (_, line) in enumerate(content[: MAX_INTRO_LINES + 1])
         if _url_line(line, first=i == 0)),
        None,
    )
    intro = content[:first] if first is not None else []
    title_first = _read_title(list(intro), 0) if intro else None  # '*Title* (A)', then URL
    if title_first is not None and title_first[2] < len(intro):
        title_first = None  # a title, then prose, then the URL: no layout a person writes
    if first is None or (title_first is None and any(_is_markup(line) for _, line in intro)):
        first_line, text = content[0]
        later = next((n for n, line in content if _url_line(line)), None)
        if later is None and _ANY_URL_RE.search(text):
            raise FormatError(
                f"expected the paper's URL alone on the first line (or first on it), got a URL "
                f"inside the text {text[:60]!r}",
                path=path, line=first_line,
            )
        if later is None:
            raise FormatError(
                f"expected the paper's URL (e.g. https://arxiv.org/abs/2412.01981) on the "
                f"first line, got {text[:60]!r}",
                path=path, line=first_line,
            )
        before = sum(1 for n, _ in content if n < later)
        raise FormatError(
            f"the paper's URL comes on line {later}, after {before} line{'s' * (before != 1)} "
            f"of text starting "
            f"with {text[:40]!r} (expected it on the first line, or after a sentence or two "
            "of introduction)",
            path=path, line=first_line,
        )
    head = _url_line(content[first][1], first=first == 0)
    assert head is not None
    urls: list[tuple[int, str]] = [(content[first][0], head.url)]
    end = first + 1
    if head.rest is None and head.title is None:
        while end < len(content) and (m := _URL_LINE_RE.fullmatch(content[end][1])):
            urls.append((content[end][0], m.group(1)))
            end += 1
    ids = [_arxiv_id(url, path, n) for n, url in urls]
    pinned = next((found for found in ids if found is not None), None)
    arxiv_id, version = pinned if pinned is not None else (None, None)
    link = urls[0][1] if pinned is None else None
    extra = tuple(
        url for (_, url), found in zip(urls, ids, strict=True)
        if url != link and (found is None or found[0] != arxiv_id)
    )
    rest = ((content[first][0], head.rest),) if head.rest else ()
    return _Header(arxiv_id, version, link, extra, urls[0][0], head.title, tuple(intro), rest,
                   end)


def _is_markup(line: str) -> bool:
    """Lines that are no prose: quotes, tags, headings, <english> markers."""
    if line.startswith("#"):
        return line == "#" or bool(_HEADING_RE.fullmatch(line)) or _split_tags_line(line) is not None
    return line.startswith((">", "<english>", "</english>", "*"))


# At most this many lines make one wrapped title with its author list.
MAX_TITLE_LINES = 4


def _read_title(
    content: list[tuple[int, str]], idx: int
) -> tuple[str, tuple[str, ...], int] | None:
    """The title line(s) at `idx`: '*Title* (Authors)' on one line, or wrapped over up to
    MAX_TITLE_LINES adjacent lines; (title, authors, index after it) or None."""
    block: list[str] = []
    starred: tuple[str, tuple[str, ...], int] | None = None  # '*Title*' with no authors yet
    for k in range(idx, min(idx + MAX_TITLE_LINES, len(content))):
        n, line = content[k]
        if k > idx and n != content[k - 1][0] + 1:
            break  # a blank line ends the title
        if has_hangul(line) or line.startswith((">", "<", "[[")) or _URL_LINE_RE.fullmatch(line):
            break
        if _ID_LINE_RE.fullmatch(line):
            break  # a copied id line is no part of a title
        if line.startswith("#") and (line == "#" or _HEADING_RE.fullmatch(line)
                                     or _split_tags_line(line) is not None):
            break  # a tags line or a heading; '#InsTag: …' is a title all the same
        if block and block[-1].endswith((".", "!", "?")) and not _ABBREV_END_RE.search(block[-1]):
            break  # a sentence ended: what follows is no continuation of a title
        block.append(line)
        split = _split_title_line(_join_wrapped(block))
        if split is None:
            continue
        if len(block) > 1 and split[1] and not _plausible_authors(split[1]):
            break
        if split[1]:
            return split[0], split[1], k + 1
        # '*Title*' alone: its author list may follow on the next lines
        starred = starred or (split[0], (), k + 1)
    return starred


def _split_tags_line(line: str) -> tuple[list[str], list[str]] | None:
    """A #tags line's tags and stray words; None when the line is not a #tags line."""
    if not line.startswith("#"):
        return None
    words = line.split()
    if not TAG_RE.fullmatch(words[0].rstrip(",;.")):
        return None
    tags: list[str] = []
    strays: list[str] = []
    for word in words:
        bare = word.rstrip(",;.")
        if TAG_RE.fullmatch(bare):
            tags.append(bare)
        else:
            strays.append(word)
    if not strays:
        return tags, []
    # One word that is no tag among tags ("#speech-text #synthetic-data a"): a slip of the
    # keyboard. More than one is a sentence that starts with a hashtag: commentary.
    if len(strays) == 1 and any(_LETTER_RE.search(t) for t in tags):
        return tags, strays
    return None


def _split_trailing_tags(line: str) -> tuple[str, list[str]] | None:
    """'commentary. #tag1 #tag2' -> ('commentary.', ['#tag1', '#tag2']); None without such
    a run of hashtags at the end."""
    m = _TRAILING_TAGS_RE.search(line)
    if m is None or not m.start():
        return None
    tags = [t.rstrip(",;") for t in m.group(0).split()]
    if not all(_LETTER_RE.search(t) for t in tags):
        return None  # "#1" is a rank, not a tag
    return line[: m.start()].rstrip(), tags


def _title_macros(abstract: str, title: str) -> str:
    """`\\veomni` in the abstract of 'VeOmni: …' is the authors' macro for the name: spelled as
    in the title (an unknown macro would otherwise read as its bare name)."""
    if "\\" not in abstract:
        return abstract
    words = {w.casefold(): w for w in re.findall(r"[A-Za-z][A-Za-z0-9]{2,}", title)}
    return _MACRO_RE.sub(
        lambda m: words[m.group(1).casefold()]
        if m.group(1).casefold() in words and not known_macro(m.group(1)) else m.group(0),
        abstract)


def _clean_abstract_line(line: str) -> str:
    """An abstract line without its quote marker and a LaTeX comment sign that ends it."""
    return _TRAILING_COMMENT_RE.sub("", line).strip()


def _see_more(line: str) -> str | None:
    """A commentary line without the '… 더 보기' (… See more) of a post copied from a
    social network, or None when it has none."""
    if not line.endswith(("보기", "See more")):
        return None
    m = _SEE_MORE_RE.search(line)
    return line[: m.start()].rstrip() if m else None


Warn = Callable[[int | None, str, str], None]


def _name_like(authors: tuple[str, ...]) -> bool:
    """Names as arXiv lists them ('Ann Lee', 'Ludwig van Beethoven', '王小明'), not the
    words of a sentence ('see Table 2')."""
    if not authors:
        return False
    for name in authors:
        name = name.removesuffix("et al.").strip()
        if not name:
            continue
        tokens = name.split()
        if not 1 <= len(tokens) <= 6 or any(ch.isdigit() for ch in name):
            return False
        for token in tokens:
            first = token.lstrip("(\"'")[:1]
            if token.casefold() in _NAME_PARTICLES:
                continue
            if not first or not first.isalpha() or first.islower():
                return False
    return True


def _words(line: str) -> int:
    return sum(1 for t in line.split() if _WORD_RE.fullmatch(t.strip(".,;:!?()\"'")))


def _is_prose(line: str) -> bool:
    """English sentences: words, not a formula, a number or a label."""
    tokens = line.split()
    words = _words(line)
    if words >= 4 and words >= 0.6 * len(tokens):
        return True
    # 'Interesting.': a sentence of its own, however short
    return (bool(words) and line[:1].isupper() and line.endswith((".", "!", "?"))
            and "=" not in line)


def _joins_korean(line: str, paragraph: list[str]) -> bool:
    """Whether a line without Hangul inside a Korean paragraph belongs to it (a list item, a
    formula, a number), rather than being English commentary."""
    if is_links_only(line):
        return False  # links are in every edition already
    if _LIST_ITEM_RE.match(line):
        korean_list = any(has_hangul(p) and _LIST_ITEM_RE.match(p) for p in paragraph)
        return korean_list or not _is_prose(line)
    return not _is_prose(line)


def _follow_paragraph_language(
    commentary: list[tuple[int, str, bool]],
) -> list[tuple[int, str, bool]]:
    """A line without Hangul in a Korean paragraph (lines with no blank line between, outside
    <english>) joins the Korean line before it (or after it), so the Korean edition keeps it:
    the digest format tells a paragraph's language by Hangul."""
    out: list[tuple[int, str, bool]] = []
    i = 0
    while i < len(commentary):
        j = i + 1
        while (j < len(commentary) and commentary[j][0] == commentary[j - 1][0] + 1
               and commentary[j][2] == commentary[i][2]):
            j += 1
        para = commentary[i:j]
        lines = [line for _, line, _ in para]
        if para[0][2] or len(para) == 1 or not any(has_hangul(t) for t in lines):
            out.extend(para)
        else:
            merged: list[tuple[int, str, bool]] = []
            pending: list[str] = []  # lines to join to the next Korean line
            for n, line, eng in para:
                if has_hangul(line) or not _joins_korean(line, lines):
                    if pending and has_hangul(line):
                        line = " ".join((*pending, line))
                        pending = []
                    merged.append((n, line, eng))
                elif merged and has_hangul(merged[-1][1]):
                    m_n, m_line, m_eng = merged[-1]
                    merged[-1] = (m_n, f"{m_line} {line}", m_eng)
                else:
                    pending.append(line)
            if pending:  # nothing Korean after them: they stay lines of their own
                merged.extend((para[-1][0], line, para[-1][2]) for line in pending)
            out.extend(merged)
        i = j
    return out


def _fix_url_typos(content: list[tuple[int, str]], warn: Warn) -> list[tuple[int, str]]:
    """The first lines' URL as meant: 'arxiv.org/abs/…' gets its scheme, 'zhttps://…' loses
    the stray key (with a warning)."""
    fixed = list(content)
    for k, (n, line) in enumerate(content[: MAX_INTRO_LINES + 1]):
        if _SCHEMELESS_RE.fullmatch(line):
            fixed[k] = (n, "https://" + line)
        elif (m := _URL_TYPO_RE.fullmatch(line)) is not None and k == 0:
            warn(n, f"{m.group('junk')!r} before the URL: read as {m.group('url')}", URL_TYPO)
            fixed[k] = (n, m.group("url"))
    return fixed


@dataclass(frozen=True)
class _Paper:
    """A line that names one of the papers of a note about several."""

    index: int  # in the note's content lines
    line: str  # without its list bullet
    arxiv_id: str
    version: int | None
    title: str | None
    group: int | None = None  # papers of one group share the commentary after them


def _paper_lines(content: list[tuple[int, str]]) -> list[_Paper]:
    """The lines naming arXiv papers a note is about: the URL lines at the top, then further
    'Title https://arxiv.org/abs/…' lines (when the note starts that way, or right after
    another), or an arXiv URL alone after a blank line with a title line below it."""
    first = next(
        (i for i, (_, line) in enumerate(content[: MAX_INTRO_LINES + 1])
         if _url_line(_BULLET_RE.sub("", line, count=1), first=i == 0)),
        None,
    )
    if first is None:
        return []
    papers: list[_Paper] = []
    seen: set[str] = set()

    def paper(i: int, line: str, title: str | None, url: str) -> bool:
        found = _ARXIV_URL_RE.fullmatch(url)
        if found is None:
            return False
        try:
            arxiv_id, version = split_arxiv_id(found.group("id"))
        except ValueError:
            return False
        if arxiv_id not in seen:
            seen.add(arxiv_id)
            papers.append(_Paper(i, line, arxiv_id, version,
                                 latex_to_text(title) if title else None))
        return True

    head_line = _BULLET_RE.sub("", content[first][1], count=1)
    run = 1  # the papers of the URL lines at the top: one group, whatever lies between
    head = _url_line(head_line, first=first == 0)
    assert head is not None
    if not paper(first, head_line, head.title, head.url):
        return []
    named = head.title is not None
    i = first + 1
    if head.title is None and head.rest is None:  # the run of URL lines at the top
        while i < len(content) and (m := _URL_LINE_RE.fullmatch(content[i][1])):
            paper(i, content[i][1], None, m.group(1))
            i += 1
        run = len(papers)
    previous = i - 1
    for k in range(i, len(content)):
        n, line = content[k]
        if _HEADING_RE.fullmatch(line):
            break
        if has_hangul(line) or "arxiv.org/" not in line:
            continue
        bare = _BULLET_RE.sub("", line, count=1)
        u = _url_line(bare)
        if u is None or u.rest is not None:
            continue
        after_paper = previous == k - 1
        if u.title is not None:
            if (named or after_paper) and len(u.title.split()) <= 20 and paper(
                    k, bare, u.title, u.url):
                previous = k
        elif (after_paper or n > content[k - 1][0] + 1) and (
                after_paper or _read_title(content, k + 1) is not None) and paper(
                k, bare, None, u.url):
            previous = k
    return [replace(p, group=0) if k < run else p for k, p in enumerate(papers)]


def parse_note_file(text: str, path: str | Path) -> Note:
    """Parse one note into a Note (its entry, or one entry per paper for a note about
    several, and warnings); raise FormatError naming the file and line for what cannot be
    read."""
    warnings: list[NoteWarning] = []

    def warn(line: int | None, message: str, kind: str) -> None:
        warnings.append(NoteWarning(str(path), line, message, kind))

    text = text.removeprefix("\ufeff")
    if (nul := text.find("\x00")) >= 0:
        raise FormatError("a zero byte (NUL) in the text: the file is damaged or not text "
                          "(remove it)", path=path, line=text.count("\n", 0, nul) + 1)
    lines = text.split("\n")  # line numbers as editors count them
    content = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not content:
        raise FormatError("empty note (expected a URL on the first line)", path=path, line=1)
    content = _fix_url_typos(content, warn)
    # Several papers need several arXiv URLs: most notes are spared the search.
    papers = _paper_lines(content) if text.count("arxiv.org/") > 1 else []
    if len(papers) <= 1:
        entry = _parse_entry(content, path, warn, _title_from_file_name(Path(path)))
        return Note(Path(path), entry, _sorted(warnings))

    # A note about several papers: each group of paper lines (one, or a list of them) and the
    # commentary after it up to the next group make the entries of those papers.
    groups: list[list[_Paper]] = []
    for found in papers:
        if groups and (groups[-1][-1].index == found.index - 1
                       or (found.group is not None and found.group == groups[-1][-1].group)):
            groups[-1].append(found)
        else:
            groups.append([found])
    entries: list[Entry] = []
    for g, group in enumerate(groups):
        lead = group[0]
        stop = groups[g + 1][0].index if g + 1 < len(groups) else len(content)
        section = content[: lead.index] if g == 0 else []
        section.append((content[lead.index][0], lead.line))
        members = {p.index for p in group}
        # other URL lines among the group's (a repository between papers) stay links
        section.extend(c for k, c in enumerate(content[lead.index + 1: group[-1].index + 1],
                                               lead.index + 1) if k not in members)
        section.extend(content[group[-1].index + 1: stop])
        first = _parse_entry(section, path, warn, None)
        entries.append(first)
        for other in group[1:]:
            entries.append(Entry(
                title=other.title or f"arXiv:{other.arxiv_id}", authors=(), abstract="",
                commentary=first.commentary, tags=first.tags, arxiv_id=other.arxiv_id,
                version=other.version, line=content[other.index][0],
            ))
    shared = any(len(group) > 1 for group in groups)
    warn(content[papers[0].index][0],
         f"a note about {len(papers)} papers "
         f"({', '.join('arXiv:' + p.arxiv_id for p in papers)}): read as {len(papers)} entries"
         + (" sharing the commentary" if shared else ", each with the commentary below it"),
         MULTI_PAPER)
    return Note(Path(path), entries[0], _sorted(warnings), tuple(entries[1:]))


def _sorted(warnings: list[NoteWarning]) -> tuple[NoteWarning, ...]:
    return tuple(sorted(warnings, key=lambda w: w.line or 0))


def _unclosed_title(
    content: list[tuple[int, str]], idx: int
) -> tuple[str, tuple[str, ...], int] | None:
    """'Title (Author, Author' whose '(' never closes (over up to MAX_TITLE_LINES lines):
    (title, authors, index after it) when what follows the '(' is a list of names."""
    block: list[str] = []
    for k in range(idx, min(idx + MAX_TITLE_LINES, len(content))):
        n, line = content[k]
        if k > idx and n != content[k - 1][0] + 1:
            break
        if (has_hangul(line) or line.startswith((">", "#", "<", "[[")) or ")" in line
                or _URL_LINE_RE.fullmatch(line)):
            break
        block.append(line)
        joined = _join_wrapped(block)
        head, sep, names = joined.partition(" (")
        if not sep or "(" in names:
            continue
        nxt = content[k + 1] if k + 1 < len(content) else None
        if (nxt is not None and nxt[0] == n + 1 and not has_hangul(nxt[1])
                and not nxt[1].startswith((">", "#", "<")) and (
                    "," in nxt[1] or names.rstrip().endswith(","))):
            continue  # the list goes on on the next line
        authors = _split_authors(names.rstrip(",; "))
        title = head.strip()
        if (star := _STARRED_RE.fullmatch(title)) is not None:
            title = star.group("title")
        if title and _name_like(authors) and _plausible_authors(authors):
            return latex_to_text(title), authors, k + 1
    return None


def _bare_title(content: list[tuple[int, str]], idx: int) -> str | None:
    """A link note's title written plainly on the line after the URL ('Introducing Foo: …'):
    short, no sentence, alone in its paragraph."""
    if idx >= len(content):
        return None
    n, line = content[idx]
    if has_hangul(line) or _is_markup(line) or _ANY_URL_RE.search(line) or line.startswith(
            ("<", "[[", "!", "|")):
        return None
    if line.endswith((".", "!", "?", ":", ",")) or not 1 <= len(line.split()) <= 15:
        return None
    if not _LETTER_RE.search(line):
        return None
    nxt = content[idx + 1] if idx + 1 < len(content) else None
    if nxt is not None and nxt[0] == n + 1 and not has_hangul(nxt[1]) and not _is_markup(nxt[1]):
        return None  # an English paragraph goes on: prose, not a title
    return line


def _english_marker(line: str) -> tuple[str, bool] | None:
    """'<english>' or '</english>' as written, misspelt ('<enligsh>') too: (marker, typo)."""
    m = _MARKER_RE.fullmatch(line)
    if m is None:
        return None
    word = m.group("word").casefold()
    marker = f"<{m.group('close')}english>"
    if word == "english":
        return marker, False
    if difflib.SequenceMatcher(None, word, "english").ratio() >= 0.7:
        return marker, True
    return None


def _unquoted_abstract(content: list[tuple[int, str]], idx: int) -> int | None:
    """Where an abstract pasted without '>' right after the title ends (index after it), or
    None: a long English paragraph before the Korean commentary."""
    end = idx
    while (end < len(content) and not has_hangul(content[end][1])
           and not _is_markup(content[end][1]) and not content[end][1].startswith("<")
           and (end == idx or content[end][0] == content[end - 1][0] + 1)):
        end += 1
    if end == idx:
        return None
    text = " ".join(line for _, line in content[idx:end])
    if _URL_LINE_RE.fullmatch(content[idx][1]) or _ID_LINE_RE.fullmatch(content[idx][1]):
        return None
    words = _words(text)
    korean_after = any(has_hangul(line) for _, line in content[end:])
    opener = _ABSTRACT_OPENER_RE.match(text) is not None
    if (words >= ABSTRACT_MIN_WORDS and (korean_after or opener)) or (
            opener and words >= OPENER_ABSTRACT_MIN_WORDS):
        return end
    return None


def _parse_entry(
    content: list[tuple[int, str]], path: str | Path, warn: Warn, file_title: str | None
) -> Entry:
    """One paper's entry from its lines (URL line first, or after an introduction);
    `file_title` is the title when no line gives one (None: the paper's id)."""
    header = _read_header(content, path)
    idx = header.end
    before = list(header.intro)  # commentary written before the body: intro, URL line's rest
    title = header.title or file_title or (f"arXiv:{header.arxiv_id}" if header.arxiv_id
                                           else None) or ""
    authors: tuple[str, ...] = ()
    titled = header.title is not None  # a line gave the title (not the file name)
    if header.rest and header.title is None and (found := _read_title(list(header.rest), 0)):
        title, authors, _ = found  # 'https://… *Title* (Authors)'
        titled = True
    else:
        before.extend(header.rest)
    if header.title is None and not authors and (found := _read_title(content, idx)):
        title, authors, idx = found
        titled = True
    elif header.title is None and not authors and header.intro and (
            found := _read_title(list(header.intro), 0)) is not None:
        title, authors, _ = found  # the title line written above the URL
        before = before[len(header.intro):]
        titled = True
    elif (header.title is not None and idx < len(content)
          and (m := _AUTHORS_ONLY_RE.fullmatch(content[idx][1])) is not None
          and "://" not in m.group(1) and not has_hangul(m.group(1))):
        authors = _split_authors(m.group(1))  # 'Title (URL)', then '(Authors)'
        idx += 1
    while not titled and idx < len(content) and (ided := _ID_LINE_RE.fullmatch(content[idx][1])):
        _id_line(ided, content[idx], header.arxiv_id, warn)  # '| 2005.04318' above the title
        idx += 1
        if (found := _read_title(content, idx)) is not None:
            title, authors, idx = found
            titled = True
    if not titled and (found := _unclosed_title(content, idx)) is not None:
        title, authors, idx = found
        titled = True
        warn(content[idx - 1][0], "the title line's '(' never closes: read the names after it "
             "as the authors (close it with ')')", UNCLOSED_TITLE)
    if not titled and header.link is not None and (bare := _bare_title(content, idx)):
        warn(content[idx][0], f"{bare[:60]!r} read as the title of the link (write it as "
             "*Title* to say so)", BARE_TITLE)
        title, titled = latex_to_text(bare), True
        idx += 1
    if not title:
        raise FormatError("no title: expected '*Title* (Author, Author)' after the URL",
                          path=path, line=content[min(idx, len(content) - 1)][0])

    abstract: list[str] = []
    abstract_line: int | None = None
    if (end := _unquoted_abstract(content, idx)) is not None and not any(
            line.startswith(">") for _, line in content[idx:]):
        lines_of = (f"line {content[idx][0]}" if end == idx + 1
                    else f"lines {content[idx][0]}-{content[end - 1][0]}")
        warn(content[idx][0], f"the English paragraph of {lines_of} read as the abstract "
             "(pasted without '>')", UNQUOTED_ABSTRACT)
        abstract.extend(_clean_abstract_line(line) for _, line in content[idx:end])
        abstract_line = content[idx][0]
        idx = end
    commentary: list[tuple[int, str, bool]] = [(n, line, False) for n, line in before]
    tags: dict[str, str] = {}
    english_open: int | None = None  # line where an open <english> block started
    english_closed: int | None = None  # line of the last </english>
    last_abstract: int | None = None  # line of the last abstract line, while it may go on
    korean_seen = any(has_hangul(line) for _, line in before)
    for n, line in content[idx:]:
        if (heading := _HEADING_RE.fullmatch(line)) is not None:
            if heading.group("name").strip().casefold() == "links":
                break
            raise FormatError(
                f"unexpected heading {line!r} (only '# Links' may follow the commentary)",
                path=path, line=n,
            )
        continuing = last_abstract is not None and n == last_abstract + 1
        last_abstract = None
        quote = line.startswith(">")
        if not quote and (typo := re.match(r"[A-Za-z]{1,4}>\s*(?=\S)", line)) and not abstract \
                and not commentary[len(before):] and english_open is None and not tags:
            warn(n, f"{typo.group(0).strip()!r} read as the abstract's '>' (a stray key)",
                 UNQUOTED_ABSTRACT)
            line, quote = ">" + line[typo.end():], True
        if quote:
            if commentary[len(before):] or tags or english_open is not None:
                raise FormatError(
                    "a '>' quote after the commentary started "
                    "(expected the abstract right after the title)",
                    path=path, line=n,
                )
            abstract.append(_clean_abstract_line(line[1:]))
            abstract_line = abstract_line or n
            last_abstract = n
            continue
        folded = line.casefold()
        if (marker := _english_marker(line)) is not None:
            folded, typo_marker = marker
            if typo_marker:
                warn(n, f"{line!r} read as {folded}", ENGLISH_BLOCK)
            if folded == "<english>":
                if english_open is not None:
                    warn(n, f"a second <english> while the one of line {english_open} is "
                         "open: read as one block", ENGLISH_BLOCK)
                else:
                    english_open = n
            elif english_open is not None:
                english_open, english_closed = None, n
            elif english_closed is not None:
                warn(n, f"</english> again (the block was closed at line {english_closed}): "
                     "ignored", ENGLISH_BLOCK)
            else:
                warn(n, "</english> without an <english> before it: ignored", ENGLISH_BLOCK)
            continue
        split_tags = None if line == "#" else _split_tags_line(line)
        if line == "#" or split_tags is not None:
            if split_tags is not None:
                found_tags, strays = split_tags
                for tag in found_tags:
                    tags.setdefault(normalize_tag(tag), tag[1:])
                if strays:
                    warn(n, f"{strays[0]!r} in the #tags line is not a tag: ignored (write "
                         f"#{strays[0].lstrip('#')} to make it one)", STRAY_TAG_WORD)
            if english_open is not None:
                warn(english_open, f"<english> is never closed: the English ends at the "
                     f"#tags line {n}", ENGLISH_BLOCK)
                english_open, english_closed = None, n
            continue
        if _WIKILINK_LINE_RE.fullmatch(line):
            continue  # a link to another note in the notes app: nothing a reader can follow
        if _IMAGE_LINE_RE.fullmatch(line):
            warn(n, "an image line: not published (the digest is text)", IMAGE)
            continue
        if (ided := _ID_LINE_RE.fullmatch(line)) is not None:
            _id_line(ided, (n, line), header.arxiv_id, warn)
            continue
        inline_english = "<english>" in folded or "</english>" in folded
        if inline_english:
            # '<english>Text</english>' on one line: the markers go, the text stays.
            line = _INLINE_ENGLISH_RE.sub("", line).strip()
            if not line:
                continue
        if (not korean_seen and english_open is None and not has_hangul(line)
                and (other := _second_title(line, title)) is not None):
            if not titled:  # the title line, after the abstract: the title
                title, titled = other, True
                authors = (_split_title_line(line) or ("", ()))[1]
                continue
            warn(n, f"a second title line {line[:60]!r} (another version's?): not published; "
                 f"the entry's title is {title[:60]!r}", SECOND_TITLE)
            continue
        if continuing and abstract and not has_hangul(line) and not _URL_LINE_RE.fullmatch(line):
            # The abstract goes on without '>' (a paragraph pasted as it was) until the blank
            # line or the Korean commentary.
            abstract.append(_clean_abstract_line(line))
            last_abstract = n
            continue
        if (cut := _see_more(line)) is not None:
            warn(n, "the line ends with '… 더 보기' (a post copied while folded): cut there",
                 SEE_MORE)
            line = cut
            if not line:
                continue
        if (mid := _split_mid_tags(line)) is not None:
            kept, found_tags = mid
            for tag in found_tags:
                tags.setdefault(normalize_tag(tag), tag[1:])
            warn(n, f"{' '.join(found_tags)} inside the line read as the note's tags; the rest "
                 "of the line stays commentary", MID_LINE_TAGS)
            line = kept
        korean_seen = korean_seen or has_hangul(line)
        commentary.append((n, line, english_open is not None or inline_english))
    if english_open is not None:
        warn(english_open, "<english> is never closed: the English ends at the end of the note",
             ENGLISH_BLOCK)
    if commentary:  # 'commentary. #tag1 #tag2': the hashtags end the note on its last line
        n, last, eng = commentary[-1]
        if (split := _split_trailing_tags(last)) is not None:
            kept, trailing = split
            commentary[-1] = (n, kept, eng)
            for tag in trailing:
                tags.setdefault(normalize_tag(tag), tag[1:])
    commentary = _follow_paragraph_language(commentary)

    extra = (" ".join(header.extra),) if header.extra else ()
    entry = Entry(
        title=title,
        authors=authors,
        abstract=_TIMES_RE.sub("×", latex_to_text(_title_macros(" ".join(abstract), title))),
        # Further header URLs stay, as a first paragraph of links.
        commentary=extra + tuple(line for _, line, _ in commentary),
        tags=tuple(tags.values()),
        arxiv_id=header.arxiv_id,
        version=header.version,
        url=header.link,
        line=header.line,
    )
    if (problem := format_problem_at(entry)) is not None:  # a draft could not hold it
        message, part, index = problem
        line_of = {"title": header.line, "abstract": abstract_line or header.line}
        at = line_of.get(part, header.line)
        if part == "commentary" and index is not None and index >= len(extra):
            at = commentary[index - len(extra)][0]
        raise FormatError(message, path=path, line=at)
    return entry


def _id_line(found: re.Match[str], where: tuple[int, str], own: str | None, warn: Warn) -> None:
    """A copied id line goes: the note's URL says the id already; another paper's id is
    worth a warning."""
    n, line = where
    if split_arxiv_id(found.group("id"))[0] != own:
        warn(n, f"the id line {line!r} names another paper than the note's "
             + (f"arXiv:{own}" if own else "link") + ": ignored", ID_LINE)


def _second_title(line: str, title: str) -> str | None:
    """The title of a 'Title (Author, Author)' or '*Title*' line, when it is one beyond doubt
    (the names read as names, and several of them or the title like the entry's): another
    version's title, copied below the first."""
    split = _split_title_line(line)
    if split is None:
        return None
    found, authors = split
    if not authors:
        return found if _STARRED_RE.fullmatch(line) else None
    if not (_name_like(authors) and _plausible_authors(authors)):
        return None
    if len(authors) >= 2 or line.startswith("*"):
        return found
    ours = set(title.casefold().split())
    theirs = set(found.casefold().split())
    return found if ours and len(ours & theirs) * 2 >= len(theirs) else None


def _split_mid_tags(line: str) -> tuple[str, list[str]] | None:
    """'… 학습. #meta_learning #rl 나중에 다시' -> the line without its #tags, and the tags: a
    run of them at the start of the line or after a sentence, with a remark after it."""
    if "#" not in line:
        return None
    m = _MID_TAGS_RE.search(line)
    if m is None:
        return None
    found = [t.rstrip(",;") for t in m.group(0).split()]
    if m.start() == 0 and len(found) < 2:
        return None  # '#GPT4 is …': a sentence that starts with a hashtag
    kept = " ".join((line[: m.start()].rstrip() + " " + line[m.end():]).split())
    return (kept, found) if kept else None


def parse_note(text: str, path: str | Path) -> Entry:
    """Parse one note into an Entry (its warnings: see parse_note_file)."""
    return parse_note_file(text, path).entry


def load_note(path: Path) -> Note:
    """Read and parse one note file, with its warnings (undecodable or unreadable files
    become FormatError)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read the note: {exc.strerror}", path=path) from exc
    return parse_note_file(decode_text(data, path), path)


def read_note(path: Path) -> Entry:
    """Read and parse one note file into its entry (its warnings: see load_note)."""
    return load_note(path).entry


NOTE_SUFFIXES = (".md", ".markdown")


def is_note_file(path: Path) -> bool:
    """Whether `path` names a note file (the curator's notes app writes Markdown)."""
    return path.suffix.lower() in NOTE_SUFFIXES and path.is_file()


def read_notes(folder: Path) -> Notes:
    """Read every note (*.md, *.markdown, any case) under `folder`, sorted; bad notes and
    duplicates go to `errors`. A missing folder is reported there too, not taken as empty."""
    notes: list[Note] = []
    errors: list[FormatError] = []
    seen: dict[str, Path] = {}
    if not folder.is_dir():
        return Notes(errors=(FormatError(
            "no such folder (paths.notes): no notes are used", path=folder),))
    for path in sorted(folder.rglob("*")):
        if not is_note_file(path):
            continue
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue  # the notes app's own folders (.obsidian, .trash)
        try:
            note = load_note(path)
        except FormatError as exc:
            errors.append(exc)
            continue
        # A note about several papers is one note per paper for the draft (the warnings go
        # with the first).
        for k, entry in enumerate(note.entries):
            if entry.arxiv_id is not None:
                if entry.arxiv_id in seen:
                    errors.append(FormatError(
                        f"a second note about arXiv:{entry.arxiv_id} "
                        f"(the first is {seen[entry.arxiv_id]}); this one is not used",
                        path=path, line=entry.line,
                    ))
                    continue
                seen[entry.arxiv_id] = path
            notes.append(Note(path, entry, note.warnings if k == 0 else ()))
    return Notes(tuple(notes), tuple(errors))

"""The top of a note: its URL lines (the paper's arXiv id, or a link), the title and author
lines however wrapped, copied id lines, and the #tags line shape both parts recognise."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import FormatError
from pipeline.core.latex import latex_to_text
from pipeline.core.models import TAG_RE, has_hangul, split_arxiv_id
from pipeline.curate.note_kinds import ID_LINE, URL_TYPO, Warn

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
_HEADING_RE = re.compile(r"#{1,6}\s+(?P<name>.*)")
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
# Abbreviations that end with '.' but end no sentence: a title wraps after "vs.".
_ABBREV_END_RE = re.compile(r"(?:\b(?:vs|v|al|e\.g|i\.e|cf|etc|Dr|Mr|Ms|St|No|Fig|Eq|approx))\.$",
                            re.IGNORECASE)
_NAME_PARTICLES = frozenset((
    "van", "von", "de", "der", "den", "da", "di", "del", "della", "le", "la", "du", "dos",
    "das", "bin", "al", "el", "y", "zu", "ter", "ten", "and",
))


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

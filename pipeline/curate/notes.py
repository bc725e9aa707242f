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
abstract going on without `>`, hashtags ending the last paragraph. What the reader repairs
in a way the curator may not have meant (a stray word in the tags line, an unclosed or twice
closed <english>) is a NoteWarning naming the line; what it cannot read is a FormatError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.digest_format import decode_text, format_problem
from pipeline.core.errors import FormatError
from pipeline.core.latex import known_macro, latex_to_text
from pipeline.core.models import TAG_RE, Entry, has_hangul, normalize_tag, split_arxiv_id

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


@dataclass(frozen=True)
class NoteWarning:
    """Something read in a note that the curator may not have meant: the note is used."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Note:
    """One note file, the entry it holds, and what the reader repaired (warnings)."""

    path: Path
    entry: Entry
    warnings: tuple[NoteWarning, ...] = ()


@dataclass(frozen=True)
class Notes:
    """Every readable note of a folder, plus the files that could not be used (and why)."""

    notes: tuple[Note, ...] = ()
    errors: tuple[FormatError, ...] = field(default=())

    def by_id(self) -> dict[str, Note]:
        """Notes about arXiv papers, by version-less arXiv id."""
        return {n.entry.arxiv_id: n for n in self.notes if n.entry.arxiv_id is not None}


def _split_authors(text: str) -> tuple[str, ...]:
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
    return line.startswith((">", "#", "<english>", "</english>", "*"))


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
        if has_hangul(line) or line.startswith((">", "#", "<", "[[")) or _URL_LINE_RE.fullmatch(line):
            break
        if block and block[-1].endswith((".", "!", "?")):
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


def parse_note_file(text: str, path: str | Path) -> Note:
    """Parse one note into a Note (entry and warnings); raise FormatError naming the file and
    line for what cannot be read."""
    warnings: list[NoteWarning] = []

    def warn(line: int | None, message: str) -> None:
        warnings.append(NoteWarning(str(path), line, message))

    text = text.removeprefix("\ufeff")
    if (nul := text.find("\x00")) >= 0:
        raise FormatError("a zero byte (NUL) in the text: the file is damaged or not text "
                          "(remove it)", path=path, line=text.count("\n", 0, nul) + 1)
    lines = text.split("\n")  # line numbers as editors count them
    content = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not content:
        raise FormatError("empty note (expected a URL on the first line)", path=path, line=1)
    header = _read_header(content, path)
    idx = header.end
    before = list(header.intro)  # commentary written before the body: intro, URL line's rest
    title = header.title or _title_from_file_name(Path(path))
    authors: tuple[str, ...] = ()
    if header.rest and header.title is None and (found := _read_title(list(header.rest), 0)):
        title, authors, _ = found  # 'https://… *Title* (Authors)'
    else:
        before.extend(header.rest)
    if header.title is None and not authors and (found := _read_title(content, idx)):
        title, authors, idx = found
    elif header.title is None and not authors and header.intro and (
            found := _read_title(list(header.intro), 0)) is not None:
        title, authors, _ = found  # the title line written above the URL
        before = before[len(header.intro):]
    elif (header.title is not None and idx < len(content)
          and (m := _AUTHORS_ONLY_RE.fullmatch(content[idx][1])) is not None
          and "://" not in m.group(1) and not has_hangul(m.group(1))):
        authors = _split_authors(m.group(1))  # 'Title (URL)', then '(Authors)'
        idx += 1
    if not title:
        raise FormatError("no title: expected '*Title* (Author, Author)' after the URL",
                          path=path, line=content[min(idx, len(content) - 1)][0])

    abstract: list[str] = []
    commentary: list[tuple[int, str]] = list(before)
    tags: dict[str, str] = {}
    english_open: int | None = None  # line where an open <english> block started
    english_closed: int | None = None  # line of the last </english>
    last_abstract: int | None = None  # line of the last abstract line, while it may go on
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
        if line.startswith(">"):
            if commentary[len(before):] or tags or english_open is not None:
                raise FormatError(
                    "a '>' quote after the commentary started "
                    "(expected the abstract right after the title)",
                    path=path, line=n,
                )
            abstract.append(_clean_abstract_line(line[1:]))
            last_abstract = n
            continue
        folded = line.casefold()
        if folded in ("<english>", "</english>"):
            if folded == "<english>":
                if english_open is not None:
                    warn(n, f"a second <english> while the one of line {english_open} is "
                         "open: read as one block")
                else:
                    english_open = n
            elif english_open is not None:
                english_open, english_closed = None, n
            elif english_closed is not None:
                warn(n, f"</english> again (the block was closed at line {english_closed}): "
                     "ignored")
            else:
                warn(n, "</english> without an <english> before it: ignored")
            continue
        split_tags = None if line == "#" else _split_tags_line(line)
        if line == "#" or split_tags is not None:
            if split_tags is not None:
                found_tags, strays = split_tags
                for tag in found_tags:
                    tags.setdefault(normalize_tag(tag), tag[1:])
                if strays:
                    warn(n, f"{strays[0]!r} in the #tags line is not a tag: ignored (write "
                         f"#{strays[0].lstrip('#')} to make it one)")
            if english_open is not None:
                warn(english_open, f"<english> is never closed: the English ends at the "
                     f"#tags line {n}")
                english_open, english_closed = None, n
            continue
        if _WIKILINK_LINE_RE.fullmatch(line):
            continue  # a link to another note in the notes app: nothing a reader can follow
        if "<english>" in folded or "</english>" in folded:
            # '<english>Text</english>' on one line: the markers go, the text stays.
            line = _INLINE_ENGLISH_RE.sub("", line).strip()
            if not line:
                continue
        if continuing and abstract and not has_hangul(line) and not _URL_LINE_RE.fullmatch(line):
            # The abstract goes on without '>' (a paragraph pasted as it was) until the blank
            # line or the Korean commentary.
            abstract.append(_clean_abstract_line(line))
            last_abstract = n
            continue
        if (cut := _see_more(line)) is not None:
            warn(n, "the line ends with '… 더 보기' (a post copied while folded): cut there")
            line = cut
            if not line:
                continue
        commentary.append((n, line))
    if english_open is not None:
        warn(english_open, "<english> is never closed: the English ends at the end of the note")
    if commentary:  # 'commentary. #tag1 #tag2': the hashtags end the note on its last line
        n, last = commentary[-1]
        if (split := _split_trailing_tags(last)) is not None:
            kept, trailing = split
            commentary[-1] = (n, kept)
            for tag in trailing:
                tags.setdefault(normalize_tag(tag), tag[1:])

    entry = Entry(
        title=title,
        authors=authors,
        abstract=_TIMES_RE.sub("×", latex_to_text(_title_macros(" ".join(abstract), title))),
        # Further header URLs stay, as a first paragraph of links.
        commentary=((" ".join(header.extra),) if header.extra else ())
        + tuple(line for _, line in commentary),
        tags=tuple(tags.values()),
        arxiv_id=header.arxiv_id,
        version=header.version,
        url=header.link,
        line=header.line,
    )
    if (problem := format_problem(entry)) is not None:  # a draft could not hold it
        raise FormatError(problem, path=path, line=header.line)
    return Note(Path(path), entry, tuple(sorted(warnings, key=lambda w: w.line or 0)))


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
        entry = note.entry
        if entry.arxiv_id is not None:
            if entry.arxiv_id in seen:
                errors.append(FormatError(
                    f"a second note about arXiv:{entry.arxiv_id} "
                    f"(the first is {seen[entry.arxiv_id]}); this one is not used",
                    path=path, line=entry.line,
                ))
                continue
            seen[entry.arxiv_id] = path
        notes.append(note)
    return Notes(tuple(notes), tuple(errors))

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.digest import decode_text, format_problem
from pipeline.errors import FormatError
from pipeline.models import TAG_RE, Entry, has_hangul, normalize_tag, split_arxiv_id
from pipeline.text import latex_to_text

_URL_LINE_RE = re.compile(r"<?(https?://\S+?)>?")
_ARXIV_URL_RE = re.compile(
    r"https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/(?P<id>[^\s?#]+?)(?:\.pdf)?/?"
)
_TAG_LINE_RE = re.compile(r"(?:#[\w\-]+\s*)+")
_WIKILINK_LINE_RE = re.compile(r"(?:\[\[[^\]]*\]\]\s*)+")
_HEADING_RE = re.compile(r"#{1,6}\s+(?P<name>.*)")
_FILE_DATE_RE = re.compile(r"^\d{6}\s+")
# "384*384": a multiplication sign typed as '*' (the reference issue lost it as "384384").
_TIMES_RE = re.compile(r"(?<=\d)\s?\*\s?(?=\d)")
_TEAM_RE = re.compile(r"^(?P<team>[^,:()]{1,40}):\s+(?P<first>\S.*)$")


@dataclass(frozen=True)
class Note:
    """One note file and the entry it holds."""

    path: Path
    entry: Entry


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
    """'*Title* (A, B)' or 'Title (A, B)' -> (title, authors); None when it is no title line."""
    if not line.endswith(")") or has_hangul(line):
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
        if not title.endswith("*") or len(title) < 3:
            return None
        title = title.strip("*").strip()
    if not title or not authors.strip() or "://" in authors:
        return None  # "(https://...)" after a sentence is a link, not an author list
    return latex_to_text(title), _split_authors(authors)


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
class _Header:
    arxiv_id: str | None
    version: int | None
    link: str | None  # the note's URL when it is not an arXiv paper
    extra: tuple[str, ...]  # further URLs (a project page, a repository)
    line: int
    end: int  # index of the first content line after the URL lines


def _read_header(content: list[tuple[int, str]], path: str | Path) -> _Header:
    """The URL lines at the top: the first arXiv URL pins the paper, else the first URL."""
    urls: list[tuple[int, str]] = []
    while len(urls) < len(content) and (m := _URL_LINE_RE.fullmatch(content[len(urls)][1])):
        urls.append((content[len(urls)][0], m.group(1)))
    if not urls:
        first_line, first = content[0]
        raise FormatError(
            f"expected the paper's URL (e.g. https://arxiv.org/abs/2412.01981) "
            f"on the first line, got {first[:60]!r}",
            path=path,
            line=first_line,
        )
    ids = [_arxiv_id(url, path, n) for n, url in urls]
    pinned = next((found for found in ids if found is not None), None)
    arxiv_id, version = pinned if pinned is not None else (None, None)
    link = urls[0][1] if pinned is None else None
    extra = tuple(
        url for (_, url), found in zip(urls, ids, strict=True)
        if url != link and (found is None or found[0] != arxiv_id)
    )
    return _Header(arxiv_id, version, link, extra, urls[0][0], len(urls))


def parse_note(text: str, path: str | Path) -> Entry:
    """Parse one note into an Entry; raise FormatError naming the file and line otherwise."""
    lines = text.removeprefix("\ufeff").split("\n")  # line numbers as editors count them
    content = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not content:
        raise FormatError("empty note (expected a URL on the first line)", path=path, line=1)
    header = _read_header(content, path)
    idx = header.end

    title = _title_from_file_name(Path(path))
    authors: tuple[str, ...] = ()
    if idx < len(content) and (split := _split_title_line(content[idx][1])) is not None:
        title, authors = split
        idx += 1
    if not title:
        raise FormatError("no title: expected '*Title* (Author, Author)' after the URL",
                          path=path, line=content[min(idx, len(content) - 1)][0])

    abstract: list[str] = []
    commentary: list[str] = []
    tags: dict[str, str] = {}
    english_open: int | None = None  # line where an open <english> block started
    for n, line in content[idx:]:
        if (heading := _HEADING_RE.fullmatch(line)) is not None:
            if heading.group("name").strip().casefold() == "links":
                break
            raise FormatError(
                f"unexpected heading {line!r} (only '# Links' may follow the commentary)",
                path=path, line=n,
            )
        if line.startswith(">"):
            if commentary or tags or english_open is not None:
                raise FormatError(
                    "a '>' quote after the commentary started "
                    "(expected the abstract right after the title)",
                    path=path, line=n,
                )
            abstract.append(line[1:].strip())
        elif line.casefold() in ("<english>", "</english>"):
            opening = line.casefold() == "<english>"
            if opening == (english_open is not None):
                expected = "</english>" if opening else "<english> before it"
                raise FormatError(f"unexpected {line} (expected {expected})", path=path, line=n)
            english_open = n if opening else None
        elif line == "#" or _TAG_LINE_RE.fullmatch(line):
            for tag in TAG_RE.findall(line):
                tags.setdefault(normalize_tag(tag), tag)
        elif _WIKILINK_LINE_RE.fullmatch(line):
            pass  # a link to another note in the notes app: nothing a reader can follow
        elif "<english>" in line.casefold() or "</english>" in line.casefold():
            raise FormatError("<english> and </english> must stand on lines of their own",
                              path=path, line=n)
        else:
            commentary.append(line)
    if english_open is not None:
        raise FormatError("<english> is never closed (expected </english>)", path=path,
                          line=english_open)

    entry = Entry(
        title=title,
        authors=authors,
        abstract=_TIMES_RE.sub("×", latex_to_text(" ".join(abstract))),
        # Further header URLs stay, as a first paragraph of links.
        commentary=((" ".join(header.extra),) if header.extra else ()) + tuple(commentary),
        tags=tuple(tags.values()),
        arxiv_id=header.arxiv_id,
        version=header.version,
        url=header.link,
        line=header.line,
    )
    if (problem := format_problem(entry)) is not None:  # a draft could not hold it
        raise FormatError(problem, path=path, line=header.line)
    return entry


def read_note(path: Path) -> Entry:
    """Read and parse one note file (undecodable or unreadable files become FormatError)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read the note: {exc.strerror}", path=path) from exc
    return parse_note(decode_text(data, path), path)


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
            entry = read_note(path)
        except FormatError as exc:
            errors.append(exc)
            continue
        if entry.arxiv_id is not None:
            if entry.arxiv_id in seen:
                errors.append(FormatError(
                    f"a second note about arXiv:{entry.arxiv_id} "
                    f"(the first is {seen[entry.arxiv_id]}); this one is not used",
                    path=path, line=entry.line,
                ))
                continue
            seen[entry.arxiv_id] = path
        notes.append(Note(path, entry))
    return Notes(tuple(notes), tuple(errors))

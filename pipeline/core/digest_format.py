"""Read and write the digest format (DESIGN §3): pure functions over frozen dataclasses.

A digest is a date line, then entries of: title, `(authors)`, an optional `arXiv:ID` (or abs
URL, or a non-arXiv URL for a link entry), the abstract, commentary lines (Korean, then
English), and one `#tag #tag` line that ends the entry. Blank lines are ignored on reading.
The canonical form (what `write_digest` gives) has no blank lines, writes ids as `arXiv:ID`,
keeps the date line's style and the presence of a final newline, so a canonical file reads and
writes back to the same bytes.

The reader's form (an email's text part, site/issues/D.txt) is what a person reads top to
bottom: a heading `Name · date`, then per paper its title, `(authors)` and link on adjacent
lines, the commentary paragraphs, the labelled abstract (`Abstract: …`, `초록: …`) and the tags
line, blank lines between; then a rule line and whatever the sender adds (other papers, links).
`write_reader_entry` writes an entry, `parse_reader_text` reads the entries back.
"""

from __future__ import annotations

import codecs
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline.core.errors import FormatError
from pipeline.core.flowed import SIGNATURE_SEPARATOR, unflow
from pipeline.core.models import ARXIV_ID_RE, TAG_RE, DateStyle, Digest, Entry, has_hangul

_KO_DATE_RE = re.compile(r"(\d{4})\s*년\s*(\d{1,2})\s*월\s*(\d{1,2})\s*일")
_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EN_DATE_RE = re.compile(r"[A-Z][a-z]+ \d{1,2}, \d{4}")
_AUTHORS_RE = re.compile(r"\((.*)\)")
_ID_LINE_RE = re.compile(
    rf"(?:arXiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/)(?P<ref>{ARXIV_ID_RE.pattern})"
    r"(?:\.pdf)?/?",
    re.IGNORECASE,
)
_URL_LINE_RE = re.compile(r"https?://\S+")
_TAG_TOKEN_RE = re.compile(TAG_RE.pattern)
_EXAMPLE_DATE = "'2024년 12월 5일', '2024-12-05' or 'December 5, 2024'"


def parse_date_line(line: str) -> tuple[date, DateStyle] | None:
    """The date and its style if `line` is a date line, else None."""
    text = line.strip()
    try:
        if m := _KO_DATE_RE.fullmatch(text):
            return date(int(m[1]), int(m[2]), int(m[3])), "ko"
        if _ISO_DATE_RE.fullmatch(text):
            return date.fromisoformat(text), "iso"
        if _EN_DATE_RE.fullmatch(text):
            return datetime.strptime(text, "%B %d, %Y").date(), "en"
    except ValueError:
        return None
    return None


def format_date_line(day: date, style: DateStyle) -> str:
    """The date line of a digest in the given style (Babel's long format for ko and en)."""
    if style == "iso":
        return day.isoformat()
    from babel.dates import format_date  # only to write a date: reading needs no Babel

    return format_date(day, "long", locale=style)


def parse_tags_line(line: str) -> tuple[str, ...] | None:
    """The tags (without '#') if every word of `line` is a #tag, else None."""
    if line.strip() == "#":
        return ()  # an entry whose tags are still to be written
    words = line.split()
    if not words or not all(_TAG_TOKEN_RE.fullmatch(w) for w in words):
        return None
    return tuple(w[1:] for w in words)


def _authors(line: str) -> tuple[str, ...] | None:
    m = _AUTHORS_RE.fullmatch(line.strip())
    if m is None:
        return None
    return tuple(a.strip() for a in m[1].split(",") if a.strip())


class _Reader:
    """Walks the non-blank lines of one digest, keeping line numbers for messages; a
    signature separator line ("-- ", as below an email's text part) ends the digest."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        lines = text.split("\n")
        for number, line in enumerate(lines):
            if line.rstrip("\r") == SIGNATURE_SEPARATOR:
                lines = lines[:number]
                break
        self.lines = [
            (number, line.rstrip())
            for number, line in enumerate(lines, start=1)
            if line.strip()
        ]
        self.pos = 0

    def peek(self, ahead: int = 0) -> tuple[int, str] | None:
        i = self.pos + ahead
        return self.lines[i] if i < len(self.lines) else None

    def take(self) -> tuple[int, str]:
        item = self.lines[self.pos]
        self.pos += 1
        return item

    def error(self, line: int | None, message: str) -> FormatError:
        return FormatError(message, path=self.path, line=line)


def _starts_entry(reader: _Reader, ahead: int) -> bool:
    """True when the line at `ahead` looks like the authors line of a new entry."""
    authors = reader.peek(ahead)
    after = reader.peek(ahead + 1)
    return (
        authors is not None
        and _authors(authors[1]) is not None
        and after is not None
        and parse_tags_line(after[1]) is None
    )


def _parse_entry(reader: _Reader) -> Entry:
    start, title = reader.take()
    if parse_tags_line(title) is not None:
        raise reader.error(start, "expected a title line, got a #tags line")
    nxt = reader.peek()
    if nxt is None:
        raise reader.error(start, f"file ends after the title {title!r}: expected its "
                           "authors line '(Author One, Author Two)'")
    authors = _authors(nxt[1])
    if authors is None:
        raise reader.error(nxt[0], f"expected the authors line '(Author One, Author Two)' "
                           f"after the title {title!r} (line {start})")
    reader.take()

    arxiv_id: str | None = None
    version: int | None = None
    url: str | None = None
    if (nxt := reader.peek()) is not None:
        if m := _ID_LINE_RE.fullmatch(nxt[1].strip()):
            arxiv_id = m["id"]
            version = int(m["version"]) if m["version"] else None
            reader.take()
        elif _URL_LINE_RE.fullmatch(nxt[1].strip()):
            url = nxt[1].strip()
            reader.take()

    abstract = ""
    commentary: list[str] = []
    while True:
        nxt = reader.peek()
        if nxt is None:
            raise reader.error(
                None, f"file ends mid-entry: the entry {title!r} (line {start}) has no "
                "#tags line (expected a line like '#tag #other-tag' to end it)"
            )
        number, line = nxt
        tags = parse_tags_line(line)
        if tags is not None:
            reader.take()
            break
        if commentary or abstract or has_hangul(line):
            if not has_hangul(line) and _starts_entry(reader, 1):
                raise reader.error(
                    number, f"expected a #tags line to end the entry {title!r} (line {start}) "
                    f"before the next entry {line!r}"
                )
            commentary.append(line)
        else:
            abstract = line
        reader.take()
    try:
        return Entry(title=title, authors=authors, abstract=abstract, commentary=tuple(commentary),
                     tags=tags, arxiv_id=arxiv_id, version=version, url=url, line=start)
    except ValueError as exc:
        raise reader.error(start, str(exc)) from exc


# --- the reader's form -------------------------------------------------------------------------

# The abstract's label per language; the reader takes any of them.
ABSTRACT_LABELS = {"ko": "초록:", "en": "Abstract:"}
HEADING_SEPARATOR = " · "  # between the newsletter's name and the date in the heading
# Ends the papers: what follows (other papers, links) is the sender's, not entries.
END_OF_PAPERS = "-" * 40


def _abstract_of(line: str) -> str | None:
    """The abstract if `line` is a labelled abstract line, else None."""
    for label in ABSTRACT_LABELS.values():
        if line == label or line.startswith(label + " "):
            return line[len(label):].strip()
    return None


def reader_heading(name: str, day: date, style: DateStyle) -> str:
    """The heading line of the reader's form: the newsletter's name and the date."""
    return f"{name.strip() or 'Digest'}{HEADING_SEPARATOR}{format_date_line(day, style)}"


def parse_heading(line: str) -> tuple[date, DateStyle] | None:
    """The date of a reader's heading `Name · date` (or of a bare date line), else None."""
    if (bare := parse_date_line(line)) is not None:
        return bare
    _, sep, tail = line.rpartition(HEADING_SEPARATOR.strip())
    return parse_date_line(tail) if sep else None


def write_reader_entry(entry: Entry, abstract_label: str, abs_urls: bool = True) -> list[str]:
    """One entry in the reader's form: title, (authors) and link on adjacent lines, each
    commentary paragraph after a blank line, then the labelled abstract and the tags line.
    An entry with no abstract whose last paragraph starts with a label gets an empty label
    line, so that paragraph reads back as commentary."""
    lines = [entry.title, "(" + ", ".join(entry.authors) + ")"]
    if entry.arxiv_id is not None:
        lines.append(f"https://arxiv.org/abs/{entry.arxiv_id}" if abs_urls else
                     f"arXiv:{entry.arxiv_id}" + (f"v{entry.version}" if entry.version else ""))
    elif entry.url is not None:
        lines.append(entry.url)
    for paragraph in entry.commentary:
        lines += ["", paragraph]
    last = entry.commentary[-1] if entry.commentary else ""
    if entry.abstract or _abstract_of(last) is not None:
        lines += ["", f"{abstract_label} {entry.abstract}".rstrip()]
    lines.append(" ".join("#" + t for t in entry.tags) or "#")
    return lines


def parse_reader_text(text: str, path: str | Path = "<text>") -> Digest:
    """The entries of a text in the reader's form (unflowed); a bare date first line is the
    earlier layout (the spaced digest format) and is read as such. Stops at the rule line
    that ends the papers, or at a "-- " signature line."""
    path = str(path)
    raw = text.split("\n")
    for number, line in enumerate(raw):
        if line.rstrip("\r") == SIGNATURE_SEPARATOR:
            raw = raw[:number]
            break
    lines = [line.rstrip() for line in raw]
    pos = 0

    def skip_blank() -> None:
        nonlocal pos
        while pos < len(lines) and not lines[pos].strip():
            pos += 1

    def error(line: int | None, message: str) -> FormatError:
        return FormatError(message, path=path, line=line)

    skip_blank()
    if pos == len(lines):
        raise error(None, "empty file: expected a heading line like 'ML Papers Digest · "
                    "December 5, 2024'")
    if parse_date_line(lines[pos]) is not None:
        return parse_digest(text, path)  # the earlier layout: the spaced digest format
    heading = parse_heading(lines[pos])
    if heading is None:
        raise error(pos + 1, "expected a heading line like 'ML Papers Digest · December 5, "
                    f"2024', got {lines[pos][:60]!r}")
    pos += 1
    entries: list[Entry] = []
    while True:
        skip_blank()
        if pos == len(lines):
            break
        start, title = pos + 1, lines[pos]
        following = lines[pos + 1] if pos + 1 < len(lines) else ""
        authors = _authors(following)
        if authors is None:
            if title == END_OF_PAPERS:
                break
            raise error(pos + 2, f"expected the authors line '(Author One, Author Two)' "
                        f"right after the title {title!r} (line {start})")
        pos += 2
        arxiv_id: str | None = None
        version: int | None = None
        url: str | None = None
        if pos < len(lines) and (m := _ID_LINE_RE.fullmatch(lines[pos].strip())):
            arxiv_id, version = m["id"], int(m["version"]) if m["version"] else None
            pos += 1
        elif pos < len(lines) and _URL_LINE_RE.fullmatch(lines[pos].strip()):
            url = lines[pos].strip()
            pos += 1
        body: list[str] = []
        tags: tuple[str, ...] | None = None
        while pos < len(lines):
            line = lines[pos]
            pos += 1
            if not line.strip():
                continue
            if (tags := parse_tags_line(line)) is not None:
                break
            body.append(line)
        if tags is None:
            raise error(None, f"file ends mid-entry: the entry {title!r} (line {start}) has "
                        "no #tags line (expected a line like '#tag #other-tag' to end it)")
        abstract = _abstract_of(body[-1]) if body else None
        if abstract is not None:
            body.pop()
        try:
            entries.append(Entry(title=title, authors=authors, abstract=abstract or "",
                                 commentary=tuple(body), tags=tags, arxiv_id=arxiv_id,
                                 version=version, url=url, line=start))
        except ValueError as exc:
            raise error(start, str(exc)) from exc
    return Digest(date=heading[0], entries=tuple(entries), date_style=heading[1],
                  final_newline=text.endswith("\n"))


def parse_digest(text: str, path: str | Path = "<digest>") -> Digest:
    """Parse digest text; raises FormatError naming the file, the line and what was expected."""
    reader = _Reader(text, str(path))
    first = reader.peek()
    if first is None:
        raise reader.error(None, f"empty file: expected a date line like {_EXAMPLE_DATE}")
    parsed = parse_date_line(first[1])
    if parsed is None:
        raise reader.error(first[0], f"expected a date line like {_EXAMPLE_DATE}, "
                           f"got {first[1][:60]!r}")
    reader.take()
    entries = []
    while reader.peek() is not None:
        entries.append(_parse_entry(reader))
    return Digest(
        date=parsed[0], entries=tuple(entries), date_style=parsed[1],
        final_newline=text.endswith("\n"),
    )


def decode_text(data: bytes, path: str | Path) -> str:
    """Decode a text file as UTF-8, with a one-line error for binary files and other encodings."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Notepad's "Unicode"
        raise FormatError("UTF-16 text, expected UTF-8 (convert it with "
                          "`iconv -f utf-16 -t utf-8`)", path=path)
    if (nul := data.find(b"\x00")) >= 0:
        if nul < 8192:
            raise FormatError("binary file: expected UTF-8 text", path=path)
        # Text with a zero byte further on (a damaged file): never into what is published.
        raise FormatError("a zero byte (NUL) in the text: the file is damaged or not text "
                          "(remove it)", path=path, line=data.count(b"\n", 0, nul) + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = ""
        try:
            data.decode("cp949")
            hint = " (it looks like EUC-KR/CP949: convert it with `iconv -f cp949 -t utf-8`)"
        except UnicodeDecodeError:
            pass
        raise FormatError(f"not UTF-8 text{hint}", path=path, line=line) from exc
    return text.removeprefix("\ufeff")


def read_digest_bytes(path: Path) -> bytes:
    """The bytes of a digest file, with one-line errors for a missing file or a folder."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise FormatError("no such file", path=path) from exc
    except IsADirectoryError as exc:
        raise FormatError("is a directory, expected a digest file", path=path) from exc
    except OSError as exc:  # unreadable (permissions, a broken link): this file, not the run
        raise FormatError(f"cannot read the file: {exc.strerror or exc}", path=path) from exc


def read_digest(path: Path, flowed: bool = False) -> Digest:
    """Read and parse a digest file (thin disk adapter around parse_digest); `flowed`: the
    file is a text part in the reader's form (parse_reader_text), its soft-broken lines
    joined first (line numbers then count joined lines)."""
    text = decode_text(read_digest_bytes(path), path)
    return parse_reader_text(unflow(text), path) if flowed else parse_digest(text, path)


def format_problem(entry: Entry) -> str | None:
    """Why `entry` would not read back the same once written in the digest format, or None."""
    found = format_problem_at(entry)
    return found[0] if found is not None else None


def format_problem_at(entry: Entry) -> tuple[str, str, int | None] | None:
    """format_problem with where it is: (message, 'title' | 'abstract' | 'commentary', index of
    the commentary line or None), so a reader can name the line at fault."""
    for kind, text, index in (("title", entry.title, None), ("abstract", entry.abstract, None),
                              *(("commentary line", c, i)
                                for i, c in enumerate(entry.commentary))):
        if text and parse_tags_line(text) is not None:  # it would end the entry early
            return (f"the {kind} {text[:60]!r} would read back as a #tags line: reword it",
                    kind.split()[0], index)
    if has_hangul(entry.abstract):
        return (f"the abstract {entry.abstract[:60]!r} contains Hangul, so in a draft it would "
                "read back as commentary (abstracts are English: move it below the '>' lines)",
                "abstract", None)
    # The reader takes an English line, then '(…)', then anything but the #tags line as the
    # title and authors of the next entry (see _starts_entry).
    for i, (before, line) in enumerate(
            zip(entry.commentary, entry.commentary[1:-1], strict=False), 1):
        if not has_hangul(before) and _authors(line) is not None:
            return (f"the commentary line {line[:60]!r} follows an English line, so in a draft "
                    "the two would read back as the title and authors of a new entry: reword it",
                    "commentary", i)
    return None


def write_entry(entry: Entry, abs_urls: bool = False, strict: bool = True) -> list[str]:
    """The lines of one entry in canonical form (with `abs_urls`, the id line as the paper's
    abs URL, for readers); `strict` refuses an entry that would not read back the same (see
    format_problem)."""
    if strict and (problem := format_problem(entry)) is not None:
        raise FormatError(f"the entry {entry.title[:60]!r}: {problem}",
                          line=entry.line, path="<digest>")
    lines = [entry.title, "(" + ", ".join(entry.authors) + ")"]
    if entry.arxiv_id is not None and abs_urls:
        lines.append(f"https://arxiv.org/abs/{entry.arxiv_id}")  # version-less: the latest
    elif entry.arxiv_id is not None:
        lines.append(f"arXiv:{entry.arxiv_id}" + (f"v{entry.version}" if entry.version else ""))
    elif entry.url is not None:
        lines.append(entry.url)
    if entry.abstract:
        lines.append(entry.abstract)
    lines.extend(entry.commentary)
    # An entry with no tags yet still needs its closing line; '#' alone reads back as none.
    lines.append(" ".join("#" + t for t in entry.tags) or "#")
    return lines


def write_digest(
    digest: Digest, spaced: bool = False, abs_urls: bool = False, strict: bool = True
) -> str:
    """The canonical text of a digest (a canonical input gives back the same bytes); the
    reader's form (`spaced`: a blank line before each entry, `abs_urls`: id lines as abs
    URLs) reads back to the same entries. `strict`: see write_entry."""
    lines = [] if digest.date is None else [format_date_line(digest.date, digest.date_style)]
    for entry in digest.entries:
        if spaced:
            lines.append("")
        lines.extend(write_entry(entry, abs_urls, strict))
    return "\n".join(lines) + ("\n" if digest.final_newline else "")


def entry_to_json(entry: Entry) -> dict[str, Any]:
    """One entry as in `digest check --json` (DESIGN §11)."""
    return {
        "line": entry.line,
        "title": entry.title,
        "authors": list(entry.authors),
        "arxiv_id": entry.arxiv_id,
        "version": entry.version,
        "url": entry.url,
        "abstract": entry.abstract,
        "notes": {"ko": list(entry.notes_ko), "en": list(entry.notes_en)},
        "links": list(entry.links),  # paragraphs that are only URLs: in no language
        "tags": list(entry.tags),
    }


def digest_to_json(digest: Digest) -> dict[str, Any]:
    """A whole digest as in `digest check --json` (DESIGN §11)."""
    return {
        "date": digest.date.isoformat() if digest.date else None,
        "entries": [entry_to_json(e) for e in digest.entries],
    }

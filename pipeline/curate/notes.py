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

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.digest_format import decode_text
from pipeline.core.errors import FormatError
from pipeline.core.models import Entry
from pipeline.curate.note_body import _Paper, _paper_lines, _parse_entry
from pipeline.curate.note_header import _fix_url_typos
from pipeline.curate.note_kinds import BARE_TITLE as BARE_TITLE
from pipeline.curate.note_kinds import ENGLISH_BLOCK as ENGLISH_BLOCK
from pipeline.curate.note_kinds import ID_LINE as ID_LINE
from pipeline.curate.note_kinds import IMAGE as IMAGE
from pipeline.curate.note_kinds import MID_LINE_TAGS as MID_LINE_TAGS
from pipeline.curate.note_kinds import MULTI_PAPER as MULTI_PAPER
from pipeline.curate.note_kinds import SECOND_TITLE as SECOND_TITLE
from pipeline.curate.note_kinds import SEE_MORE as SEE_MORE
from pipeline.curate.note_kinds import STRAY_TAG_WORD as STRAY_TAG_WORD
from pipeline.curate.note_kinds import UNCLOSED_TITLE as UNCLOSED_TITLE
from pipeline.curate.note_kinds import UNQUOTED_ABSTRACT as UNQUOTED_ABSTRACT
from pipeline.curate.note_kinds import URL_TYPO as URL_TYPO

_FILE_DATE_RE = re.compile(r"^\d{6}\s+")


@dataclass(frozen=True)
class NoteWarning:
    """Something read in a note that the curator may not have meant: the note is used."""

    path: str
    line: int | None
    message: str
    kind: str = "note"  # one of the kinds (note_kinds): what `digest check` counts

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


def _title_from_file_name(path: Path) -> str:
    return _FILE_DATE_RE.sub("", Path(path).stem).strip()


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

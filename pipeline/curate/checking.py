"""`digest check PATH...`: many digest, draft and note files in one process, a report each.

Folders are walked recursively for *.md/*.markdown (notes) and *.txt (digests and drafts),
skipping hidden folders (the notes app's .obsidian, .trash). Each file gets a FileReport:
what it parsed to, and every finding (parse error, the reader's warnings, lint findings).
The config and store, when given, are opened once for all the files.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pipeline.core.errors import FormatError
from pipeline.curate.lint import Finding
from pipeline.curate.notes import NOTE_SUFFIXES

Status = Literal["ok", "warnings", "error"]
REFUSED = "refused"  # the kind of a file's parse error: it cannot be used at all
DIGEST_SUFFIXES = (".txt",)


def finding_to_json(finding: Finding) -> dict[str, Any]:
    """One finding as in `digest check --json`."""
    return {"level": finding.level, "line": finding.line, "path": finding.path,
            "kind": finding.kind, "message": finding.message}


@dataclass(frozen=True)
class FileReport:
    """What checking one file found."""

    path: Path
    kind: Literal["note", "digest"]
    parsed: dict[str, Any] | None  # DESIGN §11's object; None when the file was refused
    entries: int = 0
    messages: tuple[Finding, ...] = field(default=())

    @property
    def status(self) -> Status:
        """The worst finding: 'error', else 'warnings' when any, else 'ok'."""
        if any(m.level == "error" for m in self.messages):
            return "error"
        return "warnings" if self.messages else "ok"

    def to_json(self) -> dict[str, Any]:
        """One element of `digest check --json`: §11's object plus path, status, messages."""
        return {**(self.parsed or {"date": None, "entries": []}), "path": str(self.path),
                "status": self.status, "messages": [finding_to_json(m) for m in self.messages]}


def is_note_path(path: Path) -> bool:
    """Whether `path` is read as a note (Markdown) rather than a digest."""
    return path.suffix.lower() in NOTE_SUFFIXES


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given, and the *.md/*.markdown/*.txt files under folders (sorted, hidden
    folders and files skipped). A path that does not exist is yielded: its report says so."""
    wanted = NOTE_SUFFIXES + DIGEST_SUFFIXES
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        found = []
        for sub in path.rglob("*"):
            rel = sub.relative_to(path).parts
            if any(part.startswith(".") for part in rel) or sub.suffix.lower() not in wanted:
                continue
            if sub.is_file() or sub.is_symlink():  # a broken link is reported, not skipped
                found.append(sub)
        yield from sorted(found)


@dataclass(frozen=True)
class Context:
    """What the config and the store add to the structural checks (None: not available)."""

    languages: Collection[str] = ("ko", "en")
    known_tags: Collection[str] | None = None
    stored_ids: Callable[[Sequence[str]], Collection[str]] | None = None
    # Findings about the notes folder (waiting and unusable notes), with the first digest.
    notes_findings: Callable[[], Sequence[Finding]] | None = None
    flowed: bool = False  # digests are format=flowed text: join their wrapped lines first
    # The papers issues sent on other days than the one given carried, with that day.
    sent_papers: Callable[[date], Mapping[str, date]] | None = None


def check_file(path: Path, ctx: Context) -> FileReport:
    """Parse and lint one file; a file that cannot be read is a report with one error."""
    from pipeline.core import digest_format as digest
    from pipeline.core.models import Digest
    from pipeline.curate import lint, notes

    is_note = is_note_path(path)
    kind: Literal["note", "digest"] = "note" if is_note else "digest"
    messages: list[Finding] = []
    try:
        if is_note:
            note = notes.load_note(path)
            parsed = Digest(None, note.entries)
            messages.extend(Finding("warning", w.message, w.line, kind=w.kind)
                            for w in note.warnings)
        else:
            parsed = digest.read_digest(path, flowed=ctx.flowed)
    except FormatError as exc:
        where = exc.path if exc.path not in (None, str(path)) else None
        return FileReport(path, kind, None, 0,
                          (Finding("error", exc.message, exc.line, where, kind=REFUSED),))
    ids = [e.arxiv_id for e in parsed.entries if e.arxiv_id]
    findings = lint.lint_entries(
        parsed.entries,
        languages=ctx.languages,
        known_tags=ctx.known_tags,
        stored_ids=ctx.stored_ids(ids) if ctx.stored_ids is not None else None,
        language_level="warning" if is_note else "error",
        require_commentary=not is_note,
    )
    messages.extend(findings)
    if not is_note and parsed.date is not None and ctx.sent_papers is not None:
        sent = ctx.sent_papers(parsed.date)
        messages.extend(
            Finding("warning", f"arXiv:{e.arxiv_id} was already sent in the issue of "
                    f"{sent[e.arxiv_id]}", e.line)
            for e in parsed.entries if e.arxiv_id is not None and e.arxiv_id in sent
        )
    if not is_note and ctx.notes_findings is not None:
        messages.extend(ctx.notes_findings())
    return FileReport(path, kind, digest.digest_to_json(parsed), len(parsed.entries),
                      tuple(messages))


def summary(reports: Sequence[FileReport]) -> str:
    """The closing line: how many files, and how many ok, with warnings, refused."""
    counts = {s: sum(r.status == s for r in reports) for s in ("ok", "warnings", "error")}
    n = len(reports)
    return (f"checked {n} file{'s' * (n != 1)}: {counts['ok']} ok, {counts['warnings']} with "
            f"warnings, {counts['error']} with errors")


def counts_by_kind(reports: Sequence[FileReport]) -> list[tuple[str, str, int, int]]:
    """(level, kind, findings, files) for every kind found, errors first, then the most
    frequent: what a folder's check summarises instead of repeating each finding."""
    found: dict[tuple[str, str], list[int]] = {}
    for report in reports:
        seen: set[tuple[str, str]] = set()
        for m in report.messages:
            key = (m.level, m.kind or "other")
            counts = found.setdefault(key, [0, 0])
            counts[0] += 1
            if key not in seen:
                seen.add(key)
                counts[1] += 1
    return sorted(((level, kind, n, files) for (level, kind), (n, files) in found.items()),
                  key=lambda row: (row[0] != "error", -row[2], row[1]))

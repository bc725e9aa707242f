"""Lint a draft, digest or note (pure): what parses but would publish badly.

Errors (exit 2): the same paper twice; Korean commentary without English or the reverse (in a
digest, when the newsletter has both languages). Warnings (exit 0): entries with no commentary
(an auto-picked candidate nobody wrote about), tags not in the config (with "did you mean
#x?" when one configured tag is close), ids not among the stored papers, notes whose paper
never appeared, language gaps in a note.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.core.latex import title_key
from pipeline.core.models import Entry, normalize_tag
from pipeline.curate.notes import Note

Level = Literal["error", "warning"]
# How alike an unknown tag and a configured one must be (difflib's ratio) to suggest it.
SUGGEST_CUTOFF = 0.75


@dataclass(frozen=True)
class Finding:
    """One lint result, with the line it is about."""

    level: Level
    message: str
    line: int | None = None
    path: str | None = None  # when it is about another file than the one checked
    kind: str | None = None  # UNCOMMENTED, UNKNOWN_TAG, TAG_TYPO: what callers count or skip


UNCOMMENTED = "uncommented"
UNKNOWN_TAG = "unknown-tag"  # not in the config: maybe a new tag on purpose
TAG_TYPO = "tag-typo"  # not in the config, and close to one configured tag
NO_ENGLISH = "no-english"  # Korean commentary only: the en edition shows none
NO_KOREAN = "no-korean"  # English commentary only: the ko edition shows none
DUPLICATE = "duplicate"  # the same paper twice
NOT_STORED = "not-stored"  # an id the store does not hold
WAITING = "waiting"  # a note whose paper was never collected
NOTE_UNUSED = "note-unused"  # a note the notes reader refused


def lint_entries(
    entries: Sequence[Entry],
    *,
    languages: Collection[str] = ("ko", "en"),
    known_tags: Collection[str] | None = None,
    stored_ids: Collection[str] | None = None,
    language_level: Level = "error",
    require_commentary: bool = True,
) -> list[Finding]:
    """Findings for these entries; `None` means the config or store is not available.
    `require_commentary`: warn of entries without any (off for a note, which may be bare)."""
    findings: list[Finding] = []
    first_by_id: dict[str, Entry] = {}
    first_by_title: dict[str, Entry] = {}
    tag_keys = {normalize_tag(t) for t in known_tags} if known_tags is not None else None
    for entry in entries:
        line = entry.line
        key = title_key(entry.title)
        twin = first_by_id.get(entry.arxiv_id) if entry.arxiv_id else None
        same_title = first_by_title.get(key)
        if twin is None and same_title is not None and not (
            entry.arxiv_id and same_title.arxiv_id and entry.arxiv_id != same_title.arxiv_id
        ):
            twin = same_title  # two different ids may share a title; anything else is a twin
        if twin is not None:
            what = f"arXiv:{entry.arxiv_id}" if entry.arxiv_id else repr(entry.title)
            findings.append(Finding(
                "error", f"the same paper twice: {what} is also the entry at line {twin.line}",
                line, kind=DUPLICATE,
            ))
        else:
            if entry.arxiv_id:
                first_by_id[entry.arxiv_id] = entry
            first_by_title[key] = entry
        findings.extend(_language_gaps(entry, languages, language_level))
        if require_commentary and not entry.commentary:
            findings.append(Finding(
                "warning", f"{entry.title!r}: no commentary (write some, or delete the entry)",
                line, kind=UNCOMMENTED,
            ))
        if tag_keys is not None:
            unknown = [
                t for t, k in zip(entry.tags, entry.tag_keys, strict=True) if k not in tag_keys
            ]
            if unknown:
                hints = [h for h in (suggest_tag(t, tag_keys) for t in unknown) if h]
                findings.append(Finding(
                    "warning",
                    f"{entry.title!r}: tag{'s' * (len(unknown) > 1)} "
                    f"{' '.join('#' + t for t in unknown)} not in the config's [tags]"
                    + "".join(f"; did you mean #{h}?" for h in hints),
                    line, kind=TAG_TYPO if hints else UNKNOWN_TAG,
                ))
        if stored_ids is not None and entry.arxiv_id and entry.arxiv_id not in stored_ids:
            findings.append(Finding(
                "warning",
                f"arXiv:{entry.arxiv_id} is not among the stored papers "
                "(`digest build` will look it up on arXiv)", line, kind=NOT_STORED,
            ))
    return findings


def _language_gaps(entry: Entry, languages: Collection[str], level: Level) -> list[Finding]:
    """What the editions the newsletter publishes would lack: an edition shows one language's
    commentary (render.variant_commentary), so commentary only in another language leaves it
    empty. With both languages published this is the pair rule (an error in a digest); with
    one, commentary in the other language only is a warning (it reaches no reader)."""
    ko, en = entry.notes_ko, entry.notes_en  # links-only paragraphs are in neither
    if not (ko or en):
        return []  # no commentary at all: UNCOMMENTED says so
    both = "ko" in languages and "en" in languages
    found: list[Finding] = []
    if "en" in languages and ko and not en:
        found.append(Finding(
            level if both else "warning",
            f"{entry.title!r}: Korean commentary without English (the en edition would show "
            "none)", entry.line, kind=NO_ENGLISH,
        ))
    if "ko" in languages and en and not ko:
        found.append(Finding(
            level if both else "warning",
            f"{entry.title!r}: English commentary without Korean (the ko edition would show "
            "none)", entry.line, kind=NO_KOREAN,
        ))
    return found


def suggest_tag(tag: str, known: Collection[str]) -> str | None:
    """The one configured tag close to `tag` (a typo), or None when none or several are."""
    close = difflib.get_close_matches(normalize_tag(tag), sorted(known), n=2,
                                      cutoff=SUGGEST_CUTOFF)
    return close[0] if len(close) == 1 else None


def waiting_notes(notes: Iterable[Note], stored_ids: Collection[str]) -> list[Finding]:
    """Notes about arXiv papers that were never collected: they wait for their paper."""
    return [
        Finding("warning", f"waits for its paper arXiv:{n.entry.arxiv_id} (never collected)",
                n.entry.line, str(n.path), kind=WAITING)
        for n in notes
        if n.entry.arxiv_id is not None and n.entry.arxiv_id not in stored_ids
    ]

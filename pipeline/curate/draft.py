"""Build the day's draft digest, or update it without losing anything the curator wrote (pure).

The offer for a day is: the papers that have notes (first), then the other candidates in
`candidate_order`, at most `max_candidates` of them (default 0: the draft is what the
curator wrote about; the studio's triage offers the rest). A paper an earlier issue already
sent is never offered. Updating an existing draft keeps its entries
exactly, in their order (deleted entries stay deleted: the caller passes every id offered
before, and those are never offered again); it fills in the commentary of a kept entry whose
note was written since, and adds only papers never offered: new noted papers after the last
entry with commentary, new candidates at the end.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from pipeline.core.latex import title_key
from pipeline.core.models import Candidate, DateStyle, Digest, Entry, Paper, normalize_tag
from pipeline.curate.merge import merge_entry
from pipeline.curate.order import candidate_order


def _key(entry: Entry) -> str:
    return entry.arxiv_id if entry.arxiv_id is not None else "title:" + title_key(entry.title)


def candidate_entry(candidate: Candidate) -> Entry:
    """A draft entry for a candidate nobody has written about yet."""
    p = candidate.paper
    return Entry(title=p.title, authors=p.authors, abstract=p.abstract,
                 tags=candidate.tags, arxiv_id=p.arxiv_id)


def _merge_tags(first: Sequence[str], then: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for tag in (*first, *then):
        seen.setdefault(normalize_tag(tag), tag)
    return tuple(seen.values())


def noted_entry(note: Entry, paper: Paper, candidate_tags: Sequence[str] = ()) -> Entry:
    """A draft entry for a paper with a note: arXiv's metadata, the note's words and tags."""
    merged = merge_entry(replace(note, version=None, line=None), paper)
    return replace(merged, tags=note.tags or tuple(candidate_tags))


def build_offer(
    candidates: Sequence[Candidate],
    notes: Mapping[str, Entry],
    noted_papers: Mapping[str, Paper],
    max_candidates: int,
    offered_before: Collection[str] = (),
    already_sent: Collection[str] = (),
) -> list[Entry]:
    """What the draft offers: noted papers (in notes order), then the best other candidates.

    `notes` maps arXiv ids to note entries; `noted_papers` holds the papers of the notes that
    belong in this draft besides the day's candidates (earlier papers noted since). Candidates
    offered before count against `max_candidates` and are not offered again; papers in
    `already_sent` (sent in an earlier issue) are never offered.
    """
    by_id = {c.paper.arxiv_id: c for c in candidates}
    offer = []
    for arxiv_id, note in notes.items():
        if arxiv_id in already_sent:
            continue
        candidate = by_id.get(arxiv_id)
        paper = candidate.paper if candidate is not None else noted_papers.get(arxiv_id)
        if paper is not None:
            offer.append(noted_entry(note, paper, candidate.tags if candidate else ()))
    noted = {e.arxiv_id for e in offer}
    plain = [c for c in candidates
             if c.paper.arxiv_id not in noted and c.paper.arxiv_id not in already_sent]
    room = max_candidates - sum(1 for c in plain if c.paper.arxiv_id in offered_before)
    ranked = candidate_order(c for c in plain if c.paper.arxiv_id not in offered_before)
    offer.extend(candidate_entry(c) for c in ranked[: max(room, 0)])
    return offer


@dataclass(frozen=True)
class DraftUpdate:
    """The draft to write, and what changed (for the summary line)."""

    digest: Digest
    added: tuple[str, ...]  # titles of entries added
    filled: tuple[str, ...]  # titles of kept entries whose commentary came from a new note


def update_draft(
    day: date,
    existing: Digest | None,
    offer: Sequence[Entry],
    offered_before: Collection[str],
    notes: Mapping[str, Entry],
    date_style: DateStyle = "ko",
) -> DraftUpdate:
    """The new draft: `existing` kept as the curator left it, plus what was never offered."""
    if existing is None:
        digest = Digest(day, tuple(offer), date_style=date_style)
        return DraftUpdate(digest, tuple(e.title for e in offer), ())
    kept: list[Entry] = []
    filled: list[str] = []
    for entry in existing.entries:
        note = notes.get(entry.arxiv_id) if entry.arxiv_id is not None else None
        if note is not None and note.commentary and not entry.commentary:
            entry = replace(entry, commentary=note.commentary,
                            tags=_merge_tags(note.tags, entry.tags))
            filled.append(entry.title)
        kept.append(entry)
    present = {e.arxiv_id for e in kept} | {title_key(e.title) for e in kept}
    fresh = [
        e for e in offer
        if _key(e) not in offered_before
        and e.arxiv_id not in present and title_key(e.title) not in present
    ]
    new_noted = [e for e in fresh if e.commentary]
    new_plain = [e for e in fresh if not e.commentary]
    last_noted = max((i for i, e in enumerate(kept) if e.commentary), default=-1)
    entries = kept[: last_noted + 1] + new_noted + kept[last_noted + 1 :] + new_plain
    digest = replace(existing, entries=tuple(entries))
    return DraftUpdate(digest, tuple(e.title for e in fresh), tuple(filled))


def offered_keys(digest: Digest) -> set[str]:
    """The ids (or title keys) of every entry of a draft, to remember as offered."""
    return {_key(e) for e in digest.entries}

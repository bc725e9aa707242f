"""Resolve draft entries to arXiv papers and build the Issue (pure: look-ups are parameters).

Each entry is resolved, in order: by its arXiv id among stored papers; by its normalised title
among stored papers; then through the arXiv API (ids by `id_list` in batches, titles by a title
search). arXiv wins for title, authors and links; the curator wins for commentary, tags and an
abstract written in the draft. Entries that stay unresolved keep their own text and are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from difflib import SequenceMatcher

from pipeline.core.errors import DigestError
from pipeline.core.latex import title_key
from pipeline.core.models import Candidate, Entry, Issue, Paper
from pipeline.curate.order import candidate_order

FetchIds = Callable[[Sequence[str]], Mapping[str, Paper]]
FindTitle = Callable[[str], Sequence[Paper]]

# An API search result whose title is this close to the entry's still counts (a typo, a
# dropped word); below it the entry stays unresolved rather than risk the wrong paper.
_FUZZY_TITLE = 0.93


@dataclass(frozen=True)
class Lookups:
    """Where papers come from: the store first, then (optionally) the arXiv API."""

    stored_ids: FetchIds
    stored_title: FindTitle
    api_ids: FetchIds | None = None
    api_title: FindTitle | None = None


@dataclass(frozen=True)
class Resolution:
    """How one entry was resolved: the paper and by what ('id', 'title', 'api-id',
    'api-title'), or no paper and why."""

    paper: Paper | None
    how: str | None = None
    problem: str | None = None


def _surnames(authors: Iterable[str]) -> set[str]:
    return {title_key(a).split()[-1] for a in authors if title_key(a)}


def _pick(entry: Entry, papers: Sequence[Paper], fuzzy: bool) -> Paper | None:
    """The paper whose title matches the entry's (most shared authors wins a tie)."""
    key = title_key(entry.title)
    exact = [p for p in papers if title_key(p.title) == key]
    mine = _surnames(entry.authors)

    def shared(p: Paper) -> int:
        return len(mine & _surnames(p.authors))

    if not exact and fuzzy:
        exact = [
            p for p in papers
            if SequenceMatcher(None, key, title_key(p.title)).ratio() >= _FUZZY_TITLE
            and (not mine or shared(p) > 0)
        ]
    if len(exact) <= 1:
        return exact[0] if exact else None
    ranked = sorted(exact, key=shared, reverse=True)
    return ranked[0] if shared(ranked[0]) > shared(ranked[1]) else None


def resolve_entries(entries: Sequence[Entry], lookups: Lookups) -> list[Resolution]:
    """Resolve each entry to a paper (store, then API); link entries resolve to nothing."""
    out: list[Resolution | None] = [None] * len(entries)
    ids = [e.arxiv_id for e in entries if e.arxiv_id is not None]
    found = dict(lookups.stored_ids(ids)) if ids else {}
    missing = [i for i in dict.fromkeys(ids) if i not in found]
    fetched: Mapping[str, Paper] = {}
    api_error: str | None = None
    if missing and lookups.api_ids is not None:
        try:
            fetched = lookups.api_ids(missing)
        except DigestError as exc:
            api_error = f"arXiv API look-up failed: {exc}"
    for i, entry in enumerate(entries):
        if entry.arxiv_id is not None:
            if entry.arxiv_id in found:
                out[i] = Resolution(found[entry.arxiv_id], "id")
            elif entry.arxiv_id in fetched:
                out[i] = Resolution(fetched[entry.arxiv_id], "api-id")
            else:
                out[i] = Resolution(None, problem=api_error or (
                    f"arXiv:{entry.arxiv_id} is not among the stored papers"
                    + ("" if lookups.api_ids is None else " nor known to the arXiv API")
                ))
        elif entry.url is not None:
            out[i] = Resolution(None)  # a link entry: nothing to resolve
        elif (paper := _pick(entry, lookups.stored_title(entry.title), fuzzy=False)) is not None:
            out[i] = Resolution(paper, "title")
    for i, entry in enumerate(entries):
        if out[i] is not None:
            continue
        if lookups.api_title is None:
            out[i] = Resolution(None, problem="no stored paper has this title")
            continue
        if api_error is not None:  # the API is failing: do not wait on it for every entry
            out[i] = Resolution(None, problem=api_error)
            continue
        try:
            paper = _pick(entry, lookups.api_title(entry.title), fuzzy=True)
        except DigestError as exc:
            api_error = f"arXiv API title search failed: {exc}"
            out[i] = Resolution(None, problem=api_error)
            continue
        out[i] = Resolution(paper, "api-title") if paper is not None else Resolution(
            None, problem="no stored paper and no arXiv API search result has this title"
        )
    return [r for r in out if r is not None]


def merge_entry(entry: Entry, paper: Paper) -> Entry:
    """The entry with arXiv's title, authors and id; the curator's commentary, tags and
    abstract (arXiv's abstract when the entry has none)."""
    return replace(
        entry,
        title=paper.title,
        authors=paper.authors,
        abstract=entry.abstract or paper.abstract,
        arxiv_id=paper.arxiv_id,
        version=entry.version if entry.arxiv_id == paper.arxiv_id else None,
        url=None,
    )


@dataclass(frozen=True)
class MergeResult:
    """The built issue, one message per entry that could not be resolved, and the papers the
    arXiv API supplied (for the caller to store, so a rebuild needs no network)."""

    issue: Issue
    problems: tuple[str, ...]
    fetched: tuple[Paper, ...] = ()


def build_issue(
    day: date,
    title: str,
    entries: Sequence[Entry],
    resolutions: Sequence[Resolution],
    candidates: Sequence[Candidate] = (),
    more_papers: int = 0,
) -> MergeResult:
    """Merge resolved entries into an Issue; `more_papers` best candidates not in it are listed."""
    merged: list[Entry] = []
    unresolved: list[int] = []
    problems: list[str] = []
    for i, (entry, res) in enumerate(zip(entries, resolutions, strict=True)):
        if res.paper is not None:
            merged.append(merge_entry(entry, res.paper))
            continue
        merged.append(entry)
        if res.problem is not None:
            unresolved.append(i)
            where = f"line {entry.line}: " if entry.line is not None else ""
            problems.append(f"{where}{entry.title!r}: {res.problem}; published from its own text")
    in_issue = {e.arxiv_id for e in merged if e.arxiv_id is not None}
    in_issue_titles = {title_key(merged[i].title) for i in unresolved}
    extra = [
        c.paper for c in candidate_order(candidates)
        if c.paper.arxiv_id not in in_issue and title_key(c.paper.title) not in in_issue_titles
    ][: max(more_papers, 0)]
    issue = Issue(day, title, tuple(merged), tuple(extra), tuple(unresolved))
    fetched = {
        r.paper.arxiv_id: r.paper for r in resolutions
        if r.paper is not None and r.how is not None and r.how.startswith("api")
    }
    return MergeResult(issue, tuple(problems), tuple(fetched.values()))


def merge_draft(
    day: date,
    title: str,
    entries: Sequence[Entry],
    lookups: Lookups,
    candidates: Sequence[Candidate] = (),
    more_papers: int = 0,
) -> MergeResult:
    """Resolve the draft's entries and build the day's Issue."""
    return build_issue(
        day, title, entries, resolve_entries(entries, lookups), candidates, more_papers
    )

"""`digest collect`: fetch the day's announcement (+ API searches), store papers and candidates."""

from __future__ import annotations

from collections import Counter
from contextlib import closing, nullcontext
from dataclasses import dataclass, replace
from datetime import date

from pipeline import store
from pipeline.collect import api as arxiv_api
from pipeline.collect import feed as arxiv_rss
from pipeline.collect import tags
from pipeline.collect.feed import Track
from pipeline.core import calendar as arxiv_calendar
from pipeline.core.config import Settings
from pipeline.core.lifecycle import State
from pipeline.core.models import Candidate, Paper
from pipeline.core.runtime import Runtime
from pipeline.services import ranking
from pipeline.services.common import open_store

API_SEARCH_MAX = 100  # newest results per opted-in tag; a day rarely has more


@dataclass(frozen=True)
class CollectReport:
    """What `collect` did. `outcome`: 'collected', 'empty' (the feed was empty), 'kept' (empty
    now, what was collected earlier is kept) or 'no-announcement' (`reason` says why)."""

    day: date
    outcome: str
    reason: str | None = None
    announced: int = 0
    by_type: tuple[tuple[str, int], ...] = ()  # announce type -> items, sorted
    kept: int = 0
    announce_types: tuple[str, ...] = ()
    from_api: int = 0
    candidates: int = 0
    added: int = 0
    updated: int = 0
    matched: tuple[tuple[str, int], ...] = ()  # tag -> candidates, in config order
    warnings: tuple[str, ...] = ()
    ranking: ranking.TrainReport | None = None  # None: scored by the tag rules


def collect(
    settings: Settings, day: date, rt: Runtime, *, track: Track = nullcontext
) -> CollectReport:
    """Fetch the day's announcement (+ API searches), store papers and candidates.

    Everything is fetched first, then stored in one transaction: a failed fetch stores
    nothing, and a rerun stores nothing twice. A paper first collected on an earlier day
    (a new version, a later cross-list) is updated but is not a candidate again. `track`
    wraps the feed's items (the interface's progress bar)."""
    reason = arxiv_calendar.why_no_announcement(day)
    if reason is not None:  # the feed would hold another day: no fetch, no "stale feed"
        return CollectReport(day, "no-announcement", reason=reason)
    announcement = arxiv_rss.fetch_announcement(settings, day, rt, track)
    if announcement.empty:
        return _record_empty_day(settings, day, rt)
    rules = tags.compile_rules(settings.tags)
    papers = {p.arxiv_id: p for p in announcement.papers}
    for paper in _search_api(settings, day, rt):
        papers.setdefault(paper.arxiv_id, paper)
    from_api = len(papers) - len(announcement.papers)
    matches = {arxiv_id: tags.match_paper(p, rules) for arxiv_id, p in papers.items()}
    # Tag rules decide what is a candidate; the model learned from the curator's history (if
    # there is one, retrained when that history changed) decides their order.
    trained = ranking.train(settings, day, rt)
    model, problem = ranking.current_model(settings) if trained.outcome != "cold start" \
        else (None, None)
    with closing(open_store(settings, rt)) as conn, store.transaction(conn):
        seen = store.first_seen(conn, papers)
        updated = sum(o == "updated" for o in store.upsert_papers(conn, papers.values(), day).values())
        candidates = ranking.score_candidates(model, (
            Candidate(papers[i], m.tags, m.score)
            for i, m in matches.items()
            if m.tags and seen.get(i, day) >= day
        ), day)
        store.prune_candidates(conn, day, (c.paper.arxiv_id for c in candidates))
        added = store.save_candidates(conn, day, candidates)
        store.save_day(conn, day, "collected", announcement.announced, len(papers))
        if store.get_issue_record(conn, day) is None:
            store.set_issue_state(conn, day, State.COLLECTED)
    per_tag = Counter(t for c in candidates for t in c.tags)
    warnings = [problem] if problem is not None else []
    if announcement.announced >= arxiv_rss.ITEM_LIMIT:
        warnings.append(
            f"the feed lists {announcement.announced} items, arXiv's maximum, so some "
            "papers may be missing: configure fewer categories in arxiv.categories"
        )
    return CollectReport(
        day, "collected",
        announced=announcement.announced,
        by_type=tuple(sorted(announcement.by_type.items())),
        kept=len(papers),
        announce_types=tuple(settings.arxiv.announce_types),
        from_api=from_api,
        candidates=len(candidates),
        added=added,
        updated=updated,
        matched=tuple((r.name, per_tag[r.name]) for r in settings.tags),
        warnings=tuple(warnings),
        ranking=trained if model is not None else None,
    )


def _record_empty_day(settings: Settings, day: date, rt: Runtime) -> CollectReport:
    """An empty channel: arXiv announced nothing on `day` (weekend, holiday)."""
    with closing(open_store(settings, rt)) as conn, store.transaction(conn):
        row = store.get_day(conn, day)
        if row is not None and row.status == "collected":
            return CollectReport(day, "kept")
        store.save_day(conn, day, "empty", 0, 0)
    return CollectReport(day, "empty")


def _search_api(settings: Settings, day: date, rt: Runtime) -> list[Paper]:
    """Papers of the day's submission window found by the API for tags with api_search."""
    rules = [r for r in settings.tags if r.api_search and r.keywords]
    if not rules:
        return []
    api = arxiv_api.ArxivApi(settings, rt)
    start, end = arxiv_api.submission_window(day)
    found: list[Paper] = []
    for rule in rules:
        query = arxiv_api.keyword_query(rule.keywords)
        for paper in api.search_since(query, start, API_SEARCH_MAX):
            if paper.published is not None and paper.published < end:
                found.append(replace(paper, announce_type="new"))
    return found


def lookup_paper(settings: Settings, day: date, rt: Runtime, arxiv_id: str) -> Paper | None:
    """A paper by id: from the store, else from the arXiv API (then stored, seen on `day`);
    None when arXiv has no such paper. For a paper no tag matched, added by hand."""
    with closing(open_store(settings, rt)) as conn:
        found = store.get_papers(conn, [arxiv_id]).get(arxiv_id)
        if found is not None:
            return found
        paper = arxiv_api.ArxivApi(settings, rt).fetch_ids([arxiv_id]).get(arxiv_id)
        if paper is not None:
            with store.transaction(conn):
                store.upsert_paper(conn, paper, day)
        return paper

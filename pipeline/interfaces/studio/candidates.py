"""The day's candidates as the studio shows them: ranked in one place, filtered, paged,
with why each matched (highlighted) and the curator's note beside it."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from pipeline.collect import tags
from pipeline.core.config import Settings
from pipeline.core.latex import title_key
from pipeline.core.models import ARXIV_ID_RE, Candidate, Entry, normalize_tag, split_arxiv_id
from pipeline.curate import notes
from pipeline.curate.order import Score, candidate_order

# --- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateView:
    """A collected paper not in the issue: why it matched, highlighted, and its note."""

    candidate: Candidate
    hits: tuple[tags.RuleHit, ...]
    title_html: Markup
    abstract_html: Markup
    note: notes.Note | None
    learned: tuple[str, ...] = ()  # why the learned ranking puts it here


def highlight(text: str, spans: Sequence[tags.Span]) -> Markup:
    """`text` escaped, with the spans wrapped in <mark>."""
    out: list[str] = []
    pos = 0
    for start, end in sorted(set(spans)):
        if start < pos:
            continue  # overlapping phrases of two rules: the first one marks it
        out.append(str(escape(text[pos:start])))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


# What the search box takes as one paper: an id (with vN or arXiv:), or an abs/pdf/html URL.
_PAPER_REF_RE = re.compile(
    r"\s*(?:arXiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/)?"
    rf"(?P<ref>{ARXIV_ID_RE.pattern})(?:\.pdf)?/?\s*", re.IGNORECASE)
Explained = tuple[tuple[tags.RuleHit, ...], Markup, Markup]  # hits, title, abstract
PAGE_SIZE = 40  # candidates a page shows: ~2.5 KB each, so a page stays well under 150 KB


def paper_ref(text: str) -> str | None:
    """The arXiv id (no version) `text` names, if it is an id or an arXiv URL alone."""
    m = _PAPER_REF_RE.fullmatch(text)
    return split_arxiv_id(m.group("ref"))[0] if m else None


@dataclass(frozen=True)
class CandidatePage:
    """One page of the triage list and where it sits in the whole."""

    views: list[CandidateView]
    matching: int  # candidates the filter keeps
    page: int  # from 1
    pages: int
    states: dict[str, str]  # arXiv id -> seen, picked, dismissed


def candidate_page(
    settings: Settings, candidates: Sequence[Candidate], in_issue: Sequence[Entry],
    shelf: notes.Notes, states: Mapping[str, str], *, tag: str = "", query: str = "",
    show: str = "open", page: int = 1, sent: Collection[str] = (), score: Score | None = None,
    explained: MutableMapping[tuple[str, int], Explained] | None = None,
    why: Callable[[Candidate], tuple[str, ...]] | None = None,
) -> CandidatePage:
    """The day's candidates not in the issue (nor sent before), in `candidate_order`,
    filtered by tag, text (or a pasted id/URL) and triage state (`show`: "open" hides
    dismissed ones, "dismissed" shows only those, "all"), one page of them with why each
    matched."""
    ids = {e.arxiv_id for e in in_issue if e.arxiv_id is not None}
    titles = {title_key(e.title) for e in in_issue}
    wanted_tag = normalize_tag(tag) if tag.strip() else None
    ref = paper_ref(query)
    words = [] if ref else query.casefold().split()
    kept = []
    for c in candidate_order(candidates, score):
        p = c.paper
        if p.arxiv_id in ids or p.arxiv_id in sent or title_key(p.title) in titles:
            continue
        if ref is not None and p.arxiv_id != ref:
            continue
        state = states.get(p.arxiv_id)
        if (show == "open" and state == "dismissed") or (show == "dismissed"
                                                           and state != "dismissed"):
            continue
        if wanted_tag is not None and wanted_tag not in {normalize_tag(t) for t in c.tags}:
            continue
        if words:
            haystack = " ".join((p.title, p.abstract, " ".join(p.authors),
                                 p.arxiv_id)).casefold()
            if any(w not in haystack for w in words):
                continue
        kept.append(c)
    pages = max(1, -(-len(kept) // PAGE_SIZE))
    page = max(1, min(page, pages))
    rules = tags.compile_rules(settings.tags)
    by_id = shelf.by_id()
    views = []
    cache = explained if explained is not None else {}
    for c in kept[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:  # only these are explained
        p = c.paper
        done = cache.get((p.arxiv_id, p.version))
        if done is None:  # the same paper and rules explain the same: once per studio
            hits = tags.explain_match(p, rules)
            done = cache[(p.arxiv_id, p.version)] = (
                hits, highlight(p.title, [s for h in hits for s in h.title_spans]),
                highlight(p.abstract, [s for h in hits for s in h.abstract_spans]))
        views.append(CandidateView(c, *done, by_id.get(p.arxiv_id),
                                   why(c) if why is not None else ()))
    return CandidatePage(views, len(kept), page, pages, dict(states))

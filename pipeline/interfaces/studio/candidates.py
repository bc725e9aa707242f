"""The day's candidates as the studio shows them: ranked in one place, filtered, paged,
with why each matched (highlighted) and the curator's note beside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from pipeline.collect import tags
from pipeline.core.config import Settings
from pipeline.core.latex import title_key
from pipeline.core.models import Candidate, Entry, normalize_tag
from pipeline.curate import notes

# --- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateView:
    """A collected paper not in the issue: why it matched, highlighted, and its note."""

    candidate: Candidate
    hits: tuple[tags.RuleHit, ...]
    title_html: Markup
    abstract_html: Markup
    note: notes.Note | None


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


def candidate_views(
    settings: Settings, candidates: Sequence[Candidate], in_issue: Sequence[Entry],
    shelf: notes.Notes, tag: str = "", query: str = "",
) -> list[CandidateView]:
    """The day's candidates not in the issue, best first, filtered by tag and text."""
    ids = {e.arxiv_id for e in in_issue if e.arxiv_id is not None}
    titles = {title_key(e.title) for e in in_issue}
    rules = tags.compile_rules(settings.tags)
    by_id = shelf.by_id()
    wanted_tag = normalize_tag(tag) if tag.strip() else None
    words = query.casefold().split()
    views = []
    for c in candidates:
        p = c.paper
        if p.arxiv_id in ids or title_key(p.title) in titles:
            continue
        if wanted_tag is not None and wanted_tag not in {normalize_tag(t) for t in c.tags}:
            continue
        haystack = " ".join((p.title, p.abstract, " ".join(p.authors), p.arxiv_id)).casefold()
        if any(w not in haystack for w in words):
            continue
        hits = tags.explain_match(p, rules)
        views.append(CandidateView(
            c, hits,
            highlight(p.title, [s for h in hits for s in h.title_spans]),
            highlight(p.abstract, [s for h in hits for s in h.abstract_spans]),
            by_id.get(p.arxiv_id),
        ))
    return views


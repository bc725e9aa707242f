"""Fetch arXiv's announcement feed (rss.arxiv.org) and adapt its items into Papers.

The calendar rule: the channel `<pubDate>` of the feed names the announcement it holds, e.g.
`Thu, 28 Nov 2024 00:00:00 -0500` for the mailing sent Wednesday 27 November at 20:00 US
Eastern. The announcement date D is the date of that pubDate *in its own offset* (US
Eastern, the feed's own calendar), never converted to another zone: D = 2024-11-28.
`digest collect --date D` therefore accepts a feed only when its pubDate date equals D;
a feed holding any other day is stale (or newer than D) and is an error, never a silent
empty day. A channel without items is arXiv's "no announcement" answer (weekends, holidays)
for the day its pubDate names (the real holiday capture of 2024-11-28 is dated that day); an
empty channel dated another day says nothing about D and is refused like any other day's feed,
so a late catch-up of a weekday is never recorded as a holiday.
"""

from __future__ import annotations

import re
import xml.sax
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser

from pipeline.collect import http
from pipeline.core.config import Settings
from pipeline.core.errors import FeedError
from pipeline.core.latex import latex_to_text
from pipeline.core.models import ANNOUNCE_TYPES, Paper, split_arxiv_id
from pipeline.core.runtime import Runtime

_DESCRIPTION_RE = re.compile(
    r"\A\s*arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[\w-]+)\s*"
    r"(?:Abstract:\s*)?(?P<abstract>.*)\Z",
    re.DOTALL,
)
_ERROR_TITLE = "Feed error for query"
ITEM_LIMIT = 2000  # arXiv lists at most this many items in one feed
Track = Callable[[list[Any]], AbstractContextManager[Iterable[Any]]]


@dataclass(frozen=True)
class Announcement:
    """One day's announcement: the papers of the kept announce types, and counts of all."""

    day: date
    papers: tuple[Paper, ...]
    by_type: dict[str, int] = field(default_factory=dict)  # every item of the feed, by type

    @property
    def announced(self) -> int:
        """How many items the feed listed (every announce type)."""
        return sum(self.by_type.values())

    @property
    def empty(self) -> bool:
        """True when arXiv announced nothing (an empty channel)."""
        return self.announced == 0


def feed_url(settings: Settings) -> str:
    """The one URL that covers every configured category (`cs.CL+cs.LG+...`)."""
    return settings.arxiv.rss_url.format(categories="+".join(settings.arxiv.categories))


def fetch_announcement(
    settings: Settings, day: date, rt: Runtime, track: Track = nullcontext
) -> Announcement:
    """Fetch the feed once and adapt it; raise FetchError or FeedError when it is unusable.
    `track` wraps the items being adapted (the interface's progress bar)."""
    url = feed_url(settings)
    resp = http.get(
        rt, url, contact=settings.arxiv.contact, timeout=settings.arxiv.timeout,
        retries=settings.arxiv.retries,
    )
    return parse_announcement(resp.content, day, settings.arxiv.announce_types, url=url, track=track)


def parse_announcement(
    data: bytes, day: date, keep: Collection[str], *, url: str | None = None,
    track: Track = nullcontext,
) -> Announcement:
    """Adapt feed bytes into the announcement of `day`, keeping the `keep` announce types;
    `track` wraps the items being adapted (the caller's progress bar)."""
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    _check_feed(parsed, url)
    entries = parsed.entries
    if entries or parsed.feed.get("published"):
        _check_day(parsed.feed, day, url)
    if not entries:
        return Announcement(day, ())
    by_type: Counter[str] = Counter()
    kept: dict[str, Paper] = {}
    with track(entries) as items:
        for index, entry in enumerate(items, 1):
            kind = _announce_type(entry, index, url)
            by_type[kind] += 1
            if kind in keep:
                paper = adapt_item(entry, kind, index, url)
                kept.setdefault(paper.arxiv_id, paper)
    return Announcement(day, tuple(kept.values()), dict(by_type))


def _check_feed(parsed: Any, url: str | None) -> None:
    """Refuse what is not a well-formed RSS 2.0 announcement feed, saying which problem."""
    version = parsed.get("version", "")
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if isinstance(problem, xml.sax.SAXParseException):
        raise FeedError(
            f"unparsable or truncated feed XML (line {problem.getLineNumber()}: "
            f"{problem.getMessage()})",
            url=url,
        )
    if version == "rss10":
        raise FeedError(
            "legacy RSS 1.0 (RDF) feed of export.arxiv.org is not supported: "
            "arxiv.rss_url must give the RSS 2.0 feed of rss.arxiv.org",
            url=url,
        )
    title = parsed.feed.get("title", "")
    if title.startswith(_ERROR_TITLE):
        detail = parsed.feed.get("description", "") or title
        raise FeedError(f"arXiv answered with an error feed: {detail}", url=url)
    if version != "rss20":
        what = f"a {version} feed" if version else "no RSS feed"
        raise FeedError(f"expected arXiv's RSS 2.0 feed, got {what}", url=url)


def _check_day(feed: Any, day: date, url: str | None) -> None:
    """The channel's pubDate, read in its own offset, must be the announcement date `day`."""
    raw = feed.get("published", "")
    try:
        published = parsedate_to_datetime(raw).date()
    except (TypeError, ValueError):
        raise FeedError(f"the channel has no valid <pubDate> (got {raw!r})", url=url) from None
    if published < day:
        raise FeedError(
            f"stale feed: it holds the announcement of {published}, not {day} "
            "(not announced yet, or arXiv has not updated the feed)",
            url=url,
        )
    if published > day:
        raise FeedError(
            f"the feed holds the announcement of {published}, not {day}: "
            "arXiv's feed only carries the latest announcement",
            url=url,
        )


def _announce_type(entry: Any, index: int, url: str | None) -> str:
    kind = entry.get("arxiv_announce_type") or _description_match(entry).get("type")
    if kind not in ANNOUNCE_TYPES:
        raise FeedError(f"item {index}: unknown announce type {kind!r}", url=url)
    return str(kind)


def _description_match(entry: Any) -> dict[str, str]:
    m = _DESCRIPTION_RE.match(entry.get("summary", ""))
    return m.groupdict() if m else {}


def adapt_item(entry: Any, kind: str, index: int, url: str | None = None) -> Paper:
    """Turn one feedparser item into a Paper (LaTeX to Unicode, authors split)."""
    described = _description_match(entry)
    raw_id = described.get("id") or str(entry.get("id", "")).removeprefix("oai:arXiv.org:")
    try:
        arxiv_id, version = split_arxiv_id(raw_id)
    except ValueError:
        raise FeedError(f"item {index}: no arXiv id (got {raw_id!r})", url=url) from None
    title = latex_to_text(entry.get("title", ""))
    if not title:
        raise FeedError(f"item {index} (arXiv:{arxiv_id}): no title", url=url)
    abstract = described.get("abstract", entry.get("summary", ""))
    return Paper(
        arxiv_id=arxiv_id,
        version=version or 1,
        title=title,
        authors=split_authors(entry.get("author", "")),
        abstract=latex_to_text(abstract),
        categories=tuple(t["term"] for t in entry.get("tags", []) if t.get("term")),
        announce_type=kind,
        doi=entry.get("arxiv_doi") or None,
        journal_ref=entry.get("arxiv_journal_reference") or None,
    )


def split_authors(creator: str) -> tuple[str, ...]:
    """Split `dc:creator` ("A, B (Univ X, Dept Y), C") into names, dropping affiliations."""
    flat = _drop_parentheses(creator) if "(" in creator or ")" in creator else creator
    names = (" ".join(part.split()) for part in flat.split(","))
    return tuple(name for name in names if name)


def _drop_parentheses(text: str) -> str:
    """The text without its parenthesised parts (nested or unbalanced ones too)."""
    out: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(ch)
    return "".join(out)

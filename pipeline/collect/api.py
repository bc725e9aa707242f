"""The arXiv API (export.arxiv.org/api/query) through the `arxiv` package, adapted into Papers.

The package builds queries, pages through results and parses the Atom; we replace only its
page fetch (`Client._parse_feed`) so that requests go to `arxiv.api_url` through our session
and User-Agent, at least `arxiv.api_interval` seconds apart on the injected clock, with our
retries (429/503, connection errors, an empty page in the middle of a result).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import arxiv
from arxiv import _feed
from lxml import etree

from pipeline.collect import http
from pipeline.core.calendar import EASTERN
from pipeline.core.config import Settings
from pipeline.core.errors import FeedError, InputError
from pipeline.core.latex import latex_to_text
from pipeline.core.models import Paper, split_arxiv_id
from pipeline.core.runtime import Runtime

PAGE_SIZE = 100
_ERROR_ID = "/api/errors"
_NS = {"atom": "http://www.w3.org/2005/Atom"}
_QUERY_UNSAFE_RE = re.compile(r"[^\w\s\-]+")


class _Client(arxiv.Client):  # type: ignore[misc]  # the package ships no type hints
    """arxiv.Client whose page fetch goes through ArxivApi (paced, retried, our session)."""

    def __init__(self, api: ArxivApi, page_size: int) -> None:
        super().__init__(page_size=page_size, delay_seconds=0.0, num_retries=0)
        self.query_url_format = api.settings.arxiv.api_url + "?{}"
        self._api = api

    def _parse_feed(self, url: str, first_page: bool = True, _try_index: int = 0) -> Any:
        return self._api.fetch_page(url, first_page=first_page)


class ArxivApi:
    """Searches and id look-ups on the arXiv API; every answer comes back as Papers."""

    def __init__(self, settings: Settings, rt: Runtime, *, page_size: int = PAGE_SIZE) -> None:
        self.settings = settings
        self.rt = rt
        self.page_size = page_size
        self.pacer = http.Pacer(rt, settings.arxiv.api_interval)

    def fetch_page(self, url: str, *, first_page: bool) -> Any:
        """One parsed page of results; an empty page after the first is retried, then fatal."""
        cfg = self.settings.arxiv
        for attempt in range(cfg.retries + 1):
            resp = http.get(
                self.rt, url, contact=cfg.contact, timeout=cfg.timeout, retries=cfg.retries,
                accept=(200, 400), pacer=self.pacer,
            )
            _check_page(resp.content, resp.status_code, url)
            feed = _feed.parse(resp.content)
            if feed.results or first_page:
                return feed
            if self.rt.verbose:
                self.rt.echo(f"{url}: empty page in the middle of a result (try {attempt + 1})")
        raise FeedError(
            f"the API kept returning an empty page in the middle of a result "
            f"({cfg.retries + 1} tries)",
            url=url,
        )

    def _run(self, search: arxiv.Search, page_size: int) -> Iterator[Paper]:
        client = _Client(self, page_size=max(1, min(page_size, self.page_size)))
        return (adapt_result(r) for r in client.results(search))

    def search(self, query: str, max_results: int) -> list[Paper]:
        """Papers matching an API query (`all:"reward model"`), best first."""
        sort = arxiv.SortCriterion.Relevance
        search = arxiv.Search(query=query, max_results=max_results, sort_by=sort)
        return list(self._run(search, max_results))

    def search_since(self, query: str, since: datetime, max_results: int) -> list[Paper]:
        """Papers matching the query submitted at or after `since`, newest first; stops
        paging at the first older paper."""
        sort = arxiv.SortCriterion.SubmittedDate
        search = arxiv.Search(query=query, max_results=max_results, sort_by=sort)
        return list(
            itertools.takewhile(
                lambda p: p.published is not None and p.published >= since,
                self._run(search, max_results),
            )
        )

    def search_title(self, title: str, max_results: int = 5) -> list[Paper]:
        """Papers whose title matches these words (for entries that carry no arXiv id)."""
        phrase = _query_phrase(latex_to_text(title))
        return self.search(f'ti:"{phrase}"', max_results) if phrase else []

    def fetch_ids(self, ids: Sequence[str], batch: int = PAGE_SIZE) -> dict[str, Paper]:
        """Latest metadata by arXiv id (with or without version), `batch` ids per request;
        keyed by version-less id, unknown ids absent."""
        wanted = list(dict.fromkeys(_bare_id(i) for i in ids))
        found: dict[str, Paper] = {}
        for start in range(0, len(wanted), batch):
            chunk = wanted[start : start + batch]
            search = arxiv.Search(id_list=chunk, max_results=len(chunk))
            for paper in self._run(search, len(chunk)):
                found[paper.arxiv_id] = paper
        return found


def _bare_id(text: str) -> str:
    try:
        return split_arxiv_id(text)[0]
    except ValueError:
        raise InputError(f"not an arXiv id: {text!r}") from None


def _check_page(content: bytes, status: int, url: str) -> None:
    """Refuse what is no Atom feed (a strict parse: the package's parser recovers silently
    from truncated XML) and arXiv's error feeds (HTTP 400, or an Error entry)."""
    try:
        root = etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"unparsable or truncated API response ({exc})", url=url) from None
    for entry in root.iterfind("atom:entry", _NS):
        if _ERROR_ID in (entry.findtext("atom:id", "", _NS) or ""):
            message = " ".join((entry.findtext("atom:summary", "", _NS) or "error").split())
            raise FeedError(f"arXiv API error: {message}", url=url)
    if status != 200:
        raise FeedError(f"arXiv API answered HTTP {status} without an error message", url=url)
    if root.tag != "{http://www.w3.org/2005/Atom}feed":
        raise FeedError(f"expected an Atom feed, got <{root.tag}>", url=url)


def adapt_result(result: Any) -> Paper:
    """Turn an arxiv.Result into a Paper (LaTeX to Unicode, primary category first)."""
    arxiv_id, version = split_arxiv_id(result.get_short_id())
    categories = [result.primary_category] if result.primary_category else []
    categories += [c for c in result.categories if c not in categories]
    return Paper(
        arxiv_id=arxiv_id,
        version=version or 1,
        title=latex_to_text(result.title),
        authors=tuple(" ".join(a.name.split()) for a in result.authors),
        abstract=latex_to_text(result.summary),
        categories=tuple(categories),
        doi=result.doi or None,
        journal_ref=result.journal_ref or None,
        comment=result.comment or None,
        published=result.published,
        updated=result.updated,
    )


def _query_phrase(text: str) -> str:
    """The words of `text` without the characters that would break an API query phrase."""
    return " ".join(_QUERY_UNSAFE_RE.sub(" ", text).split())


def keyword_query(phrases: Iterable[str]) -> str:
    """An API query for any of these phrases in title or abstract."""
    quoted = [f'"{w}"' for w in map(_query_phrase, phrases) if w]
    return " OR ".join(f"ti:{q} OR abs:{q}" for q in quoted)


CUTOFF = time(14, 0)  # arXiv's daily submission deadline, US Eastern


def submission_window(day: date) -> tuple[datetime, datetime]:
    """When papers announced on `day` were submitted (holidays aside): from the 14:00 US
    Eastern cutoff of the weekday before last to the cutoff of the last weekday before `day`."""
    end = _previous_weekday(day)
    start = _previous_weekday(end)
    return datetime.combine(start, CUTOFF, EASTERN), datetime.combine(end, CUTOFF, EASTERN)


def _previous_weekday(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day

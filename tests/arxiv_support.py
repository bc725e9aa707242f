"""Helpers for the collect tests: settings pointing at the local server, and an independent
reading of the real feed with lxml (never through the code under test)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from lxml import etree

from pipeline.core.config import Settings
from pipeline.core.runtime import Runtime
from tests.support import FIXTURES, FakeClock, write_newsletter

RSS_DIR = FIXTURES / "arxiv-rss" / "aioarxiv-2024-11-28"
REAL_FEED = RSS_DIR / "rss_mock_feed.xml"
EMPTY_FEED = RSS_DIR / "empty_rss_mock_feed.xml"
ERROR_FEED = RSS_DIR / "error_rss_mock_feed.xml"
LEGACY_FEED = next((FIXTURES / "arxiv-rss" / "legacy-rss1.0-export.arxiv.org").glob("*.xml"))
API_DIR = FIXTURES / "arxiv-api"
API_2026 = API_DIR / "arxiv.py-recorded-2026" / "bodies"
API_2016 = API_DIR / "arxiv.py-legacy-2016"
API_2007 = API_DIR / "arxiv-docs-user-manual"
NS = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "arxiv": "http://arxiv.org/schemas/atom",
    "atom": "http://www.w3.org/2005/Atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
}
RSS_PATH = "/rss/cs.CL+cs.LG+stat.ML"
CONTACT = "tester@example.org"

# Category, keyword (with an exclude phrase) and author tags, as a curator would write them.
TAGS_TOML = """
[tags.nlp]
categories = ["cs.CL"]

[tags.llm]
keywords = ["large language model", "large language models", "LLM", "LLMs"]
exclude = ["survey"]

[tags.rl]
keywords = ["reinforcement learning"]
api_search = false

[tags.cui]
authors = ["Jun Cui"]
"""


def settings_for(tmp_path: Path, base_url: str, tags: str = TAGS_TOML, extra: str = "") -> Settings:
    """Settings whose RSS and API URLs point at the local server; the store under tmp_path."""
    text = f"""
[arxiv]
rss_url = "{base_url}/rss/{{categories}}"
api_url = "{base_url}/api/query"
categories = ["cs.CL", "cs.LG", "stat.ML"]
contact = "{CONTACT}"
timeout = 5
{extra}
{tags}
"""
    return write_newsletter(tmp_path, text)


def runtime_for(clock: FakeClock, messages: list[str] | None = None, **kw: object) -> Runtime:
    """A Runtime with the fake clock and a real HTTP session; echo collects messages."""
    sink = messages if messages is not None else []
    return Runtime(
        sleep=clock.sleep, monotonic=clock.monotonic, echo=sink.append,
        http=requests.Session(), **kw,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class RawItem:
    """One feed item read directly with lxml."""

    arxiv_id: str
    version: int
    announce_type: str
    title: str
    abstract: str
    creator: str
    categories: tuple[str, ...]
    doi: str | None
    journal_ref: str | None


def raw_items(data: bytes) -> list[RawItem]:
    """Every item of an RSS 2.0 feed, read with lxml only."""
    root = etree.fromstring(data)
    items = []
    for item in root.iterfind("channel/item"):
        guid = item.findtext("guid") or ""
        m = re.fullmatch(r"oai:arXiv\.org:(.+)v(\d+)", guid)
        assert m, guid
        description = item.findtext("description") or ""
        items.append(
            RawItem(
                arxiv_id=m.group(1),
                version=int(m.group(2)),
                announce_type=item.findtext("arxiv:announce_type", namespaces=NS) or "",
                title=item.findtext("title") or "",
                abstract=description.split("Abstract:", 1)[-1].strip(),
                creator=item.findtext("dc:creator", namespaces=NS) or "",
                categories=tuple(c.text or "" for c in item.iterfind("category")),
                doi=item.findtext("arxiv:DOI", namespaces=NS),
                journal_ref=item.findtext("arxiv:journal_reference", namespaces=NS),
            )
        )
    return items


def rewrite_feed(
    data: bytes,
    *,
    keep: Callable[[int, etree._Element], bool] = lambda i, item: True,
    pub_date: str | None = None,
    edit: Callable[[etree._Element], None] | None = None,
    copies: int = 1,
) -> bytes:
    """A feed derived from a real one: some items, another pubDate, edited or repeated items
    (repeats get fresh ids so that a feed of any size can be built)."""
    root = etree.fromstring(data)
    channel = root.find("channel")
    assert channel is not None
    items = channel.findall("item")
    for item in items:
        channel.remove(item)
    if pub_date is not None:
        channel.find("pubDate").text = pub_date  # type: ignore[union-attr]
    serial = 0
    for n in range(copies):
        for i, item in enumerate(items):
            if not keep(i, item):
                continue
            new = copy.deepcopy(item) if copies > 1 else item
            if n:
                serial += 1
                fresh = f"2499.{serial:05d}"
                for el in (new.find("guid"), new.find("description"), new.find("link")):
                    el.text = re.sub(r"\d{4}\.\d{4,5}", fresh, el.text or "", count=1)  # type: ignore[union-attr]
            if edit is not None:
                edit(new)
            channel.append(new)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def whole_words(phrase: str, text: str) -> bool:
    """Independent whole-word, case-insensitive phrase test (word boundaries by \\b), the last
    word possibly plural."""
    words = r"\s+".join(re.escape(w) for w in phrase.lower().split())
    return re.search(rf"\b{words}(s|es)?\b", " ".join(text.lower().split())) is not None


def split_creator(creator: str) -> list[str]:
    """Independent author split: drop parenthesised affiliations, then split on commas."""
    flat = creator
    while True:
        stripped = re.sub(r"\([^()]*\)", "", flat)
        if stripped == flat:
            break
        flat = stripped
    return [" ".join(a.split()) for a in flat.split(",") if a.strip()]

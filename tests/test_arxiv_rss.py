"""Adapting rss.arxiv.org feeds into Papers, and refusing feeds that are no announcement."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from pipeline.collect import feed as arxiv_rss
from pipeline.collect.feed import Announcement, parse_announcement, split_authors
from pipeline.core.errors import FeedError
from pipeline.interfaces import present
from tests.arxiv_support import (
    EMPTY_FEED,
    ERROR_FEED,
    LEGACY_FEED,
    REAL_FEED,
    RSS_PATH,
    raw_items,
    rewrite_feed,
    runtime_for,
    settings_for,
    split_creator,
)
from tests.support import FakeClock, RecordingServer, Reply

DAY = date(2024, 11, 28)
ALL_TYPES = ("new", "cross", "replace", "replace-cross")


@pytest.fixture(scope="module")
def real_feed() -> bytes:
    return REAL_FEED.read_bytes()


def sampled(i: int, item: etree._Element) -> bool:
    """Every fourth item, every cross-list and every title with LaTeX (the full feed is
    checked through `run.collect` in test_collect)."""
    title = item.findtext("title") or ""
    return i % 4 == 0 or 926 <= i < 935 or "$" in title or "\\" in title


@pytest.fixture(scope="module")
def sample(real_feed: bytes) -> bytes:
    return rewrite_feed(real_feed, keep=sampled)


@pytest.fixture(scope="module")
def everything(sample: bytes) -> Announcement:
    """A sample of the real capture with every announce type kept."""
    return parse_announcement(sample, DAY, ALL_TYPES)


@pytest.mark.slow
def test_the_real_feed_counts_by_announce_type(real_feed: bytes) -> None:
    """Counting needs no adapting: keep nothing, and every item is still counted."""
    counted = parse_announcement(real_feed, DAY, ())
    assert counted.by_type == {"new": 926, "replace": 569, "cross": 9}
    assert counted.announced == 1504 and counted.papers == ()


def test_every_item_of_the_real_feed_is_adapted(sample: bytes, everything: Announcement) -> None:
    items = raw_items(sample)
    assert len(items) > 400
    assert Counter(p.announce_type for p in everything.papers) == Counter(
        i.announce_type for i in items
    )
    assert [p.arxiv_id for p in everything.papers] == [i.arxiv_id for i in items]
    for paper, item in zip(everything.papers, items, strict=True):
        assert paper.version == item.version
        assert paper.announce_type == item.announce_type
        assert paper.categories == item.categories
        assert (paper.doi, paper.journal_ref) == (item.doi, item.journal_ref)
        assert list(paper.authors) == split_creator(item.creator)
        assert "Announce Type" not in paper.abstract and paper.abstract
        assert "\n" not in paper.title + paper.abstract
    with_doi = [p for p in everything.papers if p.doi]
    assert with_doi and any(p.journal_ref for p in everything.papers)
    replaced = [p for p in everything.papers if p.announce_type == "replace"]
    assert any(p.version > 1 for p in replaced)


def test_latex_in_titles_becomes_unicode(everything: Announcement) -> None:
    titles = {p.arxiv_id: p.title for p in everything.papers}
    assert any(t.startswith("H^3Fusion: Helpful, Harmless") for t in titles.values())
    zeta = [t for t in titles.values() if t.startswith("The exotic structure of the spectral")]
    assert zeta == [
        "The exotic structure of the spectral ζ-function for the Schrödinger operator "
        "with Pöschl--Teller potential"
    ]
    assert not any("\\" in t for t in titles.values())


def test_only_the_configured_announce_types_are_kept(
    real_feed: bytes, everything: Announcement
) -> None:
    small = rewrite_feed(real_feed, keep=lambda i, item: i < 5 or 926 <= i < 930 or i >= 1500)
    kept = parse_announcement(small, DAY, ("cross",))
    assert kept.by_type == {"new": 5, "cross": 4, "replace": 4}
    assert {p.announce_type for p in kept.papers} == {"cross"} and len(kept.papers) == 4


def test_authors_keep_names_and_drop_affiliations() -> None:
    creator = (
        "Tianliang Yan (University of Birmingham, School of Physics), "
        "Yubao Liu (Center (Hubei), Wuhan, China), CMS Collaboration, Dirk Wübben"
    )
    assert split_authors(creator) == (
        "Tianliang Yan", "Yubao Liu", "CMS Collaboration", "Dirk Wübben"
    )
    assert split_authors("") == ()


def test_the_empty_feed_is_no_announcement() -> None:
    empty = parse_announcement(EMPTY_FEED.read_bytes(), DAY, ("new",))
    assert empty.empty and empty.papers == () and empty.announced == 0
    # An empty channel dated another day says nothing about that day: a late catch-up of a
    # weekday must fail, never be recorded as a holiday.
    with pytest.raises(FeedError, match="holds the announcement of 2024-11-28, not 2024-11-27"):
        parse_announcement(EMPTY_FEED.read_bytes(), date(2024, 11, 27), ("new",))
    with pytest.raises(FeedError, match="stale feed"):
        parse_announcement(EMPTY_FEED.read_bytes(), date(2024, 11, 29), ("new",))
    # without a pubDate it is still arXiv's "nothing announced"
    undated = re.sub(rb"<pubDate>[^<]*</pubDate>", b"", EMPTY_FEED.read_bytes())
    assert parse_announcement(undated, date(2024, 11, 30), ("new",)).empty


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda feed: ERROR_FEED.read_bytes(),
            "arXiv answered with an error feed: Bad archive 'astroph'. Valid archive names",
            id="error-feed",
        ),
        pytest.param(
            lambda feed: rewrite_feed(feed, pub_date="Wed, 27 Nov 2024 00:00:00 -0500"),
            "stale feed: it holds the announcement of 2024-11-27, not 2024-11-28",
            id="stale",
        ),
        pytest.param(
            lambda feed: rewrite_feed(feed, pub_date="Fri, 29 Nov 2024 00:00:00 -0500"),
            "the feed holds the announcement of 2024-11-29, not 2024-11-28",
            id="newer",
        ),
        pytest.param(
            lambda feed: rewrite_feed(feed, pub_date="someday"),
            "the channel has no valid <pubDate> (got 'someday')",
            id="bad-pubdate",
        ),
        pytest.param(
            lambda feed: feed[:-200], "unparsable or truncated feed XML (line", id="truncated"
        ),
        pytest.param(
            lambda feed: LEGACY_FEED.read_bytes(),
            "legacy RSS 1.0 (RDF) feed of export.arxiv.org is not supported",
            id="legacy-rss-1.0",
        ),
        pytest.param(
            lambda feed: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            "expected arXiv's RSS 2.0 feed, got no RSS feed",
            id="html-page",
        ),
    ],
)
def test_feeds_that_are_no_announcement_are_refused(
    small_feed: bytes, make: object, message: str
) -> None:
    with pytest.raises(FeedError) as caught:
        parse_announcement(make(small_feed), DAY, ("new",), url="http://x/rss")  # type: ignore[operator]
    assert str(caught.value).startswith("http://x/rss: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def small_feed(real_feed: bytes) -> bytes:
    return rewrite_feed(real_feed, keep=lambda i, item: i < 3)


def test_the_pubdate_is_read_in_its_own_offset(small_feed: bytes) -> None:
    """Thu 00:00 -05:00 is Thu 05:00 UTC and 14:00 in Seoul: always the 28th. A pubDate
    written at +09:00 early on the 28th is still the 28th, though UTC says the 27th."""
    seoul = rewrite_feed(small_feed, pub_date="Thu, 28 Nov 2024 02:00:00 +0900")
    assert len(parse_announcement(seoul, DAY, ("new",)).papers) == 3


def test_fetch_asks_once_for_all_categories(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, small_feed: bytes
) -> None:
    settings = settings_for(tmp_path, http_server.url)
    assert arxiv_rss.feed_url(settings) == f"{http_server.url}{RSS_PATH}"
    http_server.route(RSS_PATH, Reply(small_feed))
    got = arxiv_rss.fetch_announcement(settings, DAY, runtime_for(clock))
    assert [p.arxiv_id for p in got.papers] == [i.arxiv_id for i in raw_items(small_feed)]
    assert http_server.count() == 1
    assert http_server.requests[0].headers["User-Agent"].startswith("arxiv-digest/")


def test_progress_is_drawn_by_the_interfaces_bar_when_asked(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, small_feed: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    quiet = parse_announcement(small_feed, DAY, ("new",))
    assert capsys.readouterr().err == ""
    http_server.route(RSS_PATH, Reply(small_feed))
    settings = settings_for(tmp_path, http_server.url, extra='announce_types = ["new"]')
    bar = present.progress_bar("Reading the feed")
    shown = arxiv_rss.fetch_announcement(settings, DAY, runtime_for(clock), bar)
    assert "Reading the feed" in capsys.readouterr().err
    assert shown == quiet

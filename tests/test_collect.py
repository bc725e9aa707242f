"""`services.collect` and `digest collect` against a local server serving real arXiv captures."""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from requests import Session

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.errors import FeedError, FetchError
from pipeline.core.models import Paper
from pipeline.core.runtime import Runtime
from pipeline.interfaces import cli, present
from tests.arxiv_support import (
    API_2026,
    CONTACT,
    EMPTY_FEED,
    ERROR_FEED,
    NS,
    REAL_FEED,
    RSS_PATH,
    raw_items,
    rewrite_feed,
    runtime_for,
    settings_for,
    split_creator,
    whole_words,
)
from tests.support import FakeClock, RecordingServer, Reply

DAY = date(2024, 11, 28)
KEYWORDS = {
    "llm": ["large language model", "large language models", "llm", "llms"],
    "rl": ["reinforcement learning"],
}


@pytest.fixture(scope="module")
def real_feed() -> bytes:
    return REAL_FEED.read_bytes()


@pytest.fixture(scope="module")
def small_feed(real_feed: bytes) -> bytes:
    """44 items of the real capture: 30 new, the 9 cross-lists, 5 replacements."""
    return rewrite_feed(real_feed, keep=lambda i, item: i < 30 or 926 <= i < 935 or i >= 1499)


def dump(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row (days without their timestamp), to compare whole states."""
    if not settings.db_path.exists():
        return {}
    with closing(sqlite3.connect(settings.db_path)) as conn:
        return {
            "papers": conn.execute("SELECT * FROM papers ORDER BY arxiv_id").fetchall(),
            "candidates": conn.execute("SELECT * FROM candidates ORDER BY arxiv_id").fetchall(),
            "days": conn.execute("SELECT date, status, announced, kept FROM days").fetchall(),
            "issues": conn.execute("SELECT date, state FROM issues").fetchall(),
        }


def stored_rows(settings: Settings) -> int:
    return sum(len(rows) for rows in dump(settings).values())


def expected_tags(item: Any) -> set[str]:
    """Tags of a raw item by the test's own reading of TAGS_TOML."""
    tags = set()
    if "cs.CL" in item.categories:
        tags.add("nlp")
    text_hits = {
        name: any(whole_words(k, item.title) or whole_words(k, item.abstract) for k in words)
        for name, words in KEYWORDS.items()
    }
    survey = whole_words("survey", item.title) or whole_words("survey", item.abstract)
    if text_hits["llm"] and not survey:
        tags.add("llm")
    if text_hits["rl"]:
        tags.add("rl")
    if "Jun Cui" in split_creator(item.creator):
        tags.add("cui")
    return tags


@pytest.mark.slow
def test_collect_stores_what_the_real_feed_announces(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, real_feed: bytes
) -> None:
    http_server.route(RSS_PATH, Reply(real_feed))
    settings = settings_for(tmp_path, http_server.url)
    messages: list[str] = []
    messages += present.lines(services.collect(settings, DAY, runtime_for(clock, messages)))

    # One request for all categories, with our User-Agent.
    assert http_server.count() == 1
    assert http_server.requests[0].path == RSS_PATH
    assert CONTACT in http_server.requests[0].headers["User-Agent"]

    items = raw_items(real_feed)
    by_type = Counter(i.announce_type for i in items)
    assert by_type == {"new": 926, "replace": 569, "cross": 9}
    kept = {i.arxiv_id: i for i in items if i.announce_type in ("new", "cross")}
    with closing(store.connect(settings.db_path)) as conn:
        stored = store.get_papers(conn, kept)
        assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == len(kept) == 935
        day = store.get_day(conn, DAY)
        assert day is not None
        candidates = store.load_candidates(conn, DAY)
    assert (day.status, day.announced, day.kept) == ("collected", 1504, 935)
    for arxiv_id, item in kept.items():
        paper = stored[arxiv_id]
        assert (paper.version, paper.categories, paper.doi, paper.journal_ref) == (
            item.version, item.categories, item.doi, item.journal_ref
        )
        assert list(paper.authors) == split_creator(item.creator)

    want = {i: expected_tags(item) for i, item in kept.items()}
    want = {i: t for i, t in want.items() if t}
    got = {c.paper.arxiv_id: set(c.tags) for c in candidates}
    assert got == want
    for kind in ("new", "cross"):  # per announce type
        assert {c.paper.arxiv_id for c in candidates if c.paper.announce_type == kind} == {
            i for i in want if kept[i].announce_type == kind
        }
    for tag in ("nlp", "llm", "rl", "cui"):  # per tag, and each tag matches something
        assert {i for i, t in got.items() if tag in t} == {i for i, t in want.items() if tag in t}
        assert any(tag in t for t in got.values())
    assert [c.score for c in candidates] == sorted((c.score for c in candidates), reverse=True)
    assert "announced 1504" in messages[0] and "kept 935" in messages[0]
    per_tag = Counter(t for tags in want.values() for t in tags)
    assert messages[-1] == "matched: " + ", ".join(
        f"#{t} {per_tag[t]}" for t in ("nlp", "llm", "rl", "cui")
    )

    # A second run fetches once more and changes nothing.
    before = dump(settings)
    services.collect(settings, DAY, runtime_for(clock))
    assert http_server.count() == 2
    assert dump(settings) == before


def test_a_new_version_updates_the_paper_and_is_no_new_candidate(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, small_feed: bytes
) -> None:
    tags = '[tags.all]\ncategories = ["cs.CY", "cs.LG"]'
    settings = settings_for(tmp_path, http_server.url, tags=tags)
    first = raw_items(small_feed)[0]  # 2411.17700v1, cs.CY
    assert (first.arxiv_id, first.version, first.categories) == ("2411.17700", 1, ("cs.CY",))
    with closing(store.connect(settings.db_path)) as conn, store.transaction(conn):
        old = Paper(first.arxiv_id, "Old title", ("Jun Cui",), "old", categories=("cs.CY",))
        store.upsert_paper(conn, old, date(2024, 11, 20))

    def bump(item: Any) -> None:
        for el in (item.find("guid"), item.find("description")):
            el.text = el.text.replace("2411.17700v1", "2411.17700v2")

    feed = rewrite_feed(small_feed, edit=bump)
    http_server.route(RSS_PATH, Reply(feed))
    services.collect(settings, DAY, runtime_for(clock))
    with closing(store.connect(settings.db_path)) as conn:
        paper = store.get_papers(conn, [first.arxiv_id]).get(first.arxiv_id)
        candidates = {c.paper.arxiv_id for c in store.load_candidates(conn, DAY)}
    assert paper is not None and paper.version == 2 and paper.title != "Old title"
    assert first.arxiv_id not in candidates
    assert candidates  # the other papers of the day are candidates


def test_the_empty_feed_is_a_day_without_announcement(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock
) -> None:
    http_server.route(RSS_PATH, Reply(EMPTY_FEED.read_bytes()))
    settings = settings_for(tmp_path, http_server.url)
    messages: list[str] = []
    messages += present.lines(services.collect(settings, DAY, runtime_for(clock, messages)))
    state = dump(settings)
    assert state["papers"] == state["candidates"] == state["issues"] == []
    assert state["days"] == [("2024-11-28", "empty", 0, 0)]
    assert "no announcement" in messages[-1]


def test_an_empty_feed_later_keeps_a_collected_day(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, small_feed: bytes
) -> None:
    http_server.route(RSS_PATH, Reply(small_feed), Reply(EMPTY_FEED.read_bytes()))
    settings = settings_for(tmp_path, http_server.url)
    services.collect(settings, DAY, runtime_for(clock))
    before = dump(settings)
    services.collect(settings, DAY, runtime_for(clock))
    assert dump(settings) == before
    assert before["days"][0][1] == "collected"


def stale(feed: bytes) -> bytes:
    return rewrite_feed(feed, pub_date="Wed, 27 Nov 2024 00:00:00 -0500")


@pytest.mark.parametrize(
    ("replies", "error", "message", "requests"),
    [
        pytest.param(
            lambda feed: [Reply(ERROR_FEED.read_bytes())], FeedError,
            "error feed: Bad archive 'astroph'", 1, id="error-feed",
        ),
        pytest.param(
            lambda feed: [Reply(stale(feed))], FeedError,
            "stale feed: it holds the announcement of 2024-11-27, not 2024-11-28", 1, id="stale",
        ),
        pytest.param(
            lambda feed: [Reply(feed[: len(feed) // 2])], FeedError,
            "unparsable or truncated feed XML", 1, id="truncated",
        ),
        pytest.param(
            lambda feed: [Reply(reset=True)], FetchError,
            "connection failed", 5, id="reset-always",
        ),
        pytest.param(
            lambda feed: [Reply(b"busy", 503)], FetchError,
            "HTTP 503", 5, id="503-always",
        ),
        pytest.param(
            lambda feed: [Reply(b"no such page", 404)], FetchError, "HTTP 404", 1, id="404",
        ),
    ],
)
def test_a_failed_fetch_stores_nothing(
    tmp_path: Path,
    http_server: RecordingServer,
    clock: FakeClock,
    small_feed: bytes,
    replies: Any,
    error: type[Exception],
    message: str,
    requests: int,
) -> None:
    settings = settings_for(tmp_path, http_server.url)
    http_server.route(RSS_PATH, *replies(small_feed))
    with pytest.raises(error, match="^" + str(http_server.url)) as caught:
        services.collect(settings, DAY, runtime_for(clock))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert http_server.count() == requests
    assert stored_rows(settings) == 0


def test_a_failed_fetch_leaves_an_earlier_day_alone(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, small_feed: bytes
) -> None:
    settings = settings_for(tmp_path, http_server.url)
    http_server.route(RSS_PATH, Reply(small_feed), Reply(small_feed[:500]))
    services.collect(settings, DAY, runtime_for(clock))
    before = dump(settings)
    with pytest.raises(FeedError):
        services.collect(settings, DAY, runtime_for(clock))
    assert dump(settings) == before


@pytest.mark.parametrize(
    ("first", "sleeps"),
    [
        pytest.param(Reply(b"unavailable", 503), [1.0], id="503-then-200"),
        pytest.param(Reply(b"slow down", 429, {"Retry-After": "7"}), [7.0], id="429-retry-after"),
        pytest.param(Reply(reset=True), [1.0], id="reset-then-200"),
    ],
)
def test_transient_failures_are_retried(
    tmp_path: Path,
    http_server: RecordingServer,
    clock: FakeClock,
    small_feed: bytes,
    first: Reply,
    sleeps: list[float],
) -> None:
    settings = settings_for(tmp_path, http_server.url)
    http_server.route(RSS_PATH, first, Reply(small_feed))
    services.collect(settings, DAY, runtime_for(clock))
    assert http_server.count() == 2
    assert clock.sleeps == sleeps
    assert dump(settings)["days"] == [("2024-11-28", "collected", 44, 39)]


def test_a_feed_trickling_in_times_out_after_the_request_timeout(
    tmp_path: Path, http_server: RecordingServer, small_feed: bytes
) -> None:
    """A server sending a little every now and then never trips a timeout per socket read:
    arxiv.timeout bounds the whole request (on the real clock: the body takes ~2 s)."""
    settings = settings_for(tmp_path, http_server.url)
    settings = replace(settings, arxiv=replace(settings.arxiv, timeout=0.5, retries=0))
    http_server.route(RSS_PATH, Reply(small_feed, trickle=0.1))
    with pytest.raises(FetchError, match=r"timed out after 0\.5 s .*gave up after 1 attempt"):
        services.collect(settings, DAY, Runtime(echo=[].append, http=Session()))
    assert stored_rows(settings) == 0


def test_backoff_doubles_until_it_gives_up(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock
) -> None:
    settings = settings_for(tmp_path, http_server.url)
    http_server.route(RSS_PATH, Reply(b"", 502))
    with pytest.raises(FetchError, match=r"HTTP 502 .*gave up after 5 attempts"):
        services.collect(settings, DAY, runtime_for(clock))
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]


def run_cli(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    return int(exited.value.code or 0)


def test_cli_collect_exit_codes(
    tmp_path: Path, http_server: RecordingServer, small_feed: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings_for(tmp_path, http_server.url)
    argv = ["--config", str(settings.source), "collect", "--date", "2024-11-28"]
    http_server.route(RSS_PATH, Reply(small_feed))
    assert run_cli(argv) == 0
    err = capsys.readouterr().err
    assert "2024-11-28: announced 44" in err and "matched: #nlp" in err

    http_server.route(RSS_PATH, Reply(ERROR_FEED.read_bytes()))
    assert run_cli(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"digest: error: {http_server.url}{RSS_PATH}: arXiv answered with an")
    assert "Traceback" not in err

    http_server.route(RSS_PATH, Reply(small_feed))
    assert run_cli([*argv[:-1], "2024-11-29"]) == 1  # the feed holds the 28th
    assert "holds the announcement of 2024-11-28, not 2024-11-29" in capsys.readouterr().err

    christmas = rewrite_feed(EMPTY_FEED.read_bytes(), pub_date="Wed, 25 Dec 2024 00:00:00 -0500")
    http_server.route(RSS_PATH, Reply(christmas))
    assert run_cli([*argv[:-1], "2024-12-25"]) == 0  # Christmas: arXiv's empty feed
    assert "no announcement" in capsys.readouterr().err
    with closing(store.connect(tmp_path / "data" / "digest.db")) as conn:
        rows = conn.execute("SELECT date, status FROM days ORDER BY date").fetchall()
    assert [tuple(r) for r in rows] == [("2024-11-28", "collected"), ("2024-12-25", "empty")]

    # A weekend date is no announcement by the calendar: no request, and no "stale feed"
    # error asking to wait for an announcement that never comes.
    requests_before = http_server.count()
    http_server.route(RSS_PATH, Reply(small_feed))
    assert run_cli([*argv[:-1], "2024-11-30"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("2024-11-30 is a Saturday: arXiv announces Sunday–Thursday")
    assert err.count("\n") == 1
    assert http_server.count() == requests_before


def test_api_search_adds_papers_of_the_submission_window(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, small_feed: bytes
) -> None:
    """A tag with api_search finds papers outside the feed's categories; only those submitted
    in the day's window (Tue 14:00 to Wed 14:00 US Eastern for Thursday) are kept."""
    data = next(API_2026.glob("q_testing_s0_m10_*.xml")).read_bytes()
    root = etree.fromstring(data)
    entries = root.findall("atom:entry", NS)
    in_window = entries[0]  # "Testing Deep Learning Models: ..." (cs.SE)
    in_window.find("atom:published", NS).text = "2024-11-27T10:00:00Z"  # type: ignore[union-attr]
    entries[1].find("atom:published", NS).text = "2024-11-27T20:00:00Z"  # type: ignore[union-attr]
    api_body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    http_server.route(RSS_PATH, Reply(small_feed))
    http_server.route("/api/query", Reply(api_body))
    tags = '[tags.testing]\nkeywords = ["testing"]\napi_search = true'
    settings = settings_for(tmp_path, http_server.url, tags=tags)
    messages: list[str] = []
    messages += present.lines(services.collect(settings, DAY, runtime_for(clock, messages)))

    assert (http_server.count("/rss/"), http_server.count("/api/query")) == (1, 1)
    query = http_server.requests[1].query
    assert "search_query=ti%3A%22testing%22+OR+abs%3A%22testing%22" in query
    assert "sortBy=submittedDate" in query
    with closing(store.connect(settings.db_path)) as conn:
        candidates = {c.paper.arxiv_id: c for c in store.load_candidates(conn, DAY)}
        assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == 39 + 1
    assert "2202.12139" in candidates  # the entry moved into the window
    assert "2405.13786" not in candidates  # submitted after Wednesday's cutoff
    assert candidates["2202.12139"].tags == ("testing",)
    assert candidates["2202.12139"].paper.categories[0] == "cs.SE"
    assert "+1 from API searches" in messages[0]

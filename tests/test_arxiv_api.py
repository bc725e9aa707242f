"""The arXiv API through the `arxiv` package, served real recorded bodies by a local server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from lxml import etree

from pipeline.collect.api import ArxivApi, keyword_query, submission_window
from pipeline.core.errors import FeedError, InputError
from pipeline.core.runtime import Runtime
from tests.arxiv_support import API_2007, API_2016, API_2026, CONTACT, NS, settings_for
from tests.support import FakeClock, RecordingServer, Reply

API_PATH = "/api/query"


class TimedSession(requests.Session):
    """A real session that notes the injected clock's time of every request."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.times: list[float] = []

    def get(self, url: str | bytes, **kwargs: object) -> requests.Response:
        self.times.append(self.clock.monotonic())
        return super().get(url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def session(clock: FakeClock) -> TimedSession:
    return TimedSession(clock)


@pytest.fixture
def api(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, session: TimedSession
) -> ArxivApi:
    rt = Runtime(sleep=clock.sleep, monotonic=clock.monotonic, echo=lambda m: None, http=session)
    return ArxivApi(settings_for(tmp_path, http_server.url), rt)


def body(name: str) -> bytes:
    return next(API_2026.glob(f"{name}_*.xml")).read_bytes()


def raw_entries(data: bytes) -> list[dict[str, str | None]]:
    """Id, DOI and title of every entry, read with lxml only."""
    root = etree.fromstring(data)
    return [
        {
            "id": e.findtext("atom:id", namespaces=NS).rsplit("/abs/", 1)[1],  # type: ignore[union-attr]
            "doi": e.findtext("arxiv:doi", namespaces=NS),
            "journal_ref": e.findtext("arxiv:journal_ref", namespaces=NS),
        }
        for e in root.iterfind("atom:entry", NS)
    ]


def test_ids_come_back_as_papers_with_names_intact(
    api: ArxivApi, http_server: RecordingServer
) -> None:
    http_server.route(API_PATH, Reply(body("id_1707.08567")))
    found = api.fetch_ids(["1707.08567v1"])
    paper = found["1707.08567"]
    assert paper.version == 1
    assert "Dirk Wübben" in paper.authors
    assert paper.title.startswith("Proceedings of Workshop AEW10")
    query = parse_qs(http_server.requests[0].query)
    assert query["id_list"] == ["1707.08567"]
    assert CONTACT in http_server.requests[0].headers["User-Agent"]


def test_old_style_ids_and_categories(api: ArxivApi, http_server: RecordingServer) -> None:
    http_server.route(API_PATH, Reply(body("id_quant-ph_0201082v1")))
    paper = api.fetch_ids(["quant-ph/0201082v1"])["quant-ph/0201082"]
    assert (paper.arxiv_id, paper.version) == ("quant-ph/0201082", 1)
    assert paper.categories == ("quant-ph", "cs.PL")
    assert paper.comment == "32 pages"
    assert paper.authors == ("Stephen Blaha",)
    assert paper.published == datetime(2002, 1, 18, 15, 8, 5, tzinfo=UTC)
    assert paper.abstract.startswith("We show a representation of Quantum Computers")


def test_legacy_2016_body_doi_version_and_wrapped_text(
    api: ArxivApi, http_server: RecordingServer
) -> None:
    http_server.route(API_PATH, Reply((API_2016 / "id_list=1111.2011v2.xml").read_bytes()))
    paper = api.fetch_ids(["1111.2011"])["1111.2011"]
    assert paper.version == 2
    assert paper.doi == "10.1103/PhysRevB.85.115117"
    assert paper.journal_ref == "Phys. Rev. B 85, 115117 (2012)"
    assert paper.title == (
        "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"
    )
    assert "\n" not in paper.abstract and "layered superconductors" in paper.abstract
    assert paper.categories[0] == "cond-mat.str-el"


def test_a_page_of_100_results_matches_the_body(
    api: ArxivApi, http_server: RecordingServer
) -> None:
    data = body("q_testing_s0_m100")
    http_server.route(API_PATH, Reply(data))
    papers = api.search("testing", 100)
    want = raw_entries(data)
    assert len(papers) == len(want) == 100
    assert [f"{p.arxiv_id}v{p.version}" for p in papers] == [w["id"] for w in want]
    assert [p.doi for p in papers] == [w["doi"] for w in want]
    assert [p.journal_ref for p in papers] == [w["journal_ref"] for w in want]
    assert sum(p.doi is not None for p in papers) > 10
    assert not any("$" in p.title or "\\" in p.title for p in papers)
    assert http_server.count() == 1


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        pytest.param(body("id_abc"), 400, "arXiv API error: incorrect id format for abc", id="400"),
        pytest.param(
            (API_2007 / "error_id_list=1234.12345_2007.xml").read_bytes(), 200,
            "arXiv API error: incorrect id format for 1234.12345", id="2007-error-feed",
        ),
        pytest.param(
            body("q_testing_s0_m10")[:-300], 200, "unparsable or truncated API response",
            id="truncated",
        ),
    ],
)
def test_error_feeds_are_errors(
    api: ArxivApi, http_server: RecordingServer, data: bytes, status: int, message: str
) -> None:
    http_server.route(API_PATH, Reply(data, status))
    with pytest.raises(FeedError, match=message):
        api.fetch_ids(["2411.00001"])
    assert http_server.count() == 1  # a 400 is not retried


def test_unknown_ids_and_empty_results_give_nothing(
    api: ArxivApi, http_server: RecordingServer
) -> None:
    http_server.route(API_PATH, Reply(body("id_0000.0000")))
    assert api.fetch_ids(["0000.0000"]) == {}
    assert api.search("nothing at all", 10) == []
    with pytest.raises(InputError, match="not an arXiv id: 'abc'"):
        api.fetch_ids(["abc"])


def test_batches_are_three_seconds_apart_on_the_injected_clock(
    api: ArxivApi, http_server: RecordingServer, session: TimedSession, clock: FakeClock
) -> None:
    http_server.route(
        API_PATH, Reply(body("id_1707.08567")), Reply(body("id_1605.08386")),
        Reply(body("id_astro-ph_0601001")),
    )
    found = api.fetch_ids(["1707.08567", "1605.08386", "astro-ph/0601001"], batch=1)
    assert sorted(found) == ["1605.08386", "1707.08567", "astro-ph/0601001"]
    assert len(session.times) == 3
    assert all(b - a >= 3.0 for a, b in zip(session.times, session.times[1:], strict=False))
    assert [parse_qs(r.query)["id_list"] for r in http_server.requests] == [
        ["1707.08567"], ["1605.08386"], ["astro-ph/0601001"]
    ]


def test_paging_survives_an_empty_page_503_and_429(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, session: TimedSession
) -> None:
    rt = Runtime(sleep=clock.sleep, monotonic=clock.monotonic, echo=lambda m: None, http=session)
    api = ArxivApi(settings_for(tmp_path, http_server.url), rt, page_size=10)
    http_server.route(
        API_PATH,
        Reply(body("q_testing_s0_m10")),
        Reply(body("id_0000.0000")),  # an empty page in the middle of the result
        Reply(b"busy", 503),
        Reply(b"slow down", 429, {"Retry-After": "11"}),
        Reply(body("q_testing_s10_m10")),
        Reply(body("q_testing_s20_m10")),
    )
    papers = api.search("testing", 30)
    want = [
        w["id"] for name in ("q_testing_s0_m10", "q_testing_s10_m10", "q_testing_s20_m10")
        for w in raw_entries(body(name))
    ]
    assert [f"{p.arxiv_id}v{p.version}" for p in papers] == want
    assert [parse_qs(r.query)["start"] for r in http_server.requests] == [
        ["0"], ["10"], ["10"], ["10"], ["10"], ["20"]
    ]
    assert 11.0 in clock.sleeps
    assert all(b - a >= 3.0 for a, b in zip(session.times, session.times[1:], strict=False))


def test_an_endless_empty_page_is_an_error(
    tmp_path: Path, http_server: RecordingServer, clock: FakeClock, session: TimedSession
) -> None:
    rt = Runtime(sleep=clock.sleep, monotonic=clock.monotonic, echo=lambda m: None, http=session)
    api = ArxivApi(settings_for(tmp_path, http_server.url), rt, page_size=10)
    http_server.route(API_PATH, Reply(body("q_testing_s0_m10")), Reply(body("id_0000.0000")))
    with pytest.raises(FeedError, match="empty page in the middle of a result"):
        api.search("testing", 30)


def test_title_search_quotes_the_title(api: ArxivApi, http_server: RecordingServer) -> None:
    http_server.route(API_PATH, Reply(body("id_1605.08386")))
    papers = api.search_title("Heat-bath random walks with Markov bases", max_results=5)
    assert [p.arxiv_id for p in papers] == ["1605.08386"]
    query = parse_qs(http_server.requests[0].query)
    assert query["search_query"] == ['ti:"Heat-bath random walks with Markov bases"']
    assert query["max_results"] == ["5"]


def test_keyword_query_and_submission_window() -> None:
    assert keyword_query(["reward model", "C++ (x)"]) == (
        'ti:"reward model" OR abs:"reward model" OR ti:"C x" OR abs:"C x"'
    )
    start, end = submission_window(date(2024, 11, 28))  # Thursday: Tue 14:00 → Wed 14:00 ET
    assert (start.isoformat(), end.isoformat()) == (
        "2024-11-26T14:00:00-05:00", "2024-11-27T14:00:00-05:00"
    )
    start, end = submission_window(date(2024, 12, 2))  # Monday: Thu 14:00 → Fri 14:00 ET
    assert (start.date(), end.date()) == (date(2024, 11, 28), date(2024, 11, 29))

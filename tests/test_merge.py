"""Merge: draft entries resolved to papers by id, by normalised title, then by the arXiv API."""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from collections.abc import Sequence
from contextlib import closing
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from lxml import etree

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.digest_format import parse_digest, read_digest
from pipeline.core.errors import InputError
from pipeline.core.models import Candidate, Entry, Paper
from pipeline.core.runtime import Runtime
from pipeline.curate.merge import Lookups, Resolution, build_issue, merge_draft, resolve_entries
from tests.sample_day import DAY, METADATA, REFERENCE, add_candidates, paper, sample_papers
from tests.support import FakeClock, RecordingServer, Reply, write_newsletter

# Near-identical titles around the ten papers of the reference issue.
DECOYS = [
    paper("2412.09901", "Navigation World Model", ("Someone Else",)),
    paper("2412.09902", "Free Process Rewards with Process Labels", ("Lifan Yuan",)),
    paper("2412.09903", "Mind the Gap: Examining the Self-Improvement Capabilities of Small "
          "Language Models", ("Yuda Song",)),
    # Exactly the same title, other authors: the shared authors decide.
    paper("2412.09904", "TokenFlow: Unified Image Tokenizer for Multimodal Understanding and "
          "Generation", ("Ada Lovelace", "Alan Turing")),
    paper("2407.07726", "PaliGemma: A versatile 3B VLM for transfer", ("Lucas Beyer",)),
    paper("2412.09905", "The Matrix: Infinite-Horizon World Generation with Real-Time Moving "
          "Control, Revisited", ("Ruili Feng",)),
    paper("2412.09906", "RedStone: Curating General, Code, Math, and QA Data for Small Language "
          "Models", ("Yaoyao Chang",)),
]


def _store_lookups(conn: object) -> Lookups:
    def no_api(_: object) -> dict[str, Paper]:
        raise AssertionError("the arXiv API must not be asked")

    return Lookups(
        stored_ids=lambda ids: store.get_papers(conn, ids),  # type: ignore[arg-type]
        stored_title=lambda t: store.find_papers_by_title(conn, t),  # type: ignore[arg-type]
        api_ids=no_api, api_title=no_api,
    )


def _reference_ids() -> dict[str, str]:
    return {p.title: p.arxiv_id for p in sample_papers()}


def test_the_reference_issue_resolves_by_title_among_near_identical_ones(tmp_path: Path) -> None:
    reference = read_digest(REFERENCE)
    assert all(e.arxiv_id is None for e in reference.entries)  # hand-written: no ids
    with closing(store.connect(tmp_path / "d.db")) as conn:
        add_candidates(conn, DAY, [(p, (), 1.0) for p in sample_papers() + DECOYS])
        resolutions = resolve_entries(reference.entries, _store_lookups(conn))
    ids = _reference_ids()
    assert [r.paper.arxiv_id if r.paper else None for r in resolutions] == [
        ids[e.title] for e in reference.entries
    ]
    assert {r.how for r in resolutions} == {"title"}


@pytest.mark.parametrize(
    "written",
    [
        "navigation world models",  # case
        "Navigation  World-Models.",  # spacing and punctuation
        "PIXART-{\\delta}: Fast and Controllable Image Generation",  # LaTeX
        unicodedata.normalize("NFD", "Café: Models Å"),  # Unicode forms
        "ＰａｌｉＧｅｍｍａ 2",  # full-width letters
    ],
)
def test_titles_match_whatever_their_form(tmp_path: Path, written: str) -> None:
    stored = {
        "navigation world models": paper("2412.03572", "Navigation World Models"),
        "Navigation  World-Models.": paper("2412.03572", "Navigation World Models"),
        "PIXART-{\\delta}: Fast and Controllable Image Generation":
            paper("2401.05252", "PIXART-δ: Fast and Controllable Image Generation"),
        unicodedata.normalize("NFD", "Café: Models Å"): paper("2401.00001", "Café: Models Å"),
        "ＰａｌｉＧｅｍｍａ 2": paper("2412.03555", "PaliGemma 2"),
    }[written]
    with closing(store.connect(tmp_path / "d.db")) as conn:
        add_candidates(conn, DAY, [(stored, (), 1.0), *((d, (), 1.0) for d in DECOYS)])
        (res,) = resolve_entries([Entry(written, ("A. Author",), "")], _store_lookups(conn))
    assert res.paper is not None and res.how == "title"
    assert res.paper.arxiv_id == stored.arxiv_id and res.paper.title == stored.title


def test_arxiv_wins_for_title_authors_links_the_curator_for_words_and_tags() -> None:
    p = paper("2412.03572", "Navigation World Models", ("Amir Bar", "Yann LeCun"), "Real.")
    typo = Entry("Navigaton World Models", ("Amir Bar",), "", ("한국어", "English"), ("wm",),
                 arxiv_id="2412.03572", version=2, line=7)
    link = Entry("A blog post", (), "", ("글",), ("blog",), url="https://example.org/post")
    mine = Entry("Navigation World Models", ("X",), "My own abstract.", (), ("wm",))
    lookups = Lookups(stored_ids=lambda ids: {p.arxiv_id: p} if p.arxiv_id in ids else {},
                      stored_title=lambda t: [p] if "World Models" in t else [])
    result = merge_draft(DAY, "Digest", [typo, link, mine], lookups)
    first, second, third = result.issue.entries
    assert (first.title, first.authors, first.abstract) == (p.title, p.authors, "Real.")
    assert (first.commentary, first.tags, first.version, first.line) == (
        ("한국어", "English"), ("wm",), 2, 7)
    assert second == link and result.issue.unresolved == ()  # a link is no failure
    assert third.abstract == "My own abstract." and third.arxiv_id == "2412.03572"
    assert third.link == "https://arxiv.org/abs/2412.03572"


def test_unresolved_entries_are_reported_and_published_from_their_own_text() -> None:
    lost = Entry("A paper nobody has", ("Z",), "Its abstract.", ("메모", "memo"), ("t",), line=9)
    pinned = Entry("Pinned", ("Y",), "Abs.", (), (), arxiv_id="2412.99999", line=14)
    lookups = Lookups(stored_ids=lambda ids: {}, stored_title=lambda t: [])
    result = merge_draft(DAY, "Digest", [lost, pinned], lookups)
    assert result.issue.entries == (lost, pinned)
    assert result.issue.unresolved == (0, 1)
    assert result.problems == (
        "line 9: 'A paper nobody has': no stored paper has this title; "
        "published from its own text",
        "line 14: 'Pinned': arXiv:2412.99999 is not among the stored papers; "
        "published from its own text",
    )


def test_more_papers_lists_the_best_candidates_not_in_the_issue() -> None:
    papers = [paper(f"2412.0800{i}", f"Paper {i}") for i in range(5)]
    candidates = [Candidate(p, ("vq",), 5.0 - i) for i, p in enumerate(papers)]
    entries = [Entry("Paper 1", ("A. Author",), "", arxiv_id="2412.08001"),
               Entry("paper 3", ("A. Author",), "")]  # in the issue by title only
    resolutions = [Resolution(papers[1], "id"), Resolution(None, problem="not found")]
    result = build_issue(DAY, "Digest", entries, resolutions, candidates, more_papers=2)
    assert [p.arxiv_id for p in result.issue.more_papers] == ["2412.08000", "2412.08002"]
    assert build_issue(DAY, "D", entries, resolutions, candidates, 0).issue.more_papers == ()


def test_run_merged_issue_uses_the_store_and_never_the_network(
    tmp_path: Path, http_server: RecordingServer
) -> None:
    settings = _settings(tmp_path, http_server)
    shutil.copy(REFERENCE, _draft(settings))
    extra = paper("2412.08000", "An unnoted candidate")
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(p, (), 1.0) for p in sample_papers() + DECOYS])
        add_candidates(conn, DAY, [(extra, ("vq",), 9.0)])
    messages: list[str] = []
    merged = services.merged_issue(settings, DAY, _runtime(FakeClock(), messages))
    issue = merged.issue
    messages += [f"warning: {w}" for w in merged.warnings]
    ids = _reference_ids()
    assert [e.arxiv_id for e in issue.entries] == [ids[e.title] for e in issue.entries]
    assert issue.unresolved == () and messages == [] and http_server.count() == 0
    assert issue.more_papers[0] == replace(extra, announce_type="new")
    assert len(issue.more_papers) == 1 + len(DECOYS)
    assert issue.title == settings.newsletter.title and issue.date == DAY


# --- the arXiv API, served locally -------------------------------------------------------------

ATOM = "http://www.w3.org/2005/Atom"
ARXIV = "http://arxiv.org/schemas/atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"


def atom_feed(records: Sequence[dict[str, object]]) -> bytes:
    """An arXiv API Atom response in the server's 2026 format (see the recorded bodies in
    fixtures/arxiv-api), for the given metadata records."""
    nsmap = {None: ATOM, "opensearch": OPENSEARCH, "arxiv": ARXIV}
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap=nsmap)  # type: ignore[dict-item]
    etree.SubElement(feed, f"{{{ATOM}}}id").text = "https://arxiv.org/api/test"
    etree.SubElement(feed, f"{{{ATOM}}}title").text = "arXiv Query"
    etree.SubElement(feed, f"{{{ATOM}}}updated").text = "2024-12-05T01:00:00Z"
    etree.SubElement(feed, f"{{{OPENSEARCH}}}itemsPerPage").text = str(len(records))
    etree.SubElement(feed, f"{{{OPENSEARCH}}}totalResults").text = str(len(records))
    etree.SubElement(feed, f"{{{OPENSEARCH}}}startIndex").text = "0"
    for r in records:
        entry = etree.SubElement(feed, f"{{{ATOM}}}entry")
        abs_url = f"http://arxiv.org/abs/{r['arxiv_id']}v1"
        etree.SubElement(entry, f"{{{ATOM}}}id").text = abs_url
        etree.SubElement(entry, f"{{{ATOM}}}title").text = str(r["title"])
        etree.SubElement(entry, f"{{{ATOM}}}updated").text = str(r["published"])
        etree.SubElement(entry, f"{{{ATOM}}}link", href=abs_url.replace("http:", "https:"),
                         rel="alternate", type="text/html")
        etree.SubElement(entry, f"{{{ATOM}}}summary").text = str(r["abstract"])
        categories = list(r["categories"] or ["cs.LG"])  # type: ignore[call-overload]
        for term in categories:
            etree.SubElement(entry, f"{{{ATOM}}}category", term=term,
                             scheme="http://arxiv.org/schemas/atom")
        etree.SubElement(entry, f"{{{ATOM}}}published").text = str(r["published"])
        etree.SubElement(entry, f"{{{ARXIV}}}primary_category", term=categories[0])
        for name in r["authors"]:  # type: ignore[attr-defined]
            author = etree.SubElement(entry, f"{{{ATOM}}}author")
            etree.SubElement(author, f"{{{ATOM}}}name").text = name
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8")


def _records() -> list[dict[str, object]]:
    """The ten papers' metadata as arXiv serves it (raw LaTeX), from the sample-day file that
    was taken from the curator's notes; categories default to cs.LG where unknown."""
    raw = json.loads(METADATA.read_text(encoding="utf-8"))["papers"]
    for r in raw:
        day = r["submitted_yymmdd_from_note_filename"]
        r["published"] = f"20{day[:2]}-{day[2:4]}-{day[4:]}T18:00:00Z"
    return list(raw)


def _settings(tmp_path: Path, server: RecordingServer | None) -> Settings:
    url = server.url if server is not None else "http://127.0.0.1:9"  # None: nothing to ask
    text = (f'[newsletter]\nfrom = "D <digest@example.org>"\n'
            f'[arxiv]\napi_url = "{url}/api/query"\ntimeout = 5\nretries = 0\n')
    settings = write_newsletter(tmp_path, text)
    settings.paths.drafts.mkdir(parents=True)
    return settings


def _draft(settings: Settings) -> Path:
    return services.draft_path(settings, DAY)


def _runtime(clock: FakeClock, messages: list[str], times: list[float] | None = None) -> Runtime:
    session = requests.Session()
    if times is not None:  # when each request was made, on the injected clock
        session.hooks["response"].append(lambda *a, **k: times.append(clock.monotonic()))
    return Runtime(sleep=clock.sleep, monotonic=clock.monotonic, echo=messages.append,
                       http=session)


def test_against_an_empty_store_the_api_title_search_resolves_them(
    tmp_path: Path, http_server: RecordingServer
) -> None:
    settings = _settings(tmp_path, http_server)
    shutil.copy(REFERENCE, _draft(settings))
    reference = read_digest(REFERENCE)
    records = {str(r["title"]): r for r in _records()}
    decoy = {"title": "Navigation World Model", "arxiv_id": "2412.09901", "authors": ["X Y"],
             "abstract": "Another paper.", "categories": ["cs.RO"],
             "published": "2024-12-01T00:00:00Z"}
    # One search per entry, in the draft's order; a search may find near-identical titles too.
    http_server.route("/api/query", *[
        Reply(atom_feed([decoy, records[e.title]] if e.title == "Navigation World Models"
                        else [records[e.title]]))
        for e in reference.entries
    ])
    clock, messages, times = FakeClock(), [], []
    merged = services.merged_issue(settings, DAY, _runtime(clock, messages, times))
    issue = merged.issue
    messages += [f"warning: {w}" for w in merged.warnings]

    ids = _reference_ids()
    assert [e.arxiv_id for e in issue.entries] == [ids[e.title] for e in reference.entries]
    assert issue.unresolved == () and messages == []
    token_flow = issue.entries[-1]
    assert token_flow.abstract == reference.entries[-1].abstract  # the draft's text is kept
    assert token_flow.authors == reference.entries[-1].authors
    # Every request was a title search for its entry, at least 3 s apart on the clock.
    queries = [parse_qs(r.query)["search_query"][0] for r in http_server.requests]
    assert queries == [f'ti:"{_words(e.title)}"' for e in reference.entries]
    assert len(times) == 10 and all(b - a >= 3.0 for a, b in pairwise(times))
    # The papers found are stored: building again needs no network.
    with closing(store.connect(settings.db_path)) as conn:
        assert set(store.get_papers(conn, ids.values())) == set(ids.values())
    services.merged_issue(settings, DAY, _runtime(clock, messages))
    assert http_server.count() == 10


def _words(title: str) -> str:
    return " ".join(re.sub(r"[^\w\s\-]+", " ", title).split())


def test_ids_missing_from_the_store_are_fetched_in_one_batch(
    tmp_path: Path, http_server: RecordingServer
) -> None:
    settings = _settings(tmp_path, http_server)
    records = _records()[:3]
    lines = ["2024-12-05"]
    for r in records:
        lines += [str(r["title"]), "(" + ", ".join(r["authors"]) + ")",  # type: ignore[call-overload]
                  f"arXiv:{r['arxiv_id']}", "한국어", "English", "#t"]
    _draft(settings).write_text("\n".join(lines) + "\n", encoding="utf-8")
    http_server.route("/api/query", Reply(atom_feed(records)))
    issue = services.merged_issue(settings, DAY, _runtime(FakeClock(), [])).issue
    assert [e.arxiv_id for e in issue.entries] == [r["arxiv_id"] for r in records]
    assert issue.entries[0].abstract.startswith("Different from its counterpart")
    (request,) = http_server.requests
    assert parse_qs(request.query)["id_list"] == [",".join(str(r["arxiv_id"]) for r in records)]


def test_an_api_failure_leaves_entries_unresolved_but_published(
    tmp_path: Path, http_server: RecordingServer
) -> None:
    settings = _settings(tmp_path, http_server)
    _draft(settings).write_text("2024-12-05\nSome title\n(A)\nAbs.\n메모\nmemo\n#t\n"
                                "Other title\n(B)\nAbs.\n메모\nmemo\n#t\n", encoding="utf-8")
    http_server.route("/api/query", Reply(b"busy", 503))
    messages: list[str] = []
    merged = services.merged_issue(settings, DAY, _runtime(FakeClock(), messages))
    issue = merged.issue
    messages += [f"warning: {w}" for w in merged.warnings]
    assert issue.entries == parse_digest(_draft(settings).read_text(encoding="utf-8"),
                                         _draft(settings)).entries
    assert issue.unresolved == (0, 1)
    assert len(messages) == 2 and messages[0].startswith(
        "warning: 2024-12-05.txt: line 2: 'Some title': arXiv API title search failed: ")
    assert messages[1].startswith("warning: 2024-12-05.txt: line 8: 'Other title': arXiv API")
    assert http_server.count() == 1  # a failing API is not asked again for every entry


def test_no_draft_is_a_clear_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None)
    with pytest.raises(InputError, match="no draft for 2024-12-05: run `digest draft"):
        services.merged_issue(settings, DAY, _runtime(FakeClock(), []))

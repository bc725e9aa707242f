"""Rendering: email variants, text part, web pages, feeds; golden files, safety, size, site/."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
from dataclasses import replace
from datetime import UTC, date, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import lxml.etree
import lxml.html
import pytest
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st

from pipeline import store
from pipeline.core.calendar import announced_at
from pipeline.core.config import Settings
from pipeline.core.digest_format import (
    END_OF_PAPERS,
    parse_heading,
    parse_reader_text,
)
from pipeline.core.errors import ConfigError
from pipeline.core.flowed import SIGNATURE_SEPARATOR, columns, flow, unflow
from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER, EmailVariant, Entry, Issue, Paper
from pipeline.deliver import previews
from pipeline.interfaces.cli import main
from pipeline.publish import archive, site
from pipeline.publish.render import (
    UI,
    Renderer,
    clean_issue,
    linkify,
    safe_url,
    variant_commentary,
)
from pipeline.publish.size_guard import layout_note
from tests.render_support import (
    REFERENCE_DAY,
    archive_issue,
    big_issue,
    hostile_issue,
    make_settings,
    reference_issue,
    split_signature,
    text_hostile_issue,
)
from tests.support import write_newsletter

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("DIGEST_REGENERATE_GOLDEN") == "1"
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("newsletter"))


@pytest.fixture(scope="module")
def renderer(settings: Settings) -> Renderer:
    return Renderer(settings)


@pytest.fixture(scope="module")
def emails(renderer: Renderer) -> dict[str, object]:
    return {v.variant: v for v in renderer.emails(reference_issue())}


def check_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/<name> byte for byte (rewrite it under `make golden`)."""
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual.encode("utf-8"))
    assert path.exists(), f"missing golden file {name}: run `make golden`"
    assert actual.encode("utf-8") == path.read_bytes(), f"{name} differs: `make golden` if meant"


# --- golden files ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["ko", "en", "all"])
def test_golden_email_html_and_text(emails: dict, variant: str) -> None:
    check_golden(f"2024-12-05/email.{variant}.html", emails[variant].html)
    check_golden(f"2024-12-05/email.{variant}.txt", emails[variant].text)


def test_golden_web_page_and_feed(renderer: Renderer) -> None:
    issue = reference_issue()
    check_golden("2024-12-05/issue.html", renderer.issue_pages(issue)["issues/2024-12-05.html"])
    files = archive.archive_files(renderer, [issue], issue.tags)
    check_golden("2024-12-05/feed.xml", files["feed.xml"])
    check_golden("2024-12-05/tag.reward-model.xml", files["tags/reward-model.xml"])


# --- the email -------------------------------------------------------------------------------


def decoded_text_part(settings: Settings, variant: EmailVariant) -> str:
    """The text/plain part of the message a subscriber gets, as the email package decodes it."""
    raw = previews.preview_message(settings, variant_day(variant), variant)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    part = msg.get_body(("plain",))
    assert part is not None and part["Content-Type"].params == {
        "charset": "utf-8", "format": "flowed", "delsp": "no"}
    return str(part.get_content()).replace("\r\n", "\n")


def variant_day(variant: EmailVariant) -> date:
    first_line = unflow(variant.text).split("\n", 1)[0]
    parsed = parse_heading(first_line)
    assert parsed is not None, first_line
    return parsed[0]


def assert_wrapped(text: str) -> None:
    """Lines of at most 78 characters (and columns: Hangul counts two), unless the line is one
    URL, which is never cut; a soft break is a trailing space, never a cut word."""
    for line in text.split("\n"):
        if len(line) > 78 or columns(line) > 78:
            assert re.fullmatch(r" ?\(?https?://\S+ ?", line), f"line over 78: {line!r}"


@pytest.mark.parametrize(
    "issue", [reference_issue(), archive_issue(4), hostile_issue(), text_hostile_issue()],
    ids=["reference", "with-ids", "hostile", "hostile-text"])
def test_text_part_reads_back_to_the_same_entries(settings: Settings, issue: Issue) -> None:
    renderer = Renderer(settings)
    more = Paper(arxiv_id="2401.99999", title="Another new paper", authors=("X",), abstract="a")
    issue = replace(issue, more_papers=(more,))
    shown = clean_issue(issue)
    for v in renderer.emails(issue):
        text = decoded_text_part(settings, v)
        assert_wrapped(text)
        body, signature = split_signature(unflow(text))
        assert "\n\n" in body  # the spaced form: a blank line before each paper
        parsed = parse_reader_text(unflow(text), f"text.{v.variant}")
        assert parsed.date == issue.date
        assert [e.title for e in parsed.entries] == [e.title for e in shown.entries]
        assert [e.authors for e in parsed.entries] == [e.authors for e in shown.entries]
        assert [e.arxiv_id for e in parsed.entries] == [e.arxiv_id for e in shown.entries]
        assert [e.abstract for e in parsed.entries] == [e.abstract for e in shown.entries]
        assert [e.commentary for e in parsed.entries] == [
            variant_commentary(e, v.variant) for e in shown.entries]
        assert [e.tags for e in parsed.entries] == [e.tags for e in shown.entries]
        for e in shown.entries:  # each paper's abs URL, alone on its line
            if e.arxiv_id:
                assert f"\nhttps://arxiv.org/abs/{e.arxiv_id}\n" in body
        # below the papers and above the "-- " line (which clients dim or strip): the other
        # papers and the ways out; below it only the sign-off
        suffix = "" if v.variant == "all" else f".{v.variant}"
        web = f"https://digest.example.org/issues/{issue.date}{suffix}.html"
        papers_end = body.rindex("\n" + END_OF_PAPERS + "\n")
        for needed in (web, previews.preview_unsubscribe_url(settings),
                       "* Another new paper\n  https://arxiv.org/abs/2401.99999"):
            assert body.index(needed) > papers_end
        assert signature == shown.title + "\n"


def test_text_part_wraps_as_format_flowed(emails: dict) -> None:
    text = emails["ko"].text
    # a heading (name and date in the variant's language), then each paper: title, authors,
    # link, the commentary, the labelled abstract, the tags
    assert text.startswith("ML Papers Digest · 2024년 12월 5일\n\n\n"
                           "Free Process Rewards without Process Labels\n")
    assert emails["en"].text.startswith("ML Papers Digest · December 5, 2024\n\n\n")
    first = unflow(text).split("\n\n\n")[1].split("\n")
    ref = reference_issue().entries[0]
    assert first[:2] == [ref.title, "(" + ", ".join(ref.authors) + ")"]
    assert first[2:] == ["", ref.commentary[0], "", f"초록: {ref.abstract}", "#reward-model"]
    assert f"\nAbstract: {ref.abstract}\n" in unflow(emails["en"].text)
    assert_wrapped(text)
    lines = text.split("\n")
    assert sum(line.endswith(" ") for line in lines) > 100  # soft breaks in the long paragraphs
    assert max(len(line) for line in unflow(text).split("\n")) > 1000  # that unflow joins
    assert "\n-- \n" in text  # the signature separator stays a hard break
    # the reader's unsubscribe URL (longer than its placeholder) gets a line of its own,
    # above the signature
    assert text.endswith(f"\n수신 거부: \n{UNSUBSCRIBE_PLACEHOLDER}\n\n-- \nML Papers Digest\n")
    # every paragraph's last line is a hard break: tags lines and titles end without a space
    assert all(not line.endswith(" ") for line in lines if line.startswith("#"))


def test_flow_round_trips_and_stuffs() -> None:
    text = "From here on\n>not a quote\n a leading space\n" + "word " * 40 + "end\n-- \nsig"
    flowed = flow(text)
    assert flowed.startswith(" From here on\n >not a quote\n  a leading space\n")  # stuffed
    assert unflow(flowed) == text
    long_url = "https://example.org/" + "x" * 100
    assert flow(f"see {long_url} and more") == f"see \n{long_url} \nand more"
    # a wrapped "-- " alone on a line would read as the signature separator
    dashed = "x " * 38 + "-- " + long_url
    assert SIGNATURE_SEPARATOR not in flow(dashed).split("\n")
    assert unflow(flow(dashed)) == dashed
    # Hangul takes two columns: 11 words of 7 columns fill a 78-column line
    assert flow(("한국어 " * 30).strip()).split("\n")[0] == "한국어 " * 11
def test_email_carries_everything_of_the_reference(emails: dict) -> None:
    ref = reference_issue()
    doc = lxml.html.fromstring(emails["all"].html)
    assert doc.get("lang") == "ko"
    assert "2024년 12월 5일" in doc.findtext(".//h1")
    assert emails["all"].subject == (
        "ML Papers Digest · 2024년 12월 5일 · Free Process Rewards without Process Labels")
    titles = [h.text_content() for h in doc.findall(".//h2")]
    assert titles == [e.title for e in ref.entries]
    text = doc.text_content()
    for entry in ref.entries:
        assert entry.abstract[:200] in text
        for paragraph in entry.commentary:
            shown = paragraph.replace("https://arxiv.org/abs/", "arXiv:")
            assert shown.replace("https://", "") in text
        for tag in entry.tags:
            assert f"#{tag}" in text
    # Korean paragraphs are marked and break between words; English ones are not Korean.
    ko = doc.xpath('//p[@lang="ko"][not(contains(@class, "footer-p"))]')
    assert len(ko) == sum(len(e.notes_ko) for e in ref.entries)
    assert all("word-break:keep-all" in p.get("style").replace(" ", "") for p in ko)
    assert "Noto Sans KR" in emails["all"].html
    # Tags link to their pages; the footer has the web version and the unsubscribe marker.
    hrefs = [a.get("href") for a in doc.iter("a")]
    assert "https://digest.example.org/tags/reward-model.html" in hrefs
    assert "https://digest.example.org/issues/2024-12-05.html" in hrefs
    assert hrefs.count(UNSUBSCRIBE_PLACEHOLDER) == 1
    # URLs in commentary became links, and only http(s) ones.
    assert "https://arxiv.org/abs/2404.12358" in hrefs
    assert all(h.startswith("https://") or h == UNSUBSCRIBE_PLACEHOLDER for h in hrefs if h[0] != "#")
    # The table of contents jumps to each entry.
    anchors = [h[1:] for h in hrefs if h.startswith("#")]
    assert len(anchors) == 10 and all(doc.get_element_by_id(a).tag == "td" for a in anchors)


def test_email_is_self_contained_and_inlined(emails: dict) -> None:
    for v in emails.values():
        html = v.html
        doc = lxml.html.fromstring(html)
        assert not doc.xpath("//script | //link | //iframe | //object | //form")
        assert "@import" not in html and "@font-face" not in html
        # Inlined once: styles sit on the elements, media queries stay for clients with <style>.
        assert 'class="title"' in html and re.search(r'<h2 class="title" style="[^"]+"', html)
        assert "@media only screen and (max-width: 620px)" in html
        assert "@media (prefers-color-scheme: dark)" in html
        assert "!important" in html
        assert 'name="color-scheme" content="light dark"' in html
        preheader = doc.find_class("preheader")[0]
        assert "display:none" in preheader.get("style").replace(" ", "")
        assert "이번 호 논문 10편" in preheader.text_content() or v.variant == "en"


def test_variants_show_their_language(emails: dict) -> None:
    ko = lxml.html.fromstring(emails["ko"].html)
    en = lxml.html.fromstring(emails["en"].html)
    assert ko.xpath('//td[@class="notes-cell"]/p[@lang="ko"]')
    assert not ko.xpath('//td[@class="notes-cell"]/p[@lang="en"]')
    assert en.xpath('//td[@class="notes-cell"]/p[@lang="en"]')
    assert not en.xpath('//td[@class="notes-cell"]/p[@lang="ko"]')
    assert "December 5, 2024" in en.findtext(".//h1")
    assert en.get("lang") == "en"
    assert "https://digest.example.org/issues/2024-12-05.en.html" in emails["en"].html


def test_entry_links_by_id_url_or_none(renderer: Renderer) -> None:
    base = Entry(title="T", authors=("A",), abstract="x", tags=("t",))
    issue = Issue(
        REFERENCE_DAY,
        "D",
        (
            replace(base, title="With id", arxiv_id="2412.01981", version=2),
            replace(base, title="With url", url="https://blog.example/post"),
            replace(base, title="With neither"),
        ),
    )
    doc = lxml.html.fromstring(renderer.email(issue, "all").html)
    h2 = doc.findall(".//h2")
    assert h2[0].find("a").get("href") == "https://arxiv.org/abs/2412.01981"
    links = doc.find_class("links")
    assert len(links) == 1 and "arXiv:2412.01981" in links[0].text_content()
    assert links[0].findall("a")[1].get("href") == "https://arxiv.org/pdf/2412.01981"
    assert h2[1].find("a").get("href") == "https://blog.example/post"
    assert h2[2].find("a") is None and h2[2].text_content() == "With neither"


def test_long_author_lists_are_shortened(renderer: Renderer) -> None:
    many = tuple(f"Author {i}" for i in range(1, 31))
    issue = Issue(REFERENCE_DAY, "D", (Entry(title="T", authors=many, abstract="x"),))
    authors = lxml.html.fromstring(renderer.email(issue, "ko").html).find_class("authors")[0]
    assert authors.text_content() == ", ".join(many[:6]) + " 외 24명"
    en = lxml.html.fromstring(renderer.email(issue, "en").html).find_class("authors")[0]
    assert en.text_content().endswith("Author 6 and 24 more")
    ten = Issue(REFERENCE_DAY, "D", (Entry(title="T", authors=many[:10], abstract="x"),))
    shown = lxml.html.fromstring(renderer.email(ten, "ko").html).find_class("authors")[0]
    assert shown.text_content() == ", ".join(many[:10])


def test_reference_email_is_under_the_limit_and_not_compact(emails: dict) -> None:
    assert layout_note(list(emails.values())) is None
    for v in emails.values():
        assert (v.layout, v.reason) == ("full", "")
        assert len(v.html.encode("utf-8")) < 90 * 1024
        assert 'class="notice"' not in v.html
        assert 'class="abstract-label"' in v.html


@pytest.mark.slow
def test_sixty_entries_switch_to_compact_and_fit(renderer: Renderer) -> None:
    issue = big_issue(60)
    issue = replace(issue, entries=tuple(
        replace(e, arxiv_id=f"2412.{n:05d}") for n, e in enumerate(issue.entries)))
    full = renderer.email_html(issue, "all", (False, None, None))
    assert len(full.encode("utf-8")) > 90 * 1024  # really too big for the full layout
    for v in renderer.emails(issue):
        assert len(v.html.encode("utf-8")) < 90 * 1024, v.variant
        doc = lxml.html.fromstring(v.html)
        assert doc.find_class("notice"), "the compact layout says it is compact"
        assert not doc.find_class("abstract-label")
        shown = len(doc.findall(".//h2"))
        assert 10 <= shown <= 60
        # the contents list and every shown paper's arXiv/PDF links stay
        assert len(doc.find_class("toc-link")) == 60
        assert len(doc.find_class("links")) == shown
        assert all(len(p.findall("a")) == 2 for p in doc.find_class("links"))
        # and the variant says it switched, and why
        assert v.layout == "compact"
        assert "over delivery.max_html_kb = 90" in v.reason and "KB" in v.reason
        if shown < 60:  # the rest is announced, with a link to the web version
            rest = doc.find_class("notice")[-1]
            assert str(60 - shown) in rest.text_content()
            assert rest.find("a").get("href").startswith("https://digest.example.org/issues/")
        # The text part still has everything.
        assert len(parse_reader_text(unflow(v.text), "t").entries) == 60


# --- safety ----------------------------------------------------------------------------------


def test_linkify_and_safe_url() -> None:
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("JaVaScRiPt:alert(1)") is None
    assert safe_url("data:text/html,x") is None
    assert safe_url("//evil.example/x") is None
    assert safe_url('https://a.example/"x') is None
    assert safe_url("https://a.example/p?q=1") == "https://a.example/p?q=1"
    html = str(linkify("see (https://arxiv.org/abs/2404.12358) and https://x.example/a_(b). 끝"))
    assert '<a href="https://arxiv.org/abs/2404.12358" class="inline-link">arXiv:2404.12358</a>)' in html
    assert 'href="https://x.example/a_(b)"' in html
    assert str(linkify("javascript:alert(1) <b>")) == "javascript:alert(1) &lt;b&gt;"


def assert_safe_html(html: str, shows_title: bool = True) -> None:
    """No script, no event handler, no non-http(s) link, hostile text shown as text."""
    doc = lxml.html.fromstring(html)
    assert not doc.xpath("//script | //svg | //img | //iframe")
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), (el.tag, name)
            if name in ("href", "src"):
                http = value.startswith(("https://", "http://"))
                assert http or value == UNSUBSCRIBE_PLACEHOLDER or ":" not in value, value
    assert not XML_FORBIDDEN.search(html)
    if shows_title:
        assert '<script>alert("t")</script> Title' in doc.text_content()


def test_hostile_input_stays_text_in_email_and_web_page(renderer: Renderer) -> None:
    issue = hostile_issue()
    for v in renderer.emails(issue):
        assert_safe_html(v.html)
        assert "javascript:alert(7)" not in v.html
        assert "&lt;script&gt;" in v.html
    for name, page in renderer.issue_pages(issue).items():
        if name.endswith(".html"):
            assert_safe_html(page)


def test_hostile_input_never_breaks_a_feed(renderer: Renderer) -> None:
    issue = hostile_issue()
    files = archive.archive_files(renderer, [issue], issue.tags)
    for name in ("feed.xml", "feed.ko.xml", "tags/safe-tag.xml"):
        xml = files[name]
        assert xml is not None
        assert not XML_FORBIDDEN.search(xml)
        root = lxml.etree.fromstring(xml.encode("utf-8"))  # strict XML parser
        ns = {"content": "http://purl.org/rss/1.0/modules/content/"}
        for content in root.xpath("//content:encoded", namespaces=ns):
            assert_safe_html(f"<div>{content.text}</div>", shows_title=False)
        assert '<script>alert("t")</script> Title' in "".join(root.itertext())
        parsed = feedparser.parse(xml.encode("utf-8"))
        assert not parsed.bozo, parsed.get("bozo_exception")
    assert_safe_html(files["index.html"] or "")
    assert_safe_html(files["tags/safe-tag.html"] or "")


# --- site/, feeds, determinism, incrementality ------------------------------------------------


def publish(settings: Settings, issues: list[Issue]) -> list[list[Path]]:
    conn = store.connect(settings.db_path)
    try:
        return [site.publish_issue(settings, conn, i) for i in issues]
    finally:
        conn.close()


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_feeds_parse_back_with_dates_guids_and_self_link(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = replace(settings, newsletter=replace(settings.newsletter, feed_items=3))
    issues = [archive_issue(k) for k in range(5)]
    publish(settings, issues)
    site_dir = settings.paths.site
    for name in ("feed.xml", "feed.ko.xml", "feed.en.xml", "tags/reward-model.xml"):
        raw = (site_dir / name).read_bytes()
        parsed = feedparser.parse(raw)
        assert not parsed.bozo, (name, parsed.get("bozo_exception"))
        root = lxml.etree.fromstring(raw)
        assert root.tag == "rss" and root.get("version") == "2.0"
        self_links = root.xpath(
            "/rss/channel/atom:link[@rel='self']", namespaces={"atom": "http://www.w3.org/2005/Atom"}
        )
        assert len(self_links) == 1
        assert self_links[0].get("href") == f"https://digest.example.org/{name}"
        items = root.findall("channel/item")
        dates = [parsedate_to_datetime(i.findtext("pubDate")) for i in items]
        assert dates == sorted(dates, reverse=True)
        guids = [i.findtext("guid") for i in items]
        assert len(set(guids)) == len(guids)
        for item in items:
            assert item.findtext("title") and item.findtext("link").startswith("https://")
            assert item.find("{http://purl.org/rss/1.0/modules/content/}encoded").text
    feed = lxml.etree.fromstring((site_dir / "feed.xml").read_bytes())
    assert [i.findtext("guid") for i in feed.findall("channel/item")] == [
        f"https://digest.example.org/issues/{issues[k].date}.html" for k in (4, 3, 2)
    ]
    # One item per paper with the tag (the reference has one #reward-model entry per issue).
    tag = lxml.etree.fromstring((site_dir / "tags/reward-model.xml").read_bytes())
    assert len(tag.findall("channel/item")) == 5
    assert (site_dir / "index.html").exists() and (site_dir / "tags/reward-model.html").exists()


@pytest.mark.slow
def test_each_feed_has_its_own_title_and_the_issue_date(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    issues = [archive_issue(k) for k in range(5)]  # Monday 2024-01-01 .. Friday 2024-01-05
    publish(settings, issues)
    titles = {}
    for name in ("feed.xml", "feed.ko.xml", "feed.en.xml", "tags/reward-model.xml"):
        parsed = feedparser.parse((settings.paths.site / name).read_bytes())
        titles[name] = parsed.feed.title
        for item in parsed.entries:
            day = date.fromisoformat(re.search(r"\d{4}-\d{2}-\d{2}", item.id)[0])
            moment = parsedate_to_datetime(item.published)
            # arXiv's announcement: 20:00 US Eastern the evening before, in the newsletter's zone
            assert moment == announced_at(day) and moment.utcoffset() == timedelta(hours=9)
            assert moment.astimezone(UTC).date() == day  # no longer the day before in UTC
    assert titles == {
        "feed.xml": "ML Papers Digest (한국어 + English)",
        "feed.ko.xml": "ML Papers Digest (한국어)",
        "feed.en.xml": "ML Papers Digest (English)",
        "tags/reward-model.xml": "ML Papers Digest · #reward-model",
    }
    # one language: feed.xml is the only issue feed, under the newsletter's own name
    one = make_settings(tmp_path / "one")
    one = replace(one, newsletter=replace(one.newsletter, languages=("en",)))
    files = archive.archive_files(Renderer(one), issues, ())
    assert feedparser.parse(files["feed.xml"]).feed.title == "ML Papers Digest"


def test_tag_feed_items_are_the_papers_with_the_commentary_first(renderer: Renderer) -> None:
    issue = archive_issue(2)
    entry = next(e for e in issue.entries if "reward-model" in e.tag_keys)
    xml = archive.archive_files(renderer, [issue], issue.tags)["tags/reward-model.xml"]
    assert xml is not None
    [item] = feedparser.parse(xml).entries
    assert item.title == entry.title  # the paper, not "01 …"
    summary = lxml.html.fromstring(f"<div>{item.summary}</div>")
    paragraphs = [p.text_content() for p in summary.findall("p")]
    # the feed is Korean (newsletter.locale): the Korean commentary, then the abstract
    shown = [p.replace("https://arxiv.org/abs/", "arXiv:") for p in entry.notes_ko]
    assert paragraphs == [*shown, entry.abstract]
    content = lxml.html.fromstring(item.content[0].value)
    assert not content.find_class("kicker")
    assert content.find_class("title")[0].text_content() == entry.title


@pytest.mark.slow
def test_rebuild_is_byte_identical_and_guids_stable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    issues = [archive_issue(k) for k in range(3)]
    publish(settings, issues)
    before = snapshot(settings.paths.site)
    assert publish(settings, [issues[1]]) == [[]]  # republishing changes nothing
    conn = store.connect(settings.db_path)
    try:
        assert site.rebuild_site(settings, conn) == []
    finally:
        conn.close()
    assert snapshot(settings.paths.site) == before
    # A fresh directory built from the same issues gives the same bytes.
    other = make_settings(tmp_path / "other")
    publish(other, issues)
    assert {k: v[0] for k, v in snapshot(other.paths.site).items()} == {
        k: v[0] for k, v in before.items()
    }


@pytest.mark.slow
def test_new_issue_does_not_rewrite_old_issue_pages(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    publish(settings, [archive_issue(k) for k in range(3)])
    before = snapshot(settings.paths.site)
    [changed] = publish(settings, [archive_issue(3)])
    names = {str(p.relative_to(settings.paths.site)) for p in changed}
    assert "issues/2024-01-04.html" in names and "feed.xml" in names and "index.html" in names
    # Only the previous issue's pages change besides the new ones: their "next" link.
    assert {n for n in names if n.startswith("issues/2024-01-03")} == {
        "issues/2024-01-03.html", "issues/2024-01-03.ko.html", "issues/2024-01-03.en.html"}
    assert not any(n.startswith(("issues/2024-01-01", "issues/2024-01-02")) for n in names)
    after = snapshot(settings.paths.site)
    for name, (data, mtime) in before.items():
        if name.startswith(("issues/2024-01-01", "issues/2024-01-02")):
            assert after[name] == (data, mtime), name


@pytest.mark.slow
def test_changed_tags_update_and_vanish(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    issue = archive_issue(0)
    publish(settings, [issue])
    assert (settings.paths.site / "tags/vq.html").exists()
    entries = tuple(replace(e, tags=("new-tag",) if "vq" in e.tags else e.tags) for e in issue.entries)
    retagged = replace(issue, entries=entries)
    publish(settings, [retagged])
    assert not (settings.paths.site / "tags/vq.html").exists()
    assert not (settings.paths.site / "tags/vq.xml").exists()
    assert (settings.paths.site / "tags/new-tag.xml").exists()


def test_newsletter_templates_override_bundled_ones_file_by_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.paths.templates.mkdir(parents=True)
    (settings.paths.templates / "email.css").write_text(".title { color: #123456; }\n")
    html = Renderer(settings).email(reference_issue(), "ko").html
    assert re.search(r'<h2 class="title" style="color:#123456"', html)
    assert "이번 호 논문 10편" in html  # email.html itself still comes from the bundle


def test_preview_message_is_multipart_alternative_text_first(tmp_path: Path, emails: dict) -> None:
    settings = make_settings(tmp_path)
    paths = previews.write_previews(settings, REFERENCE_DAY, list(emails.values()))
    assert sorted(p.name for p in paths) == sorted(
        f"preview.{v}.{ext}" for v in ("ko", "en", "all") for ext in ("html", "eml")
    )
    raw = (settings.paths.outbox / "2024-12-05" / "preview.all.eml").read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.get_payload()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert text.get_content().replace("\r\n", "\n") == emails["all"].text.replace(
        UNSUBSCRIBE_PLACEHOLDER, previews.preview_unsubscribe_url(settings))
    assert UNSUBSCRIBE_PLACEHOLDER not in text.get_content() + html.get_content()
    assert msg["Subject"] == emails["all"].subject
    # the same headers a subscriber's copy carries (one-click unsubscribe included)
    for header in ("From", "To", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
                   "List-Unsubscribe-Post"):
        assert msg[header], header
    assert previews.preview_message(settings, REFERENCE_DAY, emails["all"]) == raw


def test_golden_files_exist_for_every_variant() -> None:
    names = {p.name for p in (GOLDEN / "2024-12-05").iterdir()}
    assert {"email.ko.html", "email.en.html", "email.all.html", "issue.html", "feed.xml"} <= names


def test_render_dates_in_other_locales(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = replace(settings, newsletter=replace(settings.newsletter, locale="en_GB"))
    r = Renderer(settings)
    assert r.date_text(date(2024, 12, 5), "all") == "5 December 2024"
    assert r.date_text(date(2024, 12, 5), "en") == "December 5, 2024"
    assert r.date_text(date(2024, 12, 5), "ko") == "2024년 12월 5일"


def test_broken_or_strict_template_is_a_clear_config_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.paths.templates.mkdir(parents=True)
    (settings.paths.templates / "email.html").write_text("<p>{{ no_such_value }}</p>\n")
    with pytest.raises(ConfigError, match="no_such_value") as err:
        Renderer(settings).email(reference_issue(), "ko")
    assert err.value.exit_code == 2
    (settings.paths.templates / "email.html").write_text("<p>{% if %}</p>\n")
    with pytest.raises(ConfigError) as err:
        Renderer(settings).email(reference_issue(), "ko")
    assert "email.html" in str(err.value)


def test_more_papers_and_unicode_tags(renderer: Renderer) -> None:
    paper = Paper(arxiv_id="2412.00001", title="Another <new> paper", authors=("X",), abstract="a")
    entry = Entry(title="T", authors=("A",), abstract="x", tags=("한국어_태그",))
    issue = Issue(REFERENCE_DAY, "D", (entry,), more_papers=(paper,))
    html = renderer.email(issue, "all").html
    doc = lxml.html.fromstring(html)
    extra = doc.find_class("extra")[0]
    assert "태그에 맞는 다른 새 논문" in extra.text_content()
    assert extra.find(".//a").get("href") == "https://arxiv.org/abs/2412.00001"
    assert extra.find(".//a").text == "Another <new> paper"
    tag = doc.find_class("tag-link")[0]
    assert tag.get("href") == "https://digest.example.org/tags/%ED%95%9C%EA%B5%AD%EC%96%B4-%ED%83%9C%EA%B7%B8.html"
    files = archive.archive_files(renderer, [issue], issue.tags)
    assert "tags/한국어-태그.xml" in files and "tags/한국어-태그.html" in files


@settings_hypothesis(max_examples=25, deadline=None)
@given(
    title=st.text(min_size=1, max_size=60).filter(lambda s: s.strip()),
    note=st.text(max_size=120),
    url=st.one_of(st.none(), st.text(max_size=40), st.just("javascript:alert(1)")),
)
@pytest.mark.slow
def test_any_text_stays_text_in_pages_and_feeds(title: str, note: str, url: str | None) -> None:
    renderer = Renderer(make_settings(Path("newsletter")))
    entry = Entry(title=title, authors=(note,), abstract=note, commentary=(note,), tags=("t",), url=url)
    issue = Issue(REFERENCE_DAY, title, (entry,))
    page = renderer.issue_pages(issue)["issues/2024-12-05.html"]
    doc = lxml.html.fromstring(page)
    assert not doc.xpath("//script")
    elements = [el for el in doc.iter() if isinstance(el.tag, str)]
    assert all(not n.lower().startswith("on") for el in elements for n in el.attrib)
    for el in doc.iter("a"):
        href = el.get("href")
        assert href.startswith(("https://", "http://")) or ":" not in href, href
    for name, xml in archive.archive_files(renderer, [issue], issue.tags).items():
        if name.endswith(".xml"):
            assert xml is not None
            lxml.etree.fromstring(xml.encode("utf-8"))  # well-formed XML 1.0, whatever the text


def test_a_broken_template_leaves_store_and_site_alone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    publish(settings, [archive_issue(0)])
    before = snapshot(settings.paths.site)
    settings.paths.templates.mkdir(parents=True)
    (settings.paths.templates / "feed.xml").write_text("{{ missing }}")
    with pytest.raises(ConfigError):
        publish(settings, [archive_issue(1)])
    assert snapshot(settings.paths.site) == before
    conn = store.connect(settings.db_path)
    try:
        assert [i.date for i in store.load_archived_issues(conn)] == [archive_issue(0).date]
    finally:
        conn.close()


def test_archive_round_trips_issues_through_the_store(tmp_path: Path) -> None:
    issue = replace(
        hostile_issue(),
        more_papers=(Paper(arxiv_id="2412.00001", title="P", authors=("X",), abstract="a"),),
    )
    assert store.issue_from_json(store.issue_json(issue)) == replace(issue, unresolved=())


# --- the subject ---------------------------------------------------------------------------


def test_default_subject_names_the_first_paper_within_78_characters(renderer: Renderer) -> None:
    long_title = "A Very Long Title About Process Reward Models That Goes On And On Past Any Inbox"
    issue = replace(reference_issue(), entries=(
        replace(reference_issue().entries[0], title=long_title), *reference_issue().entries[1:]))
    for variant, date_text in (("ko", "2024년 12월 5일"), ("en", "December 5, 2024")):
        subject = renderer.subject(issue, variant)
        assert len(subject) <= 78
        assert subject.startswith(f"ML Papers Digest · {date_text} · A Very Long Title")
        assert subject.endswith("…")
        kept = subject.rsplit(" · ", 1)[1].removesuffix("…")
        assert long_title.startswith(kept) and long_title[len(kept)] == " "  # at a word boundary
    # a title that fits is kept whole; one that does not loses its last words
    assert renderer.subject(reference_issue(), "ko") == (
        "ML Papers Digest · 2024년 12월 5일 · Free Process Rewards without Process Labels")
    assert renderer.subject(reference_issue(), "en") == (
        "ML Papers Digest · December 5, 2024 · Free Process Rewards without Process…")


def test_subject_template_from_config(tmp_path: Path) -> None:
    settings = write_newsletter(tmp_path, newsletter={
        "from": "D <digest@example.org>",
        "subject": "[{{ name }}] {{ date_iso }}: {{ count }} papers, <{{ first_title }}>"})
    subject = Renderer(settings).email(reference_issue(), "en").subject
    # plain text: nothing escaped, and the first title cut to fit
    assert subject.startswith("[ML Papers Digest] 2024-12-05: 10 papers, <Free Process")
    assert subject.endswith("…>") or subject.endswith("Labels>")
    assert len(subject) <= 78


def test_site_publishes_the_text_that_digest_check_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path / "newsletter")
    more = Paper(arxiv_id="2401.99999", title="Another new paper", authors=("X",), abstract="a")
    issue = replace(archive_issue(0), more_papers=(more,))
    publish(settings, [issue])
    issues = settings.paths.site / "issues"
    texts = {p.name: p.read_text(encoding="utf-8") for p in issues.glob("*.txt")}
    assert set(texts) == {"2024-01-01.txt", "2024-01-01.ko.txt", "2024-01-01.en.txt"}
    for name, text in texts.items():
        assert UNSUBSCRIBE_PLACEHOLDER not in text and "/unsubscribe" not in text
        assert_wrapped(text)
        # the other papers and the way to the web version, above the signature separator
        body = split_signature(unflow(text))[0]
        assert "* Another new paper\n  https://arxiv.org/abs/2401.99999\n" in body
        assert f"https://digest.example.org/issues/{name.removesuffix('.txt')}.html" in body
    monkeypatch.chdir(tmp_path)  # no config here: the format alone is checked
    with pytest.raises(SystemExit) as info:
        main(["check", "--flowed", "--json", str(issues / "2024-01-01.txt")])
    out, err = capsys.readouterr()
    assert (info.value.code, err) == (0, "")
    [parsed] = json.loads(out)  # one report per file checked
    assert parsed["date"] == "2024-01-01"
    assert [(e["title"], e["arxiv_id"], e["abstract"], e["tags"]) for e in parsed["entries"]] == [
        (e.title, e.arxiv_id, e.abstract, list(e.tags)) for e in issue.entries]
    # without --flowed, the wrapped lines do not read as the digest
    with pytest.raises(SystemExit) as info:
        main(["check", str(issues / "2024-01-01.txt")])
    assert info.value.code == 2


def test_email_markup_is_outlook_safe(emails: dict) -> None:
    """Word's engine (Outlook) drops padding on divs and links, inline-block and negative
    indents: the commentary box is a table cell, the contents a two-column table, the tag
    pills padded spans around their links."""
    for v in emails.values():
        doc = lxml.html.fromstring(v.html)
        styles = " ".join(el.get("style", "") for el in doc.iter() if isinstance(el.tag, str))
        assert "inline-block" not in styles and "text-indent:-" not in styles.replace(" ", "")
        assert not doc.xpath('//div[contains(@style, "padding")]')
        cells = doc.find_class("notes-cell")
        assert cells and all(c.tag == "td" and "padding" in c.get("style") for c in cells)
        rows = doc.xpath('//table[@class="toc-list"]/tr')
        assert len(rows) == 10
        assert all([td.get("class") for td in r.findall("td")] == ["toc-num", "toc-item"]
                   for r in rows)
        pills = doc.find_class("tag")
        assert pills and all(p.tag == "span" and p.getparent().get("class") == "tags"
                             and p.find("a").get("class") == "tag-link" for p in pills)
        assert not any("padding" in (a.get("style") or "") for a in doc.iter("a"))
        # fonts: Latin families first, a Korean one after; Outlook gets its own stack
        container = doc.find_class("container")[0].get("style")
        stack = re.search(r"font-family:([^;]+)", container)[1]
        assert stack.index("Arial") < stack.index("Noto Sans KR") < stack.index("sans-serif")
        assert "<!--[if mso]><style>" in v.html


def test_each_editions_footer_speaks_its_readers_languages(tmp_path: Path) -> None:
    """Issue #21: the `all` edition's footer was Korean only; ko and en speak their own."""
    settings = make_settings(tmp_path)
    renderer = Renderer(settings)
    emails = {v.variant: v for v in renderer.emails(reference_issue())}
    for variant, langs in (("ko", {"ko"}), ("en", {"en"}), ("all", {"ko", "en"})):
        doc = lxml.html.fromstring(emails[variant].html)
        footer = doc.find_class("footer")[0]
        whys = {p.get("lang") for p in footer.find_class("footer-p") if p.get("lang")}
        assert whys == langs, variant
        words = footer.text_content()
        for lang in ("ko", "en"):
            assert (UI[lang]["unsubscribe"] in words) == (lang in langs), (variant, lang)


def test_digest_check_flowed_reads_a_hostile_text_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path / "newsletter")
    issue = text_hostile_issue()
    [v] = [v for v in Renderer(settings).emails(issue) if v.variant == "all"]
    path = tmp_path / "part.txt"
    path.write_text(v.text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["check", "--flowed", "--json", str(path)])
    [parsed] = json.loads(capsys.readouterr().out)
    assert [(e["title"], e["authors"], e["arxiv_id"], e["abstract"], e["tags"],
             e["notes"]["ko"] + e["notes"]["en"] + e["links"]) for e in parsed["entries"]] == [
        (e.title, list(e.authors), e.arxiv_id, e.abstract, list(e.tags),
         [*e.notes_ko, *e.notes_en, *e.links]) for e in issue.entries]

"""The web archive (issues #12, #15): stable paginated index and tag pages, links that work,
previous/next issue, the tags page, per-language indexes, and builds that stay O(1)."""

from __future__ import annotations

import posixpath
import re
import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import lxml.etree
import lxml.html
import pytest

from pipeline import store
from pipeline.core.config import Settings
from pipeline.core.models import Issue
from pipeline.publish import site
from pipeline.publish.render import Renderer
from tests.render_support import hostile_issue, make_settings, reference_issue

SIZE = 5  # items per archive page in these tests, so a few dozen issues fill many pages
START = date(2024, 1, 1)
RSS = "application/rss+xml"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"


def small_issue(k: int, day: date | None = None) -> Issue:
    """The k-th of a run of daily two-entry issues: reference texts, distinct ids, tags that
    recur at different rates (one tag in every issue, the others now and then)."""
    day = day or START + timedelta(days=k)
    ref = reference_issue().entries
    entries = (
        replace(ref[0], arxiv_id=f"{day:%y%m}.{k * 2:05d}", title=f"{ref[0].title} [{day}]",
                tags=("reward-model", f"topic-{k % 3}")),
        replace(ref[3], arxiv_id=None, url=f"https://example.org/{k}", title=f"Note {k} [{day}]",
                tags=(f"Area_{k % 4}",)),
    )
    return Issue(day, "ML Papers Digest", entries)


def newsletter(tmp_path: Path, languages: tuple[str, ...] = ("ko", "en")) -> Settings:
    settings = make_settings(tmp_path)
    return replace(settings, newsletter=replace(
        settings.newsletter, languages=languages, feed_items=3))


def publish(settings: Settings, issues: list[Issue]) -> list[set[str]]:
    """Publish each issue in turn; the site paths each build changed."""
    renderer = Renderer(settings, page_size=SIZE)
    with closing(store.connect(settings.db_path)) as conn:
        return [
            {str(p.relative_to(settings.paths.site)) for p in site.publish_issue(
                settings, conn, i, renderer)}
            for i in issues
        ]


def rebuild(settings: Settings) -> list[Path]:
    with closing(store.connect(settings.db_path)) as conn:
        return site.rebuild_site(settings, conn, Renderer(settings, page_size=SIZE))


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def page(root: Path, name: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring((root / name).read_bytes())


def resolve(root: Path, source: str, href: str) -> tuple[str, str]:
    """A relative link on page `source` as (site path, fragment); fails on anything else."""
    assert "://" not in href, (source, href)
    path, _, fragment = href.partition("#")
    target = posixpath.normpath(posixpath.join(posixpath.dirname(source), path)) if path else source
    assert not target.startswith(".."), (source, href)
    assert (root / target).is_file(), f"{source}: {href} leads nowhere"
    return target, fragment


def ids(root: Path, name: str, cache: dict[str, set[str]]) -> set[str]:
    if name not in cache:
        cache[name] = {el.get("id") for el in page(root, name).iter() if el.get("id")}
    return cache[name]


# --- stable pages, O(1) builds ---------------------------------------------------------------


@pytest.mark.slow
def test_old_archive_pages_keep_url_and_bytes_after_100_more_issues(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, ("en",))
    publish(settings, [small_issue(k) for k in range(12)])
    root = settings.paths.site
    before = snapshot(root)
    full = {n for n in before if re.fullmatch(r"(archive|tags/[^/]+)/page-\d+\.html", n)}
    assert {"archive/page-1.html", "archive/page-2.html", "tags/reward-model/page-2.html"} <= full
    changed = publish(settings, [small_issue(k) for k in range(12, 112)])
    after = snapshot(root)
    for name in full:  # same URL, same bytes, never even rewritten
        assert after[name] == before[name], name
    for name in before:
        if name.startswith("issues/") and "2024-01-12" not in name:
            assert after[name] == before[name], name
    # Each build wrote a bounded set of files, whatever the archive's length.
    print(sorted(len(c) for c in changed))
    assert max(len(c) for c in changed[50:]) <= max(len(c) for c in changed[:50])
    assert "archive/page-22.html" in after and "archive/page-23.html" not in after
    assert (root / "archive/page-22.html").read_bytes() == after["archive/page-22.html"][0]


@pytest.mark.slow
def test_each_build_equals_a_full_rebuild(tmp_path: Path) -> None:
    """Whatever happens (issues in order, one dated before others, corrections that add,
    drop and move tags), the incremental site is exactly what a rebuild from scratch gives:
    no stale page, no page missing, no page that should have changed and did not."""
    settings = newsletter(tmp_path)
    issues = [small_issue(k) for k in range(13)]
    late = small_issue(40, START + timedelta(days=30))
    publish(settings, [*issues[:7], late, *issues[7:]])
    backdated = small_issue(41, START - timedelta(days=8))  # before every other issue
    publish(settings, [backdated])
    old = issues[4]
    retagged = replace(old, entries=(
        replace(old.entries[0], tags=("fresh",)),
        replace(old.entries[1], title="Corrected title", tags=("area-1", "topic-0")),
    ))
    publish(settings, [retagged, replace(issues[9], entries=issues[9].entries[:1])])
    incremental = {k: v[0] for k, v in snapshot(settings.paths.site).items()}

    fresh = newsletter(tmp_path / "fresh")
    with (closing(store.connect(fresh.db_path)) as conn, store.transaction(conn),
          closing(store.connect(settings.db_path)) as src):
        for issue in store.iter_archived_issues(src):
            store.save_archived_issue(conn, issue)
    rebuild(fresh)
    assert {k: v[0] for k, v in snapshot(fresh.paths.site).items()} == incremental
    assert rebuild(settings) == []  # and rebuilding in place changes nothing


@pytest.mark.slow
def test_a_correction_rewrites_only_its_pages_and_the_pages_holding_it(tmp_path: Path) -> None:
    settings = newsletter(tmp_path)
    issues = [small_issue(k) for k in range(14)]
    publish(settings, issues)
    old = issues[2]  # on archive page 1; its paper is the 3rd with #reward-model
    corrected = replace(old, entries=(
        replace(old.entries[0], title="A corrected title"), old.entries[1]))
    [changed] = publish(settings, [corrected])
    assert changed == {
        "issues/2024-01-03.html", "issues/2024-01-03.ko.html", "issues/2024-01-03.en.html",
        "issues/2024-01-03.txt", "issues/2024-01-03.ko.txt", "issues/2024-01-03.en.txt",
        "archive/page-1.html", "archive/page-1.ko.html", "archive/page-1.en.html",
        "tags/reward-model/page-1.html", "tags/topic-2.html",  # 4 papers: no full page yet
        # the tag pages in each language (issue #21)
        "tags/reward-model/page-1.ko.html", "tags/reward-model/page-1.en.html",
        "tags/topic-2.ko.html", "tags/topic-2.en.html",
        "tags/reward-model.xml", "tags/topic-2.xml",  # the tag feeds carry its paper
    }
    assert "A corrected title" in (settings.paths.site / "archive/page-1.en.html").read_text()


def test_a_broken_template_leaves_the_archive_and_site_alone(tmp_path: Path) -> None:
    settings = newsletter(tmp_path)
    publish(settings, [small_issue(0)])
    before = snapshot(settings.paths.site)
    settings.paths.templates.mkdir(parents=True)
    (settings.paths.templates / "tags.html").write_text("{{ missing }}")
    with pytest.raises(Exception, match="missing"):
        publish(settings, [small_issue(1)])
    assert snapshot(settings.paths.site) == before
    with closing(store.connect(settings.db_path)) as conn:
        assert store.archive_count(conn) == 1 and store.tag_count(conn, "area-1") == 0


def test_an_archive_stored_before_the_index_tables_is_indexed_on_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(store.MIGRATIONS[0] + "PRAGMA user_version = 1;")
        for k in range(3):
            conn.execute("INSERT INTO archive (date, issue) VALUES (?, ?)",
                         (small_issue(k).date.isoformat(), store.issue_json(small_issue(k))))
        conn.commit()
    with closing(store.connect(path)) as conn:
        assert store.tag_count(conn, "reward-model") == 3
        assert store.tag_counts(conn)["area-1"] == 1
        rows = store.archived_entries_between(conn, START, START + timedelta(days=2))
        assert [(r.date.day, r.number) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1),
                                                          (3, 2)]


# --- what readers click ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[Issue]]:
    """23 issues (four full archive pages and a partial one) in ko, en and all."""
    settings = newsletter(tmp_path_factory.mktemp("archive"))
    issues = [small_issue(k) for k in range(23)]
    publish(settings, issues)
    return settings, issues


@pytest.mark.slow
def test_every_index_title_links_to_its_entry_in_the_issue_page(
    archive_site: tuple[Settings, list[Issue]],
) -> None:
    settings, issues = archive_site
    root = settings.paths.site
    cache: dict[str, set[str]] = {}
    indexes = sorted(n for n in snapshot(root) if re.fullmatch(r"(index|archive/page-\d+)\..*html", n))
    assert len(indexes) == 3 * 5  # newest + four full pages, per variant
    seen: Counter[str] = Counter()
    for name in indexes:
        doc = page(root, name)
        links = doc.find_class("index-link")
        assert links, name
        for a in links:
            target, fragment = resolve(root, name, a.get("href"))
            assert fragment in ids(root, target, cache), (name, a.get("href"))
            element = page(root, target).get_element_by_id(fragment)
            assert a.text_content() in element.text_content()
            seen[name.split(".")[-2] if name.count(".") > 1 else "all"] += 1
        for a in doc.iter("a"):  # every other relative link works too
            if "://" not in a.get("href"):
                resolve(root, name, a.get("href"))
    assert seen == {v: 2 * len(issues) for v in ("all", "ko", "en")}  # each title once


def test_previous_and_next_chain_every_issue_both_ways(
    archive_site: tuple[Settings, list[Issue]],
) -> None:
    settings, issues = archive_site
    root = settings.paths.site
    for suffix in ("", ".ko", ".en"):
        names = [f"issues/{i.date}{suffix}.html" for i in issues]
        for rel, start, expected in (("next", names[0], names), ("prev", names[-1], names[::-1])):
            chain, current = [start], start
            while links := page(root, current).xpath(f"//nav[@class='issue-nav']/a[@rel='{rel}']"):
                assert len(links) == 1
                current, _ = resolve(root, current, links[0].get("href"))
                chain.append(current)
            assert chain == expected


def test_tags_page_lists_every_tag_with_its_count_page_and_feed(
    archive_site: tuple[Settings, list[Issue]],
) -> None:
    settings, issues = archive_site
    root = settings.paths.site
    expected = Counter(k for i in issues for e in i.entries for k in dict.fromkeys(e.tag_keys))
    doc = page(root, "tags/index.html")
    rows = doc.find_class("tag-row")
    found = {}
    for row in rows:
        tag = row.find_class("tag")[0]
        count = int(re.sub(r"\D", "", row.find_class("tag-count")[0].text_content()))
        found[tag.text_content().lstrip("#")] = count
        target, _ = resolve(root, "tags/index.html", tag.get("href"))
        assert page(root, target).find(".//h1").text_content() == tag.text_content()
        feed, _ = resolve(root, "tags/index.html", row.find_class("tag-feed")[0].get("href"))
        assert feed.endswith(".xml")
    assert found == dict(expected)
    assert found["reward-model"] == 23 and found["area-1"] == 6
    # The tag's pages hold every paper with it, once; the full ones numbered from the oldest.
    titles = []
    for name in ("tags/reward-model/page-1.html", "tags/reward-model/page-2.html",
                 "tags/reward-model/page-3.html", "tags/reward-model/page-4.html",
                 "tags/reward-model.html"):
        titles += [a.text_content() for a in page(root, name).find_class("title-link")]
    assert sorted(titles) == sorted(i.entries[0].title for i in issues)
    assert not (root / "tags/reward-model/page-5.html").exists()


def test_per_language_indexes_linked_from_their_issue_pages(
    archive_site: tuple[Settings, list[Issue]],
) -> None:
    settings, issues = archive_site
    root = settings.paths.site
    day = issues[5].date
    for suffix, lang in (("", "ko"), (".ko", "ko"), (".en", "en")):
        name = f"issues/{day}{suffix}.html"
        doc = page(root, name)
        back = doc.find_class("nav")[0].find("a")
        index, _ = resolve(root, name, back.get("href"))
        assert index == f"index{suffix}.html"
        idx = page(root, index)
        assert idx.get("lang") == lang
        dates = [resolve(root, index, a.get("href"))[0] for h in idx.find_class("index-date")
                 for a in h.iter("a")]
        assert dates and all(d.endswith(f"{suffix}.html") and d.startswith("issues/")
                             for d in dates)
    en = page(root, "index.en.html")
    assert "Past issues" in (root / f"issues/{day}.en.html").read_text()
    assert en.find_class("masthead")[0].find("h1").text_content() == "All issues"


def test_every_page_announces_its_feeds_with_their_own_titles(
    archive_site: tuple[Settings, list[Issue]],
) -> None:
    settings, issues = archive_site
    root = settings.paths.site
    feed_titles = {}
    for name in ("feed.xml", "feed.ko.xml", "feed.en.xml", "tags/reward-model.xml"):
        feed_titles[name] = lxml.etree.fromstring((root / name).read_bytes()).findtext(
            "channel/title")
    assert len(set(feed_titles.values())) == 4  # one title per feed
    pages = {
        f"issues/{issues[0].date}.en.html": "feed.en.xml",
        "index.ko.html": "feed.ko.xml",
        "index.html": "feed.xml",
        "archive/page-2.en.html": "feed.en.xml",
        "tags/reward-model.html": "tags/reward-model.xml",
        "tags/reward-model/page-1.html": "tags/reward-model.xml",
        "tags/index.html": "feed.xml",
    }
    for name, own in pages.items():
        links = page(root, name).xpath(f"//head/link[@rel='alternate'][@type='{RSS}']")
        announced = {resolve(root, name, a.get("href"))[0]: a.get("title") for a in links}
        assert resolve(root, name, links[0].get("href"))[0] == own, name  # its own feed first
        for feed, title in announced.items():
            assert title == feed_titles[feed], (name, feed)
        assert {"feed.xml", "feed.ko.xml", "feed.en.xml"} <= set(announced)


def test_the_archive_links_to_the_subscribe_page(
    archive_site: tuple[Settings, list[Issue]],
) -> None:
    settings, issues = archive_site
    root = settings.paths.site
    url = settings.newsletter.base_url.rstrip("/") + "/subscribe"
    for name in ("index.html", "archive/page-1.html", "tags/index.html",
                 "tags/reward-model.html"):
        hrefs = {a.get("href") for a in page(root, name).iter("a")}
        assert url in hrefs, name
    # a page in one language opens the subscribe page in that language (issue #21)
    for name in ("index.en.html", f"issues/{issues[0].date}.en.html", "archive/page-1.en.html"):
        hrefs = {a.get("href") for a in page(root, name).iter("a")}
        assert url + "?lang=en" in hrefs and url not in hrefs, name


def test_pages_link_newest_and_older_pages_only(
    archive_site: tuple[Settings, list[Issue]],
) -> None:
    settings, _ = archive_site
    root = settings.paths.site
    def pager(name: str) -> list[str]:
        return [resolve(root, name, a.get("href"))[0]
                for a in page(root, name).find_class("pager")[0].iter("a")]
    assert pager("index.en.html") == [f"archive/page-{n}.en.html" for n in (4, 3, 2, 1)]
    assert pager("archive/page-3.html") == ["index.html", "archive/page-2.html",
                                            "archive/page-1.html"]
    assert not page(root, "archive/page-1.html").find_class("pager-page")
    text = page(root, "archive/page-2.en.html").find_class("sub")[0].text_content()
    assert "Issues 6–10" in text


# --- feeds from the store and their cached items ---------------------------------------------


def test_hostile_text_from_the_store_stays_text_in_pages_and_feeds(tmp_path: Path) -> None:
    """Pages and feeds built from the store's rows are cleaned and escaped like the others."""
    settings = newsletter(tmp_path)
    publish(settings, [small_issue(0), replace(hostile_issue(), date=START + timedelta(days=1))])
    root = settings.paths.site
    for name in ("feed.xml", "feed.ko.xml", "tags/safe-tag.xml", "tags/other.xml"):
        xml = (root / name).read_bytes()
        assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]", xml), name
        lxml.etree.fromstring(xml)  # strict XML parser
    for name in ("index.html", "index.en.html", "tags/safe-tag.html", "tags/index.html",
                 "issues/2024-01-01.html"):
        doc = page(root, name)
        assert not doc.xpath("//script"), name
        assert all(not n.lower().startswith("on") for el in doc.iter() if isinstance(el.tag, str)
                   for n in el.attrib), name
    assert '<script>alert("t")</script> Title' in page(root, "index.html").text_content()


def test_a_template_change_reaches_every_feed_item(tmp_path: Path) -> None:
    """Feed items are rendered once and kept in the store; a changed template (or program,
    or setting) is never served from that cache."""
    settings = newsletter(tmp_path)
    publish(settings, [small_issue(k) for k in range(3)])
    settings.paths.templates.mkdir(parents=True)
    fragment = (Path(__file__).parent.parent / "templates/fragment.html").read_text()
    (settings.paths.templates / "fragment.html").write_text("<p>CHANGED</p>\n" + fragment)
    publish(settings, [small_issue(3)])
    root = settings.paths.site
    feed = lxml.etree.fromstring((root / "feed.xml").read_bytes())
    contents = [i.findtext(CONTENT) or "" for i in feed.findall("channel/item")]
    assert len(contents) == 3 and all(c.startswith("<p>CHANGED</p>") for c in contents)
    tag = lxml.etree.fromstring((root / "tags/reward-model.xml").read_bytes())
    assert len(tag.findall("channel/item")) == 4
    assert all("CHANGED" in (i.findtext(CONTENT) or "") for i in tag.findall("channel/item"))


@pytest.mark.slow
def test_the_item_cache_holds_about_what_the_feeds_show(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, ("en",))
    issues = [replace(i, entries=(replace(i.entries[0], tags=(f"t{k % 2}",)),))
              for k, i in enumerate(small_issue(k) for k in range(70))]
    publish(settings, issues)
    with closing(store.connect(settings.db_path)) as conn:
        rows = conn.execute("SELECT number = 0, COUNT(*) FROM render_cache GROUP BY 1")
        counts = {bool(r[0]): r[1] for r in rows}
    whole_issues, papers = counts[True], counts[False]
    # The 3 issues of feed.xml; the papers of the two tag feeds (35 papers each, all shown).
    assert (whole_issues, papers) == (3, 70)
    publish(settings, [small_issue(k) for k in range(70, 140)])
    with closing(store.connect(settings.db_path)) as conn:
        cached = conn.execute("SELECT COUNT(*) FROM render_cache WHERE number > 0").fetchone()[0]
        tagged = sum(min(50, n) for n in store.tag_counts(conn).values())
    assert cached <= tagged + 10  # a paper in several tag feeds is cached once


@pytest.mark.slow
def test_a_template_change_renders_every_page_once(tmp_path: Path) -> None:
    """Full pages are never rewritten by a build, so a changed template (or program, or
    setting) makes the next build render the whole site once; the one after is O(1) again."""
    settings = newsletter(tmp_path)
    publish(settings, [small_issue(k) for k in range(12)])
    settings.paths.templates.mkdir(parents=True)
    page_template = (Path(__file__).parent.parent / "templates/_page.html").read_text()
    (settings.paths.templates / "_page.html").write_text(
        page_template.replace('<div class="page">', '<div class="page" data-look="new">'))
    [changed] = publish(settings, [small_issue(12)])
    root = settings.paths.site
    html = [n for n in snapshot(root) if n.endswith(".html")]
    assert set(html) <= changed and len(html) >= 13 * 3 + 3 * 3 + 10
    assert all(b'data-look="new"' in (root / n).read_bytes() for n in html)
    [changed] = publish(settings, [small_issue(13)])
    # (the issue's pages, index pages, feeds, and its tags' pages in each of 3 languages)
    assert len(changed) < 40 and "archive/page-1.html" not in changed


def test_a_tag_named_index_does_not_replace_the_tags_page(tmp_path: Path) -> None:
    settings = newsletter(tmp_path)
    issue = small_issue(0)
    publish(settings, [replace(issue, entries=(replace(issue.entries[0], tags=("Index",)),))])
    root = settings.paths.site
    tags = page(root, "tags/index.html")
    [row] = tags.find_class("tag-row")
    target, _ = resolve(root, "tags/index.html", row.find_class("tag")[0].get("href"))
    assert target == "tags/index_.html" and (root / "tags/index_.xml").is_file()
    assert page(root, target).find(".//h1").text_content() == "#index"
    hrefs = [a.get("href") for a in page(root, "issues/2024-01-01.html").find_class("tag-link")]
    assert hrefs == ["../tags/index_.html"]


@pytest.mark.slow
def test_planning_a_publish_inside_a_transaction_stores_nothing_of_the_issue(
    tmp_path: Path,
) -> None:
    """site.issue_files gives the files as they will be, in the caller's transaction or not,
    and leaves the archive as it was (a preview, or a publish that writes first)."""
    settings = newsletter(tmp_path)
    publish(settings, [small_issue(k) for k in range(3)])
    renderer = Renderer(settings, page_size=SIZE)
    with closing(store.connect(settings.db_path)) as conn:
        with store.transaction(conn):
            files = site.issue_files(conn, small_issue(3), renderer)
        assert store.archive_count(conn) == 3 and not store.is_archived(conn, small_issue(3).date)
        assert store.tag_count(conn, "reward-model") == 3
    assert "issues/2024-01-04.html" in files and "issues/2024-01-03.html" in files
    assert "Free Process Rewards" in (files["index.html"] or "")
    assert "2024-01-04" in (files["index.html"] or "")


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_a_languages_pages_link_only_to_pages_in_that_language(
    archive_site: tuple[Settings, list[Issue]], lang: str
) -> None:
    """Issue #21: English pages linked to Korean tag pages and to the `all` issue."""
    settings, issues = archive_site
    root = settings.paths.site
    suffix = f".{lang}.html"
    todo = [f"index.{lang}.html"]
    seen: set[str] = set()
    while todo:  # every page reachable from the language's index, within the site
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for a in page(root, name).iter("a"):
            href = a.get("href") or ""
            if "://" in href or href.endswith(".xml"):
                continue
            target, _ = resolve(root, name, href)
            others = [f".{v}.html" for v in settings.variants if v != lang]
            assert target.endswith(suffix) or (a.getparent().get("class") == "nav" \
                and any(target.endswith(o) or target.count(".") == 1 for o in others)), \
                (name, href)
            if target.endswith(suffix):
                todo.append(target)
    assert any(n.startswith("tags/") and n != f"tags/index.{lang}.html" for n in seen)
    assert f"tags/index.{lang}.html" in seen and f"issues/{issues[0].date}.{lang}.html" in seen

"""The published feeds read by a real feed reader: newsboat, non-interactively.

newsboat fetches each feed through a file:// URL (`-x reload`), and its cache (SQLite) holds
what it shows: the feed titles of its feed list, and each article's date (an epoch that it
prints in the reader's local time). To read articles as a person does, newsboat runs in a
pseudo-terminal of 80 columns and opens each one; its `pager` setting hands us the article
exactly as it laid it out for that screen (issue #21: commentary in a table cell was one
unwrapped line, cut at the screen's edge). Skips only when newsboat is missing and
DIGEST_REQUIRE_BROWSER is unset (CI sets it and installs newsboat).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import sqlite3
import struct
import subprocess
import termios
import time
import unicodedata
from contextlib import closing, suppress
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline import store
from pipeline.core.models import Issue
from pipeline.publish import site
from tests.render_support import archive_issue, make_settings

FEEDS = {
    "feed.xml": "ML Papers Digest (한국어 + English)",
    "feed.ko.xml": "ML Papers Digest (한국어)",
    "feed.en.xml": "ML Papers Digest (English)",
    "tags/reward-model.xml": "ML Papers Digest · #reward-model",
}
# Where readers are: the issue must show as its own date in each (newsboat prints localtime).
READER_ZONES = ("UTC", "Europe/Berlin", "Asia/Seoul")
ISSUE_URL_RE = re.compile(r"/issues/(\d{4}-\d{2}-\d{2})(?:\.\w+)?\.html")


@pytest.fixture(scope="module")
def newsboat() -> str:
    path = shutil.which("newsboat")
    if path is None:
        if os.environ.get("DIGEST_REQUIRE_BROWSER"):
            pytest.fail("DIGEST_REQUIRE_BROWSER is set but newsboat is not installed")
        pytest.skip("newsboat is not installed (apt-get install newsboat)")
    return path


def run_newsboat(newsboat: str, home: Path, *args: str) -> str:
    """One non-interactive newsboat command with its own config, URL list and cache."""
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local/share"), "TZ": "UTC", "TERM": "dumb"}
    done = subprocess.run(
        [newsboat, "-u", str(home / "urls"), "-c", str(home / "cache.db"),
         "-C", str(home / "config"), *args],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return done.stdout


@pytest.fixture(scope="module")
def cache(newsboat: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Issue]]:
    """Five published issues (Monday to Friday), read by newsboat from site/."""
    root = tmp_path_factory.mktemp("newsboat")
    settings = make_settings(root / "newsletter")
    issues = [archive_issue(k) for k in range(5)]  # 2024-01-01 (a Monday) .. 2024-01-05
    with closing(store.connect(settings.db_path)) as conn:
        for issue in issues:
            site.publish_issue(settings, conn, issue)
    home = root / "reader"
    home.mkdir()
    (home / "urls").write_text(
        "".join(f"{(settings.paths.site / name).as_uri()}\n" for name in FEEDS)
    )
    (home / "config").write_text("")  # newsboat's defaults, as a new reader has them
    assert run_newsboat(newsboat, home, "-x", "reload") == ""
    unread = run_newsboat(newsboat, home, "-x", "print-unread")
    # three issue feeds of five issues each, and one tag item per issue
    assert unread.strip() == f"{3 * 5 + 5} unread articles"
    return home / "cache.db", issues


@pytest.mark.slow
def test_newsboat_lists_each_feed_under_its_own_title(cache: tuple[Path, list[Issue]]) -> None:
    db, _ = cache
    with closing(sqlite3.connect(db)) as conn:
        titles = {url.rsplit("/site/", 1)[1]: title
                  for url, title in conn.execute("SELECT rssurl, title FROM rss_feed")}
    assert titles == FEEDS
    assert len(set(titles.values())) == len(FEEDS)


@pytest.mark.slow
def test_newsboat_shows_each_issue_on_its_own_date(cache: tuple[Path, list[Issue]]) -> None:
    db, issues = cache
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT feedurl, title, url, guid, pubDate FROM rss_item").fetchall()
    assert len(rows) == 20
    dates = {i.date for i in issues}
    for feed_url, title, url, guid, epoch in rows:
        m = ISSUE_URL_RE.search(guid)
        assert m is not None, guid
        day = date.fromisoformat(m[1])
        assert day in dates
        for zone in READER_ZONES:
            shown = datetime.fromtimestamp(epoch, ZoneInfo(zone)).date()
            assert shown == day, (feed_url, title, zone, shown)
        if feed_url.endswith("/tags/reward-model.xml"):
            # titled by the paper itself: no number of its place in the issue
            issue = next(i for i in issues if i.date == day)
            assert title in [e.title for e in issue.entries]
            assert not re.match(r"\d", title)
            assert url.startswith("https://arxiv.org/abs/")


COLUMNS = 80
LINK_LINE_RE = re.compile(r"^\s*\[\d+\]: \S+")  # newsboat's list of the article's links


def columns(line: str) -> int:
    """How many terminal columns a line takes (Hangul and other wide characters: two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def read_articles(newsboat: str, home: Path, feed: Path, count: int) -> list[str]:
    """Open the first `count` articles of `feed` in newsboat on an 80-column terminal; each
    article as newsboat laid it out (its pager gets the rendered text)."""
    home.mkdir(parents=True, exist_ok=True)
    dump = home / "articles.txt"
    (home / "urls").write_text(feed.as_uri() + "\n")
    # the pager appends each article, then a separator line newsboat never writes
    (home / "config").write_text(f'pager "cat %f >> {dump} && echo @@@@ >> {dump}"\n')
    pid, fd = pty.fork()
    if pid == 0:  # the child: newsboat on the pseudo-terminal
        os.environ.update(HOME=str(home), TERM="xterm", TZ="UTC",
                          XDG_CONFIG_HOME=str(home / ".config"),
                          XDG_DATA_HOME=str(home / ".local/share"))
        os.execvp(newsboat, [newsboat, "-r", "-u", str(home / "urls"),
                             "-c", str(home / "cache.db"), "-C", str(home / "config")])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))

    def settle(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    os.read(fd, 65536)
                except OSError:
                    return

    try:
        settle(2.0)
        keys = ["\r"] + ["\r", "j"] * count + ["q", "q"]
        for key in keys:
            os.write(fd, key.encode())
            settle(0.6)
        settle(1.0)
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, 15)
        os.waitpid(pid, 0)
        os.close(fd)
    return [a for a in dump.read_text(encoding="utf-8").split("@@@@\n") if a.strip()]


@pytest.mark.parametrize("name", list(FEEDS))
def test_newsboat_shows_every_line_of_every_article_at_80_columns(
    newsboat: str, tmp_path: Path, name: str
) -> None:
    settings = make_settings(tmp_path / "newsletter")
    issues = [archive_issue(k) for k in range(2)]
    with closing(store.connect(settings.db_path)) as conn:
        for issue in issues:
            site.publish_issue(settings, conn, issue)
    articles = read_articles(newsboat, tmp_path / "reader", settings.paths.site / name, 2)
    assert len(articles) == 2, articles
    for text in articles:
        # newsboat cuts nothing it can wrap: only a bare URL may pass the edge
        long = [line for line in text.splitlines()
                if columns(line.rstrip()) > COLUMNS and not LINK_LINE_RE.match(line)]
        assert not long, long
        # the item is titled by its own content, never by the feed's name
        title = next(line for line in text.splitlines() if line.startswith("Title: "))
        assert "ML Papers Digest" not in title, title
        assert "…" not in title, title
    # the commentary is all there, in the reader's language (words joined back from wrapping)
    joined = " ".join(" ".join(articles).split())
    entry = issues[1].entries[0]
    lang = "en" if name == "feed.en.xml" else "ko"
    paragraph = next(p for p in entry.commentary
                     if bool(re.search("[가-힣]", p)) == (lang == "ko"))
    assert " ".join(paragraph.split()[:12]) in joined


def test_a_correction_reaches_a_reader_who_read_the_issue(
    newsboat: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "newsletter")
    issues = [archive_issue(k) for k in range(2)]
    home = tmp_path / "reader"
    home.mkdir()
    (home / "urls").write_text("".join(
        f"{(settings.paths.site / name).as_uri()}\n" for name in FEEDS))
    (home / "config").write_text("")
    with closing(store.connect(settings.db_path)) as conn:
        for issue in issues:
            site.publish_issue(settings, conn, issue)
        run_newsboat(newsboat, home, "-x", "reload")
        with closing(sqlite3.connect(home / "cache.db")) as cache:
            cache.execute("UPDATE rss_item SET unread = 0")  # the reader read everything
            cache.commit()
        assert run_newsboat(newsboat, home, "-x", "print-unread").strip() == "0 unread articles"
        old = issues[1]
        fixed = replace(old, corrected=datetime(2024, 1, 3, 9, 30, tzinfo=UTC),
                        entries=(replace(old.entries[0], title="A corrected title"),
                                 *old.entries[1:]))
        site.publish_issue(settings, conn, fixed)
    run_newsboat(newsboat, home, "-x", "reload")
    # each issue feed shows the corrected issue again, and the tag feed its corrected paper
    with closing(sqlite3.connect(home / "cache.db")) as cache:
        titles = [t for (t,) in cache.execute("SELECT title FROM rss_item WHERE unread = 1")]
    assert run_newsboat(newsboat, home, "-x", "print-unread").strip() == "4 unread articles"
    assert all("A corrected title" in t for t in titles), titles
    assert all("수정됨" in t or "corrected" in t for t in titles), titles

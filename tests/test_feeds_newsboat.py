"""The published feeds read by a real feed reader: newsboat, non-interactively.

newsboat fetches each feed through a file:// URL (`-x reload`), and its cache (SQLite) holds
what it shows: the feed titles of its feed list, and each article's date (an epoch that it
prints in the reader's local time). Skips only when newsboat is missing and
DIGEST_REQUIRE_BROWSER is unset (CI sets it and installs newsboat).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from datetime import date, datetime
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

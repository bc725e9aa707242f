"""`make bench`: collect+tag time and peak memory for the real 1,504-item feed and generated
3,000- and 10,000-item ones, beside a bare `feedparser.parse` (and a bare lxml parse) of the
same bytes measured in the same services. collect ÷ feedparser is the figure to watch (aim ≤ 1.2):
feedparser is the floor of any collect that reads the feed with it."""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import feedparser
from lxml import etree

from pipeline import services
from pipeline.collect.feed import parse_announcement
from pipeline.collect.tags import compile_rules, match_paper
from tests.arxiv_support import REAL_FEED, RSS_PATH, rewrite_feed, runtime_for, settings_for
from tests.support import FakeClock, Reply, best_time, recording_server

DAY = date(2024, 11, 28)
REPEATS = 2


def peak_mib(mode: str, feed: Path) -> float:
    """Peak resident memory of a fresh process doing `mode` on the feed, in MiB (libxml2's
    memory is invisible to tracemalloc, so the whole process is measured)."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench_collect", "--child", mode, str(feed)],
        check=True, capture_output=True, text=True,
    ).stdout
    return int(out.split()[-1]) / 1024


def child(mode: str, feed: Path) -> None:
    """Do one thing in this process, then print its peak RSS (KiB)."""
    data = feed.read_bytes()
    if mode == "lxml":
        etree.fromstring(data)
    elif mode == "feedparser":
        feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    elif mode == "collect":
        with tempfile.TemporaryDirectory() as tmp, recording_server() as server:
            server.route(RSS_PATH, Reply(data))
            services.collect(settings_for(Path(tmp), server.url), DAY, runtime_for(FakeClock()))
    print(high_water_kib())


def high_water_kib() -> int:
    """This process's peak RSS in KiB: VmHWM (ru_maxrss would keep the parent's peak
    across exec on Linux), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bench_feed(label: str, data: bytes, repeats: int = REPEATS) -> None:
    """Print the figures of one feed (the best of `repeats` runs of each step)."""
    with tempfile.TemporaryDirectory() as tmp, recording_server() as server:
        server.route(RSS_PATH, Reply(data))
        settings = settings_for(Path(tmp), server.url)
        rules = compile_rules(settings.tags)
        keep = settings.arxiv.announce_types

        def collect() -> None:  # into a new, empty store each time
            with tempfile.TemporaryDirectory() as fresh:
                services.collect(settings_for(Path(fresh), server.url), DAY, runtime_for(FakeClock()))

        def adapt() -> None:
            parse_announcement(data, DAY, keep)

        papers = parse_announcement(data, DAY, keep).papers
        lxml_s = best_time(lambda: etree.fromstring(data), repeats)
        # the very call collect makes, so the ratio is collect's own work on top of it
        feed_s = best_time(lambda: feedparser.parse(
            data, sanitize_html=False, resolve_relative_uris=False), repeats)
        adapt_s = best_time(adapt, repeats)
        tag_s = best_time(lambda: [match_paper(p, rules) for p in papers], repeats)
        collect_s = best_time(collect, repeats)
        items = len(etree.fromstring(data).findall("channel/item"))
        feed = Path(tmp) / "feed.xml"
        feed.write_bytes(data)
        base = peak_mib("read", feed)
        feed_peak = peak_mib("feedparser", feed) - base
        collect_peak = peak_mib("collect", feed) - base
    print(
        f"{label}: {items} items ({len(data) / 2**20:.1f} MiB), {len(papers)} kept, "
        f"{len(rules)} tags"
    )
    print(f"  bare lxml parse        {lxml_s * 1000:8.1f} ms")
    print(f"  bare feedparser.parse  {feed_s * 1000:8.1f} ms  ({feed_s / lxml_s:5.1f}x lxml)")
    print(f"  feedparser + adapt     {adapt_s * 1000:8.1f} ms  ({adapt_s / feed_s:5.2f}x feedparser)")
    print(f"  tag matching           {tag_s * 1000:8.1f} ms  "
          f"({tag_s / len(papers) * 1e6:.0f} us/paper)")
    print(f"  collect+tag (all)      {collect_s * 1000:8.1f} ms  "
          f"({collect_s / items * 1e3:.2f} ms/item)")
    print(f"  collect / feedparser   {collect_s / feed_s:8.2f}     (aim <= 1.20)")
    print(f"  peak memory above the bytes read: feedparser {feed_peak:.1f} MiB, "
          f"collect {collect_peak:.1f} MiB ({collect_peak / max(feed_peak, 0.1):.2f}x)")


def main() -> None:
    """Run the benchmark on the real feed and the generated ones."""
    real = REAL_FEED.read_bytes()
    start = time.perf_counter()
    bench_feed("real feed 2024-11-28", real)
    bench_feed("generated feed", rewrite_feed(real, keep=lambda i, item: i < 1500, copies=2))
    bench_feed("generated feed", rewrite_feed(real, keep=lambda i, item: i < 1250, copies=8),
               repeats=1)
    print(f"(best of {REPEATS} runs, 1 for 10,000 items; collect = HTTP GET + feedparser + "
          "adapt + tags + SQLite; "
          f"bench took {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]))
    else:
        main()

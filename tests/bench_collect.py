"""`make bench`: collect+tag time and peak memory for the real 1,504-item feed and a generated
3,000-item one, beside a bare lxml parse of the same bytes measured in the same run."""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from lxml import etree

from pipeline import run
from pipeline.arxiv_rss import parse_announcement
from pipeline.tags import compile_rules, match_paper
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
    elif mode == "collect":
        with tempfile.TemporaryDirectory() as tmp, recording_server() as server:
            server.route(RSS_PATH, Reply(data))
            run.collect(settings_for(Path(tmp), server.url), DAY, runtime_for(FakeClock()))
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


def bench_feed(label: str, data: bytes) -> None:
    """Print the figures of one feed."""
    with tempfile.TemporaryDirectory() as tmp, recording_server() as server:
        server.route(RSS_PATH, Reply(data))
        settings = settings_for(Path(tmp), server.url)
        rules = compile_rules(settings.tags)
        keep = settings.arxiv.announce_types

        def collect() -> None:  # into a new, empty store each time
            with tempfile.TemporaryDirectory() as fresh:
                run.collect(settings_for(Path(fresh), server.url), DAY, runtime_for(FakeClock()))

        def adapt() -> None:
            parse_announcement(data, DAY, keep)

        papers = parse_announcement(data, DAY, keep).papers
        lxml_s = best_time(lambda: etree.fromstring(data), REPEATS)
        adapt_s = best_time(adapt, REPEATS)
        tag_s = best_time(lambda: [match_paper(p, rules) for p in papers], REPEATS)
        collect_s = best_time(collect, REPEATS)
        items = len(etree.fromstring(data).findall("channel/item"))
        feed = Path(tmp) / "feed.xml"
        feed.write_bytes(data)
        base = peak_mib("read", feed)
        lxml_peak = peak_mib("lxml", feed) - base
        collect_peak = peak_mib("collect", feed) - base
    print(
        f"{label}: {items} items ({len(data) / 2**20:.1f} MiB), {len(papers)} kept, "
        f"{len(rules)} tags"
    )
    print(f"  bare lxml parse        {lxml_s * 1000:8.1f} ms")
    print(f"  feedparser + adapt     {adapt_s * 1000:8.1f} ms  ({adapt_s / lxml_s:5.1f}x lxml)")
    print(f"  tag matching           {tag_s * 1000:8.1f} ms  "
          f"({tag_s / len(papers) * 1e6:.0f} us/paper)")
    print(f"  collect+tag (all)      {collect_s * 1000:8.1f} ms  "
          f"({collect_s / lxml_s:5.1f}x lxml, {collect_s / items * 1e3:.2f} ms/item)")
    print(f"  peak memory above the bytes read: lxml {lxml_peak:.1f} MiB, "
          f"collect {collect_peak:.1f} MiB ({collect_peak / max(lxml_peak, 0.1):.1f}x)")


def main() -> None:
    """Run the benchmark on both feeds."""
    real = REAL_FEED.read_bytes()
    generated = rewrite_feed(real, keep=lambda i, item: i < 1500, copies=2)
    start = time.perf_counter()
    bench_feed("real feed 2024-11-28", real)
    bench_feed("generated feed", generated)
    print(f"(best of {REPEATS} runs; collect = HTTP GET + feedparser + adapt + tags + SQLite; "
          f"bench took {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]))
    else:
        main()

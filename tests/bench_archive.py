"""`make bench` figures for the archive (issue #15): the time and peak memory of adding one
issue to archives of 10, 1,000 and 3,000 issues, and the ratio of the biggest to the smallest
(aim: at most 2x). The archives are stored directly (no pages rendered for them), then each
measured build is a real `site.publish_issue` into a site/ on disk, its feed items already
rendered once as they would be after years of daily builds."""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
import tracemalloc
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from pipeline import store
from pipeline.core.models import Issue
from pipeline.publish import archive, site
from pipeline.publish.render import Renderer
from tests.render_support import make_settings, reference_issue
from tests.support import best_time

SIZES = (10, 1000, 3000)
MEASURED = 7  # builds timed per archive size (the median is printed)
START = date(2015, 1, 1)


def bench_issue(k: int) -> Issue:
    """The k-th daily issue: the reference entries with distinct ids and titles, their own
    tags plus two that recur at different rates (as a curator's vocabulary does)."""
    day = START + timedelta(days=k)
    entries = tuple(
        replace(e, arxiv_id=f"{day:%y%m}.{(k * 10 + j) % 100000:05d}", title=f"{e.title} [{day}]",
                tags=(*e.tags, f"topic-{(k + j) % 40}", f"area-{k % 7}"))
        for j, e in enumerate(reference_issue().entries)
    )
    return Issue(day, "ML Papers Digest", entries)


def warm_feed_items(r: Renderer, conn: sqlite3.Connection) -> None:
    """Render every feed once, as the builds that stored these issues would have: their
    items are then in the store's cache, as on a newsletter that has run for years."""
    cache = store.RenderCache(conn)
    r.fragments = cache
    try:
        archive.feed_files(r, conn)
        for key, total in store.tag_counts(conn).items():
            archive.tag_feed(r, conn, key, total)
    finally:
        r.fragments = None
    with store.transaction(conn):
        cache.flush()
        store.set_site_fingerprint(conn, r.fingerprint)  # as if built with these templates


def measure(size: int) -> tuple[float, float, float, int]:
    """(median seconds, median CPU seconds, peak MB, files written) of adding one issue to
    an archive of `size`."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        conn = store.connect(settings.db_path)
        try:
            with store.transaction(conn):
                for k in range(size):
                    store.save_archived_issue(conn, bench_issue(k))
            renderer = Renderer(settings)
            warm_feed_items(renderer, conn)
            site.publish_issue(settings, conn, bench_issue(size), renderer)  # warm the templates
            times, cpu, written = [], [], 0
            for k in range(size + 1, size + 1 + MEASURED):
                start, start_cpu = time.perf_counter(), time.process_time()
                written = len(site.publish_issue(settings, conn, bench_issue(k), renderer))
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            tracemalloc.start()
            site.publish_issue(settings, conn, bench_issue(size + 1 + MEASURED), renderer)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        finally:
            conn.close()
    return statistics.median(times), statistics.median(cpu), peak, written


def main() -> None:
    """Print the figures."""
    results = {}
    for size in SIZES:
        seconds, cpu, peak, written = measure(size)
        results[size] = (seconds, cpu, peak)
        print(f"add one issue to {size:5d} issues   {seconds * 1000:7.0f} ms"
              f" ({cpu * 1000:5.0f} ms CPU)  peak {peak:5.1f} MB (tracemalloc)"
              f"  {written} files written")
    with tempfile.TemporaryDirectory() as tmp:
        renderer = Renderer(make_settings(Path(tmp)))
        issue = bench_issue(0)
        renderer.issue_pages(issue)
        bare = best_time(lambda: renderer.issue_pages(issue), 5)
    print(f"baseline: the new issue's own pages alone {bare * 1000:5.0f} ms"
          f"  (adding it to 3,000 issues: {results[SIZES[-1]][0] / bare:.1f}x that)")
    (t0, c0, m0), (t1, c1, m1) = results[SIZES[0]], results[SIZES[-1]]
    print(f"{SIZES[-1]} / {SIZES[0]} issues: time {t1 / t0:.2f}x (CPU {c1 / c0:.2f}x),"
          f" peak memory {m1 / m0:.2f}x  (aim <= 2x)")
    # From 10 issues the feeds fill up to their last N items (tag feeds 50 papers), then stop.
    (t2, c2, m2) = results[SIZES[1]]
    print(f"{SIZES[-1]} / {SIZES[1]} issues: time {t1 / t2:.2f}x (CPU {c1 / c2:.2f}x),"
          f" peak memory {m1 / m2:.2f}x  (flat: O(1) in the archive's length)")


if __name__ == "__main__":
    main()

"""The daily job: a cold demo cycle vs. a rerun that finds every step done, and the catch-up
search after a long outage vs. walking every missed fire (figures, not asserts)."""

from __future__ import annotations

import contextlib
import io
import tempfile
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.interfaces import demo
from pipeline.services.timetable import crontab_trigger, fires_between, latest_fire
from tests.support import best_time


def main() -> None:
    """Print demo cycle times and peak memory, and catch-up search times, with baselines."""
    quiet = contextlib.redirect_stderr(io.StringIO())
    with tempfile.TemporaryDirectory() as tmp, quiet, contextlib.redirect_stdout(io.StringIO()):
        cold = best_time(lambda: demo.run_demo(Path(tmp) / "a"))
        warm = min(best_time(lambda: demo.run_demo(Path(tmp) / "a")) for _ in range(3))
        tracemalloc.start()
        demo.run_demo(Path(tmp) / "b")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(f"demo cycle (collect, draft, build, send to 3): {cold * 1e3:.0f} ms cold "
          f"(peak {peak / 2**20:.1f} MiB traced); rerun with every step done "
          f"{warm * 1e3:.0f} ms = {warm / cold:.2f}x")

    tz = ZoneInfo("Asia/Seoul")
    now = datetime(2025, 6, 2, 12, 0, tzinfo=tz)
    for expr, outage in (("30 10 * * 1-5", 365), ("*/5 * * * *", 30)):
        trigger = crontab_trigger(expr, tz, "collect")
        last = now - timedelta(days=outage)
        search = best_time(lambda: latest_fire(trigger, last, now))  # noqa: B023 - used at once
        walk = best_time(lambda: fires_between(trigger, last, now)[-1])  # noqa: B023
        print(f"catch-up after {outage} days down, cron {expr!r}: latest missed fire in "
              f"{search * 1e3:.1f} ms; walking every fire {walk * 1e3:.1f} ms "
              f"= {walk / search:.0f}x")

"""`make bench` figures for the atomic publish (pipeline.publish.versioned): a new version of a site of
a few thousand files with one issue's worth of files changed, beside the two baselines
measured in the same run: writing those files in place (the old, non-atomic way) and
copying the whole tree."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pipeline.core.files import write_if_changed
from pipeline.publish import versioned
from tests.support import best_time

SIZES = (1000, 3000, 6000)
CHANGED = 12  # an issue's pages, the index, the feeds and a few tag pages
PAGE = "x" * 20_000  # a typical page


def _site(root: Path, count: int) -> None:
    versioned.publish(root, ((f"issues/{k:05d}.html", PAGE + str(k)) for k in range(count)))


def _measure(base: Path, count: int) -> None:
    """Print the figures of a site of `count` files under `base`."""
    root = base / "site"
    _site(root, count)
    rounds = iter(range(1_000_000))

    def publish() -> None:
        n = next(rounds)
        versioned.publish(root, [(f"issues/{k:05d}.html", f"{PAGE}{k}-{n}")
                                 for k in range(CHANGED)])

    def in_place() -> None:
        n = next(rounds)
        for k in range(CHANGED):
            write_if_changed(base / "plain" / f"{k}.html", f"{PAGE}{k}-{n}")

    def copy_tree() -> None:
        target = base / "copy"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(versioned.current(root) or root, target)

    atomic = best_time(publish, 3)
    noop = best_time(lambda: versioned.publish(root, []), 3)
    plain = best_time(in_place, 3)
    copied = best_time(copy_tree, 2)
    print(f"{count:5d} files: atomic publish of {CHANGED} changed   {atomic * 1000:8.1f} ms"
          f"  ({atomic / plain:.0f}x in-place writes {plain * 1000:.1f} ms; "
          f"{copied / atomic:.1f}x faster than a full copy {copied * 1000:.0f} ms; "
          f"{atomic / count * 1e6:.0f} µs per file)")
    print(f"{count:5d} files: a publish that changes nothing     {noop * 1000:8.1f} ms"
          "  (compared first: nothing staged, site/ untouched)")


def main() -> None:
    """Print the figures."""
    for count in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            _measure(Path(tmp), count)

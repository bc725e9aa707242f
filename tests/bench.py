"""`make bench`: runs every tests/bench_*.py module's main(), which prints its figures."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    """Run each benchmark module in name order; a figure per line, ratios against baselines."""
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if not names:
        print("no benchmarks yet")
    for name in names:
        print(f"== {name[len('bench_'):]}")
        module = importlib.import_module(f"tests.{name}")
        module.main()
        sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Curator stages: parsing notes, building a draft, merging by title (figures, not asserts)."""

from __future__ import annotations

import tempfile
import tracemalloc
from contextlib import closing
from pathlib import Path

from pipeline import store
from pipeline.core.digest_format import decode_text
from pipeline.core.models import Candidate, Entry
from pipeline.curate.draft import build_offer, update_draft
from pipeline.curate.merge import Lookups, resolve_entries
from pipeline.curate.notes import parse_note
from tests.sample_day import DAY, add_candidates, paper
from tests.support import FIXTURES, best_time


def main() -> None:
    """Print notes/s, draft and merge times, and peak memory, with their baselines."""
    files = sorted((FIXTURES / "notes").rglob("*.md"))
    raw = [(p, p.read_bytes()) for p in files] * 30
    decode = best_time(lambda: [decode_text(b, p) for p, b in raw], 3)
    parse = best_time(lambda: [parse_note(decode_text(b, p), p) for p, b in raw], 3)
    print(f"notes: {len(raw) / parse:,.0f} notes/s ({len(raw)} parses); "
          f"{parse / decode:.0f}x the time of only decoding them")

    n = 5_000
    papers = [paper(f"2412.{i:05d}", f"Paper number {i} on topic {i % 97}") for i in range(n)]
    candidates = [Candidate(p, ("t",), float(i % 13)) for i, p in enumerate(papers)]
    offer = best_time(lambda: build_offer(candidates, {}, {}, 40), 3)
    update = best_time(lambda: update_draft(
        DAY, update_draft(DAY, None, build_offer(candidates, {}, {}, 40), (), {}).digest,
        build_offer(candidates, {}, {}, 80), set(), {}))
    print(f"draft: offer from {n:,} candidates {offer * 1e3:.1f} ms; "
          f"offer + update {update * 1e3:.1f} ms")

    with tempfile.TemporaryDirectory() as tmp, closing(store.connect(Path(tmp) / "d.db")) as conn:
        add_candidates(conn, DAY, [(p, (), 1.0) for p in papers])
        entries = [Entry(p.title.upper(), p.authors, "") for p in papers[::50]]
        lookups = Lookups(stored_ids=lambda ids: store.get_papers(conn, ids),
                          stored_title=lambda t: store.find_papers_by_title(conn, t))
        by_id = best_time(lambda: store.get_papers(conn, [p.arxiv_id for p in papers[::50]]), 3)
        tracemalloc.start()
        by_title = best_time(lambda: resolve_entries(entries, lookups), 3)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"merge: {len(entries)} entries by title among {n:,} stored papers "
              f"{by_title * 1e3:.1f} ms ({by_title / by_id:.0f}x one id look-up of them all); "
              f"peak {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

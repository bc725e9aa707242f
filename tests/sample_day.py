"""The bundled sample day 2024-12-05: its ten papers as collect would store them, and a
newsletter directory to run stages in."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

from pipeline import store
from pipeline.core.config import Settings, default_settings
from pipeline.core.latex import latex_to_text
from pipeline.core.models import Candidate, Paper
from pipeline.core.runtime import Runtime
from tests.support import FIXTURES, FakeClock

DAY = date(2024, 12, 5)
METADATA = FIXTURES / "digest" / "sample-day-2024-12-05.metadata.json"
REFERENCE = FIXTURES / "digest" / "2024-12-05.txt"

# The notes the reference issue was compiled from (data README).
REFERENCE_NOTES = (
    "241202 Free Process Rewards without Process Labels.md",
    "241203 Mind the Gap.md",
    "241203 Nemotron-CC.md",
    "241203 Taming Scalable Visual Tokenizer for Autoregressive Image Generation.md",
    "241204 Navigation World Models.md",
    "241204 PaliGemma 2.md",
    "241204 Perception Tokens Enhance Visual Reasoning in Multimodal Language Models.md",
    "241204 RedStone.md",
    "241204 The Matrix.md",
    "241204 TokenFlow.md",
)


def sample_papers() -> list[Paper]:
    """The ten papers, text converted from LaTeX as the collect stage stores it."""
    raw = json.loads(METADATA.read_text(encoding="utf-8"))["papers"]
    return [
        Paper(
            arxiv_id=p["arxiv_id"],
            title=latex_to_text(p["title"]),
            authors=tuple(p["authors"]),
            abstract=latex_to_text(p["abstract"]),
            categories=tuple(p["categories"] or ()),
            announce_type="new",
        )
        for p in raw
    ]


def paper(arxiv_id: str, title: str, authors: Iterable[str] = ("A. Author",),
          abstract: str = "An abstract.") -> Paper:
    """A made-up paper for tests that need more than the sample day."""
    return Paper(arxiv_id=arxiv_id, title=title, authors=tuple(authors), abstract=abstract,
                 announce_type="new")


def add_candidates(conn: sqlite3.Connection, day: date,
                   scored: Iterable[tuple[Paper, tuple[str, ...], float]]) -> None:
    """Store papers and the day's candidates, as `digest collect` does."""
    items = list(scored)
    with store.transaction(conn):
        for p, _tags, _score in items:
            store.upsert_paper(conn, p, day)
        store.save_candidates(conn, day, [Candidate(p, tags, score) for p, tags, score in items])
        store.save_day(conn, day, "collected", len(items), len(items))


def newsletter(tmp_path: Path, notes: Iterable[str] = (), **draft: int) -> Settings:
    """A newsletter directory with default settings and a copy of the named real notes."""
    settings = default_settings(tmp_path)
    if draft:
        from dataclasses import replace

        settings = replace(settings, draft=replace(settings.draft, **draft))
    settings.paths.notes.mkdir(parents=True)
    for name in notes:
        shutil.copy(FIXTURES / "notes" / "2412" / name, settings.paths.notes / name)
    return settings


def runtime(messages: list[str] | None = None, clock: FakeClock | None = None) -> Runtime:
    """A runtime that records what it says and never really sleeps."""
    clock = clock or FakeClock()
    sink = messages if messages is not None else []
    return Runtime(
        now=lambda: datetime(2024, 12, 5, 1, 30, tzinfo=UTC),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        echo=sink.append,
    )

"""`digest build`: merged issue -> store, site/ and previews (run.build end to end on disk)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from pipeline import run, store
from pipeline.config import Settings
from pipeline.models import Issue
from pipeline.runtime import Runtime
from tests.render_support import REFERENCE, REFERENCE_DAY, make_settings, reference_issue


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, list[str]]:
    settings = make_settings(tmp_path)
    settings.paths.drafts.mkdir(parents=True)
    shutil.copy(REFERENCE, run.draft_path(settings, REFERENCE_DAY))

    # Merging (resolving entries against arXiv) belongs to another stage; here the draft
    # is the reference issue as it stands.
    def merged(s: Settings, day: date, rt: Runtime) -> Issue:
        assert day == REFERENCE_DAY
        return reference_issue()

    monkeypatch.setattr(run, "merged_issue", merged)
    lines: list[str] = []
    run.build(settings, REFERENCE_DAY, Runtime(echo=lines.append))
    return settings, lines


def test_build_writes_site_previews_and_store(built: tuple[Settings, list[str]]) -> None:
    settings, lines = built
    site_dir, outbox = settings.paths.site, settings.paths.outbox / "2024-12-05"
    for name in ("index.html", "issues/2024-12-05.html", "issues/2024-12-05.ko.html",
                 "issues/2024-12-05.en.html", "feed.xml", "tags/reward-model.xml"):
        assert (site_dir / name).is_file(), name
    for variant in ("ko", "en", "all"):
        assert (outbox / f"preview.{variant}.html").is_file()
        assert (outbox / f"preview.{variant}.eml").is_file()
    conn = store.connect(settings.db_path)
    try:
        row = store.get_issue(conn, REFERENCE_DAY)
        assert row["state"] == "built"
        assert row["draft_sha"] == run.file_sha(run.draft_path(settings, REFERENCE_DAY))
        variants = store.load_built_issue(conn, REFERENCE_DAY)
        assert [v.variant for v in variants] == ["all", "en", "ko"]
    finally:
        conn.close()
    text = "\n".join(lines)
    assert str(site_dir / "index.html") in text
    assert str(outbox / "preview.all.html") in text


def test_rebuild_keeps_hash_files_and_approval(built: tuple[Settings, list[str]]) -> None:
    settings, _ = built
    conn = store.connect(settings.db_path)
    try:
        first = store.get_issue(conn, REFERENCE_DAY)["built_hash"]
        store.approve_issue(conn, REFERENCE_DAY, first)
    finally:
        conn.close()
    files = {p: p.read_bytes() for p in settings.paths.site.rglob("*") if p.is_file()}
    lines: list[str] = []
    run.build(settings, REFERENCE_DAY, Runtime(echo=lines.append))
    assert "(0 files changed)" in "\n".join(lines)
    assert {p: p.read_bytes() for p in settings.paths.site.rglob("*") if p.is_file()} == files
    conn = store.connect(settings.db_path)
    try:
        row = store.get_issue(conn, REFERENCE_DAY)
        assert row["built_hash"] == first and row["state"] == "approved"
    finally:
        conn.close()

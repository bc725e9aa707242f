"""`digest build`: merged issue -> store, site/ and previews (services.build end to end on disk)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.errors import ApprovalError, FormatError, InputError
from pipeline.interfaces import present
from pipeline.publish import site
from pipeline.services import building
from tests.render_support import REFERENCE, REFERENCE_DAY
from tests.sample_day import add_candidates, newsletter, runtime, sample_papers
from tests.support import RecordingServer


@pytest.fixture
def built(tmp_path: Path, http_server: RecordingServer) -> tuple[Settings, list[str]]:
    """The sample day collected, the reference issue as the draft, then `digest build`
    (the merge resolves every entry by title among the stored papers: no API call)."""
    settings = newsletter(tmp_path)
    settings = replace(settings, arxiv=replace(settings.arxiv, api_url=http_server.url + "/api/query"))
    settings.paths.drafts.mkdir(parents=True)
    shutil.copy(REFERENCE, services.draft_path(settings, REFERENCE_DAY))
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, REFERENCE_DAY, [(p, ("reward-model",), 1.0) for p in sample_papers()])
    lines: list[str] = []
    lines += present.lines(services.build(settings, REFERENCE_DAY, runtime(lines)))
    assert http_server.count() == 0
    return settings, lines


def test_build_links_every_reference_entry_to_arxiv(built: tuple[Settings, list[str]]) -> None:
    settings, _ = built
    page = (site.preview_site_root(settings, REFERENCE_DAY) / "issues/2024-12-05.html").read_text()
    doc = lxml.html.fromstring(page)
    links = [h.find("a").get("href") for h in doc.find_class("title")]
    assert sorted(links) == sorted(p.abs_url for p in sample_papers())


def test_build_writes_site_previews_and_store(built: tuple[Settings, list[str]]) -> None:
    """The build renders the site as it will be into the private preview; site/ itself
    gets nothing until the issue is approved (tests/test_lifecycle.py)."""
    settings, lines = built
    outbox_site = site.preview_site_root(settings, REFERENCE_DAY)
    outbox = settings.paths.outbox / "2024-12-05"
    assert not settings.paths.site.exists()
    for name in ("index.html", "issues/2024-12-05.html", "issues/2024-12-05.ko.html",
                 "issues/2024-12-05.en.html", "feed.xml", "tags/reward-model.xml"):
        assert (outbox_site / name).is_file(), name
    for variant in ("ko", "en", "all"):
        assert (outbox / f"preview.{variant}.html").is_file()
        assert (outbox / f"preview.{variant}.eml").is_file()
    conn = store.connect(settings.db_path)
    try:
        row = store.get_issue(conn, REFERENCE_DAY)
        assert row.state == "built"
        assert row.draft_sha == services.file_sha(services.draft_path(settings, REFERENCE_DAY))
        variants = store.load_built_issue(conn, REFERENCE_DAY)
        assert [v.variant for v in variants] == ["all", "en", "ko"]
    finally:
        conn.close()
    text = "\n".join(lines)
    assert str(outbox_site / "index.html") in text
    assert str(outbox / "preview.all.html") in text
    assert "compact layout" not in text  # the reference fits the full layout


@pytest.mark.slow
def test_build_says_when_and_why_it_switched_to_the_compact_layout(
    tmp_path: Path, http_server: RecordingServer
) -> None:
    settings = newsletter(tmp_path)
    settings = replace(
        settings,
        arxiv=replace(settings.arxiv, api_url=http_server.url + "/api/query"),
        delivery=replace(settings.delivery, max_html_kb=40),
    )
    settings.paths.drafts.mkdir(parents=True)
    shutil.copy(REFERENCE, services.draft_path(settings, REFERENCE_DAY))
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, REFERENCE_DAY, [(p, ("reward-model",), 1.0) for p in sample_papers()])
    lines: list[str] = []
    lines += present.lines(services.build(settings, REFERENCE_DAY, runtime(lines)))
    [note] = [line for line in lines if line.startswith("compact layout: ")]
    for variant in ("ko", "en", "all"):
        assert re.search(rf"\b{variant}: the full layout is \d+ KB, over "
                         r"delivery.max_html_kb = 40; abstracts (cut to 280 characters|left out)",
                         note), note
    preview = (settings.paths.outbox / "2024-12-05" / "preview.all.html").read_text()
    doc = lxml.html.fromstring(preview)
    assert doc.find_class("notice")
    # the contents list names every paper: those past the ones shown link to the web version
    shown = len(doc.find_class("title"))
    hrefs = [a.get("href") for a in doc.find_class("toc-link")]
    assert len(hrefs) == 10 and all(h.startswith("#p-") for h in hrefs[:shown])
    assert all(h.startswith("https://digest.example.org/issues/2024-12-05.html#p-")
               for h in hrefs[shown:])
    assert len(doc.find_class("links")) == shown  # and every shown paper's arXiv/PDF links
    assert len(preview.encode("utf-8")) <= 40 * 1024


@pytest.mark.slow
def test_rebuild_keeps_hash_files_and_approval(built: tuple[Settings, list[str]]) -> None:
    settings, _ = built
    conn = store.connect(settings.db_path)
    try:
        first = store.get_issue(conn, REFERENCE_DAY).built_hash
    finally:
        conn.close()
    services.approve(settings, REFERENCE_DAY, runtime())
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns)
             for p in settings.paths.site.rglob("*") if p.is_file()}
    lines: list[str] = []
    lines += present.lines(services.build(settings, REFERENCE_DAY, runtime(lines)))
    assert "(0 files will change in" in "\n".join(lines)
    services.approve(settings, REFERENCE_DAY, runtime())  # nothing to publish again
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns)
            for p in settings.paths.site.rglob("*") if p.is_file()} == files
    conn = store.connect(settings.db_path)
    try:
        row = store.get_issue(conn, REFERENCE_DAY)
        assert row.built_hash == first and row.state == "published"
        assert row.approved_hash == first == row.published_hash
    finally:
        conn.close()


def test_build_records_the_sha_of_the_draft_it_rendered(
    tmp_path: Path, http_server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A draft saved again while the build runs (here: while it warns about an entry arXiv
    does not know) is not taken as built, so approving cannot pass text the issue lacks."""
    settings = newsletter(tmp_path)
    settings = replace(settings, arxiv=replace(settings.arxiv, api_url=http_server.url + "/api/query",
                                               retries=0))
    settings.paths.drafts.mkdir(parents=True)
    path = services.draft_path(settings, REFERENCE_DAY)
    built_text = REFERENCE.read_text(encoding="utf-8") + (
        "\nNot Yet Announced\n(Nobody)\narXiv:2412.99999\nAn abstract.\n#reward-model\n"
    )
    path.write_text(built_text, encoding="utf-8")
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, REFERENCE_DAY, [(p, ("reward-model",), 1.0) for p in sample_papers()])
    original = building.merged_issue

    def merge_then_edit(*args: Any, **kwargs: Any) -> building.Merged:
        merged = original(*args, **kwargs)
        if merged.warnings and path.read_text(encoding="utf-8") == built_text:
            path.write_text(built_text.replace("An abstract.", "Edited meanwhile."), "utf-8")
        return merged

    monkeypatch.setattr(building, "merged_issue", merge_then_edit)
    services.build(settings, REFERENCE_DAY, runtime())
    assert "Edited meanwhile." in path.read_text(encoding="utf-8")  # the edit did happen
    with closing(store.connect(settings.db_path)) as conn:
        row = store.get_issue(conn, REFERENCE_DAY)
    assert row.draft_sha == hashlib.sha256(built_text.encode("utf-8")).hexdigest()
    with pytest.raises(ApprovalError, match="changed since the issue was built"):
        services.approve(settings, REFERENCE_DAY, runtime())


def test_build_refuses_a_draft_that_check_calls_wrong(tmp_path: Path) -> None:
    """`digest check` exits 2 on the same paper twice, yet `digest build` published it (two
    copies, two elements with one id) and it could be approved and sent."""
    settings = newsletter(tmp_path)
    settings.paths.drafts.mkdir(parents=True)
    path = services.draft_path(settings, REFERENCE_DAY)
    lines = REFERENCE.read_text(encoding="utf-8").split("\n")
    first_entry = lines[1 : lines.index(next(x for x in lines if x.startswith("#"))) + 1]
    path.write_text("\n".join(lines + first_entry), encoding="utf-8")
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, REFERENCE_DAY, [(p, ("reward-model",), 1.0) for p in sample_papers()])
    with pytest.raises(FormatError, match=r"2024-12-05.txt:\d+: the same paper twice: "
                       r".+ is also the entry at line 2 \(`digest check ") as info:
        services.build(settings, REFERENCE_DAY, runtime())
    assert info.value.exit_code == 2
    assert not settings.paths.site.exists()
    with closing(store.connect(settings.db_path)) as conn:
        assert store.get_issue(conn, REFERENCE_DAY) is None


@pytest.mark.slow
def test_site_files_get_the_usual_permissions(built: tuple[Settings, list[str]]) -> None:
    """Every file was written through a mkstemp temp file, so it kept its 0600 mode: site/
    copied to a web server (or served by one running as another user) was unreadable."""
    settings, _ = built
    services.approve(settings, REFERENCE_DAY, runtime())
    umask = os.umask(0)
    os.umask(umask)
    for path in (settings.paths.site / "index.html", settings.paths.site / "feed.xml",
                 settings.paths.site / "issues/2024-12-05.html"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    page = settings.paths.site / "issues/2024-12-05.html"
    page.chmod(0o640)  # a mode chosen by hand is kept when the file is published again
    before = page.read_text()
    draft = services.draft_path(settings, REFERENCE_DAY)
    lines = draft.read_text("utf-8").split("\n")
    lines[3] += " (edited)"  # the first entry's abstract: the curator's wins over arXiv's
    draft.write_text("\n".join(lines), "utf-8")
    services.build(settings, REFERENCE_DAY, runtime())
    services.approve(settings, REFERENCE_DAY, runtime())
    assert stat.S_IMODE(page.stat().st_mode) == 0o640 and page.read_text() != before


def test_build_warns_of_a_missing_translation_and_still_builds(tmp_path: Path) -> None:
    """Korean without English leaves the en variant without commentary for that entry: the
    build says so and goes on (`digest check` calls it an error for the curator)."""
    settings = newsletter(tmp_path)
    settings.paths.drafts.mkdir(parents=True)
    lines = REFERENCE.read_text(encoding="utf-8").split("\n")
    english = lines[5]  # the first entry's English paragraph
    assert english.startswith("This study shows")
    services.draft_path(settings, REFERENCE_DAY).write_text(
        "\n".join(lines[:5] + lines[6:]), encoding="utf-8")
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, REFERENCE_DAY, [(p, ("reward-model",), 1.0) for p in sample_papers()])
    messages = present.lines(services.build(settings, REFERENCE_DAY, runtime()))
    assert any(m.startswith("warning: 2024-12-05.txt:2: ") and "English" in m for m in messages)
    with closing(store.connect(settings.db_path)) as conn:
        assert store.get_issue(conn, REFERENCE_DAY).state == "built"


def test_build_refuses_an_empty_draft(tmp_path: Path) -> None:
    """A draft whose every entry was deleted (or a day with no notes and no candidates)
    would publish and send an empty issue."""
    settings = newsletter(tmp_path)
    settings.paths.drafts.mkdir(parents=True)
    services.draft_path(settings, REFERENCE_DAY).write_text("2024년 12월 5일\n", encoding="utf-8")
    with pytest.raises(InputError, match="no entries") as info:
        services.build(settings, REFERENCE_DAY, runtime())
    assert info.value.exit_code == 2
    assert not settings.paths.site.exists()

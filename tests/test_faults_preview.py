"""Issue #22 item 12: the first issue's site preview (nothing published yet) shows only the
current build, not pages left by an earlier build of it (SQLite and files on disk)."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from pathlib import Path

from pipeline import store
from pipeline.publish import site
from tests.render_support import make_settings, reference_issue


def test_a_first_issue_preview_drops_pages_of_an_earlier_build(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    issue = reference_issue()
    first = replace(issue, entries=tuple(replace(e, tags=(*e.tags, "only-in-first"))
                                         for e in issue.entries))
    with closing(store.connect(settings.db_path)) as conn:
        root, _ = site.preview_site(settings, conn, first)
        assert (root / "tags" / "only-in-first.html").is_file()
        root, _ = site.preview_site(settings, conn, issue)  # the tag was taken out again
        assert not (root / "tags" / "only-in-first.html").exists()
        assert (root / "index.html").is_file()
    assert not settings.paths.site.exists()  # site/ itself untouched

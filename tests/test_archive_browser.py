"""The archive's pages in headless Chromium: readable at 600/375 px in light and dark, and a
click on an index title lands on that paper in the issue page. Screenshots go to
tests/artifacts/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.core.config import Settings
from pipeline.core.models import Issue
from tests.test_archive import newsletter, publish, small_issue
from tests.test_render_browser import ARTIFACTS, CONTRAST_JS, browser  # noqa: F401 (fixture)

PAGES = ("index.html", "index.en.html", "archive/page-1.html", "tags/index.html",
         "tags/reward-model.html", "issues/2024-01-03.en.html")


@pytest.fixture(scope="module")
def archive_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[Issue]]:
    settings = newsletter(tmp_path_factory.mktemp("archive-browser"))
    issues = [small_issue(k) for k in range(7)]
    publish(settings, issues)
    return settings, issues


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("width", [600, 375])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_archive_pages_are_readable(
    browser: Any, archive_site: tuple[Settings, list[Issue]], name: str, width: int,  # noqa: F811
    scheme: str,
) -> None:
    settings, _ = archive_site
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page.goto((settings.paths.site / name).as_uri())
        ARTIFACTS.mkdir(exist_ok=True)
        shot = name.replace("/", "_").removesuffix(".html")
        page.screenshot(path=str(ARTIFACTS / f"archive-{shot}-{width}-{scheme}.png"),
                        full_page=True)
        scroll = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll[0] <= scroll[1], f"horizontal scrolling: {scroll}"
        checks = page.evaluate(CONTRAST_JS)
        assert len(checks) > 5
        low = [c for c in checks if c["ratio"] < 4.5]
        assert not low, low[:5]
    finally:
        page.close()


@pytest.mark.browser
def test_clicking_an_index_title_lands_on_that_paper(
    browser: Any, archive_site: tuple[Settings, list[Issue]],  # noqa: F811
) -> None:
    settings, issues = archive_site
    page = browser.new_page(viewport={"width": 600, "height": 700})
    try:
        page.goto((settings.paths.site / "index.en.html").as_uri())
        title = issues[5].entries[1].title  # the index holds issues 6 and 7 (5 per page)
        page.get_by_role("link", name=title, exact=True).click()
        page.wait_for_load_state()
        assert page.url.endswith(".en.html#" + page.evaluate("location.hash.slice(1)"))
        landed = page.evaluate(
            "() => { const t = document.querySelector(':target');"
            " const r = t.getBoundingClientRect();"
            " return {title: t.querySelector('h2').textContent.trim(), top: r.top}; }"
        )
        assert landed["title"] == title and 0 <= landed["top"] < 50
        page.get_by_role("link", name="Next issue", exact=False).click()
        page.wait_for_load_state()
        assert page.url.endswith(f"issues/{issues[6].date}.en.html")
    finally:
        page.close()


def test_artifacts_folder_is_ignored() -> None:
    ignored = (Path(__file__).parent.parent / ".gitignore").read_text()
    assert "artifacts" in ignored

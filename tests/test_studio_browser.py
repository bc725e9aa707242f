"""The curator's studio in headless Chromium, on a real waitress server and a real newsletter
directory (the sample day collected from the recorded feed, drafted from the real notes).

Skips only when Chromium is missing and DIGEST_REQUIRE_BROWSER is unset (CI sets it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import services
from pipeline.core.config import Settings
from pipeline.core.digest_format import read_digest
from pipeline.interfaces import cli
from tests.studio_support import DAY, collected_day, serving
from tests.test_render_browser import ARTIFACTS, CHROMIUM_ARGS, CONTRAST_JS

pytestmark = pytest.mark.browser
WAIT = 2000  # ms: a save shows in the preview within this


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("DIGEST_REQUIRE_BROWSER"):
            pytest.fail("DIGEST_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def day(tmp_path: Path) -> Settings:
    return collected_day(tmp_path / "news")


def shown_entries(page: Any) -> list[dict[str, Any]]:
    """What the day view shows for each entry: title, commentary boxes and tags."""
    return list(page.evaluate(
        """() => [...document.querySelectorAll('article.entry')].map(a => ({
             title: a.querySelector('h2.title').textContent.trim(),
             ko: a.querySelector('textarea[name=ko]').value,
             en: a.querySelector('textarea[name=en]').value,
             tags: a.querySelector('input[name=tags]').value}))"""
    ))


def on_disk(settings: Settings) -> list[dict[str, Any]]:
    parsed = read_digest(services.draft_path(settings, DAY))
    return [{"title": e.title, "ko": "\n".join(e.notes_ko), "en": "\n".join(e.notes_en),
             "tags": " ".join("#" + t for t in e.tags)} for e in parsed.entries]


def test_the_curators_day_add_write_preview_reorder_remove_undo_approve(
    browser: Any, day: Settings
) -> None:
    from playwright.sync_api import expect

    settings = day
    with serving(settings) as studio:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            assert page.goto(studio.url + "/").status == 403  # no token, no studio
            page.goto(studio.login_url)
            assert page.url == studio.url + "/"  # the token is gone from the address bar
            before = shown_entries(page)
            assert before == on_disk(settings) and len(before) == 8

            # Add a candidate: the best one that is not in the issue.
            page.goto(studio.url + "/candidates")
            first = page.locator("article.candidate").first
            title = first.locator("h2.title").inner_text().strip()
            assert title not in [e["title"] for e in before]
            first.locator("button[data-action=add]").click()
            page.wait_for_url(studio.url + "/#e8")
            card = page.locator("article.entry").nth(8)
            expect(card.locator("h2.title")).to_have_text(title)

            # Write Korean and English commentary; both show in the preview, no reload.
            ko = "스튜디오에서 쓴 한국어 논평입니다."
            en = "Commentary written in the studio, in English."
            card.locator("textarea[name=ko]").fill(ko)
            card.locator("textarea[name=en]").fill(en)
            tags_field = card.locator("input[name=tags]")
            tags_field.fill("#vq #w")  # completion offers each configured tag after the first
            offered = page.evaluate(
                "[...document.querySelectorAll('#tag-options option')].map(o => o.value)")
            assert "#vq #world-models" in offered and "#vq #vq" not in offered
            tags_field.fill("#world-models")
            page.evaluate("window.notReloaded = true")
            card.locator("button[data-action=save]").click()
            frame = page.frame_locator("#preview")
            expect(frame.get_by_text(ko)).to_be_visible(timeout=WAIT)
            expect(frame.get_by_text(en)).to_be_visible(timeout=WAIT)
            expect(card.locator("[data-role=msg]")).to_have_text("saved", timeout=WAIT)
            assert page.evaluate("window.notReloaded") is True
            expect(page.locator("#changes")).to_contain_text("first approval: 9 entries")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "studio-day.png"), full_page=False)

            # Reorder: the new entry moves up one place.
            card.locator("button[data-action=up]").click()
            page.wait_for_load_state()
            titles = [e["title"] for e in shown_entries(page)]
            assert titles.index(title) == 7

            # Remove the first entry, then undo.
            first_title = titles[0]
            page.locator("article.entry").first.locator("button[data-action=remove]").click()
            page.wait_for_load_state()
            assert first_title not in [e["title"] for e in shown_entries(page)]
            page.goto(studio.url + "/candidates")
            expect(page.locator("article.candidate h2.title", has_text=first_title)).to_have_count(1)
            page.goto(studio.url + "/")
            page.locator("#undo").click()
            page.wait_for_load_state()
            assert [e["title"] for e in shown_entries(page)] == titles

            # Approve: builds (store only: every id was collected) and records the approval.
            page.locator("#approve").click()
            page.wait_for_load_state()
            expect(page.locator("#status")).to_contain_text("approval: current")
            expect(page.locator("#changes")).to_contain_text("no change to the entries")
            shown = shown_entries(page)
            page.screenshot(path=str(ARTIFACTS / "studio-approved.png"), full_page=False)
        finally:
            page.close()

    # The draft on disk parses (`digest check`) to exactly the entries shown.
    assert on_disk(settings) == shown
    assert shown[7]["ko"] == ko and shown[7]["en"] == en and shown[7]["tags"] == "#world-models"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--config", str(settings.root / "config" / "digest.toml"), "check",
                  str(services.draft_path(settings, DAY))])
    assert exit_info.value.code == 0


def test_an_edit_saved_in_a_text_editor_meanwhile_is_a_conflict_not_a_lost_edit(
    browser: Any, day: Settings
) -> None:
    from playwright.sync_api import expect

    settings = day
    path = services.draft_path(settings, DAY)
    with serving(settings) as studio:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(studio.login_url)
            card = page.locator("article.entry").first
            card.locator("textarea[name=en]").fill("My edit in the studio.")
            # Meanwhile the curator's text editor saves the file.
            text = path.read_text("utf-8").replace("#reward-model", "#reward-model #rl", 1)
            path.write_text(text, "utf-8")
            card.locator("button[data-action=save]").click()
            expect(page.locator("#conflict")).to_be_visible(timeout=WAIT)
            expect(page.locator("#disk-entry")).to_contain_text("Tags: #reward-model #rl")
            expect(page.locator("#disk")).to_contain_text("#reward-model #rl")
            expect(page.locator("#mine")).to_have_value(
                __import__("re").compile("My edit in the studio"))
            assert path.read_text("utf-8") == text  # the editor's save stays, untouched
            # The text editor's version is what the studio shows next.
            page.goto(studio.url + "/")
            assert shown_entries(page)[0]["tags"] == "#reward-model #rl"
        finally:
            page.close()


def test_every_action_works_with_javascript_off(browser: Any, day: Settings) -> None:
    from playwright.sync_api import expect

    settings = day
    path = services.draft_path(settings, DAY)
    with serving(settings) as studio:
        context = browser.new_context(java_script_enabled=False,
                                      viewport={"width": 1200, "height": 900})
        page = context.new_page()
        try:
            page.goto(studio.login_url)
            card = page.locator("article.entry").nth(1)
            # Text the format cannot hold is refused with the reason, and kept in the box.
            before = path.read_bytes()
            card.locator("textarea[name=en]").fill("First line.\n#looks-like-tags")
            card.locator("button[data-action=save]").click()
            card = page.locator("article.entry").nth(1)
            expect(card.locator("[data-role=msg]")).to_contain_text("#tags line")
            expect(card.locator("textarea[name=en]")).to_have_value("First line.\n#looks-like-tags")
            assert path.read_bytes() == before

            card.locator("textarea[name=en]").fill("Saved without JavaScript.")
            card.locator("button[data-action=save]").click()
            page.wait_for_url(studio.url + "/#e1")
            frame = page.frame_locator("#preview")
            expect(frame.get_by_text("Saved without JavaScript.")).to_be_visible(timeout=WAIT)
            assert "Saved without JavaScript." in path.read_text("utf-8")

            page.locator("article.entry").nth(1).locator("button[data-action=down]").click()
            titles = [t.strip() for t in page.locator("article.entry h2.title").all_inner_texts()]
            assert titles == [e["title"] for e in on_disk(settings)]
        finally:
            context.close()


@pytest.mark.parametrize("width", [1400, 375])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_studio_reads_well_at_every_width_light_and_dark(
    browser: Any, day: Settings, width: int, scheme: str
) -> None:
    from playwright.sync_api import expect

    with serving(day) as studio:
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        try:
            page.goto(studio.login_url)
            for name, path in (("day", "/"), ("candidates", "/candidates")):
                page.goto(studio.url + path)
                expect(page.locator("nav.nav")).to_be_visible()
                ARTIFACTS.mkdir(exist_ok=True)
                shot = f"studio-{name}-{width}-{scheme}.png"
                page.screenshot(path=str(ARTIFACTS / shot), full_page=False)
                scroll = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
                assert scroll[0] <= scroll[1], f"{name}: horizontal scrolling {scroll}"
                checks = page.evaluate(CONTRAST_JS)
                low = [c for c in checks if c["ratio"] < 4.5]
                assert len(checks) > 20 and not low, (name, low[:5])
        finally:
            page.close()

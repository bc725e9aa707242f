"""The curator's studio in headless Chromium, on a real waitress server and a real newsletter
directory (the sample day collected from the recorded feed, drafted from the real notes).

Skips only when Chromium is missing and DIGEST_REQUIRE_BROWSER is unset (CI sets it).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.digest_format import read_digest
from pipeline.interfaces import cli
from tests.deliver_support import PASSWORD, add_subscribers, make_cert, smtp_server, smtp_tables
from tests.studio_support import DAY, collected_day, serving
from tests.support import edit_newsletter
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


def sending_to(settings: Settings, port: int) -> Settings:
    """The newsletter sending through SMTP to the sink on `port` (STARTTLS, AUTH as USER)."""
    return edit_newsletter(settings.root / "config" / "digest.toml",
                           delivery={"transport": "smtp"}, smtp=smtp_tables(port=port)["smtp"])


def drag(page: Any, handle: Any, target: Any) -> None:
    """Drag `handle` onto `target` with the mouse, as a curator does (both in view)."""
    page.evaluate("document.getElementById('e0').scrollIntoView()")
    h, t = handle.bounding_box(), target.bounding_box()
    page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
    page.mouse.down()
    page.mouse.move(h["x"] + 20, h["y"] + 20, steps=5)
    page.mouse.move(t["x"] + 20, t["y"] + t["height"] / 2, steps=10)
    page.mouse.up()


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


def test_the_curators_day_triage_write_reorder_reload_approve_send(
    browser: Any, day: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Triage to three picks by keyboard, write ko+en commentary (saved as typed), reorder
    by "move to" and by drag, a reload in the middle of typing, remove and undo in place,
    approve through its confirmation, send to the SMTP sink: never a full reload for an
    action, and the draft on disk is what the page shows."""
    from playwright.sync_api import expect

    (day.root / "tls").mkdir()
    cert, key = make_cert(day.root / "tls")
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test server's certificate
    with smtp_server(cert, key) as (sink, port), serving(settings := sending_to(day, port)) \
            as studio:
        add_subscribers(settings, 3)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("dialog", lambda dialog: dialog.accept())
        try:
            assert page.goto(studio.url + "/").status == 403  # no token, no studio
            page.goto(studio.login_url)
            assert page.url == studio.url + "/"  # the token is gone from the address bar
            before = shown_entries(page)
            assert before == on_disk(settings) and len(before) == 8

            # Triage by keyboard: j to the first, p picks; j j skips one, d dismisses; p, p.
            page.goto(studio.url + "/candidates")
            page.evaluate("window.notReloaded = true")
            cards = page.locator("article.candidate")
            ids = [cards.nth(n).get_attribute("data-id") for n in range(5)]
            titles = [cards.nth(n).locator("h2.title").inner_text().strip() for n in range(5)]
            page.keyboard.press("j")
            page.keyboard.press("p")
            expect(cards.nth(0)).to_have_attribute("data-state", "picked", timeout=WAIT)
            expect(cards.nth(0).locator("[data-role=msg]")).to_contain_text("added")
            expect(cards.nth(1)).to_have_class(re.compile("cursor"))  # on to the next
            page.keyboard.press("d")
            expect(cards.nth(1)).to_have_attribute("data-state", "dismissed", timeout=WAIT)
            page.keyboard.press("o")
            expect(cards.nth(2).locator("details.abstract")).to_have_attribute("open", "")
            page.keyboard.press("p")
            expect(cards.nth(2)).to_have_attribute("data-state", "picked", timeout=WAIT)
            page.keyboard.press("p")
            expect(cards.nth(3)).to_have_attribute("data-state", "picked", timeout=WAIT)
            assert page.evaluate("window.notReloaded") is True
            picked = [titles[0], titles[2], titles[3]]
            assert [e["title"] for e in on_disk(settings)][8:] == picked
            with closing(store.connect(settings.db_path)) as conn:
                states = store.triage_states(conn, DAY)
            assert [states.get(i) for i in ids[:4]] == ["picked", "dismissed", "picked", "picked"]
            assert states.get(ids[4]) == "seen"  # shown on the page

            # Write Korean and English commentary: saved as typed, shown in the preview.
            page.goto(studio.url + "/")
            page.evaluate("window.notReloaded = true")
            card = page.locator("article.entry").nth(8)
            expect(card.locator("h2.title")).to_have_text(picked[0])
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
            expect(card.locator("[data-role=msg]")).to_have_text("saved", timeout=WAIT)
            frame = page.frame_locator("#preview")
            expect(frame.get_by_text(ko)).to_be_visible(timeout=WAIT)
            expect(frame.get_by_text(en)).to_be_visible(timeout=WAIT)
            assert on_disk(settings)[8]["ko"] == ko and on_disk(settings)[8]["en"] == en
            for n in (9, 10):  # the other two picks get their commentary too
                other = page.locator("article.entry").nth(n)
                other.locator("textarea[name=ko]").fill(f"{n}번째 논문에 대한 논평.")
                other.locator("textarea[name=en]").fill(f"Commentary on paper {n}.")
                expect(other.locator("[data-role=msg]")).to_have_text("saved", timeout=WAIT)

            # The plain-text tab shows the variant chosen before it.
            page.locator(".tabs a.tab[data-variant=en]").click()
            page.locator("#text-tab").click()
            expect(page.locator("#preview")).to_have_attribute("src", re.compile(r"/preview/en\.txt"))

            # Reorder: "move to" 1, then drag the new first entry below the second.
            card.locator("form.move-to input[name=to]").fill("1")
            card.locator("button[data-action=move-to]").click()
            expect(page.locator("article.entry").first.locator("h2.title")).to_have_text(
                picked[0], timeout=WAIT)
            moved = page.locator("article.entry").first
            expect(moved.locator("[data-role=placed]")).to_contain_text("moved to 1")
            second = page.locator("article.entry").nth(1).locator("h2.title").inner_text()
            drag(page, page.locator("article.entry").first.locator(".handle"),
                 page.locator("article.entry").nth(1).locator("h2.title"))
            expect(page.locator("article.entry").nth(1).locator("h2.title")).to_have_text(
                picked[0], timeout=WAIT)
            assert [e["title"] for e in on_disk(settings)][:2] == [second.strip(), picked[0]]
            assert page.evaluate("window.notReloaded") is True

            # A reload in the middle of typing loses nothing.
            typing = page.locator("article.entry").nth(9).locator("textarea[name=en]")
            typing.fill("Commentary on paper 9, typed just before a reload.")
            page.reload()
            expect(page.locator("article.entry").nth(9).locator("textarea[name=en]")).to_have_value(
                "Commentary on paper 9, typed just before a reload.")
            expect(page.locator("article.entry").nth(9).locator("[data-role=msg]")).to_have_text(
                re.compile("saved"), timeout=WAIT)
            assert "typed just before a reload." in services.draft_path(settings, DAY).read_text("utf-8")

            # Remove two in place (one by its button, one more: bulk), then undo both.
            page.evaluate("window.notReloaded = true")
            shown = [e["title"] for e in shown_entries(page)]
            page.locator("article.entry").nth(2).locator("button[data-action=remove]").click()
            expect(page.locator("article.entry")).to_have_count(len(shown) - 1, timeout=WAIT)
            expect(page.locator("#entries .placed .msg").first).to_contain_text("removed")
            page.locator("article.entry").nth(3).locator("input[name=keys]").check()
            page.locator("button[data-action=bulk-remove]").click()
            expect(page.locator("article.entry")).to_have_count(len(shown) - 2, timeout=WAIT)
            page.locator("#undo").click()
            expect(page.locator("article.entry")).to_have_count(len(shown) - 1, timeout=WAIT)
            page.locator("#undo").click()
            expect(page.locator("article.entry")).to_have_count(len(shown), timeout=WAIT)
            assert [e["title"] for e in shown_entries(page)] == shown
            assert page.evaluate("window.notReloaded") is True

            # Approve: a confirmation lists what will be published, then it is.
            page.locator("#approve").click()
            expect(page.locator("#confirm")).to_contain_text("publishes it")
            expect(page.locator(".confirm-list li")).to_have_count(len(shown))
            page.locator("#confirm-approve").click()
            expect(page.locator("#status")).to_contain_text("approval: current")
            expect(page.locator("#approve-msg")).to_contain_text("approved and published")
            shown_after = shown_entries(page)

            # Send now: to every subscriber through the SMTP server, beside the button.
            page.locator("#send-confirm").check()
            page.locator("#send-now").click()
            expect(page.locator("#send-msg")).to_contain_text("sent", timeout=15000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "studio-sent.png"), full_page=False)
        finally:
            page.close()
        assert sorted(r for m in sink.messages for r in m.recipients) == sorted(
            f"reader{i:05d}@example.org" for i in range(3))

    # The draft on disk parses (`digest check`) to exactly the entries shown.
    assert on_disk(settings) == shown_after
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--config", str(settings.root / "config" / "digest.toml"), "check",
                  str(services.draft_path(settings, DAY))])
    assert exit_info.value.code == 0


def test_an_edit_saved_in_a_text_editor_meanwhile_is_a_conflict_for_that_entry_only(
    browser: Any, day: Settings
) -> None:
    from playwright.sync_api import expect

    settings = day
    path = services.draft_path(settings, DAY)
    with serving(settings) as studio:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(studio.login_url)
            # Meanwhile the curator's text editor saves the file: entry 1's tags change.
            text = path.read_text("utf-8").replace("#reward-model", "#reward-model #rl", 1)
            path.write_text(text, "utf-8")
            # Another entry's edit is saved: the conflict is per entry, not per file.
            other = page.locator("article.entry").nth(1)
            other.locator("textarea[name=en]").fill("An edit of another entry.")
            expect(other.locator("[data-role=msg]")).to_have_text("saved", timeout=WAIT)
            now = path.read_text("utf-8")
            assert "#reward-model #rl" in now and "An edit of another entry." in now

            card = page.locator("article.entry").first
            card.locator("textarea[name=en]").fill("My edit in the studio.")
            expect(card.locator("[data-role=msg]")).to_contain_text("changed on disk",
                                                                      timeout=WAIT)
            assert path.read_text("utf-8") == now  # the editor's save stays, untouched
            card.locator("[data-role=msg] a").click()
            expect(page.locator("#conflict")).to_be_visible(timeout=WAIT)
            expect(page.locator("#disk-entry")).to_contain_text("Tags: #reward-model #rl")
            expect(page.locator("#mine")).to_have_value(re.compile("My edit in the studio"))
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

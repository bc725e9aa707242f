"""The pages of `digest serve` in headless Chromium (issue #12): the subscribe, confirm and
unsubscribe pages in the reader's language (issue #21: an English reader of a Korean newsletter
gets English pages and an English confirmation mail) and the archive's style, served by the real
server (waitress, with its Content-Security-Policy), at 375 and 600 px. Screenshots go to
tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.deliver import tokens
from pipeline.interfaces.web_pages import WEB_UI
from tests.deliver_support import SECRET, add_subscribers, newsletter, serving, wait_for
from tests.test_render_browser import ARTIFACTS, CONTRAST_JS, browser  # noqa: F401 - fixture

HANGUL = re.compile(r"[가-힣]")


pytestmark = pytest.mark.usefixtures("digest_secret")  # tests/conftest.py


def _newsletter(root: Path, lang: str) -> Settings:
    return newsletter(root, transport="outbox", newsletter={"locale": lang})


def _check_page(page: Any, lang: str, width: int, name: str, heading: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{lang}-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.lang") == lang
    assert page.inner_text("h1").strip() == heading
    # the page's own words (language names in the menu are each in their own language)
    words = page.inner_text("h1") + page.inner_text(".panel p")
    assert bool(HANGUL.search(words)) == (lang == "ko"), words
    scroll = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll[0] <= scroll[1], f"horizontal scrolling at {width}px: {scroll}"
    # every element with text is inside the viewport and readable
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('main *')].filter(e => e.innerText && e.innerText.trim())
             .map(e => { const r = e.getBoundingClientRect();
                         return {text: e.innerText.trim().slice(0, 30), left: r.left, right: r.right}; })"""
    )
    assert boxes and all(b["left"] >= 0 and b["right"] <= width + 0.5 for b in boxes), boxes
    low = [c for c in page.evaluate(CONTRAST_JS) if c["ratio"] < 4.5]
    assert not low, low[:5]
    # the archive's look: its stylesheet applied under the server's CSP
    assert page.evaluate(
        "getComputedStyle(document.querySelector('.container')).backgroundColor"
    ) == "rgb(255, 255, 255)"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(243, 241, 236)"


@pytest.mark.browser
@pytest.mark.parametrize(("locale", "lang"), [("ko", "ko"), ("en", "en"), ("ko", "en")])
def test_subscribe_confirm_unsubscribe_pages_in_chromium(
    browser: Any, tmp_path: Path, locale: str, lang: str  # noqa: F811 - the fixture
) -> None:
    settings = _newsletter(tmp_path, locale)
    ui = WEB_UI[lang]
    reader = next(r for r in add_subscribers(settings, 3) if r.language == lang)
    assert reader.id is not None
    unsubscribe = tokens.sign(SECRET.encode(), "unsubscribe", reader.id, reader.email)
    with serving(settings) as base:
        for width in (375, 600):
            page = browser.new_page(viewport={"width": width, "height": 800})
            csp_errors: list[str] = []
            page.on("console", lambda m, seen=csp_errors: seen.append(m.text)
                    if "Content Security Policy" in m.text else None)
            try:
                page.goto(f"{base}/subscribe?lang={lang}")
                _check_page(page, lang, width, "subscribe", ui["subscribe"])
                assert page.locator("select[name=language] option").count() == 3
                # the page's language is the edition offered first
                assert page.eval_on_selector("select[name=language]", "s => s.value") == lang
                # its links lead to the archive in its language
                archive = page.get_attribute(".nav a", "href") or ""
                assert archive.endswith(f"index.{lang}.html"), archive
                page.goto(f"{base}/unsubscribe/{unsubscribe}")
                _check_page(page, lang, width, "unsubscribe", ui["unsubscribe_title"])
                assert reader.email in page.inner_text("main")
                if width == 600:
                    continue
                # a reader subscribes through the form, then confirms with the button
                page.goto(f"{base}/subscribe?lang={lang}")
                page.fill("input[name=email]", "browser.reader@example.org")
                page.click("button[type=submit]")
                _check_page(page, lang, width, "subscribed", ui["check_title"])
                eml = settings.paths.outbox / "subscribe" / "browser.reader@example.org.eml"
                wait_for(eml.exists)
                mail = message_from_bytes(eml.read_bytes(), policy=policy.default)
                content = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                link = re.search(r"https?://\S+(/confirm/\S+)", content)
                assert link, content
                # the confirmation mail speaks the reader's language
                assert bool(HANGUL.search(content + str(mail["Subject"]))) == (lang == "ko")
                page.goto(base + link.group(1))
                _check_page(page, lang, width, "confirm", ui["confirm_title"])
                assert _status(settings, "browser.reader@example.org") == "pending"
                page.click("button[type=submit]")
                _check_page(page, lang, width, "confirmed", ui["confirmed_title"])
                assert _status(settings, "browser.reader@example.org") == "active"
                page.goto(f"{base}/no-such-page?lang={lang}")
                _check_page(page, lang, width, "not-found", ui["not_found_title"])
            finally:
                page.close()
            assert csp_errors == []
        # dark mode: the archive's dark colours, still readable
        page = browser.new_page(viewport={"width": 375, "height": 800}, color_scheme="dark")
        try:
            page.goto(f"{base}/subscribe?lang={lang}")
            page.screenshot(path=str(ARTIFACTS / f"subscribe-{lang}-375-dark.png"), full_page=True)
            assert page.evaluate(
                "getComputedStyle(document.querySelector('.container')).backgroundColor"
            ) == "rgb(22, 27, 34)"
            low = [c for c in page.evaluate(CONTRAST_JS) if c["ratio"] < 4.5]
            assert not low, low[:5]
        finally:
            page.close()


def _status(settings: Settings, email: str) -> str | None:
    conn = services.open_store(settings)
    try:
        sub = store.get_subscriber(conn, email)
    finally:
        conn.close()
    return sub.status if sub else None

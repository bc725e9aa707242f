"""The email and the web page in headless Chromium: widths, light/dark, visibility, contrast.

Skips only when Chromium is missing and DIGEST_REQUIRE_BROWSER is unset (CI sets it).
Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER
from pipeline.publish.render import Renderer
from tests.render_support import make_settings, reference_issue

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Every visible element that holds text: its colour against the first opaque background
# behind it (alpha-composited up the tree), as WCAG 2 contrast ratios.
CONTRAST_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3] + bottom[3] * (1 - top[3]);
    if (a === 0) return [0, 0, 0, 0];
    return [0, 1, 2].map(i => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a)
      .concat([a]);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg[3] > 0) layers.push(bg);
      if (bg[3] >= 1) break;
    }
    let color = [255, 255, 255, 1];  // the canvas
    for (let i = layers.length - 1; i >= 0; i--) color = over(layers[i], color);
    return color;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden' || cs.display === 'none'
        || Number(cs.opacity) === 0) continue;
    const bg = background(el);
    const fg = over(parse(cs.color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    out.push({tag: el.tagName, cls: el.className, text: el.textContent.trim().slice(0, 40),
              ratio: (a + 0.05) / (b + 0.05)});
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    required = bool(os.environ.get("DIGEST_REQUIRE_BROWSER"))
    if chromium is None:
        if required:
            pytest.fail("DIGEST_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser")
    renderer = Renderer(make_settings(root))
    issue = reference_issue()
    out = {}
    for v in renderer.emails(issue):
        path = root / f"email.{v.variant}.html"
        path.write_text(v.html.replace(UNSUBSCRIBE_PLACEHOLDER, "https://digest.example.org/u"))
        out[f"email-{v.variant}"] = path
    page = root / "issue.html"
    page.write_text(renderer.issue_pages(issue)["issues/2024-12-05.html"])
    out["web"] = page
    corrected = replace(issue, corrected=datetime(2024, 12, 7, 3, 0, tzinfo=UTC))
    page = root / "issue-corrected.html"
    page.write_text(renderer.issue_pages(corrected)["issues/2024-12-05.html"])
    out["web-corrected"] = page
    return out


@pytest.mark.browser
@pytest.mark.parametrize("name", ["email-all", "email-ko", "email-en", "web", "web-corrected"])
@pytest.mark.parametrize("width", [600, 375])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_readable_at_every_width_light_and_dark(
    browser: Any, pages: dict[str, Path], name: str, width: int, scheme: str
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page.goto(pages[name].as_uri())
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}-{scheme}.png"), full_page=True)

        scroll = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll[0] <= scroll[1], f"horizontal scrolling: {scroll}"

        titles = page.evaluate(
            """() => [...document.querySelectorAll('h2.title')].map(h => {
                 const r = h.getBoundingClientRect(); const cs = getComputedStyle(h);
                 return {text: h.textContent.trim(), left: r.left, right: r.right,
                         height: r.height, visible: cs.visibility !== 'hidden'
                           && cs.display !== 'none'};
               })"""
        )
        assert [t["text"] for t in titles] == [e.title for e in reference_issue().entries]
        for t in titles:
            assert t["visible"] and t["height"] > 0, t
            assert t["left"] >= 0 and t["right"] <= width, t

        checks = page.evaluate(CONTRAST_JS)
        assert len(checks) > 50
        low = [c for c in checks if c["ratio"] < 4.5]
        assert not low, low[:5]

        if name == "web-corrected":  # the "corrected <date>" line is there to be seen
            line = [c for c in checks if "corrected" in c["cls"] or "수정됨" in c["text"]]
            assert line and line[0]["text"] == "2024년 12월 7일에 수정됨", checks[:8]

        if scheme == "dark":
            bg = page.evaluate(
                "getComputedStyle(document.querySelector('.container')).backgroundColor"
            )
            assert bg == "rgb(22, 27, 34)", "dark mode did not apply"
    finally:
        page.close()


# Every element with Hangul of its own: whether it breaks between words only, and its language.
HANGUL_JS = """
() => [...document.body.querySelectorAll('*')].filter(el =>
    [...el.childNodes].some(n => n.nodeType === 3 && /[\\uac00-\\ud7af]/.test(n.textContent))
  ).map(el => ({tag: el.tagName, cls: el.className, text: el.textContent.trim().slice(0, 30),
                wordBreak: getComputedStyle(el).wordBreak,
                lang: (el.closest('[lang]') || {}).lang}))
"""


@pytest.mark.browser
@pytest.mark.parametrize("name", ["email-all", "email-ko", "web"])
def test_all_korean_text_keeps_words_whole(browser: Any, pages: dict[str, Path], name: str) -> None:
    """keep-all and lang="ko" on every Korean text (the footer too), not only the commentary."""
    page = browser.new_page(viewport={"width": 375, "height": 900})
    try:
        page.goto(pages[name].as_uri())
        found = page.evaluate(HANGUL_JS)
        classes = {c for f in found for c in f["cls"].split()}
        assert {"note-ko", "footer-p", "date"} <= classes or name == "web", classes
        wrong = [f for f in found if f["wordBreak"] != "keep-all" or f["lang"] != "ko"]
        assert not wrong, wrong[:5]
    finally:
        page.close()


def platform_fonts(page: Any, selector: str) -> set[str]:
    """The fonts Chromium really drew the first `selector` element's own text with."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    assert node, selector
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return {f["familyName"] for f in fonts}


@pytest.mark.browser
@pytest.mark.parametrize("name", ["email-ko", "email-all", "web"])
def test_latin_text_is_drawn_with_a_latin_font(browser: Any, pages: dict[str, Path], name: str) -> None:
    """Latin fonts come first: ':' and ',' in a Korean email's Latin text are not the Korean
    font's full-width forms; Hangul still finds its font."""
    page = browser.new_page(viewport={"width": 600, "height": 900})
    try:
        page.goto(pages[name].as_uri())
        for selector in ("a.toc-link", "p.authors"):  # "Nemotron-CC: …", "Lifan Yuan, …"
            fonts = platform_fonts(page, selector)
            assert fonts and not any("CJK" in f for f in fonts), (selector, fonts)
        assert any("CJK" in f for f in platform_fonts(page, "p.note-ko"))
    finally:
        page.close()

"""The email's size guard: an issue's email fitted under delivery.max_html_kb (ever more
compact layouts, then fewer papers) and the whole message under delivery.max_message_bytes
(long commentary cut, fewer papers in the text part), each cut saying why.

Pure: the HTML and text come from pipeline.publish.render.Renderer, which calls this module
(so it asks for the Renderer's shape, EmailParts, rather than importing it: a cycle).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Protocol

from premailer import Premailer

from pipeline.core.config import Settings
from pipeline.core.models import EmailVariant, Issue
from pipeline.publish.words import clean_issue, entry_anchor, variant_commentary

# Tried in order until the email fits delivery.max_html_kb: compact?, abstract length
# (None = whole, 0 = none), entries shown (None = all; then fewer, the rest on the web).
Layout = tuple[bool, int | None, int | None]
_LAYOUTS: tuple[Layout, ...] = ((False, None, None), (True, 280, None), (True, 0, None))
# An entry's commentary in the email: longer is cut, ending with a link to the web page
# (a 5 MB note would otherwise make a 10 MB message that relays refuse).
EMAIL_COMMENTARY_CHARS = 8000
# What a message costs beyond its two parts' text: base64 (4/3, plus line ends) and headers.
_BASE64_COST = 1.04 * 4 / 3
_HEADERS_COST = 16_000


class EmailParts(Protocol):
    """What the size guard asks of pipeline.publish.render.Renderer."""

    settings: Settings
    base: str

    def page_name(self, day: date, variant: str) -> str: ...
    def subject(self, issue: Issue, variant: str) -> str: ...
    def email_html(self, issue: Issue, variant: str, layout: Layout,
                   listed_entries: int | None = None) -> str: ...
    def email_text(self, issue: Issue, variant: str, unsubscribe: bool = True,
                   shortened: bool = False) -> str: ...


def fit_email(r: EmailParts, issue: Issue, variant: str) -> EmailVariant:
    """One email variant: inlined HTML (compact when too big, saying why) and the text;
    the whole message (every part, encoded) kept under delivery.max_message_bytes."""
    issue, cut_notes = cut_commentary(r, clean_issue(issue), variant)
    limit = r.settings.delivery.max_html_kb * 1024
    html, size, full_size = "", 0, 0
    layout = _LAYOUTS[0]
    for layout in _LAYOUTS:
        html = inline_css(r.email_html(issue, variant, layout))
        size = len(html.encode("utf-8"))
        full_size = full_size or size
        if size <= limit:
            break
    shown = len(issue.entries)
    every_title = True  # the contents list names every paper, shown or not
    if size > limit and shown > 1:
        # When the titles of every paper alone pass the limit (hundreds of papers), the
        # contents list names the papers shown, so the email shows as many as fit.
        one = inline_css(r.email_html(issue, variant, (True, 0, 1)))
        every_title = len(one.encode("utf-8")) <= limit
    while size > limit and shown > 1:
        # Entries cost about the same: aim just under the limit, then step down.
        shown = max(1, min(shown - 1, int(shown * limit / size * 0.97)))
        layout = (True, 0, shown)
        html = inline_css(r.email_html(issue, variant, layout,
                                       None if every_title else shown))
        size = len(html.encode("utf-8"))
    listed = len(issue.entries) if every_title else shown
    while size > limit and listed > shown:  # one paper and still too big: the contents
        listed = max(shown, min(listed - 1, int(listed * limit / size * 0.9)))
        html = inline_css(r.email_html(issue, variant, layout, listed))
        size = len(html.encode("utf-8"))
    subject = r.subject(issue, variant)
    text, text_note = fitted_text(r, issue, variant, size)
    notes = [*cut_notes, *([text_note] if text_note else [])]
    if not layout[0]:
        if not notes:
            return EmailVariant(variant, subject, html, text)
        return EmailVariant(variant, subject, html, text, layout="cut",
                            reason="; ".join(notes))
    _, abstract_limit, max_entries = layout
    kept = (f"abstracts cut to {abstract_limit} characters" if abstract_limit
            else "abstracts left out")
    if max_entries is not None:
        kept += f", {max_entries} of {len(issue.entries)} papers (the rest on the web)"
    if listed < len(issue.entries):
        kept += f", the contents list cut to {listed} titles"
    reason = (f"the full layout is {full_size / 1024:.0f} KB, over delivery.max_html_kb = "
              f"{r.settings.delivery.max_html_kb}; {kept}; {size / 1024:.0f} KB")
    return EmailVariant(variant, subject, html, text, layout="compact",
                        reason="; ".join([reason, *notes]))


def cut_commentary(r: EmailParts, issue: Issue, variant: str) -> tuple[Issue, list[str]]:
    """The issue with each entry's commentary in this variant cut to
    EMAIL_COMMENTARY_CHARS, the cut paragraph ending with a link to the entry on the web
    page (in its own language, so the variant keeps it); and what was cut."""
    page = f"{r.base}{r.page_name(issue.date, variant)}"
    entries, notes = [], []
    for e in issue.entries:
        shown = variant_commentary(e, variant)
        if sum(len(p) for p in shown) <= EMAIL_COMMENTARY_CHARS:
            entries.append(e)
            continue
        kept: list[str] = []
        room = EMAIL_COMMENTARY_CHARS
        for p in shown:
            if len(p) > room:
                kept.append(p[:max(room, 200)].rstrip() + f" … {page}#{entry_anchor(e)}")
                break
            kept.append(p)
            room -= len(p)
        entries.append(replace(e, commentary=tuple(kept)))
        total = sum(len(p) for p in shown)
        notes.append(f"the commentary of {e.title[:40]!r} is {total:,} characters, cut to "
                     f"{EMAIL_COMMENTARY_CHARS:,} in the email (the web page has it whole)")
    return replace(issue, entries=tuple(entries)), notes


def fitted_text(r: EmailParts, issue: Issue, variant: str, html_bytes: int) -> tuple[str, str | None]:
    """The text part, with fewer papers (the rest on the web) when the whole message
    would pass delivery.max_message_bytes; and a note when it was cut."""
    budget = r.settings.delivery.max_message_bytes - _HEADERS_COST
    text = r.email_text(issue, variant)
    size = len(text.encode("utf-8"))
    if (html_bytes + size) * _BASE64_COST <= budget:
        return text, None
    total = len(issue.entries)
    shown = total
    while (html_bytes + size) * _BASE64_COST > budget and shown > 1:
        room = max(budget / _BASE64_COST - html_bytes, 1)
        shown = max(1, min(shown - 1, int(shown * room / size * 0.97)))
        text = r.email_text(replace(issue, entries=issue.entries[:shown]), variant,
                            shortened=True)
        size = len(text.encode("utf-8"))
    return text, (f"the text part shows {shown} of {total} papers, to keep the message "
                  f"under delivery.max_message_bytes = "
                  f"{r.settings.delivery.max_message_bytes:,} (the rest on the web)")


def layout_note(variants: Sequence[EmailVariant]) -> str | None:
    """One line for `build` when the size guard switched a variant to the compact layout."""
    compact = [f"{v.variant}: {v.reason}" for v in variants if v.layout != "full"]
    return "compact layout: " + "; ".join(compact) if compact else None


def inline_css(html: str) -> str:
    """Inline the <style> rules into style attributes; media queries stay in a <style>."""
    return str(
        Premailer(
            html,
            allow_network=False,
            allow_loading_external_files=False,
            strip_important=False,
            keep_style_tags=False,
            disable_leftover_css=False,
            remove_classes=False,
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
            base_url=None,
        ).transform(pretty_print=False)
    )

"""The text/plain part of an email (and site/issues/D.txt): the issue in the digest format's
reader's form, wrapped as RFC 3676 format=flowed (docs/rendering.md, "The text part")."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Protocol

from pipeline.core.digest_format import (
    ABSTRACT_LABELS,
    END_OF_PAPERS,
    reader_heading,
    write_reader_entry,
)
from pipeline.core.flowed import SIGNATURE_SEPARATOR, WIDTH, flow
from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER, DateStyle, Issue
from pipeline.publish.words import UI, safe_url, variant_commentary


class PageNames(Protocol):
    """What the text part asks of pipeline.publish.render.Renderer (which imports this
    module: naming it here would make an import cycle)."""

    base: str

    def ui_lang(self, variant: str) -> str: ...
    def page_name(self, day: date, variant: str) -> str: ...
    def index_name(self, variant: str, page: int | None) -> str: ...


# RFC 3676's signature separator: clients dim or strip what follows it, so only the
# sign-off goes below it (the links a reader needs stay above).
SIGNATURE = SIGNATURE_SEPARATOR + "\n"


def body(r: PageNames, issue: Issue, variant: str) -> str:
    """The issue as a person reads it top to bottom: a heading (name and date in the
    variant's language), then each paper (title, authors, abs URL, the variant's
    commentary, the labelled abstract, tags) with blank lines between; not wrapped yet."""
    lang = r.ui_lang(variant)
    style: DateStyle = "ko" if lang == "ko" else "en"
    label = ABSTRACT_LABELS.get(lang, ABSTRACT_LABELS["en"])
    lines = [reader_heading(issue.title, issue.date, style)]
    for e in issue.entries:
        # Only an http(s) URL makes a link line; anything else would read back as commentary.
        shown = replace(e, commentary=variant_commentary(e, variant), url=safe_url(e.url))
        lines += ["", "", *write_reader_entry(shown, label)]
    return "\n".join(lines)


def footer(r: PageNames, issue: Issue, variant: str, unsubscribe: bool,
           shortened: bool = False) -> list[str]:
    """The lines after the papers and before the signature: the other new papers, then
    the ways to the web version (and out, in the email); `shortened`: says the web has the
    papers the text leaves out (a message kept under delivery.max_message_bytes)."""
    ui = UI[r.ui_lang(variant)]
    lines: list[str] = ["", "", END_OF_PAPERS]
    if shortened:
        lines += [ui["compact"], ""]
    if issue.more_papers:
        lines += [ui["more_papers"], ""]
        for p in issue.more_papers:
            lines += [f"* {p.title}", f"  {p.abs_url}"]
    lines.append("")
    lines.append(f"{ui['view_web']}: {r.base}{r.page_name(issue.date, variant)}")
    lines.append(f"{ui['archive']}: {r.base}{r.index_name(variant, None)}")
    if unsubscribe:
        lines.append(f"{ui['unsubscribe']}: {UNSUBSCRIBE_PLACEHOLDER}")
    return lines


def email_text(r: PageNames, issue: Issue, variant: str, unsubscribe: bool = True,
               shortened: bool = False) -> str:
    """The text/plain part (RFC 3676 format=flowed, DelSp=No): the issue in its readers'
    form, the other papers and the web and unsubscribe links, then a short sign-off after
    the standard "-- " line. Unflowed, it reads back (`digest check --flowed`) to the same
    entries."""
    lines = [body(r, issue, variant), *footer(r, issue, variant, unsubscribe, shortened)]
    lines += ["", SIGNATURE_SEPARATOR, issue.title.strip() or "Digest"]
    # The reader's unsubscribe URL is longer than its placeholder: wrap as if the
    # placeholder were too long for any line, so the URL gets a line of its own.
    wide = UNSUBSCRIBE_PLACEHOLDER.ljust(WIDTH + 1, "_")
    text = flow("\n".join(lines).replace(UNSUBSCRIBE_PLACEHOLDER, wide))
    return text.replace(wide, UNSUBSCRIBE_PLACEHOLDER) + "\n"

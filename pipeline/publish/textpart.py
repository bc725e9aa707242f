"""The text/plain part of an email (and site/issues/D.txt): the issue in the digest format's
reader form, wrapped as RFC 3676 format=flowed (docs/rendering.md, "The text part")."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.core.digest_format import write_digest
from pipeline.core.flowed import SIGNATURE_SEPARATOR, WIDTH, flow
from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER, DateStyle, Digest, Issue
from pipeline.publish.words import UI, safe_url, variant_commentary

if TYPE_CHECKING:
    from pipeline.publish.render import Renderer

# RFC 3676's signature separator: clients dim what follows it.
SIGNATURE = SIGNATURE_SEPARATOR + "\n"


def body(r: Renderer, issue: Issue, variant: str) -> str:
    """The issue in the digest format as readers get it: spaced (a blank line between
    papers), each paper's abs URL, the variant's commentary; not wrapped yet."""
    lang = r.ui_lang(variant)
    style: DateStyle = "ko" if lang == "ko" else "en"
    # Only an http(s) URL makes a link line; anything else would read back as the abstract.
    entries = tuple(replace(e, commentary=variant_commentary(e, variant), url=safe_url(e.url))
                    for e in issue.entries)
    # Not strict: a reader's copy shows whatever the issue holds (the draft's own check
    # already refused entries that would not read back the same).
    digest = Digest(issue.date, entries, date_style=style)
    return write_digest(digest, spaced=True, abs_urls=True, strict=False)


def signature(r: Renderer, issue: Issue, variant: str, unsubscribe: bool,
              shortened: bool = False) -> list[str]:
    """The lines below the "-- " separator: the other new papers, then the ways to the
    web version (and out, in the email); `shortened`: says the web has the rest."""
    ui = UI[r.ui_lang(variant)]
    lines: list[str] = []
    for p in issue.more_papers:
        if not lines:
            lines += [ui["more_papers"], ""]
        lines += [f"* {p.title}", f"  {p.abs_url}"]
    if lines:
        lines.append("")
    if shortened:
        lines = [ui["compact"], "", *lines]
    lines.append(f"{ui['view_web']}: {r.base}{r.page_name(issue.date, variant)}")
    lines.append(f"{ui['archive']}: {r.base}{r.index_name(variant, None)}")
    if unsubscribe:
        lines.append(f"{ui['unsubscribe']}: {UNSUBSCRIBE_PLACEHOLDER}")
    return lines


def email_text(r: Renderer, issue: Issue, variant: str, unsubscribe: bool = True,
               shortened: bool = False) -> str:
    """The text/plain part (RFC 3676 format=flowed, DelSp=No): the digest in its
    readers' form, then a signature block (after the standard "-- " line) with the other
    papers and the web and unsubscribe links, so a reader of plain text can leave too.
    Unflowed, it reads back (`digest check --flowed`) to the same entries."""
    lines = [body(r, issue, variant), SIGNATURE.rstrip("\n")]
    lines += signature(r, issue, variant, unsubscribe, shortened)
    # The reader's unsubscribe URL is longer than its placeholder: wrap as if the
    # placeholder were too long for any line, so the URL gets a line of its own.
    wide = UNSUBSCRIBE_PLACEHOLDER.ljust(WIDTH + 1, "_")
    text = flow("\n".join(lines).replace(UNSUBSCRIBE_PLACEHOLDER, wide))
    return text.replace(wide, UNSUBSCRIBE_PLACEHOLDER) + "\n"

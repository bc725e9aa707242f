"""The RSS feeds: site/feed.xml (feed.<lang>.xml) with one item per issue, and
site/tags/<tag>.xml with one item per paper.

Feed readers are not mail clients: an item's HTML flows (no layout tables, which newsboat and
other text readers draw as one unwrapped line per cell), an item is titled by its own content
(the issue's date and first paper, or the paper), never by the feed's name, and a correction
reaches readers who already read the item: it is re-dated, says "corrected" in its title and
text, and carries a new guid (readers key "seen" on the guid; most ignore a changed date).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pipeline.core.models import Issue
from pipeline.publish.words import (
    UI,
    entry_anchor,
    item_datetime,
    linkify,
    rfc822,
    safe_url,
    variant_commentary,
)

if TYPE_CHECKING:
    from pipeline.publish.render import Renderer
    from pipeline.publish.views import Tagged

TAG_FEED_ITEMS = 50  # newest papers per site/tags/<tag>.xml


def guid(r: Renderer, url: str, issue: Issue) -> str:
    """An item's guid: its permalink, and after a correction the permalink marked with the
    moment of the correction, so that feed readers show the corrected item again."""
    if issue.corrected is None:
        return url
    stamp = issue.corrected.astimezone(r.settings.tzinfo).strftime("%Y%m%dT%H%M%S")
    return f"{url}{'-' if '#' in url else '#'}corrected-{stamp}"


def marked(r: Renderer, title: str, issue: Issue, variant: str) -> str:
    """An item title, with the "corrected" mark when the issue was corrected."""
    if issue.corrected is None:
        return title
    return f"{title} ({UI[r.ui_lang(variant)]['corrected_mark']})"


def issue_title(r: Renderer, issue: Issue, variant: str) -> str:
    """An issue item's title: the issue's date and its first paper, whole (a feed has no
    length limit and already names the newsletter)."""
    ui = UI[r.ui_lang(variant)]
    title = ui["issue_of"].format(date=r.date_text(issue.date, variant))
    if issue.entries:
        title += " · " + issue.entries[0].title
    return marked(r, title, issue, variant)


def issue_feed(r: Renderer, newest: Sequence[Issue], variant: str) -> str:
    """site/feed.xml (or feed.<lang>.xml): the newest issues, full HTML in each item; its
    channel links to the index of its own language."""
    items = []
    for issue in newest[: r.settings.newsletter.feed_items]:
        url = r.base + r.page_name(issue.date, variant)
        items.append(
            {
                "title": issue_title(r, issue, variant),
                "link": url,
                "guid": guid(r, url, issue),
                "permalink": issue.corrected is None,
                "pub_date": rfc822(item_datetime(issue, r.settings)),
                "description": r.preheader(issue, variant),
                "content": content(r, issue, variant),
                "categories": issue.tags,
            }
        )
    return feed_xml(r, variant, r.feed_title(variant), r.base + r.index_name(variant, None),
                    r.title, r.feed_name(variant), items)


def content(r: Renderer, issue: Issue, variant: str, number: int = 0) -> str:
    """A feed item's HTML: the whole issue, or (number > 0) its one entry, the entry
    `number` of its issue; taken from `r.fragments` when rendered by an earlier build."""
    digest = ""
    if r.fragments is not None:
        # Every field of the issue (a field added later counts too), bar the merge's notes.
        what = (r.fingerprint, variant, number, replace(issue, unresolved=()))
        digest = hashlib.sha256(repr(what).encode("utf-8")).hexdigest()
        hit = r.fragments.get(issue.date, number, variant, digest)
        if hit is not None:
            return hit
    if number:
        view = r.entry_view(issue.date, number, issue.entries[0], variant, r.base)
        # no "04" kicker: the paper's place in its issue means nothing in a tag feed
        html = r.issue_fragment(issue, variant, r.base, [replace(view, number=0)], flowing=True)
    else:
        html = r.issue_fragment(issue, variant, r.base, flowing=True)
    if r.fragments is not None:
        r.fragments.put(issue.date, number, variant, digest, html)
    return html


def tag_feed(r: Renderer, key: str, tagged: Sequence[Tagged]) -> str:
    """site/tags/<tag>.xml: one item per paper with the tag, newest first, titled by the
    paper and summarized by the curator's commentary (in the feed's language), then the
    abstract."""
    variant = r.default_variant
    lang = r.ui_lang(variant)
    items = []
    for t in tagged[:TAG_FEED_ITEMS]:
        web_url = f"{r.base}{r.page_name(t.issue.date, variant)}#{entry_anchor(t.entry)}"
        one = replace(t.issue, entries=(t.entry,), more_papers=())
        notes = variant_commentary(t.entry, lang) or t.entry.commentary
        summary = "".join(f"<p>{linkify(p)}</p>" for p in (*notes, t.entry.abstract) if p)
        items.append(
            {
                "title": marked(r, t.entry.title, t.issue, variant),
                "link": safe_url(t.entry.link) or web_url,
                "guid": guid(r, web_url, t.issue),
                "permalink": t.issue.corrected is None,
                "pub_date": rfc822(item_datetime(t.issue, r.settings)),
                "description": summary,
                "content": content(r, one, variant, t.number),
                "categories": t.entry.tag_keys,
            }
        )
    return feed_xml(
        r, variant, r.tag_feed_title(key), r.tag_url(key, r.base),
        f"{r.title} #{key}", quote(r.tag_feed_name(key)), items,
    )


def feed_xml(
    r: Renderer, variant: str, title: str, link: str, description: str, name: str,
    items: list[dict[str, Any]],
) -> str:
    """An RSS feed at `name` under the site, its items newest first."""
    return r.render(
        "feed.xml",
        title=title,
        link=link,
        description=description,
        lang=r.ui_lang(variant),
        self_url=r.base + name,
        # A corrected item is re-dated: the newest date is not always the first item's.
        last_build=max((i["pub_date"] for i in items), key=parsedate_to_datetime)
        if items else None,
        items=items,
    )

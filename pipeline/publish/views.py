"""What the templates get: the view models of entries, tags and feeds, and the pages of a list
paginated from its oldest item (the archive index, a tag's papers).

Frozen values, no rendering: `pipeline.publish.render` fills them, `pipeline.publish.archive`
decides which pages to write.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from pipeline.core.models import Entry, Issue

PAGE_SIZE = 50  # issues per archive page, papers per tag page


@dataclass(frozen=True)
class TagView:
    label: str  # as the curator wrote it, with '#'
    key: str
    url: str


@dataclass(frozen=True)
class NoteView:
    lang: str
    html: Markup


@dataclass(frozen=True)
class EntryView:
    number: int
    anchor: str
    title: str
    link: str | None
    arxiv_id: str | None
    pdf: str | None
    authors: str
    abstract: Markup
    abstract_cut: bool
    notes: tuple[NoteView, ...]
    tags: tuple[TagView, ...]
    web_url: str


@dataclass(frozen=True)
class Tagged:
    """An entry carrying a tag, with its issue (cleaned: clean_issue) and its place in it."""

    issue: Issue
    number: int
    entry: Entry


@dataclass(frozen=True)
class MoreView:
    title: str
    link: str


@dataclass(frozen=True)
class FeedLink:
    """A feed a page announces with <link rel="alternate">."""

    title: str
    url: str


@dataclass(frozen=True)
class Page:
    """One page of a list paginated from its oldest item (the archive index, a tag's papers).

    Page N (from 1) holds items (N-1)*PAGE_SIZE+1 .. N*PAGE_SIZE and is written once it is
    full; it links only to older pages, so it never changes when newer items arrive. The
    newest page (number None: index.html, tags/<tag>.html) holds the rest and links them all.
    """

    number: int | None
    first: int  # ordinal of its oldest item, from 1
    last: int  # ordinal of its newest item
    total: int  # items in the whole list (shown on the newest page only)
    size: int = PAGE_SIZE

    @property
    def older(self) -> int:
        """How many full pages come before this one."""
        return (self.first - 1) // self.size


def full_page(number: int, size: int = PAGE_SIZE) -> Page:
    """Page `number` of a list, full."""
    return Page(number, (number - 1) * size + 1, number * size, number * size, size)


def newest_page(total: int, size: int = PAGE_SIZE) -> Page:
    """The newest page of a list of `total` items: the last partial page, or the last full
    one when none is partial."""
    first = size * ((total - 1) // size) + 1 if total else 1
    return Page(None, first, total, total, size)


def paginate(total: int, size: int = PAGE_SIZE) -> list[Page]:
    """Every page of a list of `total` items: the full ones, then the newest."""
    full = [full_page(n, size) for n in range(1, total // size + 1)]
    return [*full, newest_page(total, size)]

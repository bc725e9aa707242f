"""Render an issue: the email per variant (CSS inlined once), its text part, web pages, feeds.

Pure: reads templates, never writes. `pipeline.publish.site` puts the results on disk.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from babel.dates import format_date
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from markupsafe import Markup, escape
from premailer import Premailer

from pipeline.core.bundle import bundled
from pipeline.core.calendar import ANNOUNCE_TIME, EASTERN, announced_at, is_announcement_day
from pipeline.core.config import Settings
from pipeline.core.digest_format import write_digest
from pipeline.core.errors import ConfigError
from pipeline.core.flowed import SIGNATURE_SEPARATOR, WIDTH, flow
from pipeline.core.models import (
    UNSUBSCRIBE_PLACEHOLDER,
    ArchivedEntry,
    DateStyle,
    Digest,
    EmailVariant,
    Entry,
    Issue,
    Paper,
    archived_entries,
    has_hangul,
    is_links_only,
)
from pipeline.core.subject import SUBJECT_WIDTH, compile_subject

BUNDLED_TEMPLATES = bundled("templates")

MAX_AUTHORS = 10  # longer lists show the first SHOWN_AUTHORS and how many more
SHOWN_AUTHORS = 6
TAG_FEED_ITEMS = 50  # newest papers per site/tags/<tag>.xml
PAGE_SIZE = 50  # issues per archive page, papers per tag page
TAGS_INDEX = "tags/index.html"  # the page listing every tag
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

# XML 1.0 Char: no C0 controls but tab, LF, CR; no surrogates, no U+FFFE/U+FFFF.
_XML_FORBIDDEN_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# URLs in running text: ASCII only, so Korean particles glued to a URL stay outside it.
_URL_RE = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%()]+", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:!?)]"
_ARXIV_ABS_RE = re.compile(r"https?://(?:www\.)?arxiv\.org/abs/([\w.\-/]+?)/?", re.IGNORECASE)

# RFC 3676's signature separator: clients dim what follows it.
SIGNATURE = SIGNATURE_SEPARATOR + "\n"


LANG_LABELS = {"ko": "한국어", "en": "English", "all": "한국어 + English"}
UI: dict[str, dict[str, str]] = {
    "ko": {
        "papers": "이번 호 논문 {n}편",
        "view_web": "웹에서 보기",
        "unsubscribe": "수신 거부",
        "archive": "지난 호 보기",
        "archive_title": "지난 호",
        "archive_range": "{first}–{last}번째 호",
        "archive_pages": "더 지난 호",
        "newest": "최신 호",
        "newest_papers": "최신 논문",
        "older": "이전 페이지",
        "prev_issue": "이전 호",
        "next_issue": "다음 호",
        "all_tags": "모든 태그",
        "tags_intro": "태그 {n}개",
        "tag_count": "{n}편",
        "tag_range": "{first}–{last}번째 논문",
        "subscribe": "구독하기",
        "feed": "RSS 구독",
        "more_papers": "태그에 맞는 다른 새 논문",
        "and_more": "외 {n}명",
        "abstract": "초록",
        "in_issue": "이번 호에서",
        "read_more": "웹에서 전체 보기",
        "compact": "메일 용량 때문에 간추려 보냅니다. 초록과 전체 내용은 웹에서 볼 수 있습니다.",
        "rest": "이 밖에 {n}편은 웹에서 볼 수 있습니다.",
        "why": "{title} 뉴스레터를 구독하셔서 받으신 메일입니다.",
        "tag_title": "#{tag} 논문",
        "tag_intro": "#{tag} 태그가 붙은 논문 {n}편",
        "index_intro": "지금까지 나온 {n}개 호",
        "issue_of": "{date} 호",
        "no_link": "링크 없음",
        "corrected": "{date}에 수정됨",
    },
    "en": {
        "papers": "{n} papers in this issue",
        "view_web": "View in browser",
        "unsubscribe": "Unsubscribe",
        "archive": "Past issues",
        "archive_title": "All issues",
        "archive_range": "Issues {first}–{last}",
        "archive_pages": "Older issues",
        "newest": "Newest issues",
        "newest_papers": "Newest papers",
        "older": "Older",
        "prev_issue": "Previous issue",
        "next_issue": "Next issue",
        "all_tags": "All tags",
        "tags_intro": "{n} tags",
        "tag_count": "{n} papers",
        "tag_range": "Papers {first}–{last}",
        "subscribe": "Subscribe",
        "feed": "RSS feed",
        "more_papers": "More new papers in your tags",
        "and_more": "and {n} more",
        "abstract": "Abstract",
        "in_issue": "In this issue",
        "read_more": "Read it all on the web",
        "compact": "Shortened to fit your inbox: abstracts and everything else are on the web.",
        "rest": "{n} more papers are on the web.",
        "why": "You get this email because you subscribed to {title}.",
        "tag_title": "#{tag} papers",
        "tag_intro": "{n} papers tagged #{tag}",
        "index_intro": "{n} issues so far",
        "issue_of": "Issue of {date}",
        "no_link": "no link",
        "corrected": "Corrected {date}",
    },
}


# --- text helpers (pure) ---------------------------------------------------------------------


def clean_text(text: str) -> str:
    """Drop the characters XML 1.0 forbids (they break feeds and confuse mail clients)."""
    return _XML_FORBIDDEN_RE.sub("", text)


def clean_issue(issue: Issue) -> Issue:
    """The issue with every string cleaned of XML-forbidden characters."""

    def entry(e: Entry) -> Entry:
        return replace(
            e,
            title=clean_title(e.title),
            authors=tuple(clean_text(a) for a in e.authors),
            abstract=clean_text(e.abstract),
            commentary=tuple(clean_text(p) for p in e.commentary),
            url=clean_text(e.url) if e.url is not None else None,
        )

    def paper(p: Paper) -> Paper:
        return replace(
            p,
            title=clean_text(p.title).strip() or "…",
            authors=tuple(clean_text(a) for a in p.authors),
            abstract=clean_text(p.abstract),
        )

    return replace(
        issue,
        title=clean_text(issue.title),
        entries=tuple(entry(e) for e in issue.entries),
        more_papers=tuple(paper(p) for p in issue.more_papers),
    )


def safe_url(url: str | None) -> str | None:
    """The URL when it is an absolute http(s) URL with a host, else None (never a link)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if any(c.isspace() or c in "<>\"'`" for c in url):
        return None
    return url


def _trim_url(url: str) -> str:
    """Drop sentence punctuation after a URL; keep a ')' that closes a '(' inside it."""
    while url and url[-1] in _TRAILING_PUNCT:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        if url[-1] == "]" and url.count("[") >= url.count("]"):
            break
        url = url[:-1]
    return url


def link_label(url: str) -> str:
    """How a URL reads in running text: arXiv:ID for arXiv pages, else without the scheme."""
    m = _ARXIV_ABS_RE.fullmatch(url)
    if m:
        return f"arXiv:{m.group(1)}"
    return re.sub(r"^https?://(www\.)?", "", url, flags=re.IGNORECASE)


def linkify(text: str) -> Markup:
    """Escape text and turn the http(s) URLs in it into links."""
    out: list[str] = []
    pos = 0
    for m in _URL_RE.finditer(text):
        url = _trim_url(m.group(0))
        if safe_url(url) is None or len(url) <= len("https://"):
            continue
        out.append(str(escape(text[pos : m.start()])))
        out.append(f'<a href="{escape(url)}" class="inline-link">{escape(link_label(url))}</a>')
        pos = m.start() + len(url)
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


def shorten(text: str, limit: int) -> str:
    """Cut text at a word boundary near `limit` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.·—")
    return cut + "…"


def format_authors(authors: Sequence[str], ui: dict[str, str]) -> str:
    """All authors when few; otherwise the first ones and how many more."""
    if len(authors) <= MAX_AUTHORS:
        return ", ".join(authors)
    more = ui["and_more"].format(n=len(authors) - SHOWN_AUTHORS)
    return ", ".join(authors[:SHOWN_AUTHORS]) + " " + more


def entry_anchor(entry: Entry) -> str:
    """A stable fragment id for an entry: its arXiv id, else a hash of its title."""
    return anchor_of(entry.arxiv_id, entry.title)


def anchor_of(arxiv_id: str | None, title: str) -> str:
    """entry_anchor from an entry's arXiv id and (cleaned) title alone."""
    if arxiv_id is not None:
        return "p-" + re.sub(r"[^0-9A-Za-z]", "-", arxiv_id)
    return "p-" + hashlib.sha256(title.encode("utf-8")).hexdigest()[:12]


def clean_title(title: str) -> str:
    """A title as every page shows it (see clean_issue)."""
    return clean_text(title).strip() or "…"


def variant_commentary(entry: Entry, variant: str) -> tuple[str, ...]:
    """The commentary a variant shows: one language's paragraphs, or all of them."""
    # Paragraphs that are only links belong to no language: every variant shows them.
    if variant == "ko":
        return tuple(p for p in entry.commentary if has_hangul(p) or is_links_only(p))
    if variant == "en":
        return tuple(p for p in entry.commentary if not has_hangul(p))
    return entry.commentary


def pub_datetime(day: date, settings: Settings) -> datetime:
    """When an issue counts as published (feeds' pubDate): the arXiv announcement it covers,
    20:00 US Eastern the evening before `day` (the same hour for an issue dated on a
    weekend), given in the newsletter's zone. Midnight in the newsletter's zone showed as
    the day before everywhere west of it (UTC included); this instant is already `day`
    from UTC eastwards (01:00 UTC, 10:00 in Seoul)."""
    if is_announcement_day(day):
        return announced_at(day).astimezone(settings.tzinfo)
    evening = datetime.combine(day - timedelta(days=1), ANNOUNCE_TIME, tzinfo=EASTERN)
    return evening.astimezone(settings.tzinfo)


def item_datetime(issue: Issue, settings: Settings) -> datetime:
    """A feed item's date: its correction when corrected (so readers show it as updated)."""
    if issue.corrected is not None:
        return issue.corrected.astimezone(settings.tzinfo).replace(microsecond=0)
    return pub_datetime(issue.date, settings)


def rfc822(moment: datetime) -> str:
    """An RFC 822 date (RSS pubDate), in English whatever the locale."""
    return format_datetime(moment)


# --- view models -----------------------------------------------------------------------------


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


class FragmentCache(Protocol):
    """Rendered feed items kept between builds, by place (date, entry number or 0 for the
    whole issue, variant) and by a digest of everything that went into them."""

    def get(self, day: date, number: int, variant: str, digest: str) -> str | None:
        """The HTML rendered for this place from the same inputs, or None."""

    def put(self, day: date, number: int, variant: str, digest: str, html: str) -> None:
        """Keep the HTML rendered for this place."""


class Renderer:
    """Renders issues with a newsletter's templates (its own override the bundled ones)."""

    def __init__(self, settings: Settings, page_size: int = PAGE_SIZE) -> None:
        self.settings = settings
        self.page_size = page_size
        self.base = settings.newsletter.base_url.rstrip("/") + "/"
        self.title = clean_text(settings.newsletter.title)
        self.env = make_environment(settings.paths.templates)
        # Feed items rendered by earlier builds (pipeline.publish.archive sets it to the store's).
        self.fragments: FragmentCache | None = None
        self.fingerprint = render_fingerprint(settings)

    # -- helpers --

    def ui_lang(self, variant: str) -> str:
        """The interface language of a variant: its own, or the newsletter's for 'all'."""
        if variant in UI:
            return variant
        lang = self.settings.locale_language
        return lang if lang in UI else "en"

    def date_text(self, day: date, variant: str) -> str:
        """The issue date via Babel in the variant's language, or for 'all' in
        newsletter.locale (2024년 12월 5일, December 5, 2024)."""
        return _long_date(day, variant if variant in UI else self.settings.newsletter.locale)

    def page_name(self, day: date, variant: str) -> str:
        """issues/D.html for the default variant, issues/D.<lang>.html for the others."""
        return f"issues/{day.isoformat()}{self.variant_suffix(variant)}.html"

    def variant_suffix(self, variant: str) -> str:
        """What a variant's file names carry before their extension: nothing for the default
        variant, .<lang> for the others (issues/D.en.html, index.en.html, feed.en.xml)."""
        return "" if variant == self.default_variant else f".{variant}"

    @property
    def default_variant(self) -> str:
        """The variant of the web archive's main pages and feed.xml ('all' or the sole one)."""
        return self.settings.variants[-1]

    def feed_name(self, variant: str) -> str:
        """feed.xml for the default variant, feed.<lang>.xml for the others."""
        return f"feed{self.variant_suffix(variant)}.xml"

    def tag_url(self, key: str, base: str) -> str:
        """A tag page's URL under `base`."""
        return base + quote(self.tag_page_name(key, None))

    def tag_page_name(self, key: str, page: int | None) -> str:
        """tags/<tag>.html (its newest papers), tags/<tag>/page-N.html (its full pages)."""
        stem = tag_stem(key)
        return f"tags/{stem}.html" if page is None else f"tags/{stem}/page-{page}.html"

    def tag_feed_name(self, key: str) -> str:
        """tags/<tag>.xml."""
        return f"tags/{tag_stem(key)}.xml"

    def index_name(self, variant: str, page: int | None) -> str:
        """index.html (the newest issues) or archive/page-N.html, with .<lang> before .html
        for the variants other than the default one."""
        suffix = self.variant_suffix(variant)
        return f"index{suffix}.html" if page is None else f"archive/page-{page}{suffix}.html"

    def feed_title(self, variant: str) -> str:
        """The title of a variant's feed: one per feed, naming its language."""
        if len(self.settings.variants) == 1:
            return self.title
        return f"{self.title} ({LANG_LABELS.get(variant, variant)})"

    def tag_feed_title(self, key: str) -> str:
        """The title of a tag's feed."""
        return f"{self.title} · #{key}"

    def feed_links(self, variant: str, base: str) -> list[FeedLink]:
        """The feeds a page of this variant announces: its own first, then the others."""
        order = [variant] + [v for v in self.settings.variants if v != variant]
        return [FeedLink(self.feed_title(v), base + self.feed_name(v)) for v in order]

    def other_variants(self, variant: str, url: Callable[[str], str]) -> list[tuple[str, str]]:
        """The same page in the other variants: (language label, its URL) for a switcher."""
        return [(LANG_LABELS.get(v, v), url(v)) for v in self.settings.variants if v != variant]

    @property
    def subscribe_url(self) -> str:
        """The subscribe page of `digest serve`."""
        return self.base + "subscribe"

    def subject(self, issue: Issue, variant: str) -> str:
        """The email subject from `newsletter.subject`, on one line; the first paper's title
        is cut at a word (with an ellipsis) so the whole fits SUBJECT_WIDTH characters."""
        template = compile_subject(self.settings.newsletter.subject)
        first = issue.entries[0].title if issue.entries else ""
        values = {
            "name": issue.title,
            "date": self.date_text(issue.date, variant),
            "date_iso": issue.date.isoformat(),
            "count": len(issue.entries),
        }

        def render(title: str) -> str:
            return " ".join(template.render(**values, first_title=title).split())

        subject = render(first)
        if len(subject) > SUBJECT_WIDTH and first:
            room = len(first) - (len(subject) - SUBJECT_WIDTH)
            subject = render(shorten(first, max(room - 1, 12)))  # 1 for the ellipsis
        return subject

    def entry_view(
        self, day: date, number: int, entry: Entry, variant: str, base: str,
        abstract_limit: int | None = None,
    ) -> EntryView:
        """The view model of one entry (number = its place in its issue), links under `base`."""
        ui = UI[self.ui_lang(variant)]
        abstract = entry.abstract
        if abstract_limit is not None:
            abstract = shorten(abstract, abstract_limit) if abstract_limit else ""
        anchor = entry_anchor(entry)
        return EntryView(
            number=number,
            anchor=anchor,
            title=entry.title,
            link=safe_url(entry.link),
            arxiv_id=entry.arxiv_id,
            pdf=f"https://arxiv.org/pdf/{entry.arxiv_id}" if entry.arxiv_id else None,
            authors=format_authors(entry.authors, ui),
            abstract=linkify(abstract),
            abstract_cut=abstract != entry.abstract,
            notes=tuple(
                NoteView("ko" if has_hangul(p) else "en", linkify(p))
                for p in variant_commentary(entry, variant)
            ),
            tags=tuple(
                TagView("#" + t, key, self.tag_url(key, base))
                for t, key in zip(entry.tags, entry.tag_keys, strict=True)
            ),
            web_url=f"{base}{self.page_name(day, variant)}#{anchor}",
        )

    def entry_views(
        self, issue: Issue, variant: str, base: str, abstract_limit: int | None = None
    ) -> list[EntryView]:
        """View models for the entries of an issue, links made absolute under `base`."""
        return [
            self.entry_view(issue.date, n, e, variant, base, abstract_limit)
            for n, e in enumerate(issue.entries, start=1)
        ]

    def page_context(self, variant: str) -> dict[str, Any]:
        """What every page gets: its language, the interface words, the newsletter's title."""
        lang = self.ui_lang(variant)
        return {"lang": lang, "ui": UI[lang], "newsletter": self.title}

    def context(self, issue: Issue, variant: str, base: str) -> dict[str, Any]:
        """What every issue template gets."""
        return {
            **self.page_context(variant),
            "issue_title": issue.title,
            "date_text": self.date_text(issue.date, variant),
            "date_iso": issue.date.isoformat(),
            "count": len(issue.entries),
            "more": [
                MoreView(p.title, p.abs_url) for p in issue.more_papers if safe_url(p.abs_url)
            ],
            "base": base,
            "web_url": self.base + self.page_name(issue.date, variant),
            "archive_url": base + self.index_name(variant, None),
            "feed_url": base + self.feed_name(variant),
            "corrected_text": self.corrected_text(issue, variant),
        }

    def corrected_text(self, issue: Issue, variant: str) -> str | None:
        """The "corrected <date>" line of a corrected issue (None when never corrected)."""
        if issue.corrected is None:
            return None
        day = issue.corrected.astimezone(self.settings.tzinfo).date()
        return UI[self.ui_lang(variant)]["corrected"].format(date=self.date_text(day, variant))

    def site_context(self, variant: str, base: str, canonical: str) -> dict[str, Any]:
        """What every web page gets beyond page_context: links under the relative `base`."""
        return {
            **self.page_context(variant),
            "canonical": canonical,
            "feeds": self.feed_links(variant, base),
            "feed_url": base + self.feed_name(variant),
            "archive_url": base + self.index_name(variant, None),
            "tags_url": base + TAGS_INDEX,
            "subscribe_url": self.subscribe_url,
        }

    def render(self, name: str, **context: Any) -> str:
        """Render one template; a broken template is a configuration error naming it."""
        try:
            return self.env.get_template(name).render(**context)
        except TemplateError as exc:
            where = getattr(exc, "filename", None) or name
            line = getattr(exc, "lineno", None)
            raise ConfigError(f"template error: {exc}", path=where, line=line) from exc

    # -- email --

    def preheader(self, issue: Issue, variant: str) -> str:
        """The inbox preview line: how many papers and the first titles."""
        ui = UI[self.ui_lang(variant)]
        titles = " · ".join(e.title for e in issue.entries[:3])
        return shorten(f"{ui['papers'].format(n=len(issue.entries))} — {titles}", 150)

    def email_html(self, issue: Issue, variant: str, layout: Layout,
                   listed_entries: int | None = None) -> str:
        """The email HTML of one variant in one layout, before CSS inlining; the contents
        list has every paper, or the first `listed_entries` (500 titles alone would pass
        the size the compact layout is cut for)."""
        compact, abstract_limit, max_entries = layout
        shown = replace(issue, entries=issue.entries[:max_entries])
        listed = replace(issue, entries=issue.entries[:listed_entries])
        ctx = self.context(issue, variant, self.base)
        return self.render(
            "email.html",
            **ctx,
            subject=self.subject(issue, variant),
            preheader=self.preheader(issue, variant),
            entries=self.entry_views(shown, variant, self.base, abstract_limit),
            toc_entries=self.entry_views(listed, variant, self.base, 0),
            compact=compact,
            rest=len(issue.entries) - len(shown.entries),
            unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER,
        )

    def email(self, issue: Issue, variant: str) -> EmailVariant:
        """One email variant: inlined HTML (compact when too big, saying why) and the text;
        the whole message (every part, encoded) kept under delivery.max_message_bytes."""
        issue, cut_notes = self.cut_commentary(clean_issue(issue), variant)
        limit = self.settings.delivery.max_html_kb * 1024
        html, size, full_size = "", 0, 0
        layout = _LAYOUTS[0]
        for layout in _LAYOUTS:
            html = inline_css(self.email_html(issue, variant, layout))
            size = len(html.encode("utf-8"))
            full_size = full_size or size
            if size <= limit:
                break
        shown = len(issue.entries)
        every_title = True  # the contents list names every paper, shown or not
        if size > limit and shown > 1:
            # When the titles of every paper alone pass the limit (hundreds of papers), the
            # contents list names the papers shown, so the email shows as many as fit.
            one = inline_css(self.email_html(issue, variant, (True, 0, 1)))
            every_title = len(one.encode("utf-8")) <= limit
        while size > limit and shown > 1:
            # Entries cost about the same: aim just under the limit, then step down.
            shown = max(1, min(shown - 1, int(shown * limit / size * 0.97)))
            layout = (True, 0, shown)
            html = inline_css(self.email_html(issue, variant, layout,
                                              None if every_title else shown))
            size = len(html.encode("utf-8"))
        listed = len(issue.entries) if every_title else shown
        while size > limit and listed > shown:  # one paper and still too big: the contents
            listed = max(shown, min(listed - 1, int(listed * limit / size * 0.9)))
            html = inline_css(self.email_html(issue, variant, layout, listed))
            size = len(html.encode("utf-8"))
        subject = self.subject(issue, variant)
        text, text_note = self.fitted_text(issue, variant, size)
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
                  f"{self.settings.delivery.max_html_kb}; {kept}; {size / 1024:.0f} KB")
        return EmailVariant(variant, subject, html, text, layout="compact",
                            reason="; ".join([reason, *notes]))

    def cut_commentary(self, issue: Issue, variant: str) -> tuple[Issue, list[str]]:
        """The issue with each entry's commentary in this variant cut to
        EMAIL_COMMENTARY_CHARS, the cut paragraph ending with a link to the entry on the web
        page (in its own language, so the variant keeps it); and what was cut."""
        page = f"{self.base}{self.page_name(issue.date, variant)}"
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

    def fitted_text(self, issue: Issue, variant: str, html_bytes: int) -> tuple[str, str | None]:
        """The text part, with fewer papers (the rest on the web) when the whole message
        would pass delivery.max_message_bytes; and a note when it was cut."""
        budget = self.settings.delivery.max_message_bytes - _HEADERS_COST
        text = self.email_text(issue, variant)
        size = len(text.encode("utf-8"))
        if (html_bytes + size) * _BASE64_COST <= budget:
            return text, None
        total = len(issue.entries)
        shown = total
        while (html_bytes + size) * _BASE64_COST > budget and shown > 1:
            room = max(budget / _BASE64_COST - html_bytes, 1)
            shown = max(1, min(shown - 1, int(shown * room / size * 0.97)))
            text = self.email_text(replace(issue, entries=issue.entries[:shown]), variant,
                                   shortened=True)
            size = len(text.encode("utf-8"))
        return text, (f"the text part shows {shown} of {total} papers, to keep the message "
                      f"under delivery.max_message_bytes = "
                      f"{self.settings.delivery.max_message_bytes:,} (the rest on the web)")

    def text_body(self, issue: Issue, variant: str) -> str:
        """The issue in the digest format as readers get it: spaced (a blank line between
        papers), each paper's abs URL, the variant's commentary; not wrapped yet."""
        lang = self.ui_lang(variant)
        style: DateStyle = "ko" if lang == "ko" else "en"
        # Only an http(s) URL makes a link line; anything else would read back as the abstract.
        entries = tuple(replace(e, commentary=variant_commentary(e, variant), url=safe_url(e.url))
                        for e in issue.entries)
        # Not strict: a reader's copy shows whatever the issue holds (the draft's own check
        # already refused entries that would not read back the same).
        digest = Digest(issue.date, entries, date_style=style)
        return write_digest(digest, spaced=True, abs_urls=True, strict=False)

    def text_signature(self, issue: Issue, variant: str, unsubscribe: bool,
                       shortened: bool = False) -> list[str]:
        """The lines below the "-- " separator: the other new papers, then the ways to the
        web version (and out, in the email); `shortened`: says the web has the rest."""
        ui = UI[self.ui_lang(variant)]
        lines: list[str] = []
        for p in issue.more_papers:
            if not lines:
                lines += [ui["more_papers"], ""]
            lines += [f"* {p.title}", f"  {p.abs_url}"]
        if lines:
            lines.append("")
        if shortened:
            lines = [ui["compact"], "", *lines]
        lines.append(f"{ui['view_web']}: {self.base}{self.page_name(issue.date, variant)}")
        lines.append(f"{ui['archive']}: {self.base}{self.index_name(variant, None)}")
        if unsubscribe:
            lines.append(f"{ui['unsubscribe']}: {UNSUBSCRIBE_PLACEHOLDER}")
        return lines

    def email_text(self, issue: Issue, variant: str, unsubscribe: bool = True,
                   shortened: bool = False) -> str:
        """The text/plain part (RFC 3676 format=flowed, DelSp=No): the digest in its
        readers' form, then a signature block (after the standard "-- " line) with the other
        papers and the web and unsubscribe links, so a reader of plain text can leave too.
        Unflowed, it reads back (`digest check --flowed`) to the same entries."""
        lines = [self.text_body(issue, variant), SIGNATURE.rstrip("\n")]
        lines += self.text_signature(issue, variant, unsubscribe, shortened)
        # The reader's unsubscribe URL is longer than its placeholder: wrap as if the
        # placeholder were too long for any line, so the URL gets a line of its own.
        wide = UNSUBSCRIBE_PLACEHOLDER.ljust(WIDTH + 1, "_")
        text = flow("\n".join(lines).replace(UNSUBSCRIBE_PLACEHOLDER, wide))
        return text.replace(wide, UNSUBSCRIBE_PLACEHOLDER) + "\n"

    def emails(self, issue: Issue) -> list[EmailVariant]:
        """Every configured variant of the issue's email."""
        return [self.email(issue, v) for v in self.settings.variants]


    # -- web pages and feeds --

    def issue_fragment(
        self, issue: Issue, variant: str, base: str, entries: list[EntryView] | None = None
    ) -> str:
        """The issue's entries (or the given views of them) as an HTML fragment: feed content."""
        return self.render(
            "fragment.html",
            **self.context(issue, variant, base),
            entries=self.entry_views(issue, variant, base) if entries is None else entries,
        )

    def issue_pages(
        self, issue: Issue, prev: date | None = None, next: date | None = None
    ) -> dict[str, str]:
        """site/issues/D.html (default variant) and D.<lang>.html: path -> HTML; `prev` and
        `next` are the dates of the archived issues around it; and the text of each (D.txt,
        D.<lang>.txt: the email's text part without its unsubscribe line)."""
        issue = clean_issue(issue)
        pages = {}
        for variant in self.settings.variants:
            ctx = self.context(issue, variant, "../")
            others = self.other_variants(variant, lambda v: "../" + self.page_name(issue.date, v))
            around = {
                name: {"url": "../" + self.page_name(day, variant),
                       "date_text": self.date_text(day, variant)} if day else None
                for name, day in (("prev", prev), ("next", next))
            }
            canonical = self.base + self.page_name(issue.date, variant)
            pages[self.page_name(issue.date, variant)] = self.render(
                "issue.html",
                **{**ctx, **self.site_context(variant, "../", canonical)},
                entries=self.entry_views(issue, variant, "../"),
                others=others,
                **around,
            )
            text_name = self.page_name(issue.date, variant).removesuffix(".html") + ".txt"
            pages[text_name] = self.email_text(issue, variant, unsubscribe=False)
        return pages

    def archive_files(self, issues: Iterable[Issue], tags: Iterable[str]) -> dict[str, str | None]:
        """Every archive file for these issues held in memory (small archives, tests): the
        index pages, the feeds, the tags page and the pages/feeds of `tags` (None = delete).
        `pipeline.publish.archive` writes the same files from the store, a few at a time."""
        oldest = sorted((clean_issue(i) for i in issues), key=lambda i: i.date)
        newest = oldest[::-1]
        rows = [(i.date, archived_entries(i)) for i in oldest]
        files: dict[str, str | None] = {}
        for variant in self.settings.variants:
            for page in paginate(len(rows), self.page_size):
                shown = rows[page.first - 1 : page.last][::-1]
                files[self.index_name(variant, page.number)] = self.index_page(
                    variant, shown, page)
            files[self.feed_name(variant)] = self.feed(newest, variant)
        wanted = set(tags)
        tagged: dict[str, list[Tagged]] = {}
        for issue in oldest:
            for number, entry in enumerate(issue.entries, start=1):
                for key in dict.fromkeys(entry.tag_keys):
                    tagged.setdefault(key, []).append(Tagged(issue, number, entry))
        for key in sorted(wanted):
            pairs = tagged.get(key, [])
            if not pairs:
                files[self.tag_page_name(key, None)] = files[self.tag_feed_name(key)] = None
                continue
            for page in paginate(len(pairs), self.page_size):
                files[self.tag_page_name(key, page.number)] = self.tag_page(
                    key, pairs[page.first - 1 : page.last][::-1], page)
            files[self.tag_feed_name(key)] = self.tag_feed(key, pairs[::-1])
        files[TAGS_INDEX] = self.tags_page({k: len(v) for k, v in tagged.items()})
        return files

    def index_page(
        self, variant: str, issues: Sequence[tuple[date, Sequence[ArchivedEntry]]], page: Page
    ) -> str:
        """index.html / archive/page-N.html of a variant: these issues (newest first) with
        every title linking to its place in the issue page."""
        base = "" if page.number is None else "../"
        rows = []
        for day, entries in issues:
            url = base + self.page_name(day, variant)
            titles = []
            for e in entries:
                title = clean_title(e.title)
                titles.append({"title": title, "url": f"{url}#{anchor_of(e.arxiv_id, title)}"})
            keys = dict.fromkeys(k for e in entries for k in e.tags)
            rows.append(
                {
                    "url": url,
                    "date_text": self.date_text(day, variant),
                    "count": len(entries),
                    "titles": titles,
                    "tags": [TagView("#" + k, k, self.tag_url(k, base)) for k in keys],
                }
            )
        others = self.other_variants(variant, lambda v: base + self.index_name(v, page.number))
        return self.render(
            "index.html",
            **self.site_context(variant, base, self.base + self.index_name(variant, page.number)),
            issues=rows,
            page=page,
            pages=self.pager(page, lambda n: base + self.index_name(variant, n)),
            others=others,
        )

    def pager(self, page: Page, url: Callable[[int | None], str]) -> dict[str, Any]:
        """Links from a page to the newest page and to the full pages older than it."""
        return {
            "newest": url(None),
            "older": [(n, url(n)) for n in range(page.older, 0, -1)],
        }

    def tags_page(self, counts: Mapping[str, int]) -> str:
        """site/tags/index.html: every tag with its count, its page and its feed."""
        variant = self.default_variant
        rows = [
            {
                "label": "#" + key,
                "count": n,
                "url": quote(self.tag_page_name(key, None).removeprefix("tags/")),
                "feed": quote(self.tag_feed_name(key).removeprefix("tags/")),
                "feed_title": self.tag_feed_title(key),
            }
            for key, n in sorted(counts.items())
            if n > 0
        ]
        return self.render(
            "tags.html",
            **self.site_context(variant, "../", self.base + TAGS_INDEX),
            tags=rows,
        )

    def feed(self, newest: Sequence[Issue], variant: str) -> str:
        """site/feed.xml (or feed.<lang>.xml): the newest issues, full HTML in each item."""
        items = []
        for issue in newest[: self.settings.newsletter.feed_items]:
            url = self.base + self.page_name(issue.date, variant)
            items.append(
                {
                    "title": self.subject(issue, variant),
                    "link": url,
                    "guid": url,
                    "pub_date": rfc822(item_datetime(issue, self.settings)),
                    "description": self.preheader(issue, variant),
                    "content": self.feed_content(issue, variant),
                    "categories": issue.tags,
                }
            )
        return self.feed_xml(
            variant, self.feed_title(variant), self.base, self.title, self.feed_name(variant), items
        )

    def feed_content(self, issue: Issue, variant: str, number: int = 0) -> str:
        """A feed item's HTML: the whole issue, or (number > 0) its one entry, the entry
        `number` of its issue; taken from `self.fragments` when rendered by an earlier build."""
        digest = ""
        if self.fragments is not None:
            # Every field of the issue (a field added later counts too), bar the merge's notes.
            what = (self.fingerprint, variant, number, replace(issue, unresolved=()))
            digest = hashlib.sha256(repr(what).encode("utf-8")).hexdigest()
            hit = self.fragments.get(issue.date, number, variant, digest)
            if hit is not None:
                return hit
        if number:
            view = self.entry_view(issue.date, number, issue.entries[0], variant, self.base)
            # no "04" kicker: the paper's place in its issue means nothing in a tag feed
            html = self.issue_fragment(issue, variant, self.base, [replace(view, number=0)])
        else:
            html = self.issue_fragment(issue, variant, self.base)
        if self.fragments is not None:
            self.fragments.put(issue.date, number, variant, digest, html)
        return html

    def tag_page(self, key: str, tagged: Sequence[Tagged], page: Page | None = None) -> str:
        """site/tags/<tag>.html or tags/<tag>/page-N.html: these papers (newest first), from
        cleaned issues (clean_issue) like every Tagged."""
        variant = self.default_variant
        lang = self.ui_lang(variant)
        page = page or newest_page(len(tagged), self.page_size)
        base = "../" if page.number is None else "../../"
        groups: list[dict[str, Any]] = []
        for t in tagged:
            if not groups or groups[-1]["date_iso"] != t.issue.date.isoformat():
                groups.append(
                    {
                        "date_iso": t.issue.date.isoformat(),
                        "date_text": self.date_text(t.issue.date, variant),
                        "url": base + self.page_name(t.issue.date, variant),
                        "entries": [],
                    }
                )
            groups[-1]["entries"].append(
                {
                    "title": t.entry.title,
                    "url": f"{groups[-1]['url']}#{entry_anchor(t.entry)}",
                    "authors": format_authors(t.entry.authors, UI[lang]),
                }
            )
        feed = FeedLink(self.tag_feed_title(key), base + quote(self.tag_feed_name(key)))
        canonical = self.base + quote(self.tag_page_name(key, page.number))
        return self.render(
            "tag.html",
            **{**self.site_context(variant, base, canonical),
               "feeds": [feed, *self.feed_links(variant, base)]},
            tag=key,
            count=page.total,
            groups=groups,
            page=page,
            pages=self.pager(page, lambda n: base + quote(self.tag_page_name(key, n))),
            tag_feed=feed,
        )

    def tag_feed(self, key: str, tagged: Sequence[Tagged]) -> str:
        """site/tags/<tag>.xml: one item per paper with the tag, newest first, titled by the
        paper and summarized by the curator's commentary (in the feed's language), then the
        abstract."""
        variant = self.default_variant
        lang = self.ui_lang(variant)
        items = []
        for t in tagged[:TAG_FEED_ITEMS]:
            web_url = f"{self.base}{self.page_name(t.issue.date, variant)}#{entry_anchor(t.entry)}"
            one = replace(t.issue, entries=(t.entry,), more_papers=())
            notes = variant_commentary(t.entry, lang) or t.entry.commentary
            summary = "".join(f"<p>{linkify(p)}</p>" for p in (*notes, t.entry.abstract) if p)
            items.append(
                {
                    "title": t.entry.title,
                    "link": safe_url(t.entry.link) or web_url,
                    "guid": web_url,
                    "pub_date": rfc822(item_datetime(t.issue, self.settings)),
                    "description": summary,
                    "content": self.feed_content(one, variant, t.number),
                    "categories": t.entry.tag_keys,
                }
            )
        return self.feed_xml(
            variant, self.tag_feed_title(key), self.tag_url(key, self.base),
            f"{self.title} #{key}", quote(self.tag_feed_name(key)), items,
        )

    def feed_xml(
        self, variant: str, title: str, link: str, description: str, name: str,
        items: list[dict[str, Any]],
    ) -> str:
        """An RSS feed at `name` under the site, its items newest first."""
        return self.render(
            "feed.xml",
            title=title,
            link=link,
            description=description,
            lang=self.ui_lang(variant),
            self_url=self.base + name,
            # A corrected item is re-dated: the newest date is not always the first item's.
            last_build=max((i["pub_date"] for i in items), key=parsedate_to_datetime)
            if items else None,
            items=items,
        )


def layout_note(variants: Sequence[EmailVariant]) -> str | None:
    """One line for `build` when the size guard switched a variant to the compact layout."""
    compact = [f"{v.variant}: {v.reason}" for v in variants if v.layout != "full"]
    return "compact layout: " + "; ".join(compact) if compact else None


def tag_stem(key: str) -> str:
    """A tag's file name in tags/: the tag itself, but never 'index' (the tags page); no tag
    contains '_' (normalize_tag turns it into '-'), so the renamed one clashes with none."""
    return "index_" if key == "index" else key


def paginate(total: int, size: int = PAGE_SIZE) -> list[Page]:
    """Every page of a list of `total` items: the full ones, then the newest."""
    full = [full_page(n, size) for n in range(1, total // size + 1)]
    return [*full, newest_page(total, size)]


@functools.lru_cache(maxsize=4096)
def _long_date(day: date, lang: str) -> str:
    return format_date(day, format="long", locale=lang)


def template_dirs(override: Path | None) -> list[str]:
    """The template folders in lookup order: the newsletter's own, then the bundled one."""
    dirs = [str(d) for d in (override, BUNDLED_TEMPLATES) if d is not None and d.is_dir()]
    return list(dict.fromkeys(dirs))


def render_fingerprint(settings: Settings) -> str:
    """A digest of what rendering depends on besides the issue: the templates, this code and
    the newsletter's settings; a cached render with another fingerprint is stale."""
    h = hashlib.sha256()
    for folder in template_dirs(settings.paths.templates):
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                h.update(f"{path.relative_to(folder)}\0".encode())
                h.update(path.read_bytes())
    for module in (__file__, Path(__file__).parents[1] / "core" / "models.py"):
        h.update(Path(module).read_bytes())
    h.update(repr((settings.newsletter, settings.variants, settings.locale_language)).encode())
    return h.hexdigest()


def make_environment(override: Path | None) -> Environment:
    """Jinja2 with autoescaping and strict undefineds; `override` shadows bundled files."""
    dirs = template_dirs(override)
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(d) for d in dirs]),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


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

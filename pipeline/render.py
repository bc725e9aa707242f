"""Render an issue: the email per variant (CSS inlined once), its text part, web pages, feeds.

Pure: reads templates, never writes. `pipeline.site` puts the results on disk.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from email.utils import format_datetime
from pathlib import Path
from typing import Any
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

from pipeline.config import Settings
from pipeline.digest import write_digest
from pipeline.errors import ConfigError
from pipeline.models import (
    UNSUBSCRIBE_PLACEHOLDER,
    DateStyle,
    Digest,
    EmailVariant,
    Entry,
    Issue,
    Paper,
    has_hangul,
    is_links_only,
)

BUNDLED_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

MAX_AUTHORS = 10  # longer lists show the first SHOWN_AUTHORS and how many more
SHOWN_AUTHORS = 6
TAG_FEED_ITEMS = 50  # newest papers per site/tags/<tag>.xml
# Tried in order until the email fits delivery.max_html_kb: compact?, abstract length
# (None = whole, 0 = none), entries shown (None = all; then fewer, the rest on the web).
Layout = tuple[bool, int | None, int | None]
_LAYOUTS: tuple[Layout, ...] = ((False, None, None), (True, 280, None), (True, 0, None))

# XML 1.0 Char: no C0 controls but tab, LF, CR; no surrogates, no U+FFFE/U+FFFF.
_XML_FORBIDDEN_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# URLs in running text: ASCII only, so Korean particles glued to a URL stay outside it.
_URL_RE = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%()]+", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:!?)]"
_ARXIV_ABS_RE = re.compile(r"https?://(?:www\.)?arxiv\.org/abs/([\w.\-/]+?)/?", re.IGNORECASE)

# RFC 3676's signature separator: clients dim what follows it.
SIGNATURE = "-- \n"


LANG_LABELS = {"ko": "한국어", "en": "English", "all": "한국어 + English"}
UI: dict[str, dict[str, str]] = {
    "ko": {
        "papers": "이번 호 논문 {n}편",
        "view_web": "웹에서 보기",
        "unsubscribe": "수신 거부",
        "archive": "지난 호 보기",
        "archive_title": "지난 호",
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
    },
    "en": {
        "papers": "{n} papers in this issue",
        "view_web": "View in browser",
        "unsubscribe": "Unsubscribe",
        "archive": "Past issues",
        "archive_title": "All issues",
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
            title=clean_text(e.title).strip() or "…",
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
    if entry.arxiv_id is not None:
        return "p-" + re.sub(r"[^0-9A-Za-z]", "-", entry.arxiv_id)
    return "p-" + hashlib.sha256(entry.title.encode("utf-8")).hexdigest()[:12]


def variant_commentary(entry: Entry, variant: str) -> tuple[str, ...]:
    """The commentary a variant shows: one language's paragraphs, or all of them."""
    # Paragraphs that are only links belong to no language: every variant shows them.
    if variant == "ko":
        return tuple(p for p in entry.commentary if has_hangul(p) or is_links_only(p))
    if variant == "en":
        return tuple(p for p in entry.commentary if not has_hangul(p))
    return entry.commentary


def pub_datetime(day: date, settings: Settings) -> datetime:
    """When an issue counts as published in feeds: midnight of its date, newsletter time."""
    return datetime.combine(day, time(0, 0), tzinfo=settings.tzinfo)


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
    """An entry carrying a tag, with its issue and its place in it."""

    issue: Issue
    number: int
    entry: Entry


@dataclass(frozen=True)
class MoreView:
    title: str
    link: str


class Renderer:
    """Renders issues with a newsletter's templates (its own override the bundled ones)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base = settings.newsletter.base_url.rstrip("/") + "/"
        self.title = clean_text(settings.newsletter.title)
        self.env = make_environment(settings.paths.templates)

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
        suffix = "" if variant == self.default_variant else f".{variant}"
        return f"issues/{day.isoformat()}{suffix}.html"

    @property
    def default_variant(self) -> str:
        """The variant of the web archive's main pages and feed.xml ('all' or the sole one)."""
        return self.settings.variants[-1]

    def feed_name(self, variant: str) -> str:
        """feed.xml for the default variant, feed.<lang>.xml for the others."""
        return "feed.xml" if variant == self.default_variant else f"feed.{variant}.xml"

    def tag_url(self, key: str, base: str) -> str:
        """A tag page's URL under `base`."""
        return f"{base}tags/{quote(key)}.html"

    def subject(self, issue: Issue, variant: str) -> str:
        """The email subject: newsletter title and date."""
        return f"{issue.title} · {self.date_text(issue.date, variant)}"

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
            "archive_url": base + "index.html",
            "feed_url": base + self.feed_name(variant),
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

    def email_html(self, issue: Issue, variant: str, layout: Layout) -> str:
        """The email HTML of one variant in one layout, before CSS inlining."""
        compact, abstract_limit, max_entries = layout
        shown = replace(issue, entries=issue.entries[:max_entries])
        ctx = self.context(issue, variant, self.base)
        return self.render(
            "email.html",
            **ctx,
            subject=self.subject(issue, variant),
            preheader=self.preheader(issue, variant),
            entries=self.entry_views(shown, variant, self.base, abstract_limit),
            compact=compact,
            rest=len(issue.entries) - len(shown.entries),
            unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER,
        )

    def email(self, issue: Issue, variant: str) -> EmailVariant:
        """One email variant: inlined HTML (compact when too big) and the digest-format text."""
        issue = clean_issue(issue)
        limit = self.settings.delivery.max_html_kb * 1024
        html, size = "", 0
        for layout in _LAYOUTS:
            html = inline_css(self.email_html(issue, variant, layout))
            size = len(html.encode("utf-8"))
            if size <= limit:
                break
        shown = len(issue.entries)
        while size > limit and shown > 1:
            # Entries cost about the same: aim just under the limit, then step down.
            shown = max(1, min(shown - 1, int(shown * limit / size * 0.97)))
            html = inline_css(self.email_html(issue, variant, (True, 0, shown)))
            size = len(html.encode("utf-8"))
        subject = self.subject(issue, variant)
        return EmailVariant(variant, subject, html, self.email_text(issue, variant))

    def email_text(self, issue: Issue, variant: str) -> str:
        """The text/plain part: the digest format with the variant's commentary, then a
        signature block (after the standard "-- " line) with the web and unsubscribe links,
        so a reader of plain text can leave too."""
        lang = self.ui_lang(variant)
        style: DateStyle = "ko" if lang == "ko" else "en"
        entries = tuple(replace(e, commentary=variant_commentary(e, variant)) for e in issue.entries)
        body = write_digest(Digest(issue.date, entries, date_style=style))
        ui = UI[lang]
        web = self.base + self.page_name(issue.date, variant)
        return (
            f"{body}\n{SIGNATURE}{ui['view_web']}: {web}\n"
            f"{ui['unsubscribe']}: {UNSUBSCRIBE_PLACEHOLDER}\n"
        )

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

    def issue_pages(self, issue: Issue) -> dict[str, str]:
        """site/issues/D.html (default variant) and D.<lang>.html: path -> HTML."""
        issue = clean_issue(issue)
        pages = {}
        for variant in self.settings.variants:
            ctx = self.context(issue, variant, "../")
            others = [
                (LANG_LABELS.get(v, v), "../" + self.page_name(issue.date, v))
                for v in self.settings.variants
                if v != variant
            ]
            pages[self.page_name(issue.date, variant)] = self.render(
                "issue.html",
                **ctx,
                entries=self.entry_views(issue, variant, "../"),
                others=others,
                canonical=self.base + self.page_name(issue.date, variant),
            )
        return pages

    def archive_files(self, issues: Iterable[Issue], tags: Iterable[str]) -> dict[str, str | None]:
        """index.html, the feeds and the pages/feeds of `tags`: path -> text (None = delete)."""
        newest = sorted((clean_issue(i) for i in issues), key=lambda i: i.date, reverse=True)
        wanted = set(tags)
        tagged: dict[str, list[Tagged]] = {key: [] for key in wanted}
        for issue in newest:
            for number, entry in enumerate(issue.entries, start=1):
                for key in dict.fromkeys(entry.tag_keys):
                    if key in wanted:
                        tagged[key].append(Tagged(issue, number, entry))
        files: dict[str, str | None] = {"index.html": self.index_page(newest)}
        for variant in self.settings.variants:
            files[self.feed_name(variant)] = self.feed(newest, variant)
        for key in sorted(wanted):
            pairs = tagged[key]
            files[f"tags/{key}.html"] = self.tag_page(key, pairs) if pairs else None
            files[f"tags/{key}.xml"] = self.tag_feed(key, pairs) if pairs else None
        return files

    def index_page(self, newest: Sequence[Issue]) -> str:
        """site/index.html: every issue (cleaned, newest first)."""
        variant = self.default_variant
        rows = [
            {
                "url": self.page_name(i.date, variant),
                "date_text": self.date_text(i.date, variant),
                "count": len(i.entries),
                "titles": [e.title for e in i.entries[:3]],
                "tags": [TagView("#" + k, k, self.tag_url(k, "")) for k in i.tags],
            }
            for i in newest
        ]
        return self.render(
            "index.html",
            **self.page_context(variant),
            issues=rows,
            feed_url=self.feed_name(variant),
            canonical=self.base + "index.html",
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
                    "pub_date": rfc822(pub_datetime(issue.date, self.settings)),
                    "description": self.preheader(issue, variant),
                    "content": self.issue_fragment(issue, variant, self.base),
                    "categories": issue.tags,
                }
            )
        return self.feed_xml(
            variant, self.title, self.base, self.title, self.feed_name(variant), items
        )

    def tag_page(self, key: str, tagged: Sequence[Tagged]) -> str:
        """site/tags/<tag>.html: every paper with the tag, newest issue first."""
        variant = self.default_variant
        lang = self.ui_lang(variant)
        groups: list[dict[str, Any]] = []
        for t in tagged:
            if not groups or groups[-1]["date_iso"] != t.issue.date.isoformat():
                groups.append(
                    {
                        "date_iso": t.issue.date.isoformat(),
                        "date_text": self.date_text(t.issue.date, variant),
                        "url": "../" + self.page_name(t.issue.date, variant),
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
        return self.render(
            "tag.html",
            **self.page_context(variant),
            tag=key,
            count=len(tagged),
            groups=groups,
            feed_url=f"{quote(key)}.xml",
            canonical=self.tag_url(key, self.base),
        )

    def tag_feed(self, key: str, tagged: Sequence[Tagged]) -> str:
        """site/tags/<tag>.xml: one item per paper with the tag, newest first."""
        variant = self.default_variant
        items = []
        for t in tagged[:TAG_FEED_ITEMS]:
            view = self.entry_view(t.issue.date, t.number, t.entry, variant, self.base)
            one = replace(t.issue, entries=(t.entry,), more_papers=())
            items.append(
                {
                    "title": t.entry.title,
                    "link": view.link or view.web_url,
                    "guid": view.web_url,
                    "pub_date": rfc822(pub_datetime(t.issue.date, self.settings)),
                    "description": shorten(t.entry.abstract, 300),
                    "content": self.issue_fragment(one, variant, self.base, [view]),
                    "categories": t.entry.tag_keys,
                }
            )
        return self.feed_xml(
            variant, f"{self.title} · #{key}", self.tag_url(key, self.base), f"{self.title} #{key}",
            f"tags/{quote(key)}.xml", items,
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
            last_build=items[0]["pub_date"] if items else None,
            items=items,
        )


@functools.lru_cache(maxsize=4096)
def _long_date(day: date, lang: str) -> str:
    return format_date(day, format="long", locale=lang)


def make_environment(override: Path | None) -> Environment:
    """Jinja2 with autoescaping and strict undefineds; `override` shadows bundled files."""
    dirs = [str(d) for d in (override, BUNDLED_TEMPLATES) if d is not None and d.is_dir()]
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(d) for d in dict.fromkeys(dirs)]),
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

"""Render an issue: the email per variant (CSS inlined once), its text part, web pages, feeds.

Pure: reads templates, never writes. `pipeline.publish.site` puts the results on disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)

from pipeline.core.bundle import bundled
from pipeline.core.config import Settings
from pipeline.core.errors import ConfigError
from pipeline.core.models import (
    UNSUBSCRIBE_PLACEHOLDER,
    ArchivedEntry,
    EmailVariant,
    Entry,
    Issue,
    has_hangul,
)
from pipeline.core.subject import SUBJECT_WIDTH, compile_subject
from pipeline.publish import size_guard, textpart
from pipeline.publish.size_guard import Layout
from pipeline.publish.textpart import SIGNATURE as SIGNATURE
from pipeline.publish.views import (
    PAGE_SIZE,
    EntryView,
    FeedLink,
    MoreView,
    NoteView,
    Page,
    Tagged,
    TagView,
    newest_page,
)

# The words and text helpers live in `words`; re-exported here, where callers look for them.
from pipeline.publish.words import LANG_LABELS as LANG_LABELS
from pipeline.publish.words import MAX_AUTHORS as MAX_AUTHORS
from pipeline.publish.words import SHOWN_AUTHORS as SHOWN_AUTHORS
from pipeline.publish.words import UI as UI
from pipeline.publish.words import _long_date
from pipeline.publish.words import anchor_of as anchor_of
from pipeline.publish.words import clean_issue as clean_issue
from pipeline.publish.words import clean_text as clean_text
from pipeline.publish.words import clean_title as clean_title
from pipeline.publish.words import entry_anchor as entry_anchor
from pipeline.publish.words import format_authors as format_authors
from pipeline.publish.words import item_datetime as item_datetime
from pipeline.publish.words import link_label as link_label
from pipeline.publish.words import linkify as linkify
from pipeline.publish.words import rfc822 as rfc822
from pipeline.publish.words import safe_url as safe_url
from pipeline.publish.words import shorten as shorten
from pipeline.publish.words import variant_commentary as variant_commentary

BUNDLED_TEMPLATES = bundled("templates")

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

    def tag_url(self, key: str, base: str, variant: str | None = None) -> str:
        """A tag page's URL under `base`, in a variant's language (default: the main one)."""
        return base + quote(self.tag_page_name(key, None, variant))

    def tag_page_name(self, key: str, page: int | None, variant: str | None = None) -> str:
        """tags/<tag>.html (its newest papers), tags/<tag>/page-N.html (its full pages), with
        .<lang> before .html for the variants other than the default one."""
        stem = tag_stem(key)
        suffix = self.variant_suffix(variant or self.default_variant)
        return (f"tags/{stem}{suffix}.html" if page is None
                else f"tags/{stem}/page-{page}{suffix}.html")

    def tags_index_name(self, variant: str | None = None) -> str:
        """tags/index.html, or tags/index.<lang>.html for the other variants."""
        return f"tags/index{self.variant_suffix(variant or self.default_variant)}.html"

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

    def subscribe_url(self, variant: str) -> str:
        """The subscribe page of `digest serve` in a variant's language (?lang=: the form
        speaks it and offers that variant first); the widest variant's is the plain one."""
        if variant == self.settings.variants[-1] and variant not in UI:
            return self.base + "subscribe"
        return f"{self.base}subscribe?lang={quote(variant)}"

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
                TagView("#" + t, key, self.tag_url(key, base, variant))
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

    def footer_languages(self, variant: str) -> list[str]:
        """The languages of an email's footer and a text part's links: the variant's own, or
        for the widest variant every language it carries, its interface language first."""
        first = self.ui_lang(variant)
        if variant in UI:
            return [first]
        return [first] + [v for v in self.settings.variants if v in UI and v != first]

    def footer_label(self, variant: str, key: str) -> str:
        """One footer word in each of the variant's footer languages ("Unsubscribe",
        "수신 거부 / Unsubscribe")."""
        return " / ".join(dict.fromkeys(UI[lang][key] for lang in self.footer_languages(variant)))

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
            "footer_why": [(lang, UI[lang]["why"].format(title=self.title))
                           for lang in self.footer_languages(variant)],
            "footer": {key: self.footer_label(variant, key)
                       for key in ("view_web", "archive", "unsubscribe")},
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
            "tags_url": base + self.tags_index_name(variant),
            "subscribe_url": self.subscribe_url(variant),
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
        """One email variant, fitted to the size limits (size_guard.fit_email)."""
        return size_guard.fit_email(self, issue, variant)

    def text_body(self, issue: Issue, variant: str) -> str:
        """The issue as a text part's body (textpart.body), not wrapped yet."""
        return textpart.body(self, issue, variant)

    def email_text(self, issue: Issue, variant: str, unsubscribe: bool = True,
                   shortened: bool = False) -> str:
        """The text/plain part (textpart.email_text); `shortened`: it says the web has the
        papers it leaves out."""
        return textpart.email_text(self, issue, variant, unsubscribe, shortened)

    def emails(self, issue: Issue) -> list[EmailVariant]:
        """Every configured variant of the issue's email."""
        return [self.email(issue, v) for v in self.settings.variants]


    # -- web pages and feeds --

    def issue_fragment(
        self, issue: Issue, variant: str, base: str, entries: list[EntryView] | None = None,
        flowing: bool = False,
    ) -> str:
        """The issue's entries (or the given views of them) as an HTML fragment: the body of
        its web page, and (flowing: no layout table, for feed readers) feed content."""
        return self.render(
            "fragment.html",
            **self.context(issue, variant, base),
            entries=self.entry_views(issue, variant, base) if entries is None else entries,
            flowing=flowing,
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
                    "tags": [TagView("#" + k, k, self.tag_url(k, base, variant)) for k in keys],
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

    def tags_page(self, counts: Mapping[str, int], variant: str | None = None) -> str:
        """site/tags/index[.<lang>].html: every tag with its count, its page and its feed."""
        variant = variant or self.default_variant
        rows = [
            {
                "label": "#" + key,
                "count": n,
                "url": quote(self.tag_page_name(key, None, variant).removeprefix("tags/")),
                "feed": quote(self.tag_feed_name(key).removeprefix("tags/")),
                "feed_title": self.tag_feed_title(key),
            }
            for key, n in sorted(counts.items())
            if n > 0
        ]
        return self.render(
            "tags.html",
            **self.site_context(variant, "../", self.base + self.tags_index_name(variant)),
            tags=rows,
            others=self.other_variants(
                variant, lambda v: "../" + self.tags_index_name(v)),
        )

    def tag_page(self, key: str, tagged: Sequence[Tagged], page: Page | None = None,
                 variant: str | None = None) -> str:
        """site/tags/<tag>[.<lang>].html or tags/<tag>/page-N[.<lang>].html: these papers
        (newest first), from cleaned issues (clean_issue) like every Tagged; its links lead
        to the issue pages of its language."""
        variant = variant or self.default_variant
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
        canonical = self.base + quote(self.tag_page_name(key, page.number, variant))
        others = self.other_variants(
            variant, lambda v: base + quote(self.tag_page_name(key, page.number, v)))
        return self.render(
            "tag.html",
            **{**self.site_context(variant, base, canonical),
               "feeds": [feed, *self.feed_links(variant, base)]},
            tag=key,
            count=page.total,
            groups=groups,
            page=page,
            pages=self.pager(page, lambda n: base + quote(self.tag_page_name(key, n, variant))),
            others=others,
            tag_feed=feed,
        )


def tag_stem(key: str) -> str:
    """A tag's file name in tags/: the tag itself, but never 'index' (the tags page); no tag
    contains '_' (normalize_tag turns it into '-'), so the renamed one clashes with none."""
    return "index_" if key == "index" else key


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
    here = Path(__file__).parent
    for module in (*sorted(here.glob("*.py")), here.parent / "core" / "models.py"):
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

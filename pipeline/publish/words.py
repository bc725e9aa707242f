"""The words of the archive, the emails and the feeds (Korean and English), and the pure
text helpers every rendering shares: cleaning, links, authors, anchors, dates."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from babel.dates import format_date
from markupsafe import Markup, escape

from pipeline.core.calendar import issue_published_at
from pipeline.core.config import Settings
from pipeline.core.models import Entry, Issue, Paper, has_hangul, is_links_only

MAX_AUTHORS = 10  # longer lists show the first SHOWN_AUTHORS and how many more
SHOWN_AUTHORS = 6

# XML 1.0 Char: no C0 controls but tab, LF, CR; no surrogates, no U+FFFE/U+FFFF.
_XML_FORBIDDEN_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# URLs in running text: ASCII only, so Korean particles glued to a URL stay outside it.
_URL_RE = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%()]+", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:!?)]"
_ARXIV_ABS_RE = re.compile(r"https?://(?:www\.)?arxiv\.org/abs/([\w.\-/]+?)/?", re.IGNORECASE)

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
        "corrected_mark": "수정됨",
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
        "corrected_mark": "corrected",
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


def item_datetime(issue: Issue, settings: Settings) -> datetime:
    """A feed item's date: its correction when corrected (so readers show it as updated)."""
    if issue.corrected is not None:
        return issue.corrected.astimezone(settings.tzinfo).replace(microsecond=0)
    return issue_published_at(issue.date, settings.tzinfo)


def rfc822(moment: datetime) -> str:
    """An RFC 822 date (RSS pubDate), in English whatever the locale."""
    return format_datetime(moment)




@functools.lru_cache(maxsize=4096)
def _long_date(day: date, lang: str) -> str:
    return format_date(day, format="long", locale=lang)

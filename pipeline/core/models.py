"""Frozen dataclasses passed between stages; third-party objects never get this far."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

AnnounceType = Literal["new", "cross", "replace", "replace-cross"]
ANNOUNCE_TYPES: tuple[str, ...] = ("new", "cross", "replace", "replace-cross")
DateStyle = Literal["ko", "iso", "en"]

# New style YYMM.NNNN(N) and old style archive(.SUBJ)/YYMMNNN, each with an optional vN.
ARXIV_ID_RE = re.compile(
    r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?"
)
_HANGUL_RE = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
TAG_RE = re.compile(r"#([\w\-]+)")
# A tag names files (site/tags/<tag>.xml): 60 characters stay under the 255-byte file name
# limit even in a 4-byte script, with room for the suffix.
MAX_TAG_LENGTH = 60


def has_hangul(text: str) -> bool:
    """True when the text contains a Hangul syllable or jamo."""
    return _HANGUL_RE.search(text) is not None


_LINKS_ONLY_RE = re.compile(r"(?:[(<]?https?://[^\s()<>]+[)>]?[\s,]*)+")


def is_links_only(paragraph: str) -> bool:
    """True for a paragraph that is only URLs (a project page, a repository)."""
    return paragraph.startswith(("http", "(", "<")) and _LINKS_ONLY_RE.fullmatch(paragraph) is not None


def normalize_tag(tag: str) -> str:
    """Canonical form for comparing tags: no '#', case-folded, '_' and '-' alike."""
    return unicodedata.normalize("NFC", tag.lstrip("#")).casefold().replace("_", "-")


def split_arxiv_id(text: str) -> tuple[str, int | None]:
    """Split '2412.01981v2' into ('2412.01981', 2); raise ValueError if it is no arXiv id."""
    m = ARXIV_ID_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an arXiv id: {text!r}")
    version = m.group("version")
    return m.group("id"), int(version) if version else None


@dataclass(frozen=True)
class Paper:
    """One arXiv paper as the pipeline knows it (id without version, text as Unicode)."""

    arxiv_id: str
    title: str
    authors: tuple[str, ...]
    abstract: str
    version: int = 1
    categories: tuple[str, ...] = ()
    announce_type: str | None = None
    doi: str | None = None
    journal_ref: str | None = None
    comment: str | None = None
    published: datetime | None = None
    updated: datetime | None = None

    def __post_init__(self) -> None:
        split_arxiv_id(self.arxiv_id)  # raises on a malformed id
        if "v" in self.arxiv_id.split("/")[-1]:
            raise ValueError(f"Paper.arxiv_id must carry no version: {self.arxiv_id!r}")
        if self.version < 1:
            raise ValueError(f"Paper.version must be >= 1, got {self.version}")
        if self.announce_type is not None and self.announce_type not in ANNOUNCE_TYPES:
            raise ValueError(f"unknown announce type {self.announce_type!r}")

    @property
    def abs_url(self) -> str:
        """The paper's abstract page (version-less, so it always shows the latest)."""
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def primary_category(self) -> str | None:
        """The first listed category, which arXiv gives as the primary one."""
        return self.categories[0] if self.categories else None


@dataclass(frozen=True)
class Candidate:
    """A paper announced on a day, with the tags it matched and its ranking score."""

    paper: Paper
    tags: tuple[str, ...]
    score: float


@dataclass(frozen=True)
class Entry:
    """One entry of a digest: a paper (or a link) with the curator's commentary and tags."""

    title: str
    authors: tuple[str, ...]
    abstract: str
    commentary: tuple[str, ...] = ()  # paragraphs in order; Korean ones contain Hangul
    tags: tuple[str, ...] = ()  # without '#', as written
    arxiv_id: str | None = None
    version: int | None = None
    url: str | None = None  # a non-arXiv link (a blog post, a PDF elsewhere)
    line: int | None = None  # where the entry starts in its source file

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise ValueError("Entry.title must not be empty")
        if self.arxiv_id is not None:
            split_arxiv_id(self.arxiv_id)
        for tag in self.tags:
            if not TAG_RE.fullmatch("#" + tag):
                raise ValueError(f"bad tag {tag!r}")
            if len(tag) > MAX_TAG_LENGTH:
                raise ValueError(f"tag #{tag[:20]}… is {len(tag)} characters long "
                                 f"(expected at most {MAX_TAG_LENGTH})")

    @property
    def notes_ko(self) -> tuple[str, ...]:
        """The Korean commentary paragraphs."""
        return tuple(p for p in self.commentary if has_hangul(p))

    @property
    def notes_en(self) -> tuple[str, ...]:
        """The English commentary paragraphs (neither Korean nor only links)."""
        return tuple(p for p in self.commentary if not has_hangul(p) and not is_links_only(p))

    @property
    def links(self) -> tuple[str, ...]:
        """Paragraphs that are only links (a project page): in no language, so in both."""
        return tuple(p for p in self.commentary if is_links_only(p))

    @property
    def tag_keys(self) -> tuple[str, ...]:
        """Tags in comparable form (see normalize_tag)."""
        return tuple(normalize_tag(t) for t in self.tags)

    @property
    def link(self) -> str | None:
        """Where the entry's title points: the arXiv page or the entry's own URL."""
        if self.arxiv_id is not None:
            return f"https://arxiv.org/abs/{self.arxiv_id}"
        return self.url


@dataclass(frozen=True)
class Digest:
    """A digest file: a date and its entries, plus what is needed to write it back exactly."""

    date: date | None
    entries: tuple[Entry, ...]
    date_style: DateStyle = "ko"
    final_newline: bool = True


@dataclass(frozen=True)
class Issue:
    """A built issue: the merged entries of one day, ready to render."""

    date: date
    title: str
    entries: tuple[Entry, ...]
    more_papers: tuple[Paper, ...] = ()
    unresolved: tuple[int, ...] = field(default=())  # indexes of entries with no arXiv paper
    # When a published issue was last republished with other content (a correction): the
    # page shows it and the feed item is re-dated to it. None = as first published.
    corrected: datetime | None = None

    @property
    def tags(self) -> tuple[str, ...]:
        """Every tag of the issue once, in order of first appearance (normalised)."""
        seen: dict[str, None] = {}
        for entry in self.entries:
            for key in entry.tag_keys:
                seen.setdefault(key, None)
        return tuple(seen)


@dataclass(frozen=True)
class ArchivedEntry:
    """What an archive index page shows of one entry of a past issue (no JSON to parse)."""

    date: date
    number: int  # its place in the issue, from 1
    title: str
    arxiv_id: str | None
    tags: tuple[str, ...]  # normalised, in the entry's order


def archived_entries(issue: Issue) -> tuple[ArchivedEntry, ...]:
    """The index rows of an issue, one per entry in order."""
    return tuple(
        ArchivedEntry(issue.date, n, e.title, e.arxiv_id, e.tag_keys)
        for n, e in enumerate(issue.entries, start=1)
    )


# Rendered once per variant, personalised per recipient by replacing this marker.
UNSUBSCRIBE_PLACEHOLDER = "__UNSUBSCRIBE_URL__"


@dataclass(frozen=True)
class EmailVariant:
    """One rendered email variant of an issue ('ko', 'en' or 'all'): inlined HTML and text,
    and which layout the size guard chose (why, when it is not the full one)."""

    variant: str
    subject: str
    html: str
    text: str
    layout: str = "full"  # "full" or "compact" (over delivery.max_html_kb)
    reason: str = ""


SubscriberStatus = Literal["pending", "active", "unsubscribed", "bounced", "complained"]
SUBSCRIBER_STATUSES: tuple[str, ...] = ("pending", "active", "unsubscribed", "bounced",
                                        "complained")
# Statuses no import or confirmation link turns back to active: the reader left, their
# address bounced for good, or they reported the mail as spam (only `subscribers add` does).
STOPPED_STATUSES: tuple[str, ...] = ("unsubscribed", "bounced", "complained")


@dataclass(frozen=True)
class Subscriber:
    """A newsletter reader: where to send, which variant, which tags (empty = all)."""

    email: str
    language: str = "all"
    tags: tuple[str, ...] = ()
    status: str = "active"
    id: int | None = None

    def __post_init__(self) -> None:
        if self.status not in SUBSCRIBER_STATUSES:
            raise ValueError(
                f"status must be one of {', '.join(SUBSCRIBER_STATUSES)}, got {self.status!r}"
            )

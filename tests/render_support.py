"""Issues for the render tests and benchmark: the reference issue, bigger ones, hostile ones."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from pipeline.core.config import Settings, default_settings
from pipeline.core.digest_format import read_digest
from pipeline.core.models import Entry, Issue
from pipeline.publish.render import SIGNATURE

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "digest" / "2024-12-05.txt"
REFERENCE_DAY = date(2024, 12, 5)


def make_settings(root: Path) -> Settings:
    """Default settings for a newsletter in `root` (bundled templates, example base URL)."""
    return default_settings(root)


def split_signature(text: str) -> tuple[str, str]:
    """Split an email's text part into the digest and the signature block after it."""
    body, _, signature = text.rpartition("\n" + SIGNATURE)
    return (body, signature) if body else (text, "")


def text_hostile_issue() -> Issue:
    """Entries whose text tries to break the text part's layout: Hangul, long URLs, lines
    starting with "-- " or a label, a bare URL as the first paragraph of a link-less entry,
    a title that is the rule line ending the papers, and no abstract."""
    long_url = "https://example.org/" + "very-long-path/" * 8 + "?q=" + "x" * 30
    entries = (
        Entry(
            title="한국어 제목: 긴 제목이 여러 줄로 접히는지 보는 " + "아주 " * 20 + "제목",
            authors=("김철수", "Jane Doe"),
            abstract="We study " + "long abstracts " * 30 + f"with a URL {long_url} inside.",
            commentary=("Abstract: 이 문단은 초록이 아니라 코멘터리입니다 " + long_url,
                        "-- not a signature, a commentary line starting with dashes",
                        "초록: 이것도 코멘터리",
                        "English note. Abstract: also commentary."),
            tags=("hangul", "long-url"),
            arxiv_id="2412.00001",
        ),
        Entry(
            title="No abstract, last paragraph labelled",
            authors=("A",),
            abstract="",
            commentary=("첫 문단", "Abstract: the curator's words, not an abstract"),
            tags=("edge",),
        ),
        Entry(
            title="-" * 40,
            authors=("B",),
            abstract="Abstract: an abstract that starts with its own label",
            commentary=(long_url, "--", "그리고 한국어"),
            tags=("edge",),
        ),
        Entry(title="-- A title with dashes", authors=("C",), abstract="", tags=()),
    )
    return Issue(REFERENCE_DAY, "ML Papers Digest", entries)


def reference_issue() -> Issue:
    """The reference digest as an issue (ten entries, no arXiv ids)."""
    digest = read_digest(REFERENCE)
    assert digest.date == REFERENCE_DAY
    return Issue(REFERENCE_DAY, "ML Papers Digest", digest.entries)


def big_issue(n: int, day: date = REFERENCE_DAY) -> Issue:
    """An issue of n entries, cycling through the reference entries with distinct titles."""
    ref = reference_issue().entries
    entries = tuple(
        replace(ref[i % len(ref)], title=f"{ref[i % len(ref)].title} ({i + 1})") for i in range(n)
    )
    return Issue(day, "ML Papers Digest", entries)


def archive_issue(k: int, start: date = date(2024, 1, 1)) -> Issue:
    """The k-th of a run of daily issues built from the reference entries (distinct ids)."""
    day = start + timedelta(days=k)
    ref = reference_issue().entries
    entries = tuple(
        replace(e, arxiv_id=f"{day:%y%m}.{k * 10 + j:05d}", title=f"{e.title} [{day}]")
        for j, e in enumerate(ref)
    )
    return Issue(day, "ML Papers Digest", entries)


HOSTILE_TITLE = '<script>alert("t")</script> Title "with" quotes & <b>tags</b>'
HOSTILE_NOTE = (
    '노트 "><script>alert(1)</script><img src=x onerror=alert(2)> '
    "javascript:alert(3) https://ok.example/a?b=1&c=\"x\" data:text/html,hi"
)
CONTROL = "\x00\x01\x08\x0b\x0c\x1f\ufffe"


def hostile_issue() -> Issue:
    """Entries whose every text field tries to break out of HTML, attributes, URLs and XML."""
    entries = (
        Entry(
            title=HOSTILE_TITLE + CONTROL,
            authors=('Eve "><svg onload=alert(4)>', "Mallory" + CONTROL),
            abstract="Abstract </p><script>alert(5)</script> ]]> <![CDATA[ x ]]>" + CONTROL,
            commentary=(HOSTILE_NOTE + CONTROL, "English note javascript:alert(6) ' \" <i>"),
            tags=("safe-tag",),
            url="javascript:alert(7)",
        ),
        Entry(
            title="Quote \" ' in a link title",
            authors=("A",),
            abstract="x",
            commentary=("see https://evil.example/\"onmouseover=\"alert(8)",),
            tags=("safe-tag",),
            url='https://example.org/" onmouseover="alert(9)',
        ),
        Entry(title="Plain", authors=("B",), abstract="y", tags=("other",), arxiv_id="2412.01981"),
    )
    return Issue(REFERENCE_DAY, 'Digest <script>alert("n")</script>', entries)

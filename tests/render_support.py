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

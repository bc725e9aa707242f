"""What every step service shares: today's date, the store, the draft's bytes."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date
from pathlib import Path

from pipeline import store
from pipeline.core import digest_format as digest
from pipeline.core import layout
from pipeline.core.config import Settings
from pipeline.core.errors import FormatError, InputError
from pipeline.core.models import DateStyle, Digest
from pipeline.core.runtime import Runtime


def today(settings: Settings, rt: Runtime) -> date:
    """Today's date in the newsletter's time zone (the default announcement date)."""
    return rt.now().astimezone(settings.tzinfo).date()


def open_store(settings: Settings, rt: Runtime | None = None) -> sqlite3.Connection:
    """The newsletter's SQLite store, migrated; its timestamps come from `rt`'s clock."""
    return store.connect(layout.store_path(settings), rt.now if rt is not None else None)


def file_sha(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it does not exist."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def draft_sha(settings: Settings, day: date) -> str | None:
    """sha256 of drafts/D.txt now, or None when there is no draft."""
    return file_sha(layout.draft_path(settings, day))


def read_draft(settings: Settings, day: date) -> tuple[Digest, str]:
    """drafts/DAY.txt parsed, and the sha256 of the very bytes parsed (the file may be saved
    again while the build runs: the issue is built from, and approved for, this text)."""
    path = layout.draft_path(settings, day)
    if not path.exists():
        raise InputError(f"no draft for {day}: run `digest draft --date {day}` first", path=path)
    data = digest.read_digest_bytes(path)
    return parse_draft(data, path, day), hashlib.sha256(data).hexdigest()


def parse_draft(data: bytes, path: Path, day: date) -> Digest:
    """The draft's bytes parsed; refuses a draft dated another day than its file name."""
    parsed = digest.parse_digest(digest.decode_text(data, path), path)
    if parsed.date != day:
        raise FormatError(f"the draft is dated {parsed.date}, expected {day}", path=path, line=1)
    return parsed


def date_style(settings: Settings) -> DateStyle:
    """How the draft writes dates, from the newsletter's locale."""
    lang = settings.locale_language
    return "ko" if lang == "ko" else "en" if lang == "en" else "iso"

"""Subscribers: validation, add/remove/list, CSV import and export (email,language,tags,status)."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from email_validator import EmailNotValidError, validate_email

from pipeline import store
from pipeline.core.digest_format import decode_text
from pipeline.core.errors import InputError
from pipeline.core.models import (
    STOPPED_STATUSES,
    SUBSCRIBER_STATUSES,
    TAG_RE,
    Subscriber,
    normalize_tag,
)

CSV_HEADER = ("email", "language", "tags", "status")


# Addresses longer than RFC 5321's 254 characters cannot be delivered; a longer input is not
# echoed back in full.
MAX_EMAIL = 254


class AddressError(ValueError):
    """An address that is valid but that this newsletter cannot deliver to."""


def normalize_email(email: str, *, smtputf8: bool = False) -> str:
    """A checked, normalised address (no DNS lookup); raises ValueError saying what is wrong.

    An internationalised domain (user@exämple.org) is accepted and kept in Unicode; it is
    IDNA-encoded on the wire (mail.wire_address). A non-ASCII local part (üser@…) needs a
    mail server with SMTPUTF8 (`smtp.smtputf8 = true`); otherwise it is an AddressError."""
    email = email.strip()
    shown = email if len(email) <= MAX_EMAIL else email[:40] + "…"
    try:
        valid = validate_email(email, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise ValueError(f"bad email address {shown!r}: {exc}") from None
    if valid.ascii_email is None and not smtputf8:
        raise AddressError(
            f"cannot deliver to {shown!r}: a non-ASCII name before the @ needs an SMTP "
            "server with SMTPUTF8 (set smtp.smtputf8 = true if yours has it)"
        )
    return str(valid.normalized)


def parse_tags(text: str) -> tuple[str, ...]:
    """Space-separated tags ('#' optional) in normalised form; raises ValueError on a bad one."""
    tags: dict[str, None] = {}
    for word in text.split():
        if not TAG_RE.fullmatch("#" + word.lstrip("#")):
            raise ValueError(f"bad tag {word!r} (letters, digits, '-' or '_')")
        tags.setdefault(normalize_tag(word), None)
    return tuple(tags)


def make_subscriber(
    email: str, language: str, tags: str, status: str, variants: tuple[str, ...],
    smtputf8: bool = False,
) -> Subscriber:
    """Validate the fields of one subscriber; raises ValueError naming the bad field."""
    if language not in variants:
        raise ValueError(f"language must be one of {', '.join(variants)}, got {language!r}")
    if status not in SUBSCRIBER_STATUSES:
        raise ValueError(
            f"status must be one of {', '.join(SUBSCRIBER_STATUSES)}, got {status!r}"
        )
    return Subscriber(normalize_email(email, smtputf8=smtputf8), language, parse_tags(tags),
                      status)


def add(
    conn: sqlite3.Connection, variants: tuple[str, ...], email: str, language: str, tags: str = "",
    *, smtputf8: bool = False,
) -> tuple[str, Subscriber]:
    """Add a subscriber, or reactivate and update one; returns (what happened, subscriber)."""
    try:
        sub = make_subscriber(email, language, tags, "active", variants, smtputf8)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    with store.transaction(conn):
        return store.save_subscriber(conn, sub)


def remove(conn: sqlite3.Connection, email: str) -> bool:
    """Unsubscribe an address (the row stays, so no later import resubscribes it silently);
    True when it changed."""
    sub = store.get_subscriber(conn, email.strip())
    if sub is None or sub.id is None:
        raise InputError(f"no subscriber {email!r}")
    return store.set_subscriber_status(conn, sub.id, "unsubscribed")


@dataclass
class ImportReport:
    """What an import did, and the rows it refused (line number, reason)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_unsubscribed: int = 0
    kept_unconfirmed: int = 0  # pending: only their confirmation link (or `add`) activates
    errors: list[tuple[int, str]] = field(default_factory=list)


# A subscriber's cells never span lines: each physical line is one row, so one unbalanced
# quote spoils that row only (the csv module would read on to the next quote, swallowing
# the rows in between).
_UNBALANCED = "an unbalanced double quote (expected a closing \" before the end of the line)"


def _rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str] | str, int]]:
    """(line number, fields by column or the reason the line is no row, how many fields lie
    beyond the header; 0 when those are all empty, as in the trailing commas spreadsheets
    write)."""
    header: tuple[str, ...] = ()
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        try:
            cells = next(csv.reader([line], strict=True), [])
        except csv.Error:
            if not header:
                raise ValueError(f"the header: {_UNBALANCED}") from None
            yield number, _UNBALANCED, 0
            continue
        if not header:
            header = tuple(h.strip().lower() for h in cells)
            if not header or header[0] != "email":
                raise ValueError(f"expected the header {','.join(CSV_HEADER)}, "
                                 f"got {','.join(header)!r}")
            unknown = [h for h in header if h not in CSV_HEADER]
            if unknown:
                raise ValueError(f"unknown column {unknown[0]!r} "
                                 f"(expected {','.join(CSV_HEADER)})")
            continue
        extra = cells[len(header):]
        fields = {k: v.strip() for k, v in zip(header, cells, strict=False)}
        fields.update({k: "" for k in header[len(cells):]})
        yield number, fields, len(extra) if any(v.strip() for v in extra) else 0
    if not header:
        raise ValueError(f"expected the header {','.join(CSV_HEADER)}, got an empty file")


def import_csv(
    conn: sqlite3.Connection, variants: tuple[str, ...], path: Path, *, smtputf8: bool = False
) -> ImportReport:
    """Import subscribers from CSV: bad rows are reported by line and the rest imported.
    An empty status means active; an address may appear on one row only (a second row, or a
    row with more fields than the header, is a bad row). Importing never resubscribes someone
    who unsubscribed or bounced, nor activates someone pending (that takes their
    confirmation link or `subscribers add`), and importing the same file twice changes
    nothing."""
    try:
        text = decode_text(path.read_bytes(), path)
    except FileNotFoundError as exc:
        raise InputError("file not found", path=path) from exc
    except IsADirectoryError as exc:
        raise InputError("is a directory, expected a CSV file", path=path) from exc
    report = ImportReport()
    try:
        rows = list(_rows(text.splitlines()))
    except (ValueError, csv.Error) as exc:
        raise InputError(str(exc), path=path, line=1) from exc
    first_line: dict[str, int] = {}  # address (as the store compares it) -> its line
    with store.transaction(conn):
        for line, row, extra in rows:
            if isinstance(row, str):
                report.errors.append((line, row))
                continue
            if extra:
                report.errors.append((line, (
                    f"expected at most {len(row)} fields ({','.join(row)}), "
                    f"got {len(row) + extra}"
                )))
                continue
            if not any(row.values()):
                continue
            try:
                sub = make_subscriber(
                    unneutralize(row.get("email", "")),
                    row.get("language") or variants[-1],
                    row.get("tags", ""),
                    row.get("status") or "active",
                    variants,
                    smtputf8,
                )
            except ValueError as exc:
                report.errors.append((line, str(exc)))
                continue
            seen = first_line.setdefault(sub.email.casefold(), line)
            if seen != line:
                report.errors.append(
                    (line, f"{sub.email} is already on line {seen} (one row per address)")
                )
                continue
            old = store.get_subscriber(conn, sub.email)
            if old is not None and old.status in STOPPED_STATUSES \
                    and sub.status in ("active", "pending"):
                report.kept_unsubscribed += 1
                continue
            if old is not None and old.status == "pending" and sub.status == "active":
                report.kept_unconfirmed += 1
                continue
            outcome, _ = store.save_subscriber(conn, sub)
            if outcome == "added":
                report.added += 1
            elif outcome == "updated":
                report.updated += 1
            else:
                report.unchanged += 1
    return report


# A spreadsheet reads a cell that starts with one of these as a formula (=cmd|' /C calc'!A0
# is a valid address): such cells are written with a leading ' that spreadsheets show as
# text, and that import takes off again. A cell starting with ' gets one too, so the round
# trip is exact.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralize(cell: str) -> str:
    """A CSV cell that no spreadsheet runs as a formula."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def unneutralize(cell: str) -> str:
    """The cell `neutralize` was given (a hand-written cell without the mark stays as is)."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_START):
        return cell[1:]
    return cell


def write_csv(subs: Iterable[Subscriber], out: TextIO) -> None:
    """Write subscribers as CSV with the header email,language,tags,status (cells that a
    spreadsheet would run as formulas neutralized)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for sub in subs:
        writer.writerow(
            tuple(neutralize(c) for c in (sub.email, sub.language, " ".join(sub.tags), sub.status))
        )


def export_csv(conn: sqlite3.Connection) -> str:
    """Every subscriber as CSV text, in id order (re-importable as is)."""
    out = io.StringIO()
    write_csv(store.iter_subscribers(conn), out)
    return out.getvalue()

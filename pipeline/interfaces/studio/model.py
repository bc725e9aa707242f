"""The day's draft as the studio sees it: read and written only through the digest format,
atomically; pure edits of a digest; per-entry fingerprints for conflicts with a text editor."""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from pipeline import services
from pipeline.core import digest_format as digest
from pipeline.core.config import Settings
from pipeline.core.errors import FormatError, InputError
from pipeline.core.files import write_atomic
from pipeline.core.latex import title_key
from pipeline.core.models import TAG_RE, Digest, Entry, has_hangul, normalize_tag

# --- the draft: read and written only through pipeline.core.digest_format ---------------------------------


@dataclass(frozen=True)
class Loaded:
    """The draft as read now: its bytes, their sha256, and the parsed digest or why not."""

    path: Path
    data: bytes
    sha: str | None  # None when there is no draft file
    digest: Digest | None
    error: str | None = None

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The draft's entries (none when it is missing or does not parse)."""
        return self.digest.entries if self.digest is not None else ()


class DraftConflict(InputError):
    """The draft on disk is not the version the page was loaded from."""

    def __init__(self, path: Path, disk: bytes, mine: str) -> None:
        super().__init__("the draft was changed on disk since this page was loaded; "
                         "nothing was saved", path=path)
        self.disk = disk
        self.mine = mine


def sha256(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def load_draft(settings: Settings, day: date) -> Loaded:
    """drafts/D.txt read and parsed now (a parse error is kept as text, not raised)."""
    path = services.draft_path(settings, day)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Loaded(path, b"", None, None, f"no draft for {day} yet")
    try:
        parsed = digest.parse_digest(digest.decode_text(data, path), path)
        if parsed.date != day:
            raise FormatError(f"the draft is dated {parsed.date}, expected {day}", path=path,
                              line=1)
    except FormatError as exc:
        return Loaded(path, data, sha256(data), None, str(exc))
    return Loaded(path, data, sha256(data), parsed)


def _comparable(d: Digest) -> Digest:
    return replace(d, entries=tuple(replace(e, line=None) for e in d.entries))


def draft_text(new: Digest) -> str:
    """The canonical text of `new`; refuses (FormatError, with the reason) a digest the
    format cannot hold, i.e. one that would not read back as exactly these entries."""
    text = digest.write_digest(new)  # raises on what format_problem finds
    back = digest.parse_digest(text, "<draft>")
    if _comparable(back) != _comparable(new):
        for before, after in zip(new.entries, back.entries, strict=False):
            if replace(before, line=None) != replace(after, line=None):
                why = ""
                if not before.abstract and before.commentary and not has_hangul(
                        before.commentary[0]):
                    why = ": with no abstract, its first English line would read as the abstract"
                raise FormatError(f"the entry {before.title[:60]!r} would not read back the "
                                  f"same{why}", path="<draft>")
        raise FormatError("the draft would not read back the same", path="<draft>")
    return text


_save_lock = threading.Lock()


def save_draft(settings: Settings, day: date, expected_sha: str, new: Digest) -> str:
    """Write `new` to drafts/D.txt atomically if the file still has `expected_sha`; returns
    the new sha. Raises FormatError (nothing written) or DraftConflict (nothing written)."""
    text = draft_text(new)
    path = services.draft_path(settings, day)
    with _save_lock:  # two browser tabs: one wins, the other gets the conflict page
        try:
            disk = path.read_bytes()
        except FileNotFoundError:
            disk = b""
        if not hmac.compare_digest(sha256(disk), expected_sha):
            raise DraftConflict(path, disk, text)
        write_atomic(path, text)
    return sha256(text.encode("utf-8"))


# --- pure edits of a digest -------------------------------------------------------------------


def entry_key(entry: Entry) -> str:
    """An entry's identity across versions of a draft: its arXiv id, else its title."""
    return entry.arxiv_id if entry.arxiv_id is not None else "title:" + title_key(entry.title)


def move_entry(d: Digest, index: int, delta: int) -> Digest:
    """The digest with entry `index` moved by `delta` places (clamped at the ends)."""
    entries = list(d.entries)
    target = max(0, min(len(entries) - 1, index + delta))
    entries.insert(target, entries.pop(index))
    return replace(d, entries=tuple(entries))


def remove_entry(d: Digest, index: int) -> tuple[Digest, Entry]:
    """The digest without entry `index`, and that entry."""
    entries = list(d.entries)
    gone = entries.pop(index)
    return replace(d, entries=tuple(entries)), gone


def insert_entry(d: Digest, index: int, entry: Entry) -> Digest:
    """The digest with `entry` at `index` (clamped)."""
    entries = list(d.entries)
    entries.insert(max(0, min(len(entries), index)), replace(entry, line=None))
    return replace(d, entries=tuple(entries))


def parse_tags_field(text: str) -> tuple[str, ...]:
    """'#a #b' (or 'a, b') as tags; raises FormatError naming a word that is no tag."""
    out: dict[str, str] = {}
    for word in text.replace(",", " ").split():
        tag = word.lstrip("#")
        if not tag:
            continue
        if not TAG_RE.fullmatch("#" + tag):
            raise FormatError(f"{word!r} is not a tag: use letters, digits, '-' or '_'",
                              path="<tags>")
        out.setdefault(normalize_tag(tag), tag)
    return tuple(out.values())


def commentary_lines(ko: str, en: str) -> tuple[str, ...]:
    """The commentary paragraphs from the Korean and English boxes (one per non-blank line);
    refuses a line the digest format would file under the other language."""
    ko_lines = [line.strip() for line in ko.splitlines() if line.strip()]
    en_lines = [line.strip() for line in en.splitlines() if line.strip()]
    for n, line in enumerate(ko_lines, start=1):
        if not has_hangul(line):
            raise FormatError(f"Korean line {n} ({line[:40]!r}) has no Hangul, so the digest "
                              "format would read it as English: move it to the English box",
                              path="<commentary>")
    for n, line in enumerate(en_lines, start=1):
        if has_hangul(line):
            raise FormatError(f"English line {n} ({line[:40]!r}) contains Hangul, so the "
                              "digest format would read it as Korean: move it to the Korean box",
                              path="<commentary>")
    return (*ko_lines, *en_lines)


def edit_entry(d: Digest, index: int, ko: str, en: str, tags_text: str) -> Digest:
    """The digest with entry `index`'s commentary and tags replaced."""
    entries = list(d.entries)
    entries[index] = replace(entries[index], commentary=commentary_lines(ko, en),
                             tags=parse_tags_field(tags_text))
    return replace(d, entries=tuple(entries))


def entry_changes(before: Digest | None, after: Digest) -> list[str]:
    """What changed between two versions of a draft, one line per change (for approval)."""
    if before is None:
        return [f"first approval: {len(after.entries)} entries"]
    old = {entry_key(e): e for e in before.entries}
    new = {entry_key(e): e for e in after.entries}
    lines = [f"removed: {e.title}" for k, e in old.items() if k not in new]
    lines += [f"added: {e.title}" for k, e in new.items() if k not in old]
    for k, e in new.items():
        was = old.get(k)
        if was is None:
            continue
        if was.notes_ko != e.notes_ko:
            lines.append(f"Korean commentary changed: {e.title}")
        if was.notes_en != e.notes_en:
            lines.append(f"English commentary changed: {e.title}")
        if was.tag_keys != e.tag_keys:
            lines.append(f"tags {' '.join('#' + t for t in was.tags) or '(none)'} → "
                         f"{' '.join('#' + t for t in e.tags) or '(none)'}: {e.title}")
    kept_old = [k for k in old if k in new]
    kept_new = [k for k in new if k in old]
    if kept_old != kept_new:
        lines.append("order changed")
    return lines or ["no change to the entries"]



@dataclass
class Conflict:
    """A refused save kept for its page: the file on disk and the edit that was not saved."""

    disk: str
    mine: str
    entry: str | None = None  # the edited entry as it is on disk now (an entry's save)


def entry_fields(ko: str, en: str, tags_text: str) -> str:
    """An entry's editable fields as one text, for comparing an edit with the disk."""
    return f"Korean:\n{ko}\n\nEnglish:\n{en}\n\nTags: {tags_text}"


def disk_entry(disk: bytes, key: str) -> str:
    """The fields of the entry `key` in the draft bytes `disk`, or why there is none."""
    try:
        parsed = digest.parse_digest(digest.decode_text(disk, "<draft>"), "<draft>")
    except FormatError as exc:
        return f"(the draft on disk does not parse: {exc})"
    for e in parsed.entries:
        if entry_key(e) == key:
            return entry_fields("\n".join(e.notes_ko), "\n".join(e.notes_en),
                                " ".join("#" + t for t in e.tags))
    return "(this entry is not in the draft on disk any more)"



# --- per-entry identity: a conflict with a text editor is about one entry, not the file ------


def entry_fingerprint(entry: Entry) -> str:
    """A short hash of what an entry says (not where it is): a page sends it back with an
    edit, and the edit applies only while the entry on disk still says the same."""
    said = "\0".join((entry.title, "\x1f".join(entry.authors), entry.abstract,
                      "\x1f".join(entry.commentary), "\x1f".join(entry.tags),
                      entry.arxiv_id or "", entry.url or ""))
    return hashlib.sha256(said.encode("utf-8")).hexdigest()[:20]


def find_entry(d: Digest, key: str) -> int | None:
    """The index of the entry whose `entry_key` is `key`, if the draft has it."""
    for i, e in enumerate(d.entries):
        if entry_key(e) == key:
            return i
    return None


def move_to(d: Digest, index: int, target: int) -> Digest:
    """The digest with entry `index` moved to position `target` (clamped at the ends)."""
    return move_entry(d, index, target - index)


def merge_note(entry: Entry, note: Entry) -> Entry:
    """The entry with what a note says that the entry does not yet: its commentary lines
    (Korean after the entry's Korean, English after its English) and its tags."""
    have = set(entry.commentary)
    new = [line for line in note.commentary if line not in have]
    # Korean first, then the rest (English and link paragraphs), as the format reads them.
    ko = [p for p in (*entry.commentary, *new) if has_hangul(p)]
    rest = [p for p in (*entry.commentary, *new) if not has_hangul(p)]
    tags: dict[str, str] = {}
    for tag in (*entry.tags, *note.tags):
        tags.setdefault(normalize_tag(tag), tag)
    return replace(entry, commentary=(*ko, *rest), tags=tuple(tags.values()))


def note_adds(entry: Entry, note: Entry) -> bool:
    """Whether merging the note would add something to the entry."""
    return any(line not in entry.commentary for line in note.commentary) or any(
        normalize_tag(t) not in entry.tag_keys for t in note.tags)

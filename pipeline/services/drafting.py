"""`digest draft`: write (or update, keeping the curator's edits) drafts/D.txt."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pipeline import store
from pipeline.core import digest_format as digest
from pipeline.core import layout, lifecycle
from pipeline.core.config import Settings
from pipeline.core.errors import InputError
from pipeline.core.files import write_if_changed
from pipeline.core.runtime import Runtime
from pipeline.curate import draft as offers
from pipeline.curate import notes
from pipeline.services.common import date_style, open_store, parse_draft

# A note whose paper was collected up to this many days before the draft's day still joins
# that draft (the curator writes notes on the days after the announcement).
NOTE_LOOKBACK_DAYS = 7


@dataclass(frozen=True)
class DraftReport:
    """What `draft` did to drafts/D.txt. `outcome`: 'wrote' (a new file), 'updated',
    'unchanged' or 'sent' (the issue was sent: the file is left as it is)."""

    day: date
    path: Path
    outcome: str
    entries: int = 0
    added: int = 0
    filled: int = 0  # entries whose commentary came from notes
    warnings: tuple[str, ...] = ()


def draft(settings: Settings, day: date, rt: Runtime) -> DraftReport:
    """Write (or update, keeping the curator's edits) drafts/DAY.txt."""
    path = layout.draft_path(settings, day)
    shelf = notes.read_notes(settings.paths.notes)
    warnings = [f"note skipped: {problem}" for problem in shelf.errors]
    noted = {arxiv_id: note.entry for arxiv_id, note in shelf.by_id().items()}
    data = digest.read_digest_bytes(path) if path.exists() else None
    existing = parse_draft(data, path, day) if data is not None else None
    with closing(open_store(settings, rt)) as conn:
        record = store.get_issue_record(conn, day)
        if record is not None and record.sent:
            # Drafting adds papers; a sent issue only takes corrections, made by hand.
            return DraftReport(day, path, "sent", warnings=tuple(warnings))
        collected = store.get_day(conn, day)
        if collected is None:  # else an empty draft, and an issue of nothing once built
            raise InputError(f"nothing collected for {day}: run `digest collect --date {day}` "
                             "first", path=path)
        if collected.status == "empty":
            raise InputError(f"no announcement on {day} (arXiv's feed was empty): nothing to "
                             "draft", path=path)
        candidates = store.load_candidates(conn, day)
        day_ids = {c.paper.arxiv_id for c in candidates}
        recent = store.papers_first_seen_between(
            conn, (i for i in noted if i not in day_ids),
            day - timedelta(days=NOTE_LOOKBACK_DAYS), day,
        )
        elsewhere = store.offered_on_other_days(conn, day, recent)
        if existing is None:
            with store.transaction(conn):
                store.forget_offered(conn, day)  # the file was removed: start afresh
        offered = store.offered_keys(conn, day)
        sent = store.sent_papers(conn, day)
        offer = offers.build_offer(
            candidates, noted, {i: p for i, p in recent.items() if i not in elsewhere},
            settings.draft.max_candidates, offered, sent,
        )
        update = offers.update_draft(day, existing, offer, offered, noted, date_style(settings))
        # Nothing added or filled: the file stays as the curator laid it out (blank lines, CRLF)
        changed = existing is None or bool(update.added or update.filled)
        if changed and path.exists() and path.read_bytes() != data:
            # The curator saved the draft while this ran: never write over that save.
            raise InputError(f"{path.name} was saved while drafting; nothing was written: run "
                             f"`digest draft --date {day}` again", path=path)
        written = changed and write_if_changed(path, digest.write_digest(update.digest))
        # What the notes reader repaired in the notes this draft uses (an unclosed <english>,
        # a stray word in a tags line): the curator checks these before approving.
        in_draft = {e.arxiv_id for e in update.digest.entries}
        for noted_id, note in shelf.by_id().items():
            if noted_id in in_draft:
                warnings.extend(str(w) for w in note.warnings)
        with store.transaction(conn):
            store.record_offered(conn, day, offers.offered_keys(update.digest))
            store.set_issue_state(conn, day, lifecycle.state_after_draft(record))
    outcome = "wrote" if existing is None else "updated" if written else "unchanged"
    return DraftReport(day, path, outcome, entries=len(update.digest.entries),
                       added=len(update.added), filled=len(update.filled),
                       warnings=tuple(warnings))

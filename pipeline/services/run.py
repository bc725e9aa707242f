"""The conductor: the one place that knows the order of stages; used by the CLI and the
scheduler. What each state of an issue allows lives in pipeline.core.lifecycle."""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from pipeline import store
from pipeline.collect import api as arxiv_api
from pipeline.collect import feed as arxiv_rss
from pipeline.collect import tags
from pipeline.core import calendar as arxiv_calendar
from pipeline.core import digest_format as digest
from pipeline.core import lifecycle, locks
from pipeline.core.config import Settings
from pipeline.core.errors import ApprovalError, DigestError, FormatError, InputError
from pipeline.core.files import write_if_changed
from pipeline.core.lifecycle import IssueRecord, State
from pipeline.core.models import Candidate, DateStyle, Digest, EmailVariant, Issue, Paper
from pipeline.core.runtime import Runtime
from pipeline.curate import draft as drafting  # `draft` is this module's step
from pipeline.curate import lint, merge, notes
from pipeline.deliver import dispatch as delivery
from pipeline.publish import render, site


def today(settings: Settings, rt: Runtime) -> date:
    """Today's date in the newsletter's time zone (the default announcement date)."""
    return rt.now().astimezone(settings.tzinfo).date()


def open_store(settings: Settings, rt: Runtime | None = None) -> sqlite3.Connection:
    """The newsletter's SQLite store, migrated; its timestamps come from `rt`'s clock."""
    return store.connect(settings.db_path, rt.now if rt is not None else None)


def draft_path(settings: Settings, day: date) -> Path:
    """Where the day's draft lives: drafts/YYYY-MM-DD.txt."""
    return settings.paths.drafts / f"{day.isoformat()}.txt"


def file_sha(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it does not exist."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


# --- collect ---------------------------------------------------------------------------------


API_SEARCH_MAX = 100  # newest results per opted-in tag; a day rarely has more


def collect(settings: Settings, day: date, rt: Runtime) -> None:
    """Fetch the day's announcement (+ API searches), store papers and candidates.

    Everything is fetched first, then stored in one transaction: a failed fetch stores
    nothing, and a rerun stores nothing twice. A paper first collected on an earlier day
    (a new version, a later cross-list) is updated but is not a candidate again.
    """
    reason = arxiv_calendar.why_no_announcement(day)
    if reason is not None:  # the feed would hold another day: no fetch, no "stale feed"
        rt.echo(f"{reason}; nothing to collect")
        return
    announcement = arxiv_rss.fetch_announcement(settings, day, rt)
    if announcement.empty:
        _record_empty_day(settings, day, rt)
        return
    rules = tags.compile_rules(settings.tags)
    papers = {p.arxiv_id: p for p in announcement.papers}
    for paper in _search_api(settings, day, rt):
        papers.setdefault(paper.arxiv_id, paper)
    from_api = len(papers) - len(announcement.papers)
    matches = {arxiv_id: tags.match_paper(p, rules) for arxiv_id, p in papers.items()}
    with closing(open_store(settings, rt)) as conn, store.transaction(conn):
        seen = store.first_seen(conn, papers)
        updated = sum(o == "updated" for o in store.upsert_papers(conn, papers.values(), day).values())
        candidates = [
            Candidate(papers[i], m.tags, m.score)
            for i, m in matches.items()
            if m.tags and seen.get(i, day) >= day
        ]
        store.prune_candidates(conn, day, (c.paper.arxiv_id for c in candidates))
        added = store.save_candidates(conn, day, candidates)
        store.save_day(conn, day, "collected", announcement.announced, len(papers))
        if store.get_issue(conn, day) is None:
            store.set_issue_state(conn, day, State.COLLECTED)
    per_tag = Counter(t for c in candidates for t in c.tags)
    types = ", ".join(f"{k} {n}" for k, n in sorted(announcement.by_type.items()))
    rt.echo(
        f"{day}: announced {announcement.announced} ({types}); kept {len(papers)} "
        f"({', '.join(settings.arxiv.announce_types)}"
        + (f", +{from_api} from API searches" if from_api else "")
        + f"); {len(candidates)} candidates ({added} new); "
        f"{updated} papers updated to a new version"
    )
    rt.echo("matched: " + ", ".join(f"#{r.name} {per_tag[r.name]}" for r in settings.tags))
    if announcement.announced >= arxiv_rss.ITEM_LIMIT:
        rt.echo(
            f"warning: the feed lists {announcement.announced} items, arXiv's maximum, so some "
            "papers may be missing: configure fewer categories in arxiv.categories"
        )


def _record_empty_day(settings: Settings, day: date, rt: Runtime) -> None:
    """An empty channel: arXiv announced nothing on `day` (weekend, holiday)."""
    with closing(open_store(settings, rt)) as conn, store.transaction(conn):
        row = store.get_day(conn, day)
        if row is not None and row["status"] == "collected":
            rt.echo(f"{day}: the feed is empty now; keeping what was collected earlier")
            return
        store.save_day(conn, day, "empty", 0, 0)
    rt.echo(f"{day}: no announcement (the feed is empty); nothing collected")


def _search_api(settings: Settings, day: date, rt: Runtime) -> list[Paper]:
    """Papers of the day's submission window found by the API for tags with api_search."""
    rules = [r for r in settings.tags if r.api_search and r.keywords]
    if not rules:
        return []
    api = arxiv_api.ArxivApi(settings, rt)
    start, end = arxiv_api.submission_window(day)
    found: list[Paper] = []
    for rule in rules:
        query = arxiv_api.keyword_query(rule.keywords)
        for paper in api.search_since(query, start, API_SEARCH_MAX):
            if paper.published is not None and paper.published < end:
                found.append(replace(paper, announce_type="new"))
    return found


# --- curator: draft, approve ----------------------------------------------------------------


# A note whose paper was collected up to this many days before the draft's day still joins
# that draft (the curator writes notes on the days after the announcement).
NOTE_LOOKBACK_DAYS = 7


def _date_style(settings: Settings) -> DateStyle:
    lang = settings.locale_language
    return "ko" if lang == "ko" else "en" if lang == "en" else "iso"


def draft(settings: Settings, day: date, rt: Runtime) -> Path:
    """Write (or update, keeping the curator's edits) drafts/DAY.txt."""
    path = draft_path(settings, day)
    shelf = notes.read_notes(settings.paths.notes)
    for problem in shelf.errors:
        rt.echo(f"warning: note skipped: {problem}")
    noted = {arxiv_id: note.entry for arxiv_id, note in shelf.by_id().items()}
    data = digest.read_digest_bytes(path) if path.exists() else None
    existing = _parse_draft(data, path, day) if data is not None else None
    with closing(open_store(settings, rt)) as conn:
        record = store.get_issue_record(conn, day)
        if record is not None and record.sent:
            # Drafting adds papers; a sent issue only takes corrections, made by hand.
            rt.echo(f"the issue of {day} was already sent; {path.name} left as it is (to "
                    f"correct it: edit it, `digest build --date {day}`, `digest approve "
                    f"--date {day}`)")
            return path
        collected = store.get_day(conn, day)
        if collected is None:  # else an empty draft, and an issue of nothing once built
            raise InputError(f"nothing collected for {day}: run `digest collect --date {day}` "
                             "first", path=path)
        if collected["status"] == "empty":
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
        offer = drafting.build_offer(
            candidates, noted, {i: p for i, p in recent.items() if i not in elsewhere},
            settings.draft.max_candidates, offered, sent,
        )
        update = drafting.update_draft(day, existing, offer, offered, noted, _date_style(settings))
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
                for warning in note.warnings:
                    rt.echo(f"warning: {warning}")
        with store.transaction(conn):
            store.record_offered(conn, day, drafting.offered_keys(update.digest))
            store.set_issue_state(conn, day, lifecycle.state_after_draft(record))
    what = "wrote" if existing is None else "updated" if written else "unchanged:"
    rt.echo(
        f"{what} {path} ({len(update.digest.entries)} entr"
        f"{'y' if len(update.digest.entries) == 1 else 'ies'}; {len(update.added)} added"
        + (f", {len(update.filled)} filled from notes" if update.filled else "") + ")"
    )
    return path


def read_draft(settings: Settings, day: date) -> tuple[Digest, str]:
    """drafts/DAY.txt parsed, and the sha256 of the very bytes parsed (the file may be saved
    again while the build runs: the issue is built from, and approved for, this text)."""
    path = draft_path(settings, day)
    if not path.exists():
        raise InputError(f"no draft for {day}: run `digest draft --date {day}` first", path=path)
    data = digest.read_digest_bytes(path)
    return _parse_draft(data, path, day), hashlib.sha256(data).hexdigest()


def _parse_draft(data: bytes, path: Path, day: date) -> Digest:
    """The draft's bytes parsed; refuses a draft dated another day than its file name."""
    parsed = digest.parse_digest(digest.decode_text(data, path), path)
    if parsed.date != day:
        raise FormatError(f"the draft is dated {parsed.date}, expected {day}", path=path, line=1)
    return parsed


def merged_issue(
    settings: Settings, day: date, rt: Runtime, parsed: Digest | None = None
) -> Issue:
    """Resolve the entries of the draft (`parsed`, else drafts/DAY.txt read now) to papers
    (store, then arXiv API)."""
    path = draft_path(settings, day)
    if parsed is None:
        parsed, _ = read_draft(settings, day)
    api = arxiv_api.ArxivApi(settings, rt)
    with closing(open_store(settings, rt)) as conn:
        lookups = merge.Lookups(
            stored_ids=lambda ids: store.get_papers(conn, ids),
            stored_title=lambda title: store.find_papers_by_title(conn, title),
            api_ids=api.fetch_ids,
            api_title=api.search_title,
        )
        result = merge.merge_draft(
            day, settings.newsletter.title, parsed.entries, lookups,
            store.load_candidates(conn, day), settings.draft.more_papers,
        )
        if result.fetched:
            with store.transaction(conn):
                for paper in result.fetched:
                    store.upsert_paper(conn, paper, day)
    for problem in result.problems:
        rt.echo(f"warning: {path.name}: {problem}")
    return result.issue


def current_build(conn: sqlite3.Connection, settings: Settings, day: date) -> IssueRecord:
    """The day's issue record; refuses an issue never built, or built from another draft
    than the one on disk now."""
    record = store.get_issue_record(conn, day)
    if record is None or not record.built:
        raise ApprovalError(f"the issue of {day} is not built yet: run `digest build --date {day}`")
    if file_sha(draft_path(settings, day)) != record.draft_sha:
        raise ApprovalError(
            f"{draft_path(settings, day).name} changed since the issue was built: "
            f"run `digest build --date {day}`, check the preview, then `digest approve --date {day}`"
        )
    return record


def approve(
    settings: Settings, day: date, rt: Runtime, *, allow_uncommented: bool = False
) -> None:
    """Record the hash of the built issue as approved and publish it (site/, feeds). In
    approval mode, refuses while entries have no commentary unless `allow_uncommented`.
    For a sent issue this publishes the correction; no email is sent again."""
    with closing(open_store(settings, rt)) as conn:
        record = current_build(conn, settings, day)
        if record.build is None:
            raise ApprovalError(f"the issue of {day} was built by an older version: run "
                                f"`digest build --date {day}` first")
        missing = record.build.uncommented
        if missing and settings.approval.required and not allow_uncommented:
            for entry in missing:
                rt.echo(f"no commentary: {draft_path(settings, day).name}:{entry.line}: "
                        f"{entry.title}")
            raise ApprovalError(
                f"{len(missing)} entr{'y has' if len(missing) == 1 else 'ies have'} no "
                f"commentary (listed above): write it or delete the entries, `digest build "
                f"--date {day}`, or approve as is with `digest approve --date {day} "
                "--allow-uncommented`"
            )
        assert record.built_hash is not None
        with store.transaction(conn):
            store.approve_issue(conn, day, record.built_hash, lifecycle.state_after_approve(record))
        rt.echo(f"approved the issue of {day} ({record.built_hash[:12]})")
        published = publish(conn, settings, day, rt)
    if record.sent:
        rt.echo(("the correction is published; " if published else "site/ already shows it; ")
                + f"the issue was already sent ({record.sent_at}), so no email goes out again")
    else:
        rt.echo(f"next: `digest send --date {day}` (or the scheduled send)")


def publish(conn: sqlite3.Connection, settings: Settings, day: date, rt: Runtime) -> bool:
    """Put the current build of the day's issue on site/ and the feeds (atomically), unless
    they show it already; a published issue republished with other content is a
    correction (dated now). Returns whether anything was published."""
    record = store.get_issue_record(conn, day)
    if record is None or record.built_hash is None:
        raise ApprovalError(f"the issue of {day} is not built yet: run `digest build --date {day}`")
    content = store.load_built_content(conn, day)
    if content is None:
        raise ApprovalError(f"the issue of {day} was built by an older version: run "
                            f"`digest build --date {day}` first")
    previous = store.archived_issue(conn, day)
    if record.published_current and previous is not None:
        return False
    issue = lifecycle.with_correction(previous, content, rt.now())
    changed = site.publish_issue(settings, conn, issue)
    with store.transaction(conn):
        store.mark_published(conn, day, record.built_hash, lifecycle.state_after_publish(record))
    what = "published the correction of" if issue.corrected is not None \
        and issue.corrected != (previous.corrected if previous else None) else "published"
    rt.echo(f"{what} the issue of {day}: {settings.paths.site / 'index.html'} "
            f"({len(changed)} files changed)")
    return True


def approved_variants(conn: sqlite3.Connection, settings: Settings, day: date) -> list[EmailVariant]:
    """The variants to send: refuses an unbuilt issue, an unapproved one (when approval is
    required) and one whose draft or rendering changed since approval."""
    record = current_build(conn, settings, day)
    if settings.approval.required:
        if record.approved_hash is None:
            raise ApprovalError(
                f"the issue of {day} is not approved: check outbox/{day}/preview.*.html and "
                f"outbox/{day}/site/, then run `digest approve --date {day}`"
            )
        if not record.approved_current:
            raise ApprovalError(
                f"the issue of {day} changed since it was approved: check the preview, "
                f"then run `digest approve --date {day}` again"
            )
    return store.load_built_issue(conn, day)


# --- build -----------------------------------------------------------------------------------


def build(settings: Settings, day: date, rt: Runtime) -> IssueRecord:
    """Merge the draft into an issue, render the emails, write the previews (outbox/D/
    preview.*, and outbox/D/site/: site/ as publishing will make it) and the issue's record.
    Nothing reaches site/ or a feed: approving (or, in auto mode, sending) publishes."""
    parsed, draft_sha = read_draft(settings, day)
    path = draft_path(settings, day)
    if not parsed.entries:
        raise InputError(
            "the draft has no entries: nothing to publish (add entries with `digest draft`, "
            "or leave the day out)", path=path,
        )
    # A structural error (the same paper twice) stops the build; a missing translation only
    # leaves that variant without commentary for the entry, so it is a warning here.
    findings = lint.lint_entries(
        parsed.entries, languages=settings.newsletter.languages, language_level="warning",
        known_tags=[t.name for t in settings.tags],
    )
    if errors := [f for f in findings if f.level == "error"]:
        raise FormatError(f"{errors[0].message} (`digest check {path}` lists every problem)",
                          path=path, line=errors[0].line)
    for finding in findings:
        if finding.kind != lint.UNKNOWN_TAG:  # a new tag is the curator's to add; a typo is not
            rt.echo(f"warning: {path.name}:{finding.line}: {finding.message}")
    with closing(open_store(settings, rt)) as conn:
        sent = store.sent_papers(conn, day)
    for e in parsed.entries:
        if e.arxiv_id is not None and e.arxiv_id in sent:
            rt.echo(f"warning: {path.name}:{e.line}: arXiv:{e.arxiv_id} was already sent in "
                    f"the issue of {sent[e.arxiv_id]}")
    issue = merged_issue(settings, day, rt, parsed)
    renderer = render.Renderer(settings)
    variants = renderer.emails(issue)
    summary = lifecycle.summarize_build(issue, variants)
    built = store.variants_hash(draft_sha, variants)
    with closing(open_store(settings, rt)) as conn:
        before = store.get_issue_record(conn, day)
        preview = issue
        if before is not None and before.published_hash is not None:  # show it as it will be
            preview = lifecycle.with_correction(store.archived_issue(conn, day), issue,
                                                rt.now())
        root, changed = site.preview_site(settings, conn, preview, renderer)
        previews = site.write_previews(settings, day, variants)
        state = lifecycle.state_after_build(before, built)
        store.save_built_issue(conn, day, state, draft_sha, built, variants, summary, issue)
        record = store.get_issue_record(conn, day)
    assert record is not None
    sizes = ", ".join(f"{v.name} {v.html_bytes / 1024:.0f} KB" for v in summary.variants)
    rt.echo(f"built the issue of {day} ({summary.entries} entries; {sizes}; {built[:12]})")
    if note := render.layout_note(variants):  # the size guard switched to compact: say so
        rt.echo(note)
    if summary.uncommented:
        rt.echo(f"{len(summary.uncommented)} of {summary.entries} entries have no commentary"
                + (" (`digest approve` refuses them unless --allow-uncommented)"
                   if settings.approval.required else ""))
    rt.echo(f"site preview: {root / 'index.html'} ({len(changed)} files will change in "
            f"{settings.paths.site}; nothing there changed yet)")
    for preview_path in previews[::2]:
        rt.echo(f"preview: {preview_path}")
    if record.sent:
        rt.echo(f"the issue of {day} was sent: this build is a correction; "
                f"`digest approve --date {day}` publishes it (no email is sent again)")
    return record


# --- send ------------------------------------------------------------------------------------


def send(
    settings: Settings,
    day: date,
    rt: Runtime,
    *,
    dry_run: bool = False,
    to: str | None = None,
    variant: str | None = None,
) -> None:
    """Send the approved issue to every active subscriber (publishing it first when site/
    does not show it yet: auto mode). `to`: one test copy of the built issue (any state
    after build; `variant` picks it, "all" of the variants sends each); `dry_run`: every
    message into outbox/D/. Neither needs approval, publishes or records anything.
    The ledger and the lock that make it safe to rerun are described in pipeline.deliver.dispatch."""
    with closing(open_store(settings, rt)) as conn:
        if to is not None or dry_run:
            record = store.get_issue_record(conn, day)
            if record is None or not record.built or record.build is None:
                raise ApprovalError(f"the issue of {day} is not built yet: run "
                                    f"`digest build --date {day}`")
            if file_sha(draft_path(settings, day)) != record.draft_sha:
                rt.echo(f"note: {draft_path(settings, day).name} changed since the build; "
                        "this is the build as it was")
            variants = store.load_built_issue(conn, day)
            if to is not None:
                delivery.send_preview(conn, settings, day, rt, variants, to, variant=variant)
            else:
                delivery.send_issue(conn, settings, day, rt, variants, dry_run=True,
                                    tags=record.tags)
            return
        record = store.get_issue_record(conn, day)
        if record is not None and record.sent:
            rt.echo(f"the issue of {day} was already sent ({record.sent_at}); nothing to do. "
                    + (f"Its correction is built: `digest approve --date {day}` publishes it "
                       "(no email goes out again)" if record.correction_pending else
                       f"To correct it: edit {draft_path(settings, day)}, `digest build --date "
                       f"{day}`, `digest approve --date {day}`: the page and feed item are "
                       "updated, no email goes out again"))
            return
        variants = approved_variants(conn, settings, day)
        record = current_build(conn, settings, day)
        if record.build is None:
            raise ApprovalError(f"the issue of {day} was built by an older version: run "
                                f"`digest build --date {day}` first")
        publish(conn, settings, day, rt)
        with delivery.issue_lock(settings, day):
            delivery.send_issue(conn, settings, day, rt, variants, tags=record.tags)


# --- daily job and scheduler -----------------------------------------------------------------


StepFn = Callable[[Settings, date, Runtime], object]
DAILY_STEPS = ("collect", "draft", "build", "send")


@dataclass(frozen=True)
class Steps:
    """The stage functions the daily job calls, in order; tests pass fakes."""

    collect: StepFn
    draft: StepFn
    build: StepFn
    send: StepFn


def default_steps() -> Steps:
    """The real stages of this module."""
    return Steps(collect=collect, draft=draft, build=build, send=send)


class StepFailed(DigestError):
    """A step of the daily job failed; keeps the exit code of the error that stopped it."""

    def __init__(self, day: date, step: str, cause: DigestError) -> None:
        super().__init__(
            f"{day}: {step} failed: {cause} (`digest run --date {day}` continues from {step})"
        )
        self.exit_code = cause.exit_code


def progress(conn: sqlite3.Connection, settings: Settings, day: date) -> lifecycle.Progress:
    """Read the day's progress from the store (days, issues) and the draft on disk."""
    day_row = store.get_day(conn, day)
    return lifecycle.Progress(
        collected=day_row["status"] if day_row is not None else None,
        record=store.get_issue_record(conn, day),
        draft_sha=file_sha(draft_path(settings, day)),
    )


def _held_back(
    settings: Settings, day: date, status: lifecycle.Progress, send_issue: bool
) -> str | None:
    """Why the send step waits (what the curator should do next), or None when it may run."""
    mail, pages = lifecycle.preview_paths(settings, day)
    where = f"draft {draft_path(settings, day)}, preview {mail} and {pages / 'index.html'}"
    if lifecycle.approval_missing(settings.approval.required, status):
        return (
            f"{day}: built, waiting for approval (nothing is public yet): check the {where}; "
            f"then `digest approve --date {day}` publishes it, and `digest run --date {day}` "
            "(or the scheduled send) sends it"
        )
    if not send_issue:
        return f"{day}: ready ({where}); it goes out at the scheduled send"
    return None


def daily(
    settings: Settings,
    day: date | None,
    rt: Runtime,
    *,
    send_issue: bool = True,
    steps: Steps | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> str:
    """One daily cycle: collect, draft, build, then send when approved (or approval is off).

    `day` None = the latest announcement out now. Steps the store records as done are
    skipped; a failing step raises StepFailed and the next run resumes there. Returns the
    cycle's outcome as one line (also echoed)."""
    steps = steps if steps is not None else default_steps()
    if day is None:
        day = arxiv_calendar.announcement_for(rt.now())
    reason = arxiv_calendar.why_no_announcement(day)
    if reason is not None:
        return _outcome(rt, f"{reason}; nothing to send")
    out_at = arxiv_calendar.announced_at(day)
    if rt.now() < out_at:
        local = out_at.astimezone(settings.tzinfo).strftime("%Y-%m-%d %H:%M %Z")
        raise InputError(f"the announcement of {day} is not out yet: arXiv publishes it at {local}")
    with locks.hold_lock(settings.paths.data / "run.lock", "another `digest run`"), \
            closing(open_store(settings, rt)) as conn:
        ran: list[str] = []
        for step in DAILY_STEPS:
            status = progress(conn, settings, day)
            if status.collected == "empty":
                return _outcome(rt, f"{day}: no announcement (the feed was empty: an arXiv "
                                    "holiday); nothing to send")
            if lifecycle.step_done(step, status):
                rt.echo(f"{day}: {step}: already done")
                continue
            waiting = _held_back(settings, day, status, send_issue) if step == "send" else None
            if waiting is not None:
                return _outcome(rt, waiting)
            if should_stop():
                return _outcome(rt, f"{day}: stopped before {step} as asked; "
                                    f"`digest run --date {day}` continues from there")
            rt.echo(f"{day}: {step} ...")
            try:
                getattr(steps, step)(settings, day, rt)
            except DigestError as exc:
                raise StepFailed(day, step, exc) from exc
            ran.append(step)
        state = progress(conn, settings, day).state
    if not ran:
        return _outcome(rt, f"{day}: already {state}; nothing to do")
    return _outcome(rt, f"{day}: {', '.join(ran)} done; the issue is {state}")


# An issue approved after its scheduled send still goes out at a later send, up to this many
# days after its date (older ones are news no longer: `digest send --date D` sends them).
LATE_SEND_DAYS = 7


def late_approved(settings: Settings, day: date) -> list[date]:
    """Issues before `day`, approved (and maybe published) but not sent, recent enough to
    send late."""
    since = day - timedelta(days=LATE_SEND_DAYS)
    with closing(open_store(settings)) as conn:
        return sorted(
            d for state in (State.APPROVED, State.PUBLISHED)
            for d in store.issues_in_state(conn, state, since, day)
        )


def send_late(
    settings: Settings,
    day: date,
    rt: Runtime,
    *,
    steps: Steps | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[str]:
    """Send the issues approved after their own send went out (see LATE_SEND_DAYS); returns
    each one's outcome."""
    outcomes = []
    for late in late_approved(settings, day):
        rt.echo(f"{late}: approved after its send; sending it now")
        outcomes.append(daily(settings, late, rt, steps=steps, should_stop=should_stop))
    return outcomes


def _outcome(rt: Runtime, line: str) -> str:
    rt.echo(line)
    return line


def lookup_paper(settings: Settings, day: date, rt: Runtime, arxiv_id: str) -> Paper | None:
    """A paper by id: from the store, else from the arXiv API (then stored, seen on `day`);
    None when arXiv has no such paper. For a paper no tag matched, added by hand."""
    with closing(open_store(settings, rt)) as conn:
        found = store.get_papers(conn, [arxiv_id]).get(arxiv_id)
        if found is not None:
            return found
        paper = arxiv_api.ArxivApi(settings, rt).fetch_ids([arxiv_id]).get(arxiv_id)
        if paper is not None:
            with store.transaction(conn):
                store.upsert_paper(conn, paper, day)
        return paper

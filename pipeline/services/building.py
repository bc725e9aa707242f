"""`digest build`: merge the draft into an issue, render the emails, write the previews."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipeline import store
from pipeline.collect import api as arxiv_api
from pipeline.core import layout, lifecycle
from pipeline.core.config import Settings
from pipeline.core.errors import FormatError, InputError
from pipeline.core.lifecycle import IssueRecord
from pipeline.core.models import Digest, Issue
from pipeline.core.runtime import Runtime
from pipeline.curate import lint, merge
from pipeline.deliver import previews as email_previews
from pipeline.publish import render, site, size_guard
from pipeline.services.common import open_store, read_draft


@dataclass(frozen=True)
class Merged:
    """The draft resolved to papers, and what could not be resolved cleanly."""

    issue: Issue
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildReport:
    """What `build` made: the record it wrote, the sizes, the previews, and warnings."""

    day: date
    record: IssueRecord
    entries: int
    sizes: tuple[tuple[str, int], ...]  # variant -> HTML bytes
    uncommented: int
    approval_required: bool
    layout_note: str | None  # the size guard switched to the compact layout
    site_preview: Path  # outbox/D/site/index.html
    site_changes: int  # files publishing would change in site/
    site_folder: Path
    previews: tuple[Path, ...]  # outbox/D/preview.V.html, one per variant
    warnings: tuple[str, ...] = ()

    @property
    def built_hash(self) -> str:
        """The build's hash (the record's)."""
        assert self.record.built_hash is not None
        return self.record.built_hash


def merged_issue(
    settings: Settings, day: date, rt: Runtime, parsed: Digest | None = None
) -> Merged:
    """Resolve the entries of the draft (`parsed`, else drafts/DAY.txt read now) to papers
    (store, then arXiv API)."""
    path = layout.draft_path(settings, day)
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
    return Merged(result.issue, tuple(f"{path.name}: {p}" for p in result.problems))


def build(settings: Settings, day: date, rt: Runtime) -> BuildReport:
    """Merge the draft into an issue, render the emails, write the previews (outbox/D/
    preview.*, and outbox/D/site/: site/ as publishing will make it) and the issue's record.
    Nothing reaches site/ or a feed: approving (or, in auto mode, sending) publishes."""
    parsed, draft_sha = read_draft(settings, day)
    path = layout.draft_path(settings, day)
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
    warnings = [f"{path.name}:{f.line}: {f.message}" for f in findings
                if f.kind != lint.UNKNOWN_TAG]  # a new tag is the curator's to add; a typo is not
    with closing(open_store(settings, rt)) as conn:
        sent = store.sent_papers(conn, day)
    warnings += [f"{path.name}:{e.line}: arXiv:{e.arxiv_id} was already sent in the issue of "
                 f"{sent[e.arxiv_id]}" for e in parsed.entries
                 if e.arxiv_id is not None and e.arxiv_id in sent]
    merged = merged_issue(settings, day, rt, parsed)
    warnings += merged.warnings
    issue = merged.issue
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
        previews = email_previews.write_previews(settings, day, variants)
        state = lifecycle.state_after_build(before, built)
        store.save_built_issue(conn, day, state, draft_sha, built, variants, summary, issue)
        record = store.get_issue_record(conn, day)
    assert record is not None
    return BuildReport(
        day=day,
        record=record,
        entries=summary.entries,
        sizes=tuple((v.name, v.html_bytes) for v in summary.variants),
        uncommented=len(summary.uncommented),
        approval_required=settings.approval.required,
        layout_note=size_guard.layout_note(variants),
        site_preview=root / "index.html",
        site_changes=len(changed),
        site_folder=settings.paths.site,
        previews=tuple(previews[::2]),
        warnings=tuple(warnings),
    )

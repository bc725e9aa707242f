"""Approval: approve records the built issue's hash; editing the draft voids it; approve again."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from pipeline import services, store
from pipeline.core import lifecycle
from pipeline.core.config import Settings
from pipeline.core.errors import ApprovalError
from pipeline.core.models import EmailVariant, Issue
from pipeline.interfaces import present
from tests.sample_day import DAY, REFERENCE_NOTES, add_candidates, newsletter, runtime, sample_papers


def _build(settings: Settings, marker: str = "") -> list[EmailVariant]:
    """What `digest build` records: the rendered variants and the sha of the draft they came
    from (the rendering itself is another stage's; a stand-in derived from the draft here)."""
    path = services.draft_path(settings, DAY)
    text = path.read_text(encoding="utf-8")
    variants = [EmailVariant(v, f"Digest {DAY}", f"<p>{v}{marker}</p>{len(text)}", text)
                for v in sorted(settings.variants)]
    sha = services.file_sha(path) or ""
    built = store.variants_hash(sha, variants)
    issue = Issue(DAY, "Digest", ())
    with closing(store.connect(settings.db_path)) as conn:
        state = lifecycle.state_after_build(store.get_issue_record(conn, DAY), built)
        store.save_built_issue(conn, DAY, state, sha, built, variants,
                               lifecycle.summarize_build(issue, variants), issue)
    return variants


def _approved(settings: Settings) -> list[EmailVariant]:
    with closing(store.connect(settings.db_path)) as conn:
        return services.approved_variants(conn, settings, DAY)


def _state(settings: Settings) -> str:
    with closing(store.connect(settings.db_path)) as conn:
        row = store.get_issue(conn, DAY)
        assert row is not None
        return str(row.state)


@pytest.fixture
def drafted(tmp_path: Path) -> Settings:
    settings = newsletter(tmp_path, REFERENCE_NOTES[:3])
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(p, (), 1.0) for p in sample_papers()[:3]])
    services.draft(settings, DAY, runtime())
    assert _state(settings) == "drafted"
    return settings


def test_approve_then_edit_voids_then_approve_again(drafted: Settings) -> None:
    settings = drafted
    with pytest.raises(ApprovalError, match="is not built yet"):
        services.approve(settings, DAY, runtime())

    built = _build(settings)
    with pytest.raises(ApprovalError, match="is not approved"):
        _approved(settings)
    messages = present.lines(services.approve(settings, DAY, runtime()))
    assert _approved(settings) == built and _state(settings) == "published"
    assert any(m.startswith(f"approved the issue of {DAY} (") for m in messages)

    # The curator edits the draft after approving: the approval no longer holds.
    path = services.draft_path(settings, DAY)
    path.write_text(path.read_text(encoding="utf-8").replace(
        "#reward-model", "#reward-model #rl"), encoding="utf-8")
    with pytest.raises(ApprovalError, match=r"2024-12-05\.txt changed since the issue was built"):
        _approved(settings)
    with pytest.raises(ApprovalError, match="changed since the issue was built"):
        services.approve(settings, DAY, runtime())

    # Rebuilt from the edited draft: built, not approved, until approved again.
    rebuilt = _build(settings)
    assert rebuilt != built and _state(settings) == "published"  # site/ shows the old build
    with pytest.raises(ApprovalError, match="changed since it was approved"):
        _approved(settings)
    services.approve(settings, DAY, runtime())
    assert _approved(settings) == rebuilt and _state(settings) == "published"


def test_a_rebuild_or_a_draft_rerun_that_changes_nothing_keeps_the_approval(
    drafted: Settings,
) -> None:
    settings = drafted
    built = _build(settings)
    services.approve(settings, DAY, runtime())
    services.draft(settings, DAY, runtime())  # nothing new: the draft file is not rewritten
    assert _build(settings) == built
    assert _approved(settings) == built and _state(settings) == "published"
    _build(settings, marker=" re-rendered")  # same draft, different rendering: void
    with pytest.raises(ApprovalError, match="changed since it was approved"):
        _approved(settings)


def test_a_draft_rerun_that_adds_papers_voids_the_approval(drafted: Settings) -> None:
    from dataclasses import replace

    # Drafting candidates too (draft.max_candidates), so that a rerun adds the new one.
    settings = replace(drafted, draft=replace(drafted.draft, max_candidates=40))
    _build(settings)
    services.approve(settings, DAY, runtime())
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(sample_papers()[5], (), 0.5)])
    services.draft(settings, DAY, runtime())
    with pytest.raises(ApprovalError, match="changed since the issue was built"):
        _approved(settings)
    assert _state(settings) == "published"  # the draft does not move the state back


def test_auto_mode_needs_no_approval_but_a_current_build(drafted: Settings) -> None:
    from dataclasses import replace

    settings = replace(drafted, approval=replace(drafted.approval, required=False))
    built = _build(settings)
    assert _approved(settings) == built
    path = services.draft_path(settings, DAY)
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    with pytest.raises(ApprovalError, match="changed since the issue was built"):
        _approved(settings)

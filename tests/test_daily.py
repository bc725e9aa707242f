"""`digest run`: step order, skipping what the store records as done, resuming after a failure,
approval, days without an announcement — with the real store and fake stages."""

from __future__ import annotations

from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline import locks, run, store
from pipeline.errors import InputError, LockedError
from tests.daily_support import Clock, FakeArxiv, make_settings

SEOUL = ZoneInfo("Asia/Seoul")
THU = date(2024, 12, 5)
THU_MORNING = datetime(2024, 12, 5, 10, 30, tzinfo=SEOUL)  # after Wed 20:00 EST


def arxiv(tmp_path: Path, *, approval: bool = False, now: datetime = THU_MORNING,
          **kw: object) -> tuple[FakeArxiv, list[str]]:
    settings = make_settings(tmp_path, approval=approval)
    return FakeArxiv(settings, Clock(now), **kw), []  # type: ignore[arg-type]


def run_daily(fa: FakeArxiv, echoed: list[str], day: date | None = THU, **kw: object) -> str:
    from pipeline.runtime import Runtime

    rt = Runtime(now=fa.clock, echo=echoed.append)
    return run.daily(fa.settings, day, rt, steps=fa.steps(), **kw)  # type: ignore[arg-type]


def issue_state(fa: FakeArxiv, day: date = THU) -> str | None:
    with closing(run.open_store(fa.settings)) as conn:
        row = store.get_issue(conn, day)
    return None if row is None else str(row["state"])


def test_a_fresh_day_runs_every_step_in_order_then_a_rerun_runs_none(tmp_path: Path) -> None:
    fa, echoed = arxiv(tmp_path)
    outcome = run_daily(fa, echoed)
    assert fa.calls == [("collect", THU), ("draft", THU), ("build", THU), ("send", THU)]
    assert outcome == f"{THU}: collect, draft, build, send done; the issue is sent"
    assert issue_state(fa) == "sent"

    again = run_daily(fa, echoed)
    assert len(fa.calls) == 4  # nothing repeated
    assert again == f"{THU}: already sent; nothing to do"


def test_without_a_date_the_latest_announcement_out_is_used(tmp_path: Path) -> None:
    # Thursday 09:30 in Seoul is Wednesday 19:30 EST: Thursday's announcement is not out yet.
    fa, echoed = arxiv(tmp_path, now=datetime(2024, 12, 5, 9, 30, tzinfo=SEOUL))
    run_daily(fa, echoed, day=None)
    assert {d for _, d in fa.calls} == {date(2024, 12, 4)}


def test_a_failed_step_stops_and_the_rerun_resumes_without_repeats(tmp_path: Path) -> None:
    fa, echoed = arxiv(tmp_path, fail={"build": 1})
    with pytest.raises(run.StepFailed) as info:
        run_daily(fa, echoed)
    message = str(info.value)
    assert message.startswith(f"{THU}: build failed: ")
    assert "connection reset" in message
    assert f"`digest run --date {THU}` continues from build" in message
    assert "\n" not in message
    assert info.value.exit_code == 1
    assert fa.calls == [("collect", THU), ("draft", THU), ("build", THU)]
    assert issue_state(fa) == "drafted"

    run_daily(fa, echoed)
    assert fa.calls[3:] == [("build", THU), ("send", THU)]
    run_daily(fa, echoed)
    assert fa.sent() == [THU]


def test_a_failed_send_is_retried_and_sends_once(tmp_path: Path) -> None:
    fa, echoed = arxiv(tmp_path, fail={"send": 1})
    with pytest.raises(run.StepFailed, match="send failed"):
        run_daily(fa, echoed)
    run_daily(fa, echoed)
    run_daily(fa, echoed)
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build", "send", "send"]
    assert issue_state(fa) == "sent"


def test_with_approval_required_it_tells_the_curator_and_sends_after_approve(
    tmp_path: Path,
) -> None:
    fa, echoed = arxiv(tmp_path, approval=True)
    outcome = run_daily(fa, echoed)
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build"]
    assert str(run.draft_path(fa.settings, THU)) in outcome
    assert str(fa.settings.paths.outbox / str(THU) / "preview.all.html") in outcome
    assert f"`digest approve --date {THU}`" in outcome
    assert echoed[-1] == outcome

    run_daily(fa, echoed)  # still not approved: nothing runs, same advice
    assert len(fa.calls) == 3

    from pipeline.runtime import Runtime

    run.approve(fa.settings, THU, Runtime(now=fa.clock, echo=echoed.append))
    run_daily(fa, echoed)
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build", "send"]


def test_an_edited_draft_is_rebuilt_and_needs_approval_again(tmp_path: Path) -> None:
    from pipeline.runtime import Runtime

    fa, echoed = arxiv(tmp_path, approval=True)
    run_daily(fa, echoed)
    run.approve(fa.settings, THU, Runtime(now=fa.clock, echo=echoed.append))
    with run.draft_path(fa.settings, THU).open("a", encoding="utf-8") as fh:
        fh.write("one more line by the curator\n")
    outcome = run_daily(fa, echoed)
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build", "build"]
    assert "waiting for approval" in outcome
    assert fa.sent() == []


def test_collect_only_mode_stops_before_send(tmp_path: Path) -> None:
    fa, echoed = arxiv(tmp_path)
    outcome = run_daily(fa, echoed, send_issue=False)
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build"]
    assert "scheduled send" in outcome
    run_daily(fa, echoed)
    assert fa.sent() == [THU]


def test_an_empty_feed_day_sends_nothing_and_says_why(tmp_path: Path) -> None:
    thanksgiving = date(2024, 11, 28)
    fa, echoed = arxiv(tmp_path, now=datetime(2024, 11, 28, 11, 0, tzinfo=SEOUL),
                       holidays=frozenset({thanksgiving}))
    outcome = run_daily(fa, echoed, day=thanksgiving)
    assert outcome == f"{thanksgiving}: no announcement (the feed was empty: an arXiv holiday); " \
                      "nothing to send"
    assert fa.calls == [("collect", thanksgiving)]
    run_daily(fa, echoed, day=thanksgiving)
    assert fa.calls == [("collect", thanksgiving)]  # the store remembers the empty day


def test_a_weekend_date_runs_nothing(tmp_path: Path) -> None:
    fa, echoed = arxiv(tmp_path)
    outcome = run_daily(fa, echoed, day=date(2024, 12, 7))
    assert fa.calls == []
    assert "2024-12-07 is a Saturday" in outcome
    assert outcome.endswith("nothing to send")
    assert not fa.settings.db_path.exists()


def test_a_date_not_announced_yet_is_refused(tmp_path: Path) -> None:
    fa, echoed = arxiv(tmp_path, now=datetime(2024, 12, 5, 9, 59, tzinfo=SEOUL))
    with pytest.raises(InputError, match="not out yet: arXiv publishes it at 2024-12-05 10:00 KST"):
        run_daily(fa, echoed)
    assert fa.calls == []


def test_a_second_run_at_the_same_time_is_refused(tmp_path: Path) -> None:
    fa, echoed = arxiv(tmp_path)
    with locks.hold_lock(fa.settings.paths.data / "run.lock", "test"), \
            pytest.raises(LockedError, match="another `digest run` holds this lock"):
        run_daily(fa, echoed)
    assert fa.calls == []


def test_a_stop_request_ends_the_cycle_after_the_current_step(tmp_path: Path) -> None:
    fa, echoed = arxiv(tmp_path)
    asked: list[bool] = []
    fa.on_call = lambda step, _day: asked.append(step == "draft") if step == "draft" else None
    outcome = run_daily(fa, echoed, should_stop=lambda: bool(asked))
    assert [s for s, _ in fa.calls] == ["collect", "draft"]
    assert outcome.startswith(f"{THU}: stopped before build")
    asked.clear()
    run_daily(fa, echoed)
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build", "send"]

"""`digest run`: step order, skipping what the store records as done, resuming after a failure,
approval, days without an announcement — with the real store and fake stages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline import services, store
from pipeline.core import locks
from pipeline.core.config import Settings
from pipeline.core.errors import InputError, LockedError
from pipeline.core.runtime import Runtime
from pipeline.interfaces import present
from tests.daily_support import Clock, FakeArxiv, make_settings
from tests.support import FakeClock, RecordingServer, Reply, edit_newsletter

SEOUL = ZoneInfo("Asia/Seoul")
THU = date(2024, 12, 5)
THU_MORNING = datetime(2024, 12, 5, 10, 30, tzinfo=SEOUL)  # after Wed 20:00 EST


def arxiv(
    tmp_path: Path, *, approval: bool = False, now: datetime = THU_MORNING,
    holidays: frozenset[date] = frozenset(), fail: dict[str, int] | None = None,
) -> tuple[FakeArxiv, list[str]]:
    """Fake stages over a newsletter in tmp_path, and the list the run echoes into."""
    settings = make_settings(tmp_path, approval=approval)
    return FakeArxiv(settings, Clock(now), holidays=holidays, fail=fail or {}), []


def run_daily(
    fa: FakeArxiv, echoed: list[str], day: date | None = THU, *, send_issue: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> str:
    rt = Runtime(now=fa.clock, echo=echoed.append)
    return services.daily(fa.settings, day, rt, steps=fa.steps(), send_issue=send_issue,
                          should_stop=should_stop,
                          on_event=lambda e: echoed.extend(present.lines(e))).outcome


def issue_state(fa: FakeArxiv, day: date = THU) -> str | None:
    with closing(services.open_store(fa.settings)) as conn:
        row = store.get_issue(conn, day)
    return None if row is None else str(row.state)


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
    with pytest.raises(services.StepFailed) as info:
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
    with pytest.raises(services.StepFailed, match="send failed"):
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
    assert str(services.draft_path(fa.settings, THU)) in outcome
    assert str(fa.settings.paths.outbox / str(THU) / "preview.all.html") in outcome
    assert f"`digest approve --date {THU}`" in outcome
    assert echoed[-1] == outcome

    run_daily(fa, echoed)  # still not approved: nothing runs, same advice
    assert len(fa.calls) == 3

    echoed += present.lines(services.approve(fa.settings, THU, Runtime(now=fa.clock, echo=echoed.append)))
    run_daily(fa, echoed)
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build", "send"]


def test_an_edited_draft_is_rebuilt_and_needs_approval_again(tmp_path: Path) -> None:
    fa, echoed = arxiv(tmp_path, approval=True)
    run_daily(fa, echoed)
    echoed += present.lines(services.approve(fa.settings, THU, Runtime(now=fa.clock, echo=echoed.append)))
    with services.draft_path(fa.settings, THU).open("a", encoding="utf-8") as fh:
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


# --- end to end: the real stages over the demo newsletter and a local arXiv ------------------


@pytest.fixture
def demo_newsletter(tmp_path: Path, http_server: RecordingServer) -> Iterator[Path]:
    """The demo's newsletter directory, its feed served by the recording server, readers
    imported; DIGEST_SECRET set for the test."""
    from pipeline.interfaces import demo

    http_server.route("/api/query", Reply(b"not found", 404))
    config = demo.prepare(tmp_path / "news", http_server.url)
    with demo.demo_secret():
        demo.digest(config, "subscribers", "import", str(tmp_path / "news" / "subscribers.csv"))
        yield config


def readers_mailed(settings: Settings) -> list[tuple[str, int]]:
    with closing(services.open_store(settings)) as conn:
        rows = conn.execute(
            "SELECT s.email, d.attempts FROM deliveries d JOIN subscribers s"
            " ON s.id = d.subscriber_id WHERE d.status = 'sent' ORDER BY s.email"
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


@pytest.mark.slow
def test_end_to_end_a_failed_fetch_then_a_rerun_sends_each_reader_once(
    demo_newsletter: Path, http_server: RecordingServer, clock: FakeClock
) -> None:
    from pipeline.core.config import load_config
    from pipeline.interfaces.demo import BUNDLE
    feed = (BUNDLE / "feed" / "2024-12-05.xml").read_bytes()
    http_server.route("/rss/cs.CL+cs.LG+cs.CV+cs.AI", Reply(b"busy", 503), Reply(feed))
    settings = load_config(demo_newsletter)
    echoed: list[str] = []
    rt = Runtime(sleep=clock.sleep, monotonic=clock.monotonic, echo=echoed.append)

    with pytest.raises(services.StepFailed) as info:
        services.daily(settings, THU, rt)
    assert str(info.value).startswith(f"{THU}: collect failed: ")
    assert "503" in str(info.value)
    assert not services.draft_path(settings, THU).exists()

    outcome = services.daily(settings, THU, rt).outcome
    # the demo's config sends through the outbox: a trial, the issue stays unsent
    assert outcome == (f"{THU}: collect, draft, build, send done; the issue is published "
                       "(sent to the outbox only: no reader was mailed)")
    assert services.daily(settings, THU, rt).outcome == (
        f"{THU}: already sent to the outbox (a trial: no reader was mailed); nothing to do")
    assert http_server.count("/rss/") == 2  # the failure and the retry, nothing after
    assert readers_mailed(settings) == [("both.reader@example.org", 1),
                                        ("en.reader@example.org", 1),
                                        ("ko.reader@example.org", 1)]
    assert (settings.paths.site / "issues" / "2024-12-05.html").is_file()


@pytest.mark.slow
def test_end_to_end_with_approval_the_run_waits_then_sends_once(
    demo_newsletter: Path, http_server: RecordingServer
) -> None:
    from pipeline.interfaces.demo import BUNDLE
    http_server.route("/rss/cs.CL+cs.LG+cs.CV+cs.AI",
                      Reply((BUNDLE / "feed" / "2024-12-05.xml").read_bytes()))
    settings = edit_newsletter(demo_newsletter, approval={"required": True})
    assert settings.approval.required
    echoed: list[str] = []
    rt = Runtime(echo=echoed.append)

    waiting = services.daily(settings, THU, rt).outcome
    assert "waiting for approval" in waiting
    assert (settings.paths.outbox / str(THU) / "preview.all.html").is_file()
    assert readers_mailed(settings) == []
    services.approve(settings, THU, rt)
    assert services.daily(settings, THU, rt).outcome == (
        f"{THU}: send done; the issue is published (sent to the outbox only: no reader was "
        "mailed)")
    assert services.daily(settings, THU, rt).outcome == (
        f"{THU}: already sent to the outbox (a trial: no reader was mailed); nothing to do")
    assert [n for _, n in readers_mailed(settings)] == [1, 1, 1]

"""`digest schedule`: crontab triggers, the catch-up of a missed run (once), the single-instance
lock and a clean stop — over weeks of simulated time with the real store and fake stages."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.errors import ConfigError
from pipeline.core.runtime import Runtime
from pipeline.services.schedule import (
    JobRunner,
    catch_up_plan,
    load_state,
    run_scheduler,
    save_state,
)
from pipeline.services.timetable import crontab_trigger, fires_between, triggers_for
from tests.daily_support import Clock, FakeArxiv, make_settings

SEOUL = ZoneInfo("Asia/Seoul")
ROOT = Path(__file__).resolve().parent.parent


def schedule_tables(collect: str, send: str, tz: str = "Asia/Seoul") -> dict[str, dict[str, Any]]:
    return {"newsletter": {"timezone": tz},
            "schedule": {"collect": collect, "send": send, "misfire_grace_seconds": 600}}


# --- crontab lines -----------------------------------------------------------------------------


def weekdays_fired(expr: str) -> set[str]:
    trigger = crontab_trigger(expr, SEOUL, "collect")
    start = datetime(2024, 11, 3, tzinfo=SEOUL)
    fires = fires_between(trigger, start, start + timedelta(days=7))
    assert len(fires) == len({f.date() for f in fires})  # once a day at most
    return {f.strftime("%a") for f in fires}


def test_crontab_weekdays_mean_what_crontab_means() -> None:
    # APScheduler 3 alone would read "1-5" as Tuesday–Saturday.
    assert weekdays_fired("30 10 * * 1-5") == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    assert weekdays_fired("30 20 * * 0-4") == {"Sun", "Mon", "Tue", "Wed", "Thu"}
    assert weekdays_fired("0 9 * * 7") == {"Sun"}
    assert weekdays_fired("0 9 * * 5-7") == {"Fri", "Sat", "Sun"}
    assert weekdays_fired("0 9 * * 7-7") == {"Sun"}  # was every day
    assert weekdays_fired("0 9 * * sun-thu") == {"Sun", "Mon", "Tue", "Wed", "Thu"}
    assert weekdays_fired("0 9 * * */2") == {"Sun", "Tue", "Thu", "Sat"}
    assert weekdays_fired("0 9 * * 1,3") == {"Mon", "Wed"}
    assert len(weekdays_fired("0 9 * * *")) == 7


@pytest.mark.parametrize(
    ("expr", "match"),
    [
        ("30 10 * *", "expected 5 cron fields"),
        ("30 25 * * 1-5", "not a valid cron line"),
        ("30 10 * * 1-9", "bad day of week '9'"),
        ("30 10 * * 5-1", "backwards range"),
        ("30 10 * * 1-", "bad day of week ''"),  # was read as Monday
        ("0 18 31 2 *", "never fires"),  # February 31st (the scheduler crashed on it)
    ],
)
@pytest.mark.slow
def test_bad_cron_lines_name_the_key(expr: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        crontab_trigger(expr, SEOUL, "send")
    assert info.value.key == "schedule.send"


# --- the catch-up computation (pure) -----------------------------------------------------------


def test_catch_up_plan_runs_the_latest_missed_fire_once() -> None:
    triggers = {"collect": crontab_trigger("30 10 * * 1-5", SEOUL, "collect")}
    fri = datetime(2024, 11, 8, 10, 30, tzinfo=SEOUL)
    # Down from Friday after the run until Wednesday noon: Mon, Tue, Wed were missed.
    wed_noon = datetime(2024, 11, 13, 12, 0, tzinfo=SEOUL)
    plan = catch_up_plan(triggers, {"collect": fri}, wed_noon)
    assert plan == {"collect": datetime(2024, 11, 13, 10, 30, tzinfo=SEOUL)}  # coalesced
    assert catch_up_plan(triggers, {"collect": plan["collect"]}, wed_noon) == {}
    assert catch_up_plan(triggers, {}, wed_noon) == {}  # no history: nothing was missed
    # A long outage still finds the latest fire without walking every one since.
    long_ago = datetime(2020, 1, 1, tzinfo=SEOUL)
    assert catch_up_plan(triggers, {"collect": long_ago}, wed_noon) == plan


def test_state_round_trips_and_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "schedule-state.json"
    assert load_state(path) == {}
    state = {"collect": datetime(2024, 11, 8, 10, 30, tzinfo=SEOUL)}
    save_state(path, state)
    assert load_state(path) == state
    path.write_text("{not json", "utf-8")
    with pytest.raises(Exception, match="unreadable scheduler state"):
        load_state(path)


# --- weeks of simulated time -------------------------------------------------------------------

THANKSGIVING = date(2024, 11, 28)


def weekdays(first: date, last: date) -> list[date]:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [d for d in days if d.weekday() < 5]


@pytest.mark.parametrize(
    ("tz", "collect", "send", "down_from", "down_until"),
    [
        # Seoul: arXiv's 20:00 ET is 09:00 KST before 2024-11-03 and 10:00 KST after.
        ("Asia/Seoul", "30 10 * * 1-5", "0 18 * * 1-5", (11, 6, 17), (11, 6, 23)),
        # New York: collect right after the announcement (Sun–Thu), send next morning.
        ("America/New_York", "30 20 * * 0-4", "0 7 * * 1-5", (11, 6, 6), (11, 6, 9)),
        # Berlin: Europe leaves DST a week before the US (2024-10-27 vs 11-03).
        ("Europe/Berlin", "30 2 * * 2-6", "0 8 * * 1-5", (11, 6, 7), (11, 6, 9)),
    ],
)
@pytest.mark.slow
def test_five_weeks_issue_exactly_on_announcement_days(
    tmp_path: Path, tz: str, collect: str, send: str,
    down_from: tuple[int, int, int], down_until: tuple[int, int, int],
) -> None:
    """2024-10-26 … 11-30: weekends, both DST changes, Thanksgiving (an empty feed) and the
    machine down over one send, restarted (caught up once) and restarted again (nothing)."""
    zone = ZoneInfo(tz)
    settings = make_settings(tmp_path, **schedule_tables(collect, send, tz))
    clock = Clock(datetime(2024, 10, 26, tzinfo=zone))
    fa = FakeArxiv(settings, clock, holidays=frozenset({THANKSGIVING}))
    runner = JobRunner(settings, Runtime(now=clock, echo=lambda _: None), steps=fa.steps())
    assert runner.start_state() == {}  # first start: nothing to catch up
    down = (datetime(2024, *down_from, tzinfo=zone), datetime(2024, *down_until, tzinfo=zone))
    fires = sorted(
        (fire, job) for job, trigger in triggers_for(settings).items()
        for fire in fires_between(trigger, clock.now, datetime(2024, 12, 1, tzinfo=zone))
    )
    outcomes: list[tuple[str, datetime, str]] = []
    caught_up: list[dict[str, datetime]] = []
    for fire, job in fires:
        if down[0] <= fire < down[1]:
            continue  # the machine is off
        if fire >= down[1] and not caught_up:
            clock.now = down[1]
            caught_up.append(runner.start_state())
            for missed_job in caught_up[0]:
                outcomes.append((missed_job, caught_up[0][missed_job], runner.run(missed_job)))
            clock.now = down[1] + timedelta(minutes=5)
            caught_up.append(runner.start_state())  # a second restart
        clock.now = fire + timedelta(seconds=2)
        outcomes.append((job, fire, runner.run(job)))

    missed_send = max(f for f, j in fires if j == "send" and f < down[0] + timedelta(days=1)
                      and down[0] <= f < down[1])
    assert caught_up == [{"send": missed_send}, {}]
    expected = [d for d in weekdays(date(2024, 10, 28), date(2024, 11, 29)) if d != THANKSGIVING]
    assert fa.sent() == expected  # each announcement day once, in order, no other day
    assert not [o for o in outcomes if o[2].startswith(("failed", "crashed"))]
    collected = [d for s, d in fa.calls if s == "collect"]
    assert collected == sorted(set(collected))  # each day collected once, never repeated
    assert set(collected) >= {*expected, THANKSGIVING}
    assert all(d.weekday() < 5 for d in collected)
    # Each send went out on its own date, in the newsletter's time zone.
    send_fire = {fire.astimezone(zone).date() for job, fire, o in outcomes
                 if job == "send" and "send done" in o}
    assert send_fire == set(expected)
    holiday = [o for _, f, o in outcomes if f.astimezone(zone).date() == THANKSGIVING
               and THANKSGIVING.isoformat() in o]
    assert any("no announcement" in o for o in holiday)


# --- the scheduler itself (APScheduler in a thread, the lock, signals) -------------------------


def start_in_thread(settings: Settings, fa: FakeArxiv, stop: threading.Event,
                    started: queue.Queue[list[tuple[str, datetime]]],
                    retry_delays: tuple[float, ...] = (3600.0,)) -> threading.Thread:
    def on_started(scheduler: object) -> None:
        jobs = scheduler.get_jobs()  # type: ignore[attr-defined]
        started.put([(j.id, j.next_run_time) for j in jobs])

    thread = threading.Thread(target=run_scheduler, args=(settings, Runtime(
        now=fa.clock, echo=lambda _: None)), kwargs={
        "stop": stop, "steps": fa.steps(), "install_signals": False, "on_started": on_started,
        "retry_delays": retry_delays})
    thread.start()
    return thread


def wait_until(predicate: object, timeout: float = 15.0) -> None:
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not done.is_set():
            if predicate():  # type: ignore[operator]
                return
            done.wait(0.02)
        raise AssertionError("timed out")
    finally:
        deadline.cancel()


@pytest.fixture
def seoul_thursday(tmp_path: Path) -> Iterator[tuple[Settings, FakeArxiv]]:
    settings = make_settings(tmp_path, **schedule_tables("30 10 * * 1-5", "0 18 * * 1-5"))
    fa = FakeArxiv(settings, Clock(datetime(2024, 12, 5, 11, 0, tzinfo=SEOUL)))
    save_state(settings.paths.data / "schedule-state.json", {
        "collect": datetime(2024, 12, 4, 10, 30, tzinfo=SEOUL),
        "send": datetime(2024, 12, 4, 18, 0, tzinfo=SEOUL),
    })
    yield settings, fa


def test_restart_after_a_missed_run_catches_up_once(
    seoul_thursday: tuple[Settings, FakeArxiv],
) -> None:
    settings, fa = seoul_thursday
    state_path = settings.paths.data / "schedule-state.json"
    stop: threading.Event = threading.Event()
    started: queue.Queue[list[tuple[str, datetime]]] = queue.Queue()
    thread = start_in_thread(settings, fa, stop, started)
    started.get(timeout=15)
    thu = datetime(2024, 12, 5, 10, 30, tzinfo=SEOUL)
    wait_until(lambda: load_state(state_path)["collect"] == thu)
    stop.set()
    thread.join(15)
    assert not thread.is_alive()
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build"]
    assert {d for _, d in fa.calls} == {date(2024, 12, 5)}

    # Restart: the missed run was handled, so nothing is due now (a due job would show a
    # next run time in the past, or would have run before the shutdown returned).
    stop.clear()
    thread = start_in_thread(settings, fa, stop, started)
    jobs = dict(started.get(timeout=15))
    assert all(t > datetime.now(SEOUL) for t in jobs.values())
    stop.set()
    thread.join(15)
    assert len(fa.calls) == 3


def test_a_stop_during_a_step_finishes_it_and_the_next_start_resumes(
    seoul_thursday: tuple[Settings, FakeArxiv],
) -> None:
    settings, fa = seoul_thursday
    stop: threading.Event = threading.Event()
    started: queue.Queue[list[tuple[str, datetime]]] = queue.Queue()
    fa.on_call = lambda step, _day: stop.set() if step == "collect" else None  # "SIGTERM"
    thread = start_in_thread(settings, fa, stop, started)
    thread.join(15)
    assert not thread.is_alive()
    assert [s for s, _ in fa.calls] == ["collect"]
    # Not recorded as handled: the next start catches it up and continues after collect.
    assert load_state(settings.paths.data / "schedule-state.json")["collect"].day == 4
    fa.on_call = lambda step, _day: stop.set() if step == "build" else None
    stop.clear()
    thread = start_in_thread(settings, fa, stop, started)
    thread.join(15)
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build"]


def test_a_stop_during_a_step_that_then_fails_still_stops(
    seoul_thursday: tuple[Settings, FakeArxiv],
) -> None:
    """SIGTERM while collect waits on a slow server, which then times out: the scheduler
    stops (it hung: scheduling the retry during shutdown deadlocks APScheduler) and the next
    start resumes the services."""
    settings, fa = seoul_thursday
    stop: threading.Event = threading.Event()
    started: queue.Queue[list[tuple[str, datetime]]] = queue.Queue()
    fa.fail = {"collect": 1}
    fa.on_call = lambda step, _day: stop.set() if step == "collect" else None  # "SIGTERM"
    thread = start_in_thread(settings, fa, stop, started, retry_delays=(0.05,))
    thread.join(15)
    assert not thread.is_alive()
    assert load_state(settings.paths.data / "schedule-state.json")["collect"].day == 4
    fa.on_call = None
    stop.clear()
    thread = start_in_thread(settings, fa, stop, started)
    wait_until(lambda: len(fa.calls) == 4)
    stop.set()
    thread.join(15)
    assert [s for s, _ in fa.calls] == ["collect", "collect", "draft", "build"]


def test_a_failed_run_is_retried_later_then_given_up(
    seoul_thursday: tuple[Settings, FakeArxiv], caplog: pytest.LogCaptureFixture,
) -> None:
    settings, fa = seoul_thursday
    fa.fail = {"build": 3}
    stop: threading.Event = threading.Event()
    started: queue.Queue[list[tuple[str, datetime]]] = queue.Queue()
    with caplog.at_level("INFO", logger="pipeline.services.schedule"):
        thread = start_in_thread(settings, fa, stop, started, retry_delays=(0.05, 0.05))
        wait_until(lambda: "giving up after 2 retries" in caplog.text)
        stop.set()
        thread.join(15)
    # The catch-up run and two retries; each retry resumed at the failed step.
    assert [s for s, _ in fa.calls] == ["collect", "draft", "build", "build", "build"]
    assert "2024-12-05: build failed: " in caplog.text
    assert "retry 2 in 0.05 s" in caplog.text
    assert "`digest run --date 2024-12-05` continues from the failed step" in caplog.text

    fa.fail = {"build": 1}
    fa.calls.clear()
    stop.clear()
    settings_state = settings.paths.data / "schedule-state.json"
    save_state(settings_state, {**load_state(settings_state),
                                "collect": datetime(2024, 12, 4, 10, 30, tzinfo=SEOUL)})
    thread = start_in_thread(settings, fa, stop, started, retry_delays=(0.05,))
    wait_until(lambda: len(fa.calls) == 2)
    stop.set()
    thread.join(15)
    assert [s for s, _ in fa.calls] == ["build", "build"]  # failed once, the retry built it


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.slow
def test_a_second_scheduler_cannot_run_and_a_signal_stops_the_first(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """Two real `digest schedule` processes: the second says so in one line and exits 1;
    SIGTERM (or Ctrl-C's SIGINT) makes the first stop cleanly with exit 0."""
    make_settings(tmp_path, **schedule_tables("0 3 29 2 *", "0 4 29 2 *"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_SECRET": "s" * 32}
    cmd = [sys.executable, "-m", "pipeline", "--config", "config/digest.toml", "schedule"]
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert first.stderr is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in first.stderr], daemon=True)
    reader.start()
    try:
        seen: list[str] = []
        while not any("scheduler started" in x for x in seen):
            seen.append(lines.get(timeout=30))
        second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1
        assert second.stderr.startswith("digest: error: ")
        assert "schedule.lock: another `digest schedule` holds this lock" in second.stderr
        first.send_signal(stop_signal)
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
    reader.join(5)
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    log = "".join(seen + rest)
    assert f"{stop_signal.name} received: stopping after the current step" in log
    assert "scheduler stopped" in log
    assert "Traceback" not in log


def test_an_issue_approved_after_its_send_goes_out_at_the_next_send(tmp_path: Path) -> None:
    """The 18:00 send of Monday's issue waits for approval; the curator approves on Tuesday
    morning; Tuesday's send sends Tuesday's issue (once approved) and Monday's too."""
    zone = ZoneInfo("Asia/Seoul")
    settings = make_settings(tmp_path, **schedule_tables("30 10 * * 1-5", "0 18 * * 1-5"),
                             approval=True)
    clock = Clock(datetime(2024, 12, 2, 18, 0, 2, tzinfo=zone))  # Monday's send
    fa = FakeArxiv(settings, clock)
    runner = JobRunner(settings, Runtime(now=clock, echo=lambda _: None), steps=fa.steps())
    monday, tuesday = date(2024, 12, 2), date(2024, 12, 3)
    assert "waiting for approval" in runner.run("send", clock.now)
    assert fa.sent() == []
    services.approve(settings, monday, Runtime(now=clock, echo=lambda _: None))  # Tuesday morning
    clock.now = datetime(2024, 12, 3, 18, 0, 2, tzinfo=zone)
    runner.run("send", clock.now)
    assert fa.sent() == [monday]  # Tuesday's own issue still waits for its approval
    with closing(services.open_store(settings)) as conn:
        assert store.get_issue(conn, monday).state == "sent"
        assert store.get_issue(conn, tuesday).state == "built"
    clock.now = datetime(2024, 12, 4, 18, 0, 2, tzinfo=zone)
    runner.run("send", clock.now)
    assert fa.sent() == [monday]  # never twice


def test_a_failed_send_logs_what_it_did_before_its_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A send that ends with messages deferred raises with its report: the log says what
    the send did (the reader it could not reach, the totals), then that it failed."""
    from dataclasses import replace

    from pipeline.core.errors import DeliveryError
    from pipeline.deliver.dispatch import Failure
    from pipeline.interfaces import present

    settings = make_settings(tmp_path, **schedule_tables("30 10 * * 1-5", "0 18 * * 1-5"))
    clock = Clock(datetime(2024, 12, 5, 18, 0, 2, tzinfo=SEOUL))
    fa = FakeArxiv(settings, clock)
    day = date(2024, 12, 5)
    report = services.SendReport(day, "sent", services.draft_path(settings, day), sent=2,
                                 deferred=1, failures=(Failure(
                                     "late@example.org", "deferred",
                                     "deferred by the server: 451 4.7.1 try again later"),))

    def send(_settings: Settings, _day: date, _rt: Runtime) -> object:
        raise DeliveryError("1 messages were deferred", report=report)

    runner = JobRunner(settings, Runtime(now=clock, echo=lambda _: None),
                       steps=replace(fa.steps(), send=send), describe=present.lines)
    with caplog.at_level("INFO", logger="pipeline.services.schedule"):
        outcome = runner.run("send", clock.now)
    assert outcome == "failed: 2024-12-05: send failed: 1 messages were deferred " \
                      "(`digest run --date 2024-12-05` continues from send)"
    logged = [r.getMessage() for r in caplog.records]
    said = present.send_lines(report)
    assert any("late@example.org" in line for line in said)
    at = logged.index(said[0])
    assert logged[at:at + len(said)] == said  # in the presenter's words and order
    assert logged.index(f"send run of {clock.now.isoformat()}: {outcome}") > at

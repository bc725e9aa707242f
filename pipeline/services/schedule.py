"""`digest schedule`: APScheduler cron jobs from [schedule], one catch-up on start, one instance.

Two jobs, both in the newsletter's time zone: `collect` runs the daily cycle up to the build
(and tells the curator what to do next), `send` runs the whole cycle, sending when the issue
is approved (or approval is off). The announcement a run works on is the latest one out at
the run's scheduled time (arxiv_calendar), so clock changes never shift an issue's date.

APScheduler keeps jobs in memory, so it cannot know about runs missed while the machine was
down: the last handled run of each job is kept in data/schedule-state.json, and on start a
job whose latest fire time is newer than that runs once at once (coalesced, never twice).
A run that failed is retried a few times, later, from the step that failed.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from pipeline.core import calendar as arxiv_calendar
from pipeline.core import layout, locks
from pipeline.core.config import Settings
from pipeline.core.errors import DigestError, StoreError
from pipeline.core.files import write_atomic
from pipeline.core.runtime import Runtime
from pipeline.services.daily import Steps, daily, send_late
from pipeline.services.timetable import (
    JOBS,
    latest_fire,
    triggers_for,
)

log = logging.getLogger("pipeline.services.schedule")

RETRY_DELAYS = (600.0, 1800.0, 3600.0)  # seconds before each retry of a run that failed


# --- state: the last handled run of each job --------------------------------------------------


def load_state(path: Path) -> dict[str, datetime]:
    """The last handled fire time per job (empty when the scheduler never ran)."""
    try:
        raw = json.loads(path.read_text("utf-8"))
        return {job: datetime.fromisoformat(raw[job]) for job in JOBS if job in raw}
    except FileNotFoundError:
        return {}
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"unreadable scheduler state ({exc}); delete it to start afresh",
                         path=path) from exc


def save_state(path: Path, state: Mapping[str, datetime]) -> None:
    """Write the state atomically."""
    data = {job: state[job].isoformat() for job in JOBS if job in state}
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def catch_up_plan(
    triggers: Mapping[str, CronTrigger], state: Mapping[str, datetime], now: datetime
) -> dict[str, datetime]:
    """Per job, the one missed run to catch up now: its latest fire time after the last handled
    run. A job with no history has nothing to catch up (the state starts at `now`)."""
    plan: dict[str, datetime] = {}
    for job, trigger in triggers.items():
        last = state.get(job)
        if last is None:
            continue
        fire = latest_fire(trigger, last, now)
        if fire is not None:
            plan[job] = fire
    return plan


# --- one run of a job -------------------------------------------------------------------------


class JobRunner:
    """Runs a job for one scheduled fire and records it as handled (unless stopped midway)."""

    def __init__(
        self,
        settings: Settings,
        rt: Runtime,
        *,
        steps: Steps | None = None,
        stop: threading.Event | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        describe: Callable[[object], list[str]] = lambda _report: [],
    ) -> None:
        self.settings = settings
        self.rt = replace(rt, echo=log.info)
        self.steps = steps
        self.describe = describe  # a report as log lines (the interface's presenter)
        self.stop = stop if stop is not None else threading.Event()
        self.triggers = triggers_for(settings)
        self.state_path = layout.schedule_state(settings)
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, datetime], int] = {}
        # Set by the scheduler: (job, fire, delay in seconds) -> run it again later.
        self.retry: Callable[[str, datetime, float], None] | None = None
        self.retry_delays = retry_delays

    def run(self, job: str, fire: datetime | None = None) -> str:
        """Run `job` for its scheduled time `fire` (default: its latest fire time not yet
        handled); returns and logs the outcome."""
        with self._lock:
            state = load_state(self.state_path)
            now = self.rt.now()
            if fire is None:
                fire = latest_fire(self.triggers[job], state.get(job, now - timedelta(days=1)), now)
                if fire is None:
                    log.info("%s: no run due since the last one handled", job)
                    return "nothing due"
            day = arxiv_calendar.announcement_for(fire)
            log.info("%s run of %s: announcement %s", job, fire.isoformat(), day)
            try:
                outcome = daily(
                    self.settings, day, self.rt, send_issue=(job == "send"), steps=self.steps,
                    should_stop=self.stop.is_set, on_event=self._log,
                ).outcome
                if job == "send":
                    send_late(self.settings, day, self.rt, steps=self.steps,
                                  should_stop=self.stop.is_set, on_event=self._log)
            except DigestError as exc:
                if exc.report is not None:  # what the failed step did (a send's totals)
                    self._log(exc.report)
                outcome = f"failed: {exc}"
            except Exception as exc:  # the scheduler must outlive a bug in one run
                log.exception("%s run of %s crashed", job, fire.isoformat())
                outcome = f"crashed: {exc!r}"
            # A stop asked for during the run (between steps, or during one that then failed)
            # leaves it unhandled: the next start catches it up and resumes it. No retry then:
            # adding a job while the scheduler shuts down deadlocks APScheduler. (`stop` is
            # only ever set while the scheduler lives, so it tells whether the run was cut.)
            stopped = self.stop.is_set()
            if not stopped:
                state[job] = max(fire, state[job]) if job in state else fire
                save_state(self.state_path, state)
            failed = outcome.startswith(("failed", "crashed"))
            log.log(logging.ERROR if failed else logging.INFO, "%s run of %s: %s", job,
                    fire.isoformat(), outcome)
            if failed and not stopped:
                self._schedule_retry(job, fire)
            return outcome

    def _log(self, report: object) -> None:
        for line in self.describe(report):
            log.info("%s", line)

    def _schedule_retry(self, job: str, fire: datetime) -> None:
        """Run a failed run again later (network, SMTP and the like recover), a few times."""
        count = self._failures.get((job, fire), 0)
        self._failures[(job, fire)] = count + 1
        if self.retry is None:
            return
        if count >= len(self.retry_delays):
            log.error("%s run of %s: giving up after %d retries; `digest run --date %s` "
                      "continues from the failed step", job, fire.isoformat(), count,
                      arxiv_calendar.announcement_for(fire))
            return
        delay = self.retry_delays[count]
        log.info("%s run of %s: retry %d in %g s", job, fire.isoformat(), count + 1, delay)
        self.retry(job, fire, delay)

    def start_state(self) -> dict[str, datetime]:
        """Catch-up plan for this start; a job without history starts its history now."""
        state = load_state(self.state_path)
        now = self.rt.now()
        plan = catch_up_plan(self.triggers, state, now)
        fresh = {job: now for job in JOBS if job not in state}
        if fresh:
            save_state(self.state_path, {**state, **fresh})
        return plan


# --- the scheduler process --------------------------------------------------------------------


def run_scheduler(
    settings: Settings,
    rt: Runtime,
    *,
    stop: threading.Event | None = None,
    steps: Steps | None = None,
    describe: Callable[[object], list[str]] = lambda _report: [],
    install_signals: bool = True,
    on_started: Callable[[BackgroundScheduler], None] | None = None,
    retry_delays: tuple[float, ...] = RETRY_DELAYS,
) -> None:
    """Run the jobs until `stop` is set (SIGTERM/SIGINT set it), then finish the current step
    and return. A second scheduler for the same newsletter raises LockedError."""
    stop = stop if stop is not None else threading.Event()
    lock_path = layout.schedule_lock(settings)
    with locks.hold_lock(lock_path, "another `digest schedule`"):
        runner = JobRunner(settings, rt, steps=steps, stop=stop, retry_delays=retry_delays,
                           describe=describe)
        if install_signals:
            def _on_signal(signum: int, _frame: FrameType | None) -> None:
                log.info("%s received: stopping after the current step",
                         signal.Signals(signum).name)
                stop.set()

            signal.signal(signal.SIGTERM, _on_signal)
            signal.signal(signal.SIGINT, _on_signal)
        plan = runner.start_state()
        scheduler = BackgroundScheduler(
            timezone=settings.tzinfo,
            executors={"default": ThreadPoolExecutor(max_workers=1)},  # one run at a time
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": settings.schedule.misfire_grace_seconds,
            },
        )
        wall_now = datetime.now(settings.tzinfo)  # APScheduler runs on the real clock

        def retry(job: str, fire: datetime, delay: float) -> None:
            scheduler.add_job(
                runner.run, "date", args=(job, fire), id=f"{job}-retry", replace_existing=True,
                run_date=datetime.now(settings.tzinfo) + timedelta(seconds=delay),
                name=f"digest {job} (retry)",
            )

        runner.retry = retry
        for job in sorted(JOBS, key=lambda j: plan.get(j, wall_now)):
            kwargs: dict[str, object] = {}
            if job in plan:
                log.info("catching up the missed %s run of %s once", job, plan[job].isoformat())
                kwargs["next_run_time"] = wall_now
            scheduler.add_job(runner.run, runner.triggers[job], args=(job,), id=job,
                              name=f"digest {job}", **kwargs)
        scheduler.start()
        for sched_job in scheduler.get_jobs():
            log.info("%s: next run %s", sched_job.id, sched_job.next_run_time.isoformat())
        log.info("scheduler started (lock %s); SIGTERM or Ctrl-C stops it", lock_path)
        if on_started is not None:
            on_started(scheduler)
        while not stop.wait(0.5):
            pass
        log.info("stopping: waiting for the current step to finish")
        scheduler.shutdown(wait=True)
        log.info("scheduler stopped")


def main(
    settings: Settings, rt: Runtime, describe: Callable[[object], list[str]] = lambda _r: []
) -> None:
    """`digest schedule`: log to stderr (each report as `describe` words it), then run the
    scheduler until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # misfires still show
    run_scheduler(settings, rt, describe=describe)

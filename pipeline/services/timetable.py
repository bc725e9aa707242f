"""The [schedule] cron lines as APScheduler triggers, and their fire times: what the scheduler
runs and what `digest status` and the studio say runs next (imported by both, so status needs
no scheduler)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from pipeline.core.config import Settings
from pipeline.core.errors import ConfigError

JOBS = ("collect", "send")
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekday_number(token: str, key: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    if token.lower() in _CRON_DAYS:
        return _CRON_DAYS.index(token.lower())
    raise ConfigError(f"bad day of week {token!r} (expected 0-7 or sun-sat)", key=key)


def _weekdays(field: str, key: str) -> str:
    """crontab's day-of-week field as day names: APScheduler 3 counts Monday as 0 where
    crontab counts Sunday as 0 (so "1-5" would silently mean Tuesday–Saturday), but reads
    names the same way."""
    days: list[int] = []
    for part in field.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ConfigError(f"bad step in day of week {part!r}", key=key)
        if body == "*":
            first, last = 0, 6
        else:
            low, dash, high = body.partition("-")
            first = _weekday_number(low, key)
            last = _weekday_number(high, key) if dash else (6 if step else first)
            if dash and high == "7":  # Sunday closing a range: "5-7", "7-7"
                first, last = (7 if low == "7" else first), 7
            if last < first:
                raise ConfigError(f"backwards range in day of week {part!r}", key=key)
        days.extend(d % 7 for d in range(first, last + 1, step or 1))
    return ",".join(_CRON_DAYS[d] for d in sorted(set(days)))


def crontab_trigger(expr: str, tz: ZoneInfo, job: str) -> CronTrigger:
    """A CronTrigger from a standard crontab line (minute hour day month weekday; 0/7 = Sunday)."""
    key = f"schedule.{job}"
    fields = expr.split()
    if len(fields) != 5:
        raise ConfigError(
            f"expected 5 cron fields (minute hour day month weekday), got {expr!r}", key=key
        )
    minute, hour, day, month, weekday = fields
    try:
        trigger = CronTrigger(
            minute=minute, hour=hour, day=day, month=month,
            day_of_week="*" if weekday == "*" else _weekdays(weekday, key), timezone=tz,
        )
    except ValueError as exc:
        raise ConfigError(f"not a valid cron line {expr!r}: {exc}", key=key) from exc
    # Without a year field, a line that fires once after 2000 fires again and again.
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=tz)) is None:
        raise ConfigError(f"the cron line {expr!r} never fires (no such date)", key=key)
    return trigger


def triggers_for(settings: Settings) -> dict[str, CronTrigger]:
    """The cron trigger of each job, from [schedule] in newsletter.timezone."""
    return {
        job: crontab_trigger(getattr(settings.schedule, job), settings.tzinfo, job) for job in JOBS
    }


def fires_between(trigger: CronTrigger, after: datetime, until: datetime) -> list[datetime]:
    """Every fire time of `trigger` in (after, until]."""
    fires: list[datetime] = []
    t = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    while t is not None and t <= until:
        fires.append(t)
        t = trigger.get_next_fire_time(None, t + timedelta(microseconds=1))
    return fires


def latest_fire(trigger: CronTrigger, after: datetime, until: datetime) -> datetime | None:
    """The newest fire time in (after, until], looking back a growing window so a long outage
    does not walk every fire since."""
    window = timedelta(days=1)
    while True:
        start = max(after, until - window)
        fires = fires_between(trigger, start, until)
        if fires:
            return fires[-1]
        if start == after:
            return None
        window *= 2

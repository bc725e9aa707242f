"""arXiv's announcement calendar, in US Eastern time: pure functions, no clock of their own.

arXiv announces new submissions Sunday–Thursday at 20:00 US Eastern; each announcement is
dated the next day (Monday–Friday), and nothing is announced on Friday and Saturday evenings.
Holidays are not predictable here: the empty feed of that evening is what reveals them.
Everything is computed in America/New_York wall time, so a US (or local) daylight-saving
change moves the announcement's UTC instant but never the date an issue carries.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")
ANNOUNCE_TIME = time(20, 0)  # wall-clock time in EASTERN, on the evening before the date


def is_announcement_day(day: date) -> bool:
    """True when an announcement can carry this date (Monday–Friday; holidays aside)."""
    return day.weekday() < 5


def why_no_announcement(day: date) -> str | None:
    """Why arXiv announces nothing dated `day` (a weekend), or None when it may announce."""
    if is_announcement_day(day):
        return None
    return (
        f"{day} is a {day.strftime('%A')}: arXiv announces Sunday–Thursday at 20:00 US "
        "Eastern, dated Monday–Friday"
    )


def announced_at(day: date) -> datetime:
    """The moment the announcement dated `day` comes out: 20:00 US Eastern the evening before."""
    if not is_announcement_day(day):
        raise ValueError(why_no_announcement(day))
    return issue_published_at(day, EASTERN)


def issue_published_at(day: date, tz: tzinfo) -> datetime:
    """When an issue dated `day` counts as published (feeds' pubDate, the previews' Date): the
    arXiv announcement it covers, 20:00 US Eastern the evening before (the same hour for an
    issue dated on a weekend), given in `tz`. Midnight in the newsletter's zone showed as the
    day before everywhere west of it (UTC included); this instant is already `day` from UTC
    eastwards (01:00 UTC, 10:00 in Seoul)."""
    return datetime.combine(day - timedelta(days=1), ANNOUNCE_TIME, tzinfo=EASTERN).astimezone(tz)


def announcement_for(moment: datetime) -> date:
    """The date of the latest announcement out at `moment` (a timezone-aware instant)."""
    if moment.tzinfo is None:
        raise ValueError("announcement_for needs a timezone-aware datetime")
    eastern = moment.astimezone(EASTERN)
    day = eastern.date() + timedelta(days=1) if eastern.time() >= ANNOUNCE_TIME else eastern.date()
    while not is_announcement_day(day):
        day -= timedelta(days=1)
    return day

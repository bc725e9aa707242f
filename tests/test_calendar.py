"""arXiv's announcement calendar: dates across weekends and US daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pipeline.core.calendar import (
    EASTERN,
    announced_at,
    announcement_for,
    is_announcement_day,
    why_no_announcement,
)

SEOUL = ZoneInfo("Asia/Seoul")


def test_announcement_days_are_monday_to_friday() -> None:
    week = [date(2024, 11, 4) + timedelta(days=i) for i in range(7)]  # Mon..Sun
    assert [is_announcement_day(d) for d in week] == [True] * 5 + [False] * 2
    assert why_no_announcement(date(2024, 11, 9)) is not None
    assert "Saturday" in (why_no_announcement(date(2024, 11, 9)) or "")
    assert why_no_announcement(date(2024, 11, 8)) is None


def test_announced_the_evening_before_at_20_eastern() -> None:
    # Monday's announcement comes out Sunday evening; Friday's on Thursday evening.
    assert announced_at(date(2024, 11, 4)) == datetime(2024, 11, 3, 20, 0, tzinfo=EASTERN)
    assert announced_at(date(2024, 11, 8)) == datetime(2024, 11, 7, 20, 0, tzinfo=EASTERN)
    with pytest.raises(ValueError, match="Saturday"):
        announced_at(date(2024, 11, 9))


@pytest.mark.parametrize(
    ("dst_day", "before", "after"),
    [
        # US DST ends Sun 2024-11-03: EDT (UTC-4) before, EST (UTC-5) after.
        (date(2024, 11, 3), timedelta(hours=-4), timedelta(hours=-5)),
        # US DST starts Sun 2025-03-09: EST before, EDT after.
        (date(2025, 3, 9), timedelta(hours=-5), timedelta(hours=-4)),
    ],
)
def test_daylight_saving_moves_the_instant_not_the_date(
    dst_day: date, before: timedelta, after: timedelta
) -> None:
    friday = dst_day - timedelta(days=2)
    monday = dst_day + timedelta(days=1)
    assert announced_at(friday).utcoffset() == before
    assert announced_at(monday).utcoffset() == after  # published Sunday, after the change
    # In UTC the announcement moves by an hour; in Seoul too; the date it carries does not.
    assert announced_at(friday).astimezone(UTC).hour == (20 - before.total_seconds() // 3600) % 24
    assert announced_at(monday).astimezone(UTC).hour == (20 - after.total_seconds() // 3600) % 24
    seoul_monday = announced_at(monday).astimezone(SEOUL)
    assert seoul_monday.date() == monday
    assert seoul_monday.hour in (9, 10)


def test_every_half_hour_over_two_weeks_belongs_to_the_latest_announcement_out() -> None:
    """From 2024-10-26 to 2024-11-09 (a weekend, the DST change), step through time and check
    the date against the definition: the newest Mon–Fri date whose 20:00 ET eve has passed."""
    start = datetime(2024, 10, 26, tzinfo=UTC)
    days = [date(2024, 10, 21) + timedelta(days=i) for i in range(25)]
    published = [(announced_at(d), d) for d in days if is_announcement_day(d)]
    moment = start
    while moment < datetime(2024, 11, 10, tzinfo=UTC):
        expected = max(d for at, d in published if at <= moment)
        assert announcement_for(moment) == expected, moment
        assert announcement_for(moment.astimezone(SEOUL)) == expected  # any zone, same answer
        moment += timedelta(minutes=30)


def test_edges_of_the_evening_and_the_weekend() -> None:
    # Thursday 19:59 ET: still Thursday's; 20:00: Friday's is out.
    assert announcement_for(datetime(2024, 11, 7, 19, 59, tzinfo=EASTERN)) == date(2024, 11, 7)
    assert announcement_for(datetime(2024, 11, 7, 20, 0, tzinfo=EASTERN)) == date(2024, 11, 8)
    # Friday and Saturday evenings announce nothing: Friday's issue holds until Sunday 20:00.
    assert announcement_for(datetime(2024, 11, 8, 21, 0, tzinfo=EASTERN)) == date(2024, 11, 8)
    assert announcement_for(datetime(2024, 11, 10, 19, 59, tzinfo=EASTERN)) == date(2024, 11, 8)
    # The night of the DST change: Sunday 20:00 EST (01:00 UTC Monday) brings Monday's.
    assert announcement_for(datetime(2024, 11, 4, 0, 59, tzinfo=UTC)) == date(2024, 11, 1)
    assert announcement_for(datetime(2024, 11, 4, 1, 0, tzinfo=UTC)) == date(2024, 11, 4)
    # The reference issue: Wednesday 2024-12-04 20:00 EST = Thursday 10:00 in Seoul.
    assert announcement_for(datetime(2024, 12, 5, 10, 0, tzinfo=SEOUL)) == date(2024, 12, 5)
    assert announcement_for(datetime(2024, 12, 5, 9, 59, tzinfo=SEOUL)) == date(2024, 12, 4)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        announcement_for(datetime(2024, 11, 4, 12, 0))

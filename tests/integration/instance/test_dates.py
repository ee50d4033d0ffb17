"""The javascript:gs.* date helpers, evaluated at a fixed moment in a user's time zone."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from integration.instance import dates

# Wednesday 2024-05-15 02:30:00 UTC is Tuesday 2024-05-14 22:30:00 in New York (UTC-4).
NOW = datetime(2024, 5, 15, 2, 30, 0, tzinfo=timezone.utc)
NEW_YORK = dates.ScriptContext(now=NOW, time_zone=ZoneInfo("America/New_York"),
                               user_sys_id="a" * 32, user_name="admin")
UTC = dates.ScriptContext(now=NOW, time_zone=ZoneInfo("UTC"))


@pytest.mark.parametrize("script, expected", [
    ("javascript:gs.beginningOfToday()", "2024-05-14 04:00:00"),
    ("javascript:gs.endOfToday()", "2024-05-15 03:59:59"),
    ("javascript:gs.beginningOfYesterday()", "2024-05-13 04:00:00"),
    ("javascript:gs.beginningOfTomorrow()", "2024-05-15 04:00:00"),
    ("javascript:gs.beginningOfThisWeek()", "2024-05-13 04:00:00"),
    ("javascript:gs.beginningOfLastWeek()", "2024-05-06 04:00:00"),
    ("javascript:gs.endOfLastWeek()", "2024-05-13 03:59:59"),
    ("javascript:gs.beginningOfThisMonth()", "2024-05-01 04:00:00"),
    ("javascript:gs.endOfThisMonth()", "2024-06-01 03:59:59"),
    ("javascript:gs.beginningOfLastMonth()", "2024-04-01 04:00:00"),
    ("javascript:gs.beginningOfThisQuarter()", "2024-04-01 04:00:00"),
    ("javascript:gs.beginningOfThisYear()", "2024-01-01 05:00:00"),
    ("javascript:gs.beginningOfLast7Days()", "2024-05-07 04:00:00"),
    ("javascript:gs.daysAgoStart(1)", "2024-05-13 04:00:00"),
    ("javascript:gs.daysAgoEnd(0)", "2024-05-15 03:59:59"),
    ("javascript:gs.daysAgo(2)", "2024-05-13 02:30:00"),
    ("javascript:gs.hoursAgo(3)", "2024-05-14 23:30:00"),
    ("javascript:gs.minutesAgoStart(0)", "2024-05-15 02:30:00"),
    ("javascript:gs.monthsAgoStart(1)", "2024-04-01 04:00:00"),
    ("javascript:gs.dateGenerate('2024-01-01','start')", "2024-01-01 05:00:00"),
    ("javascript:gs.dateGenerate('2024-07-01','end')", "2024-07-02 03:59:59"),
    ("javascript:gs.dateGenerate('2024-07-01','10:00:00')", "2024-07-01 14:00:00"),
    ('javascript:gs.dateGenerate("2024-07-01 10:00:00")', "2024-07-01 14:00:00"),
    ("javascript:gs.nowDateTime()", "2024-05-15 02:30:00"),
    ("javascript:gs.getUserID()", "a" * 32),
    ("javascript:gs.getUserName()", "admin"),
])
def test_helper_in_new_york(script, expected):
    assert dates.evaluate(script, NEW_YORK) == expected


def test_today_depends_on_the_time_zone():
    assert dates.evaluate("javascript:gs.beginningOfToday()", UTC) == "2024-05-15 00:00:00"


@pytest.mark.parametrize("script", [
    "javascript:gs.getProperty('x')",
    "javascript:gs.dateGenerate('not-a-date','start')",
    "javascript:new GlideDateTime()",
])
def test_unsupported_script_is_none(script):
    assert dates.evaluate(script, UTC) is None


def test_relative_moment():
    assert dates.relative_moment("@hour@ago@2", UTC) == "2024-05-15 00:30:00"
    assert dates.relative_moment("@day@ahead@1", UTC) == "2024-05-16 02:30:00"
    assert dates.relative_moment("@fortnight@ago@1", UTC) is None

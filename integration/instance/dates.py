"""The ``javascript:gs.*`` helpers an encoded query may carry as a value.

Each helper works out a moment in the session user's time zone and returns
it as a UTC ``YYYY-MM-DD HH:MM:SS`` string, as GlideSystem does. Only date
helpers and ``gs.getUserID()``/``gs.getUserName()`` are understood; any other
script evaluates to None and the caller decides what to do.
"""

from __future__ import annotations

import calendar
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_CALL = re.compile(r"^\s*(?:javascript:)?\s*gs\.(\w+)\((.*)\)\s*;?\s*$", re.DOTALL)
_SPAN = re.compile(
    r"^(beginningOf|endOf)(?:(Today|Yesterday|Tomorrow|OneYearAgo)"
    r"|(This|Last|Next|Current)(\d*)(Minute|Hour|Day|Week|Month|Quarter|Year)s?)$"
)


@dataclass(frozen=True)
class ScriptContext:
    """Inputs of a helper: the current time (UTC), the user's time zone and identity."""

    now: datetime
    time_zone: ZoneInfo
    user_sys_id: str = ""
    user_name: str = ""


def format_utc(moment: datetime) -> str:
    """Format an aware datetime as the platform's UTC storage string."""
    return moment.astimezone(timezone.utc).strftime(DATETIME_FORMAT)


def evaluate(script: str, context: ScriptContext) -> str | None:
    """Evaluate one ``javascript:gs.*`` call, or return None when it is not understood."""
    match = _CALL.match(script)
    if not match:
        return None
    name, raw_arguments = match.group(1), match.group(2)
    arguments = _split_arguments(raw_arguments)
    if name == "getUserID":
        return context.user_sys_id
    if name == "getUserName":
        return context.user_name
    if name == "nowDateTime":
        return format_utc(context.now)
    if name == "dateGenerate":
        return _date_generate(arguments, context)
    moment = _relative_helper(name, arguments, context)
    if moment is None:
        moment = _span_helper(name, context)
    return None if moment is None else format_utc(moment)


def _split_arguments(raw: str) -> list[str]:
    parts = [part.strip() for part in raw.split(",")] if raw.strip() else []
    return [part.strip("'\"") for part in parts]


def _date_generate(arguments: list[str], context: ScriptContext) -> str | None:
    """Read ``dateGenerate('2024-01-01','10:00:00'|'start'|'end')`` or the one-argument form.

    pysnow writes the one-argument form ``dateGenerate("2024-01-01 10:00:00")``.
    Both are read in the user's time zone, as the platform does.
    """
    if not arguments:
        return None
    if len(arguments) == 1:
        date_part, _, time_part = arguments[0].partition(" ")
    else:
        date_part, time_part = arguments[0], arguments[1]
    time_part = {"start": "00:00:00", "end": "23:59:59", "": "00:00:00"}.get(time_part, time_part)
    try:
        local = datetime.strptime(f"{date_part} {time_part}", DATETIME_FORMAT)
    except ValueError:
        return None
    return format_utc(local.replace(tzinfo=context.time_zone))


def _local_now(context: ScriptContext) -> datetime:
    return context.now.astimezone(context.time_zone)


def _start_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _end_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=23, minute=59, second=59, microsecond=0)


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _relative_helper(name: str, arguments: list[str], context: ScriptContext) -> datetime | None:
    """Evaluate daysAgo, hoursAgoStart, monthsAgoEnd and the other ``<unit>Ago`` helpers."""
    match = re.match(r"^(minutes|hours|days|months|quarters|years)Ago(Start|End)?$", name)
    if not match:
        return None
    try:
        count = int(arguments[0]) if arguments else 0
    except ValueError:
        return None
    unit, edge = match.group(1), match.group(2) or ""
    local = _local_now(context)
    if unit in {"minutes", "hours", "days"}:
        moment = local - timedelta(**{unit: count})
    else:
        months = {"months": 1, "quarters": 3, "years": 12}[unit] * count
        moment = _add_months(local, -months)
    return _snap(moment, unit, edge)


def _snap(moment: datetime, unit: str, edge: str) -> datetime:
    """Move a moment to the start or end of its minute, hour, day or month."""
    if not edge:
        return moment
    if unit == "minutes":
        start = moment.replace(second=0, microsecond=0)
        return start if edge == "Start" else start.replace(second=59)
    if unit == "hours":
        start = moment.replace(minute=0, second=0, microsecond=0)
        return start if edge == "Start" else start.replace(minute=59, second=59)
    if unit == "days":
        return _start_of_day(moment) if edge == "Start" else _end_of_day(moment)
    first = _start_of_day(moment.replace(day=1))
    if edge == "Start":
        return first
    return _add_months(first, 1) - timedelta(seconds=1)


def _span_helper(name: str, context: ScriptContext) -> datetime | None:
    """Evaluate ``beginningOf<Span>``/``endOf<Span>``, e.g. beginningOfLast7Days."""
    match = _SPAN.match(name)
    if not match:
        return None
    edge, day_name, where, count_text, unit = match.groups()
    local = _local_now(context)
    if day_name:
        start, end = _day_span(day_name, local)
    else:
        start, end = _period_span(where, int(count_text or 1), unit, local)
    return start if edge == "beginningOf" else end


def _day_span(day_name: str, local: datetime) -> tuple[datetime, datetime]:
    if day_name == "OneYearAgo":
        day = _add_months(local, -12)
    else:
        day = local + timedelta(days={"Today": 0, "Yesterday": -1, "Tomorrow": 1}[day_name])
    return _start_of_day(day), _end_of_day(day)


def _period_span(where: str, count: int, unit: str, local: datetime) -> tuple[datetime, datetime]:
    """Return the local start and end of a span such as "Last 7 days" or "This week"."""
    today = _start_of_day(local)
    if unit == "Day":
        # "Last 7 days" runs from the start of the day 7 days ago to the end of today.
        start = today - timedelta(days=count) if where == "Last" else today
        return start, _end_of_day(local)
    if unit == "Week":
        monday = today - timedelta(days=today.weekday())
        shift = {"This": 0, "Current": 0, "Last": -count, "Next": count}[where]
        start = monday + timedelta(weeks=shift)
        return start, start + timedelta(days=7) - timedelta(seconds=1)
    if unit in {"Month", "Quarter", "Year"}:
        return _calendar_span(where, count, unit, today)
    return _clock_span(where, count, unit, local)


def _calendar_span(where: str, count: int, unit: str, today: datetime) -> tuple[datetime, datetime]:
    months = {"Month": 1, "Quarter": 3, "Year": 12}[unit]
    first = today.replace(day=1)
    if unit == "Quarter":
        first = first.replace(month=(first.month - 1) // 3 * 3 + 1)
    elif unit == "Year":
        first = first.replace(month=1)
    if where in {"This", "Current"}:
        return first, _add_months(first, months) - timedelta(seconds=1)
    if where == "Next":
        start = _add_months(first, months)
        return start, _add_months(start, months * count) - timedelta(seconds=1)
    # NOTE: "Last 3 months" is taken to end with the current month and "Last
    # month" to be the previous one; not checked against a real instance.
    if count > 1:
        start = _add_months(first, -months * (count - 1))
        return start, _add_months(first, months) - timedelta(seconds=1)
    start = _add_months(first, -months)
    return start, first - timedelta(seconds=1)


def _clock_span(where: str, count: int, unit: str, local: datetime) -> tuple[datetime, datetime]:
    step = timedelta(hours=1) if unit == "Hour" else timedelta(minutes=1)
    if unit == "Hour":
        current = local.replace(minute=0, second=0, microsecond=0)
    else:
        current = local.replace(second=0, microsecond=0)
    if where in {"This", "Current"}:
        return current, current + step - timedelta(seconds=1)
    if where == "Next":
        return current + step, current + step * (count + 1) - timedelta(seconds=1)
    return current - step * count, local.replace(microsecond=0)


def split_interval(value: str) -> tuple[str, str, str]:
    """Split an ON/NOTON value ``label@start@end`` into its three parts."""
    parts = value.split("@")
    if len(parts) != 3:
        raise ValueError(f"expected label@start@end, got {value!r}")
    return parts[0], parts[1], parts[2]


def relative_moment(spec: str, context: ScriptContext) -> str | None:
    """Evaluate a RELATIVEGT/RELATIVELT value such as ``@hour@ago@1`` to a UTC string."""
    parts = [part for part in spec.split("@") if part]
    if len(parts) != 3:
        return None
    unit, direction, amount = parts
    try:
        count = int(amount)
    except ValueError:
        return None
    sign = -1 if direction == "ago" else 1
    if unit in {"minute", "hour", "day", "week"}:
        moment = context.now + sign * timedelta(**{unit + "s": count})
    elif unit in {"month", "quarter", "year"}:
        months = {"month": 1, "quarter": 3, "year": 12}[unit] * count * sign
        moment = _add_months(context.now, months)
    else:
        return None
    return format_utc(moment)

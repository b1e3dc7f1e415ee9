"""A rule's `active_hours`: the grammar, and when a schedule is open (pure functions, no I/O).

Core: imports only the stdlib. Grammar (case-insensitive; commas, semicolons and spaces separate):

    active_hours := group+          group := days* range*      (at least one of the two)
    days  := Mon|Tue|Wed|Thu|Fri|Sat|Sun (or the full name) | DAY-DAY (wraps: Fri-Mon) | daily
    range := HH:MM-HH:MM            (H:MM too; the end may be 24:00)

Consecutive day tokens add up ("Sat,Sun", "Mon-Wed, Fri"); the ranges after them apply to those
days until the next day token. Days without a range are open all day, and a ';' ends them
("Sat; Mon-Fri 07:00-19:00" is all Saturday plus weekday hours). Ranges before any day apply
daily, so no day may follow them ("07:00-19:00 Mon-Fri" is refused: it would read as daily hours
plus whole weekdays). A range whose end is not after its start crosses midnight: "Fri
22:00-06:00" is Friday 22:00 to Saturday 06:00. Examples: "Mon-Fri 07:00-19:00", "Mon-Fri
08:00-12:00,13:00-18:00; Sat 09:00-12:00", "Sat,Sun", "daily 22:00-06:00".

Times are wall-clock times in the schedule's zone (the host's when `tz` is None): an instant is
open when its local time falls in a window. So across DST, a window starting in the hour that
is skipped (02:30 on a spring-forward night) opens when the clock jumps (03:00), a window that
lies wholly in that hour does not open that night, and a window in the hour that repeats in
autumn is open both times round.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as dtime
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["Schedule", "is_open", "next_opening", "opening_note", "parse_schedule"]

DAY_S: Final = 86400
WEEK_S: Final = 7 * DAY_S
DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EXAMPLE: Final = 'e.g. "Mon-Fri 07:00-19:00"'
_TOKEN: Final = re.compile(
    r"(?P<sep>[\s,;]+)"
    r"|(?P<range>(?P<t1>\d{1,2}:\d{2})\s*-\s*(?P<t2>\d{1,2}:\d{2}))"
    r"|(?P<days>(?P<d1>[A-Za-z]+)(?:\s*-\s*(?P<d2>[A-Za-z]+))?)"
)
# The longest a next_opening search looks ahead before giving up (never reached: every window
# recurs weekly, and only a whole night's DST gap can make one week's window not open).
_SEARCH_WEEKS: Final = 60
# How finely the search samples the zone's UTC offset to find DST transitions.
_OFFSET_STEP_S: Final = 6 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """When a rule may submit: `intervals` are [start, end) seconds from Monday 00:00 local
    wall-clock time, sorted, merged and within one week. `tz` is an IANA zone name, or None
    for the host's zone. `text` is what the config says."""

    text: str
    intervals: tuple[tuple[int, int], ...]
    tz: str | None = None

    def __str__(self) -> str:
        return self.text if self.tz is None else f"{self.text} ({self.tz})"


def parse_schedule(text: str, *, tz: str | None = None) -> Schedule:
    """Read an `active_hours` value (grammar in the module docstring).

    `tz` is not checked here (the config checks it exists on this host).

    Raises:
        ValueError: the text does not follow the grammar; the message says what and where.
    """
    if not text.strip():
        raise ValueError(f"is empty; write the days and hours the rule may submit, {_EXAMPLE}")
    spans: list[tuple[int, int]] = []
    days: set[int] = set()
    ranges_seen = False  # did a range follow the current days?
    daily_ranges = False  # did a range come before any day (so it applies daily)?
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(
                f"cannot read {_rest(text, pos)!r}: expected days like Mon-Fri or Sat,Sun and"
                f" times like 07:00-19:00 ({_EXAMPLE})"
            )
        pos = m.end()
        if m.group("sep") and ";" in m.group("sep") and days and not ranges_seen:
            # "Sat; Mon-Fri 07:00-19:00": the days before ';' are whole days of their own.
            spans += [(day * DAY_S, (day + 1) * DAY_S) for day in sorted(days)]
            days = set()
        elif m.group("days"):
            if daily_ranges:
                raise ValueError(
                    f"{m.group('days')!r} comes after times that apply daily; write the days"
                    f" first ({_EXAMPLE}), or 'daily' for every day"
                )
            if ranges_seen:
                days, ranges_seen = set(), False
            days |= _days(m.group("d1"), m.group("d2"))
        elif m.group("range"):
            start, end = _clock(m.group("t1"), end=False), _clock(m.group("t2"), end=True)
            if start == end:
                raise ValueError(
                    f"{m.group('range')!r} is empty; for a whole day write 00:00-24:00"
                    " (or the days alone)"
                )
            length = end - start if end > start else end + DAY_S - start
            daily_ranges = daily_ranges or not days
            for day in sorted(days) if days else range(7):
                spans.append((day * DAY_S + start, day * DAY_S + start + length))
            ranges_seen = True
    if days and not ranges_seen:
        spans += [(day * DAY_S, (day + 1) * DAY_S) for day in sorted(days)]
    return Schedule(text=text.strip(), intervals=_merge(spans), tz=tz)


def _rest(text: str, pos: int) -> str:
    words = text[pos:].split(maxsplit=1)
    return (words[0] if words else text[pos:])[:20]


def _day(name: str) -> int:
    low = name.lower()
    for i, (short, full) in enumerate(zip(DAY_NAMES, _FULL, strict=True)):
        if low in (short.lower(), full):
            return i
    raise ValueError(f"unknown day {name!r}; use {', '.join(DAY_NAMES)} (or full names) or daily")


def _days(first: str, last: str | None) -> set[int]:
    if first.lower() == "daily" or (last is not None and last.lower() == "daily"):
        if last is not None:
            raise ValueError(f"'daily' cannot be part of a range ({first}-{last})")
        return set(range(7))
    a = _day(first)
    if last is None:
        return {a}
    b = _day(last)
    return {(a + i) % 7 for i in range((b - a) % 7 + 1)}


def _clock(text: str, *, end: bool) -> int:
    hh, mm = (int(p) for p in text.split(":"))
    if mm > 59 or hh > 24 or (hh == 24 and mm != 0):
        raise ValueError(f"{text!r} is not a time of day (HH:MM from 00:00 to 24:00)")
    if hh == 24 and not end:
        raise ValueError("a window cannot start at 24:00; write 00:00")
    return hh * 3600 + mm * 60


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Fold spans into one week (a Sunday night window ends on Monday) and merge overlaps."""
    folded: list[tuple[int, int]] = []
    for start, end in spans:
        if end > WEEK_S:
            folded += [(start, WEEK_S), (0, end - WEEK_S)]
        else:
            folded.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(folded):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


# --- when is it open ----------------------------------------------------------------------


def _zone(schedule: Schedule) -> tzinfo | None:
    # None: the host's local time (datetime.astimezone() with no zone).
    return None if schedule.tz is None else ZoneInfo(schedule.tz)


def _local(schedule: Schedule, when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("`when` must be a timezone-aware datetime")
    return when.astimezone(_zone(schedule))


def _week_s(local: datetime) -> float:
    return (
        local.weekday() * DAY_S
        + local.hour * 3600
        + local.minute * 60
        + local.second
        + local.microsecond / 1e6
    )


def is_open(schedule: Schedule | None, when: datetime) -> bool:
    """True when `when` (a timezone-aware datetime) falls in one of the schedule's windows,
    read on the wall clock of the schedule's zone. None (a rule without active_hours) is
    always open.

    Raises:
        ValueError: `when` is naive.
    """
    if schedule is None:
        return True
    pos = _week_s(_local(schedule, when))
    i = bisect_right(schedule.intervals, (pos, float("inf"))) - 1
    return i >= 0 and schedule.intervals[i][0] <= pos < schedule.intervals[i][1]


def next_opening(schedule: Schedule | None, when: datetime) -> datetime:
    """The first instant at or after `when` that is open: `when` itself while open (always for
    None), else the next window's start (or the DST jump that lands inside a window). In the
    schedule's zone.

    Raises:
        ValueError: `when` is naive.
    """
    if schedule is None:
        return when
    if is_open(schedule, when):
        return _local(schedule, when)
    zone = _zone(schedule)
    chunk = timedelta(days=8)
    start = when
    for _ in range(_SEARCH_WEEKS):
        end = start + chunk
        found = [c for c in _candidates(schedule, zone, start, end) if is_open(schedule, c)]
        if found:
            return min(found).astimezone(zone)
        start = end
    raise RuntimeError(f"schedule {schedule} never opens")  # pragma: no cover - see _SEARCH_WEEKS


def _candidates(
    schedule: Schedule, zone: tzinfo | None, start: datetime, end: datetime
) -> list[datetime]:
    """Every instant in [start, end) where the schedule may turn open: each window's start
    (both readings of an ambiguous local time) and each change of the zone's UTC offset."""
    starts: dict[int, list[int]] = {}
    for lo, _hi in schedule.intervals:
        starts.setdefault(lo // DAY_S, []).append(lo % DAY_S)
    out = _transitions(zone, start, end)
    first = start.astimezone(zone).date() - timedelta(days=1)
    for i in range((end - start).days + 3):
        day: date = first + timedelta(days=i)
        for second in starts.get(day.weekday(), ()):
            naive = datetime.combine(day, dtime()) + timedelta(seconds=second)
            for fold in (0, 1):
                out.append(_instant(naive.replace(fold=fold), zone))
    return [c for c in out if start <= c < end]


def _instant(naive: datetime, zone: tzinfo | None) -> datetime:
    if zone is None:
        return naive.astimezone(UTC)  # a naive datetime is read as host local time (with fold)
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _offset(ts: float, zone: tzinfo | None) -> timedelta | None:
    return datetime.fromtimestamp(ts, UTC).astimezone(zone).utcoffset()


def _transitions(zone: tzinfo | None, start: datetime, end: datetime) -> list[datetime]:
    """The instants in [start, end) where the zone's UTC offset changes, to the second."""
    found: list[datetime] = []
    lo_ts = int(start.timestamp())
    end_ts = int(end.timestamp()) + 1
    lo_off = _offset(lo_ts, zone)
    while lo_ts < end_ts:
        hi_ts = min(lo_ts + _OFFSET_STEP_S, end_ts)
        hi_off = _offset(hi_ts, zone)
        if hi_off != lo_off:
            a, b = lo_ts, hi_ts
            while b - a > 1:
                mid = (a + b) // 2
                if _offset(mid, zone) == lo_off:
                    a = mid
                else:
                    b = mid
            found.append(datetime.fromtimestamp(b, UTC))
        lo_ts, lo_off = hi_ts, hi_off
    return found


def opening_note(schedule: Schedule | None, when: datetime) -> str | None:
    """None while the schedule is open at `when` (always for None); else what `status` shows
    for a drop that waits, e.g. "waiting for its schedule (opens Mon 07:00 Europe/Paris)".

    Raises:
        ValueError: `when` is naive.
    """
    if schedule is None or is_open(schedule, when):
        return None
    at = next_opening(schedule, when)
    zone = schedule.tz or at.tzname() or "local time"
    day = f"{at:%a}" if at - when < timedelta(days=6) else f"{at:%a %Y-%m-%d}"
    return f"waiting for its schedule (opens {day} {at:%H:%M} {zone})"

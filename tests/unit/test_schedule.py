"""active_hours: the grammar, its errors, is_open and next_opening (midnight, zones, DST)."""

from __future__ import annotations

import os
import random
import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from watcher.config.schedule import (
    DAY_S,
    WEEK_S,
    Schedule,
    is_open,
    next_opening,
    opening_note,
    parse_schedule,
)

PARIS = ZoneInfo("Europe/Paris")
H = 3600


def at(text: str, zone: str = "Europe/Paris") -> datetime:
    """A local wall-clock time in `zone`, e.g. at("2026-12-07 07:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def span(day: int, start_h: float, end_h: float) -> tuple[int, int]:
    return (int(day * DAY_S + start_h * H), int(day * DAY_S + end_h * H))


# --- grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intervals"),
    [
        ("Mon-Fri 07:00-19:00", tuple(span(d, 7, 19) for d in range(5))),
        ("Sat,Sun", (span(5, 0, 48),)),
        ("sat, SUN 10:00-14:00", (span(5, 10, 14), span(6, 10, 14))),
        ("daily 00:00-24:00", ((0, WEEK_S),)),
        ("Mon-Sun", ((0, WEEK_S),)),
        ("00:00-24:00", ((0, WEEK_S),)),
        ("Monday 9:00-12:00", (span(0, 9, 12),)),
        ("Fri 22:00-06:00", (span(4, 22, 30),)),
        # Sunday night runs into Monday morning of the same (every) week.
        ("Sun 22:00-06:00", ((0, 6 * H), span(6, 22, 24))),
        (
            "Fri-Mon 12:00-13:00",
            (span(0, 12, 13), span(4, 12, 13), span(5, 12, 13), span(6, 12, 13)),
        ),
        (
            "Mon-Fri 08:00-12:00,13:00-18:00; Sat 09:00-12:00",
            (*(x for d in range(5) for x in (span(d, 8, 12), span(d, 13, 18))), span(5, 9, 12)),
        ),
        ("Mon 08:00-12:00 Tue", (span(0, 8, 12), span(1, 0, 24))),
        ("Mon 08:00-12:00, 10:00-14:00", (span(0, 8, 14),)),  # overlaps merge
        ("Mon - Wed 22:00 - 24:00", (span(0, 22, 24), span(1, 22, 24), span(2, 22, 24))),
        # A ';' ends a group of whole days: Saturday all day, weekdays their hours.
        ("Sat; Mon-Fri 07:00-19:00", (*(span(d, 7, 19) for d in range(5)), span(5, 0, 24))),
        ("Sat,Sun; Mon 07:00-19:00", (span(0, 7, 19), span(5, 0, 48))),
        (
            # Friday night runs into the whole Saturday.
            "daily 22:00-24:00; Sat",
            (*(span(d, 22, 24) for d in range(4)), span(4, 22, 48), span(6, 22, 24)),
        ),
    ],
)
def test_the_grammar_reads_days_lists_ranges_and_midnight_crossings(text, intervals):
    """Day ranges and lists, several windows, daily, 24:00 and windows past midnight."""
    assert parse_schedule(text).intervals == intervals


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty; write the days and hours"),
        ("Mo-Fr 07:00-19:00", "unknown day 'Mo'; use Mon, Tue, Wed, Thu, Fri, Sat, Sun"),
        ("Mon-Fri 07:00-25:00", "'25:00' is not a time of day (HH:MM from 00:00 to 24:00)"),
        ("Mon 07:60-08:00", "'07:60' is not a time of day"),
        ("Mon 24:00-06:00", "a window cannot start at 24:00; write 00:00"),
        ("Mon 07:00-07:00", "'07:00-07:00' is empty; for a whole day write 00:00-24:00"),
        ("Mon-Fri 7-19", "cannot read '7-19': expected days like Mon-Fri or Sat,Sun"),
        ("Mon 07:00 to 19:00", "cannot read '07:00'"),
        ("daily-Fri", "'daily' cannot be part of a range"),
        # Not daily hours plus whole weekdays (open all weekend): the days must come first.
        ("07:00-19:00 Mon-Fri", "'Mon-Fri' comes after times that apply daily; write the days"),
    ],
)
def test_a_bad_schedule_says_what_is_wrong(text, message):
    """Each mistake gets a message that names the offending part."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_schedule(text)


def test_the_schedule_keeps_its_text_and_zone():
    """str() shows what the config said, with the zone when one was given."""
    assert str(parse_schedule(" Mon 07:00-08:00 ", tz="Europe/Paris")) == (
        "Mon 07:00-08:00 (Europe/Paris)"
    )
    assert str(parse_schedule("Mon")) == "Mon"


# --- is_open / next_opening ---------------------------------------------------------------

WEEKDAYS = parse_schedule("Mon-Fri 07:00-19:00", tz="Europe/Paris")


def test_office_hours_in_paris():
    """Open 07:00 (inclusive) to 19:00 (exclusive) on weekdays, Paris time, whatever the
    zone of the instant asked about."""
    assert is_open(WEEKDAYS, at("2026-12-07 07:00"))  # a Monday
    assert not is_open(WEEKDAYS, at("2026-12-07 06:59:59"))
    assert not is_open(WEEKDAYS, at("2026-12-07 19:00"))
    assert not is_open(WEEKDAYS, at("2026-12-05 12:00"))  # Saturday
    # 06:30 UTC is 07:30 in Paris in winter.
    assert is_open(WEEKDAYS, datetime(2026, 12, 7, 6, 30, tzinfo=UTC))


def test_next_opening_is_now_while_open_else_the_next_window():
    """Friday evening waits for Monday 07:00; an open instant is its own next opening."""
    assert next_opening(WEEKDAYS, at("2026-12-07 12:00")) == at("2026-12-07 12:00")
    assert next_opening(WEEKDAYS, at("2026-12-04 19:00")) == at("2026-12-07 07:00")
    assert next_opening(WEEKDAYS, at("2026-12-07 06:00")) == at("2026-12-07 07:00")
    got = next_opening(WEEKDAYS, datetime(2026, 12, 5, tzinfo=UTC))
    assert got.tzinfo == PARIS and got == at("2026-12-07 07:00")


def test_a_window_crossing_midnight_is_open_the_next_morning():
    """ "Fri 22:00-06:00" is open Saturday 05:59 and closed Friday 05:59 and Saturday 22:00."""
    s = parse_schedule("Fri 22:00-06:00", tz="Europe/Paris")
    assert is_open(s, at("2026-12-05 05:59"))  # Saturday morning
    assert not is_open(s, at("2026-12-04 05:59"))  # Friday morning
    assert not is_open(s, at("2026-12-05 22:00"))
    assert next_opening(s, at("2026-12-05 06:00")) == at("2026-12-11 22:00")


def test_the_zone_decides_the_wall_clock():
    """The same rule text opens at different instants in Tokyo and New York."""
    tokyo = parse_schedule("Mon 09:00-10:00", tz="Asia/Tokyo")
    ny = parse_schedule("Mon 09:00-10:00", tz="America/New_York")
    sunday = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert next_opening(tokyo, sunday) == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    assert next_opening(ny, sunday) == datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


def test_no_zone_means_the_host_local_time(monkeypatch):
    """Without tz the host's zone (here TZ=Asia/Kolkata, +05:30) reads the wall clock."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        s = parse_schedule("Mon 09:00-10:00")
        sunday = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
        assert next_opening(s, sunday) == datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
        assert is_open(s, datetime(2026, 12, 7, 3, 30, tzinfo=UTC))
        assert opening_note(s, sunday) == "waiting for its schedule (opens Mon 09:00 IST)"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_naive_instant_is_refused():
    """A datetime without a zone is ambiguous: ValueError, not a guess."""
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(WEEKDAYS, datetime(2026, 12, 7, 7, 0))


# --- DST ------------------------------------------------------------------------------------
# Paris: 2026-03-29 02:00 -> 03:00 (01:00 UTC); 2026-10-25 03:00 -> 02:00 (01:00 UTC).


def test_a_window_starting_in_the_skipped_hour_opens_when_the_clock_jumps():
    """ "Sun 02:30-05:00" on the spring-forward night opens at 03:00 local (01:00 UTC)."""
    s = parse_schedule("Sun 02:30-05:00", tz="Europe/Paris")
    got = next_opening(s, datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    assert got == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert f"{got:%H:%M}" == "03:00"


def test_a_window_wholly_in_the_skipped_hour_waits_a_week():
    """ "Sun 02:00-02:30" never happens on the spring-forward night: next Sunday instead."""
    s = parse_schedule("Sun 02:00-02:30", tz="Europe/Paris")
    got = next_opening(s, datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    assert got == at("2026-04-05 02:00")


def test_the_repeated_autumn_hour_is_open_both_times_round():
    """ "Sun 02:15-02:45" on the fall-back night opens at 02:15 CEST, then again at 02:15 CET."""
    s = parse_schedule("Sun 02:15-02:45", tz="Europe/Paris")
    first = next_opening(s, datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    # (an ambiguous local time never compares equal across zones: compare timestamps)
    assert first.timestamp() == datetime(2026, 10, 25, 0, 15, tzinfo=UTC).timestamp()
    after_first = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # 02:50 CEST: closed
    assert not is_open(s, after_first)
    second = next_opening(s, after_first)
    assert second.timestamp() == datetime(2026, 10, 25, 1, 15, tzinfo=UTC).timestamp()


def test_the_clock_falling_back_into_a_window_opens_it():
    """ "Sun 02:00-02:10": at 03:00 CEST the clock falls back to 02:00 CET, inside the window."""
    s = parse_schedule("Sun 02:00-02:10", tz="Europe/Paris")
    after_first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, first pass
    got = next_opening(s, after_first)
    assert got.timestamp() == datetime(2026, 10, 25, 1, 0, tzinfo=UTC).timestamp()


# --- properties over many instants --------------------------------------------------------

PROPERTY_SCHEDULES = [
    ("Mon-Fri 07:00-19:00", "Europe/Paris"),
    ("Fri 22:00-06:00", "America/New_York"),
    ("Sun 02:00-02:30, Sun 23:30-00:30", "Europe/Paris"),
    ("Sat,Sun", "Australia/Lord_Howe"),  # a 30-minute DST shift
    ("daily 01:30-02:30", "America/Santiago"),  # DST changes at midnight there
]


def _rand_instant(rng: random.Random) -> datetime:
    # Spread over two years, so both DST changes come up for every zone.
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    return datetime.fromtimestamp(base + rng.uniform(0, 2 * 365 * DAY_S), UTC)


def _closed_throughout(s: Schedule, start: datetime, end: datetime) -> bool:
    """No whole minute (the grain of windows and DST shifts) in [start, end) is open."""
    probe = start
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while probe < end:
        if is_open(s, probe):
            return False
        probe, minute = minute, minute + timedelta(minutes=1)
    return True


@pytest.mark.parametrize(("text", "tz"), PROPERTY_SCHEDULES)
def test_next_opening_is_open_and_nothing_before_it_is(text, tz):
    """Over many instants t: next_opening(t) >= t, it is open, and no minute in between is;
    a window closes within the week after it opens."""
    s = parse_schedule(text, tz=tz)
    rng = random.Random(f"{text}|{tz}")
    for _ in range(40):
        t = _rand_instant(rng)
        got = next_opening(s, t)
        assert got >= t and is_open(s, got), (t, got)
        assert _closed_throughout(s, t, got), (t, got)
        assert got - t <= timedelta(days=15)


@pytest.mark.parametrize(("text", "tz"), PROPERTY_SCHEDULES)
def test_is_open_agrees_with_the_local_wall_clock(text, tz):
    """is_open(t) is exactly "t's local weekday and time fall in a window" (brute force)."""
    s = parse_schedule(text, tz=tz)
    rng = random.Random(f"wall|{text}|{tz}")
    for _ in range(500):
        t = _rand_instant(rng)
        local = t.astimezone(ZoneInfo(tz))
        pos = local.weekday() * DAY_S + local.hour * H + local.minute * 60 + local.second
        pos += local.microsecond / 1e6
        assert is_open(s, t) == any(a <= pos < b for a, b in s.intervals), t


def test_opening_note_names_the_day_time_and_zone():
    """The status note: day, time and zone of the next opening; None while open."""
    assert opening_note(WEEKDAYS, at("2026-12-04 20:00")) == (
        "waiting for its schedule (opens Mon 07:00 Europe/Paris)"
    )
    assert opening_note(WEEKDAYS, at("2026-12-04 12:00")) is None


def test_the_property_helpers_can_fail():
    """_closed_throughout sees an open minute (so the property test is not vacuous)."""
    assert not _closed_throughout(WEEKDAYS, at("2026-12-07 06:00"), at("2026-12-07 07:01"))
    assert _closed_throughout(WEEKDAYS, at("2026-12-07 06:00"), at("2026-12-07 07:00"))
    assert os.environ.get("TZ") != "Asia/Kolkata"


def test_no_schedule_is_always_open():
    """None (a rule without active_hours) is open at any instant, with no note."""
    t = at("2026-12-05 03:00")
    assert is_open(None, t) and next_opening(None, t) == t and opening_note(None, t) is None

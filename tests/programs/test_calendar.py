"""programs/calendar.py: where you are, from the log -- missed days, partial days, zones and DST."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from voicecoach.practice_log import PracticeLog, new_session
from voicecoach.programs.calendar import DayState, heatmap_lines, program_status
from voicecoach.programs.format import load_program

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ROUTINE = "routine: R\nsteps:\n  - massage: Sweep\n    area: cheeks\n    strokes: 4\n    tempo: 2s\n"
START = date(2026, 3, 23)  # a Monday; Berlin springs forward on Sunday 2026-03-29


@pytest.fixture
def program(tmp_path):
    (tmp_path / "programs").mkdir()
    (tmp_path / "r.yaml").write_text(ROUTINE)
    path = tmp_path / "programs" / "p.yaml"
    # days 1-3 practice, 4 rest, repeated: 8 days
    path.write_text("program: P\ndays: 8\nschedule:\n  - [../r.yaml]\n  - [../r.yaml]\n  - [../r.yaml]\n  - rest\n")
    return load_program(path)


def played(program, day: int, when: datetime, *, seconds: float = 100.0, total: float = 100.0, finished=None):
    return new_session(routine="R", file_hash="", started=when, zone=when.tzinfo, seconds_played=seconds,
                       seconds_total=total, steps_completed=1, steps_total=1,
                       finished=seconds >= total if finished is None else finished,
                       program="P", program_path=os.path.realpath(program.path), program_day=day)


def at(day: date, hour: int = 8, minute: int = 0, zone=BERLIN) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def states(status) -> str:
    return "".join(cell.state.value for cell in status.calendar)


def test_a_fresh_program_starts_today_on_day_1(program):
    status = program_status(program, [], today=START)
    assert (status.day, status.rest_today, status.start, status.done) == (1, False, START, ())
    assert states(status) == "...-...-"  # 8 days projected: 3 practice, rest, 3 practice, rest
    assert [c.day for c in status.calendar] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_missed_day_does_not_skip_content(program):
    sessions = [played(program, 1, at(START)), played(program, 2, at(START + timedelta(days=1)))]
    # the 3rd and 4th are missed: on the 5th, day 3 is next, not day 5
    status = program_status(program, sessions, today=START + timedelta(days=4))
    assert status.day == 3 and not status.rest_today
    assert states(status)[:5] == "##xx."
    assert status.streak_days == 0  # two whole days missed
    # playing day 3 then makes the next date the rest day (day 4)
    sessions.append(played(program, 3, at(START + timedelta(days=4))))
    tomorrow = program_status(program, sessions, today=START + timedelta(days=5))
    assert (tomorrow.day, tomorrow.rest_today) == (4, True)
    after = program_status(program, sessions, today=START + timedelta(days=6))
    assert (after.day, after.rest_today, after.streak_days) == (5, False, 1)  # the rest day keeps the streak


def test_a_partial_session_does_not_count(program):
    short = played(program, 1, at(START), seconds=7, total=100)  # 7 s of 100: not a practice day
    assert not short.practised
    status = program_status(program, [short], today=START + timedelta(days=1))
    assert status.day == 1 and status.done == () and states(status)[0] == DayState.PARTIAL.value
    assert status.streak_days == 0
    enough = played(program, 1, at(START + timedelta(days=1)), seconds=80, total=100)  # 80 %: counts
    status = program_status(program, [short, enough], today=START + timedelta(days=1))
    assert status.done == (1,) and status.done_today == (1,) and status.day == 2 and status.streak_days == 1


def test_late_sessions_count_for_their_local_day_across_dst(program):
    # 23:30 in Berlin on the spring-forward day is already the next day in UTC; each session
    # counts for the day where it was played.
    sessions = [played(program, day + 1, at(date(2026, 3, 28) + timedelta(days=day), 23, 30)) for day in range(3)]
    assert [s.local_date for s in sessions] == [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]
    assert sessions[1].started_utc.hour == 21  # CEST: UTC+2 after the change
    status = program_status(program, sessions, today=date(2026, 3, 31))
    assert (status.day, status.rest_today, status.streak_days) == (4, True, 3)
    # the same sessions seen from New York (a fake clock there): the log keeps the local dates
    assert program_status(program, sessions, today=date(2026, 3, 31)).done == (1, 2, 3)


def test_a_session_at_half_past_midnight_is_the_next_day(program):
    sessions = [played(program, 1, at(START, 23, 50, NEW_YORK)), played(program, 2, at(START + timedelta(days=2), 0, 30, NEW_YORK))]
    assert sessions[1].local_date == START + timedelta(days=2)
    status = program_status(program, sessions, today=START + timedelta(days=2))
    assert states(status)[:3] == "#x#" and status.streak_days == 1 and status.day == 3


def test_the_whole_program_done(program):
    days = [1, 2, 3, 5, 6, 7]
    sessions, current = [], START
    for day in days:
        if day == 5:
            current += timedelta(days=1)  # the rest day
        sessions.append(played(program, day, at(current)))
        current += timedelta(days=1)
    status = program_status(program, sessions, today=current)
    assert status.finished and status.done == tuple(days) and status.streak_days == 6


def test_the_log_stores_program_and_day(program, tmp_path):
    log = PracticeLog(tmp_path / "log.sqlite3")
    log.record(played(program, 2, at(START)))
    (stored,) = log.sessions()
    assert (stored.program, stored.program_day, stored.program_path) == ("P", 2, os.path.realpath(program.path))
    assert log.last_program() == os.path.realpath(program.path)


def test_heatmap_is_readable_without_colour(program):
    sessions = [played(program, 1, at(START)), played(program, 2, at(START + timedelta(days=1)), seconds=10)]
    status = program_status(program, sessions, today=START + timedelta(days=2))
    lines = heatmap_lines(status)
    assert lines[0].split() == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert lines[1].startswith("Mar 23") and " 1# " in lines[1] and " 2+ " in lines[1] and "[ 2.]" in lines[1]
    assert "# done" in lines[-1] and "x missed" in lines[-1] and "- rest" in lines[-1]
    assert "\x1b" not in "".join(lines)


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.integers(1, 4), min_size=1, max_size=12), counted=st.lists(st.booleans(), min_size=12,
                                                                                     max_size=12))
def test_following_today_never_skips_content(tmp_path_factory, gaps, counted):
    # Someone plays `today` on scattered dates, sometimes stopping early: the days that count
    # are always the practice days in order, whatever the gaps; rest days are never played.
    tmp = tmp_path_factory.mktemp("p")
    (tmp / "r.yaml").write_text(ROUTINE)
    path = tmp / "p.yaml"
    path.write_text("program: P\ndays: 8\nschedule:\n  - [r.yaml]\n  - [r.yaml]\n  - [r.yaml]\n  - rest\n")
    program = load_program(path)
    sessions, current = [], START
    for gap, done in zip(gaps, counted):
        current += timedelta(days=gap)
        status = program_status(program, sessions, today=current)
        if status.finished or status.rest_today:
            continue
        assert not program.entry(status.day).rest
        sessions.append(played(program, status.day, at(current), seconds=100 if done else 10))
    counted_days = [s.program_day for s in sessions if s.practised]
    assert counted_days == program.practice_days()[:len(counted_days)]

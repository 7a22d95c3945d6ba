"""Where you are in a program, from the practice log: today's day, the streak, the heatmap.

Content never skips: the day to play is the first practice day you have not done.  Rest days
are taken on the calendar days after the practice day before them; a day without practice
that is not such a rest day is *missed*, and the next session is still the day you did not
do.  Only sessions that count (finished, or 80 % played: practice_log.py) make a day done;
shorter ones mark their date *partial*.

Everything works on local dates (each session keeps the date where it was played), so time
zones and daylight-saving changes never move a session to another day.  ``today`` is passed
in: tests and ``--date`` use any day.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable

from ..practice_log import Session
from .format import Program

__all__ = ["DayState", "ProgramStatus", "heatmap_lines", "program_sessions", "program_status"]


class DayState(enum.Enum):
    """What a calendar date was (or will be) in a program; each has a symbol readable without colour."""

    DONE = "#"
    PARTIAL = "+"
    MISSED = "x"
    REST = "-"
    UPCOMING = "."


LEGEND = "day and state: # done  + partial (under 80 %)  x missed  - rest  . upcoming  [ ] today"


@dataclass(frozen=True)
class CalendarDate:
    """One date of the program's calendar."""

    date: date
    """The local date."""
    state: DayState
    """Done, partial, missed, rest or upcoming."""
    day: int | None
    """The program day done, rested or planned on it (``None`` for a missed date)."""


@dataclass(frozen=True)
class ProgramStatus:
    """A program as of one local date."""

    program: Program
    """The program."""
    today: date
    """The local date it is about."""
    start: date
    """The program's first date: its ``start:``, else the first session's date, else today."""
    day: int | None
    """Today's program day: the one to play (or rest on); ``None`` when every day is done."""
    rest_today: bool
    """Today is a rest day."""
    done_today: tuple[int, ...]
    """Program days done today."""
    done: tuple[int, ...]
    """Every practice day done, in order."""
    streak_days: int
    """Consecutive practice days up to today (or yesterday); rest days keep it alive."""
    calendar: tuple[CalendarDate, ...]
    """Every date from the start to the projected end."""

    @property
    def finished(self) -> bool:
        return self.day is None

    @property
    def practice_days(self) -> int:
        return len(self.program.practice_days())


def program_sessions(program: Program, sessions: Iterable[Session]) -> list[Session]:
    """The sessions that played days of ``program`` (same file, resolved)."""
    real = os.path.realpath(program.path)
    return [s for s in sessions if s.program_path == real and s.program_day is not None]


def _next_pointer(program: Program, done: set[int]) -> int:
    """The day after the last one done before the first day not done: a rest day or that day."""
    first = next((d for d in program.practice_days() if d not in done), None)
    if first is None:
        return program.days + 1
    before = [d for d in done if d < first]
    return max(before) + 1 if before else 1


def program_status(program: Program, sessions: Iterable[Session], *, today: date) -> ProgramStatus:
    """Walk the calendar from the start to ``today`` and on to the projected end."""
    mine = program_sessions(program, sessions)
    by_date: dict[date, list[Session]] = {}
    for session in mine:
        by_date.setdefault(session.local_date, []).append(session)
    start = program.start or min(by_date, default=today)
    start = min(start, min(by_date, default=start))
    done: set[int] = set()
    pointer = 1
    cells: list[CalendarDate] = []
    rest_today = False
    done_today: tuple[int, ...] = ()
    day_of_today: int | None = None  # set here for a rest day; else the first day not done
    current = start
    limit = start + timedelta(days=program.days * 4 + 400)  # a walk of bounded length, whatever the log says
    while current <= limit:
        practised = sorted({s.program_day for s in by_date.get(current, []) if s.practised})
        if current == today:
            done_today = tuple(practised)
        if practised:
            done.update(d for d in practised if 1 <= d <= program.days)
            pointer = _next_pointer(program, done)
            cells.append(CalendarDate(current, DayState.DONE, practised[-1]))
        elif by_date.get(current):  # played, but not enough to count: the content waits
            cells.append(CalendarDate(current, DayState.PARTIAL, by_date[current][0].program_day))
            pointer += pointer <= program.days and program.entry(pointer).rest
        elif pointer <= program.days and program.entry(pointer).rest:
            cells.append(CalendarDate(current, DayState.REST, pointer))
            if current == today:
                rest_today, day_of_today = True, pointer
            pointer += 1
        elif current < today:
            if pointer <= program.days:
                cells.append(CalendarDate(current, DayState.MISSED, None))
        elif pointer <= program.days:
            cells.append(CalendarDate(current, DayState.UPCOMING, pointer))
            pointer += 1
        if current >= today and pointer > program.days:
            break
        current += timedelta(days=1)
    if not rest_today:
        day_of_today = next((d for d in program.practice_days() if d not in done), None)
    return ProgramStatus(program=program, today=today, start=start, day=day_of_today, rest_today=rest_today,
                         done_today=done_today, done=tuple(sorted(done)), streak_days=_streak(cells, today),
                         calendar=tuple(cells))


def _streak(cells: list[CalendarDate], today: date) -> int:
    """Done dates in a row up to today (or yesterday, if today is not done yet); rest days bridge."""
    states = {cell.date: cell.state for cell in cells}
    day = today if states.get(today) is DayState.DONE else today - timedelta(days=1)
    count = 0
    while states.get(day) in (DayState.DONE, DayState.REST):
        count += states[day] is DayState.DONE
        day -= timedelta(days=1)
    return count


def heatmap_lines(status: ProgramStatus) -> list[str]:
    """The calendar as weeks, Monday first, each cell a program day and its state (``12#``: day 12,
    done; `` x``: a missed date); today in brackets; the row's label is its Monday."""
    if not status.calendar:
        return []
    first = status.calendar[0].date
    monday = first - timedelta(days=first.weekday())
    cells = {cell.date: cell for cell in status.calendar}
    last = status.calendar[-1].date
    lines = ["         Mon  Tue  Wed  Thu  Fri  Sat  Sun"]
    week = monday
    while week <= last:
        row = []
        for offset in range(7):
            current = week + timedelta(days=offset)
            cell = cells.get(current)
            text = "   " if cell is None else f"{cell.day or '':>2}{cell.state.value}"
            row.append(f"[{text}]" if current == status.today else f" {text} ")
        lines.append(f"{week:%b %d}  " + "".join(row).rstrip())
        week += timedelta(days=7)
    lines.append(LEGEND)
    return lines

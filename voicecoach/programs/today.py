"""Today's session of a program, and its status: what ``voicecoach today`` and ``program status`` say.

``plan_today`` finds the program (the file given, else the one played last), reads the
practice log and works out today's day (calendar.py); ``--day`` plays another day and
``--date`` pretends today is another date (previewing, tests).  The session is logged with
the program and the day, on that date.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..errors import VoicecoachError
from ..model import Routine
from ..practice_log import PracticeLog, local_zone
from ..timing import format_duration
from .calendar import ProgramStatus, heatmap_lines, program_status
from .days import day_routine
from .format import Program, load_program

__all__ = ["TodayPlan", "local_today", "plan_today", "resolve_program", "status_json", "status_lines"]


def local_today() -> date:
    """Today's date here."""
    return datetime.now(local_zone()).date()


def resolve_program(file: str | os.PathLike | None, log: PracticeLog) -> Program:
    """The program in ``file``, else the one whose day was played last."""
    if file is None:
        last = log.last_program()
        if last is None:
            raise VoicecoachError("no program played yet",
                                  hint="name one: voicecoach today scripts/programs/thirty-days-face-fitness.yaml")
        if not os.path.isfile(last):
            raise VoicecoachError(f"the program played last, {last!r}, is gone", hint="name a program file")
        file = last
    return load_program(file)


@dataclass(frozen=True)
class TodayPlan:
    """What ``voicecoach today`` plays."""

    program: Program
    """The program."""
    status: ProgramStatus
    """Where you are in it, as of ``date``."""
    day: int | None
    """The day to play or rest on; ``None``: every day is done."""
    routine: Routine | None
    """The day's session; ``None`` on a rest day or when the program is done."""
    date: date
    """The local date the session counts for."""
    chosen: bool
    """The day was chosen with ``--day``."""

    def heading(self) -> str:
        """One line: which day of the program, or why nothing plays."""
        head = f"{self.program.title}: "
        if self.day is None:
            return head + f"all {self.status.practice_days} practice days done. Well done!"
        if self.routine is None:
            return head + f"day {self.day} of {self.program.days} is a rest day. Next: {_next(self.status, self.day)}"
        again = f" (day {', '.join(map(str, self.status.done_today))} done today)" if self.status.done_today else ""
        return head + f"day {self.day} of {self.program.days}{again}"

    def log_fields(self) -> dict[str, Any]:
        """What the practice log keeps about the session besides the routine's own figures."""
        return {"program": self.program.title, "program_path": os.path.realpath(self.program.path),
                "program_day": self.day, "local_date": self.date}


def _next(status: ProgramStatus, after: int) -> str:
    following = [d for d in status.program.practice_days() if d > after and d not in status.done]
    return f"day {following[0]}, tomorrow or later" if following else "nothing: the program is done"


def plan_today(file: str | os.PathLike | None, *, day: int | None = None, today: date | None = None,
               log: PracticeLog | None = None) -> TodayPlan:
    """Today's (or ``day``'s) session of the program in ``file`` (else the one played last)."""
    log = log or PracticeLog()
    program = resolve_program(file, log)
    today = today or local_today()
    status = program_status(program, log.sessions(), today=today)
    chosen = day is not None
    if day is None:
        day = status.day
    else:
        program.entry(day)  # a located error for a day outside the program
    routine = day_routine(program, day) if day is not None else None
    return TodayPlan(program, status, day, routine, today, chosen)


def status_lines(status: ProgramStatus) -> list[str]:
    """``program status`` as text: where you are, the streak, what is next, the heatmap."""
    from ..pipeline import plan

    program = status.program
    days = lambda n: f"{n} day{'s' if n != 1 else ''}"  # noqa: E731
    if status.day is None:
        where = f"done: all {program.days} days"
    else:
        where = f"day {status.day} of {program.days}, week {(status.day - 1) // 7 + 1}"
    lines = [f"{program.title}: {where}",
             f"Done: {len(status.done)} of {status.practice_days} practice days; streak: {days(status.streak_days)}"]
    if status.day is not None:
        routine = day_routine(program, status.day)
        if routine is None:
            lines.append(f"Today: rest (day {status.day}). Next: {_next(status, status.day)}")
        else:
            titles = " + ".join(r.title for r in program.entry(status.day).routines)
            when = "today" if not status.done_today else "next"
            lines.append(f"{when.capitalize()}: day {status.day} - {titles} "
                         f"(about {format_duration(round(plan(routine).duration_s))})")
    return lines + [""] + heatmap_lines(status)


def status_json(status: ProgramStatus) -> dict[str, Any]:
    """``program status --json``."""
    return {
        "program": status.program.title, "file": status.program.path, "today": status.today.isoformat(),
        "start": status.start.isoformat(), "days": status.program.days, "day": status.day,
        "rest_today": status.rest_today, "done": list(status.done), "done_today": list(status.done_today),
        "practice_days": status.practice_days, "streak_days": status.streak_days,
        "calendar": [{"date": c.date.isoformat(), "state": c.state.name.lower(), "day": c.day}
                     for c in status.calendar],
    }


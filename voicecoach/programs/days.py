"""Program days as they will be played: one routine per day, progress applied, checked.

A day's session is one :class:`~voicecoach.model.Routine` (so it compiles, caches, plays and
exports like any routine): the day's routines in order, each after the first introduced by
its title and intro, every exercise and massage grown by the day's progress level.  Its
title names the program and the day; its location is the program's schedule entry.

``check_program`` runs the safety rules (rules.py) on every day: days with the same schedule
entry and progress level are the same session, so each is checked once and its findings are
reported for every day it is played on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..model import Breathe, Exercise, Massage, Routine, Say, flat_steps
from ..pipeline import Settings, plan
from ..rules import Finding, Severity, check_routine
from .format import Program, ScheduleDay
from .progress import DAYS_PER_LEVEL, level, progress_routine

__all__ = ["DayFinding", "check_program", "day_plan", "day_routine", "program_plan"]


def _key(program: Program, day: int) -> tuple[int, int]:
    """Days with equal keys play the same session: (schedule entry, progress level)."""
    return (day - 1) % len(program.schedule), level(day, program.progress)


def day_routine(program: Program, day: int) -> Routine | None:
    """The session of program day ``day`` (1-based), ``None`` on a rest day."""
    entry = program.entry(day)
    if entry.rest:
        return None
    steps_level = level(day, program.progress)
    routines = [progress_routine(r, program.progress, steps_level) for r in entry.routines]
    first = routines[0]
    steps = list(first.steps)
    for routine in routines[1:]:  # announce each next routine: its title, then its intro
        text = f"{routine.title}. {routine.intro}".strip() if routine.intro else f"{routine.title}."
        steps.append(Say(text, entry.loc))
        steps.extend(routine.steps)
    return dataclasses.replace(
        first,
        title=f"{program.title}, day {day}",
        steps=tuple(steps),
        description=" / ".join(r.title for r in routines),
        outro=routines[-1].outro,
        loc=entry.loc,
        path=program.path,
    )


@dataclass(frozen=True)
class DayFinding:
    """A rule's finding on the days one session is played."""

    finding: Finding
    """What the rule found, located in the routine's file (or at the program's entry)."""
    days: tuple[int, ...]
    """The program days it applies to, in order."""
    entry: ScheduleDay
    """The schedule entry that plays those days."""

    @property
    def severity(self) -> Severity:
        return self.finding.severity

    def fails(self, *, strict: bool) -> bool:
        return self.finding.fails(strict=strict)

    def format(self, *, strict: bool = False) -> str:
        """``program:line:col: day 22 (and 8 later days): routine:line:col: VC103 warning: ...``."""
        later = len(self.days) - 1
        also = f" (and {later} later day{'s' if later != 1 else ''})" if later else ""
        return f"{self.entry.loc}: day {self.days[0]}{also}: {self.finding.format(strict=strict)}"


def check_program(program: Program, *, deep: Settings | None = None) -> list[DayFinding]:
    """The safety and quality rules on every day as it will be played, with progress applied.

    Each finding once per session, with the days it is played on; sorted by first day.
    """
    sessions: dict[tuple[int, int], list[int]] = {}
    for day in program.practice_days():
        sessions.setdefault(_key(program, day), []).append(day)
    grouped: dict[tuple, DayFinding] = {}
    for days in sessions.values():
        routine = day_routine(program, days[0])
        assert routine is not None
        for finding in check_routine(routine, deep=deep):
            key = (finding.rule, finding.location)
            if key in grouped:  # the same place at a later level: one line, its first day
                old = grouped[key]
                grouped[key] = dataclasses.replace(old, days=tuple(sorted({*old.days, *days})))
            else:
                grouped[key] = DayFinding(finding, tuple(days), program.entry(days[0]))
    return sorted(grouped.values(), key=lambda f: (f.days[0], f.finding.location or f.entry.loc, f.finding.rule))


def _step_plan(step) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": step.kind.value, "title": getattr(step, "name", "")}
    if isinstance(step, (Exercise, Massage)):
        item["area"] = step.area.value if step.area else None
        item["sides"] = [side.value for side in step.sides]
    if isinstance(step, Exercise):
        item.update(reps=step.reps, hold_s=float(step.hold_s), sets=step.sets)
    elif isinstance(step, Massage):
        item.update(strokes=step.strokes, tempo_s=float(step.tempo_s))
    elif isinstance(step, Breathe):
        item.update(cycles=step.cycles)
    elif isinstance(step, Say):
        item["title"] = step.name
    else:
        item["duration_s"] = float(step.duration_s)
    return item


def day_plan(program: Program, day: int, *, with_steps: bool = True) -> dict[str, Any]:
    """What program day ``day`` plays, as plain data (``program preview --json``).

    Durations are estimates (speech lengths are not synthesized); reps, holds and strokes are
    exact, after progress.
    """
    out = day_plan_head(program, day)
    routine = day_routine(program, day)
    if routine is None:
        return out
    out["duration_s"] = round(plan(routine).duration_s, 3)
    out["estimated"] = True
    if with_steps:
        out["steps"] = [_step_plan(step) for step, _ in flat_steps(routine.steps)]
    return out


def program_plan(program: Program, *, day: int | None = None) -> dict[str, Any]:
    """The whole calendar (or one day's plan, with its steps) as plain data."""
    progress = program.progress
    head: dict[str, Any] = {
        "program": program.title, "description": program.description, "days": program.days,
        "start": program.start.isoformat() if program.start else None,
        "practice_days": len(program.practice_days()),
        "progress": {"reps": progress.reps, "hold_s": float(progress.hold_s), "strokes": progress.strokes,
                     "limits": {"reps": progress.max_reps,
                                "hold_s": None if progress.max_hold_s is None else float(progress.max_hold_s),
                                "strokes": progress.max_strokes},
                     "deload_weeks": list(progress.deload_weeks)},
    }
    if day is not None:
        return {**head, **day_plan(program, day)}
    sessions: dict[tuple[int, int], dict[str, Any]] = {}  # one plan per (entry, level): days repeat it
    calendar = []
    for number in range(1, program.days + 1):
        key = _key(program, number)
        if key not in sessions:
            full = day_plan(program, number)
            sessions[key] = {name: full[name] for name in ("duration_s", "estimated") if name in full}
            sessions[key]["work"] = [_work(step) for step in full.get("steps", []) if step["kind"] == "exercise"
                                     or step["kind"] == "massage"]
        calendar.append({**day_plan_head(program, number), **sessions[key]})
    return {**head, "calendar": calendar}


def _work(step: dict[str, Any]) -> dict[str, Any]:
    """An exercise's or massage's numbers after progress, for the calendar."""
    names = ("reps", "hold_s", "sets") if step["kind"] == "exercise" else ("strokes",)
    return {"title": step["title"], "kind": step["kind"], **{name: step[name] for name in names}}


def day_plan_head(program: Program, day: int) -> dict[str, Any]:
    """A day's place in the calendar: week, progress level, rest or its routines."""
    entry = program.entry(day)
    return {"day": day, "week": (day - 1) // DAYS_PER_LEVEL + 1, "level": level(day, program.progress), "rest": entry.rest,
            "routines": [r.title for r in entry.routines], "files": list(entry.files)}


def step_summary(item: dict[str, Any]) -> str:
    """``5 x 7 s``, ``10 strokes``: the progressed numbers of a step in a plan."""
    if item["kind"] == "exercise":
        sets = f" x {item['sets']} sets" if item["sets"] > 1 else ""
        return f"{item['reps']} x {item['hold_s']:g} s{sets}"
    if item["kind"] == "massage":
        return f"{item['strokes']} strokes"
    if item["kind"] == "breathe":
        return f"{item['cycles']} breaths"
    if item["kind"] == "rest":
        return f"{item['duration_s']:g} s"
    return ""


def preview_lines(data: dict[str, Any]) -> list[str]:
    """``program preview`` as text lines: the calendar, or one day's steps."""
    from ..timing import format_duration

    def minutes(item: dict[str, Any]) -> str:
        return f"about {format_duration(round(item['duration_s']))}" if "duration_s" in item else ""

    lines = [f"{data['program']}: {data['days']} days, {data['practice_days']} practice days"]
    days = data["calendar"] if "calendar" in data else [data]
    for item in days:
        what = "rest" if item["rest"] else " + ".join(item["routines"])
        lines.append(f"  day {item['day']:>3}  week {item['week']}  {what}  {minutes(item)}".rstrip())
        for step in item.get("steps", []):
            summary = step_summary(step)
            lines.append(f"           {step['title']}" + (f" - {summary}" if summary else ""))
        exercises = [w for w in item.get("work", []) if w["kind"] == "exercise"]
        if exercises:  # the calendar: each day's exercises after progress, on one line
            lines.append("           " + ", ".join(f"{w['title']} {step_summary(w)}" for w in exercises))
    return lines

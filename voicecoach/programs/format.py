"""Program files: YAML text -> :class:`Program`, with located errors like routines.

A program names routine files day by day::

    program: Thirty days of face fitness
    start: 2026-12-01            # optional; default: the day of the first session
    days: 30
    schedule:                    # a cycle of days, repeated until `days`
      - [../morning.yaml]
      - [../morning.yaml, ../lymphatic-drainage.yaml]
      - rest
    progress:                    # once per completed week
      reps: +1
      hold: +1s
      strokes: +2
      limits: {reps: 10, hold: 20s, strokes: 16}

It is read with the routine loader's safeguards (script.py: size limit, no tags, alias
budget, duplicate keys).  Paths are relative to the program's file and must stay inside its
*root*: the folder that holds ``programs/`` when the program lives in a folder of that name
(so ``scripts/programs/x.yaml`` may name ``../morning.yaml``), else the program's own folder.
Every routine named is loaded and checked; its own problems are reported at its own lines.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

from ..errors import Location, RoutineErrors, VoicecoachError
from ..model import Routine
from ..script import (BAD, DEFAULT_LIMITS, Limits, Node, Parser, TooManyErrors, load_routine, read_yaml,
                      resolve_inside, top_level_keys)
from .progress import DAYS_PER_LEVEL, Progress

__all__ = ["MAX_DAYS", "PROGRAM_FOLDER", "Program", "ScheduleDay", "is_program_file", "load_program",
           "program_format", "program_root"]

MAX_DAYS = 366
"""Longest program, in days."""
MAX_CYCLE = 60
"""Most days in the schedule's cycle."""
MAX_ROUTINES_PER_DAY = 6
"""Most routines in one day's session."""
MAX_INCREMENT = {"reps": 5, "hold": Fraction(10), "strokes": 10}
"""Largest increment per week (beyond that progress is not gradual)."""
PROGRAM_FOLDER = "programs"
"""A program in a folder of this name may name routines in the folder above it."""

REST = "rest"
_TOP_KEYS = ("program", "description", "start", "days", "schedule", "progress")
_PROGRESS_KEYS = ("reps", "hold", "strokes", "limits", "deload")
_LIMIT_KEYS = ("reps", "hold", "strokes")
_EMPTY_HINT = "start it with 'program: Title', 'days:' and a 'schedule:' of routine files"
_INCREMENT = re.compile(r"^\s*\+?\s*(.+?)\s*$")


@dataclass(frozen=True)
class ScheduleDay:
    """One entry of the schedule's cycle: a rest day or the routines of one session."""

    routines: tuple[Routine, ...]
    """The day's routines in play order (empty on a rest day)."""
    files: tuple[str, ...]
    """Their paths as written in the program."""
    loc: Location
    """Where the entry is written in the program file."""

    @property
    def rest(self) -> bool:
        return not self.routines


@dataclass(frozen=True)
class Program:
    """A program: which routines to play on which day, and how they progress."""

    title: str
    """The program's name."""
    days: int
    """Length in days, rest days included."""
    schedule: tuple[ScheduleDay, ...]
    """The cycle of days, repeated until ``days``."""
    path: str = "<program>"
    """The file it came from, as the user named it."""
    description: str = ""
    """What the program is for (not spoken)."""
    start: date | None = None
    """Its first day; ``None``: the day of the first session."""
    progress: Progress = Progress()
    """How exercises and massages grow week by week."""
    loc: Location | None = None
    """Where ``program:`` is written."""
    locs: Mapping[str, Location] = field(default_factory=dict, compare=False, repr=False)
    """Where each top-level key is written."""

    def entry(self, day: int) -> ScheduleDay:
        """The schedule entry of program day ``day`` (1-based)."""
        if not 1 <= day <= self.days:
            raise VoicecoachError(f"day {day} is not in the program: it has {self.days} days",
                                  location=self.locs.get("days", self.loc), hint=f"give a day from 1 to {self.days}")
        return self.schedule[(day - 1) % len(self.schedule)]

    def practice_days(self) -> list[int]:
        """The days that are not rest days."""
        return [day for day in range(1, self.days + 1) if not self.entry(day).rest]


def program_root(path: str | os.PathLike) -> Path:
    """Where a program's routines may be: the folder above ``programs/``, else its own folder."""
    folder = Path(os.path.realpath(os.path.dirname(os.path.abspath(path))))
    return folder.parent if folder.name == PROGRAM_FOLDER else folder


class _ProgramParser(Parser):
    """The routine parser's value checks (text, durations, counts) for a program's keys."""

    def __init__(self, limits: Limits, path: str) -> None:
        super().__init__(limits, os.fspath(program_root(path)))
        self.path = path
        self.folder = os.path.dirname(path)
        self.routines: dict[str, Routine | None] = {}

    def program(self, root: Node) -> Program | None:
        if not isinstance(root.value, dict):
            raise VoicecoachError(f"expected 'program:' and 'schedule:' at the top level, found {root.describe()}",
                                  location=root.loc, hint="start the file with 'program: Title'")
        entries = root.value
        if "program" not in entries and ("routine" in entries or "steps" in entries):
            raise VoicecoachError("this is a routine, not a program", location=root.loc,
                                  hint=f"play it with: voicecoach play {self.path}")
        values: dict[str, Any] = {}
        for key, (key_loc, node) in entries.items():
            if key not in _TOP_KEYS:
                self.err(key_loc, f"unknown key {_show(key)} at the top level of a program", _suggest(key, _TOP_KEYS))
                continue
            values[key] = getattr(self, f"top_{key}")(node)
        for key, hint in (("program", "add 'program: Title' at the top"),
                          ("days", "add 'days: 30' (rest days included)"),
                          ("schedule", "add 'schedule:' with a list of days, like '- [../morning.yaml]' or '- rest'")):
            if key not in entries:
                self.err(root.loc, f"the program has no '{key}'", hint)
        schedule = values.get("schedule")
        if isinstance(schedule, tuple) and all(day.rest for day in schedule):
            self.err(entries["schedule"][1].loc, "the schedule has only rest days",
                     "add at least one day with routines, like '- [../morning.yaml]'")
        if self.errors:
            return None
        return Program(
            title=values["program"], days=values["days"], schedule=schedule, path=self.path,
            description=values.get("description", ""), start=values.get("start"),
            progress=values.get("progress", Progress()), loc=entries["program"][0],
            locs={key: key_loc for key, (key_loc, _) in entries.items()},
        )

    # -- top-level keys -------------------------------------------------------------------

    def top_program(self, node: Node) -> Any:
        return self.text("program", node, name=True)

    def top_description(self, node: Node) -> Any:
        return self.text("description", node, spoken=False)

    def top_start(self, node: Node) -> Any:
        if self.missing("start", node):
            return BAD
        try:
            if isinstance(node.value, str) and len(node.raw) <= 20:
                return date.fromisoformat(node.value.strip())
        except ValueError:
            pass
        return self.bad(node.loc, f"start: {node.describe()} is not a date", "write it like 2026-12-01")

    def top_days(self, node: Node) -> Any:
        return self.count("days", node, MAX_DAYS)

    def count(self, key: str, node: Node, limit: int, low: int = 1) -> Any:
        if self.missing(key, node):
            return BAD
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= limit:
            return self.bad(node.loc, f"{key}: expected a whole number from {low} to {limit}, got {node.describe()}",
                            f"write a number like {max(low, min(limit, 30))}")
        return value

    def top_schedule(self, node: Node) -> Any:
        if self.missing("schedule", node):
            return BAD
        if not isinstance(node.value, list) or not node.value:
            return self.bad(node.loc, f"schedule: expected a list of days, got {node.describe()}",
                            "write one day per line: '- [../morning.yaml]' or '- rest'")
        if len(node.value) > MAX_CYCLE:
            return self.bad(node.loc, f"schedule: {len(node.value)} days, more than the limit of {MAX_CYCLE}",
                            "the schedule is a cycle that repeats until 'days'; shorten it")
        days = [self.schedule_day(item) for item in node.value]
        return BAD if any(day is BAD for day in days) else tuple(days)

    def schedule_day(self, node: Node) -> Any:
        items = node.value if isinstance(node.value, list) else [node]  # `- ../morning.yaml` is one routine
        if isinstance(node.value, str) and node.value.strip().lower() == REST:
            return ScheduleDay((), (), node.loc)
        if not items or any(not isinstance(item.value, str) for item in items):
            return self.bad(node.loc, f"a schedule day must be a list of routine files or 'rest', got {node.describe()}",
                            "write '- [../morning.yaml]', '- [../a.yaml, ../b.yaml]' or '- rest'")
        if len(items) > MAX_ROUTINES_PER_DAY:
            return self.bad(node.loc, f"{len(items)} routines in one day, more than the limit of "
                            f"{MAX_ROUTINES_PER_DAY}", "a daily session should be short: use fewer routines")
        routines = [self.routine(item) for item in items]
        if any(r is BAD for r in routines):
            return BAD
        languages = {r.language for r in routines}
        if len(languages) > 1:
            return self.bad(node.loc, "the routines of one day speak different languages: "
                            + ", ".join(sorted(languages)), "put routines of one language in a day")
        return ScheduleDay(tuple(routines), tuple(item.value.strip() for item in items), node.loc)

    def routine(self, node: Node) -> Any:
        rel = self.text("routine file", node, name=True, spoken=False)
        if rel is BAD:
            return BAD
        if rel.lower() == REST:
            return self.bad(node.loc, "'rest' inside a list of routines",
                            "write a rest day on its own line: '- rest'")
        try:
            real = os.fspath(resolve_inside(self.folder, self.root, rel, node.loc, key="routine"))
        except VoicecoachError as exc:
            hint = (f"keep routines in {self.root} or below (the folder that holds {PROGRAM_FOLDER}/, "
                    "or the program's own folder)")
            return self.bad(exc.location or node.loc, exc.message.replace("the routine's folder", "the program's folder"),
                            hint)
        if not os.path.isfile(real):
            what = "is a folder" if os.path.isdir(real) else "was not found"
            return self.bad(node.loc, f"routine file {_show(rel)} {what}",
                            "the path is relative to the program file's folder")
        if real not in self.routines:
            display = os.path.normpath(os.path.join(self.folder, rel))
            try:
                self.routines[real] = load_routine(display, limits=self.limits)
            except RoutineErrors as errors:
                self.routines[real] = None
                for error in errors.errors:
                    self.errors.append(error)
            except VoicecoachError as error:
                self.routines[real] = None
                self.errors.append(error)
            if self.routines[real] is None:
                self.err(node.loc, f"routine file {_show(rel)} has problems (above)", "fix them first")
        return self.routines[real] or BAD

    def top_progress(self, node: Node) -> Any:
        entries = self.mapping("progress", node, _PROGRESS_KEYS, "{reps: +1, hold: +1s, strokes: +2}")
        if entries is BAD:
            return BAD
        values: dict[str, Any] = {}
        for key in ("reps", "strokes"):
            if key in entries:
                values[key] = self.increment(key, entries[key][1])
        if "hold" in entries:
            values["hold_s"] = self.increment("hold", entries["hold"][1])
        if "limits" in entries:
            limits = self.mapping("limits", entries["limits"][1], _LIMIT_KEYS, "{reps: 10, hold: 20s, strokes: 16}")
            if limits is not BAD:
                for key in ("reps", "strokes"):
                    if key in limits:
                        values[f"max_{key}"] = self.integer(key, limits[key][1])
                if "hold" in limits:
                    values["max_hold_s"] = self.duration("hold", limits["hold"][1])
            else:
                values["limits"] = BAD
        if "deload" in entries:
            values["deload_weeks"] = self.deload(entries["deload"][1])
        if any(v is BAD for v in values.values()):
            return BAD
        return Progress(**values, locs={key: key_loc for key, (key_loc, _) in entries.items()})

    def increment(self, key: str, node: Node) -> Any:
        """``+1``, ``1``, ``+1s`` or ``+0.5s``: how much a value grows per week (never shrinks)."""
        if self.missing(key, node):
            return BAD
        hint = f"write it like {'+1s' if key == 'hold' else '+1'}"
        text = node.raw.strip() if not isinstance(node.value, (dict, list)) else ""
        if text.startswith("-"):
            return self.bad(node.loc, f"{key}: {_show(text)} makes the program easier each week",
                            "progress only grows; for a lighter week use 'deload: [4]'")
        match = _INCREMENT.match(text) if len(text) < 40 else None
        if key == "hold":
            node = Node(match.group(1), node.loc, match.group(1)) if match else node
            value = self.duration(key, node)
        else:
            inner = match.group(1) if match else ""
            value = int(inner) if inner.isdigit() else self.bad(
                node.loc, f"{key}: expected a whole number of {key} to add each week, got {_show(text)}", hint)
        if value is BAD:
            return BAD
        if value > MAX_INCREMENT[key]:
            unit = " s" if key == "hold" else ""
            return self.bad(node.loc, f"{key}: +{value}{unit} a week is not gradual",
                            f"add at most {MAX_INCREMENT[key]}{unit} per week")
        return value

    def deload(self, node: Node) -> Any:
        items = node.value if isinstance(node.value, list) else [node]
        weeks = []
        for item in items:
            week = self.count("deload week", item, (MAX_DAYS + DAYS_PER_LEVEL - 1) // DAYS_PER_LEVEL, low=2)
            if week is BAD:
                return BAD
            weeks.append(week)
        return tuple(sorted(set(weeks)))


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else "valid keys are: " + ", ".join(choices)


def load_program(path: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS) -> Program:
    """Read and check a program file and every routine it names.

    Raises :class:`VoicecoachError` for one problem and :class:`RoutineErrors` for several
    (each ``path:line:col``; a routine's own problems at its lines).
    """
    display = os.fspath(path)
    root = read_yaml(display, limits=limits)
    if root is None:
        raise VoicecoachError("the program file is empty", location=Location(display), hint=_EMPTY_HINT)
    parser = _ProgramParser(limits, display)
    try:
        program = parser.program(root)
    except TooManyErrors:
        program = None
    if parser.errors:
        raise parser.errors[0] if len(parser.errors) == 1 else RoutineErrors(parser.errors)
    assert program is not None
    return program


def is_program_file(path: str | os.PathLike) -> bool:
    """A YAML file whose top level has ``program:`` (composed only, never constructed; size-limited)."""
    return "program" in (top_level_keys(path) or ())


def program_format() -> dict[str, Any]:
    """The parser's tables, for the JSON Schema (``schema.program_schema``)."""
    return {"top_keys": _TOP_KEYS, "progress_keys": _PROGRESS_KEYS, "limit_keys": _LIMIT_KEYS,
            "max_days": MAX_DAYS, "max_cycle": MAX_CYCLE, "max_routines_per_day": MAX_ROUTINES_PER_DAY,
            "max_increment": MAX_INCREMENT, "rest": REST}

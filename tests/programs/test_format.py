"""programs/format.py: program files load safely, every problem located with a fix."""

from __future__ import annotations

import os
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest

from voicecoach.errors import RoutineErrors, VoicecoachError
from voicecoach.programs.format import is_program_file, load_program, program_root

ROUTINE = """\
routine: Lift
steps:
  - massage: Warm up
    area: cheeks
    strokes: 4
    tempo: 2s
  - exercise: Cheek lift
    area: cheeks
    reps: 3
    hold: 5s
  - massage: Release
    area: cheeks
    strokes: 6
    tempo: 2s
"""

GOOD = """\
program: Two weeks
start: 2026-12-01
days: 14
schedule:
  - [../lift.yaml]
  - ../lift.yaml
  - [../lift.yaml, ../lift.yaml]
  - rest
progress:
  reps: +1
  hold: +1.5s
  strokes: +2
  limits: {reps: 5, hold: 8s, strokes: 10}
  deload: [2]
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "programs").mkdir()
    (tmp_path / "lift.yaml").write_text(ROUTINE)
    return tmp_path


def write(folder: Path, text: str, name: str = "programs/p.yaml") -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def errors_of(path: str) -> list[str]:
    with pytest.raises(VoicecoachError) as caught:
        load_program(path)
    error = caught.value
    return [e.format() for e in (error.errors if isinstance(error, RoutineErrors) else [error])]


def test_a_good_program_loads(folder):
    program = load_program(write(folder, GOOD))
    assert (program.title, program.days, program.start) == ("Two weeks", 14, date(2026, 12, 1))
    assert [len(day.routines) for day in program.schedule] == [1, 1, 2, 0]
    assert program.progress.hold_s == Fraction(3, 2) and program.progress.max_hold_s == 8
    assert program.progress.deload_weeks == (2,)
    assert program.practice_days() == [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14]
    assert program.entry(8).rest and program.entry(9).files == ("../lift.yaml",)
    assert program.schedule[0].loc.line == 5 and is_program_file(program.path)
    assert not is_program_file(folder / "lift.yaml")


def test_the_root_is_the_folder_that_holds_programs(folder):
    assert program_root(folder / "programs" / "p.yaml") == Path(os.path.realpath(folder))
    assert program_root(folder / "p.yaml") == Path(os.path.realpath(folder))
    (folder / "elsewhere").mkdir()
    path = write(folder, GOOD, "elsewhere/p.yaml")  # not in programs/: ../ leaves its folder
    messages = [m for m in errors_of(path) if "outside" in m]
    assert len(messages) == 4  # each entry's routine (the third day names two)
    assert messages[0].startswith(f"{path}:5:6: routine '../lift.yaml' is outside the program's folder; keep routines in")


@pytest.mark.parametrize("text, expected", [
    ("program: P\ndays: 7\nschedule:\n  - [../../etc/passwd.yaml]\n", ":4:6: routine '../../etc/passwd.yaml' is outside"),
    ("program: P\ndays: 7\nschedule:\n  - [/etc/lift.yaml]\n", ":4:6: routine path '/etc/lift.yaml' is absolute"),
    ("program: P\ndays: 7\nschedule:\n  - [../missing.yaml]\n", ":4:6: routine file '../missing.yaml' was not found"),
    ("program: P\ndays: 7\nschedule:\n  - rest\n", ":4:3: the schedule has only rest days"),
    ("program: P\ndays: 0\nschedule:\n  - [../lift.yaml]\n", ":2:7: days: expected a whole number from 1 to 366"),
    ("program: P\ndays: 7\nschedul:\n  - [../lift.yaml]\n", ":3:1: unknown key 'schedul' at the top level of a "
                                                             "program; did you mean 'schedule'?"),
    ("program: P\ndays: 7\nschedule:\n  - [../lift.yaml]\nprogress: {reps: -1}\n",
     ":5:18: reps: '-1' makes the program easier each week; progress only grows"),
    ("program: P\ndays: 7\nschedule:\n  - [../lift.yaml]\nprogress: {reps: +9}\n",
     ":5:18: reps: +9 a week is not gradual; add at most 5 per week"),
    ("program: P\ndays: 7\nschedule:\n  - [../lift.yaml]\nprogress: {hold: +1x}\n", ":5:18: hold: '1x' is not a duration"),
    ("program: P\ndays: 7\nschedule:\n  - [../lift.yaml]\nprogress: {limits: {hodl: 5s}}\n",
     ":5:21: unknown key 'hodl' in limits; did you mean 'hold'?"),
    ("program: P\nstart: tomorrow\ndays: 7\nschedule:\n  - [../lift.yaml]\n", ":2:8: start: 'tomorrow' is not a date"),
    ("program: P\ndays: 7\nschedule:\n  - [../lift.yaml, rest]\n", ":4:20: 'rest' inside a list of routines"),
    ("program: P\ndays: 7\nschedule:\n  - {a: 1}\n", ":4:5: a schedule day must be a list of routine files or 'rest'"),
    ("days: 7\nschedule:\n  - [../lift.yaml]\n", ":1:1: the program has no 'program'"),
    ("program: !!python/object:os.system x\n", ":1:10: YAML tags are not allowed"),
    ("", ":1:1: "),
    ("routine: R\nsteps:\n  - say: Hi\n", ":1:1: this is a routine, not a program; play it with: voicecoach play "),
])
def test_problems_are_located_with_a_fix(folder, text, expected):
    path = write(folder, text)
    messages = errors_of(path)
    assert any(m.startswith(path + expected) for m in messages), messages
    assert all(m.startswith(path) or m.startswith(str(folder)) for m in messages)


def test_a_routine_s_own_problems_are_reported_at_its_lines(folder):
    (folder / "bad.yaml").write_text("routine: Bad\nsteps:\n  - exercise: Lift\n    hodl: 5s\n")
    path = write(folder, "program: P\ndays: 7\nschedule:\n  - [../bad.yaml]\n")
    messages = errors_of(path)
    assert any(m.startswith(f"{folder / 'bad.yaml'}:4:5: unknown key 'hodl'") for m in messages), messages
    assert any(m.startswith(f"{path}:4:6: routine file '../bad.yaml' has problems") for m in messages)


def test_one_day_speaks_one_language(folder):
    (folder / "de.yaml").write_text(ROUTINE.replace("routine: Lift", "routine: Heben\nlanguage: de"))
    path = write(folder, "program: P\ndays: 7\nschedule:\n  - [../lift.yaml, ../de.yaml]\n")
    assert errors_of(path)[0].startswith(f"{path}:4:5: the routines of one day speak different languages: de, en")

"""programs/days.py: a day as it will be played, the rules at day granularity, the plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.model import Exercise, Massage, Say, flat_steps
from voicecoach.pipeline import Settings
from voicecoach.programs.days import check_program, day_routine, program_plan
from voicecoach.programs.format import load_program
from voicecoach.script import load_routine

ROOT = Path(__file__).resolve().parent.parent.parent
PROGRAMS = sorted((ROOT / "scripts" / "programs").glob("*.yaml"))

LIFT = """\
routine: Lift
steps:
  - massage: Warm up
    area: cheeks
    strokes: 4
    tempo: 2s
  - exercise: Cheek lift
    area: cheeks
    reps: 3
    hold: 28s
    count: none
  - massage: Release
    area: cheeks
    strokes: 6
    tempo: 2s
"""


@pytest.fixture
def program_path(tmp_path) -> Path:
    (tmp_path / "programs").mkdir()
    (tmp_path / "lift.yaml").write_text(LIFT)
    (tmp_path / "breathe.yaml").write_text("routine: Calm\nintro: Sit tall.\nsteps:\n  - breathe: In and out\n")
    path = tmp_path / "programs" / "p.yaml"
    path.write_text("program: Long holds\ndays: 30\nschedule:\n  - [../lift.yaml, ../breathe.yaml]\n  - rest\n"
                    "progress: {hold: +1s, reps: +1}\n")
    return path


def test_a_day_is_one_routine_with_progress(program_path):
    program = load_program(program_path)
    assert day_routine(program, 2) is None  # rest
    day15 = day_routine(program, 15)
    assert day15.title == "Long holds, day 15" and day15.loc == program.schedule[0].loc
    steps = [step for step, _ in flat_steps(day15.steps)]
    exercise = next(s for s in steps if isinstance(s, Exercise))
    assert (exercise.reps, exercise.hold_s) == (5, 30)  # two completed weeks
    say = next(s for s in steps if isinstance(s, Say))
    assert say.text == "Calm. Sit tall."  # the second routine is announced
    assert [type(s).__name__ for s in steps][-1] == "Breathe"


def test_week_four_holds_are_found_on_day_22_at_the_routine_s_line(program_path):
    findings = check_program(load_program(program_path))
    vc103 = [f for f in findings if f.finding.rule == "VC103"]
    assert len(vc103) == 1
    (finding,) = vc103
    assert finding.days[0] == 23  # days 22, 24 are rest days here (a 2-day cycle): the first is 23
    line = finding.format()
    assert line.startswith(f"{program_path}:4:5: day 23 (and 3 later days): {program_path.parent.parent / 'lift.yaml'}:7:5: "
                           "VC103 warning: exercise 'Cheek lift' holds for 31 s")
    assert finding.days == (23, 25, 27, 29)


def test_a_week_four_hold_on_day_22(tmp_path):
    (tmp_path / "lift.yaml").write_text(LIFT)
    path = tmp_path / "p.yaml"
    path.write_text("program: P\ndays: 28\nschedule:\n  - [lift.yaml]\nprogress:\n  hold: +1s\n")
    (finding,) = [f for f in check_program(load_program(path)) if f.finding.rule == "VC103"]
    assert finding.days == tuple(range(22, 29))
    assert f"{path}:4:5: day 22 (and 6 later days): {tmp_path / 'lift.yaml'}:7:5: VC103" in finding.format()
    limited = tmp_path / "q.yaml"
    limited.write_text(path.read_text() + "  limits: {hold: 30s}\n")
    assert not [f for f in check_program(load_program(limited)) if f.finding.rule == "VC103"]


def test_check_command_reports_program_findings(program_path):
    result = CliRunner().invoke(cli, ["check", "--strict", str(program_path)])
    assert result.exit_code == 2
    assert "day 23 (and 3 later days)" in result.stderr and "VC103 error" in result.stderr
    ok = CliRunner().invoke(cli, ["program", "check", str(program_path)])
    assert ok.exit_code == 0 and "ok (30 days, 15 practice days, 2 warnings)" in ok.stdout


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_ready_programs_pass_strict_check_on_every_day(path):
    program = load_program(path)
    assert check_program(program) == [] or all(not f.fails(strict=True) for f in check_program(program))
    assert len(program.practice_days()) >= 12
    result = CliRunner().invoke(cli, ["program", "check", "--strict", str(path)])
    assert result.exit_code == 0, result.output


def test_ready_programs_never_strengthen_the_masseter():
    from voicecoach.rules import jaw_closing_work

    for path in PROGRAMS:
        program = load_program(path)
        for day in program.practice_days():
            for step, _ in flat_steps(day_routine(program, day).steps):
                if isinstance(step, Exercise):
                    assert not jaw_closing_work(" ".join((step.name, step.say, step.cue, step.tip)))


def test_preview_day_15_shows_two_weeks_of_progress():
    path = ROOT / "scripts" / "programs" / "thirty-days-face-fitness.yaml"
    result = CliRunner().invoke(cli, ["program", "preview", str(path), "--day", "15", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["day"], data["week"], data["level"]) == (15, 3, 2)
    base = [s for s, _ in flat_steps(load_routine(ROOT / "scripts" / "morning.yaml").steps)]
    grown = data["steps"]
    for written, item in zip(base, grown):
        if isinstance(written, Exercise):
            assert (item["reps"], item["hold_s"]) == (written.reps + 2, float(written.hold_s) + 2)
        if isinstance(written, Massage):
            assert item["strokes"] == min(written.strokes + 4, 14)
    calendar = json.loads(CliRunner().invoke(cli, ["program", "preview", str(path), "--json"]).output)["calendar"]
    assert [d["day"] for d in calendar] == list(range(1, 31)) and calendar[6]["rest"]
    assert calendar[0]["duration_s"] < calendar[28]["duration_s"]  # day 29 is day 1 grown by four weeks
    brow = [[w for w in calendar[d]["work"] if w["title"].startswith("Brow lift")][0] for d in (0, 14, 28)]
    assert [(w["reps"], w["hold_s"]) for w in brow] == [(4, 6), (6, 8), (8, 10)]  # reps capped at 8
    whole = CliRunner().invoke(cli, ["program", "preview", str(path)]).output
    assert "Brow lift against the fingers 6 x 8 s, Cheek lift smile 7 x 8 s" in whole
    text = CliRunner().invoke(cli, ["program", "preview", str(path), "--day", "15"]).output
    assert "day  15  week 3  Morning wake-up" in text and "Brow lift against the fingers - 6 x 8 s" in text
    out_of_range = CliRunner().invoke(cli, ["program", "preview", str(path), "--day", "31"])
    assert out_of_range.exit_code == 2 and "day 31 is not in the program: it has 30 days" in out_of_range.stderr


def test_plan_of_the_whole_calendar_matches_each_day(program_path):
    program = load_program(program_path)
    whole = program_plan(program)["calendar"]
    for day in (1, 9, 29):
        assert whole[day - 1]["duration_s"] == program_plan(program, day=day)["duration_s"]


def test_deep_check_compiles_each_day_as_played(tmp_path):
    # A rest at the end of a routine is long enough alone, but in a day it must also announce the
    # next routine: only the day as played shows it (VC108 at the rest's line, on that day).
    (tmp_path / "a.yaml").write_text("routine: A\nsteps:\n  - massage: Sweep\n    area: face\n    strokes: 2\n"
                                     "    tempo: 2s\n  - rest: 3s\n")
    (tmp_path / "b.yaml").write_text("routine: B\nsteps:\n  - massage: Glide\n    area: face\n    strokes: 2\n"
                                     "    tempo: 2s\n")
    path = tmp_path / "p.yaml"
    path.write_text("program: P\ndays: 2\nschedule:\n  - [a.yaml]\n  - [a.yaml, b.yaml]\n")
    deep = Settings(engine="fake", cache_dir=tmp_path / "cache")
    findings = [f for f in check_program(load_program(path), deep=deep) if f.finding.rule == "VC108"]
    assert [f.days for f in findings] == [(2,)]
    assert findings[0].format().startswith(f"{path}:5:5: day 2: {tmp_path / 'a.yaml'}:7:5: VC108 error: rest: 3 s")

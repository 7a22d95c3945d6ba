"""`voicecoach today` end to end (fake engine, fake audio) and `program status`: the right day, logged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.practice_log import PracticeLog

ROUTINE = """\
routine: {title}
steps:
  - massage: {title} sweep
    area: cheeks
    strokes: 3
    tempo: 1s
"""
FAST = ("--no-keys", "--engine", "fake", "--backend", "fake")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "programs").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.yaml").write_text(ROUTINE.format(title=name.upper()))
    path = tmp_path / "programs" / "p.yaml"
    path.write_text("program: Plan\ndays: 9\nschedule:\n  - [../a.yaml]\n  - [../b.yaml]\n  - rest\n  - [../c.yaml]\n"
                    "progress: {strokes: +2}\n")
    return path


def run(*args: str):
    if args[0] == "today":  # the fake backend's sessions are logged only into a log named explicitly
        args += ("--log-file", os.path.join(os.environ["VOICECOACH_DATA_DIR"], "practice.sqlite3"))
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def played_days(tmp_path: Path) -> list[tuple[str, int, str, bool]]:
    sessions = PracticeLog(tmp_path / "data" / "practice.sqlite3").sessions()
    return [(s.program, s.program_day, s.local_date.isoformat(), s.practised) for s in reversed(sessions)]


def test_today_plays_the_right_day_and_logs_it(env, tmp_path):
    first = run("today", str(env), "--date", "2026-12-01", *FAST)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("Plan: day 1 of 9\nPlan, day 1: 1 step")
    assert "A sweep" in first.output and "finished." in first.output
    second = run("today", "--date", "2026-12-02", *FAST)  # without FILE: the program played last
    assert second.output.startswith("Plan: day 2 of 9\n") and "B sweep" in second.output
    rest = run("today", "--date", "2026-12-03", *FAST)
    assert rest.exit_code == 0 and rest.output.startswith("Plan: day 3 of 9 is a rest day. Next: day 4")
    # two dates missed: the content waits (day 4 follows day 2's rest)
    late = run("today", "--date", "2026-12-06", *FAST)
    assert late.output.startswith("Plan: day 4 of 9\n") and "C sweep" in late.output
    assert played_days(tmp_path) == [("Plan", 1, "2026-12-01", True), ("Plan", 2, "2026-12-02", True),
                                     ("Plan", 4, "2026-12-06", True)]
    real = os.path.realpath(env)
    assert {s.program_path for s in PracticeLog(tmp_path / "data" / "practice.sqlite3").sessions()} == {real}


def test_a_partial_session_is_played_again(env, tmp_path):
    stopped = run("today", str(env), "--date", "2026-12-01", *FAST, "--script-keys", "wait:0.5,q")
    assert stopped.exit_code == 0 and "0 of 1 step completed." in stopped.output
    again = run("today", str(env), "--date", "2026-12-02", *FAST)
    assert again.output.startswith("Plan: day 1 of 9\n")  # not done: still day 1
    assert [d[3] for d in played_days(tmp_path)] == [False, True]
    status = run("program", "status", str(env), "--date", "2026-12-03", "--json")
    data = json.loads(status.output)
    assert data["done"] == [1] and data["day"] == 2
    assert [c["state"] for c in data["calendar"][:3]] == ["partial", "done", "upcoming"]


def test_day_option_and_progress(env, tmp_path):
    result = run("today", str(env), "--day", "9", "--date", "2026-12-01", *FAST)
    assert result.output.startswith("Plan: day 9 of 9\nPlan, day 9: 1 step")
    assert "stroke 5 of 5" in result.output  # 3 strokes + 2 for the completed week
    out = run("today", str(env), "--day", "10", *FAST)
    assert out.exit_code == 2 and f"{env}:2:1: day 10 is not in the program: it has 9 days" in out.stderr


def test_without_a_program_played_yet(env):
    result = run("today", *FAST)
    assert result.exit_code == 2 and "no program played yet; name one" in result.stderr


def test_status_shows_day_streak_next_and_heatmap(env):
    for date in ("2026-11-30", "2026-12-01"):  # a Monday and a Tuesday
        run("today", str(env), "--date", date, *FAST)
    result = run("program", "status", str(env), "--date", "2026-12-02")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Plan: day 3 of 9, week 1"
    assert lines[1] == "Done: 2 of 7 practice days; streak: 2 days"
    assert lines[2].startswith("Today: rest (day 3). Next: day 4")
    assert lines[5].startswith("Nov 30    1#   2# [ 3-]  4.   5.   6.   7-")
    assert lines[-1].startswith("day and state: # done  + partial")

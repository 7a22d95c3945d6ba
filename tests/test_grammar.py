"""grammar.py and the messages that count things: no "1 steps", no "the cheeks has"."""

from __future__ import annotations

import doctest

import pytest
from click.testing import CliRunner

from voicecoach import grammar
from voicecoach.cli import cli
from voicecoach.model import Area
from voicecoach.play.session import session_summary, streak_line
from voicecoach.play.player import SessionResult
from voicecoach.rules import check_routine
from voicecoach.script import parse_routine


def test_count_and_its_example():
    assert doctest.testmod(grammar).failed == 0
    assert grammar.count(1, "entry", "entries") == "1 entry" and grammar.count(2, "entry", "entries") == "2 entries"
    assert grammar.noun(0, "step") == "steps"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, [*map(str, args)], catch_exceptions=False)


ONE_STEP = "routine: One\nsteps:\n  - say: {text}\n"


def test_check_and_compile_count_one_step_and_one_clip(run, tmp_path):
    routine = tmp_path / "one.yaml"
    routine.write_text(ONE_STEP.format(text="Hello there."), encoding="utf-8")
    assert run("check", routine).stdout == f"{routine}: ok (1 step)\n"
    out = tmp_path / "one.wav"
    first = run("compile", routine, "-o", out, "--engine", "fake")
    assert first.exit_code == 0 and ", 1 step, " in first.output
    routine.write_text(ONE_STEP.format(text="Hello again."), encoding="utf-8")  # one new phrase
    again = run("compile", routine, "-o", out, "--engine", "fake")
    assert again.exit_code == 0 and " 1 clip synthesized, " in again.output, again.output


def test_a_plural_area_takes_a_plural_verb():
    hold = "  - exercise: {name}\n    area: {area}\n    reps: 7\n    hold: 30s\n"
    for area, verb in (("cheeks", "have"), ("jaw", "has")):
        text = "routine: T\nsteps:\n" + hold.format(name="First", area=area) + hold.format(name="Second", area=area)
        found = [f for f in check_routine(parse_routine(text, path="r.yaml")) if f.rule == "VC104"]
        assert found and f"the {area} {verb} held for " in found[0].message
    assert [a.value for a in Area if a.is_plural_noun] == ["brows", "eyes", "cheeks", "temples"]


def test_session_lines_count_properly():
    one = SessionResult(played_s=61.0, seconds_per_step=(61.0,), steps_completed=1, steps_total=1, finished=True)
    assert session_summary(one) == "Played 1:01: 1 of 1 step completed, finished."
    assert streak_line(1) == "Logged. Practice streak: 1 day."


def test_a_looped_session_counts_steps_per_pass_and_says_how_many_passes():
    looped = SessionResult(played_s=900.0, seconds_per_step=(300.0,) * 5, steps_completed=5, steps_total=5,
                           finished=True, passes=3)
    assert session_summary(looped) == "Played 15:00: 5 of 5 steps completed, 3 passes, finished."

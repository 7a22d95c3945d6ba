"""rules.py: each rule fires on a routine that breaks it and stays quiet on one that does not;
and `check` prints the findings, with --strict and --deep."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.errors import Location
from voicecoach.pipeline import Settings
from voicecoach.rules import RULES, Finding, Severity, check_routine, jaw_closing_work
from voicecoach.script import parse_routine

WARM_UP = "  - massage: Warm-up taps\n    area: face\n    strokes: 4\n"


def routine(body: str) -> str:
    """A routine titled Test with these steps."""
    return f"routine: Test\nsteps:\n{body}"


def steps(*blocks: str) -> str:
    """Step blocks written from column 1, indented into a step list."""
    return "".join(textwrap.indent(textwrap.dedent(block).strip("\n") + "\n", "  ") for block in blocks)


def exercise(name: str = "Cheek lift", area: str | None = "cheeks", **fields: object) -> str:
    lines = [f"- exercise: {name}"] + ([f"  area: {area}"] if area else [])
    lines += [f"  {key}: {value}" for key, value in fields.items()]
    return "\n".join(lines)


def massage(name: str = "Release", area: str = "cheeks", **fields: object) -> str:
    return "\n".join([f"- massage: {name}", f"  area: {area}", "  strokes: 4"]
                     + [f"  {key}: {value}" for key, value in fields.items()])


def findings(text: str, **kwargs) -> list[Finding]:
    return check_routine(parse_routine(text, path="r.yaml"), **kwargs)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


WARM = massage("Warm-up taps", "face")
TIP = {"tip": "Keep the skin smooth under your fingers."}

# rule -> (a routine that triggers it, the step line it points at, a near-identical one that does not)
CASES = {
    "VC100": (steps(WARM, exercise("Lift", area=None), massage()), "exercise: Lift",
              steps(WARM, exercise("Lift"), massage())),
    "VC101": (steps(WARM, massage(), exercise()), "exercise: Cheek lift",
              steps(WARM, exercise(), massage())),
    "VC102": (steps(WARM, exercise("Jaw press", "jaw", say="Clench your teeth against your fist."),
                    massage(area="jaw")), "exercise: Jaw press",
              steps(WARM, exercise("Jaw opening", "jaw", say="Open your mouth slowly against your fist.",
                                   tip="Never bite down against resistance."), massage(area="jaw"))),
    "VC103": (steps(WARM, exercise(hold="31s"), massage()), "exercise: Cheek lift",
              steps(WARM, exercise(hold="30s"), massage())),
    "VC104": (steps(WARM, exercise("First", reps=6, hold="30s"), exercise("Second", reps=1, hold="1s"),
                    massage()), "exercise: Second",
              steps(WARM, exercise("First", reps=6, hold="30s"), exercise("Second", area="neck", hold="1s"),
                    massage(), massage(area="neck"))),
    "VC105": (steps(WARM, exercise("Brow lift", "forehead"), massage(area="forehead")), "exercise: Brow lift",
              steps(WARM, exercise("Brow lift", "forehead", **TIP), massage(area="forehead"))),
    "VC106": (steps(exercise(), massage()), "exercise: Cheek lift",
              steps(massage(), exercise(), massage())),
    "VC107": (steps(WARM, "- rest: 21m"), "routine: Test",
              steps(WARM, "- rest: 19m")),
    "VC109": (steps(WARM, "- massage: Quick taps\n  area: jaw\n  strokes: 4\n  tempo: 1s\n"
                          "  cue: sweep slowly along the jaw line"), "massage: Quick taps",
              steps(WARM, "- massage: Quick taps\n  area: jaw\n  strokes: 4\n  tempo: 3s\n"
                          "  cue: sweep slowly along the jaw line")),
}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_where_it_should_and_only_there(rule_id):
    bad, needle, good = CASES[rule_id]
    bad_text, good_text = routine(bad), routine(good)
    found = findings(bad_text)
    assert [f.rule for f in found] == [rule_id], [f.format() for f in found]
    assert found[0].location == Location("r.yaml", line_of(bad_text, needle), 1 if needle.startswith("routine") else 5)
    assert found[0].message and "\n" not in found[0].message
    assert findings(good_text) == [], [f.format() for f in findings(good_text)]


def test_every_rule_is_tested_and_documented():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(CASES) | {"VC108"}  # VC108 needs real compiles: tested below
    for each in RULES:
        assert each.reason and "\n" not in each.reason


def test_rule_ids_are_checked():
    from voicecoach.rules import rule

    with pytest.raises(ValueError):
        rule("VC101", Severity.WARNING, "taken")
    with pytest.raises(ValueError):
        rule("X1", Severity.WARNING, "malformed")


@pytest.mark.parametrize("text", [
    "Clench your teeth and hold.",
    "Bite down on the trainer.",
    "Use a jaw trainer for ten reps.",
    "Press your back teeth together firmly.",
    "Chew slowly with your mouth closed.",
    "Close your mouth against the resistance of your hand.",
    "Tighten the masseter.",
    "Open wide, then clench.",
])
def test_jaw_closing_work_is_recognized(text):
    assert jaw_closing_work(text)


@pytest.mark.parametrize("text", [
    "Never bite down against resistance.",
    "Do not clench.",
    "Relax the masseter and let the jaw hang.",
    "Keep your teeth apart, without clenching.",
    "If you clench at night, this helps.",
    "Open your mouth slowly against your fist.",
    "Unclench your jaw.",
    "Close your eyes and breathe.",
])
def test_warnings_and_releases_are_not_jaw_closing_work(text):
    assert jaw_closing_work(text) is None


def test_jaw_closing_words_in_a_massage_are_fine():
    text = routine(steps(massage("Masseter release", "jaw", say="Find the muscle that bulges when you clench.")))
    assert findings(text) == []


def test_unreleased_exercise_inside_a_repeat():
    # round 1's exercise is released by round 2's massage, but the last round's is not
    looped = routine(steps(WARM, "- repeat: 2\n  steps:\n" + textwrap.indent(massage() + "\n" + exercise(), "    ")))
    assert [f.rule for f in findings(looped)] == ["VC101"]
    released = routine(steps(WARM, "- repeat: 2\n  steps:\n" + textwrap.indent(exercise() + "\n" + massage(), "    ")))
    assert findings(released) == []


def test_holds_in_every_round_side_and_set_add_up():
    # 4 reps x 2 sets x 2 sides x 6 s = 96 s a round; the second round passes 3 minutes
    block = exercise(reps=4, sets=2, hold="6s", rest="5s", sides="[left, right]")
    text = routine(steps(WARM, "- repeat: 2\n  steps:\n" + textwrap.indent(block, "    "), massage()))
    assert [f.rule for f in findings(text)] == ["VC104"]
    assert "3:12" in findings(text)[0].message


def test_a_repeated_step_is_reported_once():
    text = routine(steps(WARM, "- repeat: 3\n  steps:\n" + textwrap.indent(exercise(hold="40s"), "    "), massage()))
    assert [f.rule for f in findings(text)] == ["VC103"]


def test_findings_in_included_files_point_there(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "block.yaml").write_text("steps:\n" + steps(exercise()))
    main = tmp_path / "main.yaml"
    main.write_text(routine(steps(WARM, "- include: lib/block.yaml")))
    from voicecoach.script import load_routine

    found = check_routine(load_routine(main))
    assert [(f.rule, f.location) for f in found] == [("VC101", Location(str(tmp_path / "lib" / "block.yaml"), 2, 5))]


def test_format_and_severity():
    finding = Finding("VC101", Severity.WARNING, "why", Location("r.yaml", 3, 5))
    assert finding.format() == "r.yaml:3:5: VC101 warning: why"
    assert finding.format(strict=True) == "r.yaml:3:5: VC101 error: why"
    assert not finding.fails(strict=False) and finding.fails(strict=True)
    note = Finding("VC107", Severity.INFO, "long", None)
    assert note.format(strict=True) == "VC107 info: long" and not note.fails(strict=True)
    assert Finding("VC108", Severity.ERROR, "x", None).fails(strict=False)


TOO_FAST = routine(steps(WARM, "- massage: Quick taps\n  area: jaw\n  strokes: 4\n  tempo: 1s\n"
                               "  cue: sweep slowly along the jaw line"))


def test_deep_reports_speech_longer_than_its_slot(tmp_path):
    settings = Settings(engine="fake", cache_dir=tmp_path)
    found = findings(TOO_FAST, deep=settings)
    assert [(f.rule, f.severity) for f in found] == [("VC108", Severity.ERROR)]
    assert found[0].location == Location("r.yaml", line_of(TOO_FAST, "Quick taps"), 5)
    assert "the stroke cue 'sweep slowly along the jaw line' takes" in found[0].message
    assert "set tempo to at least" in found[0].message
    # without deep nothing is synthesized: the estimate warns (VC109)
    assert [(f.rule, f.severity) for f in findings(TOO_FAST)] == [("VC109", Severity.WARNING)]
    assert findings(TOO_FAST.replace("tempo: 1s", "tempo: 4s"), deep=settings) == []


def test_long_routine_measured_with_deep_is_not_estimated(tmp_path):
    found = findings(routine(steps(WARM, "- rest: 21m")), deep=Settings(engine="fake", cache_dir=tmp_path))
    assert [f.rule for f in found] == ["VC107"]
    assert "lasts 21:" in found[0].message and "about" not in found[0].message


# ---------------------------------------------------------------------------------------
# The check command


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    return lambda *args: CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_check_prints_warnings_and_exits_0(run, tmp_path):
    path = write(tmp_path, "w.yaml", routine(CASES["VC106"][0]))
    result = run("check", path)
    assert result.exit_code == 0
    assert result.stdout == f"{path}: ok (2 steps, 1 warning)\n"
    assert result.stderr.startswith(f"{path}:3:5: VC106 warning: exercise 'Cheek lift' comes before any massage;")


def test_check_strict_makes_warnings_errors(run, tmp_path):
    warned = write(tmp_path, "w.yaml", routine(CASES["VC101"][0]))
    fine = write(tmp_path, "f.yaml", routine(CASES["VC101"][2]))
    result = run("check", "--strict", warned, fine)
    assert result.exit_code == 2
    line = line_of(routine(CASES["VC101"][0]), "exercise:")
    assert f"{warned}:{line}:5: VC101 error: exercise 'Cheek lift' works the cheeks" in result.stderr
    assert result.stdout == f"{fine}: ok (3 steps)\n"


def test_check_strict_lets_info_notes_pass(run, tmp_path):
    path = write(tmp_path, "long.yaml", routine(CASES["VC107"][0]))
    result = run("check", "--strict", path)
    assert result.exit_code == 0
    assert result.stderr.startswith(f"{path}:1:1: VC107 info: the routine lasts about 21:")


def test_check_deep_reports_timing_as_an_error(run, tmp_path):
    path = write(tmp_path, "fast.yaml", TOO_FAST)
    assert run("check", path).exit_code == 0
    result = run("check", "--deep", "--engine", "fake", path)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"{path}:{line_of(TOO_FAST, 'Quick taps')}:5: VC108 error: massage 'Quick taps': ")


def test_plain_check_finds_what_compile_would_refuse(run, tmp_path):
    (tmp_path / "noise.mp3").write_bytes(b"ID3 but not really an mp3" * 40)
    text = routine(steps(WARM)).replace("steps:", "music:\n  file: noise.mp3\nsteps:")
    path = write(tmp_path, "music.yaml", text)
    result = run("check", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:3:3: music file 'noise.mp3' cannot be decoded"), result.stderr
    path = write(tmp_path, "words.yaml", routine(steps(WARM)).replace("steps:", "language: xx\nsteps:"))
    result = run("check", path)
    assert result.exit_code == 2 and result.stderr.startswith(f"{path}:2:1: no cue vocabulary for language 'xx'")


def test_plain_check_warns_about_likely_overflows_with_advice(run, tmp_path):
    path = write(tmp_path, "fast.yaml", routine(CASES["VC109"][0]))
    result = run("check", path)
    assert result.exit_code == 0, result.output
    assert "VC109 warning: likely too long" in result.stderr and "set tempo to at least" in result.stderr
    assert run("check", "--strict", path).exit_code == 2


def test_check_errors_are_unchanged(run, tmp_path):
    path = write(tmp_path, "bad.yaml", "routine: Bad\nsteps:\n  - exercise: Lift\n    hodl: 5s\n")
    result = run("check", "--strict", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:4:5: unknown key 'hodl' in exercise; did you mean 'hold'?")
    assert "VC" not in result.stderr and "Traceback" not in result.output

"""script.py: good routines parse into the model; every kind of bad input is one clear error."""

from __future__ import annotations

import dataclasses
import os
import re
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicecoach import script
from voicecoach.errors import Location, RoutineErrors, VoicecoachError
from voicecoach.model import (
    Area,
    Breathe,
    CountMode,
    Exercise,
    Massage,
    Pressure,
    Repeat,
    Rest,
    Routine,
    Say,
    Side,
    flat_steps,
)
from voicecoach.script import DEFAULT_LIMITS, Limits, load_routine, parse_routine

HERE = Path(__file__).parent
BAD = HERE / "bad_scripts"
SCRIPTS = HERE.parent / "scripts"
EMPTY = "the routine file is empty; start it with 'routine: Title' and a list of 'steps:'"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def error_of(call, *args, **kwargs) -> VoicecoachError:
    with pytest.raises(VoicecoachError) as info:
        call(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------------------------------
# Good routines

FULL = """\
routine: Full routine
description: Every kind of step.
language: pt-BR
voice: Luciana
rate: 1.1
intro: Sit up straight.
outro: Well done.
engine: espeak        # reserved for later: accepted and ignored
music: {file: calm.mp3}
steps:
  - say: Welcome.
  - exercise: Brow lift
    area: brows
    say: Lift your brows.
    cue: Lift.
    reps: 4
    hold: 1.5s
    release: 3s
    sets: 2
    rest: 1m30s
    sides: [left, right]
    count: up
    tip: Keep the forehead smooth.
  - massage: Cheek circles
    area: cheeks
    say: Fingers on the cheeks.
    stroke: Small circles.
    strokes: 6
    tempo: 2.5
    sides: left
    count: true
    cue: circle
    pressure: firm
    tip: Gently.
  - rest: 20s
  - breathe: Calm
    inhale: 4s
    hold: 2s
    exhale: 250ms
    cycles: 5
    say: Slowly.
  - repeat: 2
    steps:
      - say: Again.
      - rest: 5
"""


def test_every_kind_of_step_and_setting() -> None:
    routine = parse_routine(FULL, path="full.yaml")
    assert (routine.title, routine.description, routine.language, routine.voice) == (
        "Full routine", "Every kind of step.", "pt-BR", "Luciana")
    assert routine.rate == Fraction(11, 10)
    assert (routine.intro, routine.outro, routine.path) == ("Sit up straight.", "Well done.", "full.yaml")
    assert routine.loc == Location("full.yaml", 1, 1)
    say, exercise, massage, rest, breathe, repeat = routine.steps
    assert say == Say("Welcome.", Location("full.yaml", 11, 5))
    assert exercise == Exercise(
        name="Brow lift", loc=Location("full.yaml", 12, 5), area=Area.BROWS, say="Lift your brows.",
        tip="Keep the forehead smooth.", cue="Lift.", reps=4, hold_s=Fraction(3, 2), release_s=Fraction(3),
        sets=2, rest_s=Fraction(90), sides=(Side.LEFT, Side.RIGHT), count=CountMode.UP)
    assert massage == Massage(
        name="Cheek circles", loc=Location("full.yaml", 24, 5), area=Area.CHEEKS, say="Fingers on the cheeks.",
        stroke="Small circles.", strokes=6, tempo_s=Fraction(5, 2), sides=(Side.LEFT,), count=True, cue="circle",
        pressure=Pressure.FIRM, tip="Gently.")
    assert rest == Rest(Fraction(20), Location("full.yaml", 35, 5))
    assert breathe == Breathe(name="Calm", loc=Location("full.yaml", 36, 5), inhale_s=Fraction(4),
                              hold_s=Fraction(2), exhale_s=Fraction(1, 4), cycles=5, say="Slowly.")
    inner = (Say("Again.", Location("full.yaml", 44, 9)), Rest(Fraction(5), Location("full.yaml", 45, 9)))
    assert repeat == Repeat(2, inner, Location("full.yaml", 42, 5))
    assert len(flat_steps(routine.steps)) == 9


def test_field_locations_point_at_each_key() -> None:
    exercise = parse_routine(FULL, path="full.yaml").steps[1]
    assert exercise.locs["exercise"] == exercise.loc == Location("full.yaml", 12, 5)
    assert exercise.locs["hold"] == Location("full.yaml", 17, 5)
    assert exercise.locs["sides"] == Location("full.yaml", 21, 5)
    assert "tempo" not in exercise.locs


def test_defaults() -> None:
    routine = parse_routine("routine: R\nsteps:\n  - exercise: E\n  - massage: M\n  - breathe: B\n")
    assert (routine.language, routine.voice, routine.rate, routine.intro, routine.outro, routine.description) == (
        "en", None, Fraction(1), "", "", "")
    exercise, massage, breathe = routine.steps
    assert exercise == Exercise("E", exercise.loc)
    assert (exercise.reps, exercise.hold_s, exercise.release_s, exercise.sets, exercise.rest_s) == (
        1, 5, 2, 1, 10)
    assert (exercise.sides, exercise.count, exercise.area) == ((Side.BOTH,), CountMode.DOWN, None)
    assert massage == Massage("M", massage.loc)
    assert (massage.strokes, massage.tempo_s, massage.count, massage.pressure) == (8, 2, False, None)
    assert breathe == Breathe("B", breathe.loc)
    assert (breathe.inhale_s, breathe.hold_s, breathe.exhale_s, breathe.cycles) == (4, None, 6, 3)


@pytest.mark.parametrize("written, seconds", [
    ("5s", Fraction(5)), ("1.5s", Fraction(3, 2)), ("2m", Fraction(120)), ("1m30s", Fraction(90)),
    ("7", Fraction(7)), ("2.5", Fraction(5, 2)), ("0.1", Fraction(1, 10)), ("250ms", Fraction(1, 4)),
    ("1h", Fraction(3600)), ("'3 s'", Fraction(3)),
])
def test_durations(written: str, seconds: Fraction) -> None:
    routine = parse_routine(f"routine: R\nsteps:\n  - rest: {written}\n  - exercise: E\n    hold: {written}\n")
    assert routine.steps[0].duration_s == seconds
    assert routine.steps[1].hold_s == seconds


@pytest.mark.parametrize("written, sides", [
    ("left", (Side.LEFT,)), ("[right]", (Side.RIGHT,)), ("[left, right]", (Side.LEFT, Side.RIGHT)),
    ("[right, left]", (Side.RIGHT, Side.LEFT)), ("[both]", (Side.BOTH,)), ("both", (Side.BOTH,)),
    ("[Left, RIGHT]", (Side.LEFT, Side.RIGHT)),
])
def test_sides(written: str, sides: tuple[Side, ...]) -> None:
    routine = parse_routine(f"routine: R\nsteps:\n  - massage: M\n    sides: {written}\n")
    assert routine.steps[0].sides == sides


def test_text_is_stripped_and_collapsed() -> None:
    text = ('routine: "  Title  "\nsteps:\n  - say: |\n      Two\n      lines.\n'
            '  - say: "tab\\there\\x01 and\\n newline "\n')
    routine = parse_routine(text)
    assert routine.title == "Title"
    assert [step.text for step in routine.steps] == ["Two lines.", "tab here and newline"]


def test_yaml_details() -> None:
    # BOM, CRLF, a date and a sexagesimal number are all ordinary input
    text = ("\ufeffroutine: R\r\nsteps:\r\n  - say: 2024-01-01\r\n  - rest: 1:30\r\n"
            "  - exercise: E\r\n    reps: 0x10\r\n")
    routine = parse_routine(text.encode("utf-8"), path="crlf.yaml")
    assert routine.steps[0] == Say("2024-01-01", Location("crlf.yaml", 3, 5))
    assert routine.steps[1].duration_s == 90
    assert routine.steps[2].reps == 16
    assert parse_routine("voice:\nroutine: R\nsteps: [{say: hi}]\n").voice is None


def test_example_scripts_load() -> None:
    for path in sorted(SCRIPTS.glob("*.yaml")):
        routine = load_routine(path)
        assert routine.steps and routine.path == str(path)


def test_includes_are_flattened_and_keep_their_locations(tmp_path: Path) -> None:
    main = write(tmp_path / "main.yaml", "routine: Main\nsteps:\n  - say: first\n  - include: lib/block.yaml\n"
                 "  - repeat: 2\n    steps:\n      - include: lib/full.yaml\n  - say: last\n")
    write(tmp_path / "lib/block.yaml", "# a block\nsteps:\n  - rest: 3s\n  - include: sub/deeper.yaml\n")
    write(tmp_path / "lib/sub/deeper.yaml", "steps:\n  - say: deep\n")  # relative to lib/, its includer
    write(tmp_path / "lib/full.yaml", "routine: Ignored title\nintro: ignored\nsteps:\n  - say: from full\n")
    routine = load_routine(main)
    block, deeper, full = tmp_path / "lib/block.yaml", tmp_path / "lib/sub/deeper.yaml", tmp_path / "lib/full.yaml"
    assert routine.title == "Main" and routine.intro == ""
    assert routine.steps == (
        Say("first", Location(str(main), 3, 5)),
        Rest(Fraction(3), Location(str(block), 3, 5)),
        Say("deep", Location(str(deeper), 2, 5)),
        Repeat(2, (Say("from full", Location(str(full), 4, 5)),), Location(str(main), 5, 5)),
        Say("last", Location(str(main), 8, 5)),
    )


def test_include_relative_path_names_included_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "main.yaml", "routine: M\nsteps:\n  - include: lib/a.yaml\n")
    write(tmp_path / "lib/a.yaml", "steps:\n  - say: hi\n")
    monkeypatch.chdir(tmp_path)
    assert load_routine("main.yaml").steps[0].loc == Location(os.path.join("lib", "a.yaml"), 2, 5)


def test_parse_routine_with_base_dir_can_include(tmp_path: Path) -> None:
    write(tmp_path / "part.yaml", "steps: [{say: included}]\n")
    routine = parse_routine("routine: R\nsteps:\n  - include: part.yaml\n", base_dir=tmp_path)
    assert routine.steps[0].text == "included"


def test_same_file_included_many_times_is_parsed_once(tmp_path: Path) -> None:
    write(tmp_path / "block.yaml", "steps:\n" + "  - include: leaf.yaml\n" * 50)
    write(tmp_path / "leaf.yaml", "steps:\n  - rest: 1s\n")
    main = write(tmp_path / "main.yaml", "routine: M\nsteps:\n" + "  - include: block.yaml\n" * 50)
    routine = load_routine(main, limits=Limits(max_steps=2500))
    assert len(routine.steps) == 2500
    error = error_of(load_routine, main, limits=Limits(max_steps=2499))
    assert "more than the limit of 2499 steps" in error.message
    assert error.location == Location(str(main), 52, 5)


# ---------------------------------------------------------------------------------------
# The corpus of bad scripts: the first line of each says what must be reported

EXPECT = re.compile(r"# expect: (?:(?P<file>[^\s:]+\.yaml):)?(?P<line>\d+):(?P<col>\d+): (?P<text>.+)")


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda path: path.stem)
def test_bad_script(path: Path) -> None:
    expect = EXPECT.fullmatch(path.read_text(encoding="utf-8").splitlines()[0])
    assert expect, "the first line must be '# expect: [file:]line:col: message; hint'"
    error = error_of(load_routine, path)
    assert type(error) is VoicecoachError, error.format()  # exactly one problem
    where = os.path.normpath(path.parent / expect["file"]) if expect["file"] else str(path)
    assert error.location == Location(where, int(expect["line"]), int(expect["col"]))
    assert error.format() == f"{error.location}: {expect['text']}"


def test_corpus_covers_every_kind_of_bad_input() -> None:
    kinds = {  # each kind of bad input the brief names -> its corpus file(s); more are in GENERATED
        "only comments": ["comments_only"], "tab indentation": ["tab_indent"],
        "YAML syntax": ["syntax_error", "unclosed_quote"], "top level not a mapping": ["top_not_mapping"],
        "unknown keys": ["unknown_key", "unknown_top_key", "rest_extra_key", "misspelled_kind"],
        "two kind keys": ["two_kinds", "say_and_rest"], "no kind key": ["no_kind", "step_not_mapping"],
        "wrong types": ["wrong_type", "say_number", "massage_count_not_bool", "fields_under_name", "no_value"],
        "zero or negative": ["zero_reps", "negative_hold", "zero_release", "zero_rest_step", "bad_duration"],
        "unknown enum values": ["unknown_side", "unknown_area", "unknown_count_mode", "unknown_pressure",
                                "duplicate_side", "both_and_left", "bad_language", "rate_range"],
        "tags": ["python_tag", "custom_tag"], "alias bombs": ["alias_bomb", "recursive_alias"],
        "duplicate keys": ["duplicate_key"], "several documents": ["multiple_documents"],
        "includes": ["include_outside", "include_missing", "include_cycle", "include_absolute",
                     "include_bad_block"],
        "absurd sizes": ["reps_limit", "too_many_steps"],
        "missing parts": ["no_title", "no_steps", "empty_steps", "repeat_without_steps", "empty_name"],
    }
    listed = {name for names in kinds.values() for name in names}
    assert listed == {path.stem for path in BAD.glob("*.yaml")}
    assert {"empty", "binary", "latin1", "long_text"} <= GENERATED.keys()


# Bad files a comment cannot describe (or that are better made at run time): bytes -> expected.
GENERATED = {
    "empty": (b"", f"1:1: {EMPTY}"),
    "whitespace_only": (b"  \n\n   \r\n", f"1:1: {EMPTY}"),
    "document_marker_only": (b"---\n", f"1:1: {EMPTY}"),
    "binary": (b"routine: x\n\x00\x01\x02\xff", "1:1: this is a binary file, not a YAML routine; "
               "choose the .yaml routine file"),
    "latin1": ("routine: Cafe\nsteps:\n  - say: Voilà\n".encode("latin-1"),
               "3:14: byte 0xE0 is not valid UTF-8; save the file as UTF-8"),
    "utf16": ("routine: x\n".encode("utf-16"), "1:1: the file is UTF-16, not UTF-8; save the file as UTF-8"),
    "control_character": (b"routine: x\nsteps:\n  - say: ring\x07\n",
                          "3:14: the file contains the character U+0007, which YAML does not allow; "
                          "remove it; a routine is plain text"),
    "long_text": (f"routine: x\nsteps:\n  - say: {'a' * 2001}\n".encode(),
                  "3:10: say: the text is 2001 characters, more than the limit of 2000; "
                  "shorten it or split it over several steps"),
    "long_number": (f"routine: x\nsteps:\n  - exercise: E\n    reps: {'9' * 5000}\n".encode(),
                    "4:11: the number '9999999999999999999999999999999999999999...' is too long; "
                    "use a smaller number"),
    "deep_nesting": (b"routine: x\nsteps: " + b"[" * 100 + b"]" * 100 + b"\n",
                     "2:72: the YAML is nested more than 64 levels deep; flatten the lists and mappings"),
    "very_deep_nesting": (b"routine: x\nsteps: " + b"[" * 5000, "1:1: the YAML is nested too deeply; "
                          "flatten the lists and mappings"),
    "infinite_duration": (b"routine: x\nsteps:\n  - rest: .inf\n",
                          "3:11: rest: expected a finite duration; "
                          "write a positive duration like 5s, 1.5s, 2m or 1m30s"),
    "duration_too_long": (b"routine: x\nsteps:\n  - rest: 2h\n",
                          "3:11: rest: 2h is more than the limit of 3600 seconds; use a shorter duration"),
}


@pytest.mark.parametrize("name", GENERATED)
def test_generated_bad_file(tmp_path: Path, name: str) -> None:
    data, expected = GENERATED[name]
    path = write(tmp_path / f"{name}.yaml", data)
    error = error_of(load_routine, path)
    assert type(error) is VoicecoachError
    assert error.format() == f"{path}:{expected}"


def test_file_too_large_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "huge.yaml", b"# " + b"x" * DEFAULT_LIMITS.max_file_bytes)

    def no_open(*args, **kwargs):
        raise AssertionError("the file was opened")

    monkeypatch.setattr(script, "open", no_open, raising=False)
    error = error_of(load_routine, path)
    assert error.format() == (f"{path}:1:1: the file is 1000002 bytes, more than the limit of 1000000; "
                              "a routine is a short text file; check that this is the right file")


def test_text_too_large() -> None:
    error = error_of(parse_routine, "routine: x\n" * 10, limits=Limits(max_file_bytes=100))
    assert error.message == "the file is 110 bytes, more than the limit of 100"


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert error_of(load_routine, tmp_path / "nope.yaml").format() == (
        f"{tmp_path / 'nope.yaml'}:1:1: routine file not found; check the path")
    assert error_of(load_routine, tmp_path).message == "this is a folder, not a routine file"


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "secret.yaml", "steps:\n  - say: secret\n")
    (tmp_path / "routines").mkdir()
    (tmp_path / "routines/link.yaml").symlink_to(tmp_path / "secret.yaml")
    main = write(tmp_path / "routines/main.yaml", "routine: M\nsteps:\n  - include: link.yaml\n")
    error = error_of(load_routine, main)
    assert error.format() == (f"{main}:3:14: include 'link.yaml' is outside the routine's folder; "
                              "keep included files in the main routine's folder or below it")


def test_include_may_not_leave_the_top_level_folder(tmp_path: Path) -> None:
    # lib/a.yaml may include ../b.yaml (still inside), but not ../../c.yaml
    write(tmp_path / "c.yaml", "steps: [{say: c}]\n")
    main = write(tmp_path / "top/main.yaml", "routine: M\nsteps:\n  - include: lib/a.yaml\n")
    write(tmp_path / "top/lib/a.yaml", "steps:\n  - include: ../b.yaml\n")
    write(tmp_path / "top/b.yaml", "steps:\n  - include: ../c.yaml\n")
    error = error_of(load_routine, main)
    assert error.location == Location(os.path.normpath(tmp_path / "top/b.yaml"), 2, 14)
    assert "outside the routine's folder" in error.message


def test_include_depth(tmp_path: Path) -> None:
    for level in range(1, 11):
        write(tmp_path / f"level{level}.yaml",
              f"steps:\n  - say: level {level}\n  - include: level{level + 1}.yaml\n")
    write(tmp_path / "level11.yaml", "steps:\n  - say: bottom\n")
    main = write(tmp_path / "main.yaml", "routine: M\nsteps:\n  - include: level1.yaml\n")
    error = error_of(load_routine, main)  # main -> level1 ... level8 is 8 deep; level8's include is the 9th
    assert error.format() == (f"{tmp_path / 'level8.yaml'}:3:14: includes are nested more than 8 levels deep; "
                              "include the file from a higher level")
    assert len(load_routine(main, limits=Limits(max_include_depth=11)).steps) == 11
    write(tmp_path / "level8.yaml", "steps:\n  - say: stop\n")
    assert len(load_routine(main).steps) == 8


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    main = write(tmp_path / "main.yaml", "routine: M\nsteps:\n  - include: main.yaml\n")
    assert error_of(load_routine, main).message == "include cycle: main.yaml -> main.yaml"


def test_include_needs_a_folder() -> None:
    error = error_of(parse_routine, "routine: M\nsteps:\n  - include: x.yaml\n")
    assert error.format().startswith("<routine>:3:14: cannot include files")


def test_all_field_problems_are_collected(tmp_path: Path) -> None:
    write(tmp_path / "part.yaml", "steps:\n  - rest: soon\n")
    main = write(tmp_path / "main.yaml", """\
routine: 5
rate: fast
steps:
  - exercise: E
    reps: five
    hold: 0
    sides: [left, up]
  - include: part.yaml
  - massage: M
    strokes: 2000
  - say: ok
""")
    error = error_of(load_routine, main)
    assert isinstance(error, RoutineErrors)
    assert [(Path(e.location.path).name, e.location.line, e.location.col) for e in error.errors] == [
        ("main.yaml", 1, 10), ("main.yaml", 2, 7), ("main.yaml", 5, 11), ("main.yaml", 6, 11),
        ("main.yaml", 7, 19), ("main.yaml", 10, 14), ("part.yaml", 2, 11)]
    assert error.format().splitlines()[0] == (f"{main}:1:10: routine: expected text, got '5'; "
                                              "put it in quotes: routine: \"5\"")
    assert error.location == Location(str(main), 1, 10)


def test_syntax_error_in_an_include_is_reported_with_the_rest(tmp_path: Path) -> None:
    write(tmp_path / "broken.yaml", "steps:\n  - say: [unclosed\n")
    main = write(tmp_path / "main.yaml", "routine: M\nsteps:\n  - include: broken.yaml\n  - rest: -1\n")
    error = error_of(load_routine, main)
    assert isinstance(error, RoutineErrors) and len(error.errors) == 2


def test_limits_are_named_in_messages() -> None:
    limits = Limits(max_reps=5, max_sets=2, max_strokes=3, max_cycles=4, max_repeat=6, max_text_chars=10,
                    max_duration_s=Fraction(60))
    text = """\
routine: R
steps:
  - exercise: E
    reps: 6
    sets: 3
    hold: 61s
  - massage: M
    strokes: 4
  - breathe: B
    cycles: 5
  - repeat: 7
    steps: [{say: eleven chars}]
"""
    messages = [e.message for e in error_of(parse_routine, text, limits=limits).errors]
    assert messages == [
        "reps: 6 is more than the limit of 5", "sets: 3 is more than the limit of 2",
        "hold: 61s is more than the limit of 60 seconds", "strokes: 4 is more than the limit of 3",
        "cycles: 5 is more than the limit of 4", "repeat: 7 is more than the limit of 6",
        "say: the text is 12 characters, more than the limit of 10"]


def test_step_count_is_checked_before_expanding() -> None:
    # a million expanded steps: refused at once, without building them
    text = ("routine: R\nsteps:\n  - repeat: 100\n    steps:\n      - repeat: 100\n        steps:\n"
            "          - repeat: 100\n            steps:\n              - say: hi\n")
    error = error_of(parse_routine, text)
    assert error.location == Location("<routine>", 5, 9)  # the inner repeat already makes 10000
    assert "more than the limit of 5000 steps" in error.message
    outer = parse_routine(text, limits=Limits(max_steps=1_000_000)).steps[0]
    assert outer.times * outer.steps[0].times * outer.steps[0].steps[0].times == 1_000_000


def test_errors_are_capped() -> None:
    error = error_of(parse_routine, "routine: R\nsteps:\n" + "  - rest: -1\n" * 1000)
    assert len(error.errors) == 200 and error.errors[-1].location.line == 202


def test_aliases_cannot_multiply_work_on_a_huge_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # One huge string used thousands of times must be refused by its length, never processed.
    seen: list[int] = []
    clean, parse_duration = script._clean, script.parse_duration
    monkeypatch.setattr(script, "_clean", lambda text: seen.append(len(text)) or clean(text))
    monkeypatch.setattr(script, "parse_duration", lambda value: seen.append(len(str(value))) or parse_duration(value))
    huge = "word " * 50_000
    for field in ("say", "rest", "include", "area"):
        text = f'routine: R\nx: &t "{huge}"\nsteps:\n' + f"  - {field}: *t\n" * 5000
        if field == "area":
            text = text.replace("- area:", "- exercise: E\n    area:")
        error = error_of(parse_routine, text)
        assert len(error.errors) == 200
    assert max(seen) < 100


def test_alias_budget() -> None:
    text = "routine: R\nsteps:\n  - &s {say: hi}\n" + "  - *s\n" * 20
    assert len(parse_routine(text).steps) == 21
    error = error_of(parse_routine, text, limits=Limits(max_yaml_nodes=50))
    assert error.message == "the YAML expands to more than the limit of 50 values"


# ---------------------------------------------------------------------------------------
# Properties

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789,.'!?-:#éü", min_size=1, max_size=30)
NAMES = WORDS.map(lambda text: " ".join(text.split())).filter(bool)
TEXTS = st.one_of(st.just(""), NAMES)


@st.composite
def durations(draw, low_ms: int = 1):
    """(YAML value, exact seconds) written in every accepted form."""
    ms = draw(st.integers(low_ms, 3_600_000))
    seconds = Fraction(ms, 1000)
    forms = [f"{ms}ms", float(seconds), f"{float(seconds)}s"]
    if seconds.denominator == 1:
        forms += [int(seconds), f"{int(seconds) // 60}m{int(seconds) % 60}s", f"{seconds}s"]
    return draw(st.sampled_from(forms)), seconds


def enum_values(enum):
    return st.sampled_from(list(enum)).map(lambda member: (member.value, member))


SIDES = st.sampled_from([
    ("left", (Side.LEFT,)), ("right", (Side.RIGHT,)), (["left", "right"], (Side.LEFT, Side.RIGHT)),
    (["right", "left"], (Side.RIGHT, Side.LEFT)), (["both"], (Side.BOTH,)), ("both", (Side.BOTH,)),
])


def same(strategy):
    return strategy.map(lambda value: (value, value))


def counts(high: int):
    return same(st.integers(1, high))


# YAML key -> (model attribute, strategy of (YAML value, model value))
FIELDS = {
    "exercise": {"say": ("say", same(TEXTS)), "area": ("area", enum_values(Area)), "cue": ("cue", same(TEXTS)),
                 "reps": ("reps", counts(1000)), "hold": ("hold_s", durations()),
                 "release": ("release_s", durations()),
                 "sets": ("sets", counts(100)), "rest": ("rest_s", durations()), "sides": ("sides", SIDES),
                 "count": ("count", enum_values(CountMode)), "tip": ("tip", same(TEXTS))},
    "massage": {"say": ("say", same(TEXTS)), "area": ("area", enum_values(Area)), "stroke": ("stroke", same(TEXTS)),
                "strokes": ("strokes", counts(1000)), "tempo": ("tempo_s", durations()), "sides": ("sides", SIDES),
                "count": ("count", same(st.booleans())), "cue": ("cue", same(TEXTS)),
                "pressure": ("pressure", enum_values(Pressure)), "tip": ("tip", same(TEXTS))},
    "breathe": {"inhale": ("inhale_s", durations()), "hold": ("hold_s", durations()),
                "exhale": ("exhale_s", durations()), "cycles": ("cycles", counts(500)),
                "say": ("say", same(TEXTS))},
}
CLASSES = {"exercise": Exercise, "massage": Massage, "breathe": Breathe}
LOC = Location("<routine>")


@st.composite
def steps(draw, depth: int = 0):
    """(YAML step, expected model step with a placeholder location)."""
    kinds = ["say", "rest", "exercise", "massage", "breathe"] + (["repeat"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "say":
        text = draw(NAMES)
        return {"say": text}, Say(text, LOC)
    if kind == "rest":
        written, seconds = draw(durations())
        return {"rest": written}, Rest(seconds, LOC)
    if kind == "repeat":
        times = draw(st.integers(1, 3))
        inner = draw(st.lists(steps(depth + 1), min_size=1, max_size=3))
        return {"repeat": times, "steps": [w for w, _ in inner]}, Repeat(times, tuple(e for _, e in inner), LOC)
    name = draw(NAMES)
    chosen = draw(st.lists(st.sampled_from(sorted(FIELDS[kind])), unique=True))
    written, expected = {kind: name}, {}
    for key in draw(st.permutations(chosen)):
        attr, strategy = FIELDS[kind][key]
        written[key], expected[attr] = draw(strategy)
    return written, CLASSES[kind](name=name, loc=LOC, **expected)


def without_locations(step):
    if isinstance(step, Repeat):
        return dataclasses.replace(step, loc=LOC, steps=tuple(without_locations(s) for s in step.steps))
    return dataclasses.replace(step, loc=LOC)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps(), min_size=1, max_size=5), NAMES, same(TEXTS), st.sampled_from(["en", "de", "pt-BR", "yue"]),
       st.floats(0.5, 2.0))
def test_generated_routines_round_trip(generated, title, intro, language, rate) -> None:
    document = {"routine": title, "intro": intro[0], "language": language, "rate": rate,
                "steps": [written for written, _ in generated]}
    routine = parse_routine(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    assert routine == Routine(title=title, steps=routine.steps, intro=intro[1], language=language,
                              rate=Fraction(repr(rate)), loc=routine.loc)
    assert tuple(without_locations(step) for step in routine.steps) == tuple(expected for _, expected in generated)


def assert_is_user_error(call) -> None:
    try:
        result = call()
    except VoicecoachError as error:
        for each in getattr(error, "errors", [error]):
            assert each.location is not None and each.location.line >= 1 and each.location.col >= 1
            assert each.message and each.hint
    else:
        assert isinstance(result, Routine)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_arbitrary_input_is_a_routine_or_a_user_error(data) -> None:
    assert_is_user_error(lambda: parse_routine(data))


KEYS = sorted(set(script._ALL_FIELDS) | set(script._TOP_KEYS) | {"bogus"})
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True), WORDS,
                    st.sampled_from(["5s", "-1s", "0", "left", "both", "jaw", "firm", "up", ".nan", "1m30s"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6),
       st.lists(st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1, max_size=5), max_size=4))
def test_arbitrary_routine_shapes_are_a_routine_or_a_user_error(top, step_list) -> None:
    document = {**top, "routine": top.get("routine", "R"), "steps": top.get("steps", step_list)}
    assert_is_user_error(lambda: parse_routine(yaml.safe_dump(document, allow_unicode=True)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(FULL)), st.text(alphabet=":-[]{}&*!|>#'\"\t\n ,?%@`~", max_size=3)),
                min_size=1, max_size=4))
def test_damaged_routines_are_a_routine_or_a_user_error(edits) -> None:
    text = FULL
    for position, insert in edits:
        text = text[:position] + insert + text[position + 1:]
    assert_is_user_error(lambda: parse_routine(text))


def _values_text(aliases: int, scalars: int) -> str:
    """A routine (with an unknown top key) whose YAML expands through aliases: ``aliases`` uses of a
    ten-step list and ``scalars`` plain values."""
    return ("routine: R\nsteps:\n  - &s {say: hi}\nx: &b [" + ", ".join(["*s"] * 10) + "]\n"
            "y: [" + ", ".join(["*b"] * aliases + ["a"] * scalars) + "]\n")


def _over_the_values_limit(text: str, limits: Limits | None = None) -> bool:
    try:
        parse_routine(text, **({"limits": limits} if limits else {}))
    except VoicecoachError as error:
        return "more than the limit of" in error.format() and "values" in error.format()
    return False


def _values(text: str) -> int:
    """How many values the parser counts in ``text``: the smallest limit it fits in."""
    low, high = 1, 1000
    while low < high:
        middle = (low + high) // 2
        if _over_the_values_limit(text, Limits(max_yaml_nodes=middle)):
            low = middle + 1
        else:
            high = middle
    return low


def test_the_yaml_values_limit_is_100000_by_default():
    assert Limits().max_yaml_nodes == 100_000
    base = _values(_values_text(0, 0))
    per_alias = _values(_values_text(1, 0)) - base
    assert _values(_values_text(0, 1)) == base + 1 and _values(_values_text(2, 0)) == base + 2 * per_alias
    aliases, scalars = divmod(100_000 - base, per_alias)
    at_limit, over = _values_text(aliases, scalars), _values_text(aliases, scalars + 1)
    assert not _over_the_values_limit(at_limit)  # exactly 100,000 values: fine (it fails later, on `x`)
    assert _over_the_values_limit(over)
    assert error_of(parse_routine, over).message == "the YAML expands to more than the limit of 100000 values"


@pytest.mark.parametrize(("text", "hint"), [
    # 'stroke' is already there (a text key), so 'strokse' is most likely the missing 'strokes'
    ("routine: T\nsteps:\n  - massage: M\n    stroke: up\n    strokse: 4\n", "did you mean 'strokes'?"),
    ("routine: T\nsteps:\n  - massage: M\n    strokes: 4\n    strokse: up\n", "did you mean 'stroke'?"),
    ("routine: T\nrouine: x\nsteps:\n  - say: hi\n", "did you mean 'routine'?"),  # nothing closer unused
])
def test_typo_hints_pick_the_nearest_unused_field(text, hint):
    error = error_of(parse_routine, text)
    assert [e.hint for e in getattr(error, "errors", [error])] == [hint]


@pytest.mark.parametrize("text, keys", [
    ("routine: R\nsteps:\n  - say: Hi.\n", {"routine", "steps"}),
    ("steps:\n  - exercise: X\n    routine: nested\nprogram: {routine: deeper}\n", {"steps", "program"}),
    ("? [a, b]\n: 1\nsteps: 2\n", {"steps"}),  # a key that is not a scalar is left out
    ("a: &x {routine: 1}\n*x : 2\nsteps: []\n", {"a", "steps"}),
    ("{steps: [1, {routine: 2}], program: x}", {"steps", "program"}),
    ("steps: 1\n---\nroutine: 2\n", None),  # two documents
    ("- steps\n- routine\n", None),
    ("just text", None),
    ("", None),
    ("steps: [\n", None),
    ("[" * 5000 + "]" * 5000, None),  # nesting deeper than the parser allows: no recursion here
])
def test_top_level_keys(tmp_path, text, keys) -> None:
    from voicecoach.script import top_level_keys

    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    assert top_level_keys(path) == (frozenset(keys) if keys is not None else None)


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(value=_yaml_values, flow=st.booleans())
def test_top_level_keys_agree_with_the_composed_document(tmp_path, value, flow) -> None:
    """Read from the parser's events, the keys are those of the composed top-level mapping."""
    from voicecoach.script import _mapping_keys

    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    expected = (frozenset(k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode))
                if isinstance(node, yaml.MappingNode) else None)
    assert _mapping_keys(text) == expected

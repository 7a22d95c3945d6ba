"""schema.py: the JSON Schema agrees with the parser; `voicecoach new` writes a starter that
documents every field, passes check and compiles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from voicecoach import schema as schema_module
from voicecoach.cli import cli
from voicecoach.errors import VoicecoachError
from voicecoach.pipeline import Settings, build
from voicecoach.rules import check_routine
from voicecoach.schema import default_file_name, routine_schema, schema_text, starter_routine
from voicecoach.script import load_routine, parse_routine, routine_format

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
VALIDATOR = jsonschema.Draft202012Validator(routine_schema())


def schema_accepts(text: str) -> bool:
    return VALIDATOR.is_valid(yaml.safe_load(text))


def parser_accepts(text: str) -> bool:
    try:
        parse_routine(text)
    except VoicecoachError:
        return False
    return True


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return lambda *args: CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(routine_schema())
    assert routine_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_committed_schema_is_the_generated_one(run):
    committed = (SCRIPTS / "routine.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "regenerate: voicecoach schema -o scripts/routine.schema.json"
    assert run("schema").output == committed


def test_schema_command_writes_a_file(run, tmp_path):
    result = run("schema", "-o", "s.json")
    assert result.exit_code == 0 and json.loads((tmp_path / "s.json").read_text()) == routine_schema()
    missing = run("schema", "-o", "nowhere/s.json")
    assert missing.exit_code == 2 and "does not exist; create it first" in missing.stderr


@pytest.mark.parametrize("path", sorted(p for p in SCRIPTS.rglob("*.yaml") if "programs" not in p.relative_to(SCRIPTS).parts),
                         ids=lambda p: str(p.relative_to(SCRIPTS)))
def test_every_routine_and_block_validates_and_points_at_the_schema(path):
    text = path.read_text(encoding="utf-8")
    errors = [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(text))]
    assert errors == []
    relative = Path("../" * (len(path.relative_to(SCRIPTS).parts) - 1)) / "routine.schema.json"
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={relative.as_posix()}"


def test_schema_covers_every_key_the_parser_knows():
    fmt = routine_format()
    defs = routine_schema()["$defs"]
    for kind, keys in fmt["kinds"].items():
        assert set(defs[kind]["properties"]) == set(keys)
        assert all(defs[kind]["properties"][key]["description"] for key in keys)
    assert set(routine_schema()["properties"]) == set(fmt["top_keys"]) | set(fmt["reserved_top_keys"])


def test_a_new_key_in_the_parser_cannot_be_forgotten(monkeypatch):
    fmt = routine_format()
    fmt["kinds"] = {**fmt["kinds"], "massage": (*fmt["kinds"]["massage"], "oil")}
    monkeypatch.setattr(schema_module, "routine_format", lambda: fmt)
    with pytest.raises(ValueError, match="massage.oil"):
        routine_schema()


STEP = "routine: R\nsteps:\n  - {}\n"
ACCEPTED = [  # one step each: both the schema and the parser accept it
    "say: Hello", "rest: 1m30s", "rest: 2.5", "rest: 250ms", "rest: 1h",
    "exercise: E, area: cheeks, hold: 5s, reps: 3, sets: 2, rest: 10s, sides: [left, right], count: up",
    "exercise: E, sides: left", "exercise: E, sides: [both]",
    "massage: M, count: true, cue: up, pressure: firm, tempo: 3s, strokes: 8, stroke: Sweep.",
    "breathe: B, inhale: 4s, hold: 2s, exhale: 6s, cycles: 3, say: Slowly.",
    "repeat: 2, steps: [{say: again}]",
]
REJECTED = [  # ... and both reject it
    "rest: 0s", "rest: -5s", "rest: 5 sec", "rest: 1s1m", "rest: true",
    "exercise: E, sides: [both, left]", "exercise: E, sides: [left, left]", "exercise: E, sides: []",
    "exercise: E, reps: 0", "exercise: E, reps: 1001", "exercise: E, reps: 2.5", "exercise: E, count: sometimes",
    "exercise: E, count: true", "exercise: E, area: toes", "exercise: E, hodl: 5s", "exercise: E, massage: M",
    "exercise: ''", "exercise: E, tip: 5",
    "massage: M, count: down", "massage: M, pressure: hard", "massage: M, hold: 5s",
    "breathe: B, cycles: 501", "repeat: 2", "repeat: 101, steps: [{say: again}]", "rest: 5s, say: hi", "sleep: 5s",
]


@pytest.mark.parametrize("step, accepted", [(s, True) for s in ACCEPTED] + [(s, False) for s in REJECTED])
def test_schema_and_parser_give_the_right_verdict_on_steps(step, accepted):
    text = STEP.format("{" + step + "}")
    assert (schema_accepts(text), parser_accepts(text)) == (accepted, accepted)


@pytest.mark.parametrize("top, accepted", [
    ("language: pt-BR", True), ("language: english", False), ("rate: 0.5", True), ("rate: 2.0", True),
    ("rate: 2.1", False), ("rate: fast", False), ("voice:", True), ("voice: en-us", True), ("intro: Hi", True),
    ("music: anything", False), ("stepz: []", False), ("description: 5", False),
])
def test_schema_and_parser_give_the_right_verdict_on_settings(top, accepted):
    text = f"routine: R\n{top}\nsteps: [{{say: hi}}]\n"
    assert (schema_accepts(text), parser_accepts(text)) == (accepted, accepted)


# ---------------------------------------------------------------------------------------
# The starter routine


def test_starter_documents_every_field_and_validates():
    text = starter_routine("My routine")
    fmt = routine_format()
    keys = set(fmt["top_keys"]) | {key for keys in fmt["kinds"].values() for key in keys}
    for key in keys:
        assert re.search(rf"^\s*(# )?(- )?{key}:", text, re.MULTILINE), f"the starter does not show {key!r}"
    assert text.startswith("# yaml-language-server: $schema=routine.schema.json\n")
    assert [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(text))] == []


def test_starter_passes_strict_check_and_compiles(tmp_path):
    path = tmp_path / "starter.yaml"
    path.write_text(starter_routine("Evening calm"))
    routine = load_routine(path)
    assert routine.title == "Evening calm"
    assert check_routine(routine) == []
    result = build(routine, settings=Settings(engine="fake", cache_dir=tmp_path / "cache"))
    assert len(result.timeline.chapters) == 7


@pytest.mark.parametrize("title", ['Jaw: "release" # 2', "  Morgen   frisch ", "- [x]", "Ça va? 100%", "yes"])
def test_any_title_survives_yaml(title):
    assert parse_routine(starter_routine(title)).title == " ".join(title.split())


def test_empty_name_is_refused():
    with pytest.raises(VoicecoachError, match="the routine name is empty"):
        starter_routine("   ")


def test_default_file_name():
    assert default_file_name("Evening calm!") == "evening-calm.yaml"
    assert default_file_name("Ça va") == "ça-va.yaml"
    assert default_file_name("!!!") == "routine.yaml"


def test_new_writes_a_starter_that_checks_and_compiles(run, tmp_path):
    result = run("new", "Evening calm")
    assert result.exit_code == 0 and result.output == "wrote evening-calm.yaml\n"
    checked = run("check", "--strict", "evening-calm.yaml")
    assert checked.exit_code == 0 and checked.stderr == "", checked.stderr
    compiled = run("compile", "evening-calm.yaml", "-o", "calm.mp3", "--engine", "fake")
    assert compiled.exit_code == 0 and (tmp_path / "calm.mp3").stat().st_size > 0


def test_new_refuses_to_overwrite_unless_forced(run, tmp_path):
    target = tmp_path / "mine.yaml"
    target.write_text("my work\n")
    refused = run("new", "Mine", "-o", str(target))
    assert refused.exit_code == 2
    assert refused.stderr == f"'{target}' already exists; choose another name with -o, or pass --force to replace it\n"
    assert target.read_text() == "my work\n"
    forced = run("new", "Mine", "-o", str(target), "--force")
    assert forced.exit_code == 0 and target.read_text() == starter_routine("Mine")


def test_new_reports_a_missing_folder(run, tmp_path):
    result = run("new", "Mine", "-o", "missing/mine.yaml")
    assert result.exit_code == 2 and "does not exist; create it first" in result.stderr
    assert not (tmp_path / "missing").exists()


def test_new_with_a_path_as_name_writes_that_file(run, tmp_path):
    (tmp_path / "sub").mkdir()
    result = run("new", "sub/evening.yaml")
    assert result.exit_code == 0 and result.output == "wrote sub/evening.yaml\n"
    assert sorted(p.name for p in tmp_path.rglob("*.yaml")) == ["evening.yaml"]  # not sub-evening-yaml.yaml
    assert load_routine(tmp_path / "sub" / "evening.yaml").title == "Evening"
    assert run("new", "sub/evening-calm").output == "wrote sub/evening-calm.yaml\n"
    assert load_routine(tmp_path / "sub" / "evening-calm.yaml").title == "Evening calm"
    both = run("new", "sub/other.yaml", "-o", "x.yaml")
    assert both.exit_code == 2 and "looks like a file name, and -o gives the file too" in both.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_new_routine_target_examples():
    import doctest

    finder = doctest.DocTestFinder()
    (test,) = finder.find(schema_module.new_routine_target, "new_routine_target", globs=vars(schema_module))
    assert doctest.DocTestRunner().run(test).failed == 0

"""engines/piper_voices.py: `voicecoach voices add/remove` with real Piper model files (the
bundled joe copied under other names), and what auto and `voice:` then do with them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.engines import EngineChoice, auto_choice, list_voices
from voicecoach.engines.piper import find_model, voice_identity
from voicecoach.engines.piper_voices import bundled_model, installed_voices, voices_dir
from voicecoach.pipeline import Settings, build
from voicecoach.script import load_routine


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def copy_joe(folder: Path, name: str, *, language: str | None = None, speakers: dict | None = None) -> Path:
    """The bundled voice's files as ``folder/name.onnx`` (+ config), optionally with another language."""
    bundled = bundled_model()
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.onnx"
    shutil.copy(bundled.model, model)
    config = json.loads(Path(bundled.config).read_text())
    if language:
        config["language"]["code"] = language
    if speakers:
        config["num_speakers"] = len(speakers)
        config["speaker_id_map"] = speakers
    (folder / f"{name}.onnx.json").write_text(json.dumps(config))
    return model


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_add_copies_a_checked_voice_that_auto_and_voice_then_use(data_dir, tmp_path):
    model = copy_joe(tmp_path / "downloads", "de_DE-test-medium", language="de_DE")
    assert auto_choice(None, "de").engine == "espeak"
    added = run("voices", "add", str(model))
    assert added.exit_code == 0, added.output
    assert added.output.startswith("added de_DE-test-medium: de-de, 22050 Hz; licence: ")
    assert sorted(p.name for p in (data_dir / "voices").iterdir()) == ["de_DE-test-medium.onnx",
                                                                       "de_DE-test-medium.onnx.json"]
    assert voices_dir() == data_dir / "voices"
    assert auto_choice(None, "de").engine == "piper"  # auto now speaks German with it
    assert find_model("de").files.model == str(data_dir / "voices" / "de_DE-test-medium.onnx")
    assert find_model("DE_de-test-MEDIUM").files == find_model("de").files  # by name, any case
    # the same model bytes as joe: the clip cache key is the content hash, wherever the file is
    assert voice_identity("de_DE-test-medium") != voice_identity("joe")  # (its config differs: the language)
    listed = [v for v in list_voices("piper") if v.id == "de_DE-test-medium"]
    assert listed and listed[0].languages == ("de-de", "de")
    german = run("voices", "--language", "de")
    assert any(line.strip().startswith("de_DE-test-medium") and line.endswith("[auto: de, de-de]")
               for line in german.output.splitlines()), german.output
    # a routine picks it by name
    routine = tmp_path / "r.yaml"
    routine.write_text("routine: R\nlanguage: en\nvoice: de_DE-test-medium\nsteps: [{say: Hi.}]\n")
    assert Settings().engine_choice(load_routine(routine)) == EngineChoice("piper", "de_DE-test-medium")
    removed = run("voices", "remove", "de_DE-test-medium")
    assert removed.exit_code == 0 and removed.output == "removed de_DE-test-medium (de-de)\n"
    assert list((data_dir / "voices").iterdir()) == [] and auto_choice(None, "de").engine == "espeak"


def test_a_moved_or_readded_model_reuses_its_clips(data_dir, tmp_path):
    model = copy_joe(tmp_path / "a", "mine")
    before = voice_identity(str(model))
    assert run("voices", "add", str(model)).exit_code == 0
    assert voice_identity("mine") == before == voice_identity(str(copy_joe(tmp_path / "b", "other")))


@pytest.mark.parametrize("problem", ["no config", "not json", "not piper", "wrong language", "not a model",
                                     "taken name"])
def test_bad_models_are_refused_and_nothing_is_copied(data_dir, tmp_path, problem):
    model = copy_joe(tmp_path / "in", "voice")
    args = ["voices", "add", str(model)]
    config = model.with_name("voice.onnx.json")
    if problem == "no config":
        config.unlink()
        expected = f"{model} has no voice.onnx.json beside it; download the model's .onnx.json with it"
    elif problem == "not json":
        config.write_text("{not json")
        expected = f"{config} is not a Piper voice config (not JSON:"
    elif problem == "not piper":
        config.write_text(json.dumps({"name": "something else"}))
        expected = f"{config} is not a Piper voice config (no audio.sample_rate or phoneme_id_map)"
    elif problem == "wrong language":
        args += ["--language", "de"]
        expected = f"{model} speaks en-us, not de; add it without --language, or pick a model for de"
    elif problem == "not a model":
        model.write_bytes(b"\x08\x01\x12\x04junk" * 100)
        expected = f"{model} is not a working Piper voice model: "
    else:
        args += ["--name", "joe"]
        expected = "'joe' cannot name a voice; use letters"
    result = run(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith(expected), result.output
    assert not (data_dir / "voices").exists() or list((data_dir / "voices").iterdir()) == []


def test_a_voice_name_is_added_once_and_remove_names_unknown_voices(data_dir, tmp_path):
    model = copy_joe(tmp_path, "twice")
    assert run("voices", "add", str(model)).exit_code == 0
    again = run("voices", "add", str(model))
    assert again.exit_code == 2 and again.output.startswith("a voice named 'twice' is already installed")
    unknown = run("voices", "remove", "nope")
    assert unknown.exit_code == 2 and unknown.output.startswith("no added voice named 'nope'")
    bundled = run("voices", "remove", "joe")
    assert bundled.exit_code == 2 and "the bundled voice comes with voicecoach" in bundled.output


def test_multi_speaker_voices_take_a_speaker(data_dir, tmp_path):
    # joe's network has one speaker; the config alone decides which names are accepted
    copy_joe(data_dir / "voices", "duo", speakers={"anna": 0, "ben": 1})
    [duo] = [v for v in installed_voices() if v.name == "duo"]
    assert duo.speakers == ("anna", "ben")
    assert find_model("duo#ben").speaker_id == 1 and find_model("duo#0").speaker_id == 0
    assert voice_identity("duo#ben").endswith("#1") and voice_identity("duo") != voice_identity("duo#ben")
    with pytest.raises(Exception, match="the Piper voice 'duo#carl' has no speaker 'carl'") as info:
        find_model("duo#carl")
    assert info.value.hint == "its speakers: anna, ben"
    with pytest.raises(Exception, match="has no speaker '1'"):
        find_model("joe#1")


def test_an_added_voice_speaks_in_a_compile(data_dir, tmp_path):
    copy_joe(data_dir / "voices", "fr_FR-test", language="fr_FR")
    routine = tmp_path / "r.yaml"
    routine.write_text("routine: R\nlanguage: fr\nsteps: [{say: Bonjour.}]\n")
    result = build(routine, settings=Settings(cache_dir=tmp_path / "cache", jobs=1))
    assert result.speech.engine.name == "piper" and result.notes == ()
    assert result.speech.voice_identity().endswith(voice_identity("fr_FR-test"))  # its model's hash

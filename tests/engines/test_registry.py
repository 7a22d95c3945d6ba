"""engines/__init__.py: the one registry every engine name is derived from, and the voice filter."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.engines import (ENGINES, EngineChoice, EngineSpec, VoiceInfo, auto_choice, choose_engine, engine_spec,
                                list_voices, missing_engines, model_extensions, speaks_language)
from voicecoach.engines.fake import FakeEngine
from voicecoach.errors import EngineError, VoicecoachError
from voicecoach.schema import routine_schema
from voicecoach.script import routine_format


def voice(*languages: str) -> VoiceInfo:
    return VoiceInfo("x", "v", "V", languages)


def test_a_language_matches_its_regional_and_variant_tags_only():
    assert speaks_language(voice("en-us"), "en") and speaks_language(voice("en-gb-x-rp"), "en")
    assert speaks_language(voice("EN-US"), "en-us") and speaks_language(voice("de"), "DE")
    assert not speaks_language(voice("eng"), "en")  # a prefix of the code is not the language
    assert not speaks_language(voice("en"), "en-us")  # nor is a broader tag a regional one
    assert not speaks_language(voice(), "en")


@pytest.fixture
def toy_engine(monkeypatch):
    """A registered engine with two voices: what `voices` shows comes from the registry."""
    class Toy(FakeEngine):
        name = "toy"

        def voices(self):
            return [VoiceInfo("toy", "a", "A", ("de-at",)), VoiceInfo("toy", "b", "B", ("fr",))]

    monkeypatch.setitem(ENGINES, "toy", EngineSpec(name="toy", about="a toy", create=Toy))
    return Toy


def test_list_voices_filters_by_language(toy_engine):
    assert [v.id for v in list_voices("toy")] == ["a", "b"]
    assert [v.id for v in list_voices("toy", "de")] == ["a"]
    assert [v.id for v in list_voices("toy", "es")] == []
    assert "toy" in [v.engine for v in list_voices()]  # every installed speaking engine


def test_the_voices_command_prints_what_the_library_lists(toy_engine):
    result = CliRunner().invoke(cli, ["voices", "--language", "de", "--json"])
    assert result.exit_code == 0, result.output
    toys = [v for v in json.loads(result.output) if v["engine"] == "toy"]
    assert toys == [{"engine": "toy", "id": "a", "name": "A", "languages": ["de-at"], "auto": []}]


def test_a_missing_engine_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(ENGINES, "toy", EngineSpec(name="toy", about="a toy", create=FakeEngine,
                                                   installed=lambda: False, install="pip install toy"))
    assert "toy" in missing_engines() and list_voices("toy") == []
    result = CliRunner().invoke(cli, ["voices"])
    assert "toy: not installed (a toy); install it with: pip install toy\n" in result.output


def test_engine_names_come_from_the_registry():
    options = {p.name: p for p in cli.commands["compile"].params}
    assert isinstance(options["engine"].type, click.Choice)
    assert list(options["engine"].type.choices) == ["auto", *ENGINES]
    assert routine_format()["engines"] == ("auto", *ENGINES)
    engine_field = routine_schema()["properties"]["engine"]
    assert engine_field["enum"] == ["auto", *ENGINES]
    assert all(f"{name} ({ENGINES[name].about})" in engine_field["description"] for name in ENGINES)
    assert model_extensions() == (".onnx",)  # Piper's spec, not the routine parser, knows its model files
    with pytest.raises(VoicecoachError, match="unknown speech engine 'nope'"):
        engine_spec("nope")


# ---------------------------------------------------------------------------------------
# auto, and an engine that cannot speak a language


def test_auto_picks_piper_where_it_has_a_voice_else_espeak():
    assert auto_choice(None, "en") == EngineChoice("piper", None)  # the bundled joe
    assert auto_choice(None, "en-gb") == EngineChoice("piper", None)
    assert auto_choice(None, "de") == EngineChoice("espeak", None)
    assert auto_choice("joe", "de") == EngineChoice("piper", "joe")  # a Piper voice's name goes to Piper
    assert auto_choice("gmw/en-GB-x-rp", "en") == EngineChoice("espeak", "gmw/en-GB-x-rp")  # espeak's ids to espeak
    assert auto_choice("de", "en") == EngineChoice("espeak", "de")  # a language as voice: its best engine


def test_an_engine_without_a_voice_for_the_language_falls_back_with_a_note():
    choice = choose_engine("piper", None, "fr")
    assert choice == EngineChoice("espeak", None, "piper has no voice for the language 'fr'; "
                                                  "speaking with espeak instead")
    assert choose_engine("piper", None, "en") == EngineChoice("piper", None)
    assert choose_engine("espeak", None, "en") == EngineChoice("espeak", None)  # asked for: kept
    assert choose_engine("fake", None, "fr") == EngineChoice("fake", None)
    with pytest.raises(EngineError, match="piper has no voice for the language 'fr'") as info:
        choose_engine("piper", None, "fr", strict=True)
    assert "--strict-engine" in info.value.hint


def test_compile_notes_the_fallback_and_strict_engine_refuses(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("routine: R\nlanguage: fr\nengine: piper\nsteps: [{say: Bonjour.}]\n")
    out = tmp_path / "r.wav"
    done = CliRunner().invoke(cli, ["compile", str(path), "-o", str(out), "--cache-dir", str(tmp_path / "c")])
    assert done.exit_code == 0, done.output
    assert f"note: {path}: piper has no voice for the language 'fr'; speaking with espeak instead" in done.output
    assert out.exists()
    out.unlink()
    strict = CliRunner().invoke(cli, ["compile", str(path), "-o", str(out), "--cache-dir", str(tmp_path / "c"),
                                      "--strict-engine"])
    assert strict.exit_code == 2 and not out.exists()
    assert strict.output.startswith(f"{path}:3:1: piper has no voice for the language 'fr'; add one"), strict.output


def test_voices_marks_what_auto_picks(toy_engine):
    listed = CliRunner().invoke(cli, ["voices", "--language", "de"])
    assert listed.exit_code == 0, listed.output
    german = [line for line in listed.output.splitlines() if line.strip().startswith("gmw/de ")]
    assert german and german[0].endswith("[auto: de, de-at]")  # de-at: the toy voice's tag, espeak's German
    english = CliRunner().invoke(cli, ["voices", "--engine", "piper", "--json"])
    joe = json.loads(english.output)[0]
    assert joe["id"] == "joe" and {"en", "en-us"} <= set(joe["auto"])


def test_export_with_piper_exports_every_routine_and_notes_each_fallback(tmp_path):
    folder = tmp_path / "routines"
    folder.mkdir()
    for name, language, text in (("hello", "en", "Hello."), ("hallo", "de", "Hallo."), ("hola", "es", "Hola.")):
        (folder / f"{name}.yaml").write_text(f"routine: {name}\nlanguage: {language}\nsteps: [{{say: {text}}}]\n")
    done = CliRunner().invoke(cli, ["export", str(folder), "-d", str(tmp_path / "phone"), "--engine", "piper",
                                    "--cache-dir", str(tmp_path / "cache")])
    assert done.exit_code == 0, done.output
    notes = sorted(line for line in done.stderr.splitlines() if line.startswith("note: "))
    assert notes == [f"note: {folder / name}.yaml: piper has no voice for the language '{language}'; "
                     "speaking with espeak instead" for name, language in (("hallo", "de"), ("hola", "es"))]
    assert done.output.rstrip().endswith(f"3 exported -> {tmp_path / 'phone'}")
    strict = CliRunner().invoke(cli, ["export", str(folder), "-d", str(tmp_path / "strict"), "--engine", "piper",
                                      "--strict-engine", "--cache-dir", str(tmp_path / "cache")])
    assert strict.exit_code == 2 and "1 exported, 2 failed" in strict.output, strict.output

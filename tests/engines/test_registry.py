"""engines/__init__.py: the one registry every engine name is derived from, and the voice filter."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.engines import (ENGINES, EngineSpec, VoiceInfo, engine_spec, list_voices, missing_engines,
                                model_extensions, speaks_language)
from voicecoach.engines.fake import FakeEngine
from voicecoach.errors import VoicecoachError
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
    assert toys == [{"engine": "toy", "id": "a", "name": "A", "languages": ["de-at"]}]


def test_a_missing_engine_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(ENGINES, "toy", EngineSpec(name="toy", about="a toy", create=FakeEngine,
                                                   installed=lambda: False, install="pip install toy"))
    assert "toy" in missing_engines() and list_voices("toy") == []
    result = CliRunner().invoke(cli, ["voices"])
    assert "toy: not installed (a toy); install it with: pip install toy\n" in result.output


def test_engine_names_come_from_the_registry():
    options = {p.name: p for p in cli.commands["compile"].params}
    assert isinstance(options["engine"].type, click.Choice)
    assert sorted(options["engine"].type.choices) == sorted(ENGINES)
    assert routine_format()["engines"] == tuple(ENGINES)
    engine_field = routine_schema()["properties"]["engine"]
    assert engine_field["enum"] == list(ENGINES)
    assert all(name in engine_field["description"] for name in ENGINES)
    assert model_extensions() == (".onnx",)  # Piper's spec, not the routine parser, knows its model files
    with pytest.raises(VoicecoachError, match="unknown speech engine 'nope'"):
        engine_spec("nope")

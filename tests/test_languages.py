"""languages.py and its users: a language tag is matched as BCP 47 -- region and case variants
fall back to the base language's vocabulary and to the engine's closest voice."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.engines.espeak import find_voice, voice_for
from voicecoach.languages import TAG, base, fallbacks, normalize
from voicecoach.pipeline import Settings, build
from voicecoach.vocab import find_language


def test_one_spelling_of_a_tag():
    assert normalize(" pt_BR ") == "pt-br" and normalize("EN-gb") == "en-gb"
    assert fallbacks("de-AT-x-wien") == ["de-at-x-wien", "de-at-x", "de-at", "de"]
    assert base("EN_gb") == "en"
    for tag in ("de-AT", "EN-gb", "pt_BR", "zh-Hant-TW", "es-419", "fr"):
        assert TAG.match(tag)
    for bad in ("english", "e", "de--AT", "de-AT!", "-de"):
        assert not TAG.match(bad)


@pytest.mark.parametrize("tag, vocabulary", [
    ("de-AT", "de"), ("DE-at", "de"), ("de_CH", "de"), ("EN-gb", "en"), ("en-US", "en"), ("es-MX", "es"),
    ("es-419", "es"), ("fr-CA", "fr"), ("FR", "fr"), ("pt-BR", None), ("xx", None),
])
def test_a_regional_tag_uses_its_base_languages_vocabulary(tag, vocabulary):
    assert find_language(tag) == vocabulary


@pytest.mark.parametrize("tag, voice", [
    ("de-AT", "gmw/de"), ("EN-gb", "gmw/en"), ("en-US", "gmw/en-us"), ("en", "gmw/en"), ("pt_BR", "roa/pt-br"),
    ("fr-CA", "roa/fr"), ("es-MX", "roa/es-419"), ("en-gb-x-rp", "gmw/en-gb-x-rp"), ("xx-YY", None),
    ("no-such-voice", None),  # not Norwegian: "such-voice" is no region, script or private use
])
def test_espeak_speaks_a_tag_with_its_closest_voice(tag, voice):
    assert voice_for(tag) == voice
    assert find_voice(tag) == voice


@pytest.mark.parametrize("tag", ["de-AT", "EN-gb", "es_MX", "fr-CA"])
def test_a_routine_in_a_regional_language_checks_and_compiles(tag, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"routine: Regional\nlanguage: {tag}\nsteps:\n  - say: Eins, two, tres.\n", encoding="utf-8")
    runner = CliRunner()
    checked = runner.invoke(cli, ["check", str(path)])
    assert checked.exit_code == 0, checked.output
    compiled = runner.invoke(cli, ["compile", str(path), "-o", str(tmp_path / "r.wav"), "--engine", "espeak",
                                   "--cache-dir", str(tmp_path / "cache")])
    assert compiled.exit_code == 0, compiled.output
    assert (tmp_path / "r.wav").stat().st_size > 10_000


def test_the_starter_and_the_schema_suggest_only_languages_with_a_vocabulary():
    from voicecoach.schema import routine_schema, starter_routine
    from voicecoach.vocab import available_languages

    line = next(line for line in starter_routine("R").splitlines() if line.startswith("language:"))
    suggested = line.split("#", 1)[1]
    assert "pt" not in suggested and all(code in suggested for code in available_languages())
    assert routine_schema()["properties"]["language"]["examples"] == available_languages()


# ---------------------------------------------------------------------------------------
# Every voice `voicecoach voices` prints is one `voice:` accepts


@pytest.fixture(scope="module")
def listed_voices() -> list[dict]:
    import json

    result = CliRunner().invoke(cli, ["voices", "--engine", "espeak", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_listed_espeak_voice_resolves_to_itself(listed_voices):
    assert len(listed_voices) > 100
    assert {v["id"] for v in listed_voices} == {find_voice(v["id"]) for v in listed_voices}
    for voice in listed_voices:  # its name and its language tags are accepted too
        assert find_voice(voice["name"]) is not None, voice
        assert all(find_voice(tag) is not None for tag in voice["languages"]), voice


SAMPLE_VOICES = ["gmw/en-us", "gmw/en-gb-x-rp", "iro/chr", "roa/pt-br", "sit/yue-latn-jyutping", "zlw/pl"]
"""A fixed sample of listed ids compiled for real (all of them would take minutes)."""


@pytest.mark.parametrize("voice", SAMPLE_VOICES)
def test_a_listed_voice_compiles_a_one_step_routine(voice, listed_voices, tmp_path):
    assert voice in {v["id"] for v in listed_voices}
    path = tmp_path / "r.yaml"
    path.write_text(f"routine: One step\nvoice: {voice}\nsteps:\n  - say: Hello.\n", encoding="utf-8")
    result = build(path, settings=Settings(engine="espeak", cache_dir=tmp_path / "cache"))
    assert result.timeline.length_samples > 0


def test_a_voice_nobody_has_is_found_by_plain_check_at_its_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("routine: R\nlanguage: en\nvoice: no-such-voice\nsteps:\n  - say: Hello.\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:3:1: ") and "no voice 'no-such-voice'" in result.stderr
    assert "voices for en: " in result.stderr and "gmw/en-us" in result.stderr  # what exists

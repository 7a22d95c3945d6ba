"""vocab.py and the vocabularies: every language complete and well-formed, chosen by the
routine's language, single cues replaceable under ``cues:``; a German routine speaks German."""

from __future__ import annotations

import copy
from fractions import Fraction
from importlib import resources
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.errors import Location, RoutineErrors, VoicecoachError
from voicecoach.model import Cue, EventKind
from voicecoach.pipeline import Settings, build
from voicecoach.script import load_routine, parse_routine
from voicecoach.vocab import REQUIRED_PHRASES, available_languages, load_vocabulary, validate_vocabulary

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
SAMPLES = {"en": "morning.yaml", "de": "morgen.yaml", "es": "manana.yaml", "fr": "matin.yaml"}
"""One sample routine per language in scripts/."""


def vocabulary_data(language: str) -> dict:
    return yaml.safe_load((resources.files("voicecoach") / "vocab" / f"{language}.yaml").read_text(encoding="utf-8"))


def test_the_languages():
    assert available_languages() == ["de", "en", "es", "fr"]
    assert set(SAMPLES) == set(available_languages())


@pytest.mark.parametrize("language", available_languages())
def test_every_vocabulary_has_exactly_the_required_phrases(language):
    data = vocabulary_data(language)
    assert data["language"] == language
    assert set(data["phrases"]) == set(REQUIRED_PHRASES)
    vocab = load_vocabulary(language)
    for key, placeholders in REQUIRED_PHRASES.items():
        values = {name: f"<{name}>" for name in placeholders}
        spoken = vocab.phrase(key, **values)
        assert all(f"<{name}>" in spoken for name in placeholders) and "{" not in spoken


@pytest.mark.parametrize("language", available_languages())
@pytest.mark.parametrize("break_it, problem", [
    (lambda p: p.pop("hold"), "vocabulary is missing the phrase 'hold'"),
    (lambda p: p.update(hold_tight="Hold tight."), "unknown cue 'hold_tight'"),
    (lambda p: p.update(set_n_of="Set {n}."), "cue 'set_n_of' uses {n}; it must use {n}, {total}"),
    (lambda p: p.update(hold="Hold {name}."), "cue 'hold' uses {name}; it must use no placeholders"),
    (lambda p: p.update(seconds_many="{n:d} s"), "cue 'seconds_many' has the placeholder {n:d}"),
    (lambda p: p.update(next_up="Next: {name.upper}"), "cue 'next_up' has the placeholder {name.upper}"),
    (lambda p: p.update(release="Release {"), "cue 'release' has an unmatched brace"),
    (lambda p: p.update(release="  "), "cue 'release' must be non-empty text"),
])
def test_a_broken_vocabulary_is_caught(language, break_it, problem):
    data = copy.deepcopy(vocabulary_data(language))
    break_it(data["phrases"])
    with pytest.raises(VoicecoachError, match=problem.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        validate_vocabulary(language, data, Location(f"vocab/{language}.yaml"))


@pytest.mark.parametrize("language, routine", SAMPLES.items())
def test_each_language_compiles_its_sample_routine_in_its_own_words(language, routine, tmp_path):
    parsed = load_routine(SCRIPTS / routine)
    assert parsed.language == language
    result = build(parsed, settings=Settings(engine="fake", cache_dir=tmp_path))
    assert result.speech.settings.voice_id == language  # espeak's voice for the language
    texts = [e.text for e in result.timeline.events if e.kind is EventKind.SPEECH]
    vocab = load_vocabulary(language)
    for key in ("hold", "release", "breathe_in", "breathe_out", "pressure_light"):
        assert vocab.phrase(key) in texts
    if language != "en":
        english = load_vocabulary("en")
        assert not {english.phrase(k) for k in ("release", "breathe_in", "pressure_light")} & set(texts)


def test_a_german_routine_speaks_german_cues(tmp_path):
    result = build(SCRIPTS / "morgen.yaml", settings=Settings(engine="fake", cache_dir=tmp_path))
    cues = {(e.cue, e.text) for e in result.timeline.events if e.kind is EventKind.SPEECH}
    assert {(Cue.HOLD, "Halten."), (Cue.RELEASE, "Loslassen."), (Cue.BREATHE, "Einatmen."),
            (Cue.NAME, "Übung: Augenbrauen heben gegen die Finger."), (Cue.REST, "fünfzehn Sekunden Pause.")} <= cues
    assert (Cue.NEXT, "Gleich folgt: Wache Atemzüge.") in cues  # the routine's own cue
    counts = [e.text for e in result.timeline.events if e.cue is Cue.COUNT]
    assert counts[:4] == ["vier", "drei", "zwei", "eins"]  # written out in German before any engine


@pytest.mark.espeak
def test_a_german_routine_is_spoken_by_the_german_espeak_voice(tmp_path):
    result = build(SCRIPTS / "morgen.yaml", settings=Settings(cache_dir=tmp_path))  # auto: espeak for German
    assert result.speech.settings.voice_id == "de" and result.speech.engine.name == "espeak"
    english = build(parse_routine("routine: R\nsteps: [{say: Halten.}]\n"),
                    settings=Settings(engine="espeak", cache_dir=tmp_path))
    assert result.speech.clip("Halten.").tobytes() != english.speech.clip("Halten.").tobytes()


def test_durations_in_the_languages_words():
    assert load_vocabulary("de").duration(Fraction(90)) == "eine Minute und 30 Sekunden"
    assert load_vocabulary("de").duration(Fraction(3, 2)) == "1,5 Sekunden"
    assert load_vocabulary("es").duration(Fraction(61)) == "un minuto y un segundo"
    assert load_vocabulary("fr").duration(Fraction(120)) == "2 minutes"
    assert load_vocabulary("en").duration(Fraction(5, 2)) == "2.5 seconds"
    assert load_vocabulary("de-AT").language == "de"


# ---------------------------------------------------------------------------------------
# A routine's own cues


ROUTINE = """\
routine: R
language: {language}
cues:
{cues}
steps:
  - exercise: Lift
    hold: 3s
  - rest: 10s
  - massage: Sweep
"""


def routine(cues: str, language: str = "en") -> str:
    return ROUTINE.format(language=language, cues=cues)


def test_cues_replace_single_phrases(tmp_path):
    text = routine('  hold: "Hold it."\n  next_up: "Coming up, {name}."', language="fr")
    parsed = parse_routine(text)
    assert parsed.cues == (("hold", "Hold it."), ("next_up", "Coming up, {name}."))
    result = build(parsed, settings=Settings(engine="fake", cache_dir=tmp_path))
    spoken = [e.text for e in result.timeline.events if e.kind is EventKind.SPEECH]
    assert "Hold it." in spoken and "Coming up, Sweep." in spoken
    assert "Relâchez." in spoken  # the others stay the language's


@pytest.mark.parametrize("cues, line, col, message", [
    ("  hodl: Hold.", 4, 3, "unknown cue 'hodl'"),
    ("  next_up: Next up.", 4, 12, "cue 'next_up' uses none; it must use {name}"),
    ("  set_n_of: 'Set {n} of {total} {extra}'", 4, 13, "cue 'set_n_of' uses {extra}, {n}, {total}"),
    ("  hold: '{0}'", 4, 9, "cue 'hold' has the placeholder {0}"),
    ("  hold:", 4, 8, "'cues: hold' has no value"),
    ("  hold: [Hold, it]", 4, 9, "cues: hold: expected text, got a list"),
])
def test_bad_cues_are_located(cues, line, col, message):
    with pytest.raises(VoicecoachError) as info:
        parse_routine(routine(cues), path="r.yaml")
    errors = info.value.errors if isinstance(info.value, RoutineErrors) else [info.value]
    assert len(errors) == 1 and message in errors[0].message, errors[0].message
    assert errors[0].location == Location("r.yaml", line, col) and errors[0].hint


def test_unknown_cue_suggests_the_closest():
    with pytest.raises(VoicecoachError) as info:
        parse_routine(routine("  relase: Let go."))
    assert info.value.hint == "did you mean 'release'?"


def test_cues_must_be_a_mapping():
    with pytest.raises(VoicecoachError, match="cues: expected a mapping of cue names to phrases"):
        parse_routine("routine: R\ncues: [hold]\nsteps: [{say: Hi.}]\n")


# ---------------------------------------------------------------------------------------
# A language without a vocabulary


def test_a_language_without_vocabulary_is_located_at_the_language_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("routine: R\ndescription: Portuguese.\nlanguage: pt-BR\nsteps: [{say: Olá.}]\n")
    with pytest.raises(VoicecoachError) as info:
        build(path, settings=Settings(engine="fake", cache_dir=tmp_path / "cache"))
    assert info.value.format() == (f"{path}:3:1: no cue vocabulary for language 'pt-BR'; "
                                   "use one of: de, en, es, fr")
    result = CliRunner().invoke(cli, ["compile", str(path), "-o", str(tmp_path / "r.mp3"), "--engine", "fake",
                                      "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2 and result.stderr.startswith(f"{path}:3:1: no cue vocabulary for language 'pt-BR'")
    checked = CliRunner().invoke(cli, ["check", str(path)])
    assert checked.exit_code == 2 and f"{path}:3:1: no cue vocabulary" in checked.stderr

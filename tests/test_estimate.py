"""estimate.py: the speech-length estimate of ``preview`` and plain ``check``, measured per engine
and language (benchmarks/speaking_rate.py), is within 3 % of the compiled audio on the library."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from voicecoach import estimate
from voicecoach.pipeline import Settings, build, plan
from voicecoach.engines.piper import installed as piper_installed

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
needs_piper = pytest.mark.skipif(not piper_installed(), reason="the piper extra is not installed (CI installs it)")


def test_every_engine_and_vocabulary_language_is_measured():
    for language in ("en", "de", "es", "fr"):
        assert estimate.speaking_rate("espeak", language) is estimate._table()["espeak"][language]
    assert estimate.speaking_rate("piper", "en") is estimate._table()["piper"]["en"]


def test_regional_tags_and_unmeasured_languages_fall_back():
    assert estimate.speaking_rate("espeak", "de-AT") == estimate.speaking_rate("espeak", "de")
    assert estimate.speaking_rate("espeak", "PT_br") == estimate._table()["espeak"]["*"]
    assert estimate.speaking_rate("no-such-engine", "en") == estimate.FALLBACK


def test_longer_text_and_slower_speech_take_longer():
    rate = estimate.speaking_rate("espeak", "en")
    short, long = rate.seconds("Lift."), rate.seconds("Lift, then hold it there for a while.")
    assert 0 < short < long
    assert rate.seconds("Lift, then hold it.", rate=Fraction(1, 2)) > rate.seconds("Lift, then hold it.")
    assert estimate.text_features("One, two. Three!") == (11, 3, 2)  # the last stop is no pause


@pytest.mark.parametrize("engine, name", [
    ("espeak", "morning.yaml"), ("espeak", "morgen.yaml"), ("espeak", "manana.yaml"), ("espeak", "matin.yaml"),
    pytest.param("piper", "quick-3-minute.yaml", marks=needs_piper),
])
def test_preview_total_is_within_3_percent_of_the_compiled_audio(engine, name, tmp_path_factory):
    """One routine per engine and language, compiled once (synthesis and schedule, no mixing)."""
    settings = Settings(engine=engine, cache_dir=tmp_path_factory.mktemp("cache"))
    compiled_s = build(SCRIPTS / name, settings=settings).timeline.duration_s
    estimated_s = plan(SCRIPTS / name, settings=settings).duration_s
    assert abs(estimated_s - compiled_s) <= 0.03 * compiled_s, (estimated_s, compiled_s)

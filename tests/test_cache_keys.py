"""cache.py's keys: every settings object yields its key one way (``settings_key``), and the key
changes when a field that changes the output changes, and only then, in every process."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from voicecoach.cache import NOT_IN_KEY, Cache, digest, settings_key
from voicecoach.engines.fake import FakeEngine
from voicecoach.formats import FORMATS
from voicecoach.mix import RenderSettings
from voicecoach.phone.library import LibrarySettings
from voicecoach.pipeline import Settings
from voicecoach.speech import Speech, SpeechSettings

# Two values per field: drawing from so few makes equal and unequal settings both common.
CHOICES: dict[type, dict[str, list]] = {
    RenderSettings: {
        "sample_rate": [44100, 48000], "mix_gain_db": [1.3, 0.0], "peak_dbfs": [-1.0, -0.5],
        "chunk_samples": [65536, 4096], "speech_gain_db": [0.0, -2.5], "tone_gain_db": [0.0, 1.5],
        "limit": [True, False],
    },
    Settings: {
        "engine": [None, "espeak"], "voice": [None, "en-us"], "rate": [None, Fraction(3, 2)],
        "sample_rate": [44100, 22050], "bitrate_kbps": [96, 128], "mp3_quality": [5, 2], "jobs": [None, 3],
        "cache_dir": [None, Path("elsewhere")], "use_cache": [True, False], "strict_engine": [False, True],
    },
    LibrarySettings: {
        "format": [FORMATS["mp3"], FORMATS["m4b"]], "split": [False, True], "jobs": [None, 2],
    },
    SpeechSettings: {
        "voice": [None, "en-us"], "language": ["en", "de"], "rate": [Fraction(1), Fraction(3, 2)],
        "sample_rate": [44100, 48000],
    },
}

OUTSIDE_THE_KEY = {RenderSettings: ["chunk_samples"], Settings: ["jobs", "cache_dir", "use_cache", "strict_engine"],
                   LibrarySettings: ["jobs"], SpeechSettings: ["voice"]}
"""The fields that do not change the output: memory, workers, the cache folder; a clip's voice
enters its key as the engine's voice identity (a model's hash), not as written."""

VOICE = "espeak|espeak-ng 1.51|en"


def key_of(settings) -> str:
    if isinstance(settings, SpeechSettings):
        return settings.cache_key("Hold.", voice=VOICE)
    return settings.cache_key()


def in_key(cls: type) -> list[str]:
    return [name for name in CHOICES[cls] if name not in OUTSIDE_THE_KEY[cls]]


@pytest.mark.parametrize("cls", list(CHOICES), ids=lambda c: c.__name__)
def test_every_field_is_covered_here(cls):
    # a new field must be added to CHOICES, so the property below checks it too
    assert set(CHOICES[cls]) == {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", list(CHOICES), ids=lambda c: c.__name__)
@hsettings(max_examples=60, deadline=None)
@given(data=st.data())
def test_key_changes_exactly_when_an_output_field_changes(cls, data):
    fields = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in CHOICES[cls].items()})
    a, b = cls(**data.draw(fields)), cls(**data.draw(fields))
    same_output = all(getattr(a, name) == getattr(b, name) for name in in_key(cls))
    assert (key_of(a) == key_of(b)) == same_output


@pytest.mark.parametrize("cls", list(CHOICES), ids=lambda c: c.__name__)
def test_fields_marked_out_of_the_key_are_the_ones_that_do_not_change_output(cls):
    marked = [f.name for f in dataclasses.fields(cls) if f.metadata == NOT_IN_KEY]
    assert marked == OUTSIDE_THE_KEY[cls]


def test_a_clip_key_covers_its_text_and_the_engine_s_voice_identity():
    base = SpeechSettings().cache_key("Hold.", voice=VOICE)
    assert SpeechSettings().cache_key("Hold!", voice=VOICE) != base
    assert SpeechSettings().cache_key("Hold.", voice="espeak|espeak-ng 1.52|en") != base
    assert SpeechSettings(voice="en-us").cache_key("Hold.", voice=VOICE) == base  # the identity stands for it


def test_kind_version_and_extra_inputs_are_part_of_the_key():
    base = settings_key("render", "mix-2", RenderSettings())
    assert base == RenderSettings().cache_key()
    assert settings_key("track", "mix-2", RenderSettings()) != base
    assert settings_key("render", "mix-3", RenderSettings()) != base
    assert settings_key("render", "mix-2", RenderSettings(), "more") != base


def test_values_that_could_differ_between_processes_are_refused():
    class Opaque:  # its repr would hold an address
        pass

    with pytest.raises(TypeError, match="cache key"):
        digest("x", Opaque())
    with pytest.raises(ValueError):
        digest("x", float("nan"))


def sample_keys() -> list[str]:
    """Keys of settings of every kind, with fractions, paths, enums and table rows in them."""
    return [
        RenderSettings().cache_key(), RenderSettings(sample_rate=48000, limit=False).cache_key(),
        Settings(rate=Fraction(4, 3), voice="en-gb", cache_dir=Path("x")).cache_key(),
        LibrarySettings(format=list(FORMATS.values())[-1], split=True).cache_key("routine", Fraction(1, 3)),
        SpeechSettings(language="de", rate=Fraction(5, 4)).cache_key("Halten.", voice="espeak|1|de"),
        Speech(FakeEngine(), Cache(None), SpeechSettings()).key("Hold."),
    ]


def test_same_settings_give_the_same_key_in_another_process():
    here = sample_keys()
    assert len(set(here)) == len(here)
    root = Path(__file__).resolve().parent.parent
    code = "import json, tests.test_cache_keys as t; print(json.dumps(t.sample_keys()))"
    for seed in ("1", "2"):  # str hashes (set and dict order) differ between these processes
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True,
                             check=True)
        assert json.loads(out.stdout) == here

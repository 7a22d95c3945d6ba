"""Real speech, end to end: routine file -> WAV and MP3, read back.  The README's first command:
with the default engine (auto), the English morning routine speaks with Piper's bundled voice."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from voicecoach.mix import integrated_loudness
from voicecoach.pipeline import Settings, build, export

pytestmark = pytest.mark.espeak

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The morning routine compiled once with a fresh cache, to WAV, MP3 and JSON."""
    folder = tmp_path_factory.mktemp("e2e")
    settings = Settings(cache_dir=folder / "cache")
    result = build(SCRIPTS / "morning.yaml", settings=settings)
    assert result.speech.engine.name == "piper"  # auto's choice for English
    export(result, folder / "m.wav", settings=settings, timeline_json=folder / "m.json")
    export(result, folder / "m.mp3", settings=settings)
    return folder, settings, result


def test_wav_is_exactly_the_timeline(compiled):
    folder, _, result = compiled
    with wave.open(str(folder / "m.wav")) as handle:
        # speech and tones alone: the voices' own 22.05 kHz, nothing above 11 kHz to carry
        assert (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) == (1, 2, 22050)
        assert handle.getnframes() == result.timeline.length_samples
        samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2") / 32768.0
    assert abs(integrated_loudness(samples, sample_rate=22050) - (-16.0)) < 1.0
    assert 20 * np.log10(np.abs(samples).max()) <= -0.99
    # speech is where the timeline says: loud inside a long clip, silent in the gap after the intro
    intro, following = result.timeline.events[:2]
    inside = samples[intro.start_sample : intro.end_sample]
    assert np.sqrt(np.mean(inside**2)) > 0.02
    assert following.start_sample > intro.end_sample
    assert not samples[intro.end_sample : following.start_sample].any()


def test_mp3_has_tags_and_one_chapter_per_step(compiled):
    folder, _, result = compiled
    audio = MP3(folder / "m.mp3")
    assert abs(audio.info.length - result.timeline.duration_s) < 0.1
    tags = ID3(folder / "m.mp3")
    assert str(tags["TIT2"]) == "Morning wake-up" and str(tags["TPE1"]) == "voicecoach"
    chapters = sorted(tags.getall("CHAP"), key=lambda c: c.start_time)
    timeline = json.loads((folder / "m.json").read_text())
    assert len(chapters) == len(timeline["chapters"]) == 6
    for frame, chapter in zip(chapters, timeline["chapters"]):
        assert frame.start_time == round(chapter["start_s"] * 1000)
        assert frame.end_time == round(chapter["end_s"] * 1000)
        assert str(frame.sub_frames["TIT2"]) == chapter["title"]
    toc = tags.getall("CTOC")[0]
    assert list(toc.child_element_ids) == [c.element_id for c in sorted(chapters, key=lambda c: c.start_time)]


def test_second_compile_synthesizes_nothing_and_reuses_the_track(compiled):
    folder, settings, first = compiled
    again = build(SCRIPTS / "morning.yaml", settings=settings)
    export(again, folder / "again.wav", settings=settings)
    assert again.speech.stats.synthesized == 0 and again.speech.stats.cached > 0
    assert again.track_was_cached
    assert (folder / "again.wav").read_bytes() == (folder / "m.wav").read_bytes()


def test_cold_compile_is_byte_identical(compiled, tmp_path):
    folder, _, _ = compiled
    fresh = Settings(cache_dir=tmp_path / "other-cache", jobs=1)
    result = build(SCRIPTS / "morning.yaml", settings=fresh)
    export(result, tmp_path / "cold.wav", settings=fresh)
    assert (tmp_path / "cold.wav").read_bytes() == (folder / "m.wav").read_bytes()


def test_editing_one_step_synthesizes_only_its_new_phrases(compiled, tmp_path):
    folder, settings, _ = compiled
    shutil.copytree(SCRIPTS, tmp_path / "scripts")
    edited = tmp_path / "scripts" / "morning.yaml"
    text = edited.read_text()
    assert "Lift your brows." in text
    edited.write_text(text.replace("cue: Lift your brows.", "cue: Raise your brows now."))
    result = build(edited, settings=settings)
    assert result.speech.stats.synthesized == 1
    assert not result.track_was_cached

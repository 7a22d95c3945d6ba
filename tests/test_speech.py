"""speech.py: the clip cache in front of the engines; real espeak-ng determinism and errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from voicecoach.cache import Cache
from voicecoach.errors import EngineError, VoicecoachError
from voicecoach.engines import get_engine
from voicecoach.engines.espeak import EspeakEngine
from voicecoach.engines.fake import FakeEngine
from voicecoach.speech import Speech, SpeechSettings


class CountingFake(FakeEngine):
    """The fake engine, remembering what it was asked to synthesize."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def synthesize(self, texts, **kw):
        self.asked.extend(texts)
        yield from super().synthesize(texts, **kw)


def make_speech(tmp_path, engine=None, **settings) -> Speech:
    return Speech(engine=engine or CountingFake(), cache=Cache(tmp_path), settings=SpeechSettings(**settings), jobs=1)


def test_only_misses_are_synthesized(tmp_path):
    first = make_speech(tmp_path)
    first.prepare(["Hold.", "Release.", "Hold."])
    assert first.engine.asked == ["Hold.", "Release."]
    assert (first.stats.synthesized, first.stats.cached) == (2, 0)

    second = make_speech(tmp_path)
    second.prepare(["Hold.", "Release.", "Lift your brows."])
    assert second.engine.asked == ["Lift your brows."]
    assert (second.stats.synthesized, second.stats.cached) == (1, 2)
    assert np.array_equal(first.clip("Hold."), second.clip("Hold."))


@pytest.mark.parametrize(
    "change", [{"rate": Fraction(3, 2)}, {"voice": "en-us"}, {"language": "de"}, {"sample_rate": 48000}]
)
def test_key_covers_every_setting(tmp_path, change):
    assert make_speech(tmp_path).key("Hold.") != make_speech(tmp_path, **change).key("Hold.")


def test_key_covers_engine_identity(tmp_path):
    class NewerFake(FakeEngine):
        def identity(self) -> str:
            return "fake-2"

    assert make_speech(tmp_path).key("Hold.") != make_speech(tmp_path, NewerFake()).key("Hold.")


def test_corrupt_clip_is_rendered_again(tmp_path):
    speech = make_speech(tmp_path)
    speech.prepare(["Hold."])
    path = speech.cache.clip_path(speech.key("Hold."))
    path.write_bytes(path.read_bytes()[:-100])
    again = make_speech(tmp_path)
    again.prepare(["Hold."])
    assert again.engine.asked == ["Hold."] and again.cache.stats.corrupt == 1
    assert np.array_equal(again.clip("Hold."), speech.clip("Hold."))


def test_clips_are_trimmed_and_resampled(tmp_path):
    speech = make_speech(tmp_path, sample_rate=44100)
    clip = speech.clip("Hold.")
    hum = FakeEngine.clip_seconds("Hold.")
    # the fake's 50 ms of padding on each side is trimmed away, up to the processing margins
    assert abs(len(clip) / 44100 - float(hum)) < 0.06
    assert clip.dtype == np.int16 and np.abs(clip).max() > 1000


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(VoicecoachError, match="unknown speech engine 'nope'; use one of: espeak, fake"):
        get_engine("nope")


# --- real espeak-ng ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def espeak():
    engine = EspeakEngine()
    yield engine
    engine.close()


@pytest.mark.espeak
def test_espeak_clips_do_not_depend_on_history(espeak):
    texts = ["Hold.", "Release.", "Place your fingertips on your forehead."]
    one = dict(espeak.synthesize(texts, voice="en", rate=Fraction(1), sample_rate=44100, jobs=2, timeout_s=30))
    other = dict(espeak.synthesize(["Something else first."] + texts[::-1], voice="en", rate=Fraction(1), sample_rate=44100,
                                   jobs=1, timeout_s=30))
    for text in texts:
        assert one[text].tobytes() == other[text].tobytes()
    assert len(one["Place your fingertips on your forehead."]) > len(one["Hold."]) > 0


@pytest.mark.espeak
def test_espeak_rate_changes_length(espeak):
    slow, fast = (
        dict(espeak.synthesize(["Breathe in slowly and deeply."], voice="en", rate=r, sample_rate=44100, jobs=1, timeout_s=30))
        for r in (Fraction(3, 4), Fraction(3, 2))
    )
    assert len(slow["Breathe in slowly and deeply."]) > 1.5 * len(fast["Breathe in slowly and deeply."])


@pytest.mark.espeak
def test_espeak_unknown_voice_is_an_error(espeak):
    # not 'no-such-voice': as a BCP 47 tag that is Norwegian ('no'), which espeak speaks
    with pytest.raises(EngineError, match="espeak has no voice 'xx-no-such-voice'"):
        list(espeak.synthesize(["Hello."], voice="xx-no-such-voice", rate=Fraction(1), sample_rate=44100, jobs=1, timeout_s=30))


@pytest.mark.espeak
def test_espeak_lists_voices_with_languages(espeak):
    voices = espeak.voices()
    assert len(voices) > 50
    assert any("de" in v.languages for v in voices)
    assert any(lang.startswith("en-") for v in voices for lang in v.languages)


def test_memory_holds_few_clips_and_reloads_the_rest(tmp_path):
    speech = make_speech(tmp_path)
    speech.max_resident_bytes = 100_000  # a handful of clips
    texts = [f"Phrase number {i}, said slowly." for i in range(40)]
    speech.prepare(texts)
    first = {t: speech.clip(t).copy() for t in texts}
    assert speech._recent_bytes <= 100_000 + max(c.nbytes for c in first.values())
    again = make_speech(tmp_path)  # a fresh run reads them all from the cache
    for text in texts:
        assert np.array_equal(speech.clip(text), first[text])
        assert np.array_equal(again.clip(text), first[text])
    assert speech.engine.asked == texts  # nothing synthesized twice


def test_clips_the_cache_cannot_keep_stay_in_memory(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    speech = Speech(engine=CountingFake(), cache=Cache(blocker), settings=SpeechSettings(), jobs=1)
    speech.max_resident_bytes = 1
    texts = ["Hold.", "Release.", "Breathe in."]
    speech.prepare(texts)
    assert all(len(speech.clip(t)) == speech.samples(t) for t in texts)
    assert speech.engine.asked == texts


def test_a_clip_pruned_from_the_cache_is_made_again(tmp_path):
    speech = make_speech(tmp_path)
    speech.max_resident_bytes = 1
    speech.prepare(["Hold.", "Release."])
    before = speech.clip("Hold.").copy()
    speech.clip("Release.")  # pushes "Hold." out of memory
    speech.cache.clip_path(speech.key("Hold.")).unlink()
    assert np.array_equal(speech.clip("Hold."), before)
    assert speech.engine.asked == ["Hold.", "Release.", "Hold."]

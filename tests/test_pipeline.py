"""pipeline.py: Build and LiveBuild give the same samples, exports and reads agree."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from voicecoach.errors import EngineError
from voicecoach.pipeline import Build, LiveBuild, Settings, build
from voicecoach.script import load_routine
from voicecoach.engines import ENGINES, EngineSpec
from voicecoach.engines.fake import FakeEngine

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture
def settings(tmp_path):
    return Settings(engine="fake", cache_dir=tmp_path / "cache")


def whole(result: Build) -> np.ndarray:
    return np.concatenate(list(result.chunks()))


def test_read_equals_the_exported_samples(settings):
    result = build(SCRIPTS / "morning.yaml", settings=settings)
    track = whole(result)
    fresh = build(SCRIPTS / "morning.yaml", settings=settings)  # reads from the track cache now
    for start in (0, 1, 12345, len(track) - 100, len(track) - 1):
        np.testing.assert_array_equal(result.read(start, 4096), track[start : start + 4096])
        np.testing.assert_array_equal(fresh.read(start, 4096), track[start : start + 4096])
    assert len(result.read(len(track) - 10, 100)) == 10


def test_live_build_gives_the_same_timeline_and_samples(settings, tmp_path):
    reference = build(SCRIPTS / "evening-jaw-release.yaml", settings=settings)
    track = whole(reference)
    live = LiveBuild(SCRIPTS / "evening-jaw-release.yaml", settings=Settings(engine="fake", cache_dir=tmp_path / "other"))
    pieces = [live.read(start, 50_000) for start in range(0, len(track), 50_000)]
    np.testing.assert_array_equal(np.concatenate(pieces), track)
    assert live.complete and live.timeline == reference.timeline
    assert live.steps == len(reference.timeline.chapters)


def test_live_build_chapters_grow_in_order(settings):
    live = LiveBuild(SCRIPTS / "morning.yaml", settings=settings)
    first = live.wait(chapters=1)
    assert len(first.chapters) >= 1 and first.chapters[0].start_sample == 0
    final = live.wait()
    *done, last = first.chapters  # the last may be the step still being scheduled: it only grows
    assert final.chapters[: len(done)] == tuple(done)
    assert final.chapters[len(done)].start_sample == last.start_sample <= last.end_sample
    assert final.chapters[len(done)].end_sample >= last.end_sample
    assert final.length_samples == final.chapters[-1].end_sample


class Trickle(FakeEngine):
    """Clips one at a time, slowly: the schedule waits for each (as with a cold Piper)."""

    def synthesize(self, texts, **kw):
        for text in texts:
            time.sleep(0.003)
            yield from super().synthesize([text], **kw)


def test_live_build_plays_the_first_phrase_before_the_first_step_is_scheduled(tmp_path, monkeypatch):
    monkeypatch.setitem(ENGINES, "trickle", EngineSpec(name="trickle", about="slow", create=Trickle))
    reference = build(SCRIPTS / "morning.yaml", settings=Settings(engine="fake", cache_dir=tmp_path / "ref"))
    track, final = whole(reference), reference.timeline
    seen = []
    live = LiveBuild(SCRIPTS / "morning.yaml", settings=Settings(engine="trickle", cache_dir=tmp_path / "live"))
    first = live.wait(chapters=1)  # what play waits for: the first step begun, not complete
    seen.append(first)
    assert first.chapters[0].end_sample < final.chapters[0].end_sample
    pieces = []
    for start in range(0, len(track), 20_000):
        pieces.append(live.read(start, 20_000))
        seen.append(live.timeline)
    np.testing.assert_array_equal(np.concatenate(pieces), track)  # the same samples, however it was read
    assert live.complete and live.timeline == final
    partial = [t for t in seen if t.chapters[-1].end_sample < final.chapters[len(t.chapters) - 1].end_sample]
    assert partial, "no step was ever played while it was being scheduled"
    for timeline in seen:  # what was published never changes: later ones only add after it
        known = {(e.start_sample, e.text or e.tone) for e in timeline.events}
        assert known <= {(e.start_sample, e.text or e.tone) for e in final.events}


def test_live_build_reports_engine_failures_to_the_reader(tmp_path, monkeypatch):
    class Broken(FakeEngine):
        def synthesize(self, texts, **kw):
            yield from super().synthesize(texts[:2], **kw)
            raise EngineError("espeak failed on 'x'")

    monkeypatch.setitem(ENGINES, "broken", EngineSpec(name="broken", about="fails", create=Broken))
    live = LiveBuild(SCRIPTS / "morning.yaml", settings=Settings(engine="broken", cache_dir=tmp_path))
    with pytest.raises(EngineError, match="espeak failed"):
        live.read(0, 10_000_000)


# ---------------------------------------------------------------------------------------
# compile_to: encoding while speech is still being made


class Counting(Trickle):
    """A slow engine that counts the clips it has made."""

    made = 0

    def synthesize(self, texts, **kw):
        for text, clip in super().synthesize(texts, **kw):
            Counting.made += 1
            yield text, clip


@pytest.mark.parametrize("suffix", ["mp3", "wav"])
def test_compile_to_encodes_while_speech_is_made_and_writes_the_same_bytes(tmp_path, monkeypatch, suffix):
    from voicecoach import formats
    from voicecoach.pipeline import compile_to, export

    monkeypatch.setitem(ENGINES, "counting", EngineSpec(name="counting", about="slow", create=Counting))
    reference = build(SCRIPTS / "morning.yaml", settings=Settings(engine="fake", use_cache=False))
    export(reference, tmp_path / f"reference.{suffix}", settings=Settings(engine="fake", use_cache=False),
           timeline_json=tmp_path / "reference.json")
    Counting.made, made_at_first_chunk = 0, []
    checked = formats._checked_chunks

    def watched(chunks, length, **kw):
        for chunk in checked(chunks, length, **kw):
            made_at_first_chunk.append(Counting.made)
            yield chunk

    monkeypatch.setattr(formats, "_checked_chunks", watched)
    settings = Settings(engine="counting", cache_dir=tmp_path / "cache")
    out = tmp_path / f"streamed.{suffix}"
    result = compile_to(SCRIPTS / "morning.yaml", out, settings=settings, timeline_json=tmp_path / "streamed.json")
    phrases = result.speech.stats.synthesized
    assert phrases > 20 and Counting.made == phrases
    assert made_at_first_chunk[0] < phrases / 2  # the track was being written while speech was made
    assert out.read_bytes() == (tmp_path / f"reference.{suffix}").read_bytes()
    assert (tmp_path / "streamed.json").read_bytes() == (tmp_path / "reference.json").read_bytes()
    assert result.timeline == reference.timeline and not result.track_was_cached
    again = compile_to(SCRIPTS / "morning.yaml", tmp_path / f"again.{suffix}", settings=settings)
    assert again.track_was_cached and again.speech.stats.synthesized == 0  # cached under its final key
    assert (tmp_path / f"again.{suffix}").read_bytes() == out.read_bytes()


def test_compile_to_leaves_nothing_when_speech_fails_midway(tmp_path, monkeypatch):
    from voicecoach.pipeline import compile_to

    class Broken(Trickle):
        def synthesize(self, texts, **kw):
            yield from super().synthesize(texts[:12], **kw)
            raise EngineError("espeak failed on 'x'")

    monkeypatch.setitem(ENGINES, "broken", EngineSpec(name="broken", about="fails", create=Broken))
    out = tmp_path / "out" / "morning.mp3"
    out.parent.mkdir()
    with pytest.raises(EngineError, match="espeak failed"):
        compile_to(SCRIPTS / "morning.yaml", out, settings=Settings(engine="broken", cache_dir=tmp_path / "cache"))
    assert list(out.parent.iterdir()) == []  # no MP3, no temporary file
    tracks = tmp_path / "cache" / "tracks"
    assert not tracks.exists() or list(tracks.iterdir()) == []


# ---------------------------------------------------------------------------------------
# The track's sample rate


def _with_top_level(folder: Path, extra: str, name: str = "r.yaml") -> Path:
    path = folder / name
    path.write_text(f"routine: R\n{extra}steps:\n  - say: Breathe in slowly.\n  - exercise: Brow lift\n"
                    "    reps: 2\n    hold: 2s\n", encoding="utf-8")
    return path


def _tone_wav(path: Path, rate: int = 44100) -> Path:
    import wave

    t = np.arange(rate) / rate
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.round(np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return path


def test_speech_and_tones_make_a_22050_hz_track_and_mp3(tmp_path):
    from mutagen.mp3 import MP3

    from voicecoach.pipeline import compile_to

    settings = Settings(engine="fake", cache_dir=tmp_path / "cache")
    result = compile_to(SCRIPTS / "morning.yaml", tmp_path / "m.mp3", settings=settings)
    assert result.timeline.sample_rate == 22050 and MP3(tmp_path / "m.mp3").info.sample_rate == 22050
    assert abs(MP3(tmp_path / "m.mp3").info.length - result.timeline.length_samples / 22050) < 0.1


@pytest.mark.parametrize("extra", ["music: {file: bed.wav}\n", "sounds: {chime: bell.wav}\n"])
def test_music_or_sound_files_make_a_44100_hz_track(tmp_path, extra):
    _tone_wav(tmp_path / "bed.wav")
    _tone_wav(tmp_path / "bell.wav")
    plain = build(_with_top_level(tmp_path, "", "plain.yaml"), settings=Settings(engine="fake", use_cache=False))
    result = build(_with_top_level(tmp_path, extra), settings=Settings(engine="fake", use_cache=False))
    assert (plain.timeline.sample_rate, result.timeline.sample_rate) == (22050, 44100)
    assert abs(len(result.speech.clip("Breathe in slowly.")) - 2 * len(plain.speech.clip("Breathe in slowly."))) <= 2


def test_a_voice_above_22050_hz_or_the_settings_make_44100(tmp_path, monkeypatch):
    import dataclasses

    routine = load_routine(_with_top_level(tmp_path, ""))
    assert Settings(engine="fake").sample_rate_for(routine) == 22050
    assert Settings(engine="fake", sample_rate=44100).sample_rate_for(routine) == 44100
    assert build(routine, settings=Settings(engine="fake", sample_rate=44100, use_cache=False)).timeline.sample_rate == 44100
    monkeypatch.setitem(ENGINES, "fake", dataclasses.replace(ENGINES["fake"], voice_sample_rate=lambda voice: 24000))
    assert Settings(engine="fake").sample_rate_for(routine) == 44100
    monkeypatch.setitem(ENGINES, "fake", dataclasses.replace(ENGINES["fake"], voice_sample_rate=lambda voice: 16000))
    assert Settings(engine="fake").sample_rate_for(routine) == 22050


# ---------------------------------------------------------------------------------------
# synthesize_ahead: one batch per voice, the smaller ones alongside the biggest


class _Alongside(FakeEngine):
    """The biggest batch's engine: it goes on only once the smaller batch's engine has begun."""

    begun = None  # a threading.Event, set by _Small
    asked: list = []

    def synthesize(self, texts, **kw):
        assert _Alongside.begun.wait(10), "the smaller batch did not run alongside the biggest"
        _Alongside.asked = list(texts)
        yield from super().synthesize(texts, **kw)


class _Small(FakeEngine):
    made = 0  # instances

    def __init__(self):
        _Small.made += 1

    def synthesize(self, texts, **kw):
        _Alongside.begun.set()
        yield from super().synthesize(texts, **kw)


def test_synthesize_ahead_makes_the_smaller_batches_alongside_the_biggest(tmp_path, monkeypatch):
    import threading

    from voicecoach.compile import collect_phrases
    from voicecoach.pipeline import routine_vocabulary, synthesize_ahead

    _Alongside.begun = threading.Event()
    monkeypatch.setitem(ENGINES, "big", EngineSpec(name="big", about="waits", create=_Alongside))
    monkeypatch.setitem(ENGINES, "small", EngineSpec(name="small", about="starts", create=_Small))
    big, small = load_routine(SCRIPTS / "morning.yaml"), load_routine(_with_top_level(tmp_path, ""))
    counts, _Small.made = [], 0
    made = synthesize_ahead([(small, Settings(engine="small", cache_dir=tmp_path / "c")),
                             (big, Settings(engine="big", cache_dir=tmp_path / "c")),
                             (small, Settings(engine="small", rate=Fraction(5, 4), cache_dir=tmp_path / "c"))],
                            progress=lambda stage, done, total: counts.append((done, total)))
    total = sum(len(set(collect_phrases(r, vocab=routine_vocabulary(r)))) for r in (big, small, small))
    assert made == total and counts == [(n, total) for n in range(1, total + 1)]  # no count lost between threads
    assert _Small.made == 1  # the smaller batches share their engine (one espeak server for every language)
    lengths = [len(text) for text in _Alongside.asked]
    assert len(lengths) > 10 and lengths == sorted(lengths, reverse=True)  # longest first: a short tail
    again = build(big, settings=Settings(engine="big", cache_dir=tmp_path / "c"))
    assert again.speech.stats.synthesized == 0  # everything is in the cache


class _Interrupted(FakeEngine):
    def synthesize(self, texts, **kw):
        assert _Blocking.begun.wait(10)
        yield from super().synthesize(texts[:1], **kw)
        raise KeyboardInterrupt  # Ctrl-C while the biggest batch is being made


class _Blocking(FakeEngine):
    """A speech server that answers nothing until it is killed."""

    begun = killed = None

    def synthesize(self, texts, **kw):
        _Blocking.begun.set()
        assert _Blocking.killed.wait(10), "the smaller batch's server was not stopped"
        raise EngineError("the blocking speech server stopped unexpectedly")
        yield

    def kill(self):
        _Blocking.killed.set()


def test_synthesize_ahead_interrupted_stops_the_other_batches(tmp_path, monkeypatch):
    import threading

    from voicecoach.pipeline import synthesize_ahead

    _Blocking.begun, _Blocking.killed = threading.Event(), threading.Event()
    monkeypatch.setitem(ENGINES, "interrupted", EngineSpec(name="interrupted", about="Ctrl-C", create=_Interrupted))
    monkeypatch.setitem(ENGINES, "blocking", EngineSpec(name="blocking", about="hangs", create=_Blocking))
    big, small = load_routine(SCRIPTS / "morning.yaml"), load_routine(_with_top_level(tmp_path, ""))
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        synthesize_ahead([(big, Settings(engine="interrupted", cache_dir=tmp_path / "c")),
                          (small, Settings(engine="blocking", cache_dir=tmp_path / "c"))])
    assert _Blocking.killed.is_set() and time.monotonic() - began < 10
    assert not [t for t in threading.enumerate() if t.name == "voicecoach-speech"]


class _Given(FakeEngine):
    """Counts its instances, the threads that use each and the ones closed."""

    made: list = []
    closed: list = []

    def __init__(self):
        self.threads = set()
        _Given.made.append(self)

    def synthesize(self, texts, **kw):
        import threading

        self.threads.add(threading.current_thread().name)
        yield from super().synthesize(texts, **kw)

    def close(self):
        _Given.closed.append(self)


def test_synthesize_ahead_speaks_with_the_engines_it_is_given(tmp_path, monkeypatch):
    """An engine already started (export's, loading its model) makes the batches of one thread;
    the caller closes it.  Two batches of the same engine name: the other thread gets its own."""
    from voicecoach.pipeline import synthesize_ahead

    monkeypatch.setitem(ENGINES, "given", EngineSpec(name="given", about="counts", create=_Given))
    _Given.made, _Given.closed = [], []
    given = _Given()
    big, small = load_routine(SCRIPTS / "morning.yaml"), load_routine(_with_top_level(tmp_path, ""))
    made = synthesize_ahead([(big, Settings(engine="given", cache_dir=tmp_path / "c")),
                             (small, Settings(engine="given", rate=Fraction(5, 4), cache_dir=tmp_path / "c"))],
                            engines={"given": given})
    assert made > 0 and len(_Given.made) == 2  # the given one and the helper's own
    assert given.threads == {"MainThread"}  # the biggest batch's, and only that thread's
    assert _Given.made[1].threads == {"voicecoach-speech"}
    assert _Given.closed == [_Given.made[1]]  # the given engine is left to its owner


def test_synthesize_ahead_with_nothing_to_speak_makes_nothing(tmp_path):
    from voicecoach.pipeline import synthesize_ahead

    routine = load_routine(SCRIPTS / "morning.yaml")
    given = _Given()
    assert synthesize_ahead([(routine, Settings(engine="fake", use_cache=False))], engines={"fake": given}) == 0
    assert synthesize_ahead([], engines={"fake": given}) == 0

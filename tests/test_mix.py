"""mix.py: tones, clip processing, loudness, and the single-pass, chunk-independent mixer."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from voicecoach import mix
from voicecoach.mix import (
    CLIP_LOUDNESS_LUFS,
    CLIP_PEAK_DBFS,
    LoudnessMeter,
    RenderSettings,
    integrated_loudness,
    limit_peaks,
    measure_track,
    process_clip,
    render,
    render_to_array,
    resample,
    tone_length,
    tone_samples,
)
from voicecoach.model import Chapter, Cue, Event, EventKind, Timeline, Tone

RATE = 44100


def db(x: float) -> float:
    return 20 * math.log10(x)


def sine(freq: float, seconds: float, *, rate: int = RATE, peak: float = 1.0) -> np.ndarray:
    return peak * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)


def burst(n: int, *, first: int = 12345, amp: int = 9000, freq: float = 300.0) -> np.ndarray:
    """A fake processed clip: a 300 Hz sine burst whose first sample is distinctive."""
    x = np.round(amp * np.sin(2 * np.pi * freq * (np.arange(n) + 0.5) / RATE)).astype(np.int16)
    if n:
        x[0] = first
    return x


class Clips:
    """A clip source for tests: text -> burst, lengths from the text's table."""

    def __init__(self, lengths: dict[str, int], **kw) -> None:
        self.clips = {text: burst(n, first=1000 + 37 * i, **kw) for i, (text, n) in enumerate(sorted(lengths.items()))}
        self.calls = 0

    def __call__(self, text: str) -> np.ndarray:
        self.calls += 1
        return self.clips[text]


def speech(text: str, start: int, clips: Clips, step: int = 0) -> Event:
    return Event(EventKind.SPEECH, Cue.SAY, start, len(clips.clips[text]), step, text=text)


def tone_event(tone: Tone, start: int, step: int = 0, rate: int = RATE) -> Event:
    return Event(EventKind.TONE, Cue.START, start, tone_length(tone, sample_rate=rate), step, tone=tone)


def timeline(events: list[Event], length: int, rate: int = RATE) -> Timeline:
    events = sorted(events, key=lambda e: e.start_sample)
    return Timeline("Test", rate, length, tuple(events), (Chapter("All", 0, 0, length),))


RAW = RenderSettings(mix_gain_db=0.0, limit=False)


def reference_mix(tl: Timeline, clip, *, tone_gain: float = 1.0) -> np.ndarray:
    """The obvious whole-array mix at unity gain, in the same order the mixer adds."""
    out = np.zeros(tl.length_samples, dtype=np.float32)
    for e in sorted(tl.events, key=lambda e: e.start_sample):
        if e.kind is EventKind.TONE:
            src = np.asarray(tone_samples(e.tone, sample_rate=tl.sample_rate), dtype=np.float32) * np.float32(tone_gain)
        else:
            src = clip(e.text).astype(np.float32) * np.float32(1 / 32768)
        out[e.start_sample : e.end_sample] += src
    return np.clip(np.round(out * np.float32(32768)), -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------------------------------
# Settings


def test_cache_key_is_stable_and_covers_the_fields():
    a = RenderSettings()
    assert a.cache_key() == RenderSettings().cache_key()
    assert len(a.cache_key()) == 64
    assert RenderSettings(mix_gain_db=0.0).cache_key() != a.cache_key()
    assert RenderSettings(sample_rate=48000).cache_key() != a.cache_key()
    assert RenderSettings(tone_gain_db=-3.0).cache_key() != a.cache_key()
    assert RenderSettings(limit=False).cache_key() != a.cache_key()
    # Chunking never changes the samples (tested below), so it must not split the cache.
    assert RenderSettings(chunk_samples=1000).cache_key() == a.cache_key()


def test_settings_refuse_nonsense():
    with pytest.raises(ValueError):
        RenderSettings(chunk_samples=0)
    with pytest.raises(ValueError):
        RenderSettings(sample_rate=0)
    with pytest.raises(ValueError):
        RenderSettings(peak_dbfs=1.0)


# ---------------------------------------------------------------------------------------
# Tones


@pytest.mark.parametrize("rate", [44100, 48000, 22050])
@pytest.mark.parametrize("tone", list(Tone))
def test_tones_start_and_end_at_zero(tone, rate):
    x = tone_samples(tone, sample_rate=rate)
    assert x.dtype == np.float32
    assert len(x) == tone_length(tone, sample_rate=rate)
    assert x[0] == 0.0 and x[-1] == 0.0
    # A ramp, not a step: the first millisecond stays well below the tone's peak, as does the last.
    ms = rate // 1000
    peak = float(np.max(np.abs(x)))
    assert float(np.max(np.abs(x[:ms]))) < 0.5 * peak
    assert float(np.max(np.abs(x[-ms:]))) < 0.05 * peak
    assert not x.flags.writeable  # shared through the cache


@pytest.mark.parametrize("tone", list(Tone))
def test_tones_are_deterministic(tone):
    first = tone_samples(tone, sample_rate=RATE).tobytes()
    mix._tone_cached.cache_clear()
    assert tone_samples(tone, sample_rate=RATE).tobytes() == first


def test_tone_lengths_and_levels():
    lengths = {t: tone_length(t, sample_rate=RATE) / RATE for t in Tone}
    assert 0.04 <= lengths[Tone.TICK] <= 0.06
    assert 0.9 <= lengths[Tone.CHIME] <= 1.1
    assert 0.5 <= lengths[Tone.BELL] <= 0.7
    assert 1.6 <= lengths[Tone.FINISH] <= 2.0
    peaks = {t: float(np.max(np.abs(tone_samples(t, sample_rate=RATE)))) for t in Tone}
    assert peaks[Tone.TICK] < peaks[Tone.BELL] < peaks[Tone.CHIME] < peaks[Tone.FINISH] <= 0.3 + 1e-6
    ceiling = 10 ** (RenderSettings().peak_dbfs / 20)
    speech_peak = 10 ** (CLIP_PEAK_DBFS / 20)
    # Tick and bell may sound with speech from their first sample; chime and finish only from
    # 0.6 s on (compile's chime lead).  Either way, speech plus tone stays under the ceiling.
    for t in (Tone.TICK, Tone.BELL):
        assert speech_peak + peaks[t] <= ceiling
    for t in (Tone.CHIME, Tone.FINISH):
        tail = tone_samples(t, sample_rate=RATE)[round(0.6 * RATE) :]
        assert speech_peak + float(np.max(np.abs(tail))) <= ceiling


@pytest.mark.parametrize("tone,freq", [(Tone.CHIME, 880), (Tone.BELL, 660)])
def test_tone_pitch(tone, freq):
    x = tone_samples(tone, sample_rate=RATE).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * RATE / len(x) - freq) < 5


# ---------------------------------------------------------------------------------------
# Loudness


@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("peak_dbfs,expected", [(0.0, -3.01), (-20.0, -23.01)])
def test_sine_loudness_matches_bs1770(rate, peak_dbfs, expected):
    x = sine(1000, 10, rate=rate, peak=10 ** (peak_dbfs / 20))
    assert integrated_loudness(x, sample_rate=rate) == pytest.approx(expected, abs=0.3)


def test_k_weighting_shape():
    w = mix.k_weighting_power(np.array([20.0, 1000.0, 10000.0]), sample_rate=48000)
    gains = 10 * np.log10(w)
    assert gains[0] < -5  # the RLB high-pass
    assert 0.4 < gains[1] < 0.9
    assert 3.5 < gains[2] < 4.5  # the +4 dB shelf


def test_gating_ignores_silence_and_quiet_passages():
    loud = sine(1000, 5, peak=0.5)
    alone = integrated_loudness(loud, sample_rate=RATE)
    # 47 full blocks, then 3 straddling the end (3/4, 2/4, 1/4 loud) pass the gates: -0.13 LU.
    straddle = 10 * math.log10((47 + 0.75 + 0.5 + 0.25) / 50)
    with_silence = np.concatenate([loud, np.zeros(10 * RATE)])
    assert integrated_loudness(with_silence, sample_rate=RATE) == pytest.approx(alone + straddle, abs=0.01)
    with_quiet = np.concatenate([loud, 0.005 * sine(1000, 10)])  # -40 LU: under the relative gate
    assert integrated_loudness(with_quiet, sample_rate=RATE) == pytest.approx(alone + straddle, abs=0.01)
    assert integrated_loudness(np.zeros(RATE), sample_rate=RATE) == -math.inf
    assert integrated_loudness(loud[: RATE // 4], sample_rate=RATE) == -math.inf  # under one block


@hsettings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=9 * RATE), max_size=12))
def test_meter_does_not_depend_on_chunking(cuts):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(9 * RATE) * np.repeat(rng.uniform(0.001, 0.3, 90), RATE // 10)
    whole = integrated_loudness(x, sample_rate=RATE)
    meter = LoudnessMeter(sample_rate=RATE)
    bounds = [0, *sorted(cuts), len(x)]
    for a, b in zip(bounds, bounds[1:]):
        meter.add(x[a:b])
    assert meter.loudness() == whole  # exactly, not approximately


# ---------------------------------------------------------------------------------------
# Clip processing


def test_resample_length_and_accuracy():
    # A sine with a whole number of periods is band-limited and periodic: FFT resampling is exact.
    x = sine(1000, 0.5, rate=22050)
    y = resample(x, source_rate=22050, sample_rate=44100)
    assert len(y) == 2 * len(x)
    np.testing.assert_allclose(y, sine(1000, 0.5, rate=44100), atol=1e-9)
    z = resample(sine(1000, 0.5, rate=48000), source_rate=48000, sample_rate=44100)
    np.testing.assert_allclose(z, sine(1000, 0.5, rate=44100), atol=1e-6)
    for n in (0, 1, 7, 22051, 22050):
        assert len(resample(np.ones(n), source_rate=22050, sample_rate=44100)) == 2 * n
        assert len(resample(np.ones(n), source_rate=48000, sample_rate=44100)) == round(n * 44100 / 48000)


def test_process_clip_resamples_to_the_right_length_and_pitch():
    raw = np.round(sine(1000, 1.0, rate=22050, peak=0.3) * 32767).astype(np.int16)
    raw = np.concatenate([raw, raw[:1]])  # odd length: 22051
    out = process_clip(raw, source_rate=22050, sample_rate=44100)
    assert out.dtype == np.int16
    assert len(out) == 2 * len(raw)  # nothing to trim: the sound fills the clip
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    assert abs(np.argmax(spectrum) * 44100 / len(out) - 1000) < 2


def test_process_clip_trims_padding():
    pad_before, pad_after, body = 0.3, 0.5, 0.6
    noise = 0.0005 * sine(50, pad_before, rate=22050)  # about -66 dBFS: silence to the trimmer
    raw = np.concatenate([noise, sine(440, body, rate=22050, peak=0.4), np.zeros(round(pad_after * 22050))])
    out = process_clip(np.round(raw * 32767).astype(np.int16), source_rate=22050, sample_rate=44100)
    expected = body + 0.010 + 0.040  # the sound plus the margins kept before and after
    assert abs(len(out) / 44100 - expected) < 0.006
    onset = np.flatnonzero(np.abs(out) > 0.1 * np.max(np.abs(out)))[0] / 44100
    assert abs(onset - 0.010) < 0.006
    assert out[0] == 0 and out[-1] == 0  # faded ends


def test_processed_clip_is_at_speech_loudness_and_under_the_ceiling():
    rng = np.random.default_rng(3)
    # Speech-like: noise bursts (syllables) with pauses, at 22050 Hz, quiet and with spikes.
    envelope = np.repeat(rng.choice([0.0, 0.02, 0.05, 0.08], size=40), 1102)
    raw = rng.standard_normal(len(envelope)) * envelope
    raw[5000::7000] = 0.9  # spikes: the limiter has to act
    out = process_clip(np.round(raw * 32767).astype(np.int16), source_rate=22050, sample_rate=44100)
    level = integrated_loudness(out / 32768, sample_rate=44100)
    assert level == pytest.approx(CLIP_LOUDNESS_LUFS, abs=1.0)
    assert np.max(np.abs(out.astype(np.int32))) <= 10 ** (CLIP_PEAK_DBFS / 20) * 32768 + 1


def test_process_clip_of_a_short_word_is_normalized_too():
    raw = np.round(sine(500, 0.25, rate=22050, peak=0.05) * 32767).astype(np.int16)
    out = process_clip(raw, source_rate=22050, sample_rate=44100)
    # Under one 400 ms block: measured as one ungated block.
    energy = mix._kweighted_energy(out / 32768, 44100) / len(out)
    assert -0.691 + 10 * math.log10(energy) == pytest.approx(CLIP_LOUDNESS_LUFS, abs=1.0)


def test_process_clip_silence_and_determinism():
    silent = process_clip(np.zeros(22050, dtype=np.int16), source_rate=22050, sample_rate=44100)
    assert silent.dtype == np.int16 and len(silent) <= 441 and not silent.any()
    assert len(process_clip(np.zeros(0, dtype=np.int16), source_rate=22050, sample_rate=44100)) <= 441
    raw = np.round(sine(300, 0.7, rate=24000, peak=0.2) * 32767).astype(np.int16)
    a = process_clip(raw, source_rate=24000, sample_rate=44100)
    b = process_clip(raw.copy(), source_rate=24000, sample_rate=44100)
    assert a.tobytes() == b.tobytes()
    with pytest.raises(ValueError):
        process_clip(np.zeros((10, 2), dtype=np.int16), source_rate=22050, sample_rate=44100)


@hsettings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=300),
    half=st.integers(min_value=1, max_value=20),
)
def test_sliding_min_matches_sliding_window_view(values, half):
    g = np.array(values)
    padded = np.concatenate([np.ones(half), g, np.ones(half)])
    expected = sliding_window_view(padded, 2 * half + 1).min(axis=1)
    np.testing.assert_array_equal(mix._sliding_min(g, half), expected)


def test_limiter_never_overshoots_and_leaves_quiet_signals_alone():
    rng = np.random.default_rng(11)
    x = rng.standard_normal(20000) * 0.3
    x[::997] = 1.5
    y = limit_peaks(x, ceiling=0.5, window=176)
    assert np.max(np.abs(y)) <= 0.5 + 1e-12
    assert np.all(np.abs(y) <= np.abs(x) + 1e-15)  # only ever attenuates
    quiet = 0.4 * np.sin(np.arange(1000) / 10)
    np.testing.assert_array_equal(limit_peaks(quiet, ceiling=0.5, window=176), quiet)


def _dense_limit_peaks(x, *, ceiling, window):
    """limit_peaks as it was first written: the gain worked out at every sample."""
    x = np.asarray(x, dtype=np.float64)
    magnitude = np.abs(x)
    if not len(x) or float(np.max(magnitude)) <= ceiling:
        return x.copy()
    half = max(1, window // 2)
    width = 2 * half
    with np.errstate(divide="ignore"):
        g = np.minimum(1.0, ceiling / magnitude)
    m = np.floor(mix._sliding_min(g, width) * mix._GAIN_ONE).astype(np.int64)
    padded = np.concatenate([np.full(half, m[0]), m, np.full(half, m[-1])])
    running = np.concatenate([[0], np.cumsum(padded)])
    smooth = (running[width + 1 :] - running[: -width - 1]) // (width + 1)
    return x * np.minimum(smooth / mix._GAIN_ONE, g)


@hsettings(max_examples=150, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=3000),
    window=st.integers(min_value=1, max_value=200),
    peaks=st.lists(st.tuples(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.5, max_value=4.0)),
                   max_size=12),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_limiter_works_only_near_peaks_and_gives_the_same_samples(n, window, peaks, seed):
    """Only the stretches around samples over the ceiling are worked on: bit-identical to the
    gain worked out everywhere, whether peaks are lone, clustered or at either end."""
    x = np.random.default_rng(seed).standard_normal(n) * 0.25
    for where, level in peaks:
        x[min(n - 1, int(where * n))] = level * (1 if seed % 2 else -1)
    np.testing.assert_array_equal(limit_peaks(x, ceiling=0.5, window=window),
                                  _dense_limit_peaks(x, ceiling=0.5, window=window))


# ---------------------------------------------------------------------------------------
# The mixer


def _sample_timeline() -> tuple[Timeline, Clips]:
    clips = Clips({"hello": 30000, "one": 9000, "two": 8000, "long intro": 200000})
    events = [
        speech("long intro", 1000, clips),
        tone_event(Tone.CHIME, 0),
        speech("one", 50000, clips),  # overlaps the intro
        tone_event(Tone.TICK, 52000),
        speech("two", 250000, clips),
        speech("hello", 260000, clips),  # overlaps "two"
        tone_event(Tone.BELL, 300000),
        tone_event(Tone.FINISH, 320000),
    ]
    return timeline(events, 320000 + tone_length(Tone.FINISH, sample_rate=RATE) + 20000), clips


def test_each_event_starts_exactly_at_its_sample():
    clips = Clips({"a": 5000, "b": 7000, "c": 100})
    events = [speech("a", 100, clips), speech("b", 9000, clips), speech("c", 44099, clips)]
    tl = timeline(events, 50000)
    out = render_to_array(tl, clips, settings=RAW)
    for e in events:
        clip = clips.clips[e.text]
        assert out[e.start_sample] == clip[0]  # the distinctive first sample
        assert out[e.start_sample - 1] == 0
        np.testing.assert_array_equal(out[e.start_sample : e.end_sample], clip)
    assert not out[:100].any() and not out[44199:].any()


def test_fixed_gain_keeps_placement():
    tl, clips = _sample_timeline()
    settings = RenderSettings()
    out = render_to_array(tl, clips, settings=settings)
    raw = reference_mix(tl, clips)
    g = 10 ** (settings.mix_gain_db / 20)
    assert np.max(np.abs(raw)) * g < 32768 * 10 ** (settings.peak_dbfs / 20)  # the limiter has nothing to do
    np.testing.assert_allclose(out, np.round(raw.astype(np.float64) * g), atol=1.01)
    e = next(e for e in tl.events if e.text == "two")  # preceded by silence
    assert out[e.start_sample - 1] == 0
    assert abs(int(out[e.start_sample]) - round(clips.clips["two"][0] * g)) <= 1


def test_any_span_rendered_alone_equals_the_whole_track():
    clips = Clips({"spiky": 60000, "calm": 30000})
    clips.clips["spiky"][::700] = 32000  # peaks the limiter must catch, all along the clip
    tl = timeline([speech("spiky", 500, clips), speech("calm", 70000, clips), tone_event(Tone.BELL, 59000)], 110000)
    settings = RenderSettings()
    whole = render_to_array(tl, clips, settings=settings)
    mixer = mix.Mixer(tl, clips, settings=settings)
    rng = np.random.default_rng(5)
    for start in [0, 1, 499, 500, 501, 59999, 109999, *rng.integers(0, 110000, 40)]:
        for count in (1, 17, 264, 265, 4410, 50000):
            np.testing.assert_array_equal(mixer.render(int(start), int(start) + count), whole[start : start + count])


def test_mixer_matches_a_whole_array_reference():
    tl, clips = _sample_timeline()
    np.testing.assert_array_equal(render_to_array(tl, clips, settings=RAW), reference_mix(tl, clips))


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spans=st.lists(
        st.tuples(st.integers(min_value=0, max_value=60000), st.integers(min_value=0, max_value=20000)),
        max_size=25,
    ),
    tones=st.lists(st.tuples(st.sampled_from(list(Tone)), st.integers(min_value=0, max_value=60000)), max_size=6),
    chunk=st.integers(min_value=1000, max_value=70000),
)
def test_random_timelines_match_the_reference(spans, tones, chunk):
    lengths = {f"t{i}": n for i, (_, n) in enumerate(spans)}
    clips = Clips(lengths)
    events = [speech(f"t{i}", start, clips) for i, (start, _) in enumerate(spans)]
    events += [tone_event(t, start) for t, start in tones]
    length = max([e.end_sample for e in events], default=0) + 10
    tl = timeline(events, length)
    out = render_to_array(tl, clips, settings=RenderSettings(mix_gain_db=0.0, limit=False, chunk_samples=chunk))
    np.testing.assert_array_equal(out, reference_mix(tl, clips))


def test_chunked_render_is_byte_identical_for_any_chunk_size():
    tl, clips = _sample_timeline()
    expected = render_to_array(tl, clips, settings=RenderSettings(chunk_samples=tl.length_samples + 5)).tobytes()
    for size in (97, 1000, 4410, 4411, 65536, 100003):
        settings = RenderSettings(chunk_samples=size)
        chunks = list(render(tl, clips, settings=settings))
        assert all(len(c) == size for c in chunks[:-1])
        assert 0 < len(chunks[-1]) <= size
        assert all(c.dtype == np.int16 for c in chunks)
        assert sum(len(c) for c in chunks) == tl.length_samples
        assert b"".join(c.tobytes() for c in chunks) == expected, size


@hsettings(max_examples=10, deadline=None)
@given(chunk=st.integers(min_value=300, max_value=300000))
def test_chunk_size_never_changes_the_bytes(chunk):
    tl, clips = _sample_timeline()
    reference = render_to_array(tl, clips, settings=RenderSettings())
    assert render_to_array(tl, clips, settings=RenderSettings(chunk_samples=chunk)).tobytes() == reference.tobytes()


def test_final_loudness_and_peak_with_normalized_speech():
    """Speech normalized clip by clip, at the default mix gain, lands near the target."""
    rng = np.random.default_rng(3)
    raw = {}
    for i, seconds in enumerate([0.5, 1.2, 2.5, 0.8, 3.0, 1.5]):
        envelope = np.abs(np.sin(np.linspace(0, 7 * np.pi, round(seconds * 22050))))
        voiced = sine(140 + 20 * i, seconds, rate=22050) + 0.3 * rng.standard_normal(len(envelope))
        raw[f"p{i}"] = np.round(voiced * envelope * 8000).astype(np.int16)
    processed = {t: process_clip(x, source_rate=22050, sample_rate=RATE) for t, x in raw.items()}
    events, at = [], 1000
    for text, clip in processed.items():
        events.append(Event(EventKind.SPEECH, Cue.SAY, at, len(clip), 0, text=text))
        at += len(clip) + RATE // 3
    tl = timeline(events, at)
    out = render_to_array(tl, processed.__getitem__, settings=RenderSettings()) / 32768
    assert integrated_loudness(out, sample_rate=RATE) == pytest.approx(mix.TARGET_LUFS, abs=1.0)
    assert db(np.max(np.abs(out))) <= -1.0 + 1e-3


def test_limiter_keeps_the_ceiling_and_leaves_the_rest():
    clips = Clips({"spiky": 40000})
    clips.clips["spiky"][::4000] = 32000  # loud clicks on a quiet burst
    clips.clips["spiky"][1:] //= 30
    tl = timeline([speech("spiky", 100, clips)], 50000)
    settings = RenderSettings()
    out = render_to_array(tl, clips, settings=settings)
    assert db(np.max(np.abs(out / 32768))) <= settings.peak_dbfs + 1e-3
    unlimited = render_to_array(tl, clips, settings=RenderSettings(limit=False))
    assert np.max(np.abs(unlimited)) > np.max(np.abs(out))
    reach = mix.limiter_reach(round(0.004 * RATE))
    far = np.ones(len(out), dtype=bool)
    for click in np.flatnonzero(np.abs(unlimited) > 30000):
        far[max(0, click - reach) : click + reach + 1] = False
    np.testing.assert_array_equal(out[far], unlimited[far])  # only the clicks' neighbourhoods change
    levels = measure_track(tl, clips, settings=settings)
    assert levels.peak_dbfs <= settings.peak_dbfs + 1e-3


def test_silent_and_empty_tracks():
    clips = Clips({"quiet": 1000})
    clips.clips["quiet"][:] = 0
    tl = timeline([speech("quiet", 10, clips)], 5000)
    assert not render_to_array(tl, clips, settings=RenderSettings()).any()
    assert measure_track(tl, clips, settings=RenderSettings()).peak == 0.0
    assert list(render(timeline([], 0), clips, settings=RenderSettings())) == []


def test_tone_gain_and_custom_tone_source():
    tl = timeline([tone_event(Tone.TICK, 10)], 5000)
    settings = RenderSettings(mix_gain_db=0.0, limit=False, tone_gain_db=-6.0)
    out = render_to_array(tl, lambda text: None, settings=settings)
    np.testing.assert_array_equal(out, reference_mix(tl, None, tone_gain=10 ** (-6 / 20)))
    seen = []

    def tone(t):
        seen.append(t)
        return np.full(tone_length(t, sample_rate=RATE), 0.5, dtype=np.float32)

    out = render_to_array(tl, lambda text: None, settings=RAW, tone=tone)
    assert out[10] == 16384 and seen == [Tone.TICK]


def test_programming_errors_are_loud():
    clips = Clips({"a": 1000})
    wrong = Event(EventKind.SPEECH, Cue.SAY, 0, 999, 0, text="a")
    with pytest.raises(ValueError, match="999"):
        render_to_array(timeline([wrong], 2000), clips, settings=RAW)
    outside = speech("a", 1500, clips)
    with pytest.raises(ValueError, match="outside"):
        render(timeline([outside], 2000), clips, settings=RAW)  # before the first chunk
    with pytest.raises(ValueError, match="Hz"):
        render(timeline([], 100, rate=48000), clips, settings=RAW)
    no_tone = Event(EventKind.TONE, Cue.START, 0, 10, 0)
    with pytest.raises(ValueError, match="tone"):
        render(timeline([no_tone], 100), clips, settings=RAW)


def _long_timeline(minutes: int) -> tuple[Timeline, Clips]:
    length = minutes * 60 * RATE
    clips = Clips({f"t{i}": RATE // 2 + 997 * i for i in range(50)})
    events = []
    count = minutes * 160
    for k in range(count):
        start = k * (length - 2 * RATE) // count
        events.append(tone_event(Tone.TICK, start) if k % 3 == 0 else speech(f"t{k % 50}", start, clips))
    return timeline(events, length), clips


def test_rendering_never_holds_the_whole_track():
    # Speed is the benchmark's business; this checks the property behind flat memory.
    tl, clips = _long_timeline(10)  # 10 minutes: the int16 track alone would be 53 MB
    tracemalloc.start()
    try:
        total = 0
        for chunk in render(tl, clips, settings=RenderSettings()):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == tl.length_samples
    assert peak < 20 * 2**20, f"peak traced memory {peak / 2**20:.1f} MB"

"""Mixing: a :class:`~voicecoach.model.Timeline` and its clips -> the track's int16 samples.

Also the sound processing that feeds it: the built-in tones (synthesized, deterministic),
the clean-up of each synthesized speech clip (trim, resample, loudness, peak limit) and a
BS.1770 loudness meter.  Everything is numpy, mono, at one sample rate.

The track is never held whole: :func:`render` mixes it chunk by chunk, twice -- once to
measure its loudness and peak, once to write it with the gain that meets both targets.
Each sample is the sum of the same events in the same order whatever the chunk size, so
the output is byte-identical for any ``chunk_samples``.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterator, Protocol

import numpy as np

from .cache import NOT_IN_KEY, settings_key
from .model import Event, EventKind, Timeline, Tone
from .timing import to_samples

MIX_VERSION = "mix-2"
"""Bump when the mixer's output changes for the same inputs (part of the track cache key)."""

CLIP_VERSION = "clip-3"
"""Bump when :func:`process_clip` changes its output (part of every clip's cache key)."""

CLIP_LOUDNESS_LUFS = -16.0
"""Loudness every speech clip is normalized to."""

CLIP_PEAK_DBFS = -2.5
"""Sample-peak ceiling of a processed speech clip (headroom for tones underneath it)."""

_INT16_SCALE = 32768.0  # int16 <-> float in [-1, 1): the same factor both ways, so gain 0 is exact

# Clip clean-up (seconds unless noted).
_TRIM_FRAME_S = 0.005
_TRIM_THRESHOLD_DBFS = -45.0
_TRIM_BEFORE_S = 0.010
_TRIM_AFTER_S = 0.040
_FADE_IN_S = 0.003
_FADE_OUT_S = 0.010
_SILENT_CLIP_S = 0.010  # an all-silent clip becomes this much silence (never zero-length)
_MAX_CLIP_GAIN_DB = 24.0  # a near-silent mumble is not blown up into noise
_LIMITER_WINDOW_S = 0.004  # W: the gain reaches its minimum over W, and recovers over W
_MAKEUP_TOLERANCE_LU = 0.25  # limiting may leave a clip this far under its target
_MAX_MAKEUP_DB = 3.0  # never squash a clip harder than this to reach the target

# BS.1770 gating.
_HOP_S = Fraction(1, 10)
_HOPS_PER_BLOCK = 4
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0
_METER_BATCH_HOPS = 64  # hops per FFT call: fixed, so results never depend on how input arrives


# ---------------------------------------------------------------------------------------
# Settings


TARGET_LUFS = -16.0
"""Where a track of normalized clips lands with the default mix gain (integrated, BS.1770)."""


@dataclass(frozen=True)
class RenderSettings:
    """How a timeline becomes the track's samples.

    The mix is a single pass with a fixed gain and a peak limiter, so any span of the track
    can be rendered on its own (players start before the rest is mixed, memory stays flat)
    and always comes out the same.  Loudness is set where it can be: every speech clip is
    normalized to :data:`CLIP_LOUDNESS_LUFS` and tones are fixed, so the fixed mix gain
    lands a routine near :data:`TARGET_LUFS`.
    """

    sample_rate: int = 44100
    """Samples per second of the track (the timeline's and every clip's)."""
    mix_gain_db: float = 1.3
    """Gain on the sum, calibrated on the library routines to land near -16 LUFS."""
    peak_dbfs: float = -1.0
    """Sample-peak ceiling of the track, kept by the limiter."""
    chunk_samples: int = field(default=65536, metadata=NOT_IN_KEY)
    """Samples per rendered chunk; does not change the output, only memory and speed."""
    speech_gain_db: float = 0.0
    """Gain on speech before mixing (clips are already at the speech loudness)."""
    tone_gain_db: float = 0.0
    """Gain on tones before mixing (tones are already soft)."""
    limit: bool = True
    """``False`` leaves out the limiter (samples are only clipped to int16): for tests and stems."""

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.chunk_samples <= 0:
            raise ValueError(f"chunk_samples must be positive, got {self.chunk_samples}")
        if self.peak_dbfs > 0:
            raise ValueError(f"peak_dbfs must be at most 0, got {self.peak_dbfs}")

    def cache_key(self) -> str:
        """A stable hash of everything that changes the samples (``chunk_samples`` does not)."""
        return settings_key("render", MIX_VERSION, self)


def _db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


# ---------------------------------------------------------------------------------------
# Tones

_TONE_SECONDS: dict[Tone, Fraction] = {
    Tone.CHIME: Fraction(1),
    Tone.TICK: Fraction(1, 20),
    Tone.BELL: Fraction(6, 10),
    Tone.FINISH: Fraction(18, 10),
}


def tone_length(tone: Tone, *, sample_rate: int) -> int:
    """Length of a tone in samples, without synthesizing it."""
    return to_samples(_TONE_SECONDS[tone], sample_rate)


def tone_samples(tone: Tone, *, sample_rate: int) -> np.ndarray:
    """The tone as float32 in [-1, 1], starting and ending at exactly zero (read-only array)."""
    return _tone_cached(tone, sample_rate)


@functools.lru_cache(maxsize=32)
def _tone_cached(tone: Tone, sample_rate: int) -> np.ndarray:
    n = tone_length(tone, sample_rate=sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    if tone is Tone.CHIME:  # a soft fifth, upper partials dying first
        x = _partials(t, [(880.0, 1.0, 0.35), (1320.0, 0.45, 0.25), (1760.0, 0.15, 0.15)])
        x = _envelope(x, sample_rate, attack_s=0.005, release_s=0.1)
        peak = 0.25
    elif tone is Tone.TICK:  # woodblock-like: two inharmonic modes, very fast decay
        x = _partials(t, [(1100.0, 1.0, 0.010), (2970.0, 0.35, 0.004)])
        x = _envelope(x, sample_rate, attack_s=0.003, release_s=0.015)
        peak = 0.12
    elif tone is Tone.BELL:
        x = _partials(t, [(660.0, 1.0, 0.18), (990.0, 0.5, 0.12), (1320.0, 0.2, 0.08)])
        x = _envelope(x, sample_rate, attack_s=0.004, release_s=0.08)
        peak = 0.14
    elif tone is Tone.FINISH:  # C5 E5 G5; decays fast enough that the finish phrase 0.6 s in stays clear
        x = np.zeros(n)
        for onset_s, freq, tau in ((0.0, 523.25, 0.18), (0.12, 659.26, 0.18), (0.24, 783.99, 0.35)):
            start = round(onset_s * sample_rate)
            note = _partials(t[: n - start], [(freq, 1.0, tau), (2 * freq, 0.25, tau / 2)])
            x[start:] += _envelope(note, sample_rate, attack_s=0.005, release_s=0.0)
        x = _envelope(x, sample_rate, attack_s=0.005, release_s=0.2)
        peak = 0.3
    else:  # pragma: no cover - the enum is closed
        raise ValueError(f"unknown tone {tone!r}")
    top = float(np.max(np.abs(x))) if n else 0.0
    out = (x * (peak / top) if top > 0 else x).astype(np.float32)
    out.setflags(write=False)  # shared by every caller through the cache
    return out


def _partials(t: np.ndarray, partials: list[tuple[float, float, float]]) -> np.ndarray:
    """Sum of exponentially decaying sines: (frequency Hz, amplitude, decay time constant s)."""
    x = np.zeros(len(t))
    for freq, amp, tau in partials:
        x += amp * np.sin(2 * np.pi * freq * t) * np.exp(-t / tau)
    return x


def _envelope(x: np.ndarray, sample_rate: int, *, attack_s: float, release_s: float) -> np.ndarray:
    """Raised-cosine attack from exactly 0 and, if ``release_s``, a fade to exactly 0."""
    x = x.copy()
    fade(x, max(2, round(attack_s * sample_rate)), rising=True)
    if release_s > 0:
        fade(x, max(2, round(release_s * sample_rate)), rising=False)
    return x


def fade(x: np.ndarray, n: int, *, rising: bool) -> None:
    """In place: the first (or last) ``n`` samples times a half cosine, 0 at the outer end.

    Clips, tones and the routine's own sounds (sound.py) start and end with it, so none clicks.
    """
    n = min(n, len(x))
    if n < 2:
        if len(x):
            x[0 if rising else -1] = 0.0
        return
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / (n - 1))  # 0 ... 1, exact at both ends
    if rising:
        x[:n] *= ramp
    else:
        x[-n:] *= ramp[::-1]


# ---------------------------------------------------------------------------------------
# Loudness (ITU-R BS.1770, frequency domain)


def _biquad_power(b: tuple[float, float, float], a: tuple[float, float, float], w: np.ndarray) -> np.ndarray:
    z = np.exp(-1j * w)  # z^-1 on the unit circle
    num = b[0] + b[1] * z + b[2] * z * z
    den = a[0] + a[1] * z + a[2] * z * z
    return np.abs(num) ** 2 / np.abs(den) ** 2


def k_weighting_power(freqs: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """|H(f)|^2 of the BS.1770 K-weighting (pre-filter shelf, then RLB high-pass).

    Both biquads come from the RBJ cookbook formulas at ``sample_rate`` (as pyloudnorm
    does), so any rate gets the same curve instead of only 48 kHz's published coefficients.
    """
    w = 2 * np.pi * np.asarray(freqs, dtype=np.float64) / sample_rate
    # High shelf: +4 dB at 1500 Hz, Q = 1/sqrt(2).
    big_a = 10 ** (4.0 / 40)
    w0 = 2 * math.pi * 1500.0 / sample_rate
    alpha = math.sin(w0) / (2 * (1 / math.sqrt(2)))
    cos0, root = math.cos(w0), 2 * math.sqrt(big_a) * alpha
    shelf_b = (
        big_a * ((big_a + 1) + (big_a - 1) * cos0 + root),
        -2 * big_a * ((big_a - 1) + (big_a + 1) * cos0),
        big_a * ((big_a + 1) + (big_a - 1) * cos0 - root),
    )
    shelf_a = (
        (big_a + 1) - (big_a - 1) * cos0 + root,
        2 * ((big_a - 1) - (big_a + 1) * cos0),
        (big_a + 1) - (big_a - 1) * cos0 - root,
    )
    # High pass: 38 Hz, Q = 0.5.
    w0 = 2 * math.pi * 38.0 / sample_rate
    alpha = math.sin(w0) / (2 * 0.5)
    cos0 = math.cos(w0)
    hp_b = ((1 + cos0) / 2, -(1 + cos0), (1 + cos0) / 2)
    hp_a = (1 + alpha, -2 * cos0, 1 - alpha)
    return _biquad_power(shelf_b, shelf_a, w) * _biquad_power(hp_b, hp_a, w)


@functools.lru_cache(maxsize=16)
def _spectrum_weights(n: int, sample_rate: int) -> np.ndarray:
    """Per-rfft-bin weights so that sum(weights * |X|^2) is the K-weighted energy (Parseval)."""
    bins = np.arange(n // 2 + 1)
    weights = k_weighting_power(bins * sample_rate / n, sample_rate=sample_rate) * 2.0
    weights[0] /= 2.0  # DC, and Nyquist for even n, appear once in the full spectrum
    if n % 2 == 0:
        weights[-1] /= 2.0
    weights /= n
    weights.setflags(write=False)
    return weights


def _kweighted_energy(frames: np.ndarray, sample_rate: int) -> np.ndarray:
    """K-weighted energy (sum of squares) of each row."""
    spectrum = np.fft.rfft(frames, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    return power @ _spectrum_weights(frames.shape[-1], sample_rate)


def _lufs(mean_square: float) -> float:
    return -0.691 + 10 * math.log10(mean_square) if mean_square > 0 else -math.inf


class LoudnessMeter:
    """Integrated loudness (BS.1770-4, gated), fed chunk by chunk.

    Hops of 100 ms are taken from the stream as it comes, so where the chunks break does not
    matter; 400 ms blocks are four consecutive hops.  A trailing partial hop is ignored.
    """

    def __init__(self, *, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.hop = to_samples(_HOP_S, sample_rate)
        self._batch = self.hop * _METER_BATCH_HOPS
        self._pending: list[np.ndarray] = []
        self._pending_len = 0
        self._energies: list[np.ndarray] = []

    def add(self, samples: np.ndarray) -> None:
        """Feed the next samples (any length, float in [-1, 1])."""
        samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        if not len(samples):
            return
        self._pending.append(samples)
        self._pending_len += len(samples)
        if self._pending_len >= self._batch:
            data = np.concatenate(self._pending)
            full = len(data) // self._batch * self._batch
            for start in range(0, full, self._batch):
                self._measure(data[start : start + self._batch])
            rest = data[full:]
            self._pending = [rest] if len(rest) else []
            self._pending_len = len(rest)

    def _measure(self, data: np.ndarray) -> None:
        hops = len(data) // self.hop
        if hops:
            self._energies.append(_kweighted_energy(data[: hops * self.hop].reshape(hops, self.hop), self.sample_rate))

    def loudness(self) -> float:
        """Integrated loudness in LUFS so far; ``-inf`` if shorter than one block or all gated out."""
        if self._pending:
            # Measure the complete hops still pending on a copy of the state, so add() may go on.
            data = np.concatenate(self._pending)
            hops = len(data) // self.hop
            tail = [_kweighted_energy(data[: hops * self.hop].reshape(hops, self.hop), self.sample_rate)] if hops else []
        else:
            tail = []
        energies = np.concatenate(self._energies + tail) if (self._energies or tail) else np.zeros(0)
        return _gated_loudness(energies, self.hop)


def _gated_loudness(hop_energies: np.ndarray, hop: int) -> float:
    if len(hop_energies) < _HOPS_PER_BLOCK:
        return -math.inf
    running = np.concatenate([[0.0], np.cumsum(hop_energies)])
    blocks = (running[_HOPS_PER_BLOCK:] - running[:-_HOPS_PER_BLOCK]) / (_HOPS_PER_BLOCK * hop)
    blocks = np.maximum(blocks, 0.0)  # cumsum differences can dip a hair below zero on silence
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(blocks)
    above = blocks[levels > _ABSOLUTE_GATE_LUFS]
    if not len(above):
        return -math.inf
    relative = _lufs(float(np.mean(above))) + _RELATIVE_GATE_LU
    kept = blocks[(levels > _ABSOLUTE_GATE_LUFS) & (levels > relative)]
    return _lufs(float(np.mean(kept))) if len(kept) else -math.inf


def integrated_loudness(samples: np.ndarray, *, sample_rate: int) -> float:
    """Integrated loudness of a whole signal in LUFS (``-inf`` if under 400 ms or silent)."""
    meter = LoudnessMeter(sample_rate=sample_rate)
    meter.add(samples)
    return meter.loudness()


def _clip_loudness(x: np.ndarray, sample_rate: int) -> float:
    """Gated loudness of a clip; one under a block long counts as one ungated block."""
    if len(x) >= _HOPS_PER_BLOCK * to_samples(_HOP_S, sample_rate):
        return integrated_loudness(x, sample_rate=sample_rate)
    if not len(x):
        return -math.inf
    return _lufs(float(_kweighted_energy(x, sample_rate)) / len(x))


# ---------------------------------------------------------------------------------------
# Speech clips


def _fast_length(n: int, multiple: int) -> int:
    """The smallest L >= n that is a multiple of ``multiple`` with ``L / multiple`` 7-smooth.

    FFTs of such lengths are fast; a clip of awkward (say, prime) length otherwise costs
    many times more to resample.
    """
    k = max(1, -(-n // multiple))
    while True:
        rest = k
        for prime in (2, 3, 5, 7):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return k * multiple
        k += 1


def resample(x: np.ndarray, *, source_rate: int, sample_rate: int) -> np.ndarray:
    """Band-limited (FFT) resampling of a whole signal; ``round(n * sample_rate / source_rate)`` long.

    The spectrum is zero-padded (up) or cut with a short cosine roll-off below the new
    Nyquist (down, so nothing aliases and the cut does not ring).  The FFT treats the signal
    as periodic: callers fade its ends to zero first, which also makes padding the signal
    with zeros to a fast FFT length (and cutting the result back) harmless.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    m = round(Fraction(n * sample_rate, source_rate))
    if source_rate == sample_rate:
        return x.copy()
    if n == 0 or m == 0:
        return np.zeros(m)
    ratio = Fraction(sample_rate, source_rate)
    padded_n = _fast_length(n, ratio.denominator)
    padded_m = padded_n * ratio.numerator // ratio.denominator
    spectrum = np.fft.rfft(x, padded_n)
    out = np.zeros(padded_m // 2 + 1, dtype=np.complex128)
    keep = min(len(spectrum), len(out))
    out[:keep] = spectrum[:keep]
    if padded_m > padded_n:
        if padded_n % 2 == 0:
            out[padded_n // 2] *= 0.5  # the old Nyquist bin stood for +f and -f; now it is an ordinary bin
    else:
        roll = max(1, len(out) // 20)
        out[-roll:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, roll + 1) / roll)  # ends at exactly 0
    return np.fft.irfft(out, padded_m)[:m] * (padded_m / padded_n)


def trim_bounds(x: np.ndarray, sample_rate: int) -> tuple[int, int] | None:
    """[start, end) of the sound in ``x`` with its margins, or None if all of it is silence.

    Used for speech clips here and for the routine's own sounds (sound.py).
    """
    frame = max(1, round(_TRIM_FRAME_S * sample_rate))
    n = len(x)
    count = -(-n // frame)
    padded = np.zeros(count * frame)
    padded[:n] = x
    sums = np.sum(padded.reshape(count, frame) ** 2, axis=1)
    sizes = np.full(count, float(frame))
    if count:
        sizes[-1] = n - (count - 1) * frame
    active = np.flatnonzero(sums / sizes > _db_to_gain(_TRIM_THRESHOLD_DBFS) ** 2)
    if not len(active):
        return None
    start = max(0, int(active[0]) * frame - round(_TRIM_BEFORE_S * sample_rate))
    end = min(n, (int(active[-1]) + 1) * frame + round(_TRIM_AFTER_S * sample_rate))
    return start, end


def _sliding_min(g: np.ndarray, half: int) -> np.ndarray:
    """min(g[i-half .. i+half]) for each i (outside the array counts as 1).

    Van Herk/Gil-Werman: per-block prefix and suffix minima, O(n) whatever the window --
    the same values as ``sliding_window_view(...).min(axis=1)`` without its O(n * window).
    """
    k = 2 * half + 1
    n = len(g)
    blocks = -(-(n + 2 * half) // k)
    padded = np.ones(blocks * k)
    padded[half : half + n] = g
    rows = padded.reshape(blocks, k)
    prefix = np.minimum.accumulate(rows, axis=1).reshape(-1)
    suffix = np.minimum.accumulate(rows[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    return np.minimum(suffix[:n], prefix[k - 1 : k - 1 + n])


_GAIN_ONE = 1 << 24  # fixed point for the limiter's smoothing: integer sums are exact


def limiter_reach(window: int) -> int:
    """How far (in samples) the limiter's gain at one sample looks either way."""
    return 3 * max(1, window // 2)


def limit_peaks(x: np.ndarray, *, ceiling: float, window: int) -> np.ndarray:
    """``x`` with a smooth gain that keeps every sample within ``ceiling`` (linear).

    g[n] = min(1, ceiling/|x[n]|); m = its minimum over 2W+1 samples; the gain is m
    averaged over W+1 samples.  Every m in that average covers n, so gain <= g[n] holds at
    every sample: no overshoot, no look-ahead loop in Python.  The average is taken in
    integer fixed point (rounded down), so the gain at a sample depends only on the samples
    within :func:`limiter_reach` of it -- never on where the array starts: a chunk rendered
    with that much margin comes out bit-identical to the whole track.

    The same locality lets only the stretches around samples over the ceiling be worked on
    (a quarter of a speech clip): elsewhere the gain is exactly 1.
    """
    x = np.asarray(x, dtype=np.float64)
    magnitude = np.abs(x)
    over = np.flatnonzero(magnitude > ceiling)
    if not len(over):
        return x.copy()
    # The gain differs from 1 only within `reach` of a sample over the ceiling, and there it
    # depends on g alone, which is 1 everywhere else: each such stretch (merged where they
    # meet) is worked on by itself.
    reach = limiter_reach(window)
    cuts = np.flatnonzero(np.diff(over) > 2 * reach) + 1
    out = x.copy()
    for first, last in zip(over[np.r_[0, cuts]].tolist(), over[np.r_[cuts - 1, len(over) - 1]].tolist()):
        start, end = max(0, first - reach), min(len(x), last + reach + 1)
        out[start:end] = x[start:end] * _limiter_gain(magnitude[start:end], ceiling=ceiling, window=window)
    return out


def _limiter_gain(magnitude: np.ndarray, *, ceiling: float, window: int) -> np.ndarray:
    """The gain of :func:`limit_peaks` over ``magnitude``, every sample outside it within the ceiling."""
    half = max(1, window // 2)
    width = 2 * half  # W, even so that the averaging window centres on n
    with np.errstate(divide="ignore"):
        g = np.minimum(1.0, ceiling / magnitude)
    m = np.floor(_sliding_min(g, width) * _GAIN_ONE).astype(np.int64)
    padded = np.concatenate([np.full(half, m[0]), m, np.full(half, m[-1])])  # edge values keep the bound
    running = np.concatenate([[0], np.cumsum(padded)])
    smooth = (running[width + 1 :] - running[: -width - 1]) // (width + 1)
    return np.minimum(smooth / _GAIN_ONE, g)


def process_clip(
    raw: np.ndarray,
    *,
    source_rate: int,
    sample_rate: int,
    loudness_lufs: float = CLIP_LOUDNESS_LUFS,
    peak_dbfs: float = CLIP_PEAK_DBFS,
) -> np.ndarray:
    """An engine's raw int16 clip -> trimmed, resampled, loudness-normalized, limited int16.

    Steps: trim the engine's silent padding (keeping short margins), fade the ends,
    resample to ``sample_rate``, normalize to ``loudness_lufs``, limit to ``peak_dbfs``
    (with one make-up gain step for the loudness the limiter took, at most 3 dB), fade again so the clip starts and ends at exactly zero.  An all-silent clip becomes
    10 ms of silence.  Deterministic: change :data:`CLIP_VERSION` with any change here.
    """
    raw = np.asarray(raw)
    if raw.ndim != 1:
        raise ValueError(f"expected a mono clip (1-D array), got shape {raw.shape}")
    if source_rate <= 0 or sample_rate <= 0:
        raise ValueError("sample rates must be positive")
    x = raw.astype(np.float64) / _INT16_SCALE
    bounds = trim_bounds(x, source_rate)
    if bounds is None:
        return np.zeros(round(_SILENT_CLIP_S * sample_rate), dtype=np.int16)
    x = x[bounds[0] : bounds[1]].copy()
    # The FFT resampler treats the clip as periodic: its two ends must meet at zero.
    fade(x, round(_FADE_IN_S * source_rate), rising=True)
    fade(x, round(_FADE_OUT_S * source_rate), rising=False)
    x = resample(x, source_rate=source_rate, sample_rate=sample_rate)
    ceiling = _db_to_gain(peak_dbfs)
    window = round(_LIMITER_WINDOW_S * sample_rate)
    level = _clip_loudness(x, sample_rate)
    if math.isfinite(level):
        gain_db = min(loudness_lufs - level, _MAX_CLIP_GAIN_DB)
        limited = limit_peaks(x * _db_to_gain(gain_db), ceiling=ceiling, window=window)
        # Limiting costs loudness (about 1 LU on espeak's peaky speech): make it up once.
        after = _clip_loudness(limited, sample_rate)
        shortfall = loudness_lufs - after if math.isfinite(after) else 0.0
        if shortfall > _MAKEUP_TOLERANCE_LU:
            gain_db = min(gain_db + min(shortfall, _MAX_MAKEUP_DB), _MAX_CLIP_GAIN_DB)
            limited = limit_peaks(x * _db_to_gain(gain_db), ceiling=ceiling, window=window)
        x = limited
    else:
        x = limit_peaks(x, ceiling=ceiling, window=window)
    fade(x, round(_FADE_IN_S * sample_rate), rising=True)
    fade(x, round(_FADE_OUT_S * sample_rate), rising=False)
    return np.clip(np.round(x * _INT16_SCALE), -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------------------------------
# The mixer

ClipSource = Callable[[str], np.ndarray]
"""``clip(text)``: the processed int16 clip of a speech event."""
ToneSource = Callable[[Tone], np.ndarray]
"""``tone(t)``: the float samples of a tone."""


class Background(Protocol):
    """A sound under the whole track (the music bed, see sound.DuckedMusic)."""

    lookahead_samples: int
    """How far before the end of a growing timeline its samples may still change."""

    def span(self, a: int, b: int) -> np.ndarray:
        """Its samples ``[a, b)`` as floats in [-1, 1]; the same values for any span."""


@dataclass(frozen=True)
class TrackLevels:
    """Loudness and peak of a rendered track."""

    loudness_lufs: float
    """Integrated loudness (``-inf`` if silent or under 400 ms)."""
    peak: float
    """Sample peak, linear (0 for silence)."""

    @property
    def peak_dbfs(self) -> float:
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf


class _Mixer:
    """Renders any span [a, b) of the track as float32, before the final gain."""

    def __init__(self, timeline: Timeline, clip: ClipSource, settings: RenderSettings, tone: ToneSource | None,
                 background: Background | None = None):
        self.background = background
        if timeline.sample_rate != settings.sample_rate:
            raise ValueError(f"timeline is at {timeline.sample_rate} Hz but settings say {settings.sample_rate} Hz")
        self.length = timeline.length_samples
        for event in timeline.events:
            if event.start_sample < 0 or event.length_samples < 0 or event.end_sample > self.length:
                raise ValueError(f"event {event!r} lies outside the track [0, {self.length})")
            if event.kind is EventKind.TONE and event.tone is None:
                raise ValueError(f"tone event without a tone: {event!r}")
        # Stable sort: same-start events keep timeline order, so sums never depend on anything else.
        self.events = sorted((e for e in timeline.events if e.length_samples > 0), key=lambda e: e.start_sample)
        self.starts = [e.start_sample for e in self.events]
        self.max_ends: list[int] = []  # prefix maximum of end samples: finds the first event still sounding
        top = 0
        for event in self.events:
            top = max(top, event.end_sample)
            self.max_ends.append(top)
        self.clip = clip
        self.tone = tone or functools.partial(tone_samples, sample_rate=settings.sample_rate)
        self.speech_scale = np.float32(_db_to_gain(settings.speech_gain_db) / _INT16_SCALE)
        self.tone_gain = _db_to_gain(settings.tone_gain_db)
        self._tones: dict[Tone, np.ndarray] = {}

    def span(self, a: int, b: int) -> np.ndarray:
        out = np.zeros(b - a, dtype=np.float32)
        first = bisect.bisect_right(self.max_ends, a)  # every earlier event ended by a
        last = bisect.bisect_left(self.starts, b)
        for event in self.events[first:last]:
            if event.end_sample <= a:
                continue
            lo = max(a, event.start_sample)
            hi = min(b, event.end_sample)
            source = self._source(event)
            out[lo - a : hi - a] += source[lo - event.start_sample : hi - event.start_sample]
        if self.background is not None:
            out += self.background.span(a, b).astype(np.float32)
        return out

    def _source(self, event: Event) -> _Scaled:
        if event.kind is EventKind.TONE:
            samples = self._tones.get(event.tone)
            if samples is None:
                samples = np.asarray(self.tone(event.tone), dtype=np.float32) * np.float32(self.tone_gain)
                self._tones[event.tone] = samples
            if len(samples) != event.length_samples:
                raise ValueError(
                    f"tone {event.tone.value} is {len(samples)} samples, the event says {event.length_samples}"
                )
            return _Scaled(samples, None)
        samples = self.clip(event.text)
        if len(samples) != event.length_samples:
            raise ValueError(
                f"clip for {event.text!r} is {len(samples)} samples, the event says {event.length_samples}"
            )
        return _Scaled(samples, self.speech_scale)


class _Scaled:
    """A source whose slices come out as float32 (int16 clips are converted slice by slice)."""

    __slots__ = ("samples", "scale")

    def __init__(self, samples: np.ndarray, scale: np.float32 | None) -> None:
        self.samples = samples
        self.scale = scale

    def __getitem__(self, index: slice) -> np.ndarray:
        part = self.samples[index]
        if self.scale is None:
            return part
        return part.astype(np.float32) * self.scale


def _spans(length: int, step: int) -> Iterator[tuple[int, int]]:
    for a in range(0, length, step):
        yield a, min(length, a + step)


def measure_track(
    timeline: Timeline, clip: ClipSource, *, settings: RenderSettings, tone: ToneSource | None = None,
    background: Background | None = None,
) -> TrackLevels:
    """Loudness and sample peak of the track :func:`render` makes."""
    meter = LoudnessMeter(sample_rate=settings.sample_rate)
    peak = 0.0
    for chunk in render(timeline, clip, settings=settings, tone=tone, background=background):
        x = chunk.astype(np.float64) / _INT16_SCALE
        meter.add(x)
        if len(x):
            peak = max(peak, float(np.max(np.abs(x))))
    return TrackLevels(loudness_lufs=meter.loudness(), peak=peak)


class Mixer:
    """Renders any span of a track, on its own, exactly as the whole track has it."""

    def __init__(
        self, timeline: Timeline, clip: ClipSource, *, settings: RenderSettings, tone: ToneSource | None = None,
        background: Background | None = None,
    ) -> None:
        self.settings = settings
        self.length = timeline.length_samples
        self._sum = _Mixer(timeline, clip, settings, tone, background)
        self._gain = _db_to_gain(settings.mix_gain_db)
        self._ceiling = _db_to_gain(settings.peak_dbfs)
        self._window = round(_LIMITER_WINDOW_S * settings.sample_rate)
        self._margin = limiter_reach(self._window) if settings.limit else 0
        # A growing timeline (streaming playback) changes no sample more than this before its end.
        self.lookahead_samples = self._margin + (background.lookahead_samples if background is not None else 0)

    def chunks(self) -> Iterator[np.ndarray]:
        """The whole track as consecutive int16 chunks of ``settings.chunk_samples``."""
        return (self.render(a, b) for a, b in _spans(self.length, self.settings.chunk_samples))

    def render(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)`` as int16 (clamped to the track)."""
        start, end = max(0, start), min(self.length, end)
        if end <= start:
            return np.zeros(0, dtype=np.int16)
        lo, hi = max(0, start - self._margin), min(self.length, end + self._margin)
        x = self._sum.span(lo, hi).astype(np.float64) * self._gain
        if self.settings.limit:
            x = limit_peaks(x, ceiling=self._ceiling, window=self._window)
        x = x[start - lo : end - lo] * _INT16_SCALE
        np.round(x, out=x)
        np.clip(x, -32768, 32767, out=x)
        return x.astype(np.int16)


def render(
    timeline: Timeline, clip: ClipSource, *, settings: RenderSettings, tone: ToneSource | None = None,
    background: Background | None = None,
) -> Iterator[np.ndarray]:
    """The track as consecutive int16 chunks of ``settings.chunk_samples`` (the last shorter).

    Bad timelines (events outside the track, rate mismatch) raise ``ValueError`` here, before
    any chunk; a clip whose length differs from its event's raises while rendering.
    """
    return Mixer(timeline, clip, settings=settings, tone=tone, background=background).chunks()


def render_to_array(
    timeline: Timeline, clip: ClipSource, *, settings: RenderSettings, tone: ToneSource | None = None,
    background: Background | None = None,
) -> np.ndarray:
    """The whole track as one int16 array (for tests and short tracks only)."""
    out = np.empty(timeline.length_samples, dtype=np.int16)
    pos = 0
    for chunk in render(timeline, clip, settings=settings, tone=tone, background=background):
        out[pos : pos + len(chunk)] = chunk
        pos += len(chunk)
    assert pos == len(out)
    return out


__all__ = [
    "Background",
    "CLIP_LOUDNESS_LUFS",
    "CLIP_PEAK_DBFS",
    "CLIP_VERSION",
    "MIX_VERSION",
    "LoudnessMeter",
    "Mixer",
    "TARGET_LUFS",
    "RenderSettings",
    "TrackLevels",
    "fade",
    "integrated_loudness",
    "k_weighting_power",
    "limit_peaks",
    "limiter_reach",
    "measure_track",
    "process_clip",
    "render",
    "render_to_array",
    "resample",
    "tone_length",
    "tone_samples",
    "trim_bounds",
]

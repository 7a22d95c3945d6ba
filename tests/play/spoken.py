"""Spoken audio made by the project's own engines, for the voice-command tests and benchmarks/listen.py.

Command words are synthesized by compiling a tiny routine (one ``say`` step per word) and cutting
each word's clip out of the track at its speech event: the same path any cue takes, so espeak and
Piper voices, at any speech rate, sound to the recognizer exactly as the coach would.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from voicecoach.model import Cue, EventKind, Timeline
from voicecoach.pipeline import Settings, build

RATE_16K = 16000


def _routine_file(folder: Path, words: Sequence[str]) -> Path:
    text = "routine: Spoken words\nsteps:\n" + "".join(f"  - say: {word!r}\n" for word in words)
    path = folder / f"words-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    path.write_text(text)
    return path


def spoken_words(words: Sequence[str], *, engine: str, rate: float, folder: Path, cache_dir: Path | None = None,
                 sample_rate: int = RATE_16K) -> dict[str, np.ndarray]:
    """Each word as the engine says it at ``rate``: int16 mono clips at ``sample_rate``."""
    path = _routine_file(folder, words)
    made = build(path, settings=Settings(engine=engine, rate=Fraction(str(rate)), sample_rate=sample_rate,
                                         cache_dir=cache_dir))
    track = made.read(0, made.timeline.length_samples)
    clips = {}
    for event in made.timeline.events:
        if event.kind is EventKind.SPEECH and event.cue is Cue.SAY and event.text in words:
            clips[event.text] = track[event.start_sample : event.end_sample].copy()
    return clips


def coach_track(routine: Path, *, engine: str, cache_dir: Path | None = None,
                sample_rate: int = RATE_16K) -> tuple[np.ndarray, Timeline]:
    """A routine's whole track and timeline (what the microphone hears as echo)."""
    made = build(routine, settings=Settings(engine=engine, sample_rate=sample_rate, cache_dir=cache_dir))
    return made.read(0, made.timeline.length_samples), made.timeline


def at_level(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """Samples scaled by ``gain_db`` (float64)."""
    return samples.astype(np.float64) * 10 ** (gain_db / 20)


def noise(length: int, *, level_db: float, seed: int) -> np.ndarray:
    """Pink room noise (power falling 3 dB an octave) at ``level_db`` dBFS RMS, the same for a seed."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(0, 1, length))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    pink = np.fft.irfft(spectrum, length)
    pink /= np.sqrt(np.mean(pink**2)) or 1.0
    return pink * 32767 * 10 ** (level_db / 20)


def to_int16(mixed: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)

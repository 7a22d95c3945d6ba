"""How long a text takes to say, without saying it: ``preview``, plain ``check`` and VC107.

The length of a finished clip (mix.process_clip: trimmed, with short margins) is modelled as

    seconds = margin_s + (letter_s * letters + word_s * words + break_s * breaks) / rate

with ``letters`` the letters and digits of the text, ``words`` its words and ``breaks`` its
punctuation inside the text (a comma or full stop makes the engine pause; the last one is
trimmed away).  The coefficients are measured per engine and language on the library routines
by ``benchmarks/speaking_rate.py`` and kept as data in ``speaking_rates.json``; a language an
engine was not measured in uses that engine's coefficients over every measured language.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources

from .timing import to_samples

RATES_FILE = "speaking_rates.json"
"""The calibration, beside this module."""

_BREAK = re.compile(r"[,;:.!?\u2026]+(?=\s*\S)")  # punctuation with more text after it


@dataclass(frozen=True)
class SpeakingRate:
    """One engine's speaking rate in one language, at ``rate: 1``."""

    margin_s: float
    """What every clip has regardless of its text (the margins left by trimming)."""
    letter_s: float
    """Seconds per letter or digit."""
    word_s: float
    """Seconds per word (the gaps between words)."""
    break_s: float
    """Seconds per pause at a comma or full stop inside the text."""

    def seconds(self, text: str, *, rate: Fraction = Fraction(1)) -> float:
        letters, words, breaks = text_features(text)
        return self.margin_s + (self.letter_s * letters + self.word_s * words + self.break_s * breaks) / float(rate)


def text_features(text: str) -> tuple[int, int, int]:
    """``(letters, words, breaks)`` of ``text`` (see the module's notes)."""
    return sum(c.isalnum() for c in text), len(text.split()), len(_BREAK.findall(text))


@functools.cache
def _table() -> dict[str, dict[str, SpeakingRate]]:
    data = json.loads((resources.files("voicecoach") / RATES_FILE).read_text(encoding="utf-8"))
    return {engine: {language: SpeakingRate(**values) for language, values in languages.items()}
            for engine, languages in data["engines"].items()}


FALLBACK = SpeakingRate(margin_s=0.12, letter_s=0.062, word_s=0.0, break_s=0.25)
"""For an engine never measured: about 14 letters a second."""


def speaking_rate(engine: str, language: str) -> SpeakingRate:
    """The measured rate of ``engine`` in ``language`` (its base language, else all its languages)."""
    languages = _table().get(engine, {})
    base = language.lower().replace("_", "-").split("-")[0]
    return languages.get(base) or languages.get("*") or FALLBACK


def estimate_samples(text: str, *, engine: str, language: str, sample_rate: int,
                     rate: Fraction = Fraction(1)) -> int:
    """The estimated length of ``text``'s clip, in samples."""
    seconds = speaking_rate(engine, language).seconds(text, rate=rate)
    return to_samples(Fraction(seconds).limit_denominator(1_000_000), sample_rate)

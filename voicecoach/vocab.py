"""Cue vocabularies: every phrase the coach says that a routine does not spell out.

They live in data files (``vocab/<language>.yaml``) so a language is added without code.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from typing import Mapping

import yaml

from .errors import Location, VoicecoachError

REQUIRED_PHRASES: Mapping[str, frozenset[str]] = {
    # key -> the placeholders it must use (and may not go beyond)
    "welcome": frozenset({"title"}),
    "exercise": frozenset({"name"}),
    "massage": frozenset({"name"}),
    "breathe": frozenset({"name"}),
    "side_left": frozenset(),
    "side_right": frozenset(),
    "side_both": frozenset(),
    "set_n_of": frozenset({"n", "total"}),
    "last_one": frozenset(),
    "hold": frozenset(),
    "release": frozenset(),
    "rest_between_sets": frozenset(),
    "rest_for": frozenset({"duration"}),
    "next_up": frozenset({"name"}),
    "breathe_in": frozenset(),
    "breathe_hold": frozenset(),
    "breathe_out": frozenset(),
    "pressure_light": frozenset(),
    "pressure_medium": frozenset(),
    "pressure_firm": frozenset(),
    "finish": frozenset(),
    "seconds_one": frozenset(),
    "seconds_many": frozenset({"n"}),
    "minutes_one": frozenset(),
    "minutes_many": frozenset({"n"}),
    "minutes_and_seconds": frozenset({"minutes", "seconds"}),
}


def available_languages() -> list[str]:
    """Language codes that have a vocabulary file."""
    folder = resources.files("voicecoach") / "vocab"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


@dataclass(frozen=True)
class Vocabulary:
    """The cue phrases of one language."""

    language: str
    """Language code of the file, e.g. ``en``."""
    phrases: Mapping[str, str]
    """Phrase templates by key, with ``{placeholders}``."""
    numbers: Mapping[int, str]
    """Spoken forms of numbers where the engine's own reading is not wanted."""

    def phrase(self, key: str, **values: object) -> str:
        return self.phrases[key].format(**values)

    def number(self, n: int) -> str:
        return self.numbers.get(n, str(n))

    def duration(self, seconds: Fraction) -> str:
        """``90`` -> ``"1 minute and 30 seconds"`` in the vocabulary's words."""
        if seconds != int(seconds) and seconds < 60:
            return self.phrase("seconds_many", n=f"{float(seconds):g}")
        minutes, secs = divmod(int(round(seconds)), 60)
        sec_text = (
            self.phrase("seconds_one") if secs == 1 else self.phrase("seconds_many", n=self.number(secs))
        )
        if not minutes:
            return sec_text
        min_text = (
            self.phrase("minutes_one") if minutes == 1 else self.phrase("minutes_many", n=self.number(minutes))
        )
        return self.phrase("minutes_and_seconds", minutes=min_text, seconds=sec_text) if secs else min_text


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def load_vocabulary(language: str) -> Vocabulary:
    """The vocabulary for ``language`` (``en-us`` falls back to ``en``)."""
    languages = available_languages()
    code = language.lower()
    if code not in languages:
        code = code.split("-")[0]
    if code not in languages:
        raise VoicecoachError(
            f"no cue vocabulary for language {language!r}",
            hint=f"use one of: {', '.join(languages)}",
        )
    path = resources.files("voicecoach") / "vocab" / f"{code}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return _validate(code, data, Location(f"vocab/{code}.yaml"))


def _validate(code: str, data: object, where: Location) -> Vocabulary:
    if not isinstance(data, dict) or not isinstance(data.get("phrases"), dict):
        raise VoicecoachError("vocabulary file has no 'phrases' mapping", location=where)
    phrases = data["phrases"]
    for key, needed in REQUIRED_PHRASES.items():
        if not isinstance(phrases.get(key), str) or not phrases[key].strip():
            raise VoicecoachError(f"vocabulary is missing the phrase {key!r}", location=where)
        used = _placeholders(phrases[key])
        if used != needed:
            raise VoicecoachError(
                f"phrase {key!r} uses placeholders {sorted(used)}; it must use {sorted(needed)}",
                location=where,
            )
    numbers = {int(k): str(v) for k, v in (data.get("numbers") or {}).items()}
    return Vocabulary(language=code, phrases=dict(phrases), numbers=numbers)

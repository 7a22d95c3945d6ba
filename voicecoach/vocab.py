"""Cue vocabularies: every phrase the coach says that a routine does not spell out.

They live in data files (``vocab/<language>.yaml``) so a language is added without code.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass, field, replace
from fractions import Fraction
from importlib import resources
from typing import Iterable, Mapping

import yaml

from .errors import Location, VoicecoachError
from .languages import fallbacks
from .spoken import expand

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


SPOKEN_WORDS: Mapping[str, frozenset[str]] = {
    # words for writing out symbols and units (spoken.py), with the placeholders they must use
    "hours_one": frozenset(),
    "hours_many": frozenset({"n"}),
    "milliseconds_one": frozenset(),
    "milliseconds_many": frozenset({"n"}),
    "times": frozenset(),  # 3x
    "percent": frozenset(),  # 50%
    "or": frozenset(),  # left/right
    "per": frozenset(),  # 10/side
    "of": frozenset(),  # 2/3
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
    decimal_separator: str = "."
    """How a fraction of a second is written for the engine to read (``1,5`` in German)."""
    words: Mapping[str, str] = field(default_factory=dict)
    """Words for symbols and units when text is written out for speaking (:data:`SPOKEN_WORDS`)."""
    decimal_word: str = ""
    """How the decimal separator is said, where num2words says it otherwise (Spanish "coma", not
    "punto", for ``1,5``); empty: num2words' own word."""
    count_forms: Mapping[str, str] = field(default_factory=dict)
    """A number's last word as said before a unit, where it differs (Spanish "veintiuno" ->
    "veintiún segundos", French "vingt et un" -> "vingt et une secondes", units being feminine)."""

    def phrase(self, key: str, **values: object) -> str:
        return self.phrases[key].format(**values)

    def unit(self, name: str, *, one: bool = False, n: str = "") -> str:
        """``"minutes"``, ``n="thirty"`` -> "thirty minutes"; ``one=True`` -> "one minute"
        (seconds and minutes are phrases a routine's ``cues:`` may change; hours and milliseconds words)."""
        key = f"{name}_one" if one else f"{name}_many"
        template = self.phrases.get(key) or self.words[key]
        return template if one else template.format(n=n)

    def spoken(self, text: str) -> str:
        """``text`` as said: durations, numbers and symbols in this language's words (see spoken.py)."""
        return expand(text, self)

    def number(self, n: int) -> str:
        return self.numbers.get(n, str(n))

    def with_cues(self, cues: Iterable[tuple[str, str]]) -> "Vocabulary":
        """This vocabulary with some phrases replaced (a routine's ``cues:``, already checked)."""
        cues = tuple(cues)
        if not cues:
            return self
        return replace(self, phrases={**self.phrases, **dict(cues)})

    def duration(self, seconds: Fraction) -> str:
        """``90`` -> ``"1 minute and 30 seconds"`` in the vocabulary's words."""
        if seconds != int(seconds) and seconds < 60:
            return self.phrase("seconds_many", n=f"{float(seconds):g}".replace(".", self.decimal_separator))
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


def phrase_problem(key: str, template: object, required: Mapping[str, frozenset[str]] = REQUIRED_PHRASES) -> str | None:
    """What is wrong with ``template`` as the phrase ``key`` (``None`` if nothing).

    A phrase is non-empty text whose ``{placeholders}`` are exactly the ones its key needs,
    written plainly: no attributes, indexes, conversions or format specs (they could fail
    or read out internals when the phrase is filled in).
    """
    if key not in required:
        return f"unknown cue {key!r}"
    if not isinstance(template, str) or not template.strip():
        return f"cue {key!r} must be non-empty text"
    needed = required[key]
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError:
        return f"cue {key!r} has an unmatched brace; write placeholders like {{name}} and no other braces"
    for name, spec, conversion in fields:
        if not name.isidentifier() or spec or conversion:
            return f"cue {key!r} has the placeholder {{{name}{'!' + conversion if conversion else ''}" \
                   f"{':' + spec if spec else ''}}}; write placeholders plainly, like {{name}}"
    used = {name for name, _, _ in fields}
    if used != needed:
        must = ", ".join(f"{{{n}}}" for n in sorted(needed)) or "no placeholders"
        have = ", ".join(f"{{{n}}}" for n in sorted(used)) or "none"
        return f"cue {key!r} uses {have}; it must use {must}"
    return None


def find_language(language: str) -> str | None:
    """The vocabulary code for a language tag, matched as BCP 47 (``de-AT``, ``EN-gb``, ``pt_BR``
    fall back to their base language), or ``None`` when there is none."""
    languages = set(available_languages())
    return next((tag for tag in fallbacks(language) if tag in languages), None)


def load_vocabulary(language: str, *, location: Location | None = None) -> Vocabulary:
    """The vocabulary for ``language`` (``en-us``, ``de-AT`` fall back to ``en``, ``de``).

    ``location`` is where the routine names its language, for the error when there is no
    vocabulary for it.
    """
    code = find_language(language)
    if code is None:
        raise VoicecoachError(
            f"no cue vocabulary for language {language!r}",
            location=location,
            hint=f"use one of: {', '.join(available_languages())}",
        )
    return _load(code)


@functools.lru_cache(maxsize=None)
def _load(code: str) -> Vocabulary:
    path = resources.files("voicecoach") / "vocab" / f"{code}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return validate_vocabulary(code, data, Location(f"vocab/{code}.yaml"))


def validate_vocabulary(code: str, data: object, where: Location) -> Vocabulary:
    """A vocabulary file's data, checked: every required phrase, no unknown one, right placeholders."""
    if not isinstance(data, dict) or not isinstance(data.get("phrases"), dict):
        raise VoicecoachError("vocabulary file has no 'phrases' mapping", location=where)
    phrases = data["phrases"]
    for key in REQUIRED_PHRASES:
        if key not in phrases:
            raise VoicecoachError(f"vocabulary is missing the phrase {key!r}", location=where,
                                  hint="every vocabulary has the keys of vocab/en.yaml")
    for key, template in phrases.items():
        problem = phrase_problem(str(key), template)
        if problem is not None:
            raise VoicecoachError(f"vocabulary: {problem}", location=where,
                                  hint="every vocabulary has exactly the keys of vocab/en.yaml")
    raw_numbers = data.get("numbers") or {}
    if not isinstance(raw_numbers, dict) or not all(
        isinstance(k, int) and isinstance(v, str) and v.strip() for k, v in raw_numbers.items()
    ):
        raise VoicecoachError("vocabulary: 'numbers' must map whole numbers to words", location=where)
    separator = data.get("decimal_separator", ".")
    if separator not in (".", ","):
        raise VoicecoachError("vocabulary: 'decimal_separator' must be '.' or ','", location=where)
    words = data.get("words")
    if not isinstance(words, dict) or set(words) != set(SPOKEN_WORDS):
        raise VoicecoachError("vocabulary: 'words' must give exactly: " + ", ".join(SPOKEN_WORDS), location=where,
                              hint="every vocabulary has the words of vocab/en.yaml")
    for key, template in words.items():
        problem = phrase_problem(str(key), template, SPOKEN_WORDS)
        if problem is not None:
            raise VoicecoachError(f"vocabulary words: {problem}", location=where)
    count_forms = data.get("count_forms") or {}
    if not isinstance(count_forms, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip() for k, v in count_forms.items()
    ):
        raise VoicecoachError("vocabulary: 'count_forms' must map a number's last word to its form before a unit",
                              location=where, hint='e.g. count_forms: {uno: un}')
    decimal_word = data.get("decimal_word", "")
    if not isinstance(decimal_word, str):
        raise VoicecoachError("vocabulary: 'decimal_word' must be the word said for the decimal separator",
                              location=where, hint='e.g. decimal_word: "coma"')
    return Vocabulary(language=code, phrases=dict(phrases), numbers=dict(raw_numbers), decimal_separator=separator,
                      words=dict(words), count_forms=dict(count_forms), decimal_word=decimal_word.strip())

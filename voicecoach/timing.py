"""Durations: parsed exactly, and turned into samples in one place.

Seconds stay exact :class:`Fraction` values until :func:`to_samples` rounds them, once,
so a cue scheduled at ``t`` seconds starts at sample ``round(t * rate)`` and nothing drifts.
"""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = r"\d+(?:\.\d+)?"
_PART = re.compile(rf"\s*({_NUMBER})\s*(ms|h|m|s)?\s*")
_UNIT_SECONDS = {"h": Fraction(3600), "m": Fraction(60), "s": Fraction(1), "ms": Fraction(1, 1000)}
_UNIT_ORDER = ["h", "m", "s", "ms"]


def parse_duration(value: object) -> Fraction:
    """``5s``, ``1.5s``, ``2m``, ``1m30s``, ``1h``, ``250ms`` or a bare number -> seconds.

    Raises ``ValueError`` with a short reason for anything else (the caller adds the
    location and hint).  Zero and negative values are for the caller to refuse.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration, got true/false")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("expected a finite duration")
        # repr() gives the shortest decimal that round-trips: 1.1 -> 11/10, not the binary float.
        return Fraction(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    text = value.strip().lower()
    if text.startswith("-"):
        raise ValueError(f"duration {value!r} is negative")
    parts = []
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"{value!r} is not a duration")
        parts.append((Fraction(match.group(1)), match.group(2)))
        pos = match.end()
    if not parts:
        raise ValueError(f"{value!r} is not a duration")
    if len(parts) == 1 and parts[0][1] is None:
        return parts[0][0]  # a bare number is seconds
    units = [unit for _, unit in parts]
    if None in units or units != sorted(set(units), key=_UNIT_ORDER.index):
        raise ValueError(f"{value!r} is not a duration")
    return sum((number * _UNIT_SECONDS[unit] for number, unit in parts), Fraction(0))


def to_samples(seconds: Fraction | int, sample_rate: int) -> int:
    """The one conversion from seconds to samples: ``round(seconds * sample_rate)``.

    Exact for any Fraction; ties round to even, like Python's ``round``.
    """
    return round(Fraction(seconds) * sample_rate)


def format_duration(seconds: float | Fraction) -> str:
    """``75.5`` -> ``"1:15.5"``; ``5`` -> ``"0:05"`` (for plans and summaries)."""
    total = float(seconds)
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(int(minutes), 60)
    sec_text = f"{secs:04.1f}" if secs != int(secs) else f"{int(secs):02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{sec_text}"
    return f"{minutes}:{sec_text}"


def spoken_seconds(seconds: Fraction) -> tuple[int, int]:
    """Split a duration into whole (minutes, seconds) for speaking ``"1 minute 30 seconds"``."""
    whole = int(round(seconds))
    return divmod(whole, 60)


# ---------------------------------------------------------------------------------------
# Inline pauses in spoken text: "Close your eyes. [pause 3s] Open them."

_PAUSE_START = re.compile(r"\[\s*pause\b", re.IGNORECASE)
_PAUSE = re.compile(r"\[\s*pause\b(?P<arg>[^\[\]]*)\]", re.IGNORECASE)
MAX_PAUSE_S = Fraction(600)
"""Longest single inline pause."""


def has_pauses(text: str) -> bool:
    """Whether ``text`` holds an inline ``[pause ...]`` (well-formed or not)."""
    return "[" in text and _PAUSE_START.search(text) is not None


def split_pauses(text: str) -> list[tuple[str, Fraction]]:
    """Spoken parts of ``text`` and the exact silence after each, in seconds.

    ``"Close your eyes. [pause 3s] Open them."`` -> ``[("Close your eyes.", 3), ("Open them.", 0)]``.
    A text that starts with a pause has an empty first part; pauses in a row add up.  Raises
    ``ValueError`` with a short reason for a malformed, zero or too long pause.
    """
    if not has_pauses(text):
        return [(text, Fraction(0))]
    parts: list[tuple[str, Fraction]] = []
    pos = 0
    for match in _PAUSE.finditer(text):
        words = " ".join(text[pos : match.start()].split())
        _check_no_stray_pause(text[pos : match.start()])
        arg = match.group("arg").strip()
        if not arg:
            raise ValueError("'[pause]' needs a duration, like [pause 2s]")
        try:
            seconds = parse_duration(arg)
        except (ValueError, OverflowError, ZeroDivisionError):
            raise ValueError(f"'{match.group(0)}': {arg!r} is not a duration, write it like [pause 2s]") from None
        if seconds <= 0:
            raise ValueError(f"'{match.group(0)}' must be longer than zero")
        if seconds > MAX_PAUSE_S:
            raise ValueError(f"'{match.group(0)}' is longer than the limit of {MAX_PAUSE_S} seconds")
        if words or not parts:
            parts.append((words, seconds))
        else:  # pauses in a row: one longer silence
            parts[-1] = (parts[-1][0], parts[-1][1] + seconds)
        pos = match.end()
    _check_no_stray_pause(text[pos:])
    rest = " ".join(text[pos:].split())
    if rest:
        parts.append((rest, Fraction(0)))
    return parts


def _check_no_stray_pause(text: str) -> None:
    if has_pauses(text):
        raise ValueError("a '[pause' is not closed with ']'; write it like [pause 2s]")


def strip_pauses(text: str) -> str:
    """``text`` without its pause markers (for titles and captions)."""
    return " ".join(_PAUSE.sub(" ", text).split()) if has_pauses(text) else text

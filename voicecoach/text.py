"""Text on its way to a speech engine: nothing in it may act as a command.

What espeak-ng does with the text the espeak engine sends it (flags ``ENDPAUSE | CHARS_UTF8``,
as pyttsx3's binding uses them; tried with the real library):

- ``\\x01`` starts an *embedded command* even without any flag: ``"\\x01" "200A"`` sets the
  amplitude, ``"\\x01" "5S"`` the speed.  So every control character is removed.
- SSML is off (no ``espeakSSML``): ``<break time="20s"/>`` is read out as words, not obeyed;
  ``[[...]]`` phoneme input is off (no ``espeakPHONEMES``).  Angle and square brackets are
  still replaced by spaces, so that markup stays inert should an engine ever parse it.
- Private-use characters are removed: espeak uses that range internally (e.g. U+E000+'<' is
  its escaped '<'); so are format characters (zero-width space, bidirectional overrides; the
  joiners that shape Persian or Hindi words stay), unpaired surrogates and unassigned code
  points.  Whitespace is collapsed.

Routine files are checked earlier (script.py): control characters are already spaces there,
and a sentence longer than :data:`MAX_SENTENCE_CHARS` is refused with its location, because
an engine given hundreds of characters without a pause either runs them together or stalls.
"""

from __future__ import annotations

import re
import unicodedata

MAX_SENTENCE_CHARS = 400
"""Most characters a spoken text may run without a sentence or clause break."""

_DROPPED = frozenset({"Cf", "Co", "Cs", "Cn"})  # format, private use, surrogate, unassigned
_JOINERS = frozenset("\u200c\u200d")  # format characters that shape words in Persian, Hindi, ...
_MARKUP = str.maketrans({"<": " ", ">": " ", "[": " ", "]": " "})
_BREAK = re.compile(r"[.!?;:,\u2026\u3001\u3002\uff01\uff1f\uff1b\uff1a\uff0c\u060c\u061b\u061f\u0964\u0965]")


def speech_text(text: str) -> str:
    """``text`` made safe to hand to a speech engine as plain words (see the module's notes)."""
    if text.isascii() and text.isprintable() and not any(c in text for c in "<>[]"):
        return " ".join(text.split())  # the common case, fast
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            kept.append(" ")  # a line break or tab still separates words
        elif category not in _DROPPED or char in _JOINERS:
            kept.append(char)
    return " ".join("".join(kept).translate(_MARKUP).split())


def longest_sentence(text: str) -> int:
    """Characters in the longest stretch of ``text`` between sentence or clause breaks."""
    return max((len(part.strip()) for part in _BREAK.split(text)), default=0)

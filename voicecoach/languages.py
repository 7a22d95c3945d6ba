"""Language tags as users write them (BCP 47, in any case, ``_`` or ``-``), matched the way they expect.

``de-AT``, ``DE-at`` and ``de_AT`` are one tag; a tag nothing has exactly falls back to the
tag without its last subtag, down to the base language: ``pt-BR`` -> ``pt-br``, ``pt``.  The
cue vocabularies (vocab.py) and the engines' voices (engines/) are looked up this way.
"""

from __future__ import annotations

import re

TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
"""What ``language:`` accepts: a base language of 2 or 3 letters and subtags (region, script, variant)."""


def normalize(tag: str) -> str:
    """``"pt_BR"`` -> ``"pt-br"``: one spelling of a tag, for comparing (tags are case-insensitive)."""
    return tag.strip().replace("_", "-").lower()


_SCRIPT = re.compile(r"^[a-z]{4}$")
_REGION = re.compile(r"^([a-z]{2}|\d{3})$")
_VARIANT = re.compile(r"^\d[a-z\d]{3}$")


def regional(tag: str) -> bool:
    """Whether ``tag`` is a base language with the subtags BCP 47 puts after it -- a script
    (``Latn``), a region (``AT``, ``419``), a numeric variant, a private use (``x-...``) -- so
    that dropping them keeps its meaning.  ``no-such-voice`` is not: it names no Norwegian voice."""
    parts = normalize(tag).split("-")
    for index, part in enumerate(parts[1:], 1):
        if part == "x":
            return index < len(parts) - 1  # everything after x- is private use
        if not (_REGION.match(part) or _VARIANT.match(part) or (index == 1 and _SCRIPT.match(part))):
            return False
    return TAG.match(tag.strip()) is not None


def fallbacks(tag: str) -> list[str]:
    """The tag and each shorter one, most specific first: ``"de-AT-x-wien"`` -> ``de-at-x-wien, de-at-x, de-at, de``
    (only the tag itself when it is not :func:`regional`: a word with dashes falls back to nothing)."""
    parts = normalize(tag).split("-")
    if not regional(tag):
        return ["-".join(parts)]
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1) if parts[n - 1]]


def base(tag: str) -> str:
    """The base language of a tag: ``"EN-gb"`` -> ``"en"``."""
    return normalize(tag).split("-")[0]

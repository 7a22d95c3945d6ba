"""Counted nouns in messages: ``1 step``, ``2 steps`` -- one helper, so no message says ``1 steps``."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with ``noun`` in the number it needs (``plural`` for nouns that do not just add an s).

    >>> count(1, "step"), count(6, "step"), count(0, "entry", "entries")
    ('1 step', '6 steps', '0 entries')
    """
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """Just the noun for ``n`` of them: ``noun(1, "step")`` is ``step``."""
    return singular if n == 1 else plural or singular + "s"


__all__ = ["count", "noun"]

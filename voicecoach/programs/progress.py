"""Progress arithmetic: how much harder a program day is than the routine as written.

Pure and exact: counts are integers, holds :class:`~fractions.Fraction` seconds, so a hold
grown by ``+1s`` three times is exactly 3 s longer and compiles to exactly
``to_samples(hold_s + 3)`` samples.  A value grows by its increment once per completed week
of the program (the level, :func:`level`), up to its limit; a value already at or past its
limit stays as written (progress never makes a routine easier, and never harder than the
limit).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Mapping

from ..errors import Location
from ..model import Exercise, Massage, Repeat, Routine, Step
from ..script import DEFAULT_LIMITS

__all__ = ["DAYS_PER_LEVEL", "Progress", "grow", "level", "progress_routine", "progress_step"]

DAYS_PER_LEVEL = 7
"""Program days per progress level: a week."""


@dataclass(frozen=True)
class Progress:
    """What grows per completed week, and how far (``None``: no limit but the routine format's)."""

    reps: int = 0
    """Reps added to every exercise per completed week."""
    hold_s: Fraction = Fraction(0)
    """Seconds added to every exercise's hold per completed week."""
    strokes: int = 0
    """Strokes added to every massage per completed week."""
    max_reps: int | None = None
    """Reps never grow past this."""
    max_hold_s: Fraction | None = None
    """Holds never grow past this many seconds."""
    max_strokes: int | None = None
    """Strokes never grow past this."""
    deload_weeks: tuple[int, ...] = ()
    """Weeks (1-based) played at the routine's own values: a lighter week to recover."""
    locs: Mapping[str, Location] = field(default_factory=dict, compare=False, repr=False)
    """Where each key is written in the program file."""

    @property
    def none(self) -> bool:
        """Nothing grows."""
        return not (self.reps or self.hold_s or self.strokes)


def level(day: int, progress: Progress = Progress()) -> int:
    """Completed weeks before program day ``day`` (1-based): 0 in days 1-7, 3 on day 22.

    A deload week plays at level 0; the week after it continues where the progress was.
    """
    if day < 1:
        raise ValueError(f"program days start at 1, got {day}")
    week = (day - 1) // DAYS_PER_LEVEL + 1
    return 0 if week in progress.deload_weeks else week - 1


def grow(value, increment, steps: int, limit):
    """``value + steps * increment``, but not past ``limit``; a value already past it stays."""
    if steps <= 0 or not increment:
        return value
    grown = value + steps * increment
    if limit is None:
        return grown
    return value if value >= limit else min(grown, limit)


def _limit(own, format_limit):
    return format_limit if own is None else min(own, format_limit)


def progress_step(step: Step, progress: Progress, steps: int) -> Step:
    """One step ``steps`` levels on (repeats: their steps); other kinds as they are."""
    if steps <= 0 or progress.none:
        return step
    if isinstance(step, Exercise):
        return dataclasses.replace(
            step,
            reps=grow(step.reps, progress.reps, steps, _limit(progress.max_reps, DEFAULT_LIMITS.max_reps)),
            hold_s=grow(step.hold_s, progress.hold_s, steps,
                        _limit(progress.max_hold_s, DEFAULT_LIMITS.max_duration_s)),
        )
    if isinstance(step, Massage):
        return dataclasses.replace(
            step, strokes=grow(step.strokes, progress.strokes, steps,
                               _limit(progress.max_strokes, DEFAULT_LIMITS.max_strokes)))
    if isinstance(step, Repeat):
        return dataclasses.replace(step, steps=tuple(progress_step(s, progress, steps) for s in step.steps))
    return step


def progress_routine(routine: Routine, progress: Progress, steps: int) -> Routine:
    """The routine with every exercise and massage ``steps`` levels on."""
    if steps <= 0 or progress.none:
        return routine
    return dataclasses.replace(routine, steps=tuple(progress_step(s, progress, steps) for s in routine.steps))

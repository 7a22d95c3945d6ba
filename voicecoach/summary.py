"""A timeline in words: what each step holds (``voicecoach preview``).

Pure functions of the timeline: the counts come from the steps' kinds and their events'
cues, never from the text shown or spoken, so they read the same in every language.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from .grammar import count
from .model import Chapter, Cue, Event, StepKind, Timeline
from .timing import format_duration

_COUNTED = ((Cue.HOLD, "hold"), (Cue.STROKE, "stroke"), (Cue.SIDE, "side"), (Cue.SET, "set"))


def breaths(events: Sequence[Event]) -> int:
    """Breathing cycles among one step's events.

    Each cycle is the same sequence of breathing cues (in, maybe hold, out) and opens with the
    inhale: the cycles are the breathing events that say what the step's first one says.
    """
    paced = [e for e in events if e.cue is Cue.BREATHE]
    return sum(1 for e in paced if (e.kind, e.text, e.tone) == (paced[0].kind, paced[0].text, paced[0].tone))


def step_summary(chapter: Chapter, events: Sequence[Event], sample_rate: int) -> str:
    """What happens in a step: ``"5 holds, 2 sides"``, ``"8 strokes"``, ``"6 breaths"``, ``"rest 0:30"``."""
    if chapter.kind is StepKind.REST:
        return f"rest {format_duration(round((chapter.end_sample - chapter.start_sample) / sample_rate))}"
    if chapter.kind is StepKind.SAY:
        return "narration"
    counts = Counter(e.cue for e in events)
    parts = [count(counts[cue], noun) for cue, noun in _COUNTED if counts[cue]]
    cycles = breaths(events)
    if cycles:
        parts.append(count(cycles, "breath"))
    return ", ".join(parts) or "narration"


@dataclass(frozen=True)
class StepPlan:
    """One step of a plan, as ``voicecoach preview`` shows it."""

    number: int
    """The step's number, from 1: as the text view shows it and ``play --from`` takes it."""
    title: str
    """The chapter's title."""
    kind: StepKind
    """What kind of step it is."""
    area: str | None
    """Face area, if any."""
    start_s: float
    """Seconds from the start of the track."""
    duration_s: float
    """Seconds the step lasts."""
    summary: str
    """:func:`step_summary`."""

    def as_json(self) -> dict[str, object]:
        return {"step": self.number, "title": self.title, "kind": self.kind.value, "area": self.area,
                "start_s": self.start_s, "duration_s": self.duration_s, "summary": self.summary}


def plan_steps(timeline: Timeline) -> list[StepPlan]:
    """Every step of a timeline with its summary, in order."""
    rate = timeline.sample_rate
    by_step: dict[int, list[Event]] = {}
    for event in timeline.events:
        by_step.setdefault(event.step, []).append(event)
    return [
        StepPlan(
            number=chapter.step + 1,
            title=chapter.title,
            kind=chapter.kind,
            area=chapter.area.value if chapter.area else None,
            start_s=chapter.start_sample / rate,
            duration_s=(chapter.end_sample - chapter.start_sample) / rate,
            summary=step_summary(chapter, by_step.get(chapter.step, []), rate),
        )
        for chapter in timeline.chapters
    ]

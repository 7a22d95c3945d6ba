"""summary.py: what each step holds, counted from step kinds and cues (never from shown text)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from voicecoach.model import Breathe, Cue, flat_steps
from voicecoach.pipeline import plan
from voicecoach.script import load_routine
from voicecoach.summary import breaths, plan_steps, step_summary

SCRIPTS = sorted((Path(__file__).parent.parent / "scripts").glob("*.yaml"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_counts_match_the_routine_in_every_language(path):
    routine = load_routine(path)
    timeline = plan(routine)
    steps = plan_steps(timeline)
    assert [s.title for s in steps] == [c.title for c in timeline.chapters]
    for (step, _), item in zip(flat_steps(routine.steps), steps):
        if isinstance(step, Breathe):
            assert item.summary == f"{step.cycles} breath{'s' if step.cycles != 1 else ''}"
        else:
            assert "breath" not in item.summary


def test_breaths_do_not_read_the_labels():
    path = next(p for p in SCRIPTS if p.stem == "morning")
    timeline = plan(path)
    chapter = next(c for c in timeline.chapters if c.kind.value == "breathe")
    events = [e for e in timeline.events if e.step == chapter.step]
    relabelled = [dataclasses.replace(e, label="x") for e in events]
    cycles = breaths(events)
    assert cycles > 1 and breaths(relabelled) == cycles
    assert step_summary(chapter, relabelled, timeline.sample_rate) == step_summary(chapter, events, timeline.sample_rate)
    # Only the breathing cues count; one cycle (in, out) is one breath.
    first_cycle = [e for e in events if e.cue is Cue.BREATHE][:2]
    assert breaths(first_cycle) == 1 and breaths([]) == 0

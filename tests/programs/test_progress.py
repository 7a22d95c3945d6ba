"""programs/progress.py: weekly growth never passes its limits and stays exact in samples."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings, strategies as st

from voicecoach.errors import Location
from voicecoach.model import CountMode, Cue, Exercise, Massage, Repeat, Routine
from voicecoach.pipeline import Settings, plan
from voicecoach.programs.progress import Progress, grow, level, progress_routine
from voicecoach.timing import to_samples

HERE = Location("t.yaml", 3, 5)


def test_level_counts_completed_weeks():
    assert [level(d) for d in (1, 7, 8, 14, 15, 21, 22, 29, 30)] == [0, 0, 1, 1, 2, 2, 3, 4, 4]
    deload = Progress(reps=1, deload_weeks=(4,))
    assert [level(d, deload) for d in (21, 22, 28, 29)] == [2, 0, 0, 4]


def test_grow_stops_at_the_limit_and_never_shrinks():
    assert grow(4, 1, 2, 10) == 6
    assert grow(9, 1, 3, 10) == 10
    assert grow(12, 1, 3, 10) == 12  # written past the limit: kept, never lowered
    assert grow(Fraction(6), Fraction(1), 2, None) == 8
    assert grow(5, 0, 9, 10) == 5 and grow(5, 2, 0, 10) == 5


counts = st.integers(1, 40)
holds = st.fractions(min_value=Fraction(1, 10), max_value=Fraction(60)).map(lambda f: f.limit_denominator(100))


@given(value=counts, inc=st.integers(0, 5), steps=st.integers(0, 52), limit=st.none() | counts)
def test_counts_never_pass_the_limit(value, inc, steps, limit):
    grown = grow(value, inc, steps, limit)
    assert grown >= value  # never easier
    if limit is not None and value <= limit:
        assert grown <= limit
    if limit is None or value + steps * inc <= limit:
        assert grown == value + steps * inc  # exact when the limit is not reached


@settings(max_examples=40, deadline=None)
@given(hold=holds, reps=st.integers(1, 6), strokes=st.integers(1, 12), tempo=holds,
       inc=st.sampled_from([Fraction(1), Fraction(1, 2), Fraction(1, 4), Fraction(3, 10)]),
       steps=st.integers(0, 5), limit=holds)
def test_progressed_holds_and_strokes_are_exact_in_samples(hold, reps, strokes, tempo, inc, steps, limit):
    exercise = Exercise("Lift", HERE, reps=reps, hold_s=hold, count=CountMode.NONE,
                        release_s=Fraction(3))
    massage = Massage("Sweep", HERE, strokes=strokes, tempo_s=tempo + 1)
    routine = Routine("R", (Repeat(1, (exercise,), HERE), massage))
    progress = Progress(reps=1, hold_s=inc, strokes=2, max_hold_s=limit, max_reps=8, max_strokes=14)
    grown = progress_routine(routine, progress, steps)
    new_ex, new_ma = grown.steps[0].steps[0], grown.steps[1]
    assert new_ex.hold_s == grow(hold, inc, steps, limit) and (new_ex.hold_s <= max(limit, hold))
    assert new_ex.reps == grow(reps, 1, steps, 8) and new_ma.strokes == grow(strokes, 2, steps, 14)
    timeline = plan(grown, settings=Settings(sample_rate=8000))
    holds_at = [e.start_sample for e in timeline.events if e.cue is Cue.HOLD]
    releases = [e.start_sample for e in timeline.events if e.cue is Cue.RELEASE and e.tone is not None]
    assert len(holds_at) == new_ex.reps
    # every hold lasts exactly the progressed hold, in samples
    assert {r - h for h, r in zip(holds_at, releases)} == {to_samples(new_ex.hold_s, 8000)}
    strokes_at = [e.start_sample for e in timeline.events if e.cue is Cue.STROKE]
    assert len(strokes_at) == new_ma.strokes
    assert strokes_at[-1] - strokes_at[0] == to_samples((new_ma.strokes - 1) * new_ma.tempo_s, 8000)

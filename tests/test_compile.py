"""compile.py: timeline invariants (property tests), exact timing, timing errors, limits."""

from __future__ import annotations

import math
from fractions import Fraction as F

import pytest
from hypothesis import given, settings, strategies as st

from voicecoach.compile import CompileSettings, collect_phrases, compile_timeline, iter_sections
from voicecoach.errors import Location, TimingError, VoicecoachError
from voicecoach.model import (
    Area, Breathe, CountMode, Cue, EventKind, Exercise, Massage, Pressure, Repeat, Rest, Routine, Say, Side,
    Tone, flat_steps,
)
from voicecoach.timing import to_samples
from voicecoach.vocab import load_vocabulary

RATE = 44100
VOCAB = load_vocabulary("en")
LOC = Location("test.yaml", 3, 5)
TONE_SAMPLES = {Tone.CHIME: 44100, Tone.TICK: 2205, Tone.BELL: 26460, Tone.FINISH: 79380}


def short_speech(text: str) -> int:
    """Deterministic lengths that always fit 1 s slots: 0.1 s + 20 ms a character, at most 0.6 s."""
    return to_samples(min(F(6, 10), F(1, 10) + F(2, 100) * len(text)), RATE)


def compile_(routine: Routine, speech=short_speech, **kw):
    return compile_timeline(
        routine, vocab=VOCAB, speech_samples=speech, tone_samples=TONE_SAMPLES.__getitem__,
        settings=CompileSettings(sample_rate=RATE, **kw),
    )


seconds = st.integers(min_value=2, max_value=40).map(lambda tenths: F(tenths, 4))  # 0.5 s steps, 1..10 s
sides = st.sampled_from([(Side.BOTH,), (Side.LEFT, Side.RIGHT), (Side.LEFT,)])
words = st.sampled_from(["", "Lift.", "Press up and hold the position."])

exercises = st.builds(
    Exercise, name=st.just("Lift"), loc=st.just(LOC), area=st.sampled_from(list(Area)), say=words, tip=words,
    cue=words, reps=st.integers(1, 4), hold_s=seconds, release_s=seconds, sets=st.integers(1, 3),
    rest_s=seconds.map(lambda s: s + 1), sides=sides, count=st.sampled_from(list(CountMode)),
)
massages = st.builds(
    Massage, name=st.just("Sweep"), loc=st.just(LOC), say=words, stroke=words, strokes=st.integers(1, 12),
    tempo_s=seconds, sides=sides, count=st.booleans(), cue=st.sampled_from(["", "up"]),
    pressure=st.sampled_from([None, *Pressure]), tip=words,
)
breaths = st.builds(
    Breathe, name=st.just("Calm"), loc=st.just(LOC), inhale_s=seconds, exhale_s=seconds,
    hold_s=st.one_of(st.none(), seconds), cycles=st.integers(1, 4),
)
rests = st.builds(Rest, duration_s=seconds.map(lambda s: s + 3), loc=st.just(LOC))
says = st.builds(Say, text=st.sampled_from(["Welcome.", "Relax your shoulders and breathe."]), loc=st.just(LOC))
simple_steps = st.one_of(exercises, massages, breaths, rests, says)
steps = st.one_of(
    simple_steps,
    st.builds(Repeat, times=st.integers(1, 3), steps=st.lists(simple_steps, min_size=1, max_size=2).map(tuple),
              loc=st.just(LOC)),
)
routines = st.builds(
    Routine, title=st.just("Test"), steps=st.lists(steps, min_size=1, max_size=5).map(tuple),
    intro=words, outro=words,
)


@settings(max_examples=150, deadline=None)
@given(routines)
def test_timeline_invariants(routine):
    timeline = compile_(routine)
    events = timeline.events
    # events are sorted, and no two speech clips overlap
    assert [e.start_sample for e in events] == sorted(e.start_sample for e in events)
    speech = [e for e in events if e.kind is EventKind.SPEECH]
    for a, b in zip(speech, speech[1:]):
        assert a.end_sample <= b.start_sample, (a, b)
    # chapters tile the track, one per expanded step, and hold their own events
    chapters = timeline.chapters
    assert len(chapters) == len(flat_steps(routine.steps))
    assert chapters[0].start_sample == 0 and chapters[-1].end_sample == timeline.length_samples
    for a, b in zip(chapters, chapters[1:]):
        assert a.end_sample == b.start_sample and a.start_sample < a.end_sample
    for e in events:
        chapter = chapters[e.step]
        assert chapter.start_sample <= e.start_sample < chapter.end_sample
    # duration = end of the last event + tail
    tail = to_samples(CompileSettings().tail_s, RATE)
    assert timeline.length_samples == max(e.end_sample for e in events) + tail
    # every phrase collect_phrases predicts is spoken, and nothing else
    assert set(collect_phrases(routine, vocab=VOCAB)) == {e.text for e in speech}


@settings(max_examples=100, deadline=None)
@given(exercises)
def test_holds_are_exact(exercise):
    timeline = compile_(Routine(title="T", steps=(exercise,)))
    holds = [e for e in timeline.events if e.cue is Cue.HOLD]
    releases = [e for e in timeline.events if e.cue is Cue.RELEASE and e.kind is EventKind.SPEECH]
    bells = [e for e in timeline.events if e.cue is Cue.RELEASE and e.kind is EventKind.TONE]
    assert len(holds) == len(releases) == len(bells) == exercise.reps * exercise.sets * len(exercise.sides)
    hold = to_samples(exercise.hold_s, RATE)
    for h, r, b in zip(holds, releases, bells):
        assert r.start_sample - h.start_sample == hold
        assert b.start_sample == r.start_sample
        counts = [e for e in timeline.events if e.cue is Cue.COUNT and h.start_sample < e.start_sample < r.start_sample]
        assert [e.start_sample - h.start_sample for e in counts] == [
            to_samples(k, RATE) for k in range(1, math.ceil(exercise.hold_s))
        ]
        if exercise.count is CountMode.NONE:
            assert all(e.tone is Tone.TICK for e in counts)
        elif exercise.count is CountMode.DOWN:
            assert [e.text for e in counts] == [VOCAB.spoken(str(n)) for n in range(len(counts), 0, -1)]
        else:
            assert [e.text for e in counts] == [VOCAB.spoken(str(n)) for n in range(1, len(counts) + 1)]
    # what follows a release starts exactly `release` later (onset to onset)
    release = to_samples(exercise.release_s, RATE)
    for r, h_next in zip(releases, holds[1:]):
        following = [e for e in timeline.events if e.start_sample > r.start_sample and e.cue is not Cue.RELEASE]
        assert following[0].start_sample == r.start_sample + release


@settings(max_examples=100, deadline=None)
@given(massages)
def test_strokes_are_exact(massage):
    timeline = compile_(Routine(title="T", steps=(massage,)))
    strokes = [e for e in timeline.events if e.cue is Cue.STROKE]
    assert len(strokes) == massage.strokes * len(massage.sides)
    for side in range(len(massage.sides)):
        these = strokes[side * massage.strokes : (side + 1) * massage.strokes]
        t0 = these[0].start_sample
        assert [e.start_sample - t0 for e in these] == [
            to_samples((k - 1) * massage.tempo_s, RATE) for k in range(1, massage.strokes + 1)
        ]
        if massage.count:
            assert [e.text for e in these] == [VOCAB.spoken(str(k)) for k in range(1, massage.strokes + 1)]
        elif massage.cue:
            assert all(e.text == massage.cue for e in these)
        else:
            assert all(e.tone is Tone.TICK for e in these)


def test_fractional_tempo_never_drifts():
    # 10/13 s is not a whole number of samples: each onset is rounded from its exact time
    # (t0 + round((k-1) * T * rate)), never by adding a rounded tempo, so the error stays < 1 sample.
    tempo = F(10, 13)
    massage = Massage("Tap", LOC, strokes=300, tempo_s=tempo)
    timeline = compile_(Routine(title="T", steps=(massage,)))
    strokes = [e.start_sample for e in timeline.events if e.cue is Cue.STROKE]
    for k, onset in enumerate(strokes):
        assert abs(F(onset - strokes[0]) - k * tempo * RATE) <= F(1, 2)
    assert len({b - a for a, b in zip(strokes, strokes[1:])}) == 2  # the rounding alternates, it does not pile up


def test_breathing_phases_onset_to_onset():
    breathe = Breathe("Calm", LOC, inhale_s=F(4), hold_s=F(2), exhale_s=F(6), cycles=2)
    timeline = compile_(Routine(title="T", steps=(breathe,)))
    onsets = [e.start_sample for e in timeline.events if e.cue is Cue.BREATHE]
    assert [b - a for a, b in zip(onsets, onsets[1:])] == [4 * RATE, 2 * RATE, 6 * RATE, 4 * RATE, 2 * RATE]
    assert [e.text for e in timeline.events if e.cue is Cue.BREATHE][:3] == ["Breathe in.", "Hold.", "Breathe out."]


def test_rest_is_onset_to_onset_and_announces_next():
    steps = (Rest(F(15), LOC), Massage("Cheek sweep", LOC, strokes=2))
    timeline = compile_(Routine(title="T", steps=steps))
    rest_chapter, massage_chapter = timeline.chapters
    rest = next(e for e in timeline.events if e.cue is Cue.REST)
    nxt = next(e for e in timeline.events if e.cue is Cue.NEXT)
    assert rest.text == "Rest for fifteen seconds."  # written out: engines never read digits
    assert nxt.text == "Next up: Cheek sweep."
    assert massage_chapter.start_sample == rest.start_sample + 15 * RATE
    assert nxt.end_sample == massage_chapter.start_sample - RATE  # ends 1 s before the rest does


def test_long_stroke_cue_is_a_timing_error_naming_step_and_fix():
    massage = Massage("Jaw sweep", Location("r.yaml", 12, 5), strokes=4, tempo_s=F(1),
                      cue="sweep slowly along the jaw")
    with pytest.raises(TimingError) as caught:
        compile_(Routine(title="T", steps=(massage,)), speech=lambda t: to_samples(F(len(t), 20), RATE))
    message = caught.value.format()
    assert message.startswith("r.yaml:12:5: massage 'Jaw sweep': the stroke cue 'sweep slowly along the jaw' takes 1.30 s")
    assert "set tempo to at least 1.3s, or use a shorter cue (about 16 letters), or speak faster with rate: 1.3" in message


def _speech_at(rate: F):
    """Speech of 50 ms a character at ``rate``: faster speech, shorter clips."""
    return lambda text: to_samples(F(len(text), 20) / rate, RATE)


def test_long_hold_cue_advice_is_what_shortens_it():
    exercise = Exercise("Lift", LOC, reps=1, hold_s=F(5), release_s=F(2), count=CountMode.NONE)
    long_cue = VOCAB.with_cues([("hold", "Hold it right there, keep still.")])  # 32 characters, 25 letters: 1.6 s
    routine = Routine(title="T", steps=(exercise,), rate=F(1))

    def compile_at(rate: F, vocab=long_cue):
        return compile_timeline(routine, vocab=vocab, speech_samples=_speech_at(rate),
                                tone_samples=TONE_SAMPLES.__getitem__, settings=CompileSettings(sample_rate=RATE),
                                speech_rate=rate)

    with pytest.raises(TimingError) as caught:
        compile_at(F(1))
    hint = caught.value.hint
    assert "count: none" not in hint  # the slot ends at the first second, ticks or counts alike
    assert hint == "use a shorter hold cue: cues: hold: with about 15 letters, or speak faster with rate: 1.6"
    compile_at(F(16, 10))  # the advised rate fits
    compile_at(F(1), vocab=VOCAB.with_cues([("hold", "Hold it there, still")]))  # so does a cue of 15 letters


def test_hold_under_a_second_is_advised_to_grow():
    exercise = Exercise("Tap", LOC, reps=1, hold_s=F(1, 5), release_s=F(2))
    with pytest.raises(TimingError) as caught:
        compile_(Routine(title="T", steps=(exercise,)), speech=_speech_at(F(1)))  # "Hold." takes 0.25 s
    assert "make hold at least 0.3s" in caught.value.hint


def test_every_overflow_is_reported_when_asked():
    massage = Massage("Jaw sweep", LOC, strokes=3, tempo_s=F(1), cue="sweep slowly along the jaw")
    found = []
    timeline = compile_timeline(Routine(title="T", steps=(massage,)), vocab=VOCAB, speech_samples=_speech_at(F(1)),
                                tone_samples=TONE_SAMPLES.__getitem__, settings=CompileSettings(sample_rate=RATE),
                                overflow=found.append)
    assert len(found) == 3 and all(isinstance(error, TimingError) for error in found)
    assert sum(e.cue is Cue.STROKE for e in timeline.events) == 3


def test_release_too_short_for_its_word():
    exercise = Exercise("Lift", LOC, reps=2, hold_s=F(3), release_s=F(1, 4))
    with pytest.raises(TimingError, match="set release to at least 0.5s"):
        compile_(Routine(title="T", steps=(exercise,)), speech=lambda t: to_samples(F(1, 2), RATE))


def test_rest_too_short_for_announcements():
    steps = (Rest(F(2), LOC), Massage("Sweep", LOC))
    with pytest.raises(TimingError, match=r"make the rest at least \d+s"):
        compile_(Routine(title="T", steps=steps), speech=lambda t: to_samples(F(1), RATE))


def test_event_limit_is_named():
    taps = Massage("Tap", LOC, strokes=60_000, tempo_s=F(1, 10))  # 100 minutes, 60,000 ticks
    with pytest.raises(VoicecoachError, match="more than 50,000 cues"):
        compile_(Routine(title="T", steps=(taps,)))


def test_duration_limit_is_named():
    steps = tuple(Rest(F(3600), LOC) for _ in range(5))
    with pytest.raises(VoicecoachError, match="more than 4 hours"):
        compile_(Routine(title="T", steps=steps))


def test_sections_stream_in_order_and_match_the_whole():
    routine = Routine(title="T", steps=(Say("Hello.", LOC), Massage("Sweep", LOC, strokes=3), Rest(F(5), LOC)))
    sections = list(iter_sections(routine, vocab=VOCAB, speech_samples=short_speech,
                                  tone_samples=TONE_SAMPLES.__getitem__))
    timeline = compile_(routine)
    assert tuple(s.chapter for s in sections) == timeline.chapters
    assert sum(len(s.events) for s in sections) == len(timeline.events)


def test_where_spoken_finds_the_intro_the_outro_and_the_step_of_a_phrase(tmp_path):
    from voicecoach.compile import where_spoken
    from voicecoach.script import load_routine

    path = tmp_path / "r.yaml"
    path.write_text("routine: R\nintro: Sit comfortably.\nsteps:\n  - say: Breathe in.\n  - rest: 10s\n"
                    "  - exercise: Brow lift\n    say: Lift your brows.\n    reps: 2\n    hold: 3s\n"
                    "outro: Well done.\n")
    routine = load_routine(path)
    spoken = collect_phrases(routine, vocab=VOCAB)
    assert where_spoken(routine, "Sit comfortably.", vocab=VOCAB) == Location(str(path), 2, 1)
    assert where_spoken(routine, "Well done.", vocab=VOCAB) == Location(str(path), 10, 1)
    assert where_spoken(routine, "Breathe in.", vocab=VOCAB) == Location(str(path), 4, 5)
    assert where_spoken(routine, "Lift your brows.", vocab=VOCAB) == Location(str(path), 6, 5)
    assert where_spoken(routine, "Next up: Brow lift.", vocab=VOCAB) == Location(str(path), 5, 5)  # said in the rest
    assert where_spoken(routine, "Exercise: Brow lift.", vocab=VOCAB) == Location(str(path), 6, 5)
    assert where_spoken(routine, "R.", vocab=VOCAB) == Location(str(path), 1, 1)  # the welcome: its title
    assert {"Next up: Brow lift.", "Exercise: Brow lift.", "R."} <= set(spoken)
    assert where_spoken(routine, "Never said.", vocab=VOCAB) is None

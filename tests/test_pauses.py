"""Inline pauses in spoken text (``[pause 2s]``): parsed in timing.py, checked by the parser
where they are written, and split by compile into speech events with exact silence between,
so they work on every engine and the mixer needs nothing special."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest

from voicecoach.compile import collect_phrases, compile_timeline
from voicecoach.errors import Location, RoutineErrors, VoicecoachError
from voicecoach.model import Cue, EventKind, Say
from voicecoach.pipeline import Settings, build
from voicecoach.script import parse_routine
from voicecoach.timing import split_pauses, strip_pauses, to_samples
from voicecoach.vocab import load_vocabulary

RATE = 44100
EN = load_vocabulary("en")


def measure(text: str) -> int:
    """A stand-in clip length: 10 ms a character."""
    return len(text) * RATE // 100


def timeline_of(text: str, **kw):
    return compile_timeline(parse_routine(text), vocab=kw.pop("vocab", EN), speech_samples=measure,
                            tone_samples=lambda tone: 100, **kw)


@pytest.mark.parametrize("text, parts", [
    ("Close your eyes. [pause 3s] Open them.", [("Close your eyes.", 3), ("Open them.", 0)]),
    ("[pause 1.5s] Now.", [("", Fraction(3, 2)), ("Now.", 0)]),
    ("Wait. [Pause 1s][pause 500ms] Go. [pause 2]", [("Wait.", Fraction(3, 2)), ("Go.", 2)]),
    ("A [ pause 1m ] B", [("A", 60), ("B", 0)]),
    ("No pause [here].", [("No pause [here].", 0)]),
])
def test_split_pauses(text, parts):
    assert split_pauses(text) == parts
    assert "[pause" not in strip_pauses(text).lower()


@pytest.mark.parametrize("text, problem", [
    ("Wait [pause] go.", "'[pause]' needs a duration"),
    ("Wait [pause soon] go.", "'soon' is not a duration"),
    ("Wait [pause 0s] go.", "must be longer than zero"),
    ("Wait [pause 11m] go.", "longer than the limit of 600 seconds"),
    ("Wait [pause 2s go.", "is not closed"),
])
def test_bad_pauses(text, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        split_pauses(text)


def test_pauses_are_checked_where_they_are_written():
    text = "routine: R\nsteps:\n  - say: Wait [pause soon] then go.\n  - exercise: Lift [pause 1s]\n"
    with pytest.raises(RoutineErrors) as info:
        parse_routine(text, path="r.yaml")
    first, second = info.value.errors
    assert first.location == Location("r.yaml", 3, 10) and "say: '[pause soon]': 'soon' is not a duration" in first.message
    assert first.hint == "write a pause like [pause 2s] or [pause 500ms]"
    assert second.location == Location("r.yaml", 4, 15) and second.message == "exercise: a name cannot hold a pause"
    # description is never spoken: anything goes there
    assert parse_routine("routine: R\ndescription: '[pause]'\nsteps: [{say: Hi.}]\n").description == "[pause]"


def test_compile_splits_text_at_pauses_with_exact_silence():
    timeline = timeline_of("routine: R\nsteps:\n  - say: Close your eyes. [pause 3s] Open them. [pause 1s]\n"
                           "  - say: Next.\n")
    spoken = [e for e in timeline.events if e.kind is EventKind.SPEECH]
    assert [e.text for e in spoken] == ["R.", "Close your eyes.", "Open them.", "Next.", EN.phrase("finish")]
    close, open_, following = spoken[1:4]
    assert open_.start_sample == close.end_sample + to_samples(3, RATE)
    # the trailing pause, then the usual gap and step gap, before the next step
    gap = to_samples(Fraction(3, 10), RATE) + to_samples(1, RATE)
    assert following.start_sample == open_.end_sample + to_samples(1, RATE) + gap
    assert timeline.chapters[0].title == "Close your eyes. Open them."


def test_a_pause_on_its_own_is_a_silent_step():
    timeline = timeline_of("routine: R\nsteps:\n  - say: '[pause 5s]'\n")
    assert timeline.chapters[0].title == "Pause"
    assert not [e for e in timeline.events if e.step == 0 and e.kind is EventKind.SPEECH and e.cue is Cue.SAY]
    assert Say("[pause 5s]", Location("x")).name == "Pause"


def test_timed_cues_with_pauses_must_fit_their_slot():
    vocab = EN.with_cues([("release", "Release. [pause 1s] Relax.")])
    text = "routine: R\nsteps:\n  - exercise: Lift\n    hold: 2s\n    release: {}\n"
    fits = timeline_of(text.format("4s"), vocab=vocab)
    release = [e for e in fits.events if e.cue is Cue.RELEASE and e.kind is EventKind.SPEECH]
    assert [e.text for e in release] == ["Release.", "Relax."]
    assert release[1].start_sample == release[0].end_sample + RATE
    with pytest.raises(VoicecoachError, match="the release cue 'Release. \\[pause 1s\\] Relax.' takes 1.14 s"):
        timeline_of(text.format("1s"), vocab=vocab)


def test_the_engine_is_asked_for_the_parts_only():
    routine = parse_routine("routine: R\nintro: Hello. [pause 2s] Sit down.\nsteps: [{say: 'Go. [pause 1s]'}]\n")
    phrases = collect_phrases(routine, vocab=EN)
    assert phrases[:4] == ["R.", "Hello.", "Sit down.", "Go."]
    assert not any("pause" in phrase for phrase in phrases)


def test_the_pause_is_silent_in_the_mix(tmp_path):
    result = build(parse_routine("routine: R\nsteps: [{say: 'Breathe. [pause 4s] And again.'}]\n"),
                   settings=Settings(engine="fake", cache_dir=tmp_path))
    breathe, again = [e for e in result.timeline.events if e.text in ("Breathe.", "And again.")]
    track = np.concatenate(list(result.chunks()))
    assert again.start_sample - breathe.end_sample == 4 * result.timeline.sample_rate
    assert not track[breathe.end_sample : again.start_sample].any()
    assert np.abs(track[again.start_sample : again.end_sample]).max() > 1000

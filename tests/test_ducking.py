"""sound.DuckedMusic: the README's ducking promises, measured on a constant music bed (every sample 1.0,
so what comes out is the gain itself) under a timeline of known speech events.

- the music starts going down 0.25 s before a phrase and is all the way down when it starts;
- it comes back up over 0.6 s after the phrase ends;
- phrases less than 1 s apart stay ducked in between (no pumping), 1 s or more apart it comes up;
- the bed fades in over the first second;
- music longer than the routine is cut to the routine.
"""

from __future__ import annotations

import numpy as np
import pytest

from voicecoach.model import Chapter, Cue, Event, EventKind, Timeline
from voicecoach.sound import DuckedMusic, MusicBed

RATE = 8000
DUCK_DB = 18.0
FLOOR = 10 ** (-DUCK_DB / 20)
LEAD = RATE // 4  # 0.25 s
RECOVERY = RATE * 3 // 5  # 0.6 s
LENGTH = 30 * RATE


def speech(start_s: float, length_s: float) -> Event:
    return Event(EventKind.SPEECH, Cue.SAY, round(start_s * RATE), round(length_s * RATE), 0, text="x")


def gains(events: list[Event], *, music_s: float = 90.0) -> np.ndarray:
    timeline = Timeline(routine="R", sample_rate=RATE, length_samples=LENGTH, events=tuple(events),
                        chapters=(Chapter("All", 0, 0, LENGTH),))
    bed = MusicBed(samples=np.ones(round(music_s * RATE), np.float32), sample_rate=RATE, duck_db=DUCK_DB, key="k")
    return DuckedMusic(bed, timeline).span(0, LENGTH)


@pytest.fixture(scope="module")
def ducked() -> np.ndarray:
    #            alone         two phrases 0.5 s apart      two phrases 1.5 s apart
    return gains([speech(5, 2), speech(12, 1), speech(13.5, 1), speech(20, 1), speech(22.5, 1)])


def s(seconds: float) -> int:
    return round(seconds * RATE)


def test_the_bed_fades_in_over_the_first_second(ducked):
    assert ducked[0] < 0.01
    assert np.all(np.diff(ducked[: s(1)]) > 0)  # rising all the way
    assert ducked[s(1) - 1] == pytest.approx(1.0) and np.all(ducked[s(1) : s(5) - LEAD] == 1.0)
    assert ducked[s(0.5)] == pytest.approx(0.5, abs=0.01)  # a raised cosine: half way at half time


def test_the_music_goes_down_a_quarter_second_before_a_phrase(ducked):
    start = s(5)
    assert ducked[start - LEAD - 1] == 1.0  # untouched until the lead starts
    lead = ducked[start - LEAD : start]
    assert lead[0] < 1.0 and np.all(np.diff(lead) < 0)  # then going down the whole 0.25 s
    assert lead[-1] == pytest.approx(FLOOR)
    assert np.allclose(ducked[start : s(7)], FLOOR)  # and down while the phrase lasts


def test_the_music_comes_back_over_six_tenths_of_a_second(ducked):
    end = s(7)
    back = ducked[end : end + RECOVERY]
    assert np.all(np.diff(back) > 0) and back[0] < 0.2 and back[-1] == pytest.approx(1.0)
    assert np.all(ducked[end + RECOVERY : s(12) - LEAD] == 1.0)


def test_phrases_under_a_second_apart_stay_ducked(ducked):
    assert np.allclose(ducked[s(12) : s(14.5)], FLOOR)  # 0.5 s gap: no pumping


def test_phrases_a_second_or_more_apart_let_the_music_up_between(ducked):
    gap = ducked[s(21) : s(22.5)]  # 1.5 s gap: up over 0.6 s, then down 0.25 s before the next
    assert gap.max() == pytest.approx(1.0) and np.allclose(ducked[s(21) + RECOVERY : s(22.5) - LEAD], 1.0)


def test_music_longer_than_the_routine_is_cut_to_it():
    long = gains([], music_s=90.0)  # three times the routine
    assert len(long) == LENGTH
    short_bed = gains([], music_s=40.0)
    assert np.array_equal(long, short_bed)  # what is past the routine's end never plays
    assert long[-1] < 0.01  # faded out at the routine's end, not cut mid-note

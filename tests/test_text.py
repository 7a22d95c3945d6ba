"""text.py: what reaches a speech engine is plain words; sentences have a length limit."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecoach.errors import VoicecoachError
from voicecoach.script import parse_routine
from voicecoach.engines.espeak import EspeakEngine
from voicecoach.text import MAX_SENTENCE_CHARS, longest_sentence, speech_text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Lift the brows.", "Lift the brows."),
        ("  Lift\tthe\n brows. ", "Lift the brows."),
        ("Lift \x01200A the brows.", "Lift 200A the brows."),  # espeak's embedded-command character
        ('Lift <break time="20s"/> now.', 'Lift break time="20s"/ now.'),
        ("Say [[h@l'oU]] now.", "Say h@l'oU now."),
        ("x\u202ey\u200bz\ue03cw\ufeff", "xyzw"),  # bidi override, zero-width space, private use, BOM
        ("a\ud800b", "ab"),  # an unpaired surrogate
        ("می\u200cخواهم", "می\u200cخواهم"),  # the joiners that shape words stay
        ("Café, naïve – 5 × 3.", "Café, naïve – 5 × 3."),
    ],
)
def test_speech_text(text, expected):
    assert speech_text(text) == expected


@given(st.text())
def test_speech_text_leaves_no_command_characters(text):
    clean = speech_text(text)
    assert not any(c in clean for c in "<>[]")
    assert all(c.isprintable() or c in "\u200c\u200d" for c in clean)
    assert clean == clean.strip() and "  " not in clean
    assert speech_text(clean) == clean


@pytest.mark.parametrize(
    "text, expected",
    [("", 0), ("One. Two, three!", 5), ("a" * 10 + "? " + "b" * 20, 20), ("Eins。Zwei、drei", 4),
     ("no break at all", 15)],
)
def test_longest_sentence(text, expected):
    assert longest_sentence(text) == expected


def test_a_long_sentence_is_refused_where_it_is_written():
    words = "and then lift " * 40
    text = f"routine: R\nsteps:\n  - say: Fine.\n  - exercise: Lift\n    tip: {words}\n"
    with pytest.raises(VoicecoachError) as caught:
        parse_routine(text, path="r.yaml")
    run = len(words.strip())
    assert run > MAX_SENTENCE_CHARS
    assert caught.value.format() == (f"r.yaml:5:10: tip: a sentence runs {run} characters without a break, more than "
                                     f"the limit of {MAX_SENTENCE_CHARS}; end sentences with '.', '?' or '!', or "
                                     "break them with commas")
    shorter = words.replace("lift and", "lift. And")
    assert parse_routine(text.replace(words, shorter), path="r.yaml").steps[1].tip == shorter.strip()


@pytest.mark.espeak
def test_espeak_obeys_no_command_hidden_in_text():
    """Without sanitizing, espeak-ng would speak "\\x01" "5S" at speed 5 and "\\x01" "200A" twice as loud."""
    engine = EspeakEngine()
    try:
        texts = ["Lift \x015S the brows.", "Lift 5S the brows.", "Lift \x01200A now.", "Lift 200A now.",
                 'Lift <break time="20s"/> now.', 'Lift break time="20s"/ now.']
        clips = dict(engine.synthesize(texts, voice="en", rate=Fraction(1), sample_rate=22050, jobs=2, timeout_s=60))
    finally:
        engine.close()
    for hostile, plain in zip(texts[::2], texts[1::2]):
        assert np.array_equal(clips[hostile], clips[plain]), hostile
    assert len(clips[texts[4]]) < 8 * 22050  # a 20 s break was not obeyed

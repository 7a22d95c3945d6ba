"""Piper's noise as model inputs (engines/piper_noise): the bundled model rewritten, phrases that
do not depend on what the warm session said before, and models it cannot make repeatable."""

from __future__ import annotations

import numpy as np
import pytest

from voicecoach.engines import piper_noise
from voicecoach.engines.piper_noise import (ModelError, _bytes_field, _fields, _int_field, _node, _str_field,
                                            noise_as_inputs)
from voicecoach.engines.piper_server import load_voice, synthesize
from voicecoach.engines.piper_voices import bundled_model

TEXTS = ["Hold the position.", "Release, and breathe out slowly. Then rest.", "Three, two, one."]


@pytest.fixture(scope="module")
def voice():
    model = bundled_model()
    return load_voice(model.model, model.config)


def op_types(model: bytes) -> list[bytes]:
    graph = next(value for field, _, value, _, _ in _fields(model) if field == 7)
    return [bytes(model[v[0]:v[1]]) for field, wire, node, _, _ in _fields(model, *graph) if field == 1
            for f, w, v, _, _ in _fields(model, *node) if f == 4]


def test_the_models_random_noise_becomes_its_inputs():
    model = bundled_model()
    with open(model.model, "rb") as handle:
        original = handle.read()
    edited, names = noise_as_inputs(original)
    before, after = op_types(original), op_types(edited)
    assert before.count(b"RandomNormalLike") == 2 and b"RandomNormalLike" not in after
    assert names == ("voicecoach_noise_0", "voicecoach_noise_1")
    assert len(after) == len(before) + 2 * 4 and after.count(b"Slice") == before.count(b"Slice") + 2
    import onnxruntime

    session = onnxruntime.InferenceSession(edited, providers=["CPUExecutionProvider"])
    assert {i.name for i in session.get_inputs()} >= {"input", "input_lengths", "scales", *names}


def test_a_phrase_is_the_same_whatever_the_session_said_before(voice, monkeypatch):
    first = synthesize(voice, TEXTS[1], length_scale=1.0)
    for text in (TEXTS[0], TEXTS[2], TEXTS[1], "Something else entirely, said at length."):
        synthesize(voice, text, length_scale=1.0)
    again = synthesize(voice, TEXTS[1], length_scale=1.0)
    assert again.tobytes() == first.tobytes()
    assert len(first) > 22050 and float(np.abs(first).max()) > 0.1  # speech, two sentences
    # Too little noise handed over: the sentence runs again with more, and uses the same values.
    monkeypatch.setattr(piper_noise, "NOISE_PER_PHONEME", 3)
    assert synthesize(voice, TEXTS[1], length_scale=1.0).tobytes() == first.tobytes()


def test_kept_noise_is_what_a_fresh_draw_gives(monkeypatch):
    """The noise is drawn once per sentence place and sliced: every size gets exactly the values
    a generator drawing that many gives, whether the kept draw was shorter or longer."""
    monkeypatch.setattr(piper_noise, "_KEPT_VALUES", 5000)
    session = piper_noise.NoisySession(session=None, noise_inputs=("a", "b"))
    for sentence, index, size in [(0, 0, 700), (0, 0, 300), (0, 0, 1500), (0, 1, 1500), (3, 0, 4999),
                                  (0, 0, 4000), (0, 0, 6000), (9, 1, 64), (0, 0, 2)]:
        fresh = np.random.default_rng([piper_noise.SEED, sentence, index]).standard_normal(size, dtype=np.float32)
        assert session.noise(sentence, index, size).tobytes() == fresh.tobytes()
    assert all(len(kept) <= 5000 for kept in session._drawn.values()) and (9, 1) not in session._drawn


def test_the_noise_is_its_own_per_sentence_not_per_phrase(voice):
    """Sentence 1 of two phrases gets the same noise; sentence 2 another (not a copy of sentence 1's)."""
    alone = synthesize(voice, "Then rest.", length_scale=1.0)
    second = synthesize(voice, "Then rest. Then rest.", length_scale=1.0)
    gap = round(0.2 * voice.config.sample_rate)
    assert second[: len(alone)].tobytes() == alone.tobytes()
    assert second[len(alone) + gap :].tobytes() != alone.tobytes()


def _model(*nodes: bytes) -> bytes:
    return _bytes_field(7, b"".join(nodes) + _bytes_field(2, b"g")) + _bytes_field(8, _int_field(2, 15))


def test_models_it_cannot_make_repeatable_are_refused():
    with pytest.raises(ModelError):
        noise_as_inputs(b"\xff\xff\xff not a model")
    with pytest.raises(ModelError, match="no graph"):
        noise_as_inputs(_bytes_field(8, _int_field(2, 15)))
    with pytest.raises(ModelError, match="RandomUniformLike"):
        noise_as_inputs(_model(_node("RandomUniformLike", ["x"], ["y"], "u")))
    shifted = _bytes_field(5, _str_field(1, "mean") + _bytes_field(2, b"") + _int_field(20, 1))
    with pytest.raises(ModelError, match="standard normal"):
        noise_as_inputs(_model(_node("RandomNormalLike", ["x"], ["y"], "n", shifted)))
    plain, names = noise_as_inputs(_model(_node("Relu", ["x"], ["y"], "r")))
    assert names == () and b"Relu" in plain

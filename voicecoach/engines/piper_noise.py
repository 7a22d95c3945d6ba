"""Piper's random noise as inputs of its model, so a warm session speaks each phrase the same way.

A Piper voice (VITS) draws random noise for every sentence it speaks (``noise_w`` for the
durations, ``noise_scale`` for the voice) with ONNX Runtime's ``RandomNormalLike``, whose
generator advances with every run: in a session that stays loaded, a phrase would come out
differently depending on what was said before it.  :func:`noise_as_inputs` rewrites the model
as it is loaded (in memory; the file is untouched) so that each ``RandomNormalLike(x)`` becomes

    Reshape(Slice(noise_k, 0, size(x)), shape(x))

of a new flat float input ``noise_k``, and :class:`NoisySession` fills those inputs from a
generator seeded by the sentence's place in its phrase: the same phrase, the same samples, in
any session, after anything.  The noise is a prefix of one fixed stream, so how much of it is
handed over never changes what is used.

Only the protobuf wire format is read and written here: the ``onnx`` package is not needed.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

SEED = 20250101
"""The noise generators' seed (part of every clip's identity)."""

NOISE_PER_PHONEME = 1024
"""Noise values first handed over per phoneme id (VITS needs about 192 x 4 for the voice's noise);
a sentence that needs more is run again with twice as much."""
_KEPT_SENTENCES = 8
_KEPT_VALUES = 1 << 20  # 4 MB of float32

_RANDOM_OPS = (b"RandomNormal", b"RandomUniform", b"Multinomial", b"Bernoulli")


class ModelError(ValueError):
    """The file is not an ONNX model this module can make repeatable."""


# --- protobuf wire format -------------------------------------------------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf):
            raise ModelError("truncated protobuf")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, object, int, int]]:
    """``(field, wire type, value, start, end)``: ints for varints, ``(lo, hi)`` for length-delimited."""
    i, end = start, len(buf) if end is None else end
    while i < end:
        first = i
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = (i, i + length), i + length
        elif wire in (1, 5):
            value, i = None, i + (8 if wire == 1 else 4)
        else:
            raise ModelError(f"unsupported protobuf wire type {wire}")
        if i > end:
            raise ModelError("truncated protobuf")
        yield field, wire, value, first, i


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _encode_varint(field << 3 | 2) + _encode_varint(len(payload)) + payload


def _str_field(field: int, text: str) -> bytes:
    return _bytes_field(field, text.encode())


def _int_field(field: int, value: int) -> bytes:
    return _encode_varint(field << 3) + _encode_varint(value)


# --- ONNX messages (field numbers from onnx.proto) ------------------------------------------

_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INPUT = 1, 11
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP, _NODE_ATTRIBUTE = 1, 2, 3, 4, 5
_ATTR_NAME = 1


def _node(op: str, inputs: list[str], outputs: list[str], name: str, attributes: bytes = b"") -> bytes:
    return _bytes_field(_GRAPH_NODE, b"".join([
        *(_str_field(_NODE_INPUT, i) for i in inputs), *(_str_field(_NODE_OUTPUT, o) for o in outputs),
        _str_field(_NODE_NAME, name), _str_field(_NODE_OP, op), attributes]))


def _flat_float_input(name: str) -> bytes:
    """A graph input: a float tensor of one dimension of any length."""
    shape = _bytes_field(1, _str_field(2, f"{name}_length"))  # TensorShapeProto.dim { dim_param }
    tensor = _int_field(1, 1) + _bytes_field(2, shape)  # elem_type FLOAT, shape
    return _bytes_field(_GRAPH_INPUT, _str_field(1, name) + _bytes_field(2, _bytes_field(1, tensor)))


def _random_normal_like(buf: bytes, lo: int, hi: int) -> tuple[str, str] | None:
    """``(input, output)`` of a plain ``RandomNormalLike`` node (mean 0, scale 1), else ``None``."""
    op, inputs, outputs, moved = None, [], [], False
    for field, wire, value, _, _ in _fields(buf, lo, hi):
        if wire != 2:
            continue
        text = bytes(buf[value[0]:value[1]])
        if field == _NODE_OP:
            op = text
        elif field == _NODE_INPUT:
            inputs.append(text.decode())
        elif field == _NODE_OUTPUT:
            outputs.append(text.decode())
        elif field == _NODE_ATTRIBUTE:
            name = b""
            for f, w, v, _, _ in _fields(buf, *value):
                if f == _ATTR_NAME and w == 2:
                    name = bytes(buf[v[0]:v[1]])
            moved = moved or name in (b"mean", b"scale")
    if op != b"RandomNormalLike":
        if op is not None and op.startswith(_RANDOM_OPS):
            raise ModelError(f"the model draws random numbers with {op.decode()}, which cannot be made repeatable")
        return None
    if moved or len(inputs) != 1 or len(outputs) != 1:
        raise ModelError("the model's RandomNormalLike is not a standard normal of one input")
    return inputs[0], outputs[0]


def noise_as_inputs(model: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The model with every ``RandomNormalLike`` replaced by a noise input, and those inputs' names."""
    graph = graph_field = None
    for field, wire, value, first, after in _fields(model):
        if field == _MODEL_GRAPH and wire == 2:
            graph, graph_field = value, (first, after)
    if graph is None:
        raise ModelError("not an ONNX model (no graph)")
    view = memoryview(model)  # slices of it are not copies
    parts: list = []
    names: list[str] = []
    kept = graph[0]  # the graph's bytes are copied in runs between the nodes replaced
    for field, wire, value, first, after in _fields(model, *graph):
        node = model[value[0]:value[1]] if field == _GRAPH_NODE and wire == 2 else b""
        if not any(op in node for op in _RANDOM_OPS):  # the cheap test first: most nodes are not random
            continue
        found = _random_normal_like(model, *value)  # raises for the random operations it cannot replace
        if found is None:
            continue
        source, output = found
        name = f"voicecoach_noise_{len(names)}"
        names.append(name)
        p = name + "/"
        parts += [view[kept:first],
                  _node("Shape", [source], [p + "shape"], p + "shape"),
                  _node("ReduceProd", [p + "shape"], [p + "size"], p + "size",
                        _bytes_field(_NODE_ATTRIBUTE, _str_field(1, "keepdims") + _int_field(3, 1) + _int_field(20, 2))),
                  _node("Sub", [p + "size", p + "size"], [p + "zero"], p + "zero"),
                  _node("Slice", [name, p + "zero", p + "size"], [p + "flat"], p + "flat"),
                  _node("Reshape", [p + "flat", p + "shape"], [output], p + "noise")]
        kept = after
    parts.append(view[kept:graph[1]])
    parts += [_flat_float_input(name) for name in names]
    head = _encode_varint(_MODEL_GRAPH << 3 | 2) + _encode_varint(sum(map(len, parts)))
    return b"".join([view[:graph_field[0]], head, *parts, view[graph_field[1]:]]), tuple(names)


class NoisySession:
    """An ONNX Runtime session of a model from :func:`noise_as_inputs`, run the way Piper runs one.

    Call :meth:`phrase` before each phrase: its sentences then get the noise of their place
    in it (sentence 1, 2, ...), whatever the session ran before.
    """

    def __init__(self, session, noise_inputs: tuple[str, ...]) -> None:
        self.session = session
        self.noise_inputs = noise_inputs
        self._sentence = 0
        self._drawn: dict[tuple[int, int], np.ndarray] = {}

    def noise(self, sentence: int, index: int, size: int) -> np.ndarray:
        """The first ``size`` values of noise input ``index`` for sentence ``sentence``.

        Drawn once and kept (a generator's first n values are the first n of any longer
        draw): drawing them anew for every sentence cost as much as a second of a library
        export.  Kept for the first sentences of a phrase and up to 4 MB each.
        """
        key = (sentence, index)
        drawn = self._drawn.get(key)
        if drawn is None or len(drawn) < size:
            keep = sentence < _KEPT_SENTENCES and size <= _KEPT_VALUES
            count = min(max(size, 2 * len(drawn)), _KEPT_VALUES) if keep and drawn is not None else size
            drawn = np.random.default_rng([SEED, sentence, index]).standard_normal(count, dtype=np.float32)
            if keep:
                self._drawn[key] = drawn
        return drawn[:size]

    def phrase(self) -> None:
        self._sentence = 0

    def run(self, output_names, feed: dict):
        phonemes = int(np.asarray(feed["input"]).shape[-1])
        sentence, self._sentence = self._sentence, self._sentence + 1
        size = NOISE_PER_PHONEME * max(phonemes, 1)
        while True:
            noisy = dict(feed)
            for index, name in enumerate(self.noise_inputs):
                noisy[name] = self.noise(sentence, index, size)
            try:
                return self.session.run(output_names, noisy)
            except Exception as error:  # a sentence that needs more noise than was handed over
                if "voicecoach_noise_" not in str(error) or size > 1 << 28:
                    raise
                size *= 2

    def __getattr__(self, name):  # get_inputs, get_outputs, ...: the session's
        return getattr(self.session, name)

"""cache_format.py: entries are lossless, compact, the same bytes however the samples arrive,
and readable at any span."""

from __future__ import annotations

import io
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from voicecoach.cache import Cache
from voicecoach.cache_format import GAP_SAMPLES, PIECE_SAMPLES, EntryReader, FormatError, check, write_entry

RATE = 44100


def entry_bytes(chunks) -> bytes:
    buffer = io.BytesIO()
    write_entry(buffer, chunks, RATE)
    return buffer.getvalue()


def as_file(data: bytes):
    """An open file holding ``data`` (entries are read with fstat and pread)."""
    handle = tempfile.TemporaryFile()
    handle.write(data)
    handle.seek(0)
    return handle


def reader(data: bytes) -> EntryReader:
    return EntryReader(as_file(data))


@st.composite
def sparse_signals(draw) -> np.ndarray:
    """Silence with bursts (some repeated exactly, some longer than a piece), as in a track."""
    n = draw(st.integers(0, 3 * PIECE_SAMPLES))
    x = np.zeros(n, dtype=np.int16)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tick = rng.integers(-30000, 30000, size=draw(st.integers(1, 3 * GAP_SAMPLES)), dtype=np.int16)
    for _ in range(draw(st.integers(0, 12))):
        at = draw(st.integers(0, max(0, n - 1)))
        if draw(st.booleans()):
            burst = tick
        else:
            size = draw(st.one_of(st.integers(1, 5000), st.integers(PIECE_SAMPLES, 2 * PIECE_SAMPLES)))
            burst = rng.integers(-32768, 32767, size=size, dtype=np.int16)
            burst[rng.random(len(burst)) < 0.3] = 0  # short silences inside a piece
        x[at : at + len(burst)] = burst[: n - at]
    return x


def cut(x: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    chunks, at = [], 0
    for size in sizes:
        chunks.append(x[at : at + size])
        at += size
    chunks.append(x[at:])
    return chunks


@settings(max_examples=40, deadline=None)
@given(x=sparse_signals(), sizes_a=st.lists(st.integers(1, 70000), max_size=8),
       sizes_b=st.lists(st.integers(1, 70000), max_size=8))
def test_lossless_and_the_same_bytes_however_the_samples_arrive(x, sizes_a, sizes_b):
    a, b = entry_bytes(cut(x, sizes_a)), entry_bytes(cut(x, sizes_b))
    assert a == b == entry_bytes([x])  # two writers of one key write the same bytes, whatever their chunks
    entry = reader(a)
    assert len(entry) == len(x) and np.array_equal(entry.read(0, len(x)), x)
    rng = np.random.default_rng(len(x))
    for _ in range(5):
        start = int(rng.integers(0, len(x) + 10))
        count = int(rng.integers(0, 50000))
        assert np.array_equal(entry.read(start, count), x[start : start + count])
    assert np.array_equal(np.concatenate([*entry.chunks(4096), np.zeros(0, np.int16)]), x)


def test_silence_and_repeats_take_almost_nothing():
    tick = (np.sin(np.arange(2205) * 0.3) * 8000).astype(np.int16)  # a 50 ms tone
    x = np.zeros(RATE * 60, dtype=np.int16)  # a minute of a hold: one tick a second
    for second in range(60):
        x[second * RATE : second * RATE + len(tick)] = tick
    size = len(entry_bytes([x]))
    assert size < 2 * len(entry_bytes([tick])) + 60 * 12 + 200  # the tick once, plus its index
    assert size < x.nbytes / 100


def test_a_track_of_speech_and_silence_takes_under_a_quarter_of_its_samples(tmp_path):
    # as the library's tracks: about a third of the time speech-like sound, the rest exact silence
    rng = np.random.default_rng(7)
    t = np.arange(RATE * 2)
    x = np.zeros(RATE * 30, dtype=np.int16)
    for start in range(0, len(x) - len(t), RATE * 6):
        voiced = np.sin(2 * np.pi * (120 + 40 * rng.random()) * t / RATE) * np.sin(np.pi * t / len(t)) * 9000
        x[start : start + len(t)] = (voiced + rng.normal(0, 30, len(t))).astype(np.int16)
    cache = Cache(tmp_path)
    list(cache.put_track("t", [x[:100000], x[100000:]], sample_rate=RATE))
    assert cache.track_path("t").stat().st_size < x.nbytes / 4
    assert np.array_equal(np.asarray(cache.get_track("t", sample_rate=RATE)), x)


def test_damage_anywhere_is_found():
    x = np.zeros(20000, dtype=np.int16)
    x[5000:9000] = np.arange(4000) % 300
    data = entry_bytes([x])
    for at in range(0, len(data), max(1, len(data) // 40)):
        damaged = bytearray(data)
        damaged[at] ^= 0x10
        with pytest.raises(FormatError):
            check(as_file(bytes(damaged)))
    with pytest.raises(FormatError):
        check(as_file(data[:-1]))
    check(as_file(data), sample_rate=RATE)
    with pytest.raises(FormatError):
        check(as_file(data), sample_rate=48000)


def test_a_long_sound_is_cut_at_the_same_places_whatever_the_chunks():
    # the cut at PIECE_SAMPLES falls on a short silence inside the sound: the next piece still
    # starts right at the cut, not at the next non-zero sample, so chunking cannot move it
    rng = np.random.default_rng(1)
    x = np.zeros(3 * PIECE_SAMPLES, dtype=np.int16)
    x[1000 : 1000 + 2 * PIECE_SAMPLES] = rng.integers(-3000, 3000, size=2 * PIECE_SAMPLES)
    x[1000 + PIECE_SAMPLES : 1000 + PIECE_SAMPLES + GAP_SAMPLES // 2] = 0
    whole = entry_bytes([x])
    for size in (5000, 65536, PIECE_SAMPLES + 1):
        assert entry_bytes([x[i : i + size] for i in range(0, len(x), size)]) == whole
    assert np.array_equal(reader(whole).read(0, len(x)), x)

"""mp3stream.py: long exact silences written as silent frames, every sample where LAME puts it."""

from __future__ import annotations

import subprocess

import lameenc
import numpy as np
import pytest

from voicecoach.encode import ffmpeg_exe
from voicecoach.lametag import InfoFrameWriter, parse_header
from voicecoach.mp3stream import LEAD_FRAMES, MIN_SILENT_FRAMES, ZEROS_AFTER_FRAMES, Mp3Stream

KBPS = 96


def lame(rate: int):
    def make():
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(KBPS)
        encoder.set_in_sample_rate(rate)
        encoder.set_out_sample_rate(rate)
        encoder.set_channels(1)
        encoder.set_quality(5)
        return encoder
    return make


def burst(rate: int, seconds: float, seed: int) -> np.ndarray:
    """Speech-like sound: noise under a syllable-rate envelope, ends at zero."""
    n = round(seconds * rate)
    rng = np.random.default_rng(seed)
    envelope = np.sin(np.pi * np.arange(n) / n) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * np.arange(n) / rate))
    tone = np.sin(2 * np.pi * 220 * np.arange(n) / rate) + 0.3 * rng.standard_normal(n)
    return np.round(6000 * envelope * tone).astype(np.int16)


def track(rate: int, gaps_s: list[float], *, seed: int = 1) -> np.ndarray:
    """Silence, then bursts separated by the given silences, then silence."""
    parts = [np.zeros(round(1.5 * rate), np.int16)]
    for i, gap in enumerate(gaps_s):
        parts += [burst(rate, 0.7, seed + i), np.zeros(round(gap * rate), np.int16)]
    parts += [burst(rate, 0.5, seed + 99), np.zeros(round(1.0 * rate), np.int16)]
    return np.concatenate(parts)


def encode(x: np.ndarray, rate: int, chunks: list[int] | None = None) -> tuple[bytes, int]:
    stream = Mp3Stream(lame(rate), sample_rate=rate, bitrate_kbps=KBPS)
    pieces = np.split(x, chunks) if chunks is not None else [x]
    data = b"".join(stream.encode(piece) for piece in pieces) + stream.flush()
    return data, stream.silent_frames


def plain(x: np.ndarray, rate: int) -> bytes:
    encoder = lame(rate)()
    return encoder.encode(x.tobytes()) + encoder.flush()


def decode(frames: bytes, samples: int, tmp_path, name: str) -> np.ndarray:
    """What a decoder plays: through LAME's Info frame, which trims the delay and padding."""
    path = tmp_path / f"{name}.mp3"
    with open(path, "wb") as handle:
        writer = InfoFrameWriter(handle)
        writer.write(frames)
        writer.finish(samples=samples)
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<i2").astype(np.float64)


def frames(data: bytes) -> int:
    count = at = 0
    while at < len(data):
        at += parse_header(data[at : at + 4]).length_bytes()
        count += 1
    assert at == len(data)
    return count


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2)))


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_long_silences_become_silent_frames_and_every_sample_stays(tmp_path, rate):
    x = track(rate, [0.2, 1.0, 3.0, 0.5, 2.0])
    data, silent = encode(x, rate)
    frame = 1152 if rate >= 32000 else 576
    assert silent >= (1.5 + 3.0 + 2.0) * rate / frame - 3 * (ZEROS_AFTER_FRAMES + LEAD_FRAMES + 4)  # the long ones
    reference = plain(x, rate)
    assert frames(data) == frames(reference)  # the same grid of frames (CBR: sizes within a padding byte)
    heard, lame_heard = decode(data, len(x), tmp_path, "stream"), decode(reference, len(x), tmp_path, "plain")
    xf = x.astype(np.float64)
    assert len(heard) == len(x)
    lags = range(-40, 41)
    match = [float(np.dot(xf[max(0, k):len(xf) + min(0, k)], heard[max(0, -k):len(heard) - max(0, k)]))
             for k in lags]
    assert lags[int(np.argmax(match))] == 0  # on the sample
    assert snr_db(xf, heard) > snr_db(xf, lame_heard) - 0.3  # as good as one encoder
    # around every join, nothing more is lost than one encoder loses there
    loud = np.flatnonzero(x)
    edges = np.concatenate([loud[np.flatnonzero(np.diff(loud) > 1) + 1], loud[np.flatnonzero(np.diff(loud) > 1)]])
    for edge in edges:
        near = slice(max(0, edge - 2 * frame), edge + 2 * frame)
        assert np.sum((heard[near] - xf[near]) ** 2) <= 2 * np.sum((lame_heard[near] - xf[near]) ** 2) + 1e3
    # the inside of a long silence is digital silence
    start = round((1.5 + 0.7 + 0.2 + 0.7 + 1.0 + 0.7) * rate)
    assert not heard[start + 8 * frame : start + round(3.0 * rate) - 8 * frame].any()


def test_the_bytes_depend_on_the_samples_not_the_chunks():
    rate = 22050
    x = track(rate, [0.9, 1.3, 0.75, 2.5])
    whole, silent = encode(x, rate)
    assert silent > 0
    rng = np.random.default_rng(7)
    for chunks in ([1], sorted(rng.integers(0, len(x), 300).tolist()), list(range(100, len(x), 4000)),
                   list(range(1, len(x), 777))):
        assert encode(x, rate, chunks)[0] == whole


def test_short_silences_are_encoded_as_lame_does():
    rate = 22050
    frame = 576
    # the longest silence that cannot be skipped (ZEROS_AFTER + LEAD + MIN + 1 frames)
    gap = (ZEROS_AFTER_FRAMES + LEAD_FRAMES + MIN_SILENT_FRAMES) * frame / rate
    x = np.concatenate([burst(rate, 0.5, 1), np.zeros(round(gap * rate), np.int16), burst(rate, 0.5, 2)])
    data, silent = encode(x, rate)
    assert silent == 0
    assert data == plain(x, rate)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000])
def test_lame_flushes_the_frames_the_stream_counts_on(rate):
    """A flushed encoder has made ceil(samples / frame) + 2 frames (MPEG-2, 2.5) or + 1 (MPEG-1):
    where the silent frames start.  Any other count stops the stream (RuntimeError)."""
    x = track(rate, [3.0])
    data, silent = encode(x, rate)
    assert silent > 0
    assert frames(data) == frames(plain(x, rate))


def test_the_sound_is_found_to_the_sample():
    """Where a silence starts and ends is exact, not rounded to the search's blocks: the skip
    decisions, and so the bytes, cannot depend on where a chunk began."""
    stream = Mp3Stream(lame(22050), sample_rate=22050, bitrate_kbps=KBPS)
    x = np.zeros(100_000, np.int16)
    x[[70, 71, 200, 30_001, 30_002, 99_998]] = 5
    # 200 -> 30_001 is longer than any silence kept whole; 30_002 -> 99_998 too
    assert stream._sound(x) == [(70, 201), (30_001, 30_003), (99_998, 99_999)]
    assert stream._sound(x[71:]) == [(0, 130), (29_930, 29_932), (99_927, 99_928)]

"""lametag.py: the Info frame that makes exported MP3s gapless, and its checksums."""

from __future__ import annotations

import io
import os
import random
import subprocess

import lameenc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutagen.mp3 import MP3

from voicecoach.encode import ffmpeg_exe
from voicecoach.lametag import InfoFrameWriter, MusicCrc, crc16, info_frame, parse_header


def encoded(samples: np.ndarray, *, rate: int, kbps: int) -> tuple[bytes, bytes]:
    """lameenc's frames for ``samples``: the encode output and the flush, as write_mp3 gets them."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_quality(5)
    return encoder.encode(samples.astype("<i2").tobytes()), encoder.flush()


def with_info_frame(samples: np.ndarray, *, rate: int, kbps: int, pieces: int = 1) -> bytes:
    body, tail = encoded(samples, rate=rate, kbps=kbps)
    out = io.BytesIO()
    writer = InfoFrameWriter(out)
    cuts = sorted(random.Random(len(samples)).sample(range(1, len(body)), min(pieces - 1, max(len(body) - 1, 0))))
    for start, end in zip([0, *cuts], [*cuts, len(body)]):
        writer.write(body[start:end])
    writer.write(tail)
    writer.finish(samples=len(samples))
    return out.getvalue()


def decode(data: bytes, tmp_path, rate: int) -> np.ndarray:
    path = tmp_path / "t.mp3"
    path.write_bytes(data)
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(rate),
                          "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<i2")


def test_crc16_is_lames_crc():
    assert crc16(b"123456789") == 0xBB3D  # the check value of CRC-16/ARC, LAME's polynomial
    assert crc16(b"") == 0 and crc16(b"\x00" * 10) == 0


class TinyLanes(MusicCrc):
    LANES = 8
    LANE_BYTES = 4


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=6))
def test_music_crc_equals_the_bytewise_crc_however_it_is_fed(data, cuts):
    crc = TinyLanes()
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    for start, end in zip(bounds, bounds[1:]):
        crc.feed(data[start:end])
    assert crc.value() == crc16(data)


def test_music_crc_at_full_size():
    data = os.urandom(3 * MusicCrc.LANES * MusicCrc.LANE_BYTES + 12345)
    crc, at = MusicCrc(), 0
    for size in (1, 70000, 262144, 300000, len(data)):
        crc.feed(data[at : at + size])
        at += size
    assert crc.value() == crc16(data)


def test_frame_headers():
    header = parse_header(bytes.fromhex("fffb70c4"))  # what lameenc makes at 96 kbps, 44.1 kHz, mono
    assert (header.kbps, header.sample_rate, header.mono, header.padded) == (96, 44100, True, False)
    assert header.length_bytes() == 313 and parse_header(bytes.fromhex("fffb72c4")).length_bytes() == 314
    for bad in ("fffa70c4"[:6], "00fb70c4", "fffd70c4", "fffbf0c4", "fffb7cc4"):  # short, no sync, layer II, ...
        with pytest.raises(ValueError):
            parse_header(bytes.fromhex(bad))


@pytest.mark.parametrize(("rate", "kbps"), [(44100, 96), (48000, 64), (22050, 32), (8000, 8)])
@pytest.mark.parametrize("length", [1, 1151, 1152, 1153, 20000])
def test_decoders_get_exactly_the_encoded_samples(tmp_path, rate, kbps, length):
    """ffmpeg and mutagen honour the delay and padding: the decoded length is the input's and an
    impulse stays on its sample (the frames are fed in pieces that split headers)."""
    samples = np.zeros(length, np.int16)
    samples[length // 3] = 30000
    data = with_info_frame(samples, rate=rate, kbps=kbps, pieces=5)
    assert MP3(io.BytesIO(data)).info.length * rate == pytest.approx(length)
    heard = decode(data, tmp_path, rate)
    assert len(heard) == length
    if kbps >= 32:  # at 8 kbps the impulse smears too much to point at one sample
        assert int(np.argmax(heard)) == length // 3


def test_a_frame_too_small_for_the_tag_gets_a_higher_bit_rate():
    data = with_info_frame(np.zeros(8000, np.int16), rate=8000, kbps=8)
    info, first_audio = parse_header(data), parse_header(data[data.index(b"\xff", 200) :])
    assert first_audio.kbps == 8 and info.kbps > 8 and info.sample_rate == 8000
    assert data[4 + info.side_info_bytes :].startswith(b"Info")


def test_the_tag_records_frames_bytes_delay_padding_and_checksums():
    samples = (np.sin(np.arange(44100) / 7) * 8000).astype(np.int16)
    data = with_info_frame(samples, rate=44100, kbps=96)
    info = parse_header(data)
    frame, music = data[: info.length_bytes()], data[info.length_bytes() :]
    tag = frame[4 + info.side_info_bytes :]
    frames, size = int.from_bytes(tag[8:12], "big"), int.from_bytes(tag[12:16], "big")
    assert tag[:4] == b"Info" and size == len(data) and 313 * frames <= len(music) <= 314 * frames
    lame = tag[120:156]
    assert lame[:9] == b"LAME3.100"
    delays = int.from_bytes(lame[21:24], "big")
    assert delays >> 12 == 576 and frames * 1152 - 576 - 44100 == delays & 0xFFF
    assert int.from_bytes(lame[28:32], "big") == len(data)  # music length
    assert int.from_bytes(lame[32:34], "big") == crc16(music)
    assert int.from_bytes(lame[34:36], "big") == crc16(frame[: 4 + info.side_info_bytes + 154])


def test_what_cannot_be_described_is_refused():
    body, tail = encoded(np.zeros(5000, np.int16), rate=44100, kbps=96)
    writer = InfoFrameWriter(io.BytesIO())
    writer.write(body + tail[:-1])
    with pytest.raises(ValueError, match="ends inside a frame"):
        writer.finish(samples=5000)
    other, _ = encoded(np.zeros(5000, np.int16), rate=44100, kbps=128)
    writer = InfoFrameWriter(io.BytesIO())
    writer.write(body + tail)
    with pytest.raises(ValueError, match="constant-bit-rate"):
        writer.write(other)
    with pytest.raises(ValueError, match="cannot hold"):
        info_frame(parse_header(body), frames=2, music_bytes=1000, samples=5000, music_crc=0)
    empty = io.BytesIO()
    InfoFrameWriter(empty).finish(samples=0)
    assert empty.getvalue() == b""

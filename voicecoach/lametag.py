"""The LAME "Info" frame: what makes a streamed CBR MP3 gapless and its length exact.

lameenc returns bare MP3 frames.  A decoder then plays LAME's encoder delay (576 samples) and
its own (529) as silence before the first sample, 25 ms at 44.1 kHz, and up to a frame of
padding at the end: every chapter mark lands late and the length is rounded up to frames.  The
Info frame (a Xing header with LAME's extension, written first, as the ``lame`` command does)
carries the frame count, the delay and the padding; decoders that read it (ffmpeg, mpg123,
Apple's, mutagen's length) skip exactly those samples, the others hear one silent frame.

:class:`InfoFrameWriter` counts frames and checksums the music while the frames stream past, so
the file is still written in one pass: a frame-sized placeholder first, the real frame last.
Layout: http://gabriel.mp3-tech.org/mp3infotag.html
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

ENCODER_DELAY_SAMPLES = 576
"""LAME's encoder delay (ENCDELAY): priming samples before the input's first sample.  Decoders
add their own 529, which is why the tag stores only LAME's part."""

ENCODER_VERSION = b"LAME3.100"
"""The encoder the lameenc wheel bundles.  Decoders honour the delay fields only behind a
"LAME" (or "Lavf"/"Lavc") version string, and LAME is what made these frames."""

_XING_BYTES = 120  # "Info", flags, frames, bytes, 100-byte TOC, quality
_LAME_BYTES = 36  # the LAME extension, its two CRCs last
_FLAGS = 0x0F  # frames, bytes, TOC and quality present: the fixed layout readers expect

# MPEG version id (header bits 19-20) -> sample rates by index, samples per frame
_RATES = {0b11: (44100, 48000, 32000), 0b10: (22050, 24000, 16000), 0b00: (11025, 12000, 8000)}
_SAMPLES_PER_FRAME = {0b11: 1152, 0b10: 576, 0b00: 576}
# Layer III bit rates (kbps) by index; MPEG-2 and 2.5 share a table
_KBPS = {True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
         False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}


@dataclass(frozen=True)
class FrameHeader:
    """The fields of a Layer III frame header that fix a frame's size."""

    raw: bytes
    """The header's four bytes."""
    version_id: int
    """0b11 MPEG-1, 0b10 MPEG-2, 0b00 MPEG-2.5."""
    bitrate_index: int
    """Index into the version's bit-rate table."""
    sample_rate: int
    """Hz."""
    padded: bool
    """Whether the frame carries the one padding byte."""
    mono: bool
    """Channel mode 3 (single channel)."""

    @property
    def mpeg1(self) -> bool:
        return self.version_id == 0b11

    @property
    def kbps(self) -> int:
        return _KBPS[self.mpeg1][self.bitrate_index]

    @property
    def samples_per_frame(self) -> int:
        return _SAMPLES_PER_FRAME[self.version_id]

    @property
    def side_info_bytes(self) -> int:
        return (17 if self.mono else 32) if self.mpeg1 else (9 if self.mono else 17)

    def length_bytes(self, bitrate_index: int | None = None) -> int:
        """This frame's size, or that of a frame like it at another bit rate, unpadded."""
        if bitrate_index is None:
            return self._length(self.kbps) + self.padded
        return self._length(_KBPS[self.mpeg1][bitrate_index])

    def _length(self, kbps: int) -> int:
        return (144 if self.mpeg1 else 72) * kbps * 1000 // self.sample_rate


def parse_header(raw: bytes) -> FrameHeader:
    """The Layer III header in ``raw[:4]``; ValueError if it is not one (the stream lost sync)."""
    if len(raw) < 4:
        raise ValueError("an MP3 frame header has 4 bytes")
    b1, b2, b3 = raw[1], raw[2], raw[3]
    version_id, layer = (b1 >> 3) & 0b11, (b1 >> 1) & 0b11
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 0b11
    if raw[0] != 0xFF or b1 & 0xE0 != 0xE0 or version_id == 0b01 or layer != 0b01:
        raise ValueError(f"not an MPEG Layer III frame header: {raw[:4].hex()}")
    if bitrate_index in (0, 15) or rate_index == 3:
        raise ValueError(f"free-format or reserved MP3 frame header: {raw[:4].hex()}")
    return FrameHeader(raw=bytes(raw[:4]), version_id=version_id, bitrate_index=bitrate_index,
                       sample_rate=_RATES[version_id][rate_index], padded=bool(b2 & 0b10), mono=b3 >> 6 == 3)


# ---------------------------------------------------------------------------------------
# CRC-16 (LAME's: polynomial 0x8005 reflected, initial 0, no final xor)


def _crc_table() -> np.ndarray:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return np.array(table, dtype=np.uint16)


_TABLE = _crc_table()
_TABLE_LIST = _TABLE.tolist()


def crc16(data: bytes, crc: int = 0) -> int:
    """LAME's CRC-16 of a short byte string (the tag's own CRC covers under 200 bytes)."""
    for byte in data:
        crc = _TABLE_LIST[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


class _ZeroShift:
    """crc -> the CRC after a fixed number of zero bytes more.  The map is linear (initial 0,
    no final xor), so two 256-entry tables, for the CRC's low and high byte, hold all of it."""

    def __init__(self, low: np.ndarray, high: np.ndarray):
        self.low, self.high = low, high

    def __call__(self, crc: np.ndarray) -> np.ndarray:
        return self.low[crc & 0xFF] ^ self.high[crc >> 8]

    def twice(self) -> _ZeroShift:
        return _ZeroShift(self(self.low), self(self.high))


def _one_zero_byte() -> _ZeroShift:
    values = np.arange(256, dtype=np.uint16)
    # a low byte x: T[x]; a high byte x (crc = x << 8): T[0] ^ x, and T[0] = 0
    return _ZeroShift(_TABLE[values], values)


class MusicCrc:
    """LAME's CRC-16 of a long stream, fed in pieces, computed with numpy.

    A byte-at-a-time loop in Python would cost seconds per hour of audio.  Instead each block
    of ``LANES * LANE_BYTES`` bytes is split into lanes whose CRCs advance together, one
    vector step per byte position, then are merged pairwise, since
    crc(A + B) = shift(crc(A), len(B)) ^ crc(B).  Leading zero bytes leave a CRC with
    initial value 0 unchanged, so the last, short block is zero-filled in front.
    """

    LANES = 4096
    LANE_BYTES = 64

    def __init__(self) -> None:
        self._pending = bytearray()
        self._crc = 0
        shift = _one_zero_byte()
        for _ in range(self.LANE_BYTES.bit_length() - 1):
            shift = shift.twice()
        self._merge = []  # shift by one lane, two lanes, four ...: one per merge level
        for _ in range(self.LANES.bit_length() - 1):
            self._merge.append(shift)
            shift = shift.twice()
        self._block_shift = shift

    def feed(self, data: bytes) -> None:
        self._pending += data
        block = self.LANES * self.LANE_BYTES
        if len(self._pending) >= block:
            whole = len(self._pending) // block * block
            with memoryview(self._pending) as view:  # released before the buffer shrinks
                for start in range(0, whole, block):
                    self._add_block(view[start : start + block])
            del self._pending[:whole]

    def value(self) -> int:
        """The CRC of everything fed so far."""
        tail = bytes(self._pending)
        if not tail:
            return self._crc
        head = self._shift_by(self._crc, len(tail))
        return head ^ int(self._reduce(self._lane_crcs(bytes(self.LANES * self.LANE_BYTES - len(tail)) + tail)))

    @staticmethod
    def _shift_by(crc: int, count: int) -> int:
        value, shift = np.array([crc], dtype=np.uint16), _one_zero_byte()
        while count:
            if count & 1:
                value = shift(value)
            count >>= 1
            if count:
                shift = shift.twice()
        return int(value[0])

    def _add_block(self, block) -> None:
        lanes = self._lane_crcs(block)
        self._crc = int(self._block_shift(np.array([self._crc], dtype=np.uint16))[0] ^ self._reduce(lanes))

    def _lane_crcs(self, block) -> np.ndarray:
        columns = np.frombuffer(block, dtype=np.uint8).reshape(self.LANES, self.LANE_BYTES).T.copy()
        crc = np.zeros(self.LANES, dtype=np.uint16)
        for column in columns:
            crc = _TABLE[(crc ^ column) & 0xFF] ^ (crc >> 8)
        return crc

    def _reduce(self, lanes: np.ndarray) -> np.uint16:
        for shift in self._merge:
            lanes = shift(lanes[0::2]) ^ lanes[1::2]
        return lanes[0]


# ---------------------------------------------------------------------------------------
# The frame and its writer


def info_frame(first: FrameHeader, *, frames: int, music_bytes: int, samples: int, music_crc: int) -> bytes:
    """The Info frame for a CBR stream of ``frames`` frames like ``first`` that encodes ``samples``.

    ``music_bytes`` counts the Info frame too (the tag's "music length").  The frame has the
    stream's bit rate when the tag fits in it, else the lowest that fits (8 kbps at 22.05 kHz
    is too small a frame).
    """
    xing_at = 4 + first.side_info_bytes
    crc_at = xing_at + _XING_BYTES + _LAME_BYTES - 2
    index = next((i for i in range(first.bitrate_index, 15) if first.length_bytes(i) >= crc_at + 2), None)
    if index is None:
        raise ValueError(f"no {first.sample_rate} Hz frame is large enough for the Info tag")
    padding = frames * first.samples_per_frame - ENCODER_DELAY_SAMPLES - samples
    if not 0 <= padding < 4096:  # 12 bits; LAME pads by less than two frames
        raise ValueError(f"{frames} frames cannot hold {samples} samples after LAME's delay")
    source_rate = 0 if first.sample_rate <= 32000 else {44100: 1, 48000: 2}.get(first.sample_rate, 3)
    # No CRC protection (the side info follows the header directly), no padding byte.
    header = bytes([0xFF, first.raw[1] | 0x01, (index << 4) | (first.raw[2] & 0x0D), first.raw[3]])
    toc = bytes(i * 256 // 100 for i in range(100))  # CBR: byte position grows linearly with time
    xing = b"Info" + struct.pack(">III", _FLAGS, frames, music_bytes) + toc + struct.pack(">I", 0)
    lame = (ENCODER_VERSION
            + bytes([0x01, 0])  # tag revision 0, CBR; lowpass not recorded
            + struct.pack(">IHH", 0, 0, 0)  # no ReplayGain: peak, radio, audiophile
            + bytes([0, min(first.kbps, 255)])  # encoding flags and ATH type; bit rate
            + ((ENCODER_DELAY_SAMPLES << 12) | padding).to_bytes(3, "big")
            + bytes([source_rate << 6, 0])  # misc (source rate; mono, no noise shaping); MP3Gain
            + struct.pack(">HIH", 0, music_bytes, music_crc))  # preset, music length, music CRC
    frame = bytearray(first.length_bytes(index))
    frame[:4] = header
    frame[xing_at:crc_at] = xing + lame
    frame[crc_at : crc_at + 2] = struct.pack(">H", crc16(bytes(frame[:crc_at])))
    return bytes(frame)


class FrameCounter:
    """Counts the frames of a constant-bit-rate Layer III stream as its bytes go past, in
    writes of any size (a header may straddle two); ValueError if a frame is of another rate."""

    def __init__(self) -> None:
        self.first: FrameHeader | None = None
        """The first frame's header, once its four bytes are there."""
        self.frames = 0
        """Frames whose header has been seen."""
        self.seen = 0
        """Bytes seen."""
        self._start = b""  # the stream's first bytes, until a whole header is there
        self._tail = b""  # the last 3 bytes seen: a header may straddle two writes
        self._next = 0  # where the next frame header starts

    @property
    def whole(self) -> bool:
        """Whether the bytes seen end where a frame ends."""
        return self._next == self.seen and not self._start

    def feed(self, data: bytes) -> None:
        if self.first is None:
            self._start += data
            if len(self._start) < 4:
                return
            data, self._start = self._start, b""
            self.first = parse_header(data)
        first = self.first
        raw, unpadded = first.raw, first.length_bytes() - first.padded
        buffer, base = self._tail + data, self.seen - len(self._tail)
        end = self.seen + len(data)
        while self._next + 4 <= end:
            at = self._next - base
            # CBR: every header is the first one but for its padding bit; parse anything else
            if buffer[at + 1] == raw[1] and buffer[at + 2] | 0x02 == raw[2] | 0x02 and buffer[at] == 0xFF:
                self._next += unpadded + ((buffer[at + 2] >> 1) & 1)
            else:
                header = parse_header(buffer[at : at + 4])
                if (header.version_id, header.sample_rate, header.kbps) != (first.version_id, first.sample_rate,
                                                                          first.kbps):
                    raise ValueError(f"not a constant-bit-rate stream: frame {self.frames} is {header}")
                self._next += header.length_bytes()
            self.frames += 1
        self.seen = end
        self._tail = buffer[-3:]

    @property
    def next_at(self) -> int:
        """Where the next frame's header starts (a whole stream ends there)."""
        return self._next


class InfoFrameWriter:
    """Writes MP3 frames to a seekable file with an Info frame in front of them.

    The frame's size is known from the first header, its content only at the end: a
    placeholder goes first and :meth:`finish` writes the frame over it.
    """

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self._info_at = 0
        self._info_bytes = 0
        self._start = b""  # the stream's first bytes, until a whole header is there
        self._frames = FrameCounter()
        self._crc = MusicCrc()

    def write(self, data: bytes) -> None:
        if not self._info_bytes:
            self._start += data
            if len(self._start) < 4:
                return
            data, self._start = self._start, b""
            self._info_at = self._handle.tell()
            self._info_bytes = len(info_frame(parse_header(data), frames=1, music_bytes=0, samples=0, music_crc=0))
            self._handle.write(bytes(self._info_bytes))
        self._frames.feed(data)
        self._crc.feed(data)
        self._handle.write(data)

    def finish(self, *, samples: int) -> None:
        """Write the Info frame for a stream that encoded ``samples`` samples."""
        counted = self._frames
        if counted.first is None:
            self._handle.write(self._start)  # no frame at all: nothing to describe
            return
        if not counted.whole:
            raise ValueError(f"the MP3 stream ends inside a frame ({counted.seen} bytes, next frame at {counted.next_at})")
        frame = info_frame(counted.first, frames=counted.frames, music_bytes=self._info_bytes + counted.seen,
                           samples=samples, music_crc=self._crc.value())
        end = self._handle.tell()
        self._handle.seek(self._info_at)
        self._handle.write(frame)
        self._handle.seek(end)

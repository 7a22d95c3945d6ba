"""MP3 frames for a track: LAME for the sound, frames of digital silence written directly.

A track is mostly exact silence (holds, rests, the quiet between cues), and LAME spends a fifth
of its time there (the 15-minute full session at 22.05 kHz) making frames that decode to zeros.  :class:`Mp3Stream` ends the
encoder's stream shortly after the sound stops (its flush pads with zeros, which is what the
track holds there), writes silent frames itself (the stream's header, side information of zeros:
no main data, every coefficient zero), and starts a fresh encoder a few frames before the sound
resumes.  Every frame keeps its place on the stream's grid, so each sample decodes where a
single encoder would have put it: the delay, the padding and the frame count in LAME's Info
frame are unchanged, and a chapter lands on its sample.  Nothing refers across a join: a silent
frame carries no data, and a fresh encoder's first frame borrows nothing from the bit reservoir
(``main_data_begin`` 0).  The same samples give the same bytes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .lametag import FrameCounter, FrameHeader

ZEROS_AFTER_FRAMES = 3
"""Frames of zeros the ending encoder gets after the sound: its last frames, whose windows see
only zeros, then decode to zeros, and nothing of the sound is left for a silent frame to cut."""
LEAD_FRAMES = 3
"""Frames of zeros a fresh encoder gets before the sound: its psychoacoustic model settles and
its bit reservoir fills (one silent frame fills it) before the first sound."""
MIN_SILENT_FRAMES = 20
"""Shortest run of silent frames worth a fresh encoder: starting one costs about as much as
encoding 20 frames of silence (0.6 ms at 22.05 kHz)."""
_BLOCK = 64  # samples per block when looking for silence (a run is found to the block)


class Mp3Stream:
    """A mono track's MP3 frames, fed chunk by chunk; ``encoder()`` makes a configured
    ``lameenc.Encoder`` (bit rate, rates, channels, quality).

    Zeros at the end of a chunk are held back until the sound resumes (or :meth:`flush`), so a
    silence is skipped whatever the chunk boundaries: the bytes depend only on the samples.
    """

    def __init__(self, encoder: Callable[[], object], *, sample_rate: int, bitrate_kbps: int) -> None:
        self._make = encoder
        mpeg1 = sample_rate >= 32000
        self.frame_samples = 1152 if mpeg1 else 576
        # A flushed encoder's frames: ceil(samples / frame) and one (MPEG-1) or two more
        # (lameenc 1.x, LAME 3.100; tests/test_mp3stream.py checks every rate).
        self._flush_frames = 1 if mpeg1 else 2
        # A frame's slot is (144 or 72) * bit rate / sample rate bytes; CBR pads a frame by one
        # byte where the running total passes a whole byte, as LAME does.
        self._slot_num, self._slot_den = (144 if mpeg1 else 72) * bitrate_kbps * 1000, sample_rate
        self._silent: tuple[bytes, bytes] | None = None  # a silent frame, unpadded and padded
        self._encoder = encoder()
        self._start = 0  # where the current encoder's input starts: a frame boundary of the stream
        self._fed = 0  # samples fed to encoders; from here to _received, held zeros
        self._received = 0
        self._frames = FrameCounter()  # the current encoder's frames
        self._header: FrameHeader | None = None  # the stream's first
        self.silent_frames = 0
        """Frames written as silence, not encoded."""

    def encode(self, samples: np.ndarray) -> bytes:
        """The frames that the next ``samples`` (int16) complete."""
        samples = np.asarray(samples, dtype="<i2")
        base, self._received = self._received, self._received + len(samples)
        out: list[bytes] = []
        for first, end in self._sound(samples):
            if base + first > self._fed:
                out.append(self._silence(base + first))
            out.append(self._feed(samples[self._fed - base : end].tobytes()))
            self._fed = base + end
        return b"".join(out)

    def flush(self) -> bytes:
        """The last frames (zeros still held are encoded: the stream ends as a single encoder's would)."""
        out = self._feed(bytes(2 * (self._received - self._fed)))
        self._fed = self._received
        return out + self._finish()

    # -- inside --------------------------------------------------------------------------

    def _sound(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """``(first, end)`` of the stretches to encode: blocks with sound, joined across
        silences too short to skip (the zeros between stretches, and after the last, are held)."""
        n = len(samples)
        whole = n - n % _BLOCK
        loud = np.flatnonzero(samples[:whole].reshape(-1, _BLOCK).any(axis=1)) * _BLOCK
        if whole < n and samples[whole:].any():
            loud = np.append(loud, whole)
        if not len(loud):
            return []
        # Zeros between two loud blocks this far apart (at most a block more, exactly) are too
        # few to skip (see _silence): they are encoded as they come, whatever the chunks.
        shortest = (ZEROS_AFTER_FRAMES + LEAD_FRAMES + MIN_SILENT_FRAMES) * self.frame_samples
        breaks = np.flatnonzero(np.diff(loud) > shortest)
        stretches = []
        for first, last in zip(np.concatenate([loud[:1], loud[breaks + 1]]).tolist(),
                               np.concatenate([loud[breaks], loud[-1:]]).tolist()):
            # to the sample: the first and last non-zero samples of the outer blocks
            first += int(np.flatnonzero(samples[first : first + _BLOCK])[0])
            last += int(np.flatnonzero(samples[last : last + _BLOCK])[-1])
            stretches.append((first, last + 1))
        return stretches

    def _silence(self, resume: int) -> bytes:
        """Zeros from ``_fed`` to ``resume`` (where sound comes): skipped if long enough, else encoded."""
        frame = self.frame_samples
        cut = self._fed + ZEROS_AFTER_FRAMES * frame
        first_silent = self._start // frame + -(-(cut - self._start) // frame) + self._flush_frames
        restart = (resume - LEAD_FRAMES * frame) // frame  # the fresh encoder's first frame
        if restart - first_silent < MIN_SILENT_FRAMES:
            out = self._feed(bytes(2 * (resume - self._fed)))
            self._fed = resume
            return out
        out = [self._feed(bytes(2 * (cut - self._fed))), self._finish()]
        if self._start // frame + self._frames.frames != first_silent:
            raise RuntimeError(f"LAME made {self._frames.frames} frames of {cut - self._start} samples, "
                               f"not the {first_silent - self._start // frame} expected")
        out.append(b"".join(self._silent_frame(index) for index in range(first_silent, restart)))
        self.silent_frames += restart - first_silent
        self._encoder, self._start, self._frames = self._make(), restart * frame, FrameCounter()
        self._fed = resume
        out.append(self._feed(bytes(2 * (resume - self._start))))
        return b"".join(out)

    def _feed(self, data: bytes) -> bytes:
        return self._count(self._encoder.encode(data)) if data else b""

    def _finish(self) -> bytes:
        out = self._count(self._encoder.flush())
        if not self._frames.whole:
            raise RuntimeError("LAME's stream ended inside a frame")
        return out

    def _count(self, data: bytes) -> bytes:
        self._frames.feed(data)
        if self._header is None:
            self._header = self._frames.first
        return data

    def _silent_frame(self, index: int) -> bytes:
        """Frame ``index`` of the stream as digital silence: its CBR size (padded as the slot
        sizes fall), a side information of zeros and nothing else."""
        if self._silent is None:
            header = self._header
            assert header is not None  # an encoder has made a frame before any silence is skipped
            size = header.length_bytes() - header.padded
            self._silent = tuple(  # type: ignore[assignment]
                bytes([header.raw[0], header.raw[1], (header.raw[2] & ~0x02) | (0x02 * padded), header.raw[3]])
                + bytes(size + padded - 4) for padded in (0, 1))
        num, den = self._slot_num, self._slot_den
        padded = num * (index + 1) // den - num * index // den > num // den
        return self._silent[padded]  # type: ignore[index]


__all__ = ["LEAD_FRAMES", "MIN_SILENT_FRAMES", "Mp3Stream", "ZEROS_AFTER_FRAMES"]

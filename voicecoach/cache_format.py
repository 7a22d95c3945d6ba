"""How a cache entry (a clip or a track) is stored: compact, lossless, with random access.

A routine's track is mostly exact silence, and what is not silence repeats: every tick of a
hold, every "one, two, three".  So an entry keeps only its *pieces* -- runs of samples
between silences of at least :data:`GAP_SAMPLES` zeros, cut every :data:`PIECE_SAMPLES` --
each distinct piece once, as second differences (speech is smooth), low bytes then high bytes
(the high bytes are nearly all 0 or 255), through zlib.  The library's tracks take about a
seventh of their raw size this way; reading a span decodes only the pieces it touches.

Layout, little-endian::

    header   magic, sample rate, CRC-32, samples, index offset, pieces, blobs
    blobs    each distinct piece, compressed
    index    pieces (first sample u64, blob u32), then blobs (offset u64, bytes u32, samples u32)

The CRC-32 covers everything after the header, then the header with its CRC field zero.  The pieces
of a given signal do not depend on how it was cut into chunks, so two writers of one entry
write the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from collections import OrderedDict
from typing import BinaryIO, Iterable, Iterator

import numpy as np

MAGIC = b"VCAUD\x00\x02\x00"
EXTENSION = ".vca"
"""File name suffix of an entry (the raw-PCM entries of cache format 1 were ``.pcm``)."""
HEADER = struct.Struct("<8sIIQQII")  # magic, sample rate, crc32, samples, index offset, pieces, blobs
GAP_SAMPLES = 64
"""Zeros that end a piece (1.5 ms at 44.1 kHz): shorter silences stay inside it."""
PIECE_SAMPLES = 1 << 17
"""Longest piece (3 s at 44.1 kHz): bounds memory while writing and the work of a short read."""
ZLIB_LEVEL = 1
"""Deflate's level: 6 saves 5 % more and takes twice as long."""
ZLIB_STRATEGY = zlib.Z_RLE
"""Runs only, no searching for repeats: the low bytes of speech's second differences are
nearly noise and the high bytes runs of 0 and 255, so this is 40 % faster than level 1's
default search and no larger (any deflate stream reads the same way)."""
_PIECES = np.dtype([("start", "<u8"), ("blob", "<u4")])
_BLOBS = np.dtype([("offset", "<u8"), ("stored", "<u4"), ("samples", "<u4")])
_CRC_CHUNK = 1 << 22
_DECODED_CACHE_BYTES = 8 << 20


class FormatError(Exception):
    """An entry that is not whole (bad magic, size, checksum or index)."""


# -- pieces ----------------------------------------------------------------------------


def encode_piece(samples: np.ndarray) -> bytes:
    """Second differences (wrapping in int16), low bytes then high bytes, deflated."""
    x = np.ascontiguousarray(samples, dtype="<i2")
    d = _diff(_diff(x))
    packer = zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, 8, ZLIB_STRATEGY)
    return packer.compress(d.view(np.uint8).reshape(-1, 2).T.tobytes()) + packer.flush()


def decode_piece(blob: bytes, samples: int) -> np.ndarray:
    raw = zlib.decompress(blob)
    if len(raw) != 2 * samples:
        raise FormatError("piece of the wrong length")
    planes = np.frombuffer(raw, dtype=np.uint8)
    interleaved = np.empty(2 * samples, dtype=np.uint8)
    interleaved[0::2] = planes[:samples]
    interleaved[1::2] = planes[samples:]
    d = interleaved.view("<i2")
    return np.cumsum(np.cumsum(d, dtype=np.int16), dtype=np.int16)


def _diff(x: np.ndarray) -> np.ndarray:
    d = np.empty_like(x)
    if len(x):
        d[0] = x[0]
        np.subtract(x[1:], x[:-1], out=d[1:])  # wraps in int16: cumsum undoes it exactly
    return d


class Segmenter:
    """Cut a stream of samples into pieces, the same whatever the chunks.

    A piece starts at a non-zero sample, ends at the last non-zero sample before
    :data:`GAP_SAMPLES` zeros (or the end), and is cut every :data:`PIECE_SAMPLES` from its
    start.  Memory: at most one piece plus one chunk.
    """

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype="<i2")  # an open piece, from its first sample
        self._pending_start = 0
        self._continued = False  # the open piece continues one cut at PIECE_SAMPLES
        self._position = 0

    def feed(self, chunk: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """``(first sample, samples)`` of each piece that ``chunk`` completes."""
        chunk = np.asarray(chunk, dtype="<i2")
        if len(self._pending):
            window, start = np.concatenate([self._pending, chunk]), self._pending_start
        else:
            window, start = chunk, self._position
        self._position += len(chunk)
        yield from self._cut(window, start, final=False)

    def finish(self) -> Iterator[tuple[int, np.ndarray]]:
        """The pieces still open at the end of the stream."""
        yield from self._cut(self._pending, self._pending_start, final=True)

    def _cut(self, window: np.ndarray, start: int, *, final: bool) -> Iterator[tuple[int, np.ndarray]]:
        self._pending = np.zeros(0, dtype="<i2")
        nonzero = np.flatnonzero(window)
        if not len(nonzero):
            self._continued = False
            return
        breaks = np.flatnonzero(np.diff(nonzero) > GAP_SAMPLES)
        firsts = np.concatenate([nonzero[:1], nonzero[breaks + 1]])
        ends = np.concatenate([nonzero[breaks] + 1, nonzero[-1:] + 1])
        continued, self._continued = self._continued, False
        if continued:
            firsts[0] = 0  # the open piece started before its first non-zero sample here
        last = len(firsts) - 1
        for i, (first, end) in enumerate(zip(firsts.tolist(), ends.tolist())):
            if i < last or final or len(window) - end >= GAP_SAMPLES:
                for cut in range(first, end, PIECE_SAMPLES):
                    yield start + cut, window[cut : min(cut + PIECE_SAMPLES, end)]
                continue
            # still open: a full piece can go once the samples after it are sure to be in it
            self._continued = continued and i == 0
            while len(window) - first >= PIECE_SAMPLES + GAP_SAMPLES:
                yield start + first, window[first : first + PIECE_SAMPLES]
                first += PIECE_SAMPLES
                self._continued = True
            self._pending = window[first:].copy()
            self._pending_start = start + first


# -- writing ---------------------------------------------------------------------------


class EntryWriter:
    """Write an entry to an open file as its samples stream by (header last, at offset 0)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._segmenter = Segmenter()
        self._pieces: list[tuple[int, int]] = []
        self._blobs: list[tuple[int, int, int]] = []
        self._ids: dict[bytes, int] = {}
        self._offset = HEADER.size
        self._crc = 0
        self.samples = 0
        handle.write(b"\0" * HEADER.size)

    def write(self, chunk: np.ndarray) -> None:
        self.samples += len(chunk)
        for first, piece in self._segmenter.feed(chunk):
            self._add(first, piece)

    def _add(self, first: int, piece: np.ndarray) -> None:
        raw = piece.tobytes()
        fingerprint = hashlib.blake2b(raw, digest_size=20).digest()
        blob = self._ids.get(fingerprint)
        if blob is None:  # a repeat (a tick, a count) is stored once
            data = encode_piece(piece)
            blob = self._ids[fingerprint] = len(self._blobs)
            self._blobs.append((self._offset, len(data), len(piece)))
            self._emit(data)
        self._pieces.append((first, blob))

    def _emit(self, data: bytes) -> None:
        self._handle.write(data)
        self._crc = zlib.crc32(data, self._crc)
        self._offset += len(data)

    def close(self, sample_rate: int) -> None:
        """Write the index and the header (the caller then makes the file visible)."""
        for first, piece in self._segmenter.finish():
            self._add(first, piece)
        index_offset = self._offset
        self._emit(np.array(self._pieces, dtype=_PIECES).tobytes())
        self._emit(np.array(self._blobs, dtype=_BLOBS).tobytes())
        fields = (sample_rate, self.samples, index_offset, len(self._pieces), len(self._blobs))
        crc = zlib.crc32(HEADER.pack(MAGIC, fields[0], 0, *fields[1:]), self._crc)  # body, then header
        self._handle.seek(0)
        self._handle.write(HEADER.pack(MAGIC, fields[0], crc, *fields[1:]))


def write_entry(handle: BinaryIO, chunks: Iterable[np.ndarray], sample_rate: int) -> None:
    writer = EntryWriter(handle)
    for chunk in chunks:
        writer.write(chunk)
    writer.close(sample_rate)


# -- reading ---------------------------------------------------------------------------


def read_header(handle: BinaryIO) -> tuple[int, int, int, int, int, int]:
    """``(sample_rate, crc, samples, index_offset, pieces, blobs)``; FormatError if it is not one."""
    handle.seek(0)
    data = handle.read(HEADER.size)
    if len(data) < HEADER.size:
        raise FormatError("short header")
    magic, *fields = HEADER.unpack(data)
    if magic != MAGIC:
        raise FormatError("not a cache entry of this format")
    rate, _, samples, index_offset, pieces, blobs = fields
    size = os.fstat(handle.fileno()).st_size
    if rate == 0 or index_offset < HEADER.size or size != index_offset + pieces * _PIECES.itemsize + blobs * _BLOBS.itemsize:
        raise FormatError("wrong size")
    return tuple(fields)  # type: ignore[return-value]


def check(handle: BinaryIO, *, sample_rate: int | None = None) -> None:
    """Raise FormatError unless the entry is whole: magic, size, rate (when given), checksum, index."""
    rate, crc, samples, index_offset, pieces, blobs = read_header(handle)
    if sample_rate is not None and rate != sample_rate:
        raise FormatError("other sample rate")
    handle.seek(0)
    header = bytearray(handle.read(HEADER.size))
    header[12:16] = b"\0\0\0\0"  # the CRC field
    running = 0
    while block := handle.read(_CRC_CHUNK):
        running = zlib.crc32(block, running)
    if zlib.crc32(header, running) != crc:
        raise FormatError("checksum")


class EntryReader:
    """Random access to a checked entry: ``len(reader)``, ``reader.read(start, count)``,
    ``reader[a:b]``.  Keeps its file open (a pruned or replaced entry stays readable)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        rate, _, self._samples, index_offset, pieces, blobs = read_header(handle)
        self.sample_rate = rate
        handle.seek(index_offset)
        table = handle.read(pieces * _PIECES.itemsize + blobs * _BLOBS.itemsize)
        piece_table = np.frombuffer(table, dtype=_PIECES, count=pieces)
        blob_table = np.frombuffer(table, dtype=_BLOBS, count=blobs, offset=pieces * _PIECES.itemsize)
        self._blob = piece_table["blob"].astype(np.int64)
        if len(self._blob) and self._blob.max() >= blobs:
            raise FormatError("index names a missing blob")
        self._start = piece_table["start"].astype(np.int64)
        self._blob_offset = blob_table["offset"].astype(np.int64)
        self._blob_stored = blob_table["stored"].astype(np.int64)
        self._blob_samples = blob_table["samples"].astype(np.int64)
        self._end = self._start + self._blob_samples[self._blob]
        if len(self._start) and (np.any(self._start[1:] < self._end[:-1]) or self._end[-1] > self._samples):
            raise FormatError("pieces overlap or run past the end")
        if np.any(self._blob_offset + self._blob_stored > index_offset):
            raise FormatError("blob past the index")
        self._decoded: OrderedDict[int, np.ndarray] = OrderedDict()
        self._decoded_bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._samples

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self.read(0, self._samples)
        return whole if dtype is None else whole.astype(dtype)

    def __getitem__(self, span: slice) -> np.ndarray:
        start, stop, step = span.indices(self._samples)
        if step != 1:
            raise ValueError("only contiguous spans")
        return self.read(start, max(0, stop - start))

    def read(self, start: int, count: int) -> np.ndarray:
        """Samples ``[start, start + count)`` (shorter at the end) as a new int16 array."""
        start = max(0, min(start, self._samples))
        stop = min(self._samples, start + max(0, count))
        out = np.zeros(stop - start, dtype=np.int16)
        i = int(np.searchsorted(self._end, start, side="right"))
        while i < len(self._start) and self._start[i] < stop:
            first = int(self._start[i])
            piece = self._piece(int(self._blob[i]))
            lo, hi = max(start, first), min(stop, first + len(piece))
            out[lo - start : hi - start] = piece[lo - first : hi - first]
            i += 1
        return out

    def chunks(self, chunk_samples: int) -> Iterator[np.ndarray]:
        for start in range(0, self._samples, chunk_samples):
            yield self.read(start, chunk_samples)

    def close(self) -> None:
        self._handle.close()

    def _piece(self, blob: int) -> np.ndarray:
        with self._lock:
            piece = self._decoded.get(blob)
            if piece is not None:
                self._decoded.move_to_end(blob)
                return piece
        data = os.pread(self._handle.fileno(), int(self._blob_stored[blob]), int(self._blob_offset[blob]))
        try:
            piece = decode_piece(data, int(self._blob_samples[blob]))
        except zlib.error as error:
            raise FormatError(f"undecodable piece: {error}") from None
        with self._lock:  # recent pieces stay decoded: a repeat or the next read's overlap
            self._decoded[blob] = piece
            self._decoded_bytes += piece.nbytes
            while self._decoded_bytes > _DECODED_CACHE_BYTES and len(self._decoded) > 1:
                _, old = self._decoded.popitem(last=False)
                self._decoded_bytes -= old.nbytes
        return piece

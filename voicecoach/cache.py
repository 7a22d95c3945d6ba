"""The audio cache: synthesized clips and rendered tracks, content-addressed.

Layout under the cache folder (``audio_cache/`` by default)::

    clips/ab/abcdef....pcm     one processed speech clip
    tracks/abcdef....pcm       one rendered, normalized track

Each entry is a small header (magic, sample rate, sample count, CRC-32 of the payload)
followed by little-endian int16 samples.  Entries are written atomically; one that is
corrupt, truncated or empty fails its check, counts as a miss and is rendered again.
A cache folder that cannot be written to is not fatal: work goes on uncached, with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .files import atomic_write

MAGIC = b"VCPCM\x00\x01\x00"
_HEADER = struct.Struct("<8sIIQ")  # magic, sample rate, crc32, number of samples
HEADER_BYTES = _HEADER.size
ENV_VAR = "VOICECOACH_CACHE_DIR"
DEFAULT_DIR = "audio_cache"
_CRC_CHUNK = 1 << 22


class _Abandoned(Exception):
    """Thrown into an entry's writer to discard its temporary file."""


def default_cache_dir() -> Path:
    """``$VOICECOACH_CACHE_DIR`` or ``audio_cache/`` in the working directory."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def digest(*parts: object) -> str:
    """A stable hex key for JSON-serializable parts."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class CacheStats:
    """What a run did with the cache."""

    hits: int = 0
    """Entries found valid."""
    misses: int = 0
    """Entries absent (or invalid) that had to be made."""
    corrupt: int = 0
    """Entries found damaged and ignored."""
    warnings: list[str] = field(default_factory=list)
    """Problems worth telling the user once (e.g. a read-only cache folder)."""


class Cache:
    """Clips and tracks under one folder; ``root=None`` disables caching."""

    def __init__(self, root: str | os.PathLike | None) -> None:
        self.root = Path(root) if root is not None else None
        self.stats = CacheStats()
        self._writable = self.root is not None

    # -- clips -------------------------------------------------------------------------

    def clip_path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / "clips" / key[:2] / f"{key}.pcm"

    def get_clip(self, key: str, *, sample_rate: int) -> np.ndarray | None:
        if self.root is None:
            return None
        samples = self._read(self.clip_path(key), sample_rate)
        if samples is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return samples

    def put_clip(self, key: str, samples: np.ndarray, *, sample_rate: int) -> None:
        if self.root is not None:
            self._write(self.clip_path(key), [samples], sample_rate)

    # -- tracks ------------------------------------------------------------------------

    def track_path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / "tracks" / f"{key}.pcm"

    def get_track(self, key: str, *, sample_rate: int) -> np.ndarray | None:
        """A read-only memory map of a valid cached track, or None."""
        if self.root is None:
            return None
        path = self.track_path(key)
        if not self._valid(path, sample_rate):
            return None
        count = (path.stat().st_size - HEADER_BYTES) // 2
        if count == 0:
            return np.zeros(0, dtype="<i2")
        return np.memmap(path, dtype="<i2", mode="r", offset=HEADER_BYTES, shape=(count,))

    def put_track(self, key: str, chunks: Iterable[np.ndarray], *, sample_rate: int) -> Iterator[np.ndarray]:
        """Pass ``chunks`` through while writing them to the cache (if it can be written)."""
        if self.root is None or not self._writable:
            yield from chunks
            return
        yield from self._write_stream(self.track_path(key), chunks, sample_rate)

    # -- entries -----------------------------------------------------------------------

    def _read(self, path: Path, sample_rate: int) -> np.ndarray | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            self._warn(f"cannot read cache entry {path}: {error}")
            return None
        if len(data) < HEADER_BYTES:
            return self._corrupt(path)
        magic, rate, crc, count = _HEADER.unpack_from(data)
        payload = memoryview(data)[HEADER_BYTES:]
        if magic != MAGIC or rate != sample_rate or len(payload) != 2 * count or zlib.crc32(payload) != crc:
            return self._corrupt(path)
        return np.frombuffer(payload, dtype="<i2").astype(np.int16)

    def _valid(self, path: Path, sample_rate: int) -> bool:
        try:
            with open(path, "rb") as handle:
                header = handle.read(HEADER_BYTES)
                if len(header) < HEADER_BYTES:
                    self._corrupt(path)
                    return False
                magic, rate, crc, count = _HEADER.unpack(header)
                size = os.fstat(handle.fileno()).st_size
                if magic != MAGIC or rate != sample_rate or size - HEADER_BYTES != 2 * count:
                    self._corrupt(path)
                    return False
                running = 0
                while block := handle.read(_CRC_CHUNK):
                    running = zlib.crc32(block, running)
        except FileNotFoundError:
            return False
        if running != crc:
            self._corrupt(path)
            return False
        return True

    def _corrupt(self, path: Path) -> None:
        self.stats.corrupt += 1
        with contextlib.suppress(OSError):
            path.unlink()
        return None

    def _write(self, path: Path, chunks: list[np.ndarray], sample_rate: int) -> None:
        for _ in self._write_stream(path, chunks, sample_rate):
            pass

    def _write_stream(self, path: Path, chunks: Iterable[np.ndarray], sample_rate: int) -> Iterator[np.ndarray]:
        """Yield every chunk; write them too while the cache allows (a failure only drops the entry)."""
        writer = handle = None
        if self._writable:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = atomic_write(path, fsync=False)
                handle = writer.__enter__()
                handle.write(b"\0" * HEADER_BYTES)
            except OSError as error:
                self._abandon(writer, error)
                writer = handle = None
        crc = count = 0
        finished = False
        try:
            for chunk in chunks:
                if handle is not None:
                    data = np.ascontiguousarray(chunk, dtype="<i2").tobytes()
                    try:
                        handle.write(data)
                    except OSError as error:  # e.g. a full disk: drop the entry, keep going
                        self._abandon(writer, error)
                        writer = handle = None
                    crc = zlib.crc32(data, crc)
                    count += len(chunk)
                yield chunk
            finished = True
        finally:
            if writer is not None and not finished:  # the consumer stopped early, or an error
                with contextlib.suppress(_Abandoned):
                    writer.__exit__(_Abandoned, _Abandoned(), None)
        if writer is not None and handle is not None:
            try:
                handle.seek(0)
                handle.write(_HEADER.pack(MAGIC, sample_rate, crc, count))
                writer.__exit__(None, None, None)
            except OSError as error:
                self._abandon(writer, error)

    def _abandon(self, writer, error: OSError) -> None:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.__exit__(type(error), error, None)
        self._warn(f"cannot write to cache folder {self.root} ({error.strerror or error}); continuing without caching")

    def _warn(self, message: str) -> None:
        self._writable = False
        if message not in self.stats.warnings:
            self.stats.warnings.append(message)

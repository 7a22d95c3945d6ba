"""The audio cache: synthesized clips and rendered tracks, content-addressed.

Layout under the cache folder (``audio_cache/`` by default)::

    clips/ab/abcdef....pcm     one processed speech clip
    tracks/abcdef....pcm       one rendered, normalized track

Each entry is a small header (magic, sample rate, sample count, CRC-32 of the payload)
followed by little-endian int16 samples.  Entries are written atomically; one that is
corrupt, truncated or empty fails its check, counts as a miss and is rendered again.
A cache folder that cannot be written to is not fatal: work goes on uncached, with a warning.

Several processes may share one cache: an entry appears whole (``os.replace``) or not at all,
and two writers of one key write the same bytes.  A hit refreshes the entry's modification
time, so :meth:`Cache.prune` can drop the least recently used entries (atime is not relied
on: many disks are mounted ``noatime``).  Temporary files of killed runs are removed by the
next run once they are stale (see files.STALE_TEMP_S).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePath
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from .errors import VoicecoachError
from .files import TEMP_SUFFIX, atomic_write, remove_stale_temp_files

MAGIC = b"VCPCM\x00\x01\x00"
_HEADER = struct.Struct("<8sIIQ")  # magic, sample rate, crc32, number of samples
HEADER_BYTES = _HEADER.size
ENV_VAR = "VOICECOACH_CACHE_DIR"
DEFAULT_DIR = "audio_cache"
_CRC_CHUNK = 1 << 22
KINDS = ("clips", "tracks")
"""The cache's entry kinds, each a subfolder."""


class _Abandoned(Exception):
    """Thrown into an entry's writer to discard its temporary file."""


def default_cache_dir() -> Path:
    """``$VOICECOACH_CACHE_DIR`` or ``audio_cache/`` in the working directory."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


FORMAT_VERSION = 2
"""The cache's format: part of every key and of every entry's header.  2: keys are derived by
:func:`settings_key` (a one-time re-render), tracks are stored compactly."""

NOT_IN_KEY = {"cache_key": False}
"""``field(metadata=NOT_IN_KEY)``: a settings field that does not change the output (chunk
sizes, worker counts, folders) and so stays out of the settings' cache key."""


def _canonical(value: object) -> object:
    """``value`` as plain JSON data, the same in every process (no ``repr`` with addresses).

    Dataclasses become their fields by name (without the :data:`NOT_IN_KEY` ones), enums their
    value, fractions ``"n/d"``, paths their text; anything else that JSON cannot hold is a bug.
    """
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.metadata.get("cache_key", True)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(_canonical(k)): _canonical(v) for k, v in value.items()}
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"cannot put a {type(value).__name__} into a cache key: {value!r}")


def digest(*parts: object) -> str:
    """A stable hex sha256 of ``parts`` as canonical JSON (see :func:`_canonical`)."""
    blob = json.dumps(_canonical(parts), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def settings_key(kind: str, version: str, settings: object, *extra: object) -> str:
    """The one way a cache key is made: the hash of a kind, its version, the cache format and
    the fields of a frozen settings dataclass (with whatever else decides the output).

    Every field that changes the output is in the key, so a new field is in it too unless it
    is marked :data:`NOT_IN_KEY`.  Settings classes expose it as their ``cache_key()``.
    """
    return digest(kind, version, FORMAT_VERSION, settings, *extra)


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
    stale_removed: int = 0
    """Temporary files of killed runs removed."""


@dataclass(frozen=True)
class KindInfo:
    """Entries of one kind."""

    entries: int
    """How many."""
    bytes: int
    """Their total size on disk."""


@dataclass(frozen=True)
class CacheInfo:
    """What a cache folder holds (``voicecoach cache info``)."""

    root: Path
    """The cache folder."""
    by_kind: dict[str, KindInfo]
    """``clips`` and ``tracks``."""
    temp_files: int
    """Temporary files: being written right now, or left by a killed run."""

    @property
    def entries(self) -> int:
        return sum(k.entries for k in self.by_kind.values())

    @property
    def bytes(self) -> int:
        return sum(k.bytes for k in self.by_kind.values())


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of checking every entry (``voicecoach cache verify``)."""

    checked: int
    """Entries checked."""
    bad: tuple[Path, ...]
    """Entries that failed their check (removed unless asked not to)."""
    removed: bool
    """Whether the bad entries were removed."""
    stale_removed: int = 0
    """Temporary files of killed runs removed."""

    @property
    def valid(self) -> int:
        return self.checked - len(self.bad)


@dataclass(frozen=True)
class PruneReport:
    """The outcome of :meth:`Cache.prune`."""

    removed: int
    """Entries removed, least recently used first."""
    freed_bytes: int
    """Bytes they took."""
    kept: int
    """Entries left."""
    kept_bytes: int
    """Bytes left (at most the limit)."""


def entry_ok(path: str | os.PathLike, *, sample_rate: int | None = None) -> bool:
    """Whether the entry is whole: magic, sample rate (when given), length and checksum.

    Raises FileNotFoundError when there is no entry.
    """
    with open(path, "rb") as handle:
        header = handle.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES:
            return False
        magic, rate, crc, count = _HEADER.unpack(header)
        size = os.fstat(handle.fileno()).st_size
        if magic != MAGIC or rate == 0 or size - HEADER_BYTES != 2 * count:
            return False
        if sample_rate is not None and rate != sample_rate:
            return False
        running = 0
        while block := handle.read(_CRC_CHUNK):
            running = zlib.crc32(block, running)
    return running == crc


def _read_chunks(handle: BinaryIO, chunk_samples: int) -> Iterator[np.ndarray]:
    with handle:
        handle.seek(HEADER_BYTES)
        while block := handle.read(2 * chunk_samples):
            yield np.frombuffer(block, dtype="<i2")


class Cache:
    """Clips and tracks under one folder; ``root=None`` disables caching."""

    def __init__(self, root: str | os.PathLike | None) -> None:
        self.root = Path(root) if root is not None else None
        self.stats = CacheStats()
        self._writable = self.root is not None
        self._swept = False

    # -- clips -------------------------------------------------------------------------

    def clip_path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / "clips" / key[:2] / f"{key}.pcm"

    def get_clip(self, key: str, *, sample_rate: int) -> np.ndarray | None:
        if self.root is None:
            return None
        self._sweep_once()
        samples = self._read(self.clip_path(key), sample_rate)
        if samples is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return samples

    def put_clip(self, key: str, samples: np.ndarray, *, sample_rate: int) -> bool:
        """Store a clip; whether it is in the cache now (so it can be read back later)."""
        if self.root is None or not self._writable:
            return False
        self._write(self.clip_path(key), [samples], sample_rate)
        return self._writable

    def read_clip(self, key: str, *, sample_rate: int) -> np.ndarray | None:
        """Read a clip stored earlier in this run, without counting it as a hit or miss."""
        return None if self.root is None else self._read(self.clip_path(key), sample_rate)

    # -- tracks ------------------------------------------------------------------------

    def track_path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / "tracks" / f"{key}.pcm"

    def get_track(self, key: str, *, sample_rate: int) -> np.ndarray | None:
        """A read-only memory map of a valid cached track, or None."""
        path = self._valid_track(key, sample_rate)
        if path is None:
            return None
        try:
            count = (path.stat().st_size - HEADER_BYTES) // 2
            if count == 0:
                return np.zeros(0, dtype="<i2")
            return np.memmap(path, dtype="<i2", mode="r", offset=HEADER_BYTES, shape=(count,))
        except FileNotFoundError:  # pruned or cleared by another run just now
            return None

    def track_chunks(self, key: str, *, sample_rate: int, chunk_samples: int) -> Iterator[np.ndarray] | None:
        """A valid cached track as chunks read in order, or None.

        Read rather than mapped (see :meth:`get_track` for random access): every page of a
        mapped hour of audio that has been passed over would count in the process's memory.
        """
        path = self._valid_track(key, sample_rate)
        if path is None:
            return None
        try:
            handle = open(path, "rb")  # entries are replaced whole (os.replace): this one stays as checked
        except FileNotFoundError:  # pruned or cleared by another run just now
            return None
        return _read_chunks(handle, chunk_samples)

    def _valid_track(self, key: str, sample_rate: int) -> Path | None:
        """The path of the cached track if there is a valid one (a damaged one is removed)."""
        if self.root is None:
            return None
        self._sweep_once()
        path = self.track_path(key)
        return path if self._valid(path, sample_rate) else None

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
        _touch(path)
        return np.frombuffer(payload, dtype="<i2").astype(np.int16)

    def _valid(self, path: Path, sample_rate: int) -> bool:
        try:
            ok = entry_ok(path, sample_rate=sample_rate)
        except FileNotFoundError:
            return False
        except OSError as error:
            self._warn(f"cannot read cache entry {path}: {error}")
            return False
        if not ok:
            self._corrupt(path)
            return False
        _touch(path)
        return True

    def _corrupt(self, path: Path) -> None:
        self.stats.corrupt += 1
        with contextlib.suppress(OSError):
            path.unlink()
        return None

    def _write(self, path: Path, chunks: list[np.ndarray], sample_rate: int) -> None:
        stream = self._write_stream(path, chunks, sample_rate)
        try:
            for _ in stream:
                pass
        finally:
            stream.close()  # an interrupt between chunks: the temporary file goes now

    def _write_stream(self, path: Path, chunks: Iterable[np.ndarray], sample_rate: int) -> Iterator[np.ndarray]:
        """Yield every chunk; write them too while the cache allows (a failure only drops the entry)."""
        writer = handle = None
        self._sweep_once()
        crc = count = 0
        try:  # from the moment a temporary file may exist: whatever stops us removes it
            if self._writable:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    writer = atomic_write(path, fsync=False, sweep=False)
                    handle = writer.__enter__()
                    handle.write(b"\0" * HEADER_BYTES)
                except OSError as error:
                    self._abandon(writer, error)
                    writer = handle = None
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
            if writer is not None and handle is not None:
                try:
                    handle.seek(0)
                    handle.write(_HEADER.pack(MAGIC, sample_rate, crc, count))
                    writer.__exit__(None, None, None)
                except OSError as error:
                    self._abandon(writer, error)
                writer = None
        finally:
            if writer is not None:  # the consumer stopped early, an error, Ctrl-C
                with contextlib.suppress(_Abandoned):
                    writer.__exit__(_Abandoned, _Abandoned(), None)

    def _abandon(self, writer, error: OSError) -> None:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.__exit__(type(error), error, None)
        self._warn(f"cannot write to cache folder {self.root} ({error.strerror or error}); continuing without caching")

    def _warn(self, message: str) -> None:
        self._writable = False
        if message not in self.stats.warnings:
            self.stats.warnings.append(message)

    def _sweep_once(self) -> None:
        """Remove stale temporary files of killed runs, once per run (before its first use)."""
        if not self._swept and self.root is not None:
            self._swept = True
            self.stats.stale_removed += self.remove_stale_temp_files()

    # -- management (``voicecoach cache ...``) ------------------------------------------

    def _folders(self) -> Iterator[tuple[str, Path]]:
        """``(kind, folder)`` of every folder that holds entries."""
        assert self.root is not None
        yield "tracks", self.root / "tracks"
        with contextlib.suppress(OSError), os.scandir(self.root / "clips") as shards:
            for shard in sorted(shards, key=lambda e: e.name):
                if shard.is_dir(follow_symlinks=False):
                    yield "clips", Path(shard.path)

    def entries(self) -> Iterator[tuple[str, Path, os.stat_result]]:
        """``(kind, path, stat)`` of every entry, in a stable order."""
        for kind, folder in self._folders():
            with contextlib.suppress(OSError), os.scandir(folder) as found:
                for entry in sorted(found, key=lambda e: e.name):
                    if entry.name.endswith(".pcm") and not entry.name.startswith("."):
                        with contextlib.suppress(OSError):
                            yield kind, Path(entry.path), entry.stat(follow_symlinks=False)

    def remove_stale_temp_files(self, *, max_age_s: float | None = None) -> int:
        """Remove temporary files left by killed runs (only stale ones: others may be in use); how many."""
        extra = {} if max_age_s is None else {"max_age_s": max_age_s}
        return sum(remove_stale_temp_files(folder, **extra) for _, folder in self._folders())

    def info(self) -> CacheInfo:
        """Entries and bytes by kind, and temporary files."""
        assert self.root is not None
        counts = {kind: [0, 0] for kind in KINDS}
        for kind, _, info in self.entries():
            counts[kind][0] += 1
            counts[kind][1] += info.st_size
        temp = 0
        for _, folder in self._folders():
            with contextlib.suppress(OSError), os.scandir(folder) as found:
                temp += sum(entry.name.endswith(TEMP_SUFFIX) for entry in found)
        return CacheInfo(self.root, {kind: KindInfo(*counts[kind]) for kind in KINDS}, temp)

    def verify(self, *, remove: bool = True) -> VerifyReport:
        """Check every entry's header and checksum; remove the bad ones (and stale temporary files)."""
        checked = 0
        bad: list[Path] = []
        for _, path, _ in list(self.entries()):
            try:
                ok = entry_ok(path)
            except FileNotFoundError:  # removed meanwhile (another run's prune or clear)
                continue
            except OSError:
                ok = False
            checked += 1
            if not ok:
                bad.append(path)
                if remove:
                    with contextlib.suppress(OSError):
                        path.unlink()
        stale = self.remove_stale_temp_files() if remove else 0
        return VerifyReport(checked, tuple(bad), remove, stale)

    def prune(self, *, max_bytes: int) -> PruneReport:
        """Remove the least recently used entries until the rest take at most ``max_bytes``."""
        self.remove_stale_temp_files()
        found = [(max(info.st_mtime_ns, info.st_atime_ns), path, info.st_size) for _, path, info in self.entries()]
        found.sort()  # oldest use first; the path breaks ties, so the choice is stable
        total = sum(size for _, _, size in found)
        removed = freed = 0
        for _, path, size in found:
            if total <= max_bytes:
                break
            _remove(path)
            total -= size
            removed += 1
            freed += size
        return PruneReport(removed, freed, len(found) - removed, total)

    def clear(self) -> int:
        """Remove every entry (and stale temporary files); how many entries were removed."""
        removed = 0
        for _, path, _ in list(self.entries()):
            removed += _remove(path)
        self.remove_stale_temp_files()
        for folder in [*(folder for _, folder in self._folders()), self.root / "clips"]:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: a live writer's temporary file keeps it
        return removed


def _remove(path: Path) -> bool:
    """Remove an entry; whether it was there.  A folder we may not change is the user's to fix."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as error:
        raise VoicecoachError(f"cannot remove cache entry {path}: {error.strerror or error}",
                              hint="check the cache folder's permissions, or use --cache-dir") from None
    return True


def _touch(path: Path) -> None:
    """Mark an entry as just used, for LRU pruning (a read-only cache stays as it is)."""
    with contextlib.suppress(OSError):
        os.utime(path)

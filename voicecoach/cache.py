"""The audio cache: synthesized clips and rendered tracks, content-addressed.

Layout under the cache folder::

    clips/ab/abcdef....vca     one processed speech clip (or decoded music)
    tracks/abcdef....vca       one rendered, normalized track
    hashes/abcdef....          the sha256 of a big input file (a voice model), by the file's identity

Each entry is stored compactly, with random access (silence left out, repeats once, the rest
losslessly compressed; see :mod:`voicecoach.cache_format`), with a CRC-32.  Entries are written
atomically; one that is corrupt, truncated or empty fails its check, counts as a miss and is
rendered again.  A cache folder that cannot be used is not fatal: work goes on uncached, with
one warning.  Entries of cache format 1 (raw ``.pcm``) are removed by the first run that
uses the folder.

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
import re
import shutil
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Callable, Iterable, Iterator

import numpy as np

from . import cache_format
from .cache_format import EXTENSION, EntryReader, EntryWriter, FormatError
from .errors import VoicecoachError
from .files import TEMP_SUFFIX, atomic_write, remove_stale_temp_files

HEADER_BYTES = cache_format.HEADER.size
OLD_EXTENSION = ".pcm"
"""Entries of cache format 1 (raw PCM): never read, removed when a run first uses the folder."""
ENV_VAR = "VOICECOACH_CACHE_DIR"
PROJECT_DIR = "audio_cache"
"""A folder of this name marks a project: routines at or below its parent share it as their cache."""
MAX_ENV_VAR = "VOICECOACH_CACHE_MAX"
DEFAULT_MAX_BYTES = 1 << 30
"""The size cap when ``$VOICECOACH_CACHE_MAX`` is not set (the library's routines take about
110 MB per voice)."""
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
KINDS = ("clips", "tracks")
"""The cache's entry kinds, each a subfolder."""
HASHES = "hashes"
"""The subfolder of remembered file hashes (see :meth:`Cache.file_sha256`)."""
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Abandoned(Exception):
    """Thrown into an entry's writer to discard its temporary file."""


@dataclass(frozen=True)
class CacheLocation:
    """Where the cache of a routine (or of the current folder) is, and why there."""

    path: Path
    """The cache folder."""
    reason: str
    """How it was chosen, for ``voicecoach cache info``."""


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/voicecoach``, or ``~/.cache/voicecoach`` (a relative XDG path is ignored, as the spec says)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "voicecoach"


def locate_cache(near: str | os.PathLike | None = None) -> CacheLocation:
    """The cache for a routine file or folder ``near`` (``None``: the current folder).

    ``$VOICECOACH_CACHE_DIR`` if set; else the ``audio_cache/`` folder of the project around
    ``near``, found as git finds ``.git``: the nearest existing ``audio_cache/`` in its folder
    or any folder above; else the user's cache folder (:func:`user_cache_dir`).  Only an
    existing ``audio_cache/`` marks a project (not ``.git`` or ``pyproject.toml``): nothing is
    ever created in a folder the user did not choose.
    """
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return CacheLocation(Path(from_env).absolute(), f"${ENV_VAR}")
    start = Path(near if near is not None else ".").absolute()
    if not start.is_dir():
        start = start.parent
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_DIR
        if candidate.is_dir():
            return CacheLocation(candidate, f"the project's {PROJECT_DIR}/ (nearest above {start})")
    return CacheLocation(user_cache_dir(), "the user cache (no project audio_cache/ above "
                                           f"{start}; $XDG_CACHE_HOME/voicecoach or ~/.cache/voicecoach)")


def default_cache_dir(near: str | os.PathLike | None = None) -> Path:
    """The cache folder for a routine file or folder (``None``: the current folder); see :func:`locate_cache`."""
    return locate_cache(near).path


def parse_size(text: str) -> int:
    """``"500M"``, ``"2G"``, ``"1.5k"``, ``"64MiB"`` (powers of 1024) or bytes; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"{text!r} is not a size; write e.g. 500M, 2G or 1000000")
    return int(float(match[1]) * _SIZE_UNITS[match[2].upper()])


def cache_limit() -> int | None:
    """The size cap: ``$VOICECOACH_CACHE_MAX`` (a size, or ``none``), else :data:`DEFAULT_MAX_BYTES`."""
    text = os.environ.get(MAX_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    if text.lower() in ("none", "off", "unlimited"):
        return None
    try:
        return parse_size(text)
    except ValueError as error:
        raise VoicecoachError(f"${MAX_ENV_VAR}: {error}", hint="or 'none' for no cap") from None


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
        try:
            cache_format.check(handle, sample_rate=sample_rate)
        except FormatError:
            return False
    return True


def _open_checked(path: Path, sample_rate: int) -> EntryReader:
    """A reader of a whole entry; FormatError if it is not, OSError if it cannot be read."""
    handle = open(path, "rb")  # entries are replaced whole (os.replace): this one stays as checked
    try:
        cache_format.check(handle, sample_rate=sample_rate)
        return EntryReader(handle)
    except BaseException:
        handle.close()
        raise


def _read_chunks(reader: EntryReader, chunk_samples: int) -> Iterator[np.ndarray]:
    try:
        yield from reader.chunks(chunk_samples)
    finally:
        reader.close()


class Cache:
    """Clips and tracks under one folder; ``root=None`` disables caching."""

    def __init__(self, root: str | os.PathLike | None) -> None:
        self.root = Path(root) if root is not None else None
        self.max_bytes = cache_limit() if root is not None else None  # what trim() keeps it under
        self.stats = CacheStats()
        self._readable = self._writable = self.root is not None
        self._swept = False
        self._wrote = False

    # -- clips -------------------------------------------------------------------------

    def clip_path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / "clips" / key[:2] / f"{key}{EXTENSION}"

    def get_clip(self, key: str, *, sample_rate: int) -> np.ndarray | None:
        if self.root is None:
            return None
        samples = self._read(self.clip_path(key), sample_rate)
        if samples is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return samples

    def clip_samples(self, key: str, *, sample_rate: int) -> int | None:
        """The length of a valid cached clip, without decoding it (a hit or a miss, like
        :meth:`get_clip`): a warm compile needs only the lengths to schedule."""
        if self.root is None or not self._usable():
            return None
        reader = self._open(self.clip_path(key), sample_rate)
        if reader is None:
            self.stats.misses += 1
            return None
        reader.close()
        self.stats.hits += 1
        return len(reader)

    def put_clip(self, key: str, samples: np.ndarray, *, sample_rate: int) -> bool:
        """Store a clip; whether it is in the cache now (so it can be read back later)."""
        if self.root is None or not self._writable:
            return False
        self._write(self.clip_path(key), [samples], sample_rate)
        return self._writable

    def read_clip(self, key: str, *, sample_rate: int) -> np.ndarray | None:
        """Read a clip stored earlier in this run, without counting it as a hit or miss."""
        return None if self.root is None else self._read(self.clip_path(key), sample_rate)

    # -- file hashes ---------------------------------------------------------------------

    def file_sha256(self, path: str | os.PathLike, *, on_miss: Callable[[], None] | None = None) -> str:
        """The sha256 of a file's bytes, remembered in this cache by the file's identity.

        A voice model is tens of megabytes: hashing it for the clip keys took a tenth of a
        second on every run.  The hash is kept under ``hashes/``, named by the file's real
        path, size, modification time (ns), inode and device: a file changed, replaced or moved
        has another identity and is hashed afresh.  ``on_miss`` is called before hashing (a
        file this cache does not know: its clips are unlikely to be here either).
        """
        from .sound import file_sha256

        info = os.stat(path)
        real = os.path.realpath(path)
        memo = None
        if self.root is not None and self._usable():
            memo = self.root / HASHES / digest("file-sha256", real, info.st_size, info.st_mtime_ns, info.st_ino,
                                               info.st_dev)
            with contextlib.suppress(OSError, UnicodeError):
                known = memo.read_text(encoding="ascii").strip()
                if _SHA256.fullmatch(known):
                    return known
        if on_miss is not None:
            on_miss()
        sha = file_sha256(path)
        if memo is not None and self._writable:
            try:
                memo.parent.mkdir(exist_ok=True)
                with atomic_write(memo, fsync=False) as handle:
                    handle.write(sha.encode("ascii"))
            except OSError:
                pass  # not remembered: hashed again next time, nothing worse
        return sha

    # -- tracks ------------------------------------------------------------------------

    def track_path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / "tracks" / f"{key}{EXTENSION}"

    def get_track(self, key: str, *, sample_rate: int) -> EntryReader | None:
        """Random access to a valid cached track (``len``, ``read(start, count)``, slices), or None."""
        if self.root is None or not self._usable():
            return None
        return self._open(self.track_path(key), sample_rate)

    def track_chunks(self, key: str, *, sample_rate: int, chunk_samples: int) -> Iterator[np.ndarray] | None:
        """A valid cached track as chunks read in order, or None."""
        reader = self.get_track(key, sample_rate=sample_rate)
        return None if reader is None else _read_chunks(reader, chunk_samples)

    def put_track(self, key: str | Callable[[], str], chunks: Iterable[np.ndarray], *,
                  sample_rate: int) -> Iterator[np.ndarray]:
        """Pass ``chunks`` through while writing them to the cache (if it can be written).

        ``key`` may be a function, called once every chunk has passed: a track written while
        its routine is still being scheduled (its key depends on the whole timeline).
        """
        if self.root is None or not self._writable:
            yield from chunks
            return
        if callable(key):
            yield from self._write_stream(self.track_path("streaming"), chunks, sample_rate,
                                          rename_to=lambda: self.track_path(key()))
            return
        yield from self._write_stream(self.track_path(key), chunks, sample_rate)

    # -- entries -----------------------------------------------------------------------

    def _read(self, path: Path, sample_rate: int) -> np.ndarray | None:
        if not self._usable():
            return None
        reader = self._open(path, sample_rate)
        if reader is None:
            return None
        try:
            return reader.read(0, len(reader))
        except (FormatError, OSError):
            return self._corrupt(path)
        finally:
            reader.close()

    def _open(self, path: Path, sample_rate: int) -> EntryReader | None:
        """A reader of the valid entry at ``path`` (a damaged one is removed), or None."""
        try:
            reader = _open_checked(path, sample_rate)
        except FileNotFoundError:  # not there (or pruned by another run just now)
            return None
        except FormatError:
            return self._corrupt(path)
        except OSError as error:  # one warning for the folder, not one per entry
            self._unusable(error)
            return None
        _touch(path)
        return reader

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

    def _write_stream(self, path: Path, chunks: Iterable[np.ndarray], sample_rate: int, *,
                      rename_to: Callable[[], Path] | None = None) -> Iterator[np.ndarray]:
        """Yield every chunk; write them too while the cache allows (a failure only drops the entry)."""
        writer = entry = None
        self._usable()
        try:  # from the moment a temporary file may exist: whatever stops us removes it
            if self._writable:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    writer = atomic_write(path, fsync=False, sweep=False, rename_to=rename_to)
                    entry = EntryWriter(writer.__enter__())
                except OSError as error:
                    self._abandon(writer, error)
                    writer = entry = None
            for chunk in chunks:
                if entry is not None:
                    try:
                        entry.write(chunk)
                    except OSError as error:  # e.g. a full disk: drop the entry, keep going
                        self._abandon(writer, error)
                        writer = entry = None
                yield chunk
            if writer is not None and entry is not None:
                try:
                    entry.close(sample_rate)
                    writer.__exit__(None, None, None)
                    self._wrote = True
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

    def _unusable(self, error: OSError) -> None:
        """The folder cannot be used at all (a file in its path, no permission): one warning."""
        self._readable = False
        self._warn(f"cannot use cache folder {self.root} ({error.strerror or error}); continuing without caching")

    def _usable(self) -> bool:
        """Whether entries can be read; on first use, make the folder and tidy it (stale
        temporary files of killed runs, entries of an older format)."""
        if not self._swept and self.root is not None:
            self._swept = True
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                self._unusable(error)
                return False
            self.stats.stale_removed += self.remove_stale_temp_files()
            self.remove_old_format()
        return self._readable

    def trim(self, *, force: bool = False) -> PruneReport | None:
        """After a run: if it stored anything (or ``force``), prune the least recently used
        entries down to the cap (``max_bytes``).  Never fails the run: a problem is a warning."""
        if not (self._wrote or force) or self.max_bytes is None or self.root is None:
            return None
        self._wrote = False
        try:
            return self.prune(max_bytes=self.max_bytes)
        except VoicecoachError as error:
            self._warn(f"cannot keep cache folder {self.root} under its size cap: {error.message}")
            return None

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
                    if entry.name.endswith(EXTENSION) and not entry.name.startswith("."):
                        with contextlib.suppress(OSError):
                            yield kind, Path(entry.path), entry.stat(follow_symlinks=False)

    def remove_old_format(self) -> int:
        """Remove entries of cache format 1 (raw ``.pcm``; their keys are never asked for again)."""
        removed = 0
        for _, folder in self._folders():
            with contextlib.suppress(OSError), os.scandir(folder) as found:
                for entry in found:
                    if entry.name.endswith(OLD_EXTENSION) and not entry.name.startswith("."):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                            removed += 1
        return removed

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
        if remove:
            self.remove_old_format()
        return VerifyReport(checked, tuple(bad), remove, stale)

    def prune(self, *, max_bytes: int) -> PruneReport:
        """Remove the least recently used entries until the rest take at most ``max_bytes``."""
        self.remove_stale_temp_files()
        self.remove_old_format()
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
        removed += self.remove_old_format()
        self.remove_stale_temp_files()
        if (self.root / HASHES).is_dir():
            shutil.rmtree(self.root / HASHES, ignore_errors=True)
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

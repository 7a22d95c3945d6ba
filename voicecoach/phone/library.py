"""Export a library of routines for a phone: many routines at once, into one folder.

``export_library(paths, out_dir, ...)`` finds the routines (a folder means every routine in
it, include-only blocks skipped), gives each a stable file name (the slug of its title),
and renders the changed ones in parallel worker processes -- each with its own speech engine
-- in any format of the table in formats.py, whole with chapters or split into one track per step
with an ``.m3u8`` playlist, each with its cover (cover.py) and, for whole tracks, a
Podcasting 2.0 chapters file.

A manifest in the folder (``.voicecoach-export.json``) records what each output was made
from: a key of the routine's content, the settings, the engine and the format.  A routine
whose key and files are unchanged is not rendered or encoded again.  The manifest also keeps
what the feed needs (titles, durations, export times), so feeds are deterministic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import multiprocessing
import os
import re
import secrets
import shutil
import time
import traceback
import unicodedata
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .. import __version__, formats, sidecars
from ..cache import NOT_IN_KEY, Cache, digest, settings_key
from ..errors import Location, VoicecoachError, init_worker_signals, signals_held, stop_message, worker_job
from .cover import cover_png, routine_areas, routine_cover_png
from ..files import STALE_TEMP_S, TEMP_SUFFIX, atomic_write
from ..encode import TrackTags
from ..formats import FORMATS, FORMATS_VERSION, OutputFormat
from ..sidecars import PlaylistEntry
from ..model import Routine
from ..pipeline import Settings, build, plan, synthesize_ahead
from ..programs.format import is_program_file
from ..script import find_routine_files, is_block_file, load_routine
from ..sound import file_sha256

MANIFEST_NAME = ".voicecoach-export.json"
"""The manifest's file name in the export folder (hidden: the server never serves it)."""

MANIFEST_VERSION = 1
"""``version`` of the manifest schema."""

ALBUM = "voicecoach routines"
"""Album tag of whole tracks (the same as ``voicecoach compile``)."""

RESERVED_NAMES = frozenset({"feed", "index"})
"""Slugs a routine may not take: the feed's own files are ``feed.xml`` and ``feed.png``."""

_SLUG_MAX_CHARS = 60
_PRIVATE_FIELDS = {"loc", "locs", "path"}  # where things are written: no effect on the audio

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, called as routines finish."""


# ---------------------------------------------------------------------------------------
# The manifest


@dataclass(frozen=True)
class ManifestTrack:
    """One audio file of an export."""

    file: str
    """Path relative to the export folder, ``/``-separated."""
    title: str
    """Its title tag (the routine's, or the step's for a split track)."""
    duration_s: float
    """Exact length of its audio (samples / sample rate)."""
    length_samples: int
    """Length of its audio in samples."""
    number: int | None = None
    """Track number of a split track (1-based)."""
    chapters: str | None = None
    """Its Podcasting 2.0 chapters file, if any."""


@dataclass(frozen=True)
class ManifestEntry:
    """What one routine was exported to, and from what."""

    slug: str
    """The routine's file name stem in the folder."""
    source: str
    """The routine file, resolved (identifies the routine across runs)."""
    title: str
    """Routine title."""
    description: str
    """Routine description (the feed's episode text)."""
    language: str
    """Routine language."""
    areas: tuple[str, ...]
    """Face areas worked, in order of first appearance."""
    format: str
    """``mp3``, ``m4b`` or ``opus``."""
    split: bool
    """One track per step instead of one per routine."""
    key: str
    """Digest of everything the output depends on: unchanged key, unchanged output."""
    track_key: str
    """The pipeline's key of the mixed track."""
    exported_at: str
    """When it was encoded, UTC, ISO 8601 (the feed's publication date)."""
    sample_rate: int
    """Samples per second of the track."""
    length_samples: int
    """Length of the whole routine in samples."""
    steps: int
    """Chapters (expanded steps) of the routine."""
    cover: str
    """Its cover PNG."""
    tracks: tuple[ManifestTrack, ...]
    """Its audio files, in play order."""
    playlist: str | None = None
    """The ``.m3u8`` playlist of a split export."""
    files: dict[str, int] = field(default_factory=dict)
    """Every file written, with its size in bytes (checked before an export is reused)."""
    program: str | None = None
    """The program this is a day of (the feed is then serial)."""
    episode: int | None = None
    """The program day (the feed's episode number)."""

    @property
    def duration_s(self) -> float:
        return self.length_samples / self.sample_rate

    @property
    def exported_datetime(self) -> datetime:
        return datetime.fromisoformat(self.exported_at.replace("Z", "+00:00"))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ManifestEntry":
        values = dict(data)
        values["areas"] = tuple(values["areas"])
        values["tracks"] = tuple(ManifestTrack(**t) for t in values["tracks"])
        values["files"] = {str(k): int(v) for k, v in values.get("files", {}).items()}
        return cls(**values)


def manifest_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / MANIFEST_NAME


def read_manifest(out_dir: str | os.PathLike) -> dict[str, ManifestEntry]:
    """The folder's exports by slug; an absent or unreadable manifest reads as empty."""
    try:
        data = json.loads(manifest_path(out_dir).read_text(encoding="utf-8"))
        if data.get("version") != MANIFEST_VERSION:
            return {}
        return {slug: ManifestEntry.from_json(entry) for slug, entry in data["routines"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # nothing trusted: everything is exported again


def write_manifest(out_dir: str | os.PathLike, entries: dict[str, ManifestEntry]) -> None:
    data = {"version": MANIFEST_VERSION,
            "routines": {slug: entries[slug].to_json() for slug in sorted(entries)}}
    with atomic_write(manifest_path(out_dir)) as handle:
        handle.write((json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


# ---------------------------------------------------------------------------------------
# Names and keys


def slugify(text: str) -> str:
    """A readable ASCII file name stem: ``"Morning wake-up"`` -> ``"morning-wake-up"``.

    Text without any ASCII letter or digit (e.g. another script) gets ``routine-<hash>``.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = slug[:_SLUG_MAX_CHARS].rstrip("-")
    return slug or f"routine-{digest('slug', text)[:8]}"


def _content(value: Any) -> Any:
    """A routine as plain data without where things were written (moving a file or adding a
    comment changes no sound)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _content(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in _PRIVATE_FIELDS}
    if isinstance(value, (tuple, list)):
        return [_content(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Fraction):
        return str(value)
    return value


def routine_key(routine: Routine) -> str:
    """Digest of what a routine says (not where it is written)."""
    return digest("routine", _content(routine))


@dataclass(frozen=True)
class LibrarySettings:
    """Choices for a library export."""

    format: OutputFormat = FORMATS["mp3"]
    """Audio format of the tracks."""
    split: bool = False
    """One track per step, with a playlist, instead of one track with chapters."""
    jobs: int | None = field(default=None, metadata=NOT_IN_KEY)
    """Worker budget: routines rendered at once times speech workers each; ``None``: every core."""

    def cache_key(self, *inputs: object) -> str:
        """The key of an export of ``inputs`` (the routine and its settings) with these choices."""
        return settings_key("library-export", f"{__version__}|{FORMATS_VERSION}", self, *inputs)


def export_key(routine: Routine, *, settings: Settings, library: LibrarySettings,
               identify: Callable[[str, str, Path | None], str]) -> str:
    """Everything an export's files depend on; equal keys mean equal files.

    Like the pipeline's clip and track keys, it covers the engine the routine really uses
    (command line, else the routine's, else what ``auto`` picks) with its version and voice model, and the
    contents of its music and sound files, not just their names -- without synthesizing.
    ``identify(engine, voice, cache folder)`` names an engine's identity and voice (see :class:`_Identifier`).
    """
    resolved = settings.resolved(routine)
    folder = settings.cache_folder(routine) if settings.use_cache else None
    voice = identify(resolved.engine, settings.speech_settings(routine).voice_id, folder)  # type: ignore[arg-type]
    files = [("music", _content_hash(routine.music.file))] if routine.music is not None else []
    files += [(sound.tone.value, _content_hash(sound.file)) for sound in routine.sounds]
    return library.cache_key(routine_key(routine), resolved.cache_key(), voice,
                             resolved.render_settings(routine).cache_key(), files)


def _content_hash(path: str) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return f"unreadable:{path}"  # the export itself then reports the problem, located


class _Identifier:
    """``identify(engine, voice, cache folder)`` for the export keys, backed by one engine object
    per name, which then speak the library (:func:`synthesize_ahead`): a voice model new to the
    cache means its clips are not there either, so once there are routines to speak ahead
    (:meth:`warm_up`) that engine starts loading it while the rest of the routines are read."""

    def __init__(self) -> None:
        self.engines: dict[str, Any] = {}
        self._cold: dict[tuple[str, str], None] = {}  # (engine, voice) whose model the cache did not know
        self._started: set[tuple[str, str]] = set()
        self._warm = False
        self._caches: dict[str, Cache] = {}  # one per folder: opening one tidies the folder once

    def __call__(self, name: str, voice: str, folder: str | os.PathLike | None = None) -> str:
        from ..engines import engine_spec
        from ..speech import voice_identity

        engine = self.engines.get(name)
        if engine is None:
            engine = self.engines[name] = engine_spec(name).create()
        file_hash = None
        if folder is not None:
            cache = self._caches.get(os.fspath(folder))
            if cache is None:
                cache = self._caches[os.fspath(folder)] = Cache(folder)
            file_hash = lambda path: cache.file_sha256(path, on_miss=lambda: self._cold_voice(name, voice))  # noqa: E731
        try:
            return voice_identity(engine, voice, file_hash)  # as the clip keys say it
        except VoicecoachError:
            return f"{name}|unavailable|{voice}"  # the export itself then reports it, located

    def _cold_voice(self, name: str, voice: str) -> None:
        self._cold[(name, voice)] = None
        if self._warm:
            self.warm_up()

    def warm_up(self) -> None:
        """From now on, start the engines of cold voices (their servers load the models)."""
        self._warm = True
        for name, voice in self._cold:
            prestart = getattr(self.engines[name], "prestart", None)
            if prestart is not None and (name, voice) not in self._started:
                self._started.add((name, voice))
                prestart(voice)
        self._cold.clear()

    @property
    def started(self) -> bool:
        """Whether an engine was started (a model is loading)."""
        return bool(self._started)

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()


# ---------------------------------------------------------------------------------------
# Finding routines


def program_days(path: str | os.PathLike) -> list[tuple[Any, int, Routine]]:
    """``(program, day, session)`` for every practice day of the program file at ``path``."""
    from ..programs.days import day_routine
    from ..programs.format import load_program

    program = load_program(path)
    return [(program, day, day_routine(program, day)) for day in program.practice_days()]


# ---------------------------------------------------------------------------------------
# The report


class Outcome(enum.Enum):
    """What happened to one routine file."""

    EXPORTED = "exported"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class RoutineResult:
    """One routine file's outcome."""

    path: str
    """The file as the user named it (or as found in a folder)."""
    outcome: Outcome
    """Exported, unchanged (reused), failed or skipped."""
    message: str = ""
    """The error (``path:line:col: ...``) or why it was skipped."""
    entry: ManifestEntry | None = None
    """What it was exported to (exported or unchanged)."""
    warnings: tuple[str, ...] = ()
    """Problems worth a warning (e.g. a read-only cache)."""
    notes: tuple[str, ...] = ()
    """Worth knowing (e.g. an engine that fell back to another for the routine's language)."""
    stops_export: bool = False
    """The output folder cannot take more (a full disk): the whole export stops with ``message``."""


@dataclass(frozen=True)
class LibraryReport:
    """What ``export_library`` did, one result per routine file, in the order given."""

    out_dir: Path
    """The export folder."""
    results: tuple[RoutineResult, ...]
    """Per routine file."""
    replaced: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    """``(routine file, what it was exported as before, its files removed)`` for each routine
    whose earlier export in another format or layout (or under an old title) this one replaced:
    a routine has one export in a folder, so its feed has one episode."""

    def of(self, outcome: Outcome) -> list[RoutineResult]:
        return [r for r in self.results if r.outcome is outcome]

    @property
    def failed(self) -> bool:
        return any(r.outcome is Outcome.FAILED for r in self.results)


# ---------------------------------------------------------------------------------------
# One routine (runs in a worker process)


@dataclass(frozen=True)
class _Job:
    path: str
    routine: Routine
    slug: str
    key: str
    out_dir: str
    settings: Settings
    library: LibrarySettings
    exported_at: str
    source: str = ""
    program: str | None = None  # a program day: the program's title, its day and its length
    day: int | None = None
    days: int | None = None


def _export_one(job: _Job) -> RoutineResult:
    """Render, encode and write one routine; a user error becomes a failed result."""
    try:
        return _export(job)
    except VoicecoachError as error:  # cover, encoder: every failure names its routine
        return RoutineResult(job.path, Outcome.FAILED, error.at_file(job.path).format())
    except _CannotWrite as error:  # the folder, not the routine: no use going on with the others
        return RoutineResult(job.path, Outcome.FAILED, error.error.at_file(job.path).format(), stops_export=True)


def _cannot_write(out: Path, error: OSError, location: Location | None = None) -> VoicecoachError:
    return VoicecoachError(f"cannot write into {str(out)!r}: {error.strerror or error}", location=location,
                           hint="free some disk space, or export to another folder with -d")


class _CannotWrite(Exception):
    """The output folder refused a write (full disk, quota, read-only): carries the user error."""

    def __init__(self, out: Path, error: OSError) -> None:
        super().__init__(str(error))
        self.error = _cannot_write(out, error)


@contextlib.contextmanager
def _staging(out: Path, slug: str) -> Iterator[Path]:
    """A hidden folder in ``out`` that one routine's files are written into, then moved into place
    together by :func:`_publish`; removed whatever happens.  A failure half-way (a full disk)
    so leaves the previous export of the routine as it was.  An OSError becomes _CannotWrite."""
    stage = out / f".{slug}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
    try:
        stage.mkdir()
        yield stage
    except OSError as error:
        raise _CannotWrite(out, error) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out: Path, names: Sequence[str]) -> None:
    """Move the staged files into ``out`` (renames in one filesystem: no space needed)."""
    for name in names:
        (out / name).parent.mkdir(exist_ok=True)
        os.replace(stage / name, out / name)


def _remove_stale_staging(out: Path, *, max_age_s: float = STALE_TEMP_S) -> None:
    """Remove staging folders a killed export left (once stale: a younger one may be in use)."""
    limit = time.time() - max_age_s
    with contextlib.suppress(OSError), os.scandir(out) as entries:
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX) and entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < limit:
                        shutil.rmtree(entry.path)


def _warm_worker() -> None:
    """In a new worker: import what exporting needs before the first routine comes."""
    import lameenc  # noqa: F401
    import mutagen.id3  # noqa: F401
    from PIL import Image, ImageDraw  # noqa: F401


def _export_in_worker(job: _Job) -> RoutineResult:
    """``_export_one`` in a worker process: stopped by a signal, it reports the routine failed (its
    temporary files are gone by then); the command, signalled too, stops as it does."""
    try:
        with worker_job():
            return _export_one(job)
    except KeyboardInterrupt as stop:
        message, _ = stop_message(stop)
        return RoutineResult(job.path, Outcome.FAILED, f"{Location(job.path)}: the export worker was stopped "
                             f"({message.rstrip('.').lower()}); run the export again")


def _export(job: _Job) -> RoutineResult:
    out = Path(job.out_dir)
    fmt = job.library.format
    result = build(job.routine, settings=job.settings)
    timeline = result.timeline
    routine = job.routine
    cover_name = f"{job.slug}.png"
    if job.day is None:
        cover = routine_cover_png(routine)
    else:  # the program's cover with the day number
        cover = cover_png(f"Day {job.day}: {job.program}", areas=routine_areas(routine),
                          label=f"voicecoach - day {job.day} of {job.days}")
    tracks: list[ManifestTrack] = []
    playlist = None
    with _staging(out, job.slug) as stage:
        with atomic_write(stage / cover_name) as handle:
            handle.write(cover)
        if not job.library.split:
            name = f"{job.slug}{fmt.extension}"
            chapters_name = f"{job.slug}.chapters.json"
            # The track streams from the mixer (or the track cache) into the encoder: memory stays
            # flat.  It is not kept in the cache: the export is (its manifest), and a player mixes
            # from the cached clips as it goes.
            formats.write_track(result.chunks(store=False), stage / name, fmt=fmt, timeline=timeline,
                                tags=TrackTags(title=routine.title, album=ALBUM, cover_png=cover),
                                mp3_bitrate_kbps=job.settings.bitrate_kbps, mp3_quality=job.settings.mp3_quality)
            sidecars.write_podcast_chapters(timeline, stage / chapters_name)
            tracks.append(ManifestTrack(name, routine.title, timeline.duration_s, timeline.length_samples,
                                        chapters=chapters_name))
        else:
            parts = formats.split_parts(timeline)
            (stage / job.slug).mkdir()
            width = max(2, len(str(len(parts))))
            for part, part_chunks in zip(parts, formats.split_stream(result.chunks(store=False), parts)):
                name = f"{job.slug}/{part.number:0{width}d}-{slugify(part.chapter.title)}{fmt.extension}"
                tags = TrackTags(title=part.chapter.title, album=routine.title, track=(part.number, len(parts)),
                                 cover_png=cover)
                formats.write_track(part_chunks, stage / name, fmt=fmt, timeline=part.timeline, tags=tags,
                                    mp3_bitrate_kbps=job.settings.bitrate_kbps, mp3_quality=job.settings.mp3_quality)
                tracks.append(ManifestTrack(name, part.chapter.title, part.timeline.duration_s,
                                            part.timeline.length_samples, number=part.number))
            playlist = f"{job.slug}.m3u8"
            sidecars.write_m3u8([PlaylistEntry(t.file, t.title, t.duration_s) for t in tracks], stage / playlist,
                                title=routine.title)
        names = [cover_name, *(t.file for t in tracks), *(t.chapters for t in tracks if t.chapters)]
        if playlist:
            names.append(playlist)
        sizes = {n: (stage / n).stat().st_size for n in names}
        _publish(stage, out, names)
    entry = ManifestEntry(
        slug=job.slug, source=job.source or os.path.realpath(job.path), title=routine.title, description=routine.description,
        language=routine.language, areas=tuple(a.value for a in routine_areas(routine)), format=fmt.name,
        split=job.library.split, key=job.key, track_key=result.track_key, exported_at=job.exported_at,
        sample_rate=timeline.sample_rate, length_samples=timeline.length_samples, steps=len(timeline.chapters),
        cover=cover_name, tracks=tuple(tracks), playlist=playlist, files=sizes,
        program=job.program, episode=job.day,
    )
    return RoutineResult(job.path, Outcome.EXPORTED, entry=entry, warnings=tuple(result.cache.stats.warnings),
                         notes=result.notes)


# ---------------------------------------------------------------------------------------
# The library


def _export_time(now: datetime | None) -> str:
    """UTC to the second; ``$SOURCE_DATE_EPOCH`` (reproducible builds) wins over the clock."""
    if now is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
        now = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch.isdigit() else datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _entry_intact(out_dir: Path, entry: ManifestEntry) -> bool:
    try:
        return all((out_dir / name).stat().st_size == size for name, size in entry.files.items())
    except OSError:
        return False


def _prepare_out_dir(out_dir: Path) -> bool:
    """Check (or create) the output folder; whether it was created."""
    if out_dir.exists() and not out_dir.is_dir():
        raise VoicecoachError(f"{str(out_dir)!r} is a file, not a folder", hint="give a folder with -d")
    if not out_dir.exists():
        if not out_dir.parent.is_dir():
            raise VoicecoachError(f"folder {str(out_dir.parent)!r} does not exist", hint="create it first")
        try:
            out_dir.mkdir()
        except OSError as error:
            raise _cannot_write(out_dir.parent, error) from None
        return True
    if not os.access(out_dir, os.W_OK):
        raise VoicecoachError(f"output folder {str(out_dir)!r} is not writable", hint="choose another -d folder")
    return False


def _assign_slug(title: str, source: str, taken: dict[str, str]) -> str:
    """The title's slug, or ``slug-2``, ``-3``... when another routine file already has it."""
    base = slugify(title)
    slug, n = base, 1
    while slug in RESERVED_NAMES or taken.get(slug, source) != source:
        n += 1
        slug = f"{base}-{n}"
    taken[slug] = source
    return slug


def _remove_files(out_dir: Path, names: Iterable[str]) -> None:
    """Delete files we wrote earlier (only names from our manifest, only inside ``out_dir``)."""
    root = os.path.realpath(out_dir)
    folders = set()
    for name in names:
        path = os.path.realpath(out_dir / name)
        if os.path.commonpath([root, path]) != root or path == root:
            continue
        with contextlib.suppress(OSError):
            os.unlink(path)
        if "/" in name:
            folders.add(os.path.dirname(path))
    for folder in folders:
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # only if empty


def export_library(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    settings: Settings = Settings(),
    library: LibrarySettings = LibrarySettings(),
    now: datetime | None = None,
    progress: Progress | None = None,
) -> LibraryReport:
    """Export every routine of ``paths`` (files or folders) into ``out_dir``.

    A routine that fails (bad file, speech that does not fit) is reported with its location
    and the others still export.  Only changed routines are rendered, in parallel.
    """
    identify = _Identifier()
    try:
        return _export_library(paths, out_dir, settings=settings, library=library, now=now, progress=progress,
                               identify=identify)
    finally:
        identify.close()  # a speech server started early ends with the export, however it ends


def _export_library(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, settings: Settings,
                    library: LibrarySettings, now: datetime | None, progress: Progress | None,
                    identify: _Identifier) -> LibraryReport:
    out = Path(out_dir)
    created = _prepare_out_dir(out)
    _remove_stale_staging(out)
    manifest = read_manifest(out)
    taken = {slug: entry.source for slug, entry in manifest.items()}
    exported_at = _export_time(now)
    results: dict[int, RoutineResult] = {}
    jobs: dict[int, _Job] = {}
    files = find_routine_files(paths)
    named = {os.path.realpath(p) for p in paths if not Path(p).is_dir()}
    if len(files) > 1:
        # Several routines are spoken ahead (below): a voice new to the cache starts loading as
        # soon as it is met, while the other files are read (if only one routine is left to
        # export, its speech is made ahead too, by that engine).
        identify.warm_up()
    index = 0
    for path in files:
        shown = os.fspath(path)
        index += 1
        if path.is_file() and is_block_file(path):
            results[index] = RoutineResult(shown, Outcome.SKIPPED,
                                           "an include-only block (no 'routine:'), not a routine to export")
            continue
        if path.is_file() and is_program_file(path):
            if os.path.realpath(path) not in named:
                results[index] = RoutineResult(shown, Outcome.SKIPPED, "a program: export it by name, one file "
                                               f"per day: voicecoach export {shown} -d DIR")
                continue
            try:
                days = program_days(path)
            except VoicecoachError as error:
                results[index] = RoutineResult(shown, Outcome.FAILED, error.at_file(shown).format())
                continue
            for program, day, routine in days:
                index += 1
                width = max(2, len(str(program.days)))
                slug = f"day-{day:0{width}d}-{slugify(program.title)}"
                source = f"{os.path.realpath(path)}#day-{day}"
                taken[slug] = source
                key = digest("program-day", export_key(routine, settings=settings, library=library,
                                                       identify=identify), program.title, day, program.days)
                old = manifest.get(slug)
                if old is not None and old.key == key and _entry_intact(out, old):
                    results[index] = RoutineResult(shown, Outcome.UNCHANGED, entry=old)
                    continue
                jobs[index] = _Job(shown, routine, slug, key, os.fspath(out), settings, library, exported_at,
                                   source=source, program=program.title, day=day, days=program.days)
                if len(jobs) > 1:
                    identify.warm_up()  # the library is spoken ahead (below)
            continue
        try:
            routine = load_routine(path)
        except VoicecoachError as error:
            results[index] = RoutineResult(shown, Outcome.FAILED, error.at_file(shown).format())
            continue
        source = os.path.realpath(path)
        slug = _assign_slug(routine.title, source, taken)
        try:
            note = settings.engine_choice(routine).note  # --strict-engine: an error for this routine
            key = export_key(routine, settings=settings, library=library, identify=identify)
        except VoicecoachError as error:
            results[index] = RoutineResult(shown, Outcome.FAILED, error.at_file(shown).format())
            continue
        old = manifest.get(slug)
        if old is not None and old.key == key and _entry_intact(out, old):
            results[index] = RoutineResult(shown, Outcome.UNCHANGED, entry=old,
                                           notes=(f"{routine.path}: {note}",) if note else ())
            continue
        jobs[index] = _Job(shown, routine, slug, key, os.fspath(out), settings, library, exported_at)
        if len(jobs) > 1:
            identify.warm_up()  # the library is spoken ahead (below)

    budget = library.jobs or settings.jobs or os.cpu_count() or 1
    workers = max(1, min(budget, len(jobs)))
    speech_jobs = max(1, budget // workers)
    pool = None
    if workers > 1:
        # The workers start now (spawn: a fresh interpreter each, safe whatever threads the
        # parent runs), so their imports fill the cores while the speech servers load, and
        # they are ready when the speech is.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker_signals)
        with signals_held():  # the workers start as they are submitted
            for _ in range(workers):
                pool.submit(_warm_worker)
    # The order the workers take the routines in (by estimated length: no speech needed) is
    # worked out while the speech is made (from its first clip: before, this thread would hold
    # up the main one, which starts the speech), not after it, when the cores would wait for it.
    ordering = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicecoach-order")
    longest: Future | None = None

    def speech_progress(stage: str, done: int, total: int) -> None:
        nonlocal longest
        if longest is None and workers > 1:
            longest = ordering.submit(_longest_first, jobs)
        if progress:
            progress(stage, done, total)

    try:
        if len(jobs) > 1 or identify.started:
            # Every routine's speech first, in one batch per voice: each model loads once, shared
            # phrases are made once, every core synthesizes to the end; the workers then only mix
            # and encode, from the cache.  (One routine too, if its voice is already loading.)
            synthesize_ahead([(job.routine, job.settings) for job in jobs.values()], jobs=budget,
                             progress=speech_progress, engines=identify.engines)
        if longest is None and workers > 1:
            longest = ordering.submit(_longest_first, jobs)
        ordered = longest.result() if longest is not None else list(jobs.items())
    except BaseException:  # Ctrl-C, SIGTERM: the idle workers go too
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        ordering.shutdown(wait=False)
        identify.close()
    jobs = {i: dataclasses.replace(j, settings=dataclasses.replace(j.settings, jobs=speech_jobs)) for i, j in ordered}
    bug: BaseException | None = None
    done = 0
    if progress and jobs:
        progress("export", 0, len(jobs))
    if workers == 1:
        for index, job in jobs.items():
            try:
                results[index] = _export_one(job)
            except Exception as error:  # a bug: record what is done first, then raise it
                bug = bug or error
                results[index] = RoutineResult(job.path, Outcome.FAILED,
                                               f"{Location(job.path)}: internal error: {error!r}")
            done += 1
            if progress:
                progress("export", done, len(jobs))
            if results[index].stops_export:
                break
    else:
        assert pool is not None
        try:
            with signals_held():  # the workers start as they are submitted
                futures = {pool.submit(_export_in_worker, job): index for index, job in jobs.items()}
            for future in as_completed(futures):
                index = futures[future]
                path = jobs[index].path
                try:
                    results[index] = future.result()
                except BrokenProcessPool:
                    results[index] = RoutineResult(path, Outcome.FAILED,
                                                   f"{Location(path)}: the export worker stopped unexpectedly; "
                                                   "run the export again (with fewer --jobs if memory is short)")
                except Exception as error:
                    bug = bug or error
                    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
                    results[index] = RoutineResult(path, Outcome.FAILED, f"{Location(path)}: internal error: {detail}")
                done += 1
                if progress:
                    progress("export", done, len(jobs))
                if results[index].stops_export:  # the others would fail the same way
                    pool.shutdown(wait=True, cancel_futures=True)
                    break
        except BaseException:
            # Ctrl-C or SIGTERM: drop the queued routines, let the running ones finish (their
            # files are written atomically), and remember what is done before giving up.
            pool.shutdown(wait=True, cancel_futures=True)
            _update_manifest(out, manifest, [results[i] for i in sorted(results)])
            raise
        pool.shutdown(wait=True)

    finished = [results[i] for i in sorted(results)]
    if settings.use_cache:  # each routine's cache (a project's, or the user's), back under its cap
        for folder in sorted({job.settings.cache_folder(job.routine) for job in jobs.values()}):
            Cache(folder).trim(force=True)
    stop = next((r for r in finished if r.stops_export), None)
    if stop is not None:
        # One line, exit 2: what was exported before the disk filled stays recorded, nothing else changes.
        with contextlib.suppress(OSError):
            if any(r.outcome is Outcome.EXPORTED for r in finished):
                _update_manifest(out, manifest, finished)
            elif created:
                out.rmdir()  # only if empty: the folder this run made for nothing
        raise VoicecoachError(stop.message)
    try:
        replaced = _update_manifest(out, manifest, finished)
    except OSError as error:
        raise _cannot_write(out, error, Location(str(manifest_path(out)))) from None
    if bug is not None:
        raise bug
    return LibraryReport(out, tuple(finished), tuple(replaced))


def _longest_first(jobs: dict[int, _Job]) -> list[tuple[int, _Job]]:
    """The jobs, the longest routine first (its estimated length): the workers' last jobs are
    short, so no core idles long at the end.  Results keep the routines' order regardless."""
    def seconds(job: _Job) -> float:
        try:
            return plan(job.routine, settings=job.settings).duration_s
        except VoicecoachError:
            return 0.0  # it fails when built, and says why

    return sorted(jobs.items(), key=lambda item: -seconds(item[1]))


def _update_manifest(out: Path, manifest: dict[str, ManifestEntry],
                     results: list[RoutineResult]) -> list[tuple[str, str, tuple[str, ...]]]:
    """Record the new exports; delete the files of what they replace (older format or layout,
    fewer steps, an old title of the same routine file).  Returns what was replaced in another
    format or layout, or under another name (see :attr:`LibraryReport.replaced`)."""
    updated = dict(manifest)
    stale: set[str] = set()
    replaced: list[tuple[str, str, set[str]]] = []
    for result in results:
        entry = result.entry
        if result.outcome is not Outcome.EXPORTED or entry is None:
            continue
        for slug, old in manifest.items():
            if slug == entry.slug or old.source == entry.source:
                stale.update(old.files)
                if (old.format, old.split, old.slug) != (entry.format, entry.split, entry.slug):
                    layout = f"{old.format}{' --split' if old.split else ''}"
                    replaced.append((result.path, layout, set(old.files)))
                if slug != entry.slug:
                    updated.pop(slug, None)
        updated[entry.slug] = entry
    kept = {name for entry in updated.values() for name in entry.files}
    _remove_files(out, sorted(stale - kept))
    if updated != manifest or not manifest_path(out).exists():
        write_manifest(out, updated)
    return [(path, layout, tuple(sorted(files - kept))) for path, layout, files in replaced if files - kept]


__all__ = [
    "ALBUM",
    "MANIFEST_NAME",
    "LibraryReport",
    "LibrarySettings",
    "ManifestEntry",
    "ManifestTrack",
    "Outcome",
    "RoutineResult",
    "export_key",
    "export_library",
    "read_manifest",
    "routine_key",
    "slugify",
    "write_manifest",
]

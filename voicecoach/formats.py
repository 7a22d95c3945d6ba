"""Phone formats: a track as MP3, M4B (AAC) or Opus with chapters, tags and cover art.

MP3 goes through export.write_mp3 (lameenc, ID3 CHAP/CTOC).  M4B and Opus go through pydub
with the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships (no system ffmpeg): pydub gets
a memory map of the streamed PCM and ffmpeg encodes it, taking an M4B's chapters from an
ffmetadata file (``TIMEBASE=1/1000``); mutagen then adds the tags, the cover and an Opus file's chapter
comments, in memory, before the file is written atomically.  ffmpeg runs with ``bitexact``
flags, so the bytes are deterministic.

Also here: cutting a track into one piece per chapter (``--split``), the Podcasting 2.0 JSON
chapters file, and the ``.m3u8`` playlist of split tracks.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import functools
import io
import json
import mmap
import os
import re
import subprocess
import tempfile
import threading
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from . import export as exporting
from .errors import VoicecoachError
from .files import atomic_write
from .model import Chapter, Timeline

FORMATS_VERSION = "formats-2"  # 2: MP3s carry LAME's Info frame (gapless, exact length)
"""Part of every export's manifest key: bump it when an encoding changes, to re-encode."""

PODCAST_CHAPTERS_VERSION = "1.2.0"
"""``version`` of the Podcasting 2.0 JSON chapters written."""

AAC_BITRATE_KBPS = 64
"""M4B bitrate: plenty for mono speech."""

OPUS_BITRATE_KBPS = 32
"""Opus bitrate: transparent for mono speech."""

OPUS_SAMPLE_RATE = 48000
"""Opus works at 48 kHz; ffmpeg resamples the track to it."""


class AudioFormat(enum.Enum):
    """Formats ``voicecoach export`` writes."""

    MP3 = "mp3"
    M4B = "m4b"
    OPUS = "opus"

    @property
    def extension(self) -> str:
        return "." + self.value

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.extension]


CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".m4b": "audio/mp4",
    ".m4a": "audio/mp4",
    ".opus": "audio/ogg",
    ".ogg": "audio/ogg",
}
"""Audio content types by extension (feed enclosures, the server)."""

_FFMPEG_FORMATS = {AudioFormat.M4B: "ipod", AudioFormat.OPUS: "opus"}


@dataclass(frozen=True)
class TrackTags:
    """What a player shows about a track."""

    title: str
    """Track title (the routine's, or the step's for a split track)."""
    album: str
    """Album: the routine's title."""
    artist: str = "voicecoach"
    """Artist."""
    genre: str = "Speech"
    """Genre."""
    track: tuple[int, int] | None = None
    """``(number, total)`` of a split track."""
    cover_png: bytes | None = None
    """Front cover as PNG bytes."""


# ---------------------------------------------------------------------------------------
# ffmpeg through pydub


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped in the imageio-ffmpeg wheel."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:
        raise VoicecoachError(f"the bundled ffmpeg is missing: {error}",
                              hint="reinstall it: pip install --force-reinstall imageio-ffmpeg") from None


def _audio_segment():
    """pydub's AudioSegment, pointed at the bundled ffmpeg.

    Imported late: pydub warns at import that no system ffmpeg is on PATH (we never use one),
    and on Python < 3.13 its audioop import is deprecated.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydub import AudioSegment
    AudioSegment.converter = ffmpeg_exe()
    return AudioSegment


def _escape_ffmetadata(value: str) -> str:
    """ffmetadata values escape ``= ; # \\`` and newlines with a backslash."""
    return re.sub(r"([=;#\\\n])", r"\\\1", value)


ms = exporting._ms
"""Samples -> whole milliseconds, rounded exactly: the same as the MP3's ID3 chapters."""


def ffmetadata(timeline: Timeline) -> str:
    """The timeline's chapters as an ffmetadata file, in milliseconds (``TIMEBASE=1/1000``)."""
    rate = timeline.sample_rate
    lines = [";FFMETADATA1"]
    for chapter in timeline.chapters:
        lines += [
            "",
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={ms(chapter.start_sample, rate)}",
            f"END={ms(chapter.end_sample, rate)}",
            f"title={_escape_ffmetadata(chapter.title)}",
        ]
    return "\n".join(lines) + "\n"


_PYDUB_TEMP = threading.Lock()


@contextlib.contextmanager
def _pydub_temp_files_in(folder: str) -> Iterator[None]:
    """Make pydub put its temporary WAV and output files in ``folder``.

    pydub takes no folder for them and leaves them behind when ffmpeg fails; in our own
    temporary folder they go when it does, whatever happens.
    """
    from pydub import audio_segment

    with _PYDUB_TEMP:
        original = audio_segment.NamedTemporaryFile
        audio_segment.NamedTemporaryFile = functools.partial(original, dir=folder)
        try:
            yield
        finally:
            audio_segment.NamedTemporaryFile = original


def _ffmpeg_encode(chunks: Iterable[np.ndarray], fmt: AudioFormat, *, timeline: Timeline) -> bytes:
    """Encode PCM to M4B (with the timeline's chapters) or Opus; returns the file's bytes.

    The chunks are streamed to a file and pydub gets a memory map of it: an hour of PCM is
    never copied into the process's own memory, only paged through from disk.  Opus chapters
    are written by _tag_opus instead: ffmpeg 9 rounds the seconds of Vorbis ``CHAPTERxxx``
    comments (1.5 s comes out as 2.500).
    """
    if fmt is AudioFormat.M4B:
        codec = ["-c:a", "aac", "-b:a", f"{AAC_BITRATE_KBPS}k"]
    else:
        codec = ["-c:a", "libopus", "-b:a", f"{OPUS_BITRATE_KBPS}k", "-ar", str(OPUS_SAMPLE_RATE)]
    with tempfile.TemporaryDirectory(prefix="voicecoach-ffmpeg-") as folder, \
            open(os.path.join(folder, "track.pcm"), "w+b") as pcm:
        for chunk in chunks:
            pcm.write(np.ascontiguousarray(chunk, dtype="<i2").tobytes())
        pcm.flush()
        mapped = mmap.mmap(pcm.fileno(), 0, access=mmap.ACCESS_READ) if pcm.tell() else None
        segment = _audio_segment()(
            data=memoryview(mapped) if mapped is not None else b"",
            sample_width=2,
            frame_rate=timeline.sample_rate,
            channels=1,
        )
        meta = os.path.join(folder, "chapters.txt")
        with open(meta, "w", encoding="utf-8") as handle:
            handle.write(ffmetadata(timeline))
        # pydub puts these after its own "-f wav -i <pcm>": a second input, the chapters.
        parameters = [
            "-i", meta, "-map", "0:a", "-map_metadata", "1",
            "-map_chapters", "1" if fmt is AudioFormat.M4B else "-1", *codec,
            "-fflags", "+bitexact", "-flags:a", "+bitexact",  # no version strings or random serials
        ]
        out = io.BytesIO()
        try:
            with _pydub_temp_files_in(folder):
                segment.export(out, format=_FFMPEG_FORMATS[fmt], parameters=parameters)
        except Exception as error:  # pydub's CouldntEncodeError carries ffmpeg's output
            raise VoicecoachError(f"ffmpeg could not encode {fmt.value}: {str(error)[-400:]}",
                                  hint="reinstall imageio-ffmpeg, or export as --format mp3") from None
        finally:
            del segment
            # A failure's traceback may still point into the map: then it closes when that goes.
            with contextlib.suppress(BufferError):
                if mapped is not None:
                    mapped.close()
    return out.getvalue()


def _tag_m4b(data: bytes, tags: TrackTags) -> bytes:
    from mutagen.mp4 import MP4, MP4Cover

    buffer = io.BytesIO(data)
    audio = MP4(buffer)
    audio["\xa9nam"] = [tags.title]
    audio["\xa9alb"] = [tags.album]
    audio["\xa9ART"] = [tags.artist]
    audio["\xa9gen"] = [tags.genre]
    audio["stik"] = [2]  # media kind: audiobook
    if tags.track is not None:
        audio["trkn"] = [tags.track]
    if tags.cover_png is not None:
        audio["covr"] = [MP4Cover(tags.cover_png, imageformat=MP4Cover.FORMAT_PNG)]
    buffer.seek(0)
    audio.save(buffer)
    return buffer.getvalue()


def vorbis_chapters(timeline: Timeline) -> dict[str, str]:
    """Chapters as Vorbis comments (``CHAPTER001=00:01:02.500``, ``CHAPTER001NAME=...``)."""
    comments = {}
    for number, chapter in enumerate(timeline.chapters, 1):
        seconds, millis = divmod(ms(chapter.start_sample, timeline.sample_rate), 1000)
        minutes, seconds = divmod(seconds, 60)
        comments[f"CHAPTER{number:03d}"] = f"{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}.{millis:03d}"
        comments[f"CHAPTER{number:03d}NAME"] = chapter.title
    return comments


def _tag_opus(data: bytes, tags: TrackTags, timeline: Timeline) -> bytes:
    from mutagen.flac import Picture
    from mutagen.oggopus import OggOpus

    buffer = io.BytesIO(data)
    audio = OggOpus(buffer)
    for key, value in vorbis_chapters(timeline).items():
        audio[key] = [value]
    audio["title"] = [tags.title]
    audio["album"] = [tags.album]
    audio["artist"] = [tags.artist]
    audio["genre"] = [tags.genre]
    if tags.track is not None:
        audio["tracknumber"] = [str(tags.track[0])]
        audio["tracktotal"] = [str(tags.track[1])]
    if tags.cover_png is not None:
        picture = Picture()
        picture.type = 3  # front cover
        picture.mime = "image/png"
        picture.desc = "Cover"
        picture.data = tags.cover_png
        audio["metadata_block_picture"] = [base64.b64encode(picture.write()).decode("ascii")]
    buffer.seek(0)
    audio.save(buffer)
    return buffer.getvalue()


def write_track(
    samples: np.ndarray | Iterable[np.ndarray],
    path: str | os.PathLike,
    *,
    fmt: AudioFormat,
    timeline: Timeline,
    tags: TrackTags,
    mp3_bitrate_kbps: int = 96,
    mp3_quality: int = 5,
) -> None:
    """Write the track (int16 mono, the timeline's length) as one tagged file with chapters.

    ``samples`` is the whole track or, to keep memory flat, its chunks in order.  A track of
    another length is a ValueError, and nothing is written.
    """
    chunks = _checked_chunks([samples] if isinstance(samples, np.ndarray) else samples, timeline.length_samples)
    if fmt is AudioFormat.MP3:
        exporting.write_mp3(
            chunks, path, timeline=timeline, sample_rate=timeline.sample_rate,
            bitrate_kbps=mp3_bitrate_kbps, quality=mp3_quality, title=tags.title, album=tags.album,
            artist=tags.artist, cover_png=tags.cover_png, track=tags.track,
        )
        return
    data = _ffmpeg_encode(chunks, fmt, timeline=timeline)
    data = _tag_m4b(data, tags) if fmt is AudioFormat.M4B else _tag_opus(data, tags, timeline)
    with atomic_write(path) as handle:
        handle.write(data)


def read_chapters(path: str | os.PathLike) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, title)`` of each chapter in an audio file as ffmpeg reads it, by time.

    Runs the bundled ffmpeg (``ffmpeg -i FILE -f ffmetadata -``); used to check exports.
    """
    result = subprocess.run(
        # -copyts: the times as stored.  Without it ffmpeg moves chapters by the stream's start
        # time, which for an MP3 with an Info frame is the 1105 samples of encoder and decoder delay.
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-copyts", "-i", os.fspath(path),
         "-f", "ffmetadata", "-"],
        capture_output=True, check=False,
    )
    if result.returncode != 0:
        raise VoicecoachError(f"ffmpeg cannot read {os.fspath(path)!r}: "
                              f"{result.stderr.decode('utf-8', 'replace').strip()[-300:]}",
                              hint="check that the file is a complete audio file")
    return sorted(parse_ffmetadata_chapters(result.stdout.decode("utf-8")))  # by time, not file order


def parse_ffmetadata_chapters(text: str) -> list[tuple[float, float, str]]:
    """The ``[CHAPTER]`` sections of ffmetadata text as ``(start_s, end_s, title)``."""
    chapters: list[tuple[float, float, str]] = []
    section: dict[str, str] | None = None

    def close() -> None:
        if section is not None:
            num, den = section.get("TIMEBASE", "1/1000").split("/")
            base = Fraction(int(num), int(den))
            chapters.append((float(int(section["START"]) * base), float(int(section["END"]) * base),
                             section.get("title", "")))

    for raw, key, value in _ffmetadata_entries(text):
        if raw == "[CHAPTER]":
            close()
            section = {}
        elif raw.startswith("["):
            close()
            section = None
        elif section is not None and key is not None:
            section[key] = value
    close()
    return chapters


def _ffmetadata_entries(text: str) -> list[tuple[str, str | None, str]]:
    """``(raw line, key, value)`` per logical line; a backslash escapes the next character
    (a newline included), the first unescaped ``=`` splits key from value."""
    entries = []
    raw, key, current = "", None, ""
    chars = iter(text)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            raw += char + escaped
            current += escaped
        elif char == "\n":
            entries.append((raw, key, current))
            raw, key, current = "", None, ""
        elif char == "=" and key is None:
            raw += char
            key, current = current, ""
        else:
            raw += char
            current += char
    if raw:
        entries.append((raw, key, current))
    return [(r, k, v) if k is not None else (r, None, "") for r, k, v in entries]


# ---------------------------------------------------------------------------------------
# Split tracks, chapters JSON, playlists


@dataclass(frozen=True)
class Part:
    """One chapter's piece of a track (``--split``)."""

    number: int
    """1-based track number."""
    chapter: Chapter
    """The chapter it plays."""
    timeline: Timeline
    """A timeline of just this piece: its length, no chapters (the piece is one step)."""


def split_parts(timeline: Timeline) -> list[Part]:
    """One part per chapter, cut at the chapters' sample boundaries (they tile the track)."""
    parts = []
    for number, chapter in enumerate(timeline.chapters, 1):
        length = chapter.end_sample - chapter.start_sample
        piece = Timeline(routine=timeline.routine, sample_rate=timeline.sample_rate, length_samples=length,
                         events=(), chapters=())
        parts.append(Part(number, chapter, piece))
    return parts


def _checked_chunks(chunks: Iterable[np.ndarray], length: int, *, most: int = 1 << 16) -> Iterator[np.ndarray]:
    """``chunks`` as int16 pieces of at most ``most`` samples (encoders buffer less), raising
    ValueError at the end if they do not add up to ``length``: a writer then leaves nothing."""
    seen = 0
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.int16)
        for start in range(0, len(chunk), most):
            piece = chunk[start : start + most]
            seen += len(piece)
            if seen > length:
                break
            yield piece
        if seen > length:
            break
    if seen != length:
        raise ValueError(f"{'more than ' if seen > length else ''}{seen} samples for a timeline of {length}")


def split_stream(chunks: Iterable[np.ndarray], parts: Sequence[Part]) -> Iterator[Iterator[np.ndarray]]:
    """The track's chunks cut at the parts' boundaries: one stream of chunks per part, in order.

    Each part's stream must be read to its end before the next is taken, as writing the
    tracks one after another does; the whole track is never held at once.
    """
    source = iter(chunks)
    carry = np.zeros(0, dtype=np.int16)

    def part_stream(length: int) -> Iterator[np.ndarray]:
        nonlocal carry
        while length > 0:
            if not len(carry):
                carry = next(source, None)
                if carry is None:
                    raise ValueError("the track ends before its last chapter")
                carry = np.asarray(carry, dtype=np.int16)
                continue
            piece, carry = carry[:length], carry[length:]
            length -= len(piece)
            yield piece

    for part in parts:
        yield part_stream(part.chapter.end_sample - part.chapter.start_sample)


def podcast_chapters(timeline: Timeline) -> dict[str, Any]:
    """Podcasting 2.0 JSON chapters: start times in seconds (to the millisecond) and titles."""
    rate = timeline.sample_rate
    return {
        "version": PODCAST_CHAPTERS_VERSION,
        "chapters": [
            {"startTime": ms(c.start_sample, rate) / 1000, "endTime": ms(c.end_sample, rate) / 1000,
             "title": c.title}
            for c in timeline.chapters
        ],
    }


def write_podcast_chapters(timeline: Timeline, path: str | os.PathLike) -> None:
    """Write the Podcasting 2.0 chapters file (``application/json+chapters``)."""
    text = json.dumps(podcast_chapters(timeline), indent=1, ensure_ascii=False) + "\n"
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


@dataclass(frozen=True)
class PlaylistEntry:
    """One line of an ``.m3u8`` playlist."""

    path: str
    """Relative to the playlist, with ``/`` separators."""
    title: str
    """Shown by players."""
    duration_s: float
    """Length of the track."""


def m3u8(entries: Sequence[PlaylistEntry], *, title: str) -> str:
    """An extended M3U playlist in UTF-8 (``.m3u8``)."""
    clean = lambda s: " ".join(s.split())  # noqa: E731  (a newline would end the entry)
    lines = ["#EXTM3U", f"#PLAYLIST:{clean(title)}"]
    for entry in entries:
        lines.append(f"#EXTINF:{round(entry.duration_s)},{clean(entry.title)}")
        lines.append(entry.path)
    return "\n".join(lines) + "\n"


def write_m3u8(entries: Sequence[PlaylistEntry], path: str | os.PathLike, *, title: str) -> None:
    with atomic_write(path) as handle:
        handle.write(m3u8(entries, title=title).encode("utf-8"))


__all__ = [
    "AAC_BITRATE_KBPS",
    "CONTENT_TYPES",
    "FORMATS_VERSION",
    "OPUS_BITRATE_KBPS",
    "AudioFormat",
    "Part",
    "PlaylistEntry",
    "TrackTags",
    "split_stream",
    "ffmetadata",
    "ffmpeg_exe",
    "m3u8",
    "podcast_chapters",
    "read_chapters",
    "split_parts",
    "vorbis_chapters",
    "write_m3u8",
    "write_podcast_chapters",
    "write_track",
]

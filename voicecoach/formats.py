"""The output formats: one table, from which ``compile -o``, ``export --format``, the feed and the server read.

Each :class:`OutputFormat` says its extension, content type, how chapters and cover art are
written, whether it is encoded while the track is mixed (streaming) or after, and its encoder
(in :mod:`voicecoach.encode`).  Adding a format is one entry in :data:`FORMATS` and its encoder
function; the command line's choices, the error for an unknown extension and the feed's
content types follow from the table.

Also here: cutting a track into one piece per chapter (``export --split``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from . import encode
from .encode import EncodeSettings, LateTimeline, TrackTags
from .cache import NOT_IN_KEY
from .errors import VoicecoachError
from .model import Chapter, Timeline

FORMATS_VERSION = "formats-2"  # 2: MP3s carry LAME's Info frame (gapless, exact length)
"""Part of every export's manifest key: bump it when an encoding changes, to re-encode."""


class Encoder(Protocol):
    """Writes a track's int16 chunks (exactly the timeline's length) to ``path``, atomically.

    A streaming format's encoder also takes a :class:`~voicecoach.encode.LateTimeline`."""

    def __call__(self, chunks: Iterable[np.ndarray], path: str | os.PathLike, *, timeline: Timeline | LateTimeline,
                 tags: TrackTags, settings: EncodeSettings) -> None: ...


@dataclass(frozen=True)
class OutputFormat:
    """One row of the format table.  In a cache key it is its name and what it writes (the
    encoding itself is versioned by :data:`FORMATS_VERSION`)."""

    name: str
    """What ``export --format`` takes; the extension without its dot."""
    content_type: str
    """MIME type (feed enclosures, the server)."""
    description: str = field(metadata=NOT_IN_KEY)
    """A few words for help texts."""
    chapters: str
    """How the chapters are written ("" for a format without chapters)."""
    cover: str
    """How the cover art is written ("" for none)."""
    streaming: bool
    """Encoded chunk by chunk while the track is mixed; otherwise the PCM is spooled to a
    temporary file for ffmpeg first."""
    encoder: Encoder = field(metadata=NOT_IN_KEY)
    """The function that writes it."""

    @property
    def extension(self) -> str:
        return "." + self.name

    @property
    def has_chapters(self) -> bool:
        return bool(self.chapters)


def _wav(chunks: Iterable[np.ndarray], path: str | os.PathLike, *, timeline: Timeline | LateTimeline, tags: TrackTags,
         settings: EncodeSettings) -> None:
    encode.write_wav(chunks, path, sample_rate=timeline.sample_rate)


def _mp3(chunks: Iterable[np.ndarray], path: str | os.PathLike, *, timeline: Timeline | LateTimeline, tags: TrackTags,
         settings: EncodeSettings) -> None:
    encode.write_mp3(chunks, path, timeline=timeline, sample_rate=timeline.sample_rate,
                     bitrate_kbps=settings.mp3_bitrate_kbps, quality=settings.mp3_quality, title=tags.title,
                     album=tags.album, artist=tags.artist, cover_png=tags.cover_png, track=tags.track)


_TABLE = (
    OutputFormat("mp3", "audio/mpeg", "MP3, CBR (lameenc), plays everywhere",
                 chapters="ID3v2.4 CHAP frames and a CTOC", cover="ID3 APIC frame", streaming=True, encoder=_mp3),
    OutputFormat("m4b", "audio/mp4", "AAC audiobook (Apple Books and most podcast apps)",
                 chapters="MP4 chapter track (ffmpeg)", cover="MP4 covr atom", streaming=False,
                 encoder=encode.write_m4b),
    OutputFormat("opus", "audio/ogg", "Opus in Ogg, smallest",
                 chapters="Vorbis comments CHAPTERxxx", cover="METADATA_BLOCK_PICTURE comment", streaming=False,
                 encoder=encode.write_opus),
    OutputFormat("flac", "audio/flac", "FLAC, lossless",
                 chapters="Vorbis comments CHAPTERxxx", cover="FLAC PICTURE block", streaming=False,
                 encoder=encode.write_flac),
    OutputFormat("wav", "audio/wav", "16-bit PCM WAV, no tags",
                 chapters="", cover="", streaming=True, encoder=_wav),
)

FORMATS: dict[str, OutputFormat] = {f.name: f for f in _TABLE}
"""Every output format by name, in the order help texts list them."""

FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)
"""``mp3``, ``m4b``, ``opus``, ``flac``, ``wav``."""

CONTENT_TYPES: dict[str, str] = {
    **{f.extension: f.content_type for f in _TABLE},
    ".m4a": "audio/mp4",
    ".ogg": "audio/ogg",
}
"""Audio content types by extension (feed enclosures, the server): the table's and their aliases."""


def format_named(name: str) -> OutputFormat:
    """The format called ``name`` (``mp3``, ...); an unknown name is a user error listing them."""
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise VoicecoachError(f"unknown format {name!r}", hint=f"use one of: {', '.join(FORMAT_NAMES)}") from None


def format_for_path(path: str | os.PathLike) -> OutputFormat:
    """The format a file name asks for by its extension; an unknown one is a user error listing them."""
    suffix = Path(path).suffix
    found = FORMATS.get(suffix[1:].lower()) if suffix else None
    if found is None:
        raise VoicecoachError(
            f"cannot write {suffix or 'a file without extension'!r} output",
            hint=f"name the output file with one of: {', '.join(f.extension for f in _TABLE)}",
        )
    return found


def write_track(
    samples: np.ndarray | Iterable[np.ndarray],
    path: str | os.PathLike,
    *,
    fmt: OutputFormat,
    timeline: Timeline | LateTimeline,
    tags: TrackTags,
    mp3_bitrate_kbps: int = 96,
    mp3_quality: int = 5,
) -> None:
    """Write the track (int16 mono, the timeline's length) as one tagged file with chapters.

    A :class:`~voicecoach.encode.LateTimeline`: a streaming format is written while the
    timeline is still growing (its tags at the end); any other waits for it first.

    ``samples`` is the whole track or, to keep memory flat, its chunks in order.  A track of
    another length is a ValueError, and nothing is written.
    """
    pieces = [samples] if isinstance(samples, np.ndarray) else samples
    if isinstance(timeline, LateTimeline) and not fmt.streaming:
        timeline = timeline.resolve()  # such an encoder needs it first (it waits for the schedule)
    if isinstance(timeline, LateTimeline):
        late = timeline
        chunks = _checked_chunks(pieces, lambda: late.resolve().length_samples)
    else:
        chunks = _checked_chunks(pieces, timeline.length_samples)
    fmt.encoder(chunks, path, timeline=timeline, tags=tags,
                settings=EncodeSettings(mp3_bitrate_kbps=mp3_bitrate_kbps, mp3_quality=mp3_quality))


# ---------------------------------------------------------------------------------------
# Split tracks


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


def _checked_chunks(chunks: Iterable[np.ndarray], length: int | Callable[[], int], *,
                    most: int = 1 << 16) -> Iterator[np.ndarray]:
    """``chunks`` as int16 pieces of at most ``most`` samples (encoders buffer less), raising
    ValueError at the end if they do not add up to ``length``: a writer then leaves nothing.
    ``length`` may be a function, asked at the end (a timeline still growing meanwhile)."""
    seen = 0
    limit = float("inf") if callable(length) else length
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.int16)
        for start in range(0, len(chunk), most):
            piece = chunk[start : start + most]
            seen += len(piece)
            if seen > limit:
                break
            yield piece
        if seen > limit:
            break
    length = length() if callable(length) else length
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


__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "FORMATS_VERSION",
    "FORMAT_NAMES",
    "Encoder",
    "OutputFormat",
    "Part",
    "format_for_path",
    "format_named",
    "split_parts",
    "split_stream",
    "write_track",
]

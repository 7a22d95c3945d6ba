"""Encoders: a track's int16 chunks into an audio file with chapters, tags and cover art.

WAV and MP3 are encoded here chunk by chunk as the track is mixed (MP3: lameenc, with ID3v2.4
CHAP/CTOC chapters and LAME's Info frame).  M4B, Opus and FLAC go through pydub with the ffmpeg
binary that the ``imageio-ffmpeg`` wheel ships (no system ffmpeg): the PCM is spooled to a
temporary file, pydub gets a memory map of it and ffmpeg encodes it, taking an M4B's chapters
from an ffmetadata file (``TIMEBASE=1/1000``); mutagen then adds the tags, the cover and the
Vorbis ``CHAPTERxxx`` comments of Opus and FLAC, in memory.  ffmpeg runs with ``bitexact``
flags, so the bytes are deterministic.  Which format uses which encoder is the table in
:mod:`voicecoach.formats`.

Every writer writes through :func:`atomic_write`: the target appears complete or not at all,
and a failure (bad input, a full disk, an exception in the chunk iterator) leaves neither the
target nor a temporary file behind.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import mmap
import os
import re
import shutil
import subprocess
import tempfile
import threading
import warnings
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, Iterator

import lameenc
import numpy as np
from mutagen.id3 import APIC, CHAP, CTOC, ID3, TALB, TCON, TIT2, TLEN, TPE1, TRCK, CTOCFlags, PictureType

from .errors import VoicecoachError
from .files import atomic_write
from .lametag import InfoFrameWriter
from .model import Timeline
from .mp3stream import Mp3Stream

AAC_BITRATE_KBPS = 64
"""M4B bitrate asked of ffmpeg's AAC encoder (its average for speech with pauses is lower)."""

OPUS_BITRATE_KBPS = 32
"""Opus bitrate: transparent for mono speech."""

OPUS_SAMPLE_RATE = 48000
"""Opus works at 48 kHz; ffmpeg resamples the track to it."""

_NO_OFFSET = 0xFFFFFFFF  # CHAP byte offsets: "not given" (players seek by time)
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True)
class LateTimeline:
    """A timeline known only once its track has been written: a compile that encodes the
    track while later steps are still being synthesized (their clips decide the schedule)."""

    sample_rate: int
    """The track's sample rate (known from the start)."""
    resolve: Callable[[], Timeline]
    """The finished timeline, asked for once every chunk has been written."""


def _int16_bytes(chunk: np.ndarray) -> bytes:
    """Little-endian int16 bytes of a mono chunk; anything else is a programming error."""
    array = np.asarray(chunk)
    if array.ndim != 1 or array.dtype.kind != "i" or array.dtype.itemsize != 2:
        raise ValueError(f"expected a 1-D int16 chunk, got {array.dtype} with shape {array.shape}")
    return array.astype("<i2", copy=False).tobytes()


def ms(samples: int, sample_rate: int) -> int:
    """Samples -> whole milliseconds, rounded exactly (ties to even)."""
    return round(Fraction(samples * 1000, sample_rate))


def write_wav(chunks: Iterable[np.ndarray], path: str | os.PathLike, *, sample_rate: int) -> None:
    """16-bit mono PCM WAV, streamed chunk by chunk; the header is completed at the end."""
    with atomic_write(path) as handle:
        with wave.open(handle, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(sample_rate)
            for chunk in chunks:
                wav.writeframesraw(_int16_bytes(chunk))  # close() patches the sizes once


def id3_tag(
    timeline: Timeline,
    *,
    title: str,
    album: str | None = None,
    artist: str = "voicecoach",
    length_samples: int | None = None,
    cover_png: bytes | None = None,
    track: tuple[int, int] | None = None,
) -> bytes:
    """An ID3v2.4 tag: title, album, artist, genre, length, one CHAP per chapter and a CTOC.

    ``cover_png`` adds front-cover art (APIC); ``track`` = ``(n, total)`` adds TRCK ``n/total``.
    """
    sample_rate = timeline.sample_rate
    tag = ID3()
    tag.add(TIT2(encoding=3, text=[title]))
    if album is not None:
        tag.add(TALB(encoding=3, text=[album]))
    tag.add(TPE1(encoding=3, text=[artist]))
    tag.add(TCON(encoding=3, text=["Speech"]))
    if track is not None:
        tag.add(TRCK(encoding=3, text=[f"{track[0]}/{track[1]}"]))
    if cover_png is not None:
        tag.add(APIC(encoding=3, mime="image/png", type=PictureType.COVER_FRONT, desc="Cover", data=cover_png))
    length = timeline.length_samples if length_samples is None else length_samples
    tag.add(TLEN(encoding=3, text=[str(ms(length, sample_rate))]))
    ids = []
    for index, chapter in enumerate(timeline.chapters):
        element_id = f"chp{index}"
        ids.append(element_id)
        tag.add(
            CHAP(
                element_id=element_id,
                start_time=ms(chapter.start_sample, sample_rate),
                end_time=ms(chapter.end_sample, sample_rate),
                start_offset=_NO_OFFSET,
                end_offset=_NO_OFFSET,
                sub_frames=[TIT2(encoding=3, text=[chapter.title])],
            )
        )
    if ids:
        tag.add(
            CTOC(
                element_id="toc",
                flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=3, text=[timeline.routine])],
            )
        )
    buffer = io.BytesIO()
    tag.save(buffer, v2_version=4, padding=lambda info: 0)  # deterministic bytes, no slack
    return _chapters_in_time_order(buffer.getvalue())


def _syncsafe(data: bytes) -> int:
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def _chapters_in_time_order(tag: bytes) -> bytes:
    """Put the CHAP frames of a saved ID3v2.4 tag in time order.

    mutagen writes frames sorted by size, so chapters came out shuffled and players that
    list them in frame order (not by the CTOC) showed them out of order.  A v2.4 frame is a
    10-byte header with a syncsafe size; a CHAP body starts with its NUL-terminated id and
    then its start time (4 bytes, ms).  Only the order of whole frames changes.
    """
    size = _syncsafe(tag[6:10])
    frames, pos, end = [], 10, 10 + size
    while pos + 10 <= end and tag[pos : pos + 4] != b"\0\0\0\0":
        length = 10 + _syncsafe(tag[pos + 4 : pos + 8])
        frames.append(tag[pos : pos + length])
        pos += length
    chapters = [f for f in frames if f[:4] == b"CHAP"]

    def start_ms(frame: bytes) -> int:
        body = frame[10:]
        offset = body.index(b"\0") + 1
        return int.from_bytes(body[offset : offset + 4], "big")

    ordered = iter(sorted(chapters, key=start_ms))
    frames = [next(ordered) if f[:4] == b"CHAP" else f for f in frames]
    return tag[:10] + b"".join(frames) + tag[pos:]


def write_mp3(
    chunks: Iterable[np.ndarray],
    path: str | os.PathLike,
    *,
    timeline: Timeline | LateTimeline,
    sample_rate: int,
    bitrate_kbps: int = 96,
    title: str,
    album: str | None = None,
    artist: str = "voicecoach",
    quality: int = 5,
    cover_png: bytes | None = None,
    track: tuple[int, int] | None = None,
) -> None:
    """CBR mono MP3 (lameenc), tagged with ID3v2.4 chapters that match the timeline.

    The tag goes first, then LAME's Info frame (frame count, encoder delay and padding: decoders
    that read it play exactly the timeline's samples, so chapters land on their sample), then
    the frames as the encoder produces them: one streaming pass.  With a :class:`LateTimeline`
    the frames go to a temporary file first and the tag, made from the finished timeline, is
    written before them at the end: the same bytes.  CBR keeps seeking to a chapter time exact
    in every player.  ``quality`` is LAME's algorithm quality (0 best .. 9 fastest); 5 is
    LAME's "good quality, fast", ample for speech and tones at 96 kbps and twice as fast as 2.
    """
    if sample_rate != timeline.sample_rate:
        raise ValueError(f"sample_rate {sample_rate} differs from the timeline's {timeline.sample_rate}")
    if sample_rate not in _MP3_RATES:
        raise ValueError(f"MP3 cannot be {sample_rate} Hz; use one of {', '.join(map(str, _MP3_RATES))}")

    def lame() -> lameenc.Encoder:
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(bitrate_kbps)
        encoder.set_in_sample_rate(sample_rate)
        encoder.set_out_sample_rate(sample_rate)  # never let LAME pick another rate: chapter times stay true
        encoder.set_channels(1)
        encoder.set_quality(quality)
        return encoder

    # LAME for the sound; long exact silences become silent frames (mp3stream): a fifth less work
    encoder = Mp3Stream(lame, sample_rate=sample_rate, bitrate_kbps=bitrate_kbps)

    def tag(final: Timeline) -> bytes:
        return id3_tag(final, title=title, album=album, artist=artist, cover_png=cover_png, track=track)

    late = isinstance(timeline, LateTimeline)
    folder = os.path.dirname(os.path.abspath(path))
    with atomic_write(path) as handle, ThreadPoolExecutor(max_workers=1) as worker, \
            (tempfile.TemporaryFile(dir=folder) if late else contextlib.nullcontext(handle)) as body:
        if not late:
            handle.write(tag(timeline))
        frames, samples = InfoFrameWriter(body), 0
        # lameenc releases the GIL: encode one chunk while the next is being mixed.
        pending = None
        for chunk in chunks:
            data = np.frombuffer(_int16_bytes(chunk), dtype="<i2")  # a copy the mixer cannot change
            samples += len(data)
            if pending is not None:
                frames.write(pending.result())
            pending = worker.submit(encoder.encode, data)
        if pending is not None:
            frames.write(pending.result())
        frames.write(encoder.flush())
        frames.finish(samples=samples)
        if isinstance(timeline, LateTimeline):
            final = timeline.resolve()
            if final.length_samples != samples:
                raise ValueError(f"{samples} samples encoded for a timeline of {final.length_samples}")
            handle.write(tag(final))
            body.seek(0)
            shutil.copyfileobj(body, handle, 1 << 20)


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


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder choices the command line can change."""

    mp3_bitrate_kbps: int = 96
    """MP3 bitrate (constant, so chapter times stay exact to seek)."""
    mp3_quality: int = 5
    """LAME's algorithm quality, 0 (best, slowest) to 9."""


# ---------------------------------------------------------------------------------------
# ffmpeg through pydub: M4B, Opus, FLAC


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


def ffmetadata(timeline: Timeline) -> str:
    """The timeline's chapters as an ffmetadata file, in milliseconds (``TIMEBASE=1/1000``)."""
    sample_rate = timeline.sample_rate
    lines = [";FFMETADATA1"]
    for chapter in timeline.chapters:
        lines += [
            "",
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={ms(chapter.start_sample, sample_rate)}",
            f"END={ms(chapter.end_sample, sample_rate)}",
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


def ffmpeg_encode(chunks: Iterable[np.ndarray], *, timeline: Timeline, container: str, codec: list[str],
                  chapters: bool, name: str) -> bytes:
    """Encode the track's PCM with the bundled ffmpeg; returns the file's bytes.

    ``container`` is ffmpeg's muxer (``-f``), ``codec`` its codec options; ``chapters`` lets
    ffmpeg write the timeline's chapters (M4B).  The chunks are streamed to a file and pydub
    gets a memory map of it: an hour of PCM is never copied into the process's own memory,
    only paged through from disk.  Vorbis-comment chapters (Opus, FLAC) are written by
    :func:`vorbis_comments` instead: ffmpeg 9 rounds their seconds (1.5 s comes out as 2.500).
    """
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
            "-map_chapters", "1" if chapters else "-1", *codec,
            "-fflags", "+bitexact", "-flags:a", "+bitexact",  # no version strings or random serials
        ]
        out = io.BytesIO()
        try:
            with _pydub_temp_files_in(folder):
                segment.export(out, format=container, parameters=parameters)
        except Exception as error:  # pydub's CouldntEncodeError carries ffmpeg's output
            raise VoicecoachError(f"ffmpeg could not encode {name}: {str(error)[-400:]}",
                                  hint="reinstall imageio-ffmpeg, or export as --format mp3") from None
        finally:
            del segment
            # A failure's traceback may still point into the map: then it closes when that goes.
            with contextlib.suppress(BufferError):
                if mapped is not None:
                    mapped.close()
    return out.getvalue()


def _write_bytes(data: bytes, path: str | os.PathLike) -> None:
    with atomic_write(path) as handle:
        handle.write(data)


def write_m4b(chunks: Iterable[np.ndarray], path: str | os.PathLike, *, timeline: Timeline, tags: TrackTags,
              settings: EncodeSettings = EncodeSettings()) -> None:
    """AAC in an MPEG-4 audiobook (``.m4b``): ffmpeg's chapter track, iTunes tags, ``covr`` cover."""
    from mutagen.mp4 import MP4, MP4Cover

    data = ffmpeg_encode(chunks, timeline=timeline, container="ipod", chapters=True, name="m4b",
                         codec=["-c:a", "aac", "-b:a", f"{AAC_BITRATE_KBPS}k"])
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
    _write_bytes(buffer.getvalue(), path)


def vorbis_chapters(timeline: Timeline) -> dict[str, str]:
    """Chapters as Vorbis comments (``CHAPTER001=00:01:02.500``, ``CHAPTER001NAME=...``)."""
    comments = {}
    for number, chapter in enumerate(timeline.chapters, 1):
        seconds, millis = divmod(ms(chapter.start_sample, timeline.sample_rate), 1000)
        minutes, seconds = divmod(seconds, 60)
        comments[f"CHAPTER{number:03d}"] = f"{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}.{millis:03d}"
        comments[f"CHAPTER{number:03d}NAME"] = chapter.title
    return comments


def vorbis_comments(tags: TrackTags, timeline: Timeline) -> dict[str, str]:
    """The Vorbis comments of an Opus or FLAC file: chapters first, then the tags."""
    comments = vorbis_chapters(timeline)
    comments.update(title=tags.title, album=tags.album, artist=tags.artist, genre=tags.genre)
    if tags.track is not None:
        comments.update(tracknumber=str(tags.track[0]), tracktotal=str(tags.track[1]))
    return comments


def _cover_picture(png: bytes):
    from mutagen.flac import Picture

    picture = Picture()
    picture.type = 3  # front cover
    picture.mime = "image/png"
    picture.desc = "Cover"
    picture.data = png
    return picture


def write_opus(chunks: Iterable[np.ndarray], path: str | os.PathLike, *, timeline: Timeline, tags: TrackTags,
               settings: EncodeSettings = EncodeSettings()) -> None:
    """Opus in Ogg at 48 kHz: Vorbis-comment chapters and tags, a ``METADATA_BLOCK_PICTURE`` cover."""
    from mutagen.oggopus import OggOpus

    data = ffmpeg_encode(chunks, timeline=timeline, container="opus", chapters=False, name="opus",
                         codec=["-c:a", "libopus", "-b:a", f"{OPUS_BITRATE_KBPS}k", "-ar", str(OPUS_SAMPLE_RATE)])
    buffer = io.BytesIO(data)
    audio = OggOpus(buffer)
    for key, value in vorbis_comments(tags, timeline).items():
        audio[key] = [value]
    if tags.cover_png is not None:
        picture = _cover_picture(tags.cover_png).write()
        audio["metadata_block_picture"] = [base64.b64encode(picture).decode("ascii")]
    buffer.seek(0)
    audio.save(buffer)
    _write_bytes(buffer.getvalue(), path)


def write_flac(chunks: Iterable[np.ndarray], path: str | os.PathLike, *, timeline: Timeline, tags: TrackTags,
               settings: EncodeSettings = EncodeSettings()) -> None:
    """Lossless FLAC at the track's sample rate: Vorbis-comment chapters and tags, a PICTURE block cover."""
    from mutagen.flac import FLAC

    data = ffmpeg_encode(chunks, timeline=timeline, container="flac", chapters=False, name="flac",
                         codec=["-c:a", "flac"])
    buffer = io.BytesIO(data)
    audio = FLAC(buffer)
    for key, value in vorbis_comments(tags, timeline).items():
        audio[key] = [value]
    if tags.cover_png is not None:
        audio.add_picture(_cover_picture(tags.cover_png))
    buffer.seek(0)
    audio.save(buffer, padding=lambda info: 0)  # deterministic bytes, no slack
    _write_bytes(buffer.getvalue(), path)


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


__all__ = [
    "AAC_BITRATE_KBPS",
    "EncodeSettings",
    "OPUS_BITRATE_KBPS",
    "OPUS_SAMPLE_RATE",
    "TrackTags",
    "atomic_write",
    "ffmetadata",
    "ffmpeg_encode",
    "ffmpeg_exe",
    "id3_tag",
    "ms",
    "parse_ffmetadata_chapters",
    "read_chapters",
    "vorbis_chapters",
    "vorbis_comments",
    "write_flac",
    "write_m4b",
    "write_mp3",
    "write_opus",
    "write_wav",
]

"""Export: the track as WAV or MP3 (with chapters), the timeline as JSON, captions as WebVTT.

Every writer streams its input and writes through :func:`atomic_write`: the target appears
complete or not at all, and a failure (bad input, a full disk, an exception in the chunk
iterator) leaves neither the target nor a temporary file behind.
"""

from __future__ import annotations

import io
import json
import os
import wave
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any, Iterable

import lameenc
import numpy as np
from mutagen.id3 import APIC, CHAP, CTOC, ID3, TALB, TCON, TIT2, TLEN, TPE1, TRCK, CTOCFlags, PictureType

from .files import atomic_write
from .lametag import InfoFrameWriter
from .model import Chapter, Cue, Event, EventKind, Timeline, Tone

TIMELINE_JSON_VERSION = 1
"""``version`` of the timeline JSON schema."""

_NO_OFFSET = 0xFFFFFFFF  # CHAP byte offsets: "not given" (players seek by time)
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def _int16_bytes(chunk: np.ndarray) -> bytes:
    """Little-endian int16 bytes of a mono chunk; anything else is a programming error."""
    array = np.asarray(chunk)
    if array.ndim != 1 or array.dtype.kind != "i" or array.dtype.itemsize != 2:
        raise ValueError(f"expected a 1-D int16 chunk, got {array.dtype} with shape {array.shape}")
    return array.astype("<i2", copy=False).tobytes()


def _ms(samples: int, sample_rate: int) -> int:
    """Samples -> whole milliseconds, rounded exactly (ties to even)."""
    return round(Fraction(samples * 1000, sample_rate))


# ---------------------------------------------------------------------------------------
# Audio


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
    rate = timeline.sample_rate
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
    tag.add(TLEN(encoding=3, text=[str(_ms(length, rate))]))
    ids = []
    for index, chapter in enumerate(timeline.chapters):
        element_id = f"chp{index}"
        ids.append(element_id)
        tag.add(
            CHAP(
                element_id=element_id,
                start_time=_ms(chapter.start_sample, rate),
                end_time=_ms(chapter.end_sample, rate),
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
    timeline: Timeline,
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
    the frames as the encoder produces them: one streaming pass.  CBR keeps seeking to a
    chapter time exact in every player.  ``quality`` is LAME's
    algorithm quality (0 best .. 9 fastest); 5 is LAME's "good quality, fast", ample for
    speech and tones at 96 kbps and twice as fast as 2.
    """
    if sample_rate != timeline.sample_rate:
        raise ValueError(f"sample_rate {sample_rate} differs from the timeline's {timeline.sample_rate}")
    if sample_rate not in _MP3_RATES:
        raise ValueError(f"MP3 cannot be {sample_rate} Hz; use one of {', '.join(map(str, _MP3_RATES))}")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)  # never let LAME pick another rate: chapter times stay true
    encoder.set_channels(1)
    encoder.set_quality(quality)
    tag = id3_tag(timeline, title=title, album=album, artist=artist, cover_png=cover_png, track=track)
    with atomic_write(path) as handle, ThreadPoolExecutor(max_workers=1) as worker:
        handle.write(tag)
        frames, samples = InfoFrameWriter(handle), 0
        # lameenc releases the GIL: encode one chunk while the next is being mixed.
        pending = None
        for chunk in chunks:
            data = _int16_bytes(chunk)
            samples += len(data) // 2
            if pending is not None:
                frames.write(pending.result())
            pending = worker.submit(encoder.encode, data)
        if pending is not None:
            frames.write(pending.result())
        frames.write(encoder.flush())
        frames.finish(samples=samples)


# ---------------------------------------------------------------------------------------
# Timeline JSON


def timeline_to_json(timeline: Timeline) -> dict[str, Any]:
    """The timeline as plain data (schema version 1); times are float seconds, unrounded."""
    rate = timeline.sample_rate
    names: dict[int, str] = {}
    for chapter in timeline.chapters:
        names.setdefault(chapter.step, chapter.title)
    events = []
    for event in timeline.events:
        item: dict[str, Any] = {
            "kind": event.kind.value,
            "start_s": event.start_sample / rate,
            "end_s": event.end_sample / rate,
            "step": event.step,
            "step_name": names.get(event.step, ""),
            "cue": event.cue.value,
            "text": event.text if event.kind is EventKind.SPEECH else "",
        }
        if event.kind is EventKind.TONE:
            item["sound"] = event.tone.value if event.tone is not None else ""
        events.append(item)
    return {
        "version": TIMELINE_JSON_VERSION,
        "routine": timeline.routine,
        "sample_rate": rate,
        "duration_s": timeline.length_samples / rate,
        "chapters": [
            {"title": c.title, "step": c.step, "start_s": c.start_sample / rate, "end_s": c.end_sample / rate}
            for c in timeline.chapters
        ],
        "events": events,
    }


def timeline_from_json(data: dict[str, Any]) -> Timeline:
    """Rebuild a timeline from :func:`timeline_to_json` output (samples = round(seconds * rate)).

    What the schema does not carry comes back as defaults: event labels, and each chapter's
    kind, area and location.
    """
    if data.get("version") != TIMELINE_JSON_VERSION:
        raise ValueError(f"unsupported timeline JSON version {data.get('version')!r}")
    rate = int(data["sample_rate"])

    def samples(seconds: float) -> int:
        return round(seconds * rate)

    events = []
    for item in data["events"]:
        kind = EventKind(item["kind"])
        start = samples(item["start_s"])
        events.append(
            Event(
                kind=kind,
                cue=Cue(item["cue"]),
                start_sample=start,
                length_samples=samples(item["end_s"]) - start,
                step=int(item["step"]),
                text=item.get("text", ""),
                tone=Tone(item["sound"]) if kind is EventKind.TONE else None,
            )
        )
    chapters = [
        Chapter(title=c["title"], step=int(c["step"]), start_sample=samples(c["start_s"]), end_sample=samples(c["end_s"]))
        for c in data["chapters"]
    ]
    return Timeline(
        routine=data["routine"],
        sample_rate=rate,
        length_samples=samples(data["duration_s"]),
        events=tuple(events),
        chapters=tuple(chapters),
    )


def write_timeline_json(timeline: Timeline, path: str | os.PathLike) -> None:
    """The timeline JSON, indented by one space, keys in schema order, UTF-8."""
    text = json.dumps(timeline_to_json(timeline), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


# ---------------------------------------------------------------------------------------
# Captions


def _vtt_time(samples: int, sample_rate: int) -> str:
    ms = _ms(samples, sample_rate)
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _vtt_text(text: str) -> str:
    # Cue text is one line; "&", "<" and ">" are markup in WebVTT, and "-->" ends a timing line.
    flat = " ".join(text.split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def timeline_to_vtt(timeline: Timeline) -> str:
    """WebVTT captions of the speech events (one cue each, in timeline order)."""
    rate = timeline.sample_rate
    lines = ["WEBVTT", ""]
    for event in timeline.events:
        if event.kind is not EventKind.SPEECH or not event.text.strip():
            continue
        start, end = _ms(event.start_sample, rate), _ms(event.end_sample, rate)
        if end <= start:  # a cue must last; a sub-millisecond one cannot be shown anyway
            continue
        lines.append(f"{_vtt_time(event.start_sample, rate)} --> {_vtt_time(event.end_sample, rate)}")
        lines.append(_vtt_text(event.text))
        lines.append("")
    return "\n".join(lines)  # the final "" gives the trailing newline


def write_vtt(timeline: Timeline, path: str | os.PathLike) -> None:
    """Write :func:`timeline_to_vtt` as UTF-8."""
    text = timeline_to_vtt(timeline)
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


__all__ = [
    "TIMELINE_JSON_VERSION",
    "atomic_write",
    "id3_tag",
    "timeline_from_json",
    "timeline_to_json",
    "timeline_to_vtt",
    "write_mp3",
    "write_timeline_json",
    "write_vtt",
    "write_wav",
]

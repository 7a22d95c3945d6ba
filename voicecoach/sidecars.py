"""Files beside a track: the timeline as JSON, captions as WebVTT, Podcasting 2.0 chapters, playlists.

Each is written whole or not at all (:func:`voicecoach.files.atomic_write`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Sequence

from .encode import ms
from .files import atomic_write
from .model import Chapter, Cue, Event, EventKind, Timeline, Tone

TIMELINE_JSON_VERSION = 1
"""``version`` of the timeline JSON schema."""

PODCAST_CHAPTERS_VERSION = "1.2.0"
"""``version`` of the Podcasting 2.0 JSON chapters written."""


def timeline_to_json(timeline: Timeline) -> dict[str, Any]:
    """The timeline as plain data (schema version 1); times are float seconds, unrounded."""
    sample_rate = timeline.sample_rate
    names: dict[int, str] = {}
    for chapter in timeline.chapters:
        names.setdefault(chapter.step, chapter.title)
    events = []
    for event in timeline.events:
        item: dict[str, Any] = {
            "kind": event.kind.value,
            "start_s": event.start_sample / sample_rate,
            "end_s": event.end_sample / sample_rate,
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
        "sample_rate": sample_rate,
        "duration_s": timeline.length_samples / sample_rate,
        "chapters": [
            {"title": c.title, "step": c.step, "start_s": c.start_sample / sample_rate,
             "end_s": c.end_sample / sample_rate}
            for c in timeline.chapters
        ],
        "events": events,
    }


def timeline_from_json(data: dict[str, Any]) -> Timeline:
    """Rebuild a timeline from :func:`timeline_to_json` output (samples = round(seconds * sample_rate)).

    What the schema does not carry comes back as defaults: event labels, and each chapter's
    kind, area and location.
    """
    if data.get("version") != TIMELINE_JSON_VERSION:
        raise ValueError(f"unsupported timeline JSON version {data.get('version')!r}")
    sample_rate = int(data["sample_rate"])

    def samples(seconds: float) -> int:
        return round(seconds * sample_rate)

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
        sample_rate=sample_rate,
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
    seconds, millis = divmod(ms(samples, sample_rate), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _vtt_text(text: str) -> str:
    # Cue text is one line; "&", "<" and ">" are markup in WebVTT, and "-->" ends a timing line.
    flat = " ".join(text.split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def timeline_to_vtt(timeline: Timeline) -> str:
    """WebVTT captions of the speech events (one cue each, in timeline order)."""
    sample_rate = timeline.sample_rate
    lines = ["WEBVTT", ""]
    for event in timeline.events:
        if event.kind is not EventKind.SPEECH or not event.text.strip():
            continue
        start, end = ms(event.start_sample, sample_rate), ms(event.end_sample, sample_rate)
        if end <= start:  # a cue must last; a sub-millisecond one cannot be shown anyway
            continue
        lines.append(f"{_vtt_time(event.start_sample, sample_rate)} --> {_vtt_time(event.end_sample, sample_rate)}")
        lines.append(_vtt_text(event.text))
        lines.append("")
    return "\n".join(lines)  # the final "" gives the trailing newline


def write_vtt(timeline: Timeline, path: str | os.PathLike) -> None:
    """Write :func:`timeline_to_vtt` as UTF-8."""
    text = timeline_to_vtt(timeline)
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


# ---------------------------------------------------------------------------------------
# Podcast apps


def podcast_chapters(timeline: Timeline) -> dict[str, Any]:
    """Podcasting 2.0 JSON chapters: start times in seconds (to the millisecond) and titles."""
    sample_rate = timeline.sample_rate
    return {
        "version": PODCAST_CHAPTERS_VERSION,
        "chapters": [
            {"startTime": ms(c.start_sample, sample_rate) / 1000,
             "endTime": ms(c.end_sample, sample_rate) / 1000,
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
    "PODCAST_CHAPTERS_VERSION",
    "TIMELINE_JSON_VERSION",
    "PlaylistEntry",
    "m3u8",
    "podcast_chapters",
    "timeline_from_json",
    "timeline_to_json",
    "timeline_to_vtt",
    "write_m3u8",
    "write_podcast_chapters",
    "write_timeline_json",
    "write_vtt",
]

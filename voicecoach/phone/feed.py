"""A podcast feed over an export folder: RSS 2.0 with iTunes and Podcasting 2.0 tags.

A phone's podcast app subscribes to ``feed.xml`` and downloads the routines with their
chapters (Apple Podcasts shows MP3 chapters only for feed episodes).  Everything comes from
the export manifest -- titles, durations, export times -- and the files' sizes, so the same
folder and base URL always give the same bytes (no "now" anywhere).
"""

from __future__ import annotations

import email.utils
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

from ..cache import digest
from ..errors import VoicecoachError
from ..files import atomic_write
from ..formats import CONTENT_TYPES
from .library import ManifestEntry, read_manifest

FEED_NAME = "feed.xml"
"""The feed's file name in the export folder."""

FEED_COVER_NAME = "feed.png"
"""The show's cover in the export folder."""

CHAPTERS_TYPE = "application/json+chapters"
"""Content type of Podcasting 2.0 chapters files."""

ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
PSC_NS = "http://podlove.org/simple-chapters"
_NAMESPACES = {"itunes": ITUNES_NS, "podcast": PODCAST_NS, "atom": ATOM_NS, "psc": PSC_NS}

for _prefix, _uri in _NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)


@dataclass(frozen=True)
class FeedSettings:
    """What the feed says about the show."""

    base_url: str
    """Where the export folder is served, e.g. ``http://192.168.1.20:8000/``."""
    title: str = "voicecoach routines"
    """The show's title in the podcast app."""
    description: str = "Facial-fitness routines, spoken: exercises and massages, step by step."
    """The show's description."""
    author: str = "voicecoach"
    """Shown as the show's author."""


def normalize_base_url(url: str) -> str:
    """``http(s)://host[:port]/path/``, always ending with ``/``; anything else is refused."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise VoicecoachError(f"base URL {url!r} is not an http(s) address",
                              hint="write it like http://192.168.1.20:8000/")
    if parts.query or parts.fragment:
        raise VoicecoachError(f"base URL {url!r} has a query or fragment", hint="give just the folder's address")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{parts.netloc}{path}"


def _url(base_url: str, name: str) -> str:
    return base_url + quote(name, safe="/")


def _duration(seconds: float) -> str:
    """``itunes:duration`` as ``H:MM:SS``."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _sub(parent: ET.Element, tag: str, content: str | None = None, /, **attrs: str) -> ET.Element:
    """A child element; ``prefix:name`` tags are in that namespace."""
    prefix, _, local = tag.rpartition(":")
    element = ET.SubElement(parent, f"{{{_NAMESPACES[prefix]}}}{local}" if prefix else tag, attrs)
    if content is not None:
        element.text = content
    return element


@dataclass(frozen=True)
class Episode:
    """One audio file of the folder as a feed item."""

    entry: ManifestEntry
    """The routine it belongs to."""
    file: str
    """Its path in the folder."""
    title: str
    """Episode title."""
    duration_s: float
    """Its length."""
    size_bytes: int
    """Its size (the enclosure length)."""
    chapters: str | None
    """Its chapters file, if any."""
    order: int
    """Position within its routine (0 for a whole track)."""


def episodes(out_dir: str | os.PathLike) -> tuple[list[Episode], list[str]]:
    """Every exported audio file that exists, in a stable order, and the names found missing."""
    out = Path(out_dir)
    found: list[Episode] = []
    missing: list[str] = []
    manifest = read_manifest(out)
    # Program days in day order (serial: episode 1, 2, 3 ...), then routines by name.
    for slug in sorted(manifest, key=lambda s: (manifest[s].program is None, manifest[s].program or "",
                                                manifest[s].episode or 0, s)):
        entry = manifest[slug]
        for order, track in enumerate(entry.tracks):
            path = out / track.file
            if not path.is_file():
                missing.append(track.file)
                continue
            title = entry.title if not entry.split else f"{entry.title} \u2013 {track.number}. {track.title}"
            chapters = track.chapters if track.chapters and (out / track.chapters).is_file() else None
            found.append(Episode(entry, track.file, title, track.duration_s, path.stat().st_size, chapters, order))
    return found, missing


def build_feed(out_dir: str | os.PathLike, *, settings: FeedSettings) -> tuple[bytes, list[str]]:
    """The RSS feed's bytes over the folder's exports, and the exported files found missing."""
    base = normalize_base_url(settings.base_url)
    items, missing = episodes(out_dir)
    if not items:
        raise VoicecoachError(f"no exported tracks in {os.fspath(out_dir)!r}",
                              hint="run `voicecoach export ROUTINE... -d DIR` first")
    rss = ET.Element("rss", {"version": "2.0"})  # ElementTree declares the namespaces used
    channel = _sub(rss, "channel")
    _sub(channel, "title", settings.title)
    _sub(channel, "link", base)
    _sub(channel, "description", settings.description)
    languages = sorted({item.entry.language for item in items})
    _sub(channel, "language", languages[0] if len(languages) == 1 else "en")
    _sub(channel, "generator", "voicecoach")
    newest = max(item.entry.exported_datetime for item in items)
    _sub(channel, "lastBuildDate", email.utils.format_datetime(newest, usegmt=True))
    _sub(channel, "atom:link", href=_url(base, FEED_NAME), rel="self", type="application/rss+xml")
    image = _sub(channel, "image")
    _sub(image, "url", _url(base, FEED_COVER_NAME))
    _sub(image, "title", settings.title)
    _sub(image, "link", base)
    _sub(channel, "itunes:image", href=_url(base, FEED_COVER_NAME))
    _sub(channel, "itunes:author", settings.author)
    _sub(channel, "itunes:summary", settings.description)
    serial = any(item.entry.episode is not None for item in items)
    _sub(channel, "itunes:type", "serial" if serial else "episodic")  # serial: apps play day 1, 2, 3 ...
    _sub(channel, "itunes:explicit", "false")
    category = _sub(channel, "itunes:category", text="Health & Fitness")
    _sub(category, "itunes:category", text="Fitness")
    _sub(channel, "podcast:locked", "yes")
    _sub(channel, "podcast:guid", _podcast_guid(settings.title))

    for item in items:
        entry = item.entry
        element = _sub(channel, "item")
        _sub(element, "title", item.title)
        _sub(element, "description", entry.description or entry.title)
        _sub(element, "itunes:summary", entry.description or entry.title)
        _sub(element, "enclosure", url=_url(base, item.file), length=str(item.size_bytes),
             type=CONTENT_TYPES.get(Path(item.file).suffix.lower(), "application/octet-stream"))
        # Content-based: a changed routine is a new episode (apps download it again).
        _sub(element, "guid", f"voicecoach:{digest('episode', entry.key, item.file)[:32]}", isPermaLink="false")
        # Newest first in apps: later steps of a split routine count as a second earlier each;
        # program days are a second apart in day order.
        published = entry.exported_datetime - timedelta(seconds=item.order) + timedelta(seconds=entry.episode or 0)
        _sub(element, "pubDate", email.utils.format_datetime(published, usegmt=True))
        _sub(element, "itunes:duration", _duration(item.duration_s))
        _sub(element, "itunes:image", href=_url(base, entry.cover))
        _sub(element, "itunes:explicit", "false")
        _sub(element, "itunes:episodeType", "full")
        if entry.episode is not None:
            _sub(element, "itunes:episode", str(entry.episode))
        if item.chapters:
            _sub(element, "podcast:chapters", url=_url(base, item.chapters), type=CHAPTERS_TYPE)
            _simple_chapters(element, Path(out_dir) / item.chapters)
    ET.indent(rss, space=" ")
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True) + b"\n", missing


def _npt(seconds: float) -> str:
    """Normal play time, ``HH:MM:SS.mmm``, as Podlove Simple Chapters write it."""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _simple_chapters(item: ET.Element, chapters_file: Path) -> None:
    """The track's chapters inline as Podlove Simple Chapters (``psc:chapters``), from its chapters file."""
    try:
        chapters = json.loads(chapters_file.read_text(encoding="utf-8"))["chapters"]
        marks = [(_npt(float(c["startTime"])), str(c["title"])) for c in chapters]
    except (OSError, ValueError, KeyError, TypeError):
        return  # an unreadable chapters file: the episode still plays, without inline chapters
    element = _sub(item, "psc:chapters", version="1.2")
    for start, title in marks:
        _sub(element, "psc:chapter", start=start, title=title)


def _podcast_guid(title: str) -> str:
    """A stable UUID for the show (Podcasting 2.0 wants a UUIDv5; derived from the title)."""
    import uuid

    return str(uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"), f"voicecoach:{title}"))


def feed_cover_png(out_dir: str | os.PathLike, *, title: str) -> bytes:
    """The show's cover: its title and every area the folder's routines work."""
    from .cover import cover_png
    from ..model import Area

    names: dict[str, None] = {}
    for entry in read_manifest(out_dir).values():
        names.update(dict.fromkeys(entry.areas))
    return cover_png(title, areas=[Area(n) for n in names if n in {a.value for a in Area}])


def write_feed(out_dir: str | os.PathLike, *, settings: FeedSettings) -> tuple[Path, list[str]]:
    """Write ``feed.xml`` and the show's cover ``feed.png`` into the folder, atomically."""
    out = Path(out_dir)
    if not out.is_dir():
        raise VoicecoachError(f"folder {os.fspath(out_dir)!r} does not exist",
                              hint="give the folder you exported into with `voicecoach export -d`")
    programs = {entry.program for entry in read_manifest(out).values()}
    if settings.title == FeedSettings.title and len(programs) == 1 and None not in programs:
        settings = replace(settings, title=programs.pop())  # a folder of one program's days: the show is the program
    data, missing = build_feed(out, settings=settings)
    with atomic_write(out / FEED_COVER_NAME) as handle:
        handle.write(feed_cover_png(out, title=settings.title))
    with atomic_write(out / FEED_NAME) as handle:
        handle.write(data)
    return out / FEED_NAME, missing


def read_feed_settings(path: str | os.PathLike) -> FeedSettings | None:
    """The settings a written feed was made with (to rebuild it for another address), or None."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    channel = root.find("channel")
    if channel is None:
        return None
    text = lambda tag, default: (channel.findtext(tag) or default).strip()  # noqa: E731
    defaults = FeedSettings(base_url="http://localhost/")
    return replace(
        defaults,
        base_url=text("link", defaults.base_url),
        title=text("title", defaults.title),
        description=text("description", defaults.description),
        author=text(f"{{{ITUNES_NS}}}author", defaults.author),
    )


__all__ = [
    "CHAPTERS_TYPE",
    "FEED_COVER_NAME",
    "FEED_NAME",
    "Episode",
    "FeedSettings",
    "build_feed",
    "episodes",
    "feed_cover_png",
    "normalize_base_url",
    "read_feed_settings",
    "write_feed",
]

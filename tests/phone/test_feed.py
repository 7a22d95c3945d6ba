"""feed.py and `voicecoach feed`: the RSS podcast feed over an export folder, parsed by feedparser."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.errors import VoicecoachError
from voicecoach.phone.feed import (
    FeedSettings,
    build_feed,
    normalize_base_url,
    read_feed_settings,
    write_feed,
)
from voicecoach.phone.library import LibrarySettings, export_library, read_manifest
from voicecoach.pipeline import Settings

ROUTINE = """\
routine: Jaw & <neck> release
description: Loosens the jaw & the neck.
steps:
  - say: Hello.
  - massage: Jaw sweep
    area: jaw
    strokes: 2
    tempo: 1s
"""
SECOND = ROUTINE.replace("Jaw & <neck> release", "Brow calm").replace("area: jaw", "area: brows")
BASE = "http://127.0.0.1:8000/"
NS = {"itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd", "podcast": "https://podcastindex.org/namespace/1.0"}
NOW = datetime(2025, 3, 1, 7, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """An export folder: one routine whole, one split (both MP3)."""
    root = tmp_path_factory.mktemp("feed")
    (root / "src").mkdir()
    (root / "src" / "jaw.yaml").write_text(ROUTINE, encoding="utf-8")
    (root / "src" / "brow.yaml").write_text(SECOND, encoding="utf-8")
    settings = Settings(engine="fake", cache_dir=root / "cache")
    out = root / "phone"
    export_library([str(root / "src" / "jaw.yaml")], out, settings=settings, now=NOW)
    export_library([str(root / "src" / "brow.yaml")], out, settings=settings,
                   library=LibrarySettings(split=True), now=NOW.replace(day=2))
    return out


def parse(data: bytes):
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def test_feed_parses_with_its_required_fields(folder):
    data, missing = build_feed(folder, settings=FeedSettings(base_url=BASE, title="My routines"))
    assert missing == []
    parsed = parse(data)
    assert parsed.version == "rss20"
    channel = parsed.feed
    assert channel.title == "My routines" and channel.link == BASE and channel.description
    assert channel.image.href == BASE + "feed.png" and channel.author == "voicecoach"
    assert channel.language == "en" and channel.tags[0].term == "Health & Fitness"
    manifest = read_manifest(folder)
    whole, split = manifest["jaw-neck-release"], manifest["brow-calm"]
    entries = {e.title: e for e in parsed.entries}
    assert len(entries) == 1 + len(split.tracks)
    jaw = entries["Jaw & <neck> release"]
    assert jaw.summary == "Loosens the jaw & the neck."
    [enclosure] = jaw.enclosures
    assert enclosure.href == BASE + "jaw-neck-release.mp3" and enclosure.type == "audio/mpeg"
    assert int(enclosure.length) == (folder / "jaw-neck-release.mp3").stat().st_size
    seconds = round(whole.duration_s)
    assert jaw.itunes_duration == f"0:{seconds // 60:02d}:{seconds % 60:02d}"
    assert jaw.published == "Sat, 01 Mar 2025 07:30:00 GMT"  # the export time, not now
    assert jaw.id.startswith("voicecoach:") and jaw.guidislink is False
    assert jaw.image.href == BASE + "jaw-neck-release.png"
    first = entries["Brow calm \u2013 1. Hello."]
    assert first.enclosures[0].href == BASE + "brow-calm/01-hello.mp3"
    assert first.published == "Sun, 02 Mar 2025 07:30:00 GMT"
    assert entries["Brow calm \u2013 2. Jaw sweep"].published == "Sun, 02 Mar 2025 07:29:59 GMT"


def test_podcast_chapters_and_itunes_tags(folder):
    data, _ = build_feed(folder, settings=FeedSettings(base_url=BASE))
    channel = ET.fromstring(data).find("channel")
    assert channel.find("itunes:explicit", NS).text == "false"
    assert channel.find("itunes:category", NS).get("text") == "Health & Fitness"
    items = {i.findtext("title"): i for i in channel.findall("item")}
    chapters = items["Jaw & <neck> release"].find("podcast:chapters", NS)
    assert chapters.get("type") == "application/json+chapters"
    assert chapters.get("url") == BASE + "jaw-neck-release.chapters.json"
    listed = json.loads((folder / "jaw-neck-release.chapters.json").read_text())["chapters"]
    assert [c["title"] for c in listed] == ["Hello.", "Jaw sweep"]
    assert items["Brow calm \u2013 1. Hello."].find("podcast:chapters", NS) is None  # one step, no chapters


def test_feed_is_deterministic_and_guids_are_stable(folder):
    settings = FeedSettings(base_url=BASE)
    first, _ = build_feed(folder, settings=settings)
    assert build_feed(folder, settings=settings)[0] == first
    elsewhere, _ = build_feed(folder, settings=FeedSettings(base_url="https://example.org/coach"))
    assert [e.id for e in parse(first).entries] == [e.id for e in parse(elsewhere).entries]
    assert parse(elsewhere).entries[0].enclosures[0].href.startswith("https://example.org/coach/")
    assert len({e.id for e in parse(first).entries}) == len(parse(first).entries)


def test_write_feed_and_read_its_settings_back(folder):
    settings = FeedSettings(base_url="http://192.168.1.20:8000", title="Face & me", description="Mine.",
                            author="Ann")
    path, missing = write_feed(folder, settings=settings)
    assert path == folder / "feed.xml" and missing == []
    assert (folder / "feed.png").read_bytes().startswith(b"\x89PNG")
    assert read_feed_settings(path) == FeedSettings(base_url="http://192.168.1.20:8000/", title="Face & me",
                                                    description="Mine.", author="Ann")
    assert read_feed_settings(folder / "nothing.xml") is None


def test_missing_files_are_left_out_and_reported(tmp_path, folder):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "brow-calm" / "01-hello.mp3").unlink()
    data, missing = build_feed(copy, settings=FeedSettings(base_url=BASE))
    assert missing == ["brow-calm/01-hello.mp3"]
    assert "01-hello.mp3" not in data.decode("utf-8")


@pytest.mark.parametrize("url", ["ftp://host/", "192.168.1.2:8000", "http://", "http://h/?q=1"])
def test_bad_base_urls_are_refused(url):
    with pytest.raises(VoicecoachError, match="base URL"):
        normalize_base_url(url)


def test_an_empty_folder_has_no_feed(tmp_path):
    with pytest.raises(VoicecoachError, match="no exported tracks"):
        build_feed(tmp_path, settings=FeedSettings(base_url=BASE))


def test_feed_command(folder, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["feed", str(folder), "--base-url", "http://10.0.0.5:8080", "--title", "Coach"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {folder / 'feed.xml'}\n"
    parsed = parse((folder / "feed.xml").read_bytes())
    assert parsed.feed.title == "Coach" and parsed.entries[0].enclosures[0].href.startswith("http://10.0.0.5:8080/")
    bad = runner.invoke(cli, ["feed", str(folder), "--base-url", "nope"])
    assert bad.exit_code == 2 and bad.stderr.startswith("base URL 'nope' is not an http(s) address; ")
    empty = runner.invoke(cli, ["feed", str(tmp_path), "--base-url", BASE])
    assert empty.exit_code == 2 and "no exported tracks" in empty.stderr


def test_a_changed_routine_is_a_new_episode_and_an_unchanged_one_keeps_its_guid(tmp_path):
    (tmp_path / "jaw.yaml").write_text(ROUTINE, encoding="utf-8")
    (tmp_path / "brow.yaml").write_text(SECOND, encoding="utf-8")
    settings = Settings(engine="fake", cache_dir=tmp_path / "cache")
    out = tmp_path / "phone"
    sources = [str(tmp_path / "jaw.yaml"), str(tmp_path / "brow.yaml")]

    def guids() -> dict[str, str]:
        export_library(sources, out, settings=settings, now=NOW)
        return {e.title: e.id for e in parse(build_feed(out, settings=FeedSettings(base_url=BASE))[0]).entries}

    first = guids()
    assert set(first) == {"Jaw & <neck> release", "Brow calm"}
    assert guids() == first  # exported again unchanged: the same episodes
    (tmp_path / "brow.yaml").write_text(SECOND.replace("strokes: 2", "strokes: 3"), encoding="utf-8")
    changed = guids()
    assert changed["Jaw & <neck> release"] == first["Jaw & <neck> release"]
    assert changed["Brow calm"] != first["Brow calm"]  # a changed routine: a new episode

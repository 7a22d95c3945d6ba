"""sidecars.py: the timeline JSON, WebVTT captions, Podcasting 2.0 chapters and m3u8 playlists."""

from __future__ import annotations

import json
import os

import pytest

from tests.test_encode import RATE, make_timeline
from tests.test_formats import chapter_seconds
from tests.test_formats import make_timeline as make_chapters
from voicecoach import sidecars
from voicecoach.model import Cue, Event, EventKind, Timeline
from voicecoach.sidecars import (timeline_from_json, timeline_to_json, timeline_to_vtt, write_timeline_json,
                                 write_vtt)


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------------------------------
# JSON


def test_timeline_json_schema():
    tl, _ = make_timeline()
    data = timeline_to_json(tl)
    assert list(data) == ["version", "routine", "sample_rate", "duration_s", "chapters", "events"]
    assert data["version"] == 1 and data["routine"] == "Évening jaw" and data["sample_rate"] == RATE
    assert data["duration_s"] == tl.length_samples / RATE
    assert [list(c) for c in data["chapters"]] == [["title", "step", "start_s", "end_s"]] * 3
    assert data["chapters"][1] == {"title": "Hold, round 1 of 2", "step": 1, "start_s": 3.0, "end_s": 4.5}
    keys = ["kind", "start_s", "end_s", "step", "step_name", "cue", "text"]
    for item, event in zip(data["events"], tl.events):
        if event.kind is EventKind.TONE:
            assert list(item) == [*keys, "sound"] and item["sound"] == event.tone.value and item["text"] == ""
        else:
            assert list(item) == keys and item["text"] == event.text
        assert item["start_s"] == event.start_sample / RATE  # full precision, not rounded to ms
        assert item["end_s"] == event.end_sample / RATE
        assert item["cue"] == event.cue.value
        assert item["step_name"] == tl.chapters[event.step].title
    assert data["events"][0]["kind"] == "tone" and data["events"][1]["kind"] == "speech"


def test_timeline_json_round_trip(tmp_path):
    tl, _ = make_timeline()
    assert timeline_from_json(timeline_to_json(tl)) == tl
    odd = Timeline("x", 48000, 12345679, (Event(EventKind.SPEECH, Cue.SAY, 12345, 6789, 0, text="hi"),), ())
    assert timeline_from_json(json.loads(json.dumps(timeline_to_json(odd)))) == odd
    with pytest.raises(ValueError):
        timeline_from_json({**timeline_to_json(tl), "version": 2})


def test_write_timeline_json(tmp_path):
    tl, _ = make_timeline()
    path = tmp_path / "t.json"
    write_timeline_json(tl, path)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.startswith('{\n "version": 1,\n "routine": "Évening jaw",')
    assert json.loads(text) == timeline_to_json(tl)
    assert timeline_from_json(json.loads(text)) == tl
    write_timeline_json(tl, path)
    assert path.read_text(encoding="utf-8") == text  # stable
    assert listing(tmp_path) == ["t.json"]


# ---------------------------------------------------------------------------------------
# WebVTT


def test_vtt(tmp_path):
    tl, _ = make_timeline()
    text = timeline_to_vtt(tl)
    assert text == (
        "WEBVTT\n"
        "\n"
        "00:00:00.600 --> 00:00:01.400\n"
        "Jaw release\n"
        "\n"
        "00:00:01.700 --> 00:00:02.900\n"
        "Open wide &amp; slow\n"
        "\n"
        "00:00:03.000 --> 00:00:03.400\n"
        "hold\n"
        "\n"
        "00:00:05.100 --> 00:00:06.000\n"
        "Well done &lt;3\n"
    )
    path = tmp_path / "c.vtt"
    write_vtt(tl, path)
    assert path.read_text(encoding="utf-8") == text
    assert listing(tmp_path) == ["c.vtt"]


def test_vtt_long_times_and_odd_text():
    rate = 48000
    start = 3725 * rate + 24  # 1:02:05.0005 -> .000 or .001 by exact rounding
    event = Event(EventKind.SPEECH, Cue.SAY, start, 90 * rate, 0, text="two\nlines --> here")
    tl = Timeline("x", rate, start + 91 * rate, (event,), ())
    lines = timeline_to_vtt(tl).splitlines()
    assert lines[2] == "01:02:05.000 --> 01:03:35.000"
    assert lines[3] == "two lines --&gt; here"
    assert timeline_to_vtt(Timeline("x", rate, 10, (), ())) == "WEBVTT\n"



# ---------------------------------------------------------------------------------------
# Podcast apps


def test_podcast_chapters_json(tmp_path):
    timeline = make_chapters()
    path = tmp_path / "t.chapters.json"
    sidecars.write_podcast_chapters(timeline, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == "1.2.0"
    assert [(c["startTime"], c["endTime"], c["title"]) for c in data["chapters"]] == chapter_seconds(timeline)


def test_m3u8_playlist():
    text = sidecars.m3u8([sidecars.PlaylistEntry("r/01-a.mp3", "A\nbroken", 61.6),
                         sidecars.PlaylistEntry("r/02-b.mp3", "B", 3.2)], title="Routine")
    assert text == "#EXTM3U\n#PLAYLIST:Routine\n#EXTINF:62,A broken\nr/01-a.mp3\n#EXTINF:3,B\nr/02-b.mp3\n"

"""formats.py: MP3/M4B/Opus with chapters, tags and covers, read back; split parts; chapters JSON; m3u8."""

from __future__ import annotations

import base64
import json
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutagen.flac import Picture
from mutagen.id3 import ID3
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus

from voicecoach import formats
from voicecoach.errors import VoicecoachError
from voicecoach.formats import (AudioFormat, TrackTags, ffmetadata, parse_ffmetadata_chapters, split_parts,
                                split_stream)
from voicecoach.model import Chapter, Timeline

RATE = 44100
COVER = b"\x89PNG\r\n\x1a\n" + b"not really a png, but bytes to carry"


def make_timeline(bounds_s=(0, 1.5, 2.25, 4.0), rate: int = RATE, titles=None) -> Timeline:
    """Chapters at the given second marks (the last is the end); no events needed to encode."""
    marks = [round(b * rate) for b in bounds_s]
    titles = titles or ["Warm-up taps", "Brow lift = up; #1", "Rest \\ calm"][: len(marks) - 1]
    chapters = tuple(Chapter(t, i, marks[i], marks[i + 1]) for i, t in enumerate(titles))
    return Timeline("Tiny routine", rate, marks[-1], (), chapters)


def tone(timeline: Timeline) -> np.ndarray:
    t = np.arange(timeline.length_samples) / timeline.sample_rate
    return np.round(6000 * np.sin(2 * np.pi * 330 * t)).astype(np.int16)


def chapter_seconds(timeline: Timeline) -> list[tuple[float, float, str]]:
    rate = timeline.sample_rate
    return [(formats.ms(c.start_sample, rate) / 1000, formats.ms(c.end_sample, rate) / 1000, c.title)
            for c in timeline.chapters]


TAGS = TrackTags(title="Tiny routine", album="voicecoach routines", cover_png=COVER)


def encoded(folder, fmt: AudioFormat, tags: TrackTags = TAGS, name: str = "t"):
    """The test timeline's tone written as ``fmt``: ``(path, timeline)``."""
    timeline = make_timeline()
    path = folder / f"{name}{fmt.extension}"
    formats.write_track(tone(timeline), path, fmt=fmt, timeline=timeline, tags=tags)
    return path, timeline


def test_ffmetadata_is_in_milliseconds_with_escapes():
    text = ffmetadata(make_timeline())
    assert text.startswith(";FFMETADATA1\n")
    assert text.count("[CHAPTER]") == 3 and text.count("TIMEBASE=1/1000") == 3
    assert "START=1500\nEND=2250\ntitle=Brow lift \\= up\\; \\#1\n" in text
    assert "title=Rest \\\\ calm\n" in text
    assert "END=4000\n" in text


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30),
                min_size=1, max_size=5))
@settings(max_examples=60, deadline=None)
def test_ffmetadata_titles_read_back_exactly(titles):
    timeline = make_timeline(bounds_s=[i * 0.5 for i in range(len(titles) + 1)], titles=titles)
    assert [c[2] for c in parse_ffmetadata_chapters(ffmetadata(timeline))] == titles


def test_mp3_has_chapters_tags_cover_and_track_number(tmp_path):
    path, timeline = encoded(tmp_path, AudioFormat.MP3,
                             TrackTags(title="Step", album="Tiny routine", track=(2, 7), cover_png=COVER))
    tag = ID3(path)
    assert tag["TIT2"].text == ["Step"] and tag["TALB"].text == ["Tiny routine"] and tag["TRCK"].text == ["2/7"]
    apic = tag.getall("APIC")[0]
    assert apic.data == COVER and apic.mime == "image/png" and apic.type == 3
    chaps = sorted(tag.getall("CHAP"), key=lambda c: c.start_time)
    assert [(c.start_time / 1000, c.end_time / 1000, c.sub_frames["TIT2"].text[0]) for c in chaps] == \
        chapter_seconds(timeline)
    assert MP3(path).info.length * timeline.sample_rate == pytest.approx(timeline.length_samples)  # gapless
    assert formats.read_chapters(path) == chapter_seconds(timeline)  # ffmpeg sees them too


def test_m4b_has_chapters_tags_and_cover(tmp_path):
    path, timeline = encoded(tmp_path, AudioFormat.M4B)
    audio = MP4(path)
    assert audio.info.codec.startswith("mp4a") and audio.info.channels == 1
    assert audio.info.length == pytest.approx(timeline.duration_s, abs=0.05)
    assert audio["\xa9nam"] == ["Tiny routine"] and audio["\xa9alb"] == ["voicecoach routines"]
    assert bytes(audio["covr"][0]) == COVER
    assert [(c.start, c.title) for c in audio.chapters] == [(s, t) for s, _, t in chapter_seconds(timeline)]
    assert formats.read_chapters(path) == chapter_seconds(timeline)
    assert path.read_bytes()[4:8] == b"ftyp"


def test_opus_has_chapters_tags_and_cover(tmp_path):
    path, timeline = encoded(tmp_path, AudioFormat.OPUS,
                             TrackTags(title="Tiny routine", album="A", track=(1, 3), cover_png=COVER))
    audio = OggOpus(path)
    assert audio.info.length == pytest.approx(timeline.duration_s, abs=0.05)
    assert audio["title"] == ["Tiny routine"] and audio["tracknumber"] == ["1"] and audio["tracktotal"] == ["3"]
    picture = Picture(base64.b64decode(audio["metadata_block_picture"][0]))
    assert picture.data == COVER and picture.type == 3
    assert audio["chapter002"] == ["00:00:01.500"] and audio["chapter002name"] == ["Brow lift = up; #1"]
    starts = [(float(s), t) for s, _, t in formats.read_chapters(path)]
    assert starts == [(s, t) for s, _, t in chapter_seconds(timeline)]


@pytest.mark.parametrize("fmt", [AudioFormat.M4B, AudioFormat.OPUS])
def test_ffmpeg_formats_are_deterministic(tmp_path, fmt):
    (a, _), (b, _) = encoded(tmp_path, fmt, name="a"), encoded(tmp_path, fmt, name="b")
    assert a.read_bytes() == b.read_bytes()


def test_encoder_failure_is_a_user_error_and_leaves_no_file(tmp_path, monkeypatch):
    timeline = make_timeline()
    scratch, out = tmp_path / "tmp", tmp_path / "out"
    scratch.mkdir(), out.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(formats, "ffmpeg_exe", lambda: "/bin/false")
    with pytest.raises(VoicecoachError, match="ffmpeg could not encode m4b"):
        formats.write_track(tone(timeline), out / "t.m4b", fmt=AudioFormat.M4B, timeline=timeline, tags=TAGS)
    assert list(out.iterdir()) == []
    assert list(scratch.iterdir()) == []  # pydub's temporary WAV and output went with our folder


@pytest.mark.parametrize("fmt", [AudioFormat.MP3, AudioFormat.M4B])
def test_wrong_sample_count_is_refused(tmp_path, fmt):
    timeline = make_timeline()
    samples = tone(timeline)
    for wrong in ([samples[:-1]], [samples, samples[:1]], [samples[:100], samples[100:-5]]):
        with pytest.raises(ValueError, match="samples for a timeline of"):
            formats.write_track(wrong, tmp_path / f"t{fmt.extension}", fmt=fmt, timeline=timeline, tags=TAGS)
    assert list(tmp_path.iterdir()) == []


def test_a_track_in_chunks_gives_the_same_file(tmp_path):
    timeline = make_timeline()
    samples = tone(timeline)
    for fmt in (AudioFormat.MP3, AudioFormat.OPUS):
        whole, chunked = tmp_path / f"whole{fmt.extension}", tmp_path / f"chunked{fmt.extension}"
        formats.write_track(samples, whole, fmt=fmt, timeline=timeline, tags=TAGS)
        formats.write_track(iter([samples[:777], samples[777:30000], samples[30000:]]), chunked, fmt=fmt,
                            timeline=timeline, tags=TAGS)
        assert whole.read_bytes() == chunked.read_bytes()


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=12), st.lists(st.integers(1, 7000), min_size=1))
@settings(max_examples=80, deadline=None)
def test_split_parts_tile_the_track(lengths, chunk_sizes):
    marks = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    chapters = tuple(Chapter(f"step {i}", i, marks[i], marks[i + 1]) for i in range(len(lengths)))
    timeline = Timeline("R", 8000, marks[-1], (), chapters)
    samples = np.arange(marks[-1], dtype=np.int64).astype(np.int16)
    parts = split_parts(timeline)
    assert [p.number for p in parts] == list(range(1, len(lengths) + 1))
    # the track arrives in chunks of any sizes, as the mixer or the track cache hands them out
    bounds = [0]
    while bounds[-1] < len(samples):
        bounds.append(min(len(samples), bounds[-1] + chunk_sizes[len(bounds) % len(chunk_sizes)]))
    chunks = [samples[a:b] for a, b in zip(bounds, bounds[1:])]
    pieces = [np.concatenate(list(stream)) for stream in split_stream(chunks, parts)]
    assert sum(len(p) for p in pieces) == timeline.length_samples
    assert all(len(piece) == p.timeline.length_samples for piece, p in zip(pieces, parts))
    assert np.array_equal(np.concatenate(pieces), samples)
    assert all(p.timeline.chapters == () and p.timeline.sample_rate == 8000 for p in parts)


def test_podcast_chapters_json(tmp_path):
    timeline = make_timeline()
    path = tmp_path / "t.chapters.json"
    formats.write_podcast_chapters(timeline, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == "1.2.0"
    assert [(c["startTime"], c["endTime"], c["title"]) for c in data["chapters"]] == chapter_seconds(timeline)


def test_m3u8_playlist():
    text = formats.m3u8([formats.PlaylistEntry("r/01-a.mp3", "A\nbroken", 61.6),
                         formats.PlaylistEntry("r/02-b.mp3", "B", 3.2)], title="Routine")
    assert text == "#EXTM3U\n#PLAYLIST:Routine\n#EXTINF:62,A broken\nr/01-a.mp3\n#EXTINF:3,B\nr/02-b.mp3\n"


def test_content_types():
    assert AudioFormat.MP3.content_type == "audio/mpeg"
    assert AudioFormat.M4B.content_type == "audio/mp4"
    assert AudioFormat.OPUS.content_type == "audio/ogg"


def test_vorbis_chapter_comments_past_an_hour():
    timeline = Timeline("R", 1000, 4_000_000, (), (Chapter("a", 0, 0, 3_723_456), Chapter("b", 1, 3_723_456, 4_000_000)))
    assert formats.vorbis_chapters(timeline) == {"CHAPTER001": "00:00:00.000", "CHAPTER001NAME": "a",
                                                 "CHAPTER002": "01:02:03.456", "CHAPTER002NAME": "b"}

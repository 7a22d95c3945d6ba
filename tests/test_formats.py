"""formats.py: the format table; every format written with chapters, tags and covers, read back; split parts."""

from __future__ import annotations

import base64
import inspect
import subprocess
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus

from voicecoach import encode, formats
from voicecoach.encode import TrackTags, ffmetadata, parse_ffmetadata_chapters
from voicecoach.errors import VoicecoachError
from voicecoach.formats import FORMATS, OutputFormat, split_parts, split_stream
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
    return [(encode.ms(c.start_sample, rate) / 1000, encode.ms(c.end_sample, rate) / 1000, c.title)
            for c in timeline.chapters]


TAGS = TrackTags(title="Tiny routine", album="voicecoach routines", cover_png=COVER)


def encoded(folder, fmt: OutputFormat, tags: TrackTags = TAGS, name: str = "t"):
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
    path, timeline = encoded(tmp_path, FORMATS["mp3"],
                             TrackTags(title="Step", album="Tiny routine", track=(2, 7), cover_png=COVER))
    tag = ID3(path)
    assert tag["TIT2"].text == ["Step"] and tag["TALB"].text == ["Tiny routine"] and tag["TRCK"].text == ["2/7"]
    apic = tag.getall("APIC")[0]
    assert apic.data == COVER and apic.mime == "image/png" and apic.type == 3
    chaps = sorted(tag.getall("CHAP"), key=lambda c: c.start_time)
    assert [(c.start_time / 1000, c.end_time / 1000, c.sub_frames["TIT2"].text[0]) for c in chaps] == \
        chapter_seconds(timeline)
    assert MP3(path).info.length * timeline.sample_rate == pytest.approx(timeline.length_samples)  # gapless
    assert encode.read_chapters(path) == chapter_seconds(timeline)  # ffmpeg sees them too


def test_m4b_has_chapters_tags_and_cover(tmp_path):
    path, timeline = encoded(tmp_path, FORMATS["m4b"])
    audio = MP4(path)
    assert audio.info.codec.startswith("mp4a") and audio.info.channels == 1
    assert audio.info.length == pytest.approx(timeline.duration_s, abs=0.05)
    assert audio["\xa9nam"] == ["Tiny routine"] and audio["\xa9alb"] == ["voicecoach routines"]
    assert bytes(audio["covr"][0]) == COVER
    assert [(c.start, c.title) for c in audio.chapters] == [(s, t) for s, _, t in chapter_seconds(timeline)]
    assert encode.read_chapters(path) == chapter_seconds(timeline)
    assert path.read_bytes()[4:8] == b"ftyp"


def test_opus_has_chapters_tags_and_cover(tmp_path):
    path, timeline = encoded(tmp_path, FORMATS["opus"],
                             TrackTags(title="Tiny routine", album="A", track=(1, 3), cover_png=COVER))
    audio = OggOpus(path)
    assert audio.info.length == pytest.approx(timeline.duration_s, abs=0.05)
    assert audio["title"] == ["Tiny routine"] and audio["tracknumber"] == ["1"] and audio["tracktotal"] == ["3"]
    picture = Picture(base64.b64decode(audio["metadata_block_picture"][0]))
    assert picture.data == COVER and picture.type == 3
    assert audio["chapter002"] == ["00:00:01.500"] and audio["chapter002name"] == ["Brow lift = up; #1"]
    starts = [(float(s), t) for s, _, t in encode.read_chapters(path)]
    assert starts == [(s, t) for s, _, t in chapter_seconds(timeline)]


def test_flac_is_lossless_with_chapters_tags_and_cover(tmp_path):
    path, timeline = encoded(tmp_path, FORMATS["flac"],
                             TrackTags(title="Tiny routine", album="A", track=(1, 3), cover_png=COVER))
    audio = FLAC(path)
    assert audio.info.sample_rate == RATE and audio.info.channels == 1 and audio.info.bits_per_sample == 16
    assert audio.info.total_samples == timeline.length_samples
    assert audio["title"] == ["Tiny routine"] and audio["tracknumber"] == ["1"] and audio["tracktotal"] == ["3"]
    assert audio.pictures[0].data == COVER and audio.pictures[0].type == 3
    assert audio["chapter002"] == ["00:00:01.500"] and audio["chapter002name"] == ["Brow lift = up; #1"]
    assert encode.read_chapters(path) == chapter_seconds(timeline)
    decoded = subprocess.run([encode.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path),
                              "-f", "s16le", "-"], capture_output=True, check=True).stdout
    assert np.array_equal(np.frombuffer(decoded, "<i2"), tone(timeline))


def test_the_table_is_complete_and_consistent():
    assert list(FORMATS) == ["mp3", "m4b", "opus", "flac", "wav"]
    for name, fmt in FORMATS.items():
        assert fmt.name == name and fmt.extension == f".{name}" and fmt.content_type.startswith("audio/")
        assert formats.format_for_path(f"x/y.{name.upper()}") is fmt and formats.format_named(name) is fmt
        assert formats.CONTENT_TYPES[fmt.extension] == fmt.content_type
        assert list(inspect.signature(fmt.encoder).parameters)[:2] == ["chunks", "path"]
        assert {"timeline", "tags", "settings"} <= set(inspect.signature(fmt.encoder).parameters)
    assert [f.name for f in FORMATS.values() if f.has_chapters] == ["mp3", "m4b", "opus", "flac"]
    assert [f.name for f in FORMATS.values() if f.streaming] == ["mp3", "wav"]
    for bad in ("x.ogg", "x", "x.mp3.part"):
        with pytest.raises(VoicecoachError, match=r"name the output file with one of: \.mp3, \.m4b, \.opus, \.flac, \.wav"):
            formats.format_for_path(bad)
    with pytest.raises(VoicecoachError, match="use one of: mp3, m4b, opus, flac, wav"):
        formats.format_named("aiff")


@pytest.mark.parametrize("fmt", list(FORMATS.values()), ids=lambda f: f.name)
def test_every_format_writes_the_timelines_chapters_and_is_deterministic(tmp_path, fmt):
    (a, timeline), (b, _) = encoded(tmp_path, fmt, name="a"), encoded(tmp_path, fmt, name="b")
    assert a.read_bytes() == b.read_bytes()
    starts = [(round(float(s), 3), t) for s, _, t in encode.read_chapters(a)]
    assert starts == ([(s, t) for s, _, t in chapter_seconds(timeline)] if fmt.has_chapters else [])


def test_encoder_failure_is_a_user_error_and_leaves_no_file(tmp_path, monkeypatch):
    timeline = make_timeline()
    scratch, out = tmp_path / "tmp", tmp_path / "out"
    scratch.mkdir(), out.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(encode, "ffmpeg_exe", lambda: "/bin/false")
    with pytest.raises(VoicecoachError, match="ffmpeg could not encode m4b"):
        formats.write_track(tone(timeline), out / "t.m4b", fmt=FORMATS["m4b"], timeline=timeline, tags=TAGS)
    assert list(out.iterdir()) == []
    assert list(scratch.iterdir()) == []  # pydub's temporary WAV and output went with our folder


@pytest.mark.parametrize("fmt", [FORMATS["mp3"], FORMATS["m4b"]])
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
    for fmt in (FORMATS["mp3"], FORMATS["opus"]):
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


def test_content_types():
    assert FORMATS["mp3"].content_type == "audio/mpeg"
    assert FORMATS["m4b"].content_type == "audio/mp4"
    assert FORMATS["opus"].content_type == "audio/ogg"


def test_vorbis_chapter_comments_past_an_hour():
    timeline = Timeline("R", 1000, 4_000_000, (), (Chapter("a", 0, 0, 3_723_456), Chapter("b", 1, 3_723_456, 4_000_000)))
    assert encode.vorbis_chapters(timeline) == {"CHAPTER001": "00:00:00.000", "CHAPTER001NAME": "a",
                                                 "CHAPTER002": "01:02:03.456", "CHAPTER002NAME": "b"}

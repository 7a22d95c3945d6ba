"""encode.py: WAV, MP3 with chapters, the ffmpeg encoders' chapter metadata, and atomic writing."""

from __future__ import annotations

import io
import os
import re
import subprocess
import wave

import numpy as np
import pytest
from mutagen.id3 import ID3, CTOCFlags
from mutagen.mp3 import MP3, BitrateMode

from voicecoach import encode, files
from voicecoach.encode import ffmpeg_exe, id3_tag, write_mp3, write_wav
from voicecoach.mix import RenderSettings, render, tone_length
from voicecoach.model import Chapter, Cue, Event, EventKind, Timeline, Tone

RATE = 44100


def make_timeline(rate: int = RATE) -> tuple[Timeline, dict[str, np.ndarray]]:
    """Three chapters, speech and tones, about 6 s."""
    texts = {"Jaw release": 0.8, "Open wide & slow": 1.2, "hold": 0.4, "Well done <3": 0.9}
    clips = {
        t: np.round(8000 * np.sin(2 * np.pi * 300 * np.arange(round(s * rate)) / rate)).astype(np.int16)
        for t, s in texts.items()
    }

    def say(text, at, step, cue=Cue.SAY):
        return Event(EventKind.SPEECH, cue, round(at * rate), len(clips[text]), step, text=text)

    def tone(t, at, step, cue):
        return Event(EventKind.TONE, cue, round(at * rate), tone_length(t, sample_rate=rate), step, tone=t)

    events = (
        tone(Tone.CHIME, 0.0, 0, Cue.START),
        say("Jaw release", 0.6, 0, Cue.NAME),
        say("Open wide & slow", 1.7, 0),
        say("hold", 3.0, 1, Cue.HOLD),
        tone(Tone.TICK, 4.0, 1, Cue.COUNT),
        tone(Tone.FINISH, 4.5, 2, Cue.FINISH),
        say("Well done <3", 5.1, 2, Cue.FINISH),
    )
    length = round(6.5 * rate)
    chapters = (
        Chapter("Jaw release", 0, 0, round(3.0 * rate)),
        Chapter("Hold, round 1 of 2", 1, round(3.0 * rate), round(4.5 * rate)),
        Chapter("Finish", 2, round(4.5 * rate), length),
    )
    return Timeline("Évening jaw", rate, length, events, chapters), clips


def chunks_of(tl: Timeline, clips) -> list[np.ndarray]:
    return list(render(tl, clips.__getitem__, settings=RenderSettings(sample_rate=tl.sample_rate, chunk_samples=10000)))


def exploding(chunks, after: int):
    for i, chunk in enumerate(chunks):
        if i == after:
            raise RuntimeError("boom")
        yield chunk


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------------------------------
# atomic writes


def test_atomic_write_is_shared_with_files():
    assert encode.atomic_write is files.atomic_write


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with encode.atomic_write(target) as handle:
            handle.write(b"new, half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert listing(tmp_path) == ["out.bin"]
    with encode.atomic_write(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new"
    assert listing(tmp_path) == ["out.bin"]


# ---------------------------------------------------------------------------------------
# WAV


def test_wav_reads_back_as_rendered(tmp_path):
    tl, clips = make_timeline()
    chunks = chunks_of(tl, clips)
    path = tmp_path / "a.wav"
    write_wav(iter(chunks), path, sample_rate=RATE)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        assert wav.getnframes() == tl.length_samples
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(data, np.concatenate(chunks))
    assert listing(tmp_path) == ["a.wav"]


def test_wav_failure_leaves_nothing(tmp_path):
    tl, clips = make_timeline()
    path = tmp_path / "a.wav"
    with pytest.raises(RuntimeError, match="boom"):
        write_wav(exploding(chunks_of(tl, clips), after=3), path, sample_rate=RATE)
    assert listing(tmp_path) == []
    with pytest.raises(ValueError, match="int16"):
        write_wav([np.zeros(10, dtype=np.float32)], path, sample_rate=RATE)
    assert listing(tmp_path) == []


def test_wav_failure_keeps_the_previous_file(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        write_wav(exploding([np.zeros(5, dtype=np.int16)] * 3, after=2), path, sample_rate=RATE)
    assert path.read_bytes() == b"previous"
    assert listing(tmp_path) == ["a.wav"]


# ---------------------------------------------------------------------------------------
# MP3


@pytest.mark.parametrize("rate", [44100, 48000])
def test_mp3_duration_tags_and_chapters(tmp_path, rate):
    tl, clips = make_timeline(rate)
    path = tmp_path / "a.mp3"
    write_mp3(chunks_of(tl, clips), path, timeline=tl, sample_rate=rate, title="Evening jaw", album="Routines")
    assert listing(tmp_path) == ["a.mp3"]

    audio = MP3(path)
    assert audio.info.sample_rate == rate
    assert audio.info.channels == 1
    assert audio.info.bitrate == 96000
    assert audio.info.length * rate == pytest.approx(tl.length_samples)  # the Info frame's delay and padding
    assert audio.info.encoder_info.startswith("LAME 3.100") and audio.info.bitrate_mode == BitrateMode.CBR

    tag = ID3(path)
    assert tag.version[:2] == (2, 4)
    assert tag["TIT2"].text == ["Evening jaw"]
    assert tag["TALB"].text == ["Routines"]
    assert tag["TPE1"].text == ["voicecoach"]
    chaps = sorted(tag.getall("CHAP"), key=lambda c: int(c.element_id[3:]))
    assert [c.element_id for c in chaps] == ["chp0", "chp1", "chp2"]
    assert [c.sub_frames["TIT2"].text[0] for c in chaps] == [c.title for c in tl.chapters]
    for frame, chapter in zip(chaps, tl.chapters):
        assert frame.start_time == round(chapter.start_sample * 1000 / rate)
        assert frame.end_time == round(chapter.end_sample * 1000 / rate)
    assert chaps[-1].end_time == 6500
    (toc,) = tag.getall("CTOC")
    assert toc.element_id == "toc"
    assert toc.flags == CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED
    assert list(toc.child_element_ids) == ["chp0", "chp1", "chp2"]


@pytest.mark.parametrize("rate", [44100, 22050])
def test_mp3_decodes_to_exactly_the_tracks_samples(tmp_path, rate):
    """With the Info frame a decoder (the bundled ffmpeg) drops LAME's delay and padding: the
    decoded track has the timeline's length and lines up with the PCM to the sample."""
    tl, clips = make_timeline(rate)
    pcm = np.concatenate(chunks_of(tl, clips)).astype(np.float64)
    path = tmp_path / "a.mp3"
    write_mp3(chunks_of(tl, clips), path, timeline=tl, sample_rate=rate, title="T")
    decoded = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-"],
                             capture_output=True, check=True).stdout
    heard = np.frombuffer(decoded, dtype="<i2").astype(np.float64)
    assert len(heard) == tl.length_samples
    lags = range(-40, 41)
    match = [float(np.dot(pcm[max(0, k):len(pcm) + min(0, k)], heard[max(0, -k):len(heard) - max(0, k)]))
             for k in lags]
    assert lags[int(np.argmax(match))] == 0
    assert np.corrcoef(pcm, heard)[0, 1] > 0.99  # and it is the same sound


def test_mp3_is_deterministic_and_album_optional(tmp_path):
    tl, clips = make_timeline()
    a, b = tmp_path / "a.mp3", tmp_path / "b.mp3"
    write_mp3(chunks_of(tl, clips), a, timeline=tl, sample_rate=RATE, title="T")
    write_mp3(chunks_of(tl, clips), b, timeline=tl, sample_rate=RATE, title="T")
    assert a.read_bytes() == b.read_bytes()
    tag = ID3(a)
    assert "TALB" not in tag and tag["TPE1"].text == ["voicecoach"]


def test_mp3_failure_leaves_nothing(tmp_path):
    tl, clips = make_timeline()
    path = tmp_path / "a.mp3"
    with pytest.raises(RuntimeError, match="boom"):
        write_mp3(exploding(chunks_of(tl, clips), after=5), path, timeline=tl, sample_rate=RATE, title="T")
    assert listing(tmp_path) == []
    with pytest.raises(ValueError):
        write_mp3([], path, timeline=tl, sample_rate=48000, title="T")  # not the timeline's rate
    assert listing(tmp_path) == []


def test_chapter_frames_are_stored_in_time_order():
    # Players that list chapters in frame order (not via the CTOC) must see them in time order,
    # whatever the titles' lengths (mutagen would sort frames by size).
    titles = ["A much longer chapter title than the others", "B", "Medium title", "Another long long title", "C"]
    rate = 44100
    chapters = tuple(Chapter(t, i, i * rate, (i + 1) * rate) for i, t in enumerate(titles))
    tl = Timeline("Order", rate, len(titles) * rate, (), chapters)
    tag = id3_tag(tl, title="Order")
    found = [tag.index(f"chp{i}".encode()) for i in range(len(titles))]
    assert found == sorted(found)
    parsed = ID3(io.BytesIO(tag))
    assert [str(f.sub_frames["TIT2"]) for f in parsed.getall("CHAP")] == titles


@pytest.mark.parametrize("writer, suffix, codec, asked_kbps", [
    ("write_m4b", ".m4b", "aac", 64), ("write_opus", ".opus", "libopus", 32),
])
def test_m4b_and_opus_bitrates(tmp_path, monkeypatch, writer, suffix, codec, asked_kbps):
    """The README's bitrates: what ffmpeg is asked for (its command line), and what comes out for
    sound that needs every bit (dense noise: speech with pauses averages less, as the README says)."""
    import pydub.audio_segment

    commands: list[list[str]] = []
    real_popen = pydub.audio_segment.subprocess.Popen

    def popen(args, *rest, **kwargs):
        commands.append([str(a) for a in args])
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(pydub.audio_segment.subprocess, "Popen", popen)
    seconds = 20
    length = seconds * RATE
    timeline = Timeline("Noise", RATE, length, (), (Chapter("All", 0, 0, length),))
    noise = np.random.default_rng(7).normal(0, 6000, length).clip(-32768, 32767).astype(np.int16)
    path = tmp_path / f"n{suffix}"
    getattr(encode, writer)([noise[:length // 2], noise[length // 2:]], path, timeline=timeline,
                            tags=encode.TrackTags(title="Noise", album="Tests"))
    [command] = [c for c in commands if "-c:a" in c]
    assert command[command.index("-c:a") + 1] == codec and command[command.index("-b:a") + 1] == f"{asked_kbps}k"
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    reported = int(re.search(r"Duration: .*, bitrate: (\d+) kb/s", probe)[1])
    assert 0.75 * asked_kbps <= reported <= 1.3 * asked_kbps, probe

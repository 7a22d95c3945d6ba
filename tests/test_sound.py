"""sound.py: music and sound files decoded and cached; the music bed looped, ducked under speech
and normalized so the mix still meets the loudness target; files replacing the tones."""

from __future__ import annotations

import math
import random
import shutil
import subprocess
import wave
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from voicecoach.cache import Cache
from voicecoach.cli import cli
from voicecoach.errors import RoutineErrors, VoicecoachError
from voicecoach.encode import ffmpeg_exe
from voicecoach.mix import TARGET_LUFS, Mixer, RenderSettings, integrated_loudness, tone_samples
from voicecoach.model import EventKind, Tone
from voicecoach.pipeline import LiveBuild, Settings, build, plan
from voicecoach.schema import routine_schema
from voicecoach.script import load_routine, parse_routine
from voicecoach.sound import (
    MUSIC_LOUDNESS_LUFS,
    decode_audio,
    load_audio,
    load_sound_design,
)

RATE = 44100
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
FAKE = Settings(engine="fake")


def pad(seconds: float, *, rate: int = RATE) -> np.ndarray:
    """A soft chord with a slow swell, stereo: something like a music bed."""
    t = np.arange(round(seconds * rate)) / rate
    x = sum(a * np.sin(2 * np.pi * f * t) for f, a in ((220.0, 0.3), (277.2, 0.2), (329.6, 0.2), (440.0, 0.1)))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t))
    return np.stack([x, np.roll(x, 50)], axis=1)


def write_wav(path: Path, samples: np.ndarray, *, rate: int = RATE) -> Path:
    samples = samples.reshape(len(samples), -1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(samples.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.round(samples * 20000).astype("<i2").tobytes())
    return path


def encode(source: Path, target: Path) -> Path:
    """Another format of ``source`` by the bundled ffmpeg (the codec follows the extension)."""
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), str(target)],
                   check=True)
    return target


def routine_with(folder: Path, extra: str, *, source: Path = SCRIPTS / "quick-3-minute.yaml") -> Path:
    """A library routine copied into ``folder`` (with its blocks) and ``extra`` top-level lines."""
    shutil.copytree(SCRIPTS / "library", folder / "library", dirs_exist_ok=True)
    text = source.read_text(encoding="utf-8").replace("\nsteps:", f"\n{extra}\nsteps:", 1)
    path = folder / f"with-{source.name}"
    path.write_text(text, encoding="utf-8")
    return path


def settings_for(tmp_path: Path, **kw) -> Settings:
    return Settings(engine="fake", cache_dir=tmp_path / "cache", **kw)


def db(x: float) -> float:
    return 20 * math.log10(x) if x > 0 else -math.inf


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if len(x) else 0.0


# ---------------------------------------------------------------------------------------
# Decoding


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Six seconds of the pad as 48 kHz stereo WAV, and as MP3, FLAC, OGG and M4A."""
    folder = tmp_path_factory.mktemp("sources")
    wav = write_wav(folder / "pad.wav", pad(6.0, rate=48000), rate=48000)
    files = {"wav": wav}
    for ext in ("mp3", "flac", "ogg", "m4a"):
        files[ext] = encode(wav, folder / f"pad.{ext}")
    return files


@pytest.mark.parametrize("ext", ["wav", "mp3", "flac", "ogg", "m4a"])
def test_every_format_decodes_to_mono_at_the_track_rate(sources, ext):
    samples = decode_audio(sources[ext], sample_rate=RATE)
    reference = decode_audio(sources["wav"], sample_rate=RATE)
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert abs(len(samples) - 6.0 * RATE) < 0.1 * RATE  # codec priming and padding are short
    # the same sound: the level within 1 dB of the WAV's (lossy codecs change the samples a little)
    assert abs(db(rms(samples)) - db(rms(reference))) < 1.0
    assert np.array_equal(samples, decode_audio(sources[ext], sample_rate=RATE)), "decoding is deterministic"


def test_wav_is_resampled_and_mixed_to_mono(sources):
    samples = decode_audio(sources["wav"], sample_rate=RATE)
    assert len(samples) == 6 * RATE
    spectrum = np.abs(np.fft.rfft(samples[:RATE].astype(float)))
    assert abs(np.argmax(spectrum) - 220) <= 1  # the loudest partial, at 220 Hz: no pitch change


def test_decoded_audio_is_cached_by_content(sources, tmp_path, monkeypatch):
    cache = Cache(tmp_path / "cache")
    first = load_audio(sources["flac"], sample_rate=RATE, cache=cache)
    import voicecoach.sound as sound_module

    monkeypatch.setattr(sound_module, "decode_audio", lambda *a, **k: pytest.fail("decoded again"))
    assert np.array_equal(load_audio(sources["flac"], sample_rate=RATE, cache=cache), first)
    copy = shutil.copy(sources["flac"], tmp_path / "renamed.flac")  # same bytes elsewhere: still a hit
    assert np.array_equal(load_audio(copy, sample_rate=RATE, cache=cache), first)
    monkeypatch.undo()
    other_rate = load_audio(sources["flac"], sample_rate=22050, cache=cache)
    assert abs(len(other_rate) - len(first) / 2) <= 2


def test_undecodable_file_is_a_located_error(tmp_path):
    (tmp_path / "song.mp3").write_bytes(b"this is not an mp3 " * 100)
    path = routine_with(tmp_path, "music: {file: song.mp3}")
    with pytest.raises(VoicecoachError) as info:
        build(path, settings=settings_for(tmp_path))
    assert info.value.location is not None and info.value.location.path == str(path)
    assert "music file 'song.mp3' cannot be decoded" in info.value.message
    assert "WAV, MP3, FLAC, OGG" in info.value.hint


# ---------------------------------------------------------------------------------------
# The routine format


@pytest.mark.parametrize("extra, message", [
    ("music: {file: missing.wav}", "music file 'missing.wav' was not found"),
    ("music: {file: ../outside.wav}", "music file '../outside.wav' is outside the routine's folder"),
    ("music: {file: /etc/passwd.wav}", "music file path '/etc/passwd.wav' is absolute"),
    ("music: {file: notes.txt}", "music file 'notes.txt' is not a WAV, MP3, FLAC, OGG or M4A file"),
    ("music: calm.wav", "music: expected a mapping, got 'calm.wav'"),
    ("music: {volume: 0.5}", "music needs 'file'"),
    ("music: {file: pad.wav, volum: 0.5}", "unknown key 'volum' in music"),
    ("music: {file: pad.wav, volume: 3}", "music volume: 3 is outside 0 to 2"),
    ("music: {file: pad.wav, duck: loud}", "music duck: expected a number, got 'loud'"),
    ("sounds: {gong: pad.wav}", "unknown key 'gong' in sounds"),
    ("sounds: {bell: pad.wav, release: pad.wav}", "sounds: 'release' and 'bell' are the same sound"),
    ("sounds: {chime: missing.ogg}", "sound chime 'missing.ogg' was not found"),
])
def test_music_and_sounds_are_checked_where_they_are_written(tmp_path, extra, message):
    folder = tmp_path / "routines"
    folder.mkdir()
    write_wav(folder / "pad.wav", pad(1.0))
    (tmp_path / "outside.wav").write_bytes((folder / "pad.wav").read_bytes())
    path = routine_with(folder, extra)
    with pytest.raises(VoicecoachError) as info:
        load_routine(path)
    errors = info.value.errors if isinstance(info.value, RoutineErrors) else [info.value]
    assert any(message in e.message for e in errors), [e.message for e in errors]
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith(extra.split(":")[0]))
    assert all(e.location.path == str(path) and e.location.line == line and e.hint for e in errors)


def test_music_and_sounds_parse(tmp_path):
    write_wav(tmp_path / "pad.wav", pad(1.0))
    encode(tmp_path / "pad.wav", tmp_path / "gong.ogg")
    routine = load_routine(routine_with(tmp_path, "music: {file: pad.wav, volume: 0.5, duck: 24}\n"
                                                  "sounds: {release: gong.ogg, tick: pad.wav}"))
    assert routine.music.file == str((tmp_path / "pad.wav").resolve())
    assert (routine.music.volume, routine.music.duck_db) == (0.5, 24)
    assert [(s.tone, Path(s.file).name) for s in routine.sounds] == [(Tone.BELL, "gong.ogg"), (Tone.TICK, "pad.wav")]


def test_a_routine_not_read_from_a_file_cannot_use_files():
    routine = parse_routine("routine: R\nmusic: {file: calm.mp3}\nsteps: [{say: Hello.}]\n")
    assert routine.music.file == "calm.mp3"  # kept as written; the parser cannot look
    with pytest.raises(VoicecoachError, match="cannot be read: the routine was not read from a file"):
        build(routine, settings=Settings(engine="fake", use_cache=False))


@pytest.mark.parametrize("top", [
    "music: {file: calm.mp3}", "music: {file: calm.m4a, volume: 1.5, duck: 20}", "music: {file: calm.aiff}",
    "music: {volume: 1}", "music: {file: calm.mp3, volume: 2.5}", "music: calm.mp3",
    "sounds: {chime: bowl.wav, finish: end.flac}", "sounds: {bell: a.wav, release: b.wav}", "sounds: {gong: a.wav}",
    "engine: piper", "engine: festival", "voice: models/de_DE-thorsten-medium.onnx",
])
def test_schema_agrees_with_the_parser_on_sound_settings(top):
    text = f"routine: R\n{top}\nsteps: [{{say: hi}}]\n"
    try:
        parse_routine(text)
        parsed = True
    except VoicecoachError:
        parsed = False
    assert jsonschema.Draft202012Validator(routine_schema()).is_valid(yaml.safe_load(text)) == parsed


# ---------------------------------------------------------------------------------------
# The music bed


@pytest.fixture(scope="module")
def music_build(tmp_path_factory):
    """The quick routine (fake speech) with 7 s of music under it: looped many times."""
    folder = tmp_path_factory.mktemp("music")
    write_wav(folder / "pad.wav", pad(7.0))
    path = routine_with(folder, "music: {file: pad.wav}")
    return build(path, settings=Settings(engine="fake", cache_dir=folder / "cache"))


def music_component(result, **render) -> np.ndarray:
    """The music alone, as mixed: the unlimited mix with it minus the one without."""
    settings = RenderSettings(limit=False, **render)
    length = result.timeline.length_samples
    with_music = Mixer(result.timeline, result.speech.clip, settings=settings, tone=result.sound.tone_samples,
                       background=result.sound.background(result.timeline)).render(0, length)
    without = Mixer(result.timeline, result.speech.clip, settings=settings, tone=result.sound.tone_samples).render(0, length)
    return with_music.astype(np.float64) - without.astype(np.float64)


def speech_stretches(timeline) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Windows well inside speech, and windows in silences at least 2 s away from any speech."""
    rate = timeline.sample_rate
    speech = sorted((e.start_sample, e.end_sample) for e in timeline.events if e.kind is EventKind.SPEECH)
    inside = [(s + (e - s) // 4, e - (e - s) // 4) for s, e in speech if e - s >= rate]
    between = []
    for (_, end), (start, _) in zip(speech, speech[1:]):
        if start - end >= 5 * rate:
            between.append((end + 2 * rate, start - 2 * rate))
    return inside, between


def level_db(x: np.ndarray, windows: list[tuple[int, int]]) -> float:
    return db(rms(np.concatenate([x[a:b] for a, b in windows])))


def test_music_is_ducked_under_speech_by_at_least_12_db(music_build):
    music = music_component(music_build)
    inside, between = speech_stretches(music_build.timeline)
    assert len(inside) >= 5 and len(between) >= 3
    under, free = level_db(music, inside), level_db(music, between)
    assert free - under >= 12, f"music under speech {under:.1f} dB, between {free:.1f} dB"
    assert free - under == pytest.approx(18, abs=1.5)  # the default duck, 18 dB


def test_music_sits_at_its_loudness_between_speech(music_build):
    music = music_component(music_build) / 32768
    _, between = speech_stretches(music_build.timeline)
    free = np.concatenate([music[a:b] for a, b in between])
    assert integrated_loudness(free, sample_rate=RATE) == pytest.approx(MUSIC_LOUDNESS_LUFS + 1.3, abs=1.0)


def test_duck_and_volume_settings(tmp_path):
    write_wav(tmp_path / "pad.wav", pad(7.0))
    levels = {}
    for extra in ("music: {file: pad.wav, duck: 0}", "music: {file: pad.wav, duck: 30, volume: 0.5}"):
        result = build(routine_with(tmp_path, extra), settings=settings_for(tmp_path))
        music = music_component(result)
        inside, between = speech_stretches(result.timeline)
        levels[extra] = (level_db(music, inside), level_db(music, between))
    no_duck, deep = levels.values()
    assert abs(no_duck[0] - no_duck[1]) < 1.5
    assert deep[1] - deep[0] == pytest.approx(30, abs=2)
    assert no_duck[1] - deep[1] == pytest.approx(6.02, abs=0.3)  # volume 0.5


def test_music_mix_meets_the_loudness_target_and_peak_ceiling(music_build, tmp_path):
    track = np.concatenate(list(music_build.chunks())).astype(np.float64) / 32768
    assert len(track) == music_build.timeline.length_samples
    loudness = integrated_loudness(track, sample_rate=RATE)
    assert abs(loudness - TARGET_LUFS) <= 1.0
    assert db(float(np.max(np.abs(track)))) <= -1.0 + 1e-3
    plain = build(SCRIPTS / "quick-3-minute.yaml", settings=settings_for(tmp_path))
    plain_track = np.concatenate(list(plain.chunks())).astype(np.float64) / 32768
    assert abs(loudness - integrated_loudness(plain_track, sample_rate=RATE)) < 0.5  # music barely moves it


def test_compile_exports_the_ducked_normalized_track(music_build, tmp_path):
    routine = music_build.routine.path
    result = CliRunner().invoke(cli, ["compile", routine, "-o", str(tmp_path / "m.wav"), "--engine", "fake",
                                      "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    with wave.open(str(tmp_path / "m.wav")) as handle:
        exported = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    assert np.array_equal(exported, np.concatenate(list(music_build.chunks())))


def test_any_span_mixes_exactly_as_the_whole_track(music_build):
    mixer = music_build.mixer()
    whole = mixer.render(0, mixer.length)
    rng = random.Random(7)
    ramps = [e.start_sample for e in music_build.timeline.events if e.kind is EventKind.SPEECH][:20]
    starts = [rng.randrange(mixer.length) for _ in range(30)] + [max(0, s - 5000) for s in ramps]
    starts += [7 * RATE - 100, 2 * 7 * RATE - 3 * RATE, mixer.length - 3 * RATE]  # loop seams, fade-out
    for a in starts:
        b = min(mixer.length, a + rng.choice([1, 17, 4096, 44100, 200_000]))
        assert np.array_equal(mixer.render(a, b), whole[a:b]), (a, b)


def test_music_loops_with_a_crossfade_and_fades_out(music_build):
    bed = music_build.sound.music
    n = np.arange(0, music_build.timeline.length_samples)
    values = bed.value(n)
    first = len(bed.samples) - min(2 * RATE, len(bed.samples) // 4)  # the loop starts a crossfade before the end
    assert np.array_equal(values[:first], bed.samples[:first])
    period = first
    assert np.array_equal(values[first : first + period], values[first + period : first + 2 * period])
    steps = np.abs(np.diff(values))
    assert steps.max() < 4 * np.abs(np.diff(bed.samples)).max(), "no click where the loop meets its start"
    music = music_component(music_build)
    assert rms(music[-100:]) < 0.02 * rms(music[-4 * RATE : -3 * RATE])  # faded out at the end


def test_live_build_with_music_plays_exactly_the_export(tmp_path):
    write_wav(tmp_path / "pad.wav", pad(3.0))
    path = routine_with(tmp_path, "music: {file: pad.wav, volume: 1.5}")
    settings = settings_for(tmp_path)
    exported = np.concatenate(list(build(path, settings=settings).chunks()))
    live = LiveBuild(path, settings=settings_for(tmp_path, use_cache=False))
    try:
        played = np.concatenate([live.read(a, 30_000) for a in range(0, len(exported), 30_000)])
    finally:
        live.close()
    assert np.array_equal(played, exported)


def test_track_key_covers_the_music(tmp_path):
    write_wav(tmp_path / "pad.wav", pad(3.0))
    plain = build(SCRIPTS / "quick-3-minute.yaml", settings=settings_for(tmp_path))
    keys = {"plain": plain.track_key}
    for name, extra in {"music": "music: {file: pad.wav}", "louder": "music: {file: pad.wav, volume: 1.2}",
                        "ducked": "music: {file: pad.wav, duck: 10}"}.items():
        keys[name] = build(routine_with(tmp_path, extra), settings=settings_for(tmp_path)).track_key
    write_wav(tmp_path / "pad.wav", pad(3.5))  # same name, new sound
    keys["changed"] = build(routine_with(tmp_path, "music: {file: pad.wav}"), settings=settings_for(tmp_path)).track_key
    assert len(set(keys.values())) == len(keys)
    unchanged = build(routine_with(tmp_path, "music: {file: pad.wav}"), settings=settings_for(tmp_path))
    assert unchanged.track_key == keys["changed"]


# ---------------------------------------------------------------------------------------
# Files replacing the tones


def test_sounds_replace_tones_in_the_timeline_and_the_mix(tmp_path):
    rate = RATE
    chime = np.concatenate([np.zeros(rate // 10), 0.8 * np.sin(2 * np.pi * 523 * np.arange(rate // 2) / rate)])
    write_wav(tmp_path / "chime.wav", chime[:, None])
    encode(tmp_path / "chime.wav", tmp_path / "chime.flac")
    path = routine_with(tmp_path, "sounds: {chime: chime.flac}")
    result = build(path, settings=settings_for(tmp_path))
    design = result.sound
    custom = design.tone_samples(Tone.CHIME)
    # leading silence trimmed (to a 10 ms margin), peak of the built-in chime, ends at exactly zero
    assert abs(len(custom) - (rate // 2 + round(0.01 * rate))) < 0.005 * rate
    assert np.max(np.abs(custom)) == pytest.approx(np.max(np.abs(tone_samples(Tone.CHIME, sample_rate=rate))), rel=1e-6)
    assert custom[0] == 0 and custom[-1] == 0
    chimes = [e for e in result.timeline.events if e.tone is Tone.CHIME]
    assert chimes and all(e.length_samples == len(custom) for e in chimes)
    ticks = [e for e in result.timeline.events if e.tone is Tone.TICK]
    assert all(np.array_equal(design.tone_samples(Tone.TICK), tone_samples(Tone.TICK, sample_rate=rate)) for _ in ticks)
    # the preview schedules the same tone lengths
    assert [e.length_samples for e in plan(path).events if e.tone is Tone.CHIME] == [len(custom)] * len(chimes)
    plain = build(SCRIPTS / "quick-3-minute.yaml", settings=settings_for(tmp_path))
    assert plain.track_key != result.track_key


def test_silent_or_long_sound_files_are_refused(tmp_path):
    write_wav(tmp_path / "silence.wav", np.zeros((RATE, 1)))
    write_wav(tmp_path / "long.wav", pad(31.0)[:, :1] * 0.1)
    for name, message in (("silence.wav", "is silent"), ("long.wav", "is longer than 30 seconds")):
        path = routine_with(tmp_path, f"sounds: {{tick: {name}}}")
        with pytest.raises(VoicecoachError, match=f"tick sound '{name}' {message}") as info:
            load_sound_design(load_routine(path), sample_rate=RATE)
        assert info.value.location.line == path.read_text().splitlines().index(f"sounds: {{tick: {name}}}") + 1

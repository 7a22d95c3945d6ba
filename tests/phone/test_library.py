"""phone/library.py and `voicecoach export`: many routines, names, reuse, split tracks, failures."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from voicecoach import encode
from voicecoach.cli import cli
from voicecoach.phone.cover import routine_cover_png
from voicecoach.formats import FORMAT_NAMES, FORMATS
from voicecoach.phone.library import (
    MANIFEST_NAME,
    LibrarySettings,
    Outcome,
    export_key,
    export_library,
    read_manifest,
    routine_key,
    slugify,
)
from voicecoach.pipeline import Settings, build
from voicecoach.script import find_routine_files, is_block_file, load_routine, parse_routine

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
NOW = datetime(2025, 3, 1, 7, 30, tzinfo=timezone.utc)
TINY = """\
routine: Tiny & quick
description: Two short steps for tests.
steps:
  - say: Hello.
  - massage: Cheek sweep
    area: cheeks
    strokes: 2
    tempo: 1s
  - rest: 2s
"""
TOO_FAST = """\
routine: Too fast
steps:
  - massage: Rush
    strokes: 3
    tempo: 1s
    cue: this cue is far too long to be spoken within a single one second stroke
"""


@pytest.fixture
def fake(tmp_path) -> Settings:
    return Settings(engine="fake", cache_dir=tmp_path / "cache")


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "routines" / "tiny.yaml"
    path.parent.mkdir()
    path.write_text(TINY, encoding="utf-8")
    return path


def export(paths, out, settings, **library):
    return export_library([*map(str, paths)], out, settings=settings, library=LibrarySettings(**library), now=NOW)


def ms_chapters(timeline) -> list[tuple[int, int, str]]:
    rate = timeline.sample_rate
    return [(encode.ms(c.start_sample, rate), encode.ms(c.end_sample, rate), c.title) for c in timeline.chapters]


def id3_chapters(path) -> list[tuple[int, int, str]]:
    return sorted((c.start_time, c.end_time, c.sub_frames["TIT2"].text[0]) for c in ID3(path).getall("CHAP"))


def test_mp3_export_has_the_timelines_chapters_cover_and_chapters_json(tmp_path, tiny, fake):
    out = tmp_path / "phone"
    report = export([tiny], out, fake)
    [result] = report.results
    assert result.outcome is Outcome.EXPORTED and not report.failed
    assert not list((fake.cache_dir / "tracks").rglob("*.*"))  # its clips are cached; its track is this file
    timeline = build(tiny, settings=fake).timeline
    mp3 = out / "tiny-quick.mp3"
    assert id3_chapters(mp3) == ms_chapters(timeline)
    tag = ID3(mp3)
    assert tag["TIT2"].text == ["Tiny & quick"] and tag["CTOC:toc"].child_element_ids == ["chp0", "chp1", "chp2"]
    assert tag.getall("APIC")[0].data == (out / "tiny-quick.png").read_bytes() == routine_cover_png(load_routine(tiny))
    assert MP3(mp3).info.length * timeline.sample_rate == pytest.approx(timeline.length_samples)  # gapless
    chapters = json.loads((out / "tiny-quick.chapters.json").read_text())
    assert chapters["version"] == "1.2.0"
    assert [(round(c["startTime"] * 1000), c["title"]) for c in chapters["chapters"]] == \
        [(s, t) for s, _, t in ms_chapters(timeline)]
    entry = read_manifest(out)["tiny-quick"]
    assert entry.exported_at == "2025-03-01T07:30:00Z" and entry.areas == ("cheeks",)
    assert entry.length_samples == timeline.length_samples and entry.steps == 3
    assert entry.files == {name: (out / name).stat().st_size for name in
                           ("tiny-quick.png", "tiny-quick.mp3", "tiny-quick.chapters.json")}
    assert sorted(os.listdir(out)) == sorted([MANIFEST_NAME, *entry.files])  # no temporary files left


@pytest.mark.parametrize("fmt", [FORMATS["m4b"], FORMATS["opus"], FORMATS["flac"]], ids=lambda f: f.name)
def test_m4b_opus_and_flac_exports_have_the_timelines_chapters(tmp_path, tiny, fake, fmt):
    out = tmp_path / "phone"
    export([tiny], out, fake, format=fmt)
    timeline = build(tiny, settings=fake).timeline
    path = out / f"tiny-quick{fmt.extension}"
    chapters = encode.read_chapters(path)
    assert [(round(s * 1000), t) for s, _, t in chapters] == [(s, t) for s, _, t in ms_chapters(timeline)]
    if fmt is FORMATS["m4b"]:
        from mutagen.mp4 import MP4

        audio = MP4(path)
        assert bytes(audio["covr"][0]) == (out / "tiny-quick.png").read_bytes()
        assert audio.info.length == pytest.approx(timeline.duration_s, abs=0.05)
        assert chapters[-1][1] == pytest.approx(timeline.duration_s, abs=0.002)
    assert read_manifest(out)["tiny-quick"].format == fmt.name


def test_split_tracks_add_up_with_track_numbers_and_a_playlist(tmp_path, tiny, fake):
    out = tmp_path / "phone"
    export([tiny], out, fake, split=True)
    timeline = build(tiny, settings=fake).timeline
    entry = read_manifest(out)["tiny-quick"]
    names = ["tiny-quick/01-hello.mp3", "tiny-quick/02-cheek-sweep.mp3", "tiny-quick/03-rest.mp3"]
    assert [t.file for t in entry.tracks] == names
    assert [t.length_samples for t in entry.tracks] == [c.end_sample - c.start_sample for c in timeline.chapters]
    assert sum(t.length_samples for t in entry.tracks) == timeline.length_samples
    for number, (name, chapter) in enumerate(zip(names, timeline.chapters), 1):
        tag = ID3(out / name)
        assert tag["TRCK"].text == [f"{number}/3"] and tag["TIT2"].text == [chapter.title]
        assert tag["TALB"].text == ["Tiny & quick"] and tag.getall("APIC")
        # the Info frame makes each track exactly its step: gapless players join them seamlessly
        assert MP3(out / name).info.length * timeline.sample_rate == pytest.approx(
            chapter.end_sample - chapter.start_sample)
    playlist = (out / "tiny-quick.m3u8").read_text(encoding="utf-8").splitlines()
    assert playlist[:2] == ["#EXTM3U", "#PLAYLIST:Tiny & quick"]
    assert playlist[3::2] == names and playlist[2].startswith("#EXTINF:") and playlist[2].endswith(",Hello.")
    assert not (out / "tiny-quick.mp3").exists()


def test_unchanged_routines_are_not_encoded_again(tmp_path, tiny, fake):
    out = tmp_path / "phone"
    export([tiny], out, fake)
    mp3 = out / "tiny-quick.mp3"
    stamp = mp3.stat().st_mtime_ns
    assert export([tiny], out, fake).results[0].outcome is Outcome.UNCHANGED
    tiny.write_text("# a comment moves every line: no change in sound\n" + TINY, encoding="utf-8")
    assert export([tiny], out, fake).results[0].outcome is Outcome.UNCHANGED
    assert mp3.stat().st_mtime_ns == stamp
    tiny.write_text(TINY.replace("strokes: 2", "strokes: 3"), encoding="utf-8")
    assert export([tiny], out, fake).results[0].outcome is Outcome.EXPORTED
    assert mp3.stat().st_mtime_ns != stamp
    mp3.unlink()
    assert export([tiny], out, fake).results[0].outcome is Outcome.EXPORTED and mp3.exists()
    with mp3.open("ab") as handle:  # damaged: the recorded size no longer matches
        handle.write(b"x")
    assert export([tiny], out, fake).results[0].outcome is Outcome.EXPORTED


def _tone_wav(path: Path, freq: float) -> None:
    import wave

    import numpy as np

    samples = (0.3 * np.sin(2 * np.pi * freq * np.arange(44100 * 2) / 44100) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(44100)
        handle.writeframes(samples.tobytes())


def test_new_music_under_the_same_name_is_exported_again(tmp_path, tiny, fake):
    # The export key covers what the music sounds like, not just its file name.
    _tone_wav(tiny.parent / "calm.wav", 220)
    tiny.write_text(TINY.replace("steps:", "music: {file: calm.wav}\nsteps:", 1), encoding="utf-8")
    out = tmp_path / "phone"
    assert export([tiny], out, fake).results[0].outcome is Outcome.EXPORTED
    assert export([tiny], out, fake).results[0].outcome is Outcome.UNCHANGED
    _tone_wav(tiny.parent / "calm.wav", 330)
    assert export([tiny], out, fake).results[0].outcome is Outcome.EXPORTED


def test_the_routines_own_engine_is_part_of_the_key(tmp_path, tiny):
    # With no --engine, a routine's `engine:` decides; switching it must not look "unchanged".
    settings = Settings(cache_dir=tmp_path / "cache")
    identities = []

    def identify(engine: str, voice: str, folder) -> str:
        identities.append(engine)
        return f"{engine}-identity"

    a = load_routine(tiny)
    b = parse_routine(TINY.replace("steps:", "engine: fake\nsteps:", 1), path=str(tiny))
    key_a = export_key(a, settings=settings, library=LibrarySettings(), identify=identify)
    key_b = export_key(b, settings=settings, library=LibrarySettings(), identify=identify)
    assert identities == ["piper", "fake"] and key_a != key_b  # no engine: auto picks Piper for English


def test_a_new_format_or_title_replaces_the_old_files(tmp_path, tiny, fake):
    out = tmp_path / "phone"
    export([tiny], out, fake, split=True)
    report = export([tiny], out, fake, format=FORMATS["opus"])
    assert report.results[0].outcome is Outcome.EXPORTED
    assert sorted(os.listdir(out)) == sorted([MANIFEST_NAME, "tiny-quick.opus", "tiny-quick.chapters.json",
                                              "tiny-quick.png"])
    (path, layout, files), = report.replaced  # said, not done silently
    assert path == str(tiny) and layout == "mp3 --split" and files[0] == "tiny-quick.m3u8"
    assert len(files) == 4 and all(name.startswith("tiny-quick/") for name in files[1:])  # 3 tracks
    tiny.write_text(TINY.replace("Tiny & quick", "Tiny, renamed"), encoding="utf-8")
    report = export([tiny], out, fake, format=FORMATS["opus"])
    assert sorted(read_manifest(out)) == ["tiny-renamed"]
    assert not (out / "tiny-quick.opus").exists() and (out / "tiny-renamed.opus").exists()
    assert report.replaced[0][2] == ("tiny-quick.chapters.json", "tiny-quick.opus", "tiny-quick.png")
    tiny.write_text(TINY.replace("Tiny & quick", "Tiny, renamed").replace("Hello.", "Hello again."), encoding="utf-8")
    assert export([tiny], out, fake, format=FORMATS["opus"]).replaced == ()  # the same export, renewed


def test_export_in_another_format_says_what_it_replaced(run, tmp_path, tiny):
    out = tmp_path / "phone"
    assert run("export", tiny, "-d", out, "--engine", "fake").exit_code == 0
    again = run("export", tiny, "-d", out, "--engine", "fake", "--format", "m4b")
    assert again.exit_code == 0
    assert again.stderr == f"note: {tiny}: replaced its earlier mp3 export (tiny-quick.mp3)\n"
    assert (out / "tiny-quick.m4b").exists() and not (out / "tiny-quick.mp3").exists()


def test_same_titles_get_distinct_stable_names(tmp_path, tiny, fake):
    twin = tiny.parent / "twin.yaml"
    twin.write_text(TINY.replace("Hello.", "Hi."), encoding="utf-8")
    out = tmp_path / "phone"
    export([tiny, twin], out, fake)
    assert (out / "tiny-quick.mp3").exists() and (out / "tiny-quick-2.mp3").exists()
    export([twin], out, fake)  # alone, it keeps its name
    assert read_manifest(out)["tiny-quick-2"].source == os.path.realpath(twin)
    assert read_manifest(out)["tiny-quick"].source == os.path.realpath(tiny)


def test_same_routine_same_bytes(tmp_path, tiny, fake):
    a, b = tmp_path / "a", tmp_path / "b"
    export([tiny], a, fake, format=FORMATS["m4b"])
    export([tiny], b, Settings(engine="fake", cache_dir=tmp_path / "other-cache"), format=FORMATS["m4b"])
    for name in ("tiny-quick.m4b", "tiny-quick.png", "tiny-quick.chapters.json", MANIFEST_NAME):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_a_folder_exports_in_parallel_and_failures_do_not_stop_the_others(tmp_path, tiny, fake):
    folder = tiny.parent
    (folder / "more").mkdir()
    (folder / "more" / "second.yaml").write_text(TINY.replace("Tiny & quick", "Second one"), encoding="utf-8")
    (folder / "block.yaml").write_text("steps:\n  - say: Included elsewhere.\n", encoding="utf-8")
    (folder / "bad.yaml").write_text("routine: Bad\nsteps:\n  - exercise: Lift\n    hodl: 5s\n", encoding="utf-8")
    (folder / "too-fast.yaml").write_text(TOO_FAST, encoding="utf-8")
    (folder / ".hidden.yaml").write_text(TINY, encoding="utf-8")
    out = tmp_path / "phone"
    report = export([folder], out, fake, jobs=2)
    by_name = {Path(r.path).name: r for r in report.results}
    assert sorted(by_name) == ["bad.yaml", "block.yaml", "second.yaml", "tiny.yaml", "too-fast.yaml"]
    assert by_name["block.yaml"].outcome is Outcome.SKIPPED and "include-only" in by_name["block.yaml"].message
    assert by_name["bad.yaml"].outcome is Outcome.FAILED
    assert by_name["bad.yaml"].message.startswith(f"{folder / 'bad.yaml'}:4:5: unknown key 'hodl'")
    failed = by_name["too-fast.yaml"]  # fails in its worker, at compile time
    assert failed.outcome is Outcome.FAILED and failed.message.startswith(f"{folder / 'too-fast.yaml'}:3:5: ")
    assert by_name["tiny.yaml"].outcome is by_name["second.yaml"].outcome is Outcome.EXPORTED
    assert report.failed
    assert sorted(read_manifest(out)) == ["second-one", "tiny-quick"]
    assert not list(out.glob("too-fast*"))


def test_a_library_export_makes_all_speech_first_with_one_engine_per_voice(tmp_path, tiny, monkeypatch):
    from voicecoach.engines import ENGINES, EngineSpec
    from voicecoach.engines.fake import FakeEngine

    made: list[list[str]] = []  # the texts each engine object synthesized

    class Counting(FakeEngine):
        def __init__(self) -> None:
            self.texts: list[str] = []
            made.append(self.texts)

        def synthesize(self, texts, **kw):
            self.texts.extend(texts)
            yield from super().synthesize(texts, **kw)

    monkeypatch.setitem(ENGINES, "counting", EngineSpec(name="counting", about="counts", create=Counting))
    folder = tiny.parent
    (folder / "second.yaml").write_text(TINY.replace("Tiny & quick", "Second one"), encoding="utf-8")
    (folder / "third.yaml").write_text(TINY.replace("Tiny & quick", "Third").replace("Hello.", "Good day."),
                                       encoding="utf-8")
    settings = Settings(engine="counting", cache_dir=tmp_path / "cache")
    report = export([folder], tmp_path / "phone", settings, jobs=1)  # one worker: the builds run here, seen
    assert [r.outcome for r in report.results] == [Outcome.EXPORTED] * 3
    busy = [texts for texts in made if texts]
    assert len(busy) == 1  # one engine (one model load) made the speech of the whole library ...
    assert len(busy[0]) == len(set(busy[0])) > 0  # ... each phrase once, shared ones too
    assert "Good day." in busy[0] and "Hello." in busy[0]
    clean = Settings(engine="fake", cache_dir=tmp_path / "clean")  # the same bytes as one by one, uncached
    for file, name in (("tiny.yaml", "tiny-quick"), ("second.yaml", "second-one"), ("third.yaml", "third")):
        export([folder / file], tmp_path / f"one-{name}", clean)
        assert (tmp_path / f"one-{name}" / f"{name}.mp3").read_bytes() == (tmp_path / "phone" / f"{name}.mp3").read_bytes()


def test_a_voice_new_to_the_cache_starts_loading_while_the_library_is_read(tmp_path, tiny, monkeypatch):
    """The engine that names the voice for the export keys is the one that speaks the library;
    a model the cache has not hashed yet (so no clip of it either) starts loading at once."""
    from voicecoach.engines import ENGINES, EngineSpec
    from voicecoach.engines.fake import FakeEngine
    from voicecoach.sound import file_sha256

    model = tmp_path / "voice.model"
    model.write_bytes(b"weights")
    events: list[tuple[str, int]] = []  # (what, which engine object)
    engines: list[object] = []

    class Warming(FakeEngine):
        name = "warming"

        def __init__(self) -> None:
            engines.append(self)

        def prestart(self, voice: str) -> None:
            events.append(("prestart", engines.index(self)))

        def synthesize(self, texts, **kw):
            events.append(("synthesize", engines.index(self)))
            yield from super().synthesize(texts, **kw)

    def identity(voice, file_hash):
        return f"model:{(file_hash or file_sha256)(str(model))}"

    monkeypatch.setitem(ENGINES, "warming", EngineSpec(name="warming", about="loads", create=Warming,
                                                       voice_identity=identity))
    from voicecoach.phone import library

    def ahead(*args, **kw):
        events.append(("speech ahead", -1))
        return synthesize_ahead(*args, **kw)

    synthesize_ahead = library.synthesize_ahead
    monkeypatch.setattr(library, "synthesize_ahead", ahead)
    folder = tiny.parent
    (folder / "second.yaml").write_text(TINY.replace("Tiny & quick", "Second one"), encoding="utf-8")
    settings = Settings(engine="warming", cache_dir=tmp_path / "cache")
    assert not export([folder], tmp_path / "phone", settings, jobs=1).failed
    # one engine object: loading while the files were read, then speaking
    assert events[:2] == [("prestart", 0), ("speech ahead", -1)]
    assert set(events[2:]) == {("prestart", 0), ("synthesize", 0)}  # (its first miss asks again: a no-op)
    events.clear()
    assert not export([folder], tmp_path / "again", settings, jobs=1).failed  # the cache knows the model
    assert events == [("speech ahead", -1)]  # and has every clip: nothing started
    events.clear()
    one, before = tmp_path / "one", len(engines)
    one.mkdir()
    (one / "tiny.yaml").write_text(TINY, encoding="utf-8")
    assert not export([one], tmp_path / "single", Settings(engine="warming", cache_dir=tmp_path / "fresh"),
                      jobs=1).failed
    assert len(engines) == before + 2 and ("prestart", before) not in events  # one routine is built on
    # its own (its build's engine warms up): the keys' engine object is not started for nothing
    events.clear()
    (one / "block.yaml").write_text("steps:\n  - rest: 2s\n", encoding="utf-8")  # two files, one routine
    before = len(engines)
    assert not export([one], tmp_path / "mixed", Settings(engine="warming", cache_dir=tmp_path / "third"),
                      jobs=1).failed
    # the engine that started loading is the one that speaks it (the build's own is never started)
    assert events[:2] == [("prestart", before), ("speech ahead", -1)] and ("synthesize", before) in events
    assert {which for _, which in events} == {before, -1}


def test_the_export_keys_open_each_cache_folder_once(tmp_path, monkeypatch):
    """Naming a voice model for every routine's key tidies its cache folder once, not per routine
    (opening a cache scans every clip folder for stale and old-format files)."""
    from voicecoach.cache import Cache
    from voicecoach.engines import ENGINES, EngineSpec
    from voicecoach.engines.fake import FakeEngine
    from voicecoach.phone.library import _Identifier
    from voicecoach.sound import file_sha256

    class Hashing(FakeEngine):
        name = "hashing"

    model = tmp_path / "voice.model"
    model.write_bytes(b"weights")
    monkeypatch.setitem(ENGINES, "hashing", EngineSpec(
        name="hashing", about="hashes its model", create=Hashing,
        voice_identity=lambda voice, file_hash: f"model:{(file_hash or file_sha256)(str(model))}"))
    sweeps: list[object] = []
    tidy = Cache.remove_old_format
    monkeypatch.setattr(Cache, "remove_old_format", lambda self: sweeps.append(self.root) or tidy(self))
    identify = _Identifier()
    try:
        names = {identify("hashing", "v", tmp_path / "cache") for _ in range(3)}
        identify("hashing", "v", tmp_path / "other")
    finally:
        identify.close()
    assert names == {f"hashing|{FakeEngine().identity()}|model:{file_sha256(str(model))}"}
    assert sweeps == [tmp_path / "cache", tmp_path / "other"]


def test_exporting_the_library_gives_chaptered_mp3s(tmp_path):
    settings = Settings(engine="fake", cache_dir=tmp_path / "cache", sample_rate=16000)  # fast, still MP3
    out = tmp_path / "phone"
    report = export([SCRIPTS], out, settings, jobs=2)
    assert not report.failed
    skipped = {Path(r.path) for r in report.of(Outcome.SKIPPED)}
    blocks = {p for p in skipped if p.parent.name == "library"}
    assert blocks and all(is_block_file(p) for p in blocks)
    assert skipped - blocks == set((SCRIPTS / "programs").glob("*.yaml"))  # a program is exported by name
    exported = report.of(Outcome.EXPORTED)
    assert {os.path.realpath(r.path) for r in exported} == {os.path.realpath(p) for p in SCRIPTS.glob("*.yaml")}
    for result in exported:
        entry = result.entry
        timeline = build(result.path, settings=settings).timeline  # from the cache: the same timeline
        assert id3_chapters(out / entry.tracks[0].file) == ms_chapters(timeline)
        assert entry.title == timeline.routine


def test_slugify():
    assert slugify("Morning wake-up") == "morning-wake-up"
    assert slugify("  Évening: jaw & neck!! ") == "evening-jaw-neck"
    assert slugify("x" * 100) == "x" * 60
    assert slugify("Утро").startswith("routine-") and slugify("Утро") != slugify("Вечер")


def test_block_files_and_folders(tmp_path):
    assert is_block_file(SCRIPTS / "library" / "warm-up.yaml")
    assert not is_block_file(SCRIPTS / "morning.yaml")
    (tmp_path / "broken.yaml").write_text("steps: [", encoding="utf-8")
    assert not is_block_file(tmp_path / "broken.yaml")  # loading it reports the real problem
    assert not is_block_file(tmp_path / "missing.yaml")
    # What a file is, is remembered per version of it: an edited file is looked at again.
    (tmp_path / "broken.yaml").write_text("steps:\n  - say: Hello.\n", encoding="utf-8")
    assert is_block_file(tmp_path / "broken.yaml")
    (tmp_path / "broken.yaml").write_text("routine: Now a routine\nsteps:\n  - say: Hello.\n", encoding="utf-8")
    assert not is_block_file(tmp_path / "broken.yaml")
    assert find_routine_files([SCRIPTS / "morning.yaml", SCRIPTS, SCRIPTS / "morning.yaml"]).count(
        SCRIPTS / "morning.yaml") == 1


def test_routine_key_ignores_where_things_are_written():
    a = parse_routine(TINY, path="a.yaml")
    b = parse_routine("\n\n" + TINY, path="elsewhere/b.yaml")
    assert routine_key(a) == routine_key(b)
    assert routine_key(a) != routine_key(parse_routine(TINY.replace("Hello.", "Hello!")))


# ---------------------------------------------------------------------------------------
# the command


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1740814200")
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, [*map(str, args)], catch_exceptions=False)


def test_export_command(run, tmp_path, tiny):
    result = run("export", tiny, "-d", tmp_path / "phone", "--engine", "fake", "--format", "m4b")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["tiny-quick.m4b: Tiny & quick, 0:16, 3 chapters (exported)",
                                          f"1 exported -> {tmp_path / 'phone'}"]
    assert read_manifest(tmp_path / "phone")["tiny-quick"].exported_at == "2025-03-01T07:30:00Z"
    again = run("export", tiny.parent, "-d", tmp_path / "phone", "--engine", "fake", "--format", "m4b")
    assert "(unchanged)" in again.stdout


def test_export_command_reports_failures_and_exits_2(run, tmp_path, tiny):
    (tiny.parent / "block.yaml").write_text("steps:\n  - say: Hi.\n", encoding="utf-8")
    (tiny.parent / "too-fast.yaml").write_text(TOO_FAST, encoding="utf-8")
    result = run("export", tiny.parent, "-d", tmp_path / "phone", "--engine", "fake", "--split")
    assert result.exit_code == 2
    assert "tiny-quick.m3u8: Tiny & quick, 0:16, 3 tracks (exported)" in result.stdout
    lines = result.stderr.splitlines()
    assert lines[0].startswith("note: ") and "block.yaml" in lines[0]
    assert lines[1].startswith(f"{tiny.parent / 'too-fast.yaml'}:3:5: massage 'Rush'")
    assert lines[-1] == "1 of 2 routines failed to export; fix the problems above and export again"
    assert "Traceback" not in result.output


def test_export_command_with_nothing_to_export(run, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("export", tmp_path / "empty", "-d", tmp_path / "phone", "--engine", "fake")
    assert result.exit_code == 2 and result.stderr.startswith("no routines found in ")
    result = run("export", tmp_path / "nope.yaml", "-d", tmp_path / "phone", "--engine", "fake")
    assert result.exit_code == 2 and f"{tmp_path / 'nope.yaml'}:1:1: routine file not found" in result.stderr
    result = run("export", tmp_path / "nope.yaml", "-d", tmp_path / "no" / "such" / "dir", "--engine", "fake")
    assert result.exit_code == 2 and "does not exist; create it first" in result.stderr


def test_export_formats_listed_in_the_cli_are_the_format_tables():
    (option,) = [p for p in cli.commands["export"].params if p.name == "fmt"]
    assert tuple(option.type.choices) == FORMAT_NAMES == tuple(FORMATS)
    assert {"mp3", "m4b", "opus", "flac", "wav"} <= set(FORMAT_NAMES)


@pytest.mark.espeak
def test_real_speech_export(tmp_path, tiny):
    settings = Settings(engine="espeak", cache_dir=tmp_path / "cache")
    out = tmp_path / "phone"
    [result] = export([tiny], out, settings).results
    assert result.outcome is Outcome.EXPORTED, result.message
    timeline = build(tiny, settings=settings).timeline
    assert id3_chapters(out / "tiny-quick.mp3") == ms_chapters(timeline)
    assert encode.read_chapters(out / "tiny-quick.mp3")[1][2] == "Cheek sweep"


# ---------------------------------------------------------------------------------------
# A full disk (issue 16): a real small filesystem, not a mocked write


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KB tmpfs mounted on a fresh folder (we are root in CI; elsewhere it is skipped, never in CI)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(folder)],
                                 capture_output=True, text=True)
        problem = mounted.stderr.strip() or f"exit {mounted.returncode}" if mounted.returncode else ""
    except OSError as error:  # no mount command
        problem = str(error)
    if problem:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {problem}")  # conftest: a failure in CI
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_export_onto_a_full_disk_is_one_line_and_leaves_nothing(run, tmp_path, small_disk):
    out = small_disk / "phone"
    result = run("export", SCRIPTS / "morning.yaml", "-d", out, "--engine", "fake")
    assert result.exit_code == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr == (f"{SCRIPTS / 'morning.yaml'}:1:1: cannot write into {str(out)!r}: No space left on "
                             "device; free some disk space, or export to another folder with -d\n")
    assert list(small_disk.iterdir()) == []  # no cover, no manifest, no temporary files, not even the folder


def test_export_onto_a_full_disk_keeps_the_previous_export_and_its_manifest(run, tmp_path, tiny, small_disk):
    out = small_disk / "phone"
    assert run("export", tiny, "-d", out, "--engine", "fake", "--format", "opus").exit_code == 0
    before = snapshot(out)
    assert MANIFEST_NAME in before and "tiny-quick.opus" in before
    for args in ([SCRIPTS / "morning.yaml", tiny], [tiny, "--format", "wav"]):  # a new routine; the same one again
        result = run("export", *args, "-d", out, "--engine", "fake")
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.output
        assert "No space left on device; free some disk space" in result.stderr
        assert snapshot(out) == before  # manifest unchanged, nothing half-written or left behind


def test_a_killed_exports_staging_folder_is_removed_once_stale(tmp_path, tiny, fake):
    out = tmp_path / "phone"
    stale, fresh = out / ".tiny-quick.0123456789ab.vctmp", out / ".other.ba9876543210.vctmp"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "tiny-quick.png").write_bytes(b"half")
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    assert export([tiny], out, fake).results[0].outcome is Outcome.EXPORTED
    assert not stale.exists() and fresh.exists()  # a young one may be another export's, still writing


JOINS = TINY.replace("rest: 2s", "rest: 5s") + """\
  - exercise: Brow lift
    area: brows
    reps: 2
    hold: 2s
    release: 2s
"""


def decoded(path: Path, rate: int) -> np.ndarray:
    """What a player hears: ffmpeg decodes the file (honouring the Info frame's delay and padding)."""
    from voicecoach.encode import ffmpeg_exe

    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(rate),
                          "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<i2")


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_split_tracks_join_without_a_gap(tmp_path, fake, fmt):
    """Decoded and put end to end, the tracks are the whole routine: FLAC sample for sample, MP3 to the
    exact length with every track lined up with its stretch of the routine (a gap or an overlap at any
    join would shift everything after it)."""
    path = tmp_path / "joins.yaml"
    path.write_text(JOINS.replace("Tiny & quick", "Joins"), encoding="utf-8")
    out = tmp_path / "phone"
    export([path], out, fake, split=True, format=FORMATS[fmt])
    result = build(path, settings=fake)
    rate, total = result.timeline.sample_rate, result.timeline.length_samples
    whole = result.read(0, total)
    entry = read_manifest(out)["joins"]
    assert len(entry.tracks) == len(result.timeline.chapters) == 4
    pieces = [decoded(out / track.file, rate) for track in entry.tracks]
    assert [len(p) for p in pieces] == [c.end_sample - c.start_sample for c in result.timeline.chapters]
    joined = np.concatenate(pieces)
    assert len(joined) == total
    if fmt == "flac":
        assert np.array_equal(joined, whole)
        return
    for piece, chapter in zip(pieces, result.timeline.chapters):
        original = whole[chapter.start_sample : chapter.end_sample].astype(np.float64)
        error = piece.astype(np.float64) - original
        snr_db = 10 * np.log10(np.sum(original**2) / max(np.sum(error**2), 1.0)) if original.any() else 99
        assert snr_db > 15, f"{chapter.title}: {snr_db:.1f} dB: not lined up with its part of the routine"

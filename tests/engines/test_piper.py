"""The Piper engine (a normal dependency): deterministic clips,
the clip cache keyed by the voice model's content, the timing invariants, the same routine
with espeak and with Piper, ``engine:``/``voice:`` in routines, and ``voices``."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from voicecoach.engines import piper as piper_module
from voicecoach.cli import cli
from voicecoach.errors import EngineError, VoicecoachError
from voicecoach.model import Cue, EventKind, Exercise, Massage, Tone, flat_steps
from voicecoach.pipeline import Settings, build, export
from voicecoach.script import load_routine
from voicecoach.engines.piper import INSTALL, PiperEngine, find_model, voice_identity
from voicecoach.engines.piper_voices import bundled_model
from voicecoach.timing import to_samples

RATE = 44100
TEXTS = ["Hold.", "Release.", "Place your fingertips on your forehead. Then lift gently."]

ROUTINE = """\
routine: Piper check
description: A short routine for the engine tests.
intro: Sit comfortably.
steps:
  - massage: Warm-up taps
    area: face
    say: Tap your face lightly.
    strokes: 3
    tempo: 1s
  - exercise: Cheek lift
    area: cheeks
    cue: Lift.
    reps: 2
    hold: 3s
    release: 3s
    sides: [left, right]
  - massage: Cheek release
    area: cheeks
    strokes: 3
    tempo: 2s
    count: true
  - rest: 8s
  - breathe: Calm breath
    cycles: 1
"""


def synth(engine, texts, *, voice="en", rate=Fraction(1), jobs=2) -> dict:
    return dict(engine.synthesize(texts, voice=voice, rate=rate, sample_rate=RATE, jobs=jobs, timeout_s=60))


@pytest.fixture(scope="module")
def piper():
    engine = PiperEngine()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def routine_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("routine") / "check.yaml"
    path.write_text(ROUTINE)
    return path


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, routine_file):
    """The routine compiled with Piper once, with a fresh cache, and exported as WAV."""
    folder = tmp_path_factory.mktemp("piper")
    settings = Settings(engine="piper", cache_dir=folder / "cache")
    result = build(routine_file, settings=settings)
    export(result, folder / "p.wav", settings=settings)
    return folder, settings, result


# ---------------------------------------------------------------------------------------
# The engine


def test_piper_clips_do_not_depend_on_history_or_process(piper):
    one = synth(piper, TEXTS)
    other = synth(piper, ["Something else first."] + TEXTS[::-1], voice="joe", jobs=1)
    fresh = PiperEngine()
    try:
        again = synth(fresh, TEXTS[:1], voice="en-us")
    finally:
        fresh.close()
    for text in TEXTS:
        assert one[text].tobytes() == other[text].tobytes()
    assert again["Hold."].tobytes() == one["Hold."].tobytes()
    long = one["Place your fingertips on your forehead. Then lift gently."]
    assert len(long) > 4 * len(one["Hold."]) > 0 and abs(int(long.max())) > 5000


def test_piper_rate_is_its_length_scale(piper):
    text = "Breathe in slowly and deeply."
    slow, fast = (synth(piper, [text], rate=r, jobs=1)[text] for r in (Fraction(3, 4), Fraction(3, 2)))
    assert 1.6 < len(slow) / len(fast) < 2.4  # length scale 4/3 against 2/3


def test_piper_voice_errors(piper, tmp_path):
    with pytest.raises(EngineError, match="piper has no voice 'de'"):
        synth(piper, ["Halten."], voice="de")
    with pytest.raises(EngineError, match="the Piper voice model '.*nope.onnx' was not found"):
        synth(piper, ["Hold."], voice=str(tmp_path / "nope.onnx"))
    (tmp_path / "lonely.onnx").write_bytes(b"not a model")
    with pytest.raises(EngineError, match="has no lonely.onnx.json beside it"):
        synth(piper, ["Hold."], voice=str(tmp_path / "lonely.onnx"))
    shutil.copy(bundled_model().config, tmp_path / "lonely.onnx.json")
    with pytest.raises(EngineError, match="piper cannot load the voice model"):
        synth(piper, ["Hold."], voice=str(tmp_path / "lonely.onnx"))
    assert synth(piper, ["Hold."])["Hold."].size  # a failed batch leaves the engine usable


def test_the_voice_is_identified_by_its_model_files(piper, tmp_path):
    bundled = bundled_model()
    shutil.copy(bundled.model, tmp_path / "copy.onnx")
    shutil.copy(bundled.config, tmp_path / "copy.onnx.json")
    assert voice_identity(str(tmp_path / "copy.onnx")) == voice_identity("joe") == voice_identity("en")
    config = json.loads(Path(bundled.config).read_text())
    config["inference"]["noise_scale"] = 0.5
    (tmp_path / "copy.onnx.json").write_text(json.dumps(config))
    assert voice_identity(str(tmp_path / "copy.onnx")) != voice_identity("joe")


def test_a_prestarted_server_loads_the_model_ahead_and_speaks_the_same(piper):
    fresh = PiperEngine()
    try:
        fresh.prestart("en")  # started, the model asked for: no phrase yet
        assert fresh._proc is not None and fresh._proc.poll() is None
        early = synth(fresh, TEXTS[:2])
    finally:
        fresh.close()
    plain = synth(piper, TEXTS[:2])
    assert all(early[text].tobytes() == plain[text].tobytes() for text in TEXTS[:2])


def test_a_client_that_quits_early_stops_the_server_and_every_phrase_under_way():
    def children_of(pid: int) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
        return found

    engine = PiperEngine()
    clips = engine.synthesize([f"Phrase number {n}, a little longer than most." for n in range(12)], voice="en",
                              rate=Fraction(1), sample_rate=RATE, jobs=2, timeout_s=60)
    next(clips)  # the first is made, the next ones are under way (as when a player quits)
    server = engine._proc.pid
    under_way = children_of(server)
    assert under_way
    engine.close()
    clips.close()
    assert not [pid for pid in under_way if Path(f"/proc/{pid}").exists()]


def test_the_piper_server_allocates_in_huge_pages_and_keeps_the_users_tunables(monkeypatch):
    from voicecoach.engines import forkserver

    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    engine = PiperEngine()
    try:
        engine.spawn()
        # right after Popen the child may still be between fork and exec: its environ reads empty then
        deadline = time.monotonic() + 10
        while not (raw := Path(f"/proc/{engine._proc.pid}/environ").read_bytes()) and time.monotonic() < deadline:
            time.sleep(0.01)
        environ = raw.split(b"\0")
    finally:
        engine.close()
    assert b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in environ
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")
    seen = []
    monkeypatch.setattr(forkserver.subprocess, "Popen", lambda *a, env=None, **kw: seen.append(env) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        PiperEngine().spawn()
    assert seen[0]["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1"


# ---------------------------------------------------------------------------------------
# Routines


def check_timing(result) -> None:
    """The timing invariants, for every event: clips as long as their events, every event inside its
    chapter, every hold exactly ``hold`` long with a count on each whole second, every stroke exactly
    on its tempo grid (from the side's first stroke, never accumulated), chapters back to back."""
    timeline = result.timeline
    rate = timeline.sample_rate
    for event in timeline.events:
        if event.kind is EventKind.SPEECH:
            assert event.length_samples == len(result.speech.clip(event.text))
    steps = [step for step, _ in flat_steps(result.routine.steps)]
    assert len(timeline.chapters) == len(steps)
    checked = {"holds": 0, "strokes": 0}
    for chapter, step in zip(timeline.chapters, steps):
        events = sorted((e for e in timeline.events if e.step == chapter.step), key=lambda e: e.start_sample)
        assert events
        for e in events:
            assert chapter.start_sample <= e.start_sample < e.end_sample <= chapter.end_sample, (chapter, e)
        if isinstance(step, Exercise):
            holds = [e.start_sample for e in events if e.cue is Cue.HOLD]
            bells = [e.start_sample for e in events if e.tone is Tone.BELL]
            assert len(holds) == len(bells) == step.reps * step.sets * len(step.sides)
            hold = to_samples(step.hold_s, rate)
            whole = [k for k in range(1, math.ceil(step.hold_s)) if k < step.hold_s]
            counts = [e.start_sample for e in events if e.cue is Cue.COUNT]
            for start, bell in zip(holds, bells):
                assert bell - start == hold
                assert [c - start for c in counts if start < c < bell] == [to_samples(k, rate) for k in whole]
            assert len(counts) == len(holds) * len(whole)
            checked["holds"] += len(holds)
        if isinstance(step, Massage):
            strokes = [e.start_sample for e in events if e.cue is Cue.STROKE]
            assert len(strokes) == step.strokes * len(step.sides)
            for side in range(len(step.sides)):
                mine = strokes[side * step.strokes : (side + 1) * step.strokes]
                assert [b - mine[0] for b in mine] == [to_samples(k * step.tempo_s, rate) for k in range(step.strokes)]
            checked["strokes"] += len(strokes)
    assert [c.start_sample for c in timeline.chapters[1:]] == [c.end_sample for c in timeline.chapters[:-1]]
    assert checked["holds"] and checked["strokes"]  # the routine has both


def test_fake_compile_keeps_the_timing_invariants(routine_file, tmp_path):
    result = build(routine_file, settings=Settings(engine="fake", cache_dir=tmp_path))
    check_timing(result)


def test_piper_compile_keeps_the_timing_invariants(compiled):
    _, _, result = compiled
    assert result.speech.engine.name == "piper" and result.speech.stats.synthesized > 10
    check_timing(result)


def test_second_compile_synthesizes_nothing_and_a_cold_one_is_byte_identical(compiled, routine_file, tmp_path):
    folder, settings, first = compiled
    again = build(routine_file, settings=settings)
    export(again, tmp_path / "again.wav", settings=settings)
    assert again.speech.stats.synthesized == 0 and again.track_was_cached
    assert (tmp_path / "again.wav").read_bytes() == (folder / "p.wav").read_bytes()
    cold = Settings(engine="piper", cache_dir=tmp_path / "cold", jobs=1)
    export(build(routine_file, settings=cold), tmp_path / "cold.wav", settings=cold)
    assert (tmp_path / "cold.wav").read_bytes() == (folder / "p.wav").read_bytes()


@pytest.mark.espeak
def test_the_same_routine_compiles_with_espeak_and_with_piper(compiled, routine_file, tmp_path):
    _, _, with_piper = compiled
    with_espeak = build(routine_file, settings=Settings(engine="espeak", cache_dir=tmp_path))
    check_timing(with_espeak)

    def said(result):
        return [(e.cue, e.text or e.tone.value) for e in result.timeline.events]

    assert said(with_piper) == said(with_espeak)
    assert [c.title for c in with_piper.timeline.chapters] == [c.title for c in with_espeak.timeline.chapters]
    assert with_piper.track_key != with_espeak.track_key


def test_engine_and_voice_model_from_the_routine(compiled, tmp_path):
    _, settings, first = compiled
    bundled = bundled_model()
    (tmp_path / "voices").mkdir()
    shutil.copy(bundled.model, tmp_path / "voices" / "joe.onnx")
    shutil.copy(bundled.config, tmp_path / "voices" / "joe.onnx.json")
    path = tmp_path / "own.yaml"
    path.write_text(ROUTINE.replace("steps:", "engine: piper\nvoice: voices/joe.onnx\nsteps:", 1))
    routine = load_routine(path)
    assert (routine.engine, routine.voice) == ("piper", str((tmp_path / "voices" / "joe.onnx").resolve()))
    result = build(routine, settings=Settings(cache_dir=settings.cache_dir))
    # the same model bytes under another path: every clip comes from the cache
    assert result.speech.engine.name == "piper" and result.speech.stats.synthesized == 0
    assert result.track_key == first.track_key


def test_the_voice_model_s_rate_decides_the_track_s(tmp_path):
    bundled = bundled_model()
    shutil.copy(bundled.model, tmp_path / "own.onnx")
    config = json.loads(Path(bundled.config).read_text(encoding="utf-8"))
    path = tmp_path / "own.yaml"
    path.write_text(ROUTINE.replace("steps:", "engine: piper\nvoice: own.onnx\nsteps:", 1))
    rates = []
    for rate in (config["audio"]["sample_rate"], 16000, 44100):
        (tmp_path / "own.onnx.json").write_text(json.dumps({**config, "audio": {**config["audio"], "sample_rate": rate}}))
        rates.append(Settings().sample_rate_for(load_routine(path)))
    assert rates == [22050, 22050, 44100]  # joe speaks at 22.05 kHz; a voice above it makes the track 44.1 kHz


def test_voice_models_are_checked_like_includes(tmp_path):
    path = tmp_path / "r.yaml"
    for voice, message in (("missing.onnx", "voice 'missing.onnx' was not found"),
                           ("../up.onnx", "voice '../up.onnx' is outside the routine's folder")):
        path.write_text(f"routine: R\nengine: piper\nvoice: {voice}\nsteps: [{{say: Hi.}}]\n")
        with pytest.raises(VoicecoachError, match=message) as info:
            load_routine(path)
        assert (info.value.location.line, info.value.location.col) == (3, 8)
    path.write_text("routine: R\nengine: festival\nsteps: [{say: Hi.}]\n")
    with pytest.raises(VoicecoachError, match="unknown engine 'festival'") as info:
        load_routine(path)
    assert info.value.hint == "use one of: auto, espeak, fake, piper"


def test_the_command_line_engine_wins_and_keeps_its_default_voice(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("routine: R\nengine: fake\nvoice: de\nsteps: [{say: Hi.}]\n")
    routine = load_routine(path)
    assert Settings().engine_for(routine) == "fake" and Settings().speech_settings(routine).voice == "de"
    assert Settings(engine="espeak").engine_for(routine) == "espeak"
    assert Settings(engine="espeak").speech_settings(routine).voice is None  # 'de' was the fake engine's
    assert Settings(engine="fake", voice="hum").speech_settings(routine).voice == "hum"
    result = CliRunner().invoke(cli, ["compile", str(path), "-o", str(tmp_path / "r.wav"), "--cache-dir",
                                      str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output  # engine: fake from the routine, no --engine


# ---------------------------------------------------------------------------------------
# The command line


def test_cli_compiles_with_piper_and_lists_its_voice(compiled, routine_file, tmp_path):
    _, settings, _ = compiled
    result = CliRunner().invoke(cli, ["compile", str(routine_file), "-o", str(tmp_path / "p.mp3"), "--engine",
                                      "piper", "--cache-dir", str(settings.cache_dir)])
    assert result.exit_code == 0 and "0 clips synthesized" in result.output, result.output
    voices = CliRunner().invoke(cli, ["voices", "--engine", "piper", "--json"])
    assert json.loads(voices.output)[0]["id"] == "joe" and "en-us" in json.loads(voices.output)[0]["languages"]
    listed = CliRunner().invoke(cli, ["voices", "--language", "en"])
    assert listed.output.startswith("espeak: ") and "\npiper: 1 voice" in listed.output


def test_voices_says_how_to_install_a_missing_engine(monkeypatch):
    monkeypatch.setattr(piper_module, "installed", lambda: False)
    result = CliRunner().invoke(cli, ["voices", "--engine", "piper"])
    assert result.exit_code == 0
    assert result.output == f"piper: not installed ({piper_module.SPEC.about}); install it with: {INSTALL}\n"
    with pytest.raises(EngineError, match="the piper engine is not installed") as info:
        find_model("en")
    assert info.value.hint == f"install it with: {INSTALL}"


def test_a_routine_asking_for_a_missing_engine_is_told_where(monkeypatch, tmp_path):
    monkeypatch.setattr(piper_module, "installed", lambda: False)
    path = tmp_path / "r.yaml"
    path.write_text("routine: R\nengine: piper\nsteps: [{say: Hi.}]\n")
    with pytest.raises(VoicecoachError) as info:
        build(path, settings=Settings(cache_dir=tmp_path))
    assert info.value.format() == f"{path}:2:1: the piper engine is not installed; install it with: {INSTALL}"


# ---------------------------------------------------------------------------------------
# Playing: a warm cache needs no Piper at all; a cold one starts it at once


def spy_on_starts(monkeypatch) -> tuple[list, list]:
    """Records every Piper server started and every file hashed."""
    from voicecoach import sound
    from voicecoach.engines.forkserver import ServerEngine

    started, hashed = [], []
    spawn, sha = ServerEngine.spawn, sound.file_sha256

    def spawning(self) -> None:
        before = self._proc
        spawn(self)
        if self._proc is not before:
            started.append(self.name)

    monkeypatch.setattr(ServerEngine, "spawn", spawning)
    monkeypatch.setattr(sound, "file_sha256", lambda path: hashed.append(str(path)) or sha(path))
    return started, hashed


def first_sound(routine_file, settings) -> None:
    from voicecoach.pipeline import LiveBuild

    live = LiveBuild(routine_file, settings=settings)
    try:
        live.wait(chapters=1)
        assert live.read(0, RATE).any()
    finally:
        live.close()


def test_a_warm_play_starts_no_piper_and_hashes_no_model(compiled, routine_file, monkeypatch):
    _, settings, _ = compiled  # every clip cached, and the model's hash remembered by the cache
    started, hashed = spy_on_starts(monkeypatch)
    first_sound(routine_file, settings)
    assert started == [] and hashed == []


def test_a_cold_play_starts_piper_and_loads_the_model_before_looking_up_clips(routine_file, monkeypatch, tmp_path):
    started, hashed = spy_on_starts(monkeypatch)
    loads = []
    send = PiperEngine.send
    monkeypatch.setattr(PiperEngine, "send", lambda self, message: loads.append((message["op"], len(hashed))) or send(self, message))
    first_sound(routine_file, Settings(engine="piper", cache_dir=tmp_path / "cold"))
    assert started == ["piper"]  # one server for the run
    assert loads[0] == ("load", 0)  # asked to load the model before the model was even hashed
    assert any(path.endswith(".onnx") for path in hashed)


def test_a_warm_play_imports_no_speech_or_encoding_library(compiled, routine_file):
    _, settings, _ = compiled
    probe = (
        "import sys\n"
        "from voicecoach.play.session import LiveBuild, Settings\n"
        f"live = LiveBuild({str(routine_file)!r}, settings=Settings(engine='piper', cache_dir={str(settings.cache_dir)!r}))\n"
        "live.wait(chapters=1); assert live.read(0, 44100).any(); live.close()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'onnxruntime', 'piper', 'mutagen', 'lameenc', 'PIL'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

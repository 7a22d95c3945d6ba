"""Voice commands end to end: `voicecoach play --listen` against a real sound server.

A private PulseAudio has two null sinks: the speakers (recorded) and a virtual microphone whose
monitor is the default source.  The coach's output is looped back into the microphone at
-10 dB (echo); spoken commands, synthesized by the project's own engines (espeak and Piper, at
two speech rates, some over room noise), are played into it.  What the speakers got is checked
sample by sample against the compiled track, the acknowledgement sounds taken out.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.pipeline import Settings, build
from voicecoach.play.listen import acknowledgement

from tests.play.servers import (
    MIC,
    RATE,
    SPEAKERS,
    junctions,
    pulse_server,
    read_wav,
    recording,
    voicecoach_process,
    wait_for,
)
from tests.play.spoken import RATE_16K, at_level, noise, spoken_words, to_int16

ROUTINE = """\
routine: Voice control
steps:
  - massage: Taps
    area: face
    strokes: 20
    tempo: 0.5s
  - massage: Sweep
    area: cheeks
    strokes: 20
    tempo: 0.5s
"""

# (word, engine, speech rate, over room noise): both voices, two rates, quiet and noisy.
COMMANDS = [("pause", "espeak", 0.85, False), ("continue", "piper", 1.15, True),
            ("next", "piper", 0.85, False), ("stop", "espeak", 1.15, True)]


def _word_files(folder: Path) -> dict[str, Path]:
    files = {}
    for seed, (word, engine, rate, noisy) in enumerate(COMMANDS):
        clip = spoken_words([word], engine=engine, rate=rate, folder=folder, cache_dir=folder / "words-cache")[word]
        pad = np.zeros(RATE_16K // 4)
        mixed = np.concatenate([pad, clip.astype(np.float64), pad])
        if noisy:
            mixed += noise(len(mixed), level_db=-40, seed=seed)
        path = folder / f"{word}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE_16K)
            out.writeframes(to_int16(mixed).tobytes())
        files[word] = path
    return files


def _echo_into_the_microphone(env) -> None:
    """The speakers heard by the microphone, 10 dB down."""
    subprocess.run(["pactl", "load-module", "module-loopback", f"source={SPEAKERS}.monitor", f"sink={MIC}",
                    "latency_msec=60", "source_dont_move=true", "sink_dont_move=true"],
                   env=env, check=True, capture_output=True)
    loops = subprocess.run(["pactl", "list", "short", "sink-inputs"], env=env, capture_output=True, text=True).stdout
    [loop] = [line.split()[0] for line in loops.splitlines() if "module-loopback" in line]
    subprocess.run(["pactl", "set-sink-input-volume", loop, "-10dB"], env=env, check=True, capture_output=True)


def _say(env, path: Path) -> None:
    subprocess.run(["paplay", f"--device={MIC}", str(path)], env=env, check=True, timeout=20)


def test_voice_pauses_resumes_skips_and_stops(tmp_path, monkeypatch):
    routine = tmp_path / "voice.yaml"
    routine.write_text(ROUTINE)
    words = _word_files(tmp_path)
    with pulse_server(tmp_path, microphone=True) as env:
        for name in ("VOICECOACH_CACHE_DIR", "VOICECOACH_DATA_DIR"):
            monkeypatch.setenv(name, env[name])
        wav = tmp_path / "track.wav"
        assert CliRunner().invoke(cli, ["compile", str(routine), "-o", str(wav), "--engine", "fake"]).exit_code == 0
        track = read_wav(wav)
        chapters = build(routine, settings=Settings(engine="fake")).timeline.chapters
        _echo_into_the_microphone(env)
        out, err = tmp_path / "out", tmp_path / "err"
        tries: dict[str, int] = {}
        with recording(env, tmp_path / "rec.raw"):
            play = voicecoach_process(["play", str(routine), "--engine", "fake", "--no-keys", "--listen"],
                                      env=env, out=out, err=err)
            try:
                wait_for(lambda: "step 1/2" in out.read_text(), "playing to start", timeout_s=60)
                time.sleep(1.5)
                for word, expected in (("pause", "voice: pause at "), ("continue", "voice: continue at "),
                                       ("next", "voice: next -> 2/2 Sweep"), ("stop", "voice: stop at ")):
                    for attempt in (1, 2, 3):  # as a person would: say it again when nothing happened
                        _say(env, words[word])
                        try:
                            wait_for(lambda: expected in out.read_text(), f"{word!r} to be acted on", timeout_s=2.5)
                            break
                        except AssertionError:
                            if attempt == 3 or play.poll() is not None:
                                raise AssertionError(f"{word!r} was not acted on: {out.read_text()}{err.read_text()}")
                    tries[word] = attempt
                    time.sleep(1.2)
                code = play.wait(timeout=20)
            finally:
                if play.poll() is None:
                    play.kill()
                    play.wait()
        stdout = out.read_text()
        assert code == 0, err.read_text()
        print(f"attempts per command: {tries}")
        actions = [line for line in stdout.splitlines() if line.startswith("voice: ")]
        assert [re.sub(r" at \d+:\d\d\.\d\d$", "", a) for a in actions] == [
            "voice: pause", "voice: continue", "voice: next -> 2/2 Sweep", "voice: stop"], stdout
        assert "Logged. Practice streak: 1 day." in stdout
        logged = subprocess.run([sys.executable, "-m", "voicecoach.cli", "log", "--json"], env=env,
                                capture_output=True, text=True)
        [session] = json.loads(logged.stdout)["sessions"]
        assert session["actions"] == {"voice": 4}

    heard = np.fromfile(tmp_path / "rec.raw", dtype="<i2").astype(np.int16)
    _, jumps = junctions(heard, track, overlay=acknowledgement(RATE))
    c1 = chapters[1].start_sample
    pause, skip, stop = jumps[:3]
    # pause -> silence within 1 s (of the position the player was at), until resume; resume -> the paused sample
    minutes, seconds = re.search(r" at (\d+):(\d\d\.\d\d)$", actions[0]).groups()
    asked = round((int(minutes) * 60 + float(seconds)) * 100) * RATE // 100
    assert 0 <= pause.left_at - asked <= RATE, (pause, asked)
    assert pause.resumed_at == pause.left_at and pause.silence > RATE // 2
    # next -> the next step's first sample
    assert skip.left_at < c1 <= skip.resumed_at and not track[c1 : skip.resumed_at].any()
    # stop -> nothing of the track after it
    assert stop.resumed_at < 0 and stop.left_at > skip.resumed_at


def test_a_whole_routine_with_its_own_echo_and_no_commands_takes_no_action(tmp_path):
    """The coach says "next up", counts, "stop" and "back" can be in its lines: none of it is a command."""
    routine = Path(__file__).resolve().parents[2] / "scripts" / "quick-3-minute.yaml"
    with pulse_server(tmp_path, microphone=True) as env:
        _echo_into_the_microphone(env)
        listed = subprocess.run([sys.executable, "-m", "voicecoach.cli", "play", "--devices"], env=env,
                                capture_output=True, text=True)
        assert listed.returncode == 0 and "inputs (--mic):" in listed.stdout, listed.stderr
        assert "Monitor of VirtualMic" in listed.stdout.split("inputs (--mic):")[1]
        played = subprocess.run([sys.executable, "-m", "voicecoach.cli", "play", str(routine), "--engine", "espeak",
                                 "--no-keys", "--listen", "--mic", "monitor of virtualmic"], env=env, capture_output=True,
                                text=True, timeout=600)
        assert played.returncode == 0, played.stderr
        assert not [line for line in played.stdout.splitlines() if line.startswith("voice: ")], played.stdout
        assert "steps completed, finished." in played.stdout
        logged = subprocess.run([sys.executable, "-m", "voicecoach.cli", "log", "--json"], env=env,
                                capture_output=True, text=True)
        [session] = json.loads(logged.stdout)["sessions"]
        assert session["finished"] and session["actions"] == {}

"""mpris.py against a real session bus and sound server: playerctl drives `voicecoach play --no-keys`.

A private dbus-daemon and PulseAudio (null sink, recorded) are started for the test; playerctl
pauses, resumes, skips, goes back and stops, and what the speakers got is checked sample by
sample against the compiled track.
"""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.pipeline import Settings, build

from tests.play.servers import (
    PLAYERCTL,
    RATE,
    junctions,
    pulse_server,
    read_wav,
    recording,
    session_bus,
    voicecoach_process,
    wait_for,
)

ROUTINE = """\
routine: Media keys
steps:
  - massage: Taps
    area: face
    strokes: 16
    tempo: 0.5s
  - massage: Sweep
    area: cheeks
    strokes: 16
    tempo: 0.5s
"""


def _ctl(env, *args: str) -> str:
    assert PLAYERCTL, "install playerctl (.ci/run does)"
    done = subprocess.run([PLAYERCTL, "--player=voicecoach", *args], env=env, capture_output=True, text=True,
                          timeout=10)
    assert done.returncode == 0, f"playerctl {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def _seconds(line: str) -> float:
    minutes, seconds = re.search(r" at (\d+):(\d\d\.\d\d)$", line).groups()
    return int(minutes) * 60 + float(seconds)


def test_playerctl_pauses_skips_goes_back_and_stops(tmp_path, monkeypatch):
    routine = tmp_path / "media.yaml"
    routine.write_text(ROUTINE)
    with pulse_server(tmp_path) as pulse, session_bus(tmp_path) as bus:
        env = {**pulse, "DBUS_SESSION_BUS_ADDRESS": bus["DBUS_SESSION_BUS_ADDRESS"]}
        for name in ("VOICECOACH_CACHE_DIR", "VOICECOACH_DATA_DIR"):
            monkeypatch.setenv(name, env[name])
        wav = tmp_path / "track.wav"
        assert CliRunner().invoke(cli, ["compile", str(routine), "-o", str(wav), "--engine", "fake"]).exit_code == 0
        track = read_wav(wav)
        chapters = build(routine, settings=Settings(engine="fake")).timeline.chapters
        out, err = tmp_path / "out", tmp_path / "err"
        with recording(env, tmp_path / "rec.raw"):
            play = voicecoach_process(["play", str(routine), "--engine", "fake", "--no-keys"], env=env, out=out, err=err)
            try:
                wait_for(lambda: subprocess.run([PLAYERCTL, "--player=voicecoach", "status"], env=env,
                                                capture_output=True, text=True).stdout.strip() == "Playing",
                         "the MPRIS player")
                assert _ctl(env, "metadata", "title") == "Taps"
                assert _ctl(env, "metadata", "album") == "Media keys"
                art = _ctl(env, "metadata", "mpris:artUrl")
                assert art.startswith("file:///") and open(art[len("file://"):], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
                length_us = int(_ctl(env, "metadata", "mpris:length"))
                assert length_us == (chapters[0].end_sample - chapters[0].start_sample) * 1_000_000 // RATE
                subprocess.run(["sleep", "1.5"])
                _ctl(env, "play-pause")
                wait_for(lambda: _ctl(env, "status") == "Paused", "the pause")
                subprocess.run(["sleep", "1.0"])
                _ctl(env, "play-pause")
                subprocess.run(["sleep", "1.0"])
                _ctl(env, "next")
                wait_for(lambda: _ctl(env, "metadata", "title") == "Sweep", "the next step's metadata")
                subprocess.run(["sleep", "1.0"])
                _ctl(env, "previous")  # once: the start of the step
                subprocess.run(["sleep", "1.0"])
                _ctl(env, "stop")
                code = play.wait(timeout=20)
            finally:
                if play.poll() is None:
                    play.kill()
                    play.wait()
        stdout, stderr = out.read_text(), err.read_text()
        assert code == 0, stderr
        lines = stdout.splitlines()
        actions = [line for line in lines if line.startswith("media: ")]
        assert [re.sub(r" at \d+:\d\d\.\d\d$", "", a) for a in actions] == [
            "media: play-pause", "media: play-pause", "media: next -> 2/2 Sweep", "media: back -> 2/2 Sweep",
            "media: stop"], stdout
        assert any(line.startswith("Logged. Practice streak: ") for line in lines), stdout
        logged = subprocess.run(["python", "-m", "voicecoach.cli", "log", "--json"], env=env, capture_output=True,
                                text=True)
        [session] = json.loads(logged.stdout)["sessions"]
        assert session["actions"] == {"media": 5}

    heard = np.fromfile(tmp_path / "rec.raw", dtype="<i2").astype(np.int16)
    _, found = junctions(heard, track)
    # A starved machine can underrun the sound server: a short gap, the track going on near where it was.
    # Those are not actions (the scripted-key test in tests/test_playback_pulse.py checks exactness).
    jumps = [j for j in found if not (j.silence < RATE // 5 and 0 <= j.resumed_at - j.left_at < RATE // 5)]
    c1 = chapters[1].start_sample
    pause, skip, back, stop = jumps[:4]
    # 1. pause -> silence within 1 s (of when it was asked for), until resume, which goes on from the paused sample
    asked = round(_seconds(actions[0]) * 100) * RATE // 100  # the position when the player took it (to 10 ms)
    assert 0 <= pause.left_at - asked <= RATE, (pause, asked)
    assert pause.resumed_at == pause.left_at and pause.silence > RATE // 2
    # 2. next -> the next step's first sample follows the last one played
    assert skip.left_at < c1 and c1 <= skip.resumed_at and not track[c1 : skip.resumed_at].any()
    # 3. previous -> the step's start again; 4. stop -> silence to the end
    assert back.left_at > c1 and c1 <= back.resumed_at and not track[c1 : back.resumed_at].any()
    assert stop.resumed_at == -1 and stop.left_at > back.resumed_at

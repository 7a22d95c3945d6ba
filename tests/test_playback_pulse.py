"""Recorded playback: `voicecoach play` through a real PulseAudio server, checked sample by sample.

Each test starts its own PulseAudio (a null sink, a private socket in tmp_path, no autospawn),
records the sink's monitor with `parec` while `voicecoach play --no-keys` runs with the hidden
`--script-keys` option, which presses keys at exact moments of device time:

    --script-keys "wait:1.0,space,wait:1.0,space,wait:0.5,n,wait:1.0,q"
    (pause after 1 s, resume 1 s later, half a second on, next step, a second of it, quit)

and compares the recording with the compiled WAV by normalized cross-correlation: every played
part must match the track exactly, the pause must last about 1 s, and after the skip the very
next recorded sample must be the next step's first sample.  Skipped only where there is no
pulseaudio binary (CI installs it: see .ci/run).  Run just these with:

    /work/venv/bin/pytest -v tests/test_playback_pulse.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.pipeline import Settings, build
from voicecoach.play.status import clock

PULSEAUDIO = shutil.which("pulseaudio")
pytestmark = pytest.mark.skipif(PULSEAUDIO is None, reason="no pulseaudio binary on this machine (.ci/run installs it)")

RATE = 44100
SINK = "voicecoach_test"
KEYS = "wait:1.0,space,wait:1.0,space,wait:0.5,n,wait:1.0,q"
ROUTINE = """\
routine: Recorded playback
steps:
  - massage: Taps
    area: face
    strokes: 6
    tempo: 0.5s
  - massage: Sweep
    area: cheeks
    strokes: 3
    tempo: 0.5s
"""


def _wait_for(condition, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def pulse(tmp_path):
    """A private PulseAudio server with one mono 44.1 kHz null sink; yields the clients' environment."""
    assert shutil.which("parec") and shutil.which("pactl"), "install pulseaudio-utils (parec, pactl)"
    runtime = tmp_path / "pulse"
    runtime.mkdir(mode=0o700)
    socket = runtime / "native"
    client_conf = tmp_path / "client.conf"
    client_conf.write_text("autospawn = no\n")
    env = {
        **os.environ,
        "PULSE_RUNTIME_PATH": str(runtime),
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(tmp_path / "home"),
        "PULSE_SERVER": f"unix:{socket}",
        "PULSE_CLIENTCONFIG": str(client_conf),
        "VOICECOACH_CACHE_DIR": str(tmp_path / "cache"),
        "VOICECOACH_DATA_DIR": str(tmp_path / "data"),
    }
    log = open(tmp_path / "pulseaudio.log", "wb")
    server = subprocess.Popen(
        [PULSEAUDIO, "--daemonize=no", "--exit-idle-time=-1", "-n", "--system=false", "--disallow-exit",
         "--disable-shm=true", "--use-pid-file=false", "--log-target=stderr",
         f"--load=module-null-sink sink_name={SINK} rate={RATE} channels=1 format=s16le",
         f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}"],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )

    def ready() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"pulseaudio exited: {(tmp_path / 'pulseaudio.log').read_text()[-2000:]}")
        return subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0

    try:
        _wait_for(ready, "the PulseAudio server")
        env["TEST_PULSEAUDIO_PID"] = str(server.pid)  # for a test that pulls the server away
        yield env
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _voicecoach(*args: str, env: dict, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voicecoach.cli", *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout_s)


def _locate(recording: np.ndarray, segment: np.ndarray) -> tuple[int, float]:
    """Where ``segment`` best matches in ``recording``, and the normalized cross-correlation there."""
    rec, seg = recording.astype(np.float64), segment.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(rec) + len(seg))))
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(seg, size)), size)[: len(rec) - len(seg) + 1]
    energy = np.concatenate([[0.0], np.cumsum(rec * rec)])
    window = energy[len(seg):] - energy[: len(rec) - len(seg) + 1]
    norm = corr / np.sqrt(np.maximum(window, 1e-9) * float(seg @ seg))
    at = int(np.argmax(norm))
    return at, float(norm[at])


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def test_recorded_playback_matches_the_compiled_track(pulse, tmp_path, monkeypatch):
    routine = tmp_path / "recorded.yaml"
    routine.write_text(ROUTINE)
    for name in ("VOICECOACH_CACHE_DIR", "VOICECOACH_DATA_DIR"):
        monkeypatch.setenv(name, pulse[name])
    wav = tmp_path / "track.wav"
    compiled = CliRunner().invoke(cli, ["compile", str(routine), "-o", str(wav), "--engine", "fake"])
    assert compiled.exit_code == 0, compiled.output
    track = _read_wav(wav)
    timeline = build(routine, settings=Settings(engine="fake")).timeline
    next_step = timeline.chapters[1].start_sample
    assert next_step > 3 * RATE  # the skip below happens inside the first step

    raw = tmp_path / "recording.raw"
    with open(raw, "wb") as out:
        recorder = subprocess.Popen(
            ["parec", "--raw", "--format=s16le", f"--rate={RATE}", "--channels=1", "--latency-msec=20",
             f"--device={SINK}.monitor"], env=pulse, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            _wait_for(lambda: subprocess.run(["pactl", "list", "short", "source-outputs"], env=pulse,
                                             capture_output=True, text=True).stdout.strip() != "", "parec")
            time.sleep(0.3)
            played = _voicecoach("play", str(routine), "--engine", "fake", "--no-keys", "--script-keys", KEYS,
                                 env=pulse)
            time.sleep(0.5)  # let the monitor deliver the last blocks
        finally:
            recorder.terminate()
            recorder.wait(10)
    assert played.returncode == 0, played.stderr + played.stdout
    lines = played.stdout.splitlines()
    assert "[0:01] paused" in lines and "[0:01] resumed" in lines
    assert f"[{clock(next_step / RATE)}] jump to step 2" in lines and lines[-3].endswith("] stopped")
    recording = np.fromfile(raw, dtype="<i2").astype(np.int16)
    assert len(recording) > 3 * RATE, f"recorded only {len(recording)} samples"

    # 1. The first second of the track (bar its first 0.1 s: a stream's very start can be lost
    #    to the monitor) is in the recording, exactly.
    a_at, a_corr = _locate(recording, track[RATE // 10 : RATE])
    start = a_at - RATE // 10  # where the track's sample 0 would be
    assert a_corr > 0.999 and np.array_equal(recording[a_at : start + RATE], track[RATE // 10 : RATE])

    # 2. Then silence while paused, about 1 s, and playback resumes at the very sample where it stopped.
    resumed = track[RATE : RATE + RATE // 2]
    b_at, b_corr = _locate(recording, resumed)
    pause_samples = b_at - (start + RATE)
    assert b_corr > 0.999 and np.array_equal(recording[b_at : b_at + len(resumed)], resumed)
    assert abs(pause_samples - RATE) <= RATE // 20, f"pause lasted {pause_samples / RATE:.3f} s"
    assert not recording[start + RATE : b_at].any()

    # 3. The skip lands on the next step's first sample: right after the last sample played.
    skipped = track[next_step : next_step + RATE // 2]
    c_at, c_corr = _locate(recording, skipped)
    assert c_corr > 0.999 and np.array_equal(recording[c_at : c_at + len(skipped)], skipped)
    assert c_at == b_at + len(resumed), f"skip landed {c_at - b_at - len(resumed)} samples off"

    # 4. As a whole: everything recorded from the first sample checked on is what the player should have played.
    expected = np.concatenate([track[:RATE], np.zeros(pause_samples, np.int16), resumed, skipped])
    heard = recording[start + RATE // 10 : start + len(expected)]
    assert np.array_equal(heard, expected[RATE // 10 :])


def test_devices_lists_and_picks_the_sound_servers_outputs(pulse, tmp_path):
    listed = _voicecoach("play", "--devices", env=pulse)
    assert listed.returncode == 0, listed.stderr
    assert "Null Output  (PulseAudio)" in listed.stdout
    routine = tmp_path / "r.yaml"
    routine.write_text(ROUTINE)
    wrong = _voicecoach("play", str(routine), "--engine", "fake", "--device", "bluetooth", "--no-keys", env=pulse)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert wrong.stderr.startswith("--device 'bluetooth' matches no output device; give a number or a name from: 1 Null")
    picked = _voicecoach("play", str(routine), "--engine", "fake", "--device", "null", "--no-keys",
                         "--script-keys", "wait:0.5,q", env=pulse)
    assert picked.returncode == 0, picked.stderr
    assert picked.stdout.splitlines()[-3:-1] == ["[0:00] stopped", "Played 0:00: 0 of 2 steps completed."]


LONG_ROUTINE = """\
routine: Long strokes
steps:
  - massage: Sweep
    area: cheeks
    strokes: 40
    tempo: 1s
"""


def test_a_sound_server_that_goes_away_ends_the_session_with_a_clear_error(pulse, tmp_path):
    """No hanging in silence: the player notices the device stopped, says how to go on, logs the session."""
    routine = tmp_path / "long.yaml"
    routine.write_text(LONG_ROUTINE)
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        play = subprocess.Popen([sys.executable, "-m", "voicecoach.cli", "play", str(routine), "--engine", "fake",
                                 "--no-keys"], env=pulse, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            _wait_for(lambda: "step 1/1 Sweep" in (tmp_path / "out").read_text(), "playing to start")
            time.sleep(1.0)
            os.kill(int(pulse["TEST_PULSEAUDIO_PID"]), signal.SIGKILL)
            code = play.wait(timeout=30)  # the routine is longer: it must not play (or hang) on
        finally:
            if play.poll() is None:
                play.kill()
                play.wait()
    stdout, stderr = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert code == 2 and "Traceback" not in stderr, stderr
    assert stderr.startswith("the audio output stopped taking sound"), stderr
    assert stderr.rstrip().endswith(f"then go on from this step: voicecoach play {routine} --from 1"), stderr
    assert "Played 0:0" in stdout and "Logged." in stdout
    logged = _voicecoach("log", "--json", env=pulse)
    assert logged.returncode == 0, logged.stderr
    [session] = json.loads(logged.stdout)["sessions"]
    assert not session["finished"] and 0 < session["seconds_played"] < 20

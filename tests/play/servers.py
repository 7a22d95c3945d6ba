"""Real sound and bus servers for the tests that play through them, started privately per test.

- :func:`pulse_server`: a PulseAudio daemon on a private socket with null sinks (the speakers;
  optionally a second one whose monitor is the default source: a virtual microphone).
- :func:`session_bus`: a private ``dbus-daemon --session`` (for MPRIS and playerctl).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

PULSEAUDIO = shutil.which("pulseaudio")
DBUS_DAEMON = shutil.which("dbus-daemon")
PLAYERCTL = shutil.which("playerctl")
RATE = 22050
"""The track's rate for a routine of speech and tones (pipeline.Settings.sample_rate_for)."""
MUSIC_RATE = 44100
"""The track's rate for a routine with music."""
SPEAKERS = "voicecoach_test"
MIC = "voicecoach_mic"


def wait_for(condition, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def pulse_server(folder: Path, *, microphone: bool = False, rate: int = RATE) -> Iterator[dict[str, str]]:
    """A private PulseAudio server; yields the clients' environment (``PULSE_SERVER``, ...).

    Sinks: ``SPEAKERS`` (mono, at ``rate``: the track's, so it plays unresampled) and with
    ``microphone`` also ``MIC`` (mono 16 kHz), whose monitor is the default source: what is
    played into ``MIC`` is what a program hears.
    """
    assert PULSEAUDIO, "install pulseaudio (.ci/run does)"
    assert shutil.which("parec") and shutil.which("pactl"), "install pulseaudio-utils (parec, pactl)"
    runtime = folder / "pulse"
    runtime.mkdir(mode=0o700)
    socket = runtime / "native"
    client_conf = folder / "client.conf"
    client_conf.write_text("autospawn = no\n")
    env = {
        **os.environ,
        "PULSE_RUNTIME_PATH": str(runtime),
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(folder / "home"),
        "PULSE_SERVER": f"unix:{socket}",
        "PULSE_CLIENTCONFIG": str(client_conf),
        "VOICECOACH_CACHE_DIR": str(folder / "cache"),
        "VOICECOACH_DATA_DIR": str(folder / "data"),
    }
    loads = [f"--load=module-null-sink sink_name={SPEAKERS} rate={rate} channels=1 format=s16le"]
    if microphone:
        loads.append(f"--load=module-null-sink sink_name={MIC} rate=16000 channels=1 format=s16le "
                     "sink_properties=device.description=VirtualMic")
    log = open(folder / "pulseaudio.log", "wb")
    server = subprocess.Popen(
        [PULSEAUDIO, "--daemonize=no", "--exit-idle-time=-1", "-n", "--system=false", "--disallow-exit",
         "--disable-shm=true", "--use-pid-file=false", "--log-target=stderr", *loads,
         f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}"],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )

    def ready() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"pulseaudio exited: {(folder / 'pulseaudio.log').read_text()[-2000:]}")
        return subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0

    try:
        wait_for(ready, "the PulseAudio server")
        subprocess.run(["pactl", "set-default-sink", SPEAKERS], env=env, check=True, capture_output=True)
        if microphone:
            subprocess.run(["pactl", "set-default-source", f"{MIC}.monitor"], env=env, check=True, capture_output=True)
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


def echo_into_the_microphone(env: dict[str, str], *, gain_db: float = -10.0) -> None:
    """The speakers heard by the microphone (``MIC``), ``gain_db`` down: the coach's own echo."""
    subprocess.run(["pactl", "load-module", "module-loopback", f"source={SPEAKERS}.monitor", f"sink={MIC}",
                    "latency_msec=60", "source_dont_move=true", "sink_dont_move=true"],
                   env=env, check=True, capture_output=True)
    loops = subprocess.run(["pactl", "list", "short", "sink-inputs"], env=env, capture_output=True, text=True).stdout
    [loop] = [line.split()[0] for line in loops.splitlines() if "module-loopback" in line]
    subprocess.run(["pactl", "set-sink-input-volume", loop, f"{gain_db:g}dB"], env=env, check=True,
                   capture_output=True)


@contextlib.contextmanager
def recording(env: dict[str, str], path: Path, *, device: str = f"{SPEAKERS}.monitor", rate: int = RATE) -> Iterator[None]:
    """Record ``device`` (the speakers by default) as raw s16le mono into ``path`` while the block runs."""
    with open(path, "wb") as out:
        recorder = subprocess.Popen(
            ["parec", "--raw", "--format=s16le", f"--rate={rate}", "--channels=1", "--latency-msec=20",
             f"--device={device}"], env=env, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: subprocess.run(["pactl", "list", "short", "source-outputs"], env=env,
                                            capture_output=True, text=True).stdout.strip() != "", "parec")
            time.sleep(0.3)
            yield
            time.sleep(0.5)  # let the monitor deliver the last blocks
        finally:
            recorder.terminate()
            recorder.wait(10)


@contextlib.contextmanager
def session_bus(folder: Path) -> Iterator[dict[str, str]]:
    """A private session D-Bus; yields an environment whose ``DBUS_SESSION_BUS_ADDRESS`` is it."""
    assert DBUS_DAEMON, "install dbus (.ci/run does)"
    socket = folder / "bus"
    config = folder / "session.conf"
    config.write_text(f"""<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
    daemon = subprocess.Popen([DBUS_DAEMON, f"--config-file={config}", "--nofork", "--nopidfile"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(socket.exists, "dbus-daemon")
        yield {**os.environ, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={socket}"}
    finally:
        daemon.terminate()
        daemon.wait(10)


def voicecoach_process(args: Sequence[str], *, env: dict[str, str], out: Path, err: Path) -> subprocess.Popen:
    """``voicecoach ARGS`` in the background, its output going to files (read them while it runs)."""
    return subprocess.Popen([sys.executable, "-m", "voicecoach.cli", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=open(out, "w"), stderr=open(err, "w"))


def correlation(recording: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Normalized cross-correlation of ``segment`` at every place in ``recording`` (1.0: the same, scaled)."""
    rec, seg = recording.astype(np.float64), segment.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(rec) + len(seg))))
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(seg, size)), size)[: len(rec) - len(seg) + 1]
    energy = np.concatenate([[0.0], np.cumsum(rec * rec)])
    window = energy[len(seg):] - energy[: len(rec) - len(seg) + 1]
    return corr / np.sqrt(np.maximum(window, 1e-9) * float(seg @ seg))


def locate(recording: np.ndarray, segment: np.ndarray) -> tuple[int, float]:
    """Where ``segment`` best matches in ``recording``, and the normalized cross-correlation there."""
    norm = correlation(recording, segment)
    at = int(np.argmax(norm))
    return at, float(norm[at])


def read_wav(path: Path, rate: int = RATE) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, rate)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


# -- reading a recording back as jumps through the track ------------------------------------


def find_all(recording: np.ndarray, segment: np.ndarray, *, min_corr: float = 0.98) -> list[int]:
    """Every place ``segment`` occurs in ``recording`` (normalized cross-correlation above ``min_corr``)."""
    norm = correlation(recording, segment)
    found: list[int] = []
    for at in np.flatnonzero(norm > min_corr):
        if not found or at - found[-1] >= len(segment):
            found.append(int(at))
        elif norm[at] > norm[found[-1]]:
            found[-1] = int(at)
    return found


def remove(recording: np.ndarray, sound: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The recording with every occurrence of ``sound`` (mixed in, e.g. an acknowledgement) taken out."""
    out = recording.astype(np.int32)
    places = find_all(recording, sound)
    for at in places:
        out[at : at + len(sound)] -= sound[: len(out) - at]
    return np.clip(out, -32768, 32767).astype(np.int16), places


def _agreement(a: np.ndarray, b: np.ndarray) -> int:
    """How many leading samples two arrays share."""
    n = min(len(a), len(b))
    differs = np.flatnonzero(a[:n] != b[:n])
    return int(differs[0]) if len(differs) else n


@dataclass(frozen=True)
class Junction:
    """Where the recording stops following the track and where it picks it up again."""

    left_at: int
    """Track sample where the recording stopped matching the track (a pause or jump at or before it)."""
    recorded_at: int
    """Recording sample of that point."""
    silence: int
    """Recorded samples of silence before the track is heard again."""
    resumed_at: int
    """Track sample heard next; -1: silence to the end; -2: something else (not the track) next."""


def _strip_overlay(recording: np.ndarray, i: int, t: int, overlay: np.ndarray, track: np.ndarray) -> bool:
    """If ``overlay`` (mixed in by the player) starts where recording sample ``i`` (track sample ``t``)
    stops matching, take it out in place.

    It counts as there when what is left is what may sound: the track going on, silence (a
    pause), or another stretch of the track (a jump).
    """
    size = len(overlay)
    for d in (0, 1, 2):  # the overlay fades in from 0: its first samples may have matched
        s = i - d
        if s < 0 or s + size > len(recording) or overlay[:d].any():
            continue
        rest = recording[s : s + size].astype(np.int32) - overlay
        if np.abs(rest).max() > 32767:
            continue
        rest = rest.astype(np.int16)
        loud = np.flatnonzero(rest[d:])
        ok = np.array_equal(rest, track[t - d : t - d + size]) or not len(loud)
        if not ok:
            piece = rest[d + loud[0] :]
            ok = any(np.array_equal(track[p : p + len(piece)], piece) for p in find_all(track, piece, min_corr=0.999))
        if ok:
            recording[s : s + size] = rest
            return True
    return False


def junctions(recording: np.ndarray, track: np.ndarray, *, rate: int = RATE, probe_s: float = 0.25,
              overlay: np.ndarray | None = None) -> tuple[int, list[Junction]]:
    """Follow the track through the recording: ``(recording index of track sample 0, jumps)``.

    Within silence of the track a pause cannot be placed exactly; the junction is then reported
    where track and recording first differ, consistently on both sides.  ``overlay``: a sound the
    player mixes in over the track (a command's acknowledgement), taken out where it is found.
    """
    recording = recording.copy()
    probe = round(probe_s * rate)
    first = np.flatnonzero(track)[0] + rate // 10  # a stream's very first blocks can be lost to the monitor
    start, corr = locate(recording, track[first : first + probe])
    assert corr > 0.999, f"the track's start is not in the recording (correlation {corr:.4f})"
    offset = start - first
    found: list[Junction] = []
    i = start
    while True:
        t = i - offset
        n = min(len(recording) - i, len(track) - t)
        if n <= 0:
            return offset, found
        differs = np.flatnonzero(recording[i : i + n] != track[t : t + n])
        if not len(differs):
            return offset, found
        i += int(differs[0])
        if overlay is not None and _strip_overlay(recording, i, i - offset, overlay, track):
            continue
        left_at = i - offset
        loud = np.flatnonzero(recording[i:] != 0)
        if not len(loud):
            found.append(Junction(left_at, i, len(recording) - i, -1))
            return offset, found
        j = i + int(loud[0])
        segment = recording[j : j + probe]
        if len(segment) < probe // 4:
            found.append(Junction(left_at, i, len(recording) - i, -1))
            return offset, found
        candidates = find_all(track, segment, min_corr=0.999)  # a chime or a tick recurs: take the longest match
        for part in (8, 16, 32, 64):
            # the overlay may start a little after the jump, inside the probe: match what sounds before
            # it (the next round takes the overlay out where it starts)
            head = recording[j : j + probe // part]
            if candidates or overlay is None or len(head) < probe // part:
                break
            candidates = find_all(track, head, min_corr=0.999)
        if not candidates and overlay is not None and _strip_overlay(recording, j, left_at, overlay, track):
            continue  # the overlay is what sounds first after the silence (e.g. a resume's blips)
        if not candidates:  # not the track (e.g. an acknowledgement cut short when the device closed)
            found.append(Junction(left_at, i, j - i, -2))
            return offset, found
        at = max(candidates, key=lambda c: _agreement(recording[j:], track[c:]))
        found.append(Junction(left_at, i, j - i, at))
        offset = j - at
        i = j

"""Listening against a real sound server: `voicecoach play --listen` with its own echo at the microphone.

A private PulseAudio has two null sinks: the speakers (recorded) and a virtual microphone whose
monitor is the default source; the coach's output is looped back into the microphone at -10 dB
(echo), over a bed of room noise.

- Spoken commands, synthesized by the project's own engines (espeak and Piper, each at two
  speech rates), are played into the microphone, each once (a word missed is said a second
  time, as a user would; a wrong or unasked action fails at once), in the quiet between the coach's
  cues (the test follows the player's plain output lines to know where it is).  What the
  speakers got is checked sample by sample against the compiled track (the acknowledgement
  blips taken out; a faint music bed leaves no silence in the track, so a pause shows to the
  sample), and the microphone's recording times the pause from the end of its word.
- A whole library routine plays with `--listen` and nobody speaks: no action may be taken (it
  plays in the background while the rest of the suite runs: see conftest.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicecoach.pipeline import Settings, build
from voicecoach.play.listen import acknowledgement

from tests.play.servers import (
    MIC,
    MUSIC_RATE,
    correlation,
    echo_into_the_microphone,
    junctions,
    pulse_server,
    recording,
    voicecoach_process,
    wait_for,
)
from tests.play.spoken import RATE_16K, noise, spoken_words, to_int16

RATE = MUSIC_RATE  # the routine has a music bed: its track is at 44.1 kHz

ROUTINE = """\
routine: Voice commands
music:
  file: bed.wav
  volume: 0.05
steps:
  - breathe: Slow breath
    inhale: 3s
    exhale: 8s
    cycles: 1
  - rest: 8s
  - massage: Neck sweep
    area: neck
    strokes: 3
    tempo: 8s
"""
"""Long stretches without speech or tones to say the commands in (the out-breath, the rest, the time
between strokes); under it all a faint music bed (about -59 dBFS, -69 at the microphone), so that the
track has no silence: every jump, pause and resume shows in the recording to the sample."""
BED_S = 90
"""The bed's length: longer than the routine, so it is cut, never looped (nothing in the track recurs)."""

NOISE_DB = -45.0
"""The microphone's room noise, dBFS RMS (pink), under everything."""
PAD_S = 0.25
"""Silence around each spoken word in the file played into the microphone."""
ACTED_WITHIN_S = 1.0
"""The issue's bound: the pause is heard within 1 s of the end of the spoken word."""


@dataclass(frozen=True)
class Said:
    """A command played into the microphone."""

    word: str
    engine: str
    rate: float
    expect: str
    """The start of the plain output line its action prints."""

    def __str__(self) -> str:
        return f"{self.word!r} ({self.engine} at rate {self.rate})"


# Each voice at each rate once: (espeak, Piper) x (0.85, 1.15).
PAUSE = Said("pause", "piper", 0.85, "voice: pause at ")
CONTINUE = Said("continue", "espeak", 0.85, "voice: continue at ")
NEXT = Said("next", "espeak", 1.15, "voice: next -> 3/3 Neck sweep")
STOP = Said("stop", "piper", 1.15, "voice: stop at ")


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())


def _word_files(folder: Path) -> dict[Said, tuple[Path, np.ndarray, int]]:
    """Each command as a file for the microphone: ``(path, its samples, sample of the word's end)``."""
    files = {}
    for said in (PAUSE, CONTINUE, NEXT, STOP):
        clip = spoken_words([said.word], engine=said.engine, rate=said.rate, folder=folder,
                            cache_dir=folder / "words-cache")[said.word]
        pad = np.zeros(round(PAD_S * RATE_16K), np.int16)
        samples = np.concatenate([pad, clip, pad])
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 0.05 * np.abs(clip.astype(np.int32)).max())
        path = folder / f"say-{said.word}.wav"
        _write_wav(path, samples, RATE_16K)
        files[said] = (path, samples, int(loud[-1]) + 1)
    return files


def _room_noise(env, folder: Path, seconds: float) -> subprocess.Popen:
    """Pink noise into the microphone for ``seconds`` (in the background)."""
    path = folder / "room-noise.wav"
    _write_wav(path, to_int16(noise(round(seconds * RATE_16K), level_db=NOISE_DB, seed=12)), RATE_16K)
    return subprocess.Popen(["paplay", f"--device={MIC}", str(path)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _seconds(line: str) -> float:
    minutes, seconds = re.search(r" at (\d+):(\d\d\.\d\d)$", line).groups()
    return int(minutes) * 60 + float(seconds)


def _check_the_speakers(speakers: np.ndarray, track: np.ndarray, chapters, actions: list[str]) -> None:
    """What the speakers got, sample by sample against the track, the blips taken out (junctions)."""
    ack = acknowledgement(RATE)
    _, found = junctions(speakers, track, overlay=ack, rate=RATE)
    # A starved machine can underrun the sound server: a short gap, the track going on near where it
    # was (as in test_mpris.py).  Those are not actions: each action here jumps or pauses for seconds.
    jumps = [j for j in found if not (j.silence < RATE // 5 and 0 <= j.resumed_at - j.left_at < RATE // 5)]
    assert len(jumps) >= 3, f"the recording leaves the track at {found} (pause, next, stop expected)"
    pause, skip, stop = jumps[:3]
    c1, c2 = chapters[1].start_sample, chapters[2].start_sample
    printed = [round(_seconds(actions[i]) * 100) * RATE // 100 for i in (0, 1, 3)]  # positions, to 10 ms
    tenth = RATE // 100 + RATE // 1000  # printed positions are rounded down to 10 ms (+ a quiet sample or so)
    # pause -> the track stops (the blips over silence only) at the printed position, until the resume;
    # then it goes on from the very sample where it stopped
    assert 0 <= pause.left_at - printed[0] < tenth and pause.silence > RATE, (pause, printed)
    assert pause.resumed_at == pause.left_at and _seconds(actions[1]) == _seconds(actions[0]), (pause, actions)
    # next (said in the rest) -> the next step's first sample follows the last one played
    assert c1 < skip.left_at < c2 <= skip.resumed_at and not track[c2 : skip.resumed_at].any(), (skip, c2)
    # stop -> nothing of the track after the printed position (what the device still held is dropped:
    # the sound may end up to a device buffer, 150 ms, before it)
    assert stop.resumed_at < 0 and 0 <= printed[2] + tenth - stop.left_at < RATE // 4, (stop, printed)


def _latencies_s(mic: np.ndarray, words: dict[Said, tuple[Path, np.ndarray, int]],
                 tries: dict[Said, int]) -> dict[Said, float | None]:
    """Seconds from the end of each spoken word (its try that acted) to its blips, as the microphone heard
    both (the echo loop's own delay included); ``None``: no blips within 3 s (e.g. cut by stop)."""
    ack_16k = acknowledgement(RATE_16K)
    late = {}
    for said, (_, samples, word_end) in words.items():
        norm = correlation(mic, samples)
        found = []  # the tries heard (the best match, then the best one a second away from those found)
        for _ in range(tries[said]):
            masked = norm.copy()
            for at in found:
                masked[max(0, at - RATE_16K) : at + RATE_16K] = -1.0
            if found and masked.max() <= 0.8:
                break
            found.append(int(np.argmax(masked)))
        at = max(found)  # the last try: the one that acted
        corr = float(norm[at])
        assert corr > 0.8, f"{said} is not in the microphone's recording (correlation {corr:.2f})"
        blips = np.flatnonzero(correlation(mic[at + word_end : at + word_end + 3 * RATE_16K], ack_16k) > 0.8)
        late[said] = int(blips[0]) / RATE_16K if len(blips) else None
    return late


def test_spoken_commands_pause_resume_skip_and_stop(tmp_path, monkeypatch):
    routine = tmp_path / "voice.yaml"
    routine.write_text(ROUTINE)
    _write_wav(tmp_path / "bed.wav", to_int16(noise(BED_S * RATE, level_db=-20, seed=7)), RATE)
    words = _word_files(tmp_path)
    with pulse_server(tmp_path, microphone=True, rate=RATE) as env:
        for name in ("VOICECOACH_CACHE_DIR", "VOICECOACH_DATA_DIR"):
            monkeypatch.setenv(name, env[name])
        made = build(routine, settings=Settings(engine="espeak"))  # what play will make: the same cache
        track, chapters = made.read(0, made.timeline.length_samples), made.timeline.chapters
        assert made.timeline.sample_rate == RATE
        echo_into_the_microphone(env)
        room = _room_noise(env, tmp_path, made.timeline.length_samples / RATE + 40)
        out, err = tmp_path / "out", tmp_path / "err"
        log: list[str] = []  # what was said when, for a failure's message
        started = time.monotonic()

        def output() -> str:
            return out.read_text()

        def story() -> str:
            return ("\nsaid:\n  " + "\n  ".join(log) + f"\nplay printed:\n{output()}"
                    + f"play's errors:\n{err.read_text()[-3000:]}")

        def when(text: str, timeout_s: float) -> None:
            """Wait for a plain output line containing ``text``."""
            try:
                wait_for(lambda: text in output() or play.poll() is not None, repr(text), timeout_s=timeout_s)
            except AssertionError:
                raise AssertionError(f"play never printed {text!r} within {timeout_s} s{story()}") from None
            assert text in output(), f"play ended before printing {text!r} (exit {play.returncode}){story()}"

        def actions_so_far() -> list[str]:
            return [line for line in output().splitlines() if line.startswith("voice: ")]

        tries: dict[Said, int] = {}

        def say(said: Said) -> None:
            """Speak into the microphone; its action, and only it, must follow.  A word missed is said
            once more, as a user would (the benchmark measures single tries: benchmarks/listen.py)."""
            before = actions_so_far()
            if len(before) != len(tries):
                raise AssertionError(f"action(s) nobody asked for (the coach's echo?): {before[len(tries):]}{story()}")
            for attempt in (1, 2):
                status = [line for line in output().splitlines() if line.startswith("[")]
                log.append(f"{time.monotonic() - started:6.2f} s  {said} (try {attempt}), "
                           f"after {status[-1] if status else 'nothing'!r}")
                subprocess.run(["paplay", f"--device={MIC}", str(words[said][0])], env=env, check=True, timeout=20)
                try:
                    wait_for(lambda: said.expect in output() or play.poll() is not None, "", timeout_s=3.0)
                except AssertionError:
                    pass
                new = actions_so_far()[len(before):]
                if any(line.startswith(said.expect) for line in new):
                    tries[said] = attempt
                    return
                if new:
                    raise AssertionError(f"{said} was taken for {new}{story()}")
            raise AssertionError(f"{said} was missed by the recognizer twice: no {said.expect!r} line{story()}")

        with recording(env, tmp_path / "speakers.raw", rate=RATE), \
                recording(env, tmp_path / "mic.raw", device=f"{MIC}.monitor", rate=RATE_16K):
            play = voicecoach_process(["play", str(routine), "--engine", "espeak", "--no-keys", "--listen",
                                       "--mic", "monitor of virtualmic"], env=env, out=out, err=err)
            try:
                when("breathe out 1 of 1", timeout_s=60)
                time.sleep(1.0)  # in the out-breath's 7 quiet seconds
                say(PAUSE)
                time.sleep(1.5)  # paused: the coach is silent
                say(CONTINUE)
                when("step 2/3 Rest", timeout_s=20)
                time.sleep(2.0)  # after "Rest for eight seconds."
                say(NEXT)
                when("stroke 1 of 3", timeout_s=20)
                time.sleep(2.0)  # the 8 s between strokes, past the count and its echo (room for a second try)
                say(STOP)
                code = play.wait(timeout=20)
            finally:
                if play.poll() is None:
                    play.kill()
                    play.wait()
                room.kill()
                room.wait()
        stdout = output()
        assert code == 0, f"exit {code}{story()}"
        actions = [line for line in stdout.splitlines() if line.startswith("voice: ")]
        assert [re.sub(r" at \d+:\d\d\.\d\d$", "", a) for a in actions] == [
            "voice: pause", "voice: continue", "voice: next -> 3/3 Neck sweep", "voice: stop"], story()
        assert any(line.startswith("Logged. Practice streak: ") for line in stdout.splitlines()), story()
        logged = subprocess.run([sys.executable, "-m", "voicecoach.cli", "log", "--json"], env=env,
                                capture_output=True, text=True)
        [session] = json.loads(logged.stdout)["sessions"]
        assert session["actions"] == {"voice": 4} and not session["finished"], session

    _check_the_speakers(np.fromfile(tmp_path / "speakers.raw", dtype="<i2").astype(np.int16), track, chapters, actions)
    late = _latencies_s(np.fromfile(tmp_path / "mic.raw", dtype="<i2").astype(np.int16), words, tries)
    print("tries: " + ", ".join(f"{s}: {n}" for s, n in tries.items()))
    print("from the end of the word to the blips: " + ", ".join(f"{s}: {t} s" for s, t in late.items()))
    assert late[PAUSE] is not None and late[PAUSE] <= ACTED_WITHIN_S, f"{PAUSE} acted on after {late[PAUSE]} s"


def test_a_whole_routine_with_its_own_echo_and_no_commands_takes_no_action(whole_routine_playing):
    """The coach says "next up", counts, "stop" and "back" can be in its lines: none of it is a command.

    The whole routine plays in real time (conftest.py starts it when collection is done)."""
    env = whole_routine_playing.env
    listed = subprocess.run([sys.executable, "-m", "voicecoach.cli", "play", "--devices"], env=env,
                            capture_output=True, text=True)
    assert listed.returncode == 0 and "inputs (--mic):" in listed.stdout, listed.stderr
    assert "Monitor of VirtualMic" in listed.stdout.split("inputs (--mic):")[1]
    code, stdout, stderr = whole_routine_playing.wait(timeout_s=600)
    assert code == 0, stderr
    assert not [line for line in stdout.splitlines() if line.startswith("voice: ")], stdout
    assert "5 of 5 steps completed, finished." in stdout, stdout
    logged = subprocess.run([sys.executable, "-m", "voicecoach.cli", "log", "--json"], env=env,
                            capture_output=True, text=True)
    [session] = json.loads(logged.stdout)["sessions"]
    assert session["finished"] and session["actions"] == {}, session

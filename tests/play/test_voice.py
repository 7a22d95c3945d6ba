"""Listening against a real sound server: `voicecoach play --listen` with its own echo at the microphone.

A private PulseAudio has two null sinks: the speakers and a virtual microphone whose monitor is
the default source; the coach's output is looped back into the microphone at -10 dB (echo).
A whole library routine plays with `--listen` and nobody speaks: no action may be taken.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.play.servers import MIC, SPEAKERS, pulse_server


def _echo_into_the_microphone(env) -> None:
    """The speakers heard by the microphone, 10 dB down."""
    subprocess.run(["pactl", "load-module", "module-loopback", f"source={SPEAKERS}.monitor", f"sink={MIC}",
                    "latency_msec=60", "source_dont_move=true", "sink_dont_move=true"],
                   env=env, check=True, capture_output=True)
    loops = subprocess.run(["pactl", "list", "short", "sink-inputs"], env=env, capture_output=True, text=True).stdout
    [loop] = [line.split()[0] for line in loops.splitlines() if "module-loopback" in line]
    subprocess.run(["pactl", "set-sink-input-volume", loop, "-10dB"], env=env, check=True, capture_output=True)


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

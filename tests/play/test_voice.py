"""Listening against a real sound server: `voicecoach play --listen` with its own echo at the microphone.

A private PulseAudio has two null sinks: the speakers and a virtual microphone whose monitor is
the default source; the coach's output is looped back into the microphone at -10 dB (echo).
A whole library routine plays with `--listen` and nobody speaks: no action may be taken (it
plays in the background while the rest of the suite runs: see conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys


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

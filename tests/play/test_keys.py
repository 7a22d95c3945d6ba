"""The keys a user presses, end to end: a real pseudo-terminal -> Keyboard -> Controller -> Player.

Each key's effect is checked on the player (volume in exact 10 % steps, back, repeat), and the
command line's --volume, --loop and --no-keys on whole sessions with the fake device: swapping
two keys, a wrong volume step or a session that touches the terminal it was told to leave alone
fails here.
"""

from __future__ import annotations

import os
import sys
import termios
import time

import numpy as np
import pytest
from click.testing import CliRunner

from voicecoach.cli import cli
from voicecoach.play import session as session_module
from voicecoach.play.backends import FakeBackend
from voicecoach.play.controller import VOLUME_STEP_PERCENT, Controller
from voicecoach.play.keyboard import KEY_ACTIONS, Keyboard, RawTerminal
from voicecoach.play.player import Player
from voicecoach.play.session import PlayOptions, play_routine

from tests.play.test_keyboard import pty_pair  # noqa: F401  (a fixture)
from tests.play.tracks import RATE, Track, starts, timeline, track  # noqa: F401  (fixtures)


def press(controller: Controller, master: int, data: bytes, count: int) -> None:
    """Types ``data`` on the terminal; waits until the controller has carried out ``count`` key actions."""
    os.write(master, data)
    deadline = time.monotonic() + 10
    while controller.counts().get("keys", 0) < count:
        assert time.monotonic() < deadline, f"{data!r}: only {controller.counts()} actions after 10 s"
        time.sleep(0.005)


def typed(track, pty_pair, data: bytes, count: int, *, volume_percent: int = 50, at_step: int = 1, into_s: float = 1.5):
    """A player in step ``at_step`` (``into_s`` in); ``data`` typed on a real terminal; its state after."""
    master, slave = pty_pair
    player = Player(track, volume_percent=volume_percent)
    player.pull(starts(track.timeline)[at_step] + round(into_s * RATE))
    controller = Controller(player)
    keyboard = Keyboard(RawTerminal(slave))
    keyboard.start(controller)
    try:
        press(controller, master, data, count)
    finally:
        keyboard.close()
    return player.state()


def test_the_volume_step_is_ten_percent():
    assert VOLUME_STEP_PERCENT == 10


@pytest.mark.parametrize("data, volume", [
    (b"+", 60), (b"=", 60), (b"\x1b[A", 60),  # up: '+', its unshifted key '=', arrow up
    (b"-", 40), (b"\x1b[B", 40),  # down: '-', arrow down
    (b"++", 70), (b"--", 30), (b"+-", 50), (b"+++++++", 100), (b"------", 0),  # clamped at 100 and 0
])
def test_volume_keys(track, pty_pair, data, volume):
    keys = len(data) if not data.startswith(b"\x1b") else 1
    assert typed(track, pty_pair, data, keys).volume_percent == volume


def test_r_repeats_the_step_and_p_goes_back_twice_quickly_to_the_previous_one(track, pty_pair):
    c = starts(track.timeline)
    state = typed(track, pty_pair, b"r", 1, at_step=1)
    assert state.position == c[1] and state.volume_percent == 50
    assert typed(track, pty_pair, b"p", 1, at_step=2).position == c[2]
    assert typed(track, pty_pair, b"pp", 2, at_step=2).position == c[1]  # twice quickly: the previous step
    assert typed(track, pty_pair, b"\x1b[D", 1, at_step=2).position == c[2]  # left arrow: back too
    assert typed(track, pty_pair, b"n", 1, at_step=1).position == c[2]
    assert typed(track, pty_pair, b" ", 1, at_step=1).paused


def test_the_volume_scales_the_samples_played(track):
    player = Player(track, volume_percent=100)
    controller = Controller(player)
    start = RATE
    assert np.array_equal(player.pull(start), track.samples[:start])
    for _ in range(3):
        controller.apply(KEY_ACTIONS["-"], 0.0)
    assert player.state().volume_percent == 70
    got = player.pull(RATE)
    assert np.array_equal(got, np.rint(track.samples[start : start + RATE].astype(np.float32) * np.float32(0.7))
                          .astype(np.int16))


# -- --volume, --loop, --no-keys on whole sessions -------------------------------------------------


@pytest.fixture
def device(monkeypatch):
    """The fake device play_routine makes, keeping what it pulled."""
    made: list[FakeBackend] = []

    def make(name, *, device=None):
        assert name == "fake"
        made.append(FakeBackend(keep=True, chunk_frames=1000))
        return made[-1]

    monkeypatch.setattr(session_module, "make_backend", make)
    return made


def play(track, **options):
    shown: list[str] = []
    report = play_routine(track, PlayOptions(backend="fake", log=False, live=False, **options), show=shown.append,
                          warn=shown.append)
    return report, "".join(shown)


def test_volume_option_scales_every_sample(track, device):
    report, _ = play(track, keys=False, volume_percent=30)
    played = device[0].played()
    expected = np.rint(track.samples.astype(np.float32) * np.float32(0.3)).astype(np.int16)
    assert report.result.finished and np.array_equal(played[: len(expected)], expected)
    assert not played[len(expected):].any()


def test_loop_plays_again_from_the_start_step_until_quit(track, device):
    total = track.timeline.length_samples
    c2 = starts(track.timeline)[2]
    once = total - c2
    stop_s = (once + once + RATE) / RATE  # twice from step 3, then one second into the third round
    report, _ = play(track, keys=False, loop=True, from_step="3", script_keys=f"wait:{stop_s},q")
    played = device[0].played()
    round_ = track.samples[c2:]
    assert np.array_equal(played[: 2 * once + RATE], np.concatenate([round_, round_, round_[:RATE]]))
    # without --loop the same script ends after one round
    device.clear()
    report, _ = play(track, keys=False, from_step="3", script_keys=f"wait:{stop_s},q")
    assert report.result.finished and not device[0].played()[once:].any()


@pytest.fixture
def stdin_terminal(pty_pair, monkeypatch):
    """Standard input is a real terminal (the pty's slave side); yields (master, slave)."""
    master, slave = pty_pair
    handle = os.fdopen(os.dup(slave), "r")
    monkeypatch.setattr(sys, "stdin", handle)
    yield master, slave
    handle.close()


@pytest.fixture
def terminal_changes(monkeypatch):
    """Every tcsetattr call: (fd, mode)."""
    calls = []
    real = termios.tcsetattr

    def spy(fd, when, mode):
        calls.append((fd, mode))
        return real(fd, when, mode)

    monkeypatch.setattr(termios, "tcsetattr", spy)
    return calls


def test_no_keys_leaves_the_terminal_alone(track, device, stdin_terminal, terminal_changes):
    master, slave = stdin_terminal
    before = termios.tcgetattr(slave)
    os.write(master, b"q\n")  # would quit at once if keys were read
    report, shown = play(track, keys=False)
    assert report.result.finished and report.action_counts == {}
    assert terminal_changes == [] and termios.tcgetattr(slave) == before
    assert "keys:" not in shown  # no key help either
    os.set_blocking(slave, False)
    assert os.read(slave, 16) == b"q\n"  # still there, unread (a line: the terminal is still canonical)


def test_keys_are_read_from_the_terminal_and_it_is_restored(track, device, stdin_terminal, terminal_changes):
    master, slave = stdin_terminal
    before = termios.tcgetattr(slave)
    os.write(master, b"q")
    report, shown = play(track, keys=True, script_keys="wait:600,q")  # only the typed q can end it early
    assert report.action_counts.get("keys") == 1 and not report.result.finished
    assert terminal_changes and termios.tcgetattr(slave) == before
    assert "keys: space pause" in shown


def test_the_command_line_passes_volume_loop_and_no_keys(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(session_module, "play_routine", lambda file, options, **kw: seen.append(options))
    routine = tmp_path / "r.yaml"
    routine.write_text("routine: R\nsteps:\n  - say: Hi.\n")
    result = CliRunner().invoke(cli, ["play", str(routine), "--volume", "30", "--loop", "--no-keys", "--backend", "fake"])
    assert result.exit_code == 0, result.output
    assert (seen[0].volume_percent, seen[0].loop, seen[0].keys) == (30, True, False)
    CliRunner().invoke(cli, ["play", str(routine), "--backend", "fake"])
    assert (seen[1].volume_percent, seen[1].loop, seen[1].keys) == (100, False, True)

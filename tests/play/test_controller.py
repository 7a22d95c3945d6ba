"""controller.py: every input source's actions go through one controller, counted per source."""

from __future__ import annotations

import os
import threading

import pytest

from voicecoach.play.backends import FakeBackend
from voicecoach.play.controller import Action, Applied, Controller
from voicecoach.play.keyboard import Keyboard, RawTerminal, ScriptedKey, schedule_keys
from voicecoach.play.player import Player
from voicecoach.play.session import run_session
from voicecoach.play.status import StatusView

from tests.play.test_keyboard import pty_pair  # noqa: F401  (a fixture)
from tests.play.tracks import RATE, Track, starts, timeline, track  # noqa: F401  (fixtures)


def test_actions_are_counted_per_source_and_reported(track):
    seen: list[Applied] = []
    player = Player(track)
    controller = Controller(player, on_action=seen.append)
    player.pull(RATE)
    controller.apply(Action.NEXT, 0.0, source="media")
    controller.apply(Action.PAUSE, 0.1, source="voice", heard="pause")
    controller.apply(Action.PAUSE, 0.2)
    assert controller.counts() == {"keys": 1, "media": 1, "voice": 1}
    assert seen[0] == Applied(Action.NEXT, "media", RATE)
    assert seen[1] == Applied(Action.PAUSE, "voice", starts(track.timeline)[1], "pause")
    assert not player.state().paused


def test_keys_and_scripted_actions_reach_one_controller(track, pty_pair):
    master, slave = pty_pair
    player = Player(track)
    controller = Controller(player)
    os.write(master, b"n")  # a key: next step
    run_session(player, FakeBackend(chunk_frames=1000), view=StatusView(track.timeline, live=False),
                show=lambda text: None, inputs=[Keyboard(RawTerminal(slave))], controller=controller,
                script=[ScriptedKey(0.0, "space"), ScriptedKey(0.5, "space")], poll_s=0.01)
    assert controller.counts() == {"keys": 1, "script": 2}


def test_actions_from_threads_and_the_audio_thread_do_not_deadlock(track):
    player = Player(track, loop=True)
    controller = schedule_keys(player, [ScriptedKey(i / 100, "+") for i in range(200)])
    stop = threading.Event()

    def press() -> None:
        while not stop.is_set():
            controller.apply(Action.VOLUME_DOWN, source="keys")

    def play() -> None:  # the audio thread: scripted actions run here, under the player's lock
        for _ in range(200):
            player.pull(RATE // 100)
        stop.set()

    threads = [threading.Thread(target=work, daemon=True) for work in (press, play)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads), "deadlocked"
    assert player.state().device_frames == 200 * (RATE // 100)


@pytest.mark.parametrize("action", list(Action))
def test_every_action_does_something(track, action):
    player = Player(track, volume_percent=50)
    player.pull(starts(track.timeline)[1] + 10)
    before = player.state()
    Controller(player).apply(action, 0.0)
    after = player.state()
    assert (after.position, after.paused, after.volume_percent, after.stopped) != (
        before.position, before.paused, before.volume_percent, before.stopped)

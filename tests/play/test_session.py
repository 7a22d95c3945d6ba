"""session.py and `voicecoach play`: whole sessions with the fake device, input sources, the CLI."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import termios

import numpy as np
import pytest

from voicecoach.errors import VoicecoachError
from voicecoach.play.backends import FakeBackend
from voicecoach.play.keyboard import Keyboard, RawTerminal, ScriptedKey, schedule_keys
from voicecoach.play.player import Player
from voicecoach.play.session import run_session
from voicecoach.play.status import StatusView, TimelineIndex, clock, log_line

from tests.play.test_backends import FakeMiniaudio
from tests.play.test_keyboard import pty_pair  # noqa: F401  (a fixture)
from tests.play.tracks import RATE, ROUTINE, Track, starts, timeline, track  # noqa: F401  (fixtures)


# -- whole sessions with the fake device --------------------------------------------------


def session(track, *, script=(), terminal=None, start_step=0, live=False):
    player = Player(track, start_step=start_step)
    backend = FakeBackend(keep=True, chunk_frames=1000)
    shown: list[str] = []
    view = StatusView(track.timeline, live=live)
    inputs = [Keyboard(terminal)] if terminal is not None else []
    result = run_session(player, backend, view=view, show=shown.append, inputs=inputs, script=list(script),
                         poll_s=0.01)
    return result, backend.played(), "".join(shown)


def test_scripted_session_with_the_fake_device(track):
    script = [ScriptedKey(1.0, "space"), ScriptedKey(2.0, "space"), ScriptedKey(2.5, "n"), ScriptedKey(4.0, "q")]
    result, played, shown = session(track, script=script)
    c1 = starts(track.timeline)[1]
    expected = np.concatenate([track.samples[:RATE], np.zeros(RATE, np.int16), track.samples[RATE : RATE + RATE // 2],
                               track.samples[c1 : c1 + 3 * RATE // 2]])
    assert np.array_equal(played[: len(expected)], expected) and not played[len(expected) :].any()
    assert result.played_s == pytest.approx(3.0) and not result.finished and result.steps_completed == 0
    lines = shown.splitlines()
    lift_s = c1 / RATE
    assert lines[0] == f"[0:00] step 1/3 Lift: intro, {clock(math.ceil(lift_s))} left (next: Rest)"
    assert lines[1:3] == ["[0:01] paused", "[0:01] resumed"]
    jump = lines.index(f"[{clock(lift_s)}] jump to step 2")
    assert lines[jump + 1].startswith(f"[{clock(lift_s)}] step 2/3 Rest: rest, ")
    assert lines[-1] == f"[{clock(lift_s + 1.5)}] stopped"
    # Between resume and skip: one line per phase change, in order.
    index = TimelineIndex(track.timeline)
    crossed = [b for b in index.boundaries() if RATE < b <= RATE * 3 // 2]
    assert crossed and lines[3:jump] == [log_line(index.status(b)) for b in crossed]
    # The same script gives the same session, to the sample and the line.
    again = session(Track(track.timeline), script=script)
    assert np.array_equal(again[1][: len(expected)], expected) and again[2] == shown


def test_session_plays_to_the_end_and_live_mode_draws_one_line(track):
    result, played, shown = session(track, live=True)
    assert result.finished and np.array_equal(played[: len(track.samples)], track.samples)
    assert shown.startswith("\r") and shown.endswith("\n") and "\n" not in shown[:-1]


def test_session_takes_keys_from_the_terminal_and_restores_it(track, pty_pair):
    master, slave = pty_pair
    before = termios.tcgetattr(slave)
    os.write(master, b"\x1b[C ")  # right arrow (next step, while paused by the script), then space: resume
    result, played, _ = session(track, script=[ScriptedKey(0.0, "space")], terminal=RawTerminal(slave))
    c1 = starts(track.timeline)[1]
    sounded = played[played != 0]
    assert np.array_equal(sounded, track.samples[c1:]) and result.finished
    assert termios.tcgetattr(slave) == before


def test_ctrl_c_stops_the_device_and_restores_the_terminal(track, pty_pair):
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    player = Player(track)
    backend = FakeBackend()
    schedule_keys(player, [ScriptedKey(0.0, "space")])  # paused: the session would go on forever

    def show(text: str) -> None:
        if player.state().device_frames > RATE:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_session(player, backend, view=StatusView(track.timeline, live=True), show=show,
                    inputs=[Keyboard(RawTerminal(slave))], poll_s=0.01)
    assert backend.finished() and termios.tcgetattr(slave) == before


def test_an_input_source_that_breaks_ends_the_session_with_its_error(track):
    class Broken:
        name = "broken"
        error = None

        def start(self, controller) -> None:
            self.error = VoicecoachError("the microphone went away")

        def close(self) -> None:
            pass

    with pytest.raises(VoicecoachError, match="the microphone went away"):
        run_session(Player(track), FakeBackend(), view=StatusView(track.timeline, live=False), show=lambda t: None,
                    inputs=[Broken()], poll_s=0.01)


def test_a_failing_source_stops_the_session_with_its_error(track):
    class Broken(Track):
        def read(self, start_sample, count):
            if start_sample > RATE:
                raise VoicecoachError("the track went away")
            return super().read(start_sample, count)

    with pytest.raises(VoicecoachError, match="the track went away"):
        session(Broken(track.timeline))


# -- `voicecoach play` --------------------------------------------------------------------


@pytest.fixture
def run(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from voicecoach.cli import cli

    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VOICECOACH_DATA_DIR", str(tmp_path / "data"))
    routine = tmp_path / "routine.yaml"
    routine.write_text(ROUTINE)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, [a.replace("ROUTINE", str(routine)) for a in args], catch_exceptions=False)


def test_play_prints_plain_lines_when_not_a_terminal(run):
    result = run("play", "ROUTINE", "--engine", "fake", "--backend", "fake", "--from", "sw", "--volume", "80")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Test routine: 3 steps"  # no terminal: no keys listed
    assert lines[1].startswith("[0:") and " step 3/3 Sweep: start, " in lines[1] and lines[1].endswith(" left")
    assert any(": stroke 3 of 3, " in l for l in lines) and lines[-3].endswith("] finished")
    assert re.fullmatch(r"Played 0:\d\d: 1 of 3 steps completed, finished\.", lines[-2])
    assert lines[-1] == "Not logged: the fake backend plays no sound, so this was not practice."


def test_a_session_nobody_heard_stays_out_of_the_practice_log(run, tmp_path):
    """--backend fake plays no sound: not practice, so the (real, default) log gets nothing."""
    result = run("play", "ROUTINE", "--engine", "fake", "--backend", "fake")
    assert result.exit_code == 0 and "Logged." not in result.stdout
    assert json.loads(run("log", "--json").stdout)["total_sessions"] == 0


def test_play_errors(run):
    unknown = run("play", "ROUTINE", "--engine", "fake", "--backend", "fake", "--from", "jaw")
    assert unknown.exit_code == 2
    assert unknown.stderr == ("no step 'jaw' in 'Test routine'; give a number 1-3 or the start of a step's name: "
                              "1 Lift, 2 Rest, 3 Sweep\n")
    missing = run("play")
    assert missing.exit_code == 2 and missing.stderr.startswith("no routine to play; give its file: voicecoach play")
    device = run("play", "ROUTINE", "--backend", "fake", "--device", "2")
    assert device.exit_code == 2 and device.stderr.startswith("--device is not supported by the fake backend")
    script = run("play", "ROUTINE", "--backend", "fake", "--script-keys", "wait:1,jump")
    assert script.exit_code == 2 and script.stderr.startswith("unknown key 'jump' in the key script")
    assert "Traceback" not in unknown.output + missing.output + device.output + script.output


def test_listening_options_need_listen(run):
    for option in (["--mic", "2"], ["--wake-word", "coach"]):
        result = run("play", "ROUTINE", "--engine", "fake", "--backend", "fake", *option)
        assert result.exit_code == 2 and result.stderr == f"{option[0]} needs --listen; add --listen\n"


def test_play_help_lists_the_keys_but_not_the_test_option(run):
    help_text = run("play", "--help").output
    assert "space       pause / resume" in help_text and "q           quit (Ctrl-C too)" in help_text
    assert "--script-keys" not in help_text and "--devices" in help_text
    assert "pause, resume / continue, next, back, repeat, louder, softer, stop" in help_text
    assert "--listen" in help_text and "--wake-word" in help_text and "--mic" in help_text
    assert run("play", "--devices", "--backend", "fake").output == "  1  fake (no sound)  (fake)\n"


def test_cli_backend_choices_are_the_players(run):
    from voicecoach.cli import play
    from voicecoach.play.backends import BACKENDS

    option = next(p for p in play.params if p.name == "backend_name")
    assert tuple(option.type.choices) == BACKENDS


def test_play_without_a_usable_device_says_so_and_suggests_compile(run, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "miniaudio", FakeMiniaudio(fail="init"))
    result = run("play", "ROUTINE", "--engine", "fake", "--no-keys")
    assert result.exit_code == 2 and "Traceback" not in result.output and "Played" not in result.stdout
    assert result.stderr.startswith("no usable audio output device (('failed to init device', -401)); ")
    assert result.stderr.rstrip().endswith("voicecoach compile ROUTINE -o FILE.mp3")
    from voicecoach.practice_log import PracticeLog

    assert PracticeLog(tmp_path / "data" / "practice.sqlite3").sessions() == []  # nothing played, nothing logged


# -- what a session adds up to, and play_routine as a library call ---------------------------


def test_area_seconds_sum_the_steps_with_an_area(timeline):
    rate = timeline.sample_rate
    lengths = [(c.end_sample - c.start_sample) / rate for c in timeline.chapters]
    areas = [c.area.value if c.area else None for c in timeline.chapters]
    assert areas[1] is None and areas[0] and areas[2]  # Rest has no area
    from voicecoach.play.session import area_seconds

    got = area_seconds(timeline, [lengths[0], lengths[1], 2.5])
    expected: dict[str, float] = {}
    for area, seconds in ((areas[0], lengths[0]), (areas[2], 2.5)):
        expected[area] = expected.get(area, 0.0) + seconds
    assert got == expected
    assert area_seconds(timeline, [0.0, 3.0, 0.0]) == {}  # nothing played of a step: not counted


def test_session_summary_says_how_it_went():
    from voicecoach.play.player import SessionResult
    from voicecoach.play.session import session_summary, streak_line

    done = SessionResult(played_s=252.4, seconds_per_step=(), steps_completed=6, steps_total=6, finished=True)
    assert session_summary(done) == "Played 4:12: 6 of 6 steps completed, finished."
    cut = SessionResult(played_s=12.6, seconds_per_step=(), steps_completed=0, steps_total=3, finished=False)
    assert session_summary(cut, stopped=True) == "Stopped 0:13: 0 of 3 steps completed."
    assert streak_line(1) == "Logged. Practice streak: 1 day." and streak_line(2).endswith("2 days.")


def test_play_routine_plays_a_made_source_and_logs_it(tmp_path, track):
    from voicecoach.play.session import PlayOptions, play_routine
    from voicecoach.practice_log import PracticeLog

    shown: list[str] = []
    warned: list[str] = []
    log = tmp_path / "practice.sqlite3"
    options = PlayOptions(backend="fake", keys=False, script_keys="wait:0.5,n,wait:0.5,space,space",
                          log_path=log, live=False, from_step="2")
    report = play_routine(track, options, show=shown.append, warn=warned.append)
    text = "".join(shown).splitlines()
    assert text[0] == "Test routine: 3 steps" and not warned
    c2 = starts(track.timeline)[2]
    played_s = 0.5 + (track.timeline.length_samples - c2) / RATE  # half of Rest, then all of Sweep
    assert report.result.played_s == pytest.approx(played_s)
    assert text[-2] == f"Played {clock(round(played_s))}: 1 of 3 steps completed, finished."
    assert text[-1] == "Logged. Practice streak: 1 day."
    assert report.logged and report.streak_days == 1 and report.action_counts == {"script": 3}
    (session,) = PracticeLog(log).sessions()
    assert session.routine == "Test routine" and session.file_hash == "" and session.steps_total == 3
    assert session.seconds_played == pytest.approx(report.result.played_s)

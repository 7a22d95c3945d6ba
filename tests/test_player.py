"""player.py: the sample-exact player, key handling and the backends, without a sound server.

The source is a track whose every sample tells its own position (and is never 0), so what a
fake device pulled shows exactly which samples were played, and where silence came instead.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import re
import sys
import termios
import types

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from voicecoach.errors import AudioDeviceError, VoicecoachError
from voicecoach.keys import Action, RawTerminal, ScriptedKey
from voicecoach.pipeline import Settings, plan
from voicecoach.player import (
    BACK_TWICE_S,
    Controller,
    FakeBackend,
    MiniaudioBackend,
    Player,
    SimpleaudioBackend,
    find_step,
    list_devices,
    make_backend,
    run_session,
    schedule_keys,
)
from voicecoach.status import Notice, NoticeKind, StatusView, TimelineIndex, clock, log_line

from tests.test_keys import pty_pair  # noqa: F401  (a fixture)
from tests.test_status import RATE, ROUTINE  # the same small routine: Lift (exercise), Rest, Sweep (massage)


class Track:
    """A source whose sample at position i is i % 30000 + 1."""

    def __init__(self, timeline) -> None:
        self.timeline = timeline
        self.samples = (np.arange(timeline.length_samples) % 30000 + 1).astype(np.int16)

    def read(self, start_sample: int, count: int) -> np.ndarray:
        start = max(0, min(start_sample, len(self.samples)))
        return self.samples[start : start + max(0, count)]


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):
    path = tmp_path_factory.mktemp("player") / "routine.yaml"
    path.write_text(ROUTINE)
    return plan(path, settings=Settings(sample_rate=RATE))


@pytest.fixture
def track(timeline):
    return Track(timeline)


def pull_all(player: Player, total: int, chunk: int = 777) -> np.ndarray:
    """A fake device: pull ``total`` frames in chunks, keep what came."""
    got = [player.pull(min(chunk, total - done)) for done in range(0, total, chunk)]
    return np.concatenate(got)


def starts(timeline) -> list[int]:
    return [c.start_sample for c in timeline.chapters]


def test_plays_the_whole_track_then_silence(track):
    player = Player(track)
    length = len(track.samples)
    out = pull_all(player, length + 1000)
    assert np.array_equal(out[:length], track.samples) and not out[length:].any()
    state = player.state()
    assert state.ended and state.position == length and state.ended_at_frame == length
    result = player.result()
    assert result.finished and result.steps_completed == result.steps_total == 3
    assert result.played_s == pytest.approx(length / RATE)
    chapters = track.timeline.chapters
    assert result.seconds_per_step == tuple((c.end_sample - c.start_sample) / RATE for c in chapters)


def test_volume_100_leaves_the_bytes_alone_and_other_volumes_scale(track):
    player = Player(track)
    assert player.pull(500).tobytes() == track.samples[:500].tobytes()
    player.change_volume(-50)
    half = player.pull(500)
    assert np.array_equal(half, np.rint(track.samples[500:1000] * 0.5).astype(np.int16))
    for _ in range(20):
        player.change_volume(-10)
    assert player.state().volume_percent == 0 and not player.pull(100).any()
    for _ in range(20):
        player.change_volume(+10)
    assert player.state().volume_percent == 100
    assert np.array_equal(player.pull(100), track.samples[1100:1200])
    assert Player(track, volume_percent=30).state().volume_percent == 30


@hsettings(max_examples=60, deadline=None)
@given(
    pause_at=st.integers(1, 3 * RATE),
    pause_frames=st.integers(1, RATE),
    play_frames=st.integers(1, RATE),
    chunk=st.integers(1, 5000),
)
def test_pause_resume_and_skip_are_sample_exact_for_any_device_chunking(timeline, pause_at, pause_frames, play_frames, chunk):
    track = Track(timeline)
    player = Player(track)
    script = [
        ScriptedKey(pause_at / RATE, "space"),
        ScriptedKey((pause_at + pause_frames) / RATE, "space"),
        ScriptedKey((pause_at + pause_frames + play_frames) / RATE, "n"),
    ]
    schedule_keys(player, script)
    total = pause_at + pause_frames + play_frames + 2 * RATE
    out = pull_all(player, total, chunk)
    position = pause_at + play_frames  # where 'n' was pressed, in track samples
    next_start = next(s for s in starts(timeline) if s > position)
    expected = np.concatenate([
        track.samples[:pause_at],
        np.zeros(pause_frames, np.int16),
        track.samples[pause_at:position],
        track.samples[next_start : next_start + 2 * RATE],
    ])
    assert np.array_equal(out, expected)
    assert player.result().played_s == pytest.approx((position + 2 * RATE) / RATE)


def test_a_source_that_falls_behind_leaves_gaps_but_skips_nothing(timeline):
    class Slow(Track):
        def read(self, start_sample, count):
            return super().read(start_sample, min(count, 300))  # as if only 300 samples were ready

    track = Slow(timeline)
    player = Player(track)
    out = pull_all(player, 10 * 1000, chunk=1000)
    assert np.array_equal(out[out != 0], track.samples[:3000]) and player.state().position == 3000
    assert player.result().played_s == pytest.approx(3000 / RATE)


def test_back_goes_to_the_step_start_and_twice_quickly_to_the_previous_step(track):
    timeline = track.timeline
    player = Player(track, start_step=2)
    controller = Controller(player)
    player.pull(RATE)
    controller.apply(Action.BACK, now_s=10.0)
    assert player.state().position == starts(timeline)[2]
    controller.apply(Action.BACK, now_s=10.0 + BACK_TWICE_S / 2)
    assert player.state().position == starts(timeline)[1]
    controller.apply(Action.BACK, now_s=10.0 + BACK_TWICE_S)  # still quick: one more step back
    assert player.state().position == starts(timeline)[0]
    player.pull(RATE)
    controller.apply(Action.BACK, now_s=20.0)  # slow: start of the same step only
    assert player.state().position == starts(timeline)[0]
    assert np.array_equal(player.pull(10), track.samples[:10])


def test_repeat_next_and_the_end(track):
    timeline = track.timeline
    player = Player(track)
    controller = Controller(player)
    player.pull(RATE)
    controller.apply(Action.REPEAT, 0.0)
    assert player.state().position == 0
    controller.apply(Action.REPEAT, 0.1)  # repeat never goes back further
    assert player.state().position == 0
    controller.apply(Action.NEXT, 0.2)
    controller.apply(Action.NEXT, 0.3)
    assert player.state().position == starts(timeline)[2]
    controller.apply(Action.NEXT, 0.4)  # past the last step: the end
    state = player.state()
    assert state.ended and state.position == timeline.length_samples and not player.pull(50).any()
    result = player.result()
    assert result.steps_completed == 0 and result.played_s == pytest.approx(1.0)
    controller.apply(Action.PAUSE, 0.5)
    assert not player.state().paused  # nothing to pause after the end


def test_seek_while_paused_stays_paused_and_quit_silences(track):
    player = Player(track)
    controller = Controller(player)
    controller.apply(Action.PAUSE, 0.0)
    controller.apply(Action.NEXT, 0.1)
    assert not player.pull(100).any() and player.state().position == starts(track.timeline)[1]
    controller.apply(Action.PAUSE, 0.2)
    assert np.array_equal(player.pull(100), track.samples[starts(track.timeline)[1] :][:100])
    controller.apply(Action.QUIT, 0.3)
    assert player.state().stopped and not player.pull(100).any()


def test_loop_plays_again_from_the_start_step(track):
    player = Player(track, start_step=1, loop=True)
    first = starts(track.timeline)[1]
    length = len(track.samples) - first
    out = pull_all(player, 2 * length + 10)
    assert np.array_equal(out[:length], track.samples[first:])
    assert np.array_equal(out[length : 2 * length], track.samples[first:])
    state = player.state()
    assert not state.ended and player.result().finished and player.result().steps_completed == 4


def test_notices_report_every_boundary_and_action(track):
    player = Player(track)
    pull_all(player, len(track.samples) + 10)
    kinds = []
    while not player.notices.empty():
        kinds.append(player.notices.get())
    assert kinds[0].kind is NoticeKind.START and kinds[-1].kind is NoticeKind.END
    phases = [n.position for n in kinds if n.kind is NoticeKind.PHASE]
    assert phases == [b for b in player.index.boundaries() if b > 0]


def test_find_step_by_number_name_and_prefix(timeline):
    titles = [c.title for c in timeline.chapters]
    assert titles == ["Lift", "Rest", "Sweep"]
    find = lambda spec: find_step(titles, spec, routine="Test routine")  # noqa: E731
    assert find("1") == 0 and find(" 3 ") == 2
    assert find("sweep") == 2 and find("RE") == 1 and find("Lift") == 0
    assert find_step(["Rest (round 1 of 2)", "Rest (round 2 of 2)", "Rest"], "rest", routine="R") == 2  # exact first
    for bad in ["0", "4", "massage", ""]:
        with pytest.raises(VoicecoachError) as error:
            find(bad)
        assert error.value.format() == (
            f"no step {bad!r} in 'Test routine'; give a number 1-3 or the start of a step's name: 1 Lift, 2 Rest, 3 Sweep"
        )
    assert Player(Track(timeline), start_step=2).state().position == starts(timeline)[2]


# -- whole sessions with the fake device --------------------------------------------------


def session(track, *, script=(), terminal=None, start_step=0, live=False):
    player = Player(track, start_step=start_step)
    backend = FakeBackend(keep=True, chunk_frames=1000)
    shown: list[str] = []
    view = StatusView(track.timeline, live=live)
    result = run_session(player, backend, view=view, show=shown.append, terminal=terminal, script=list(script),
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
                    terminal=RawTerminal(slave), poll_s=0.01)
    assert backend.finished() and termios.tcgetattr(slave) == before


def test_a_failing_source_stops_the_session_with_its_error(track):
    class Broken(Track):
        def read(self, start_sample, count):
            if start_sample > RATE:
                raise VoicecoachError("the track went away")
            return super().read(start_sample, count)

    with pytest.raises(VoicecoachError, match="the track went away"):
        session(Broken(track.timeline))


# -- backends -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fake_simpleaudio():
    """A stand-in for the simpleaudio module (which has no Linux wheels and crashes on 3.12+)."""
    module = types.SimpleNamespace(buffers=[])

    class PlayObject:
        def __init__(self, data: bytes) -> None:
            self.data, self.stopped = data, False

        def stop(self) -> None:
            self.stopped = True

        def is_playing(self) -> bool:
            return not self.stopped

    def play_buffer(data, channels, bytes_per_sample, rate):
        assert (channels, bytes_per_sample, rate) == (1, 2, RATE)
        module.buffers.append(PlayObject(bytes(data)))
        return module.buffers[-1]

    module.play_buffer = play_buffer
    return module


def test_simpleaudio_backend_replays_from_the_saved_position(track):
    module, clock = fake_simpleaudio(), FakeClock()
    player = Player(track)
    backend = SimpleaudioBackend(clock=clock, module=module)
    backend.start(player, thread=False)
    assert module.buffers[0].data == track.samples.tobytes()
    clock.now += 1.5
    backend.tick()
    player.toggle_pause()  # pause = stop the buffer, keep the position
    backend.tick()
    assert module.buffers[0].stopped and len(module.buffers) == 1
    assert player.state().position == 3 * RATE // 2
    clock.now += 10
    backend.tick()
    assert player.state().position == 3 * RATE // 2  # paused: the clock runs, the position does not
    player.toggle_pause()
    backend.tick()
    assert module.buffers[1].data == track.samples[3 * RATE // 2 :].tobytes()
    player.next_step()
    player.change_volume(-50)
    backend.tick()
    c1 = starts(track.timeline)[1]
    assert module.buffers[1].stopped
    assert module.buffers[2].data == np.rint(track.samples[c1:] * 0.5).astype(np.int16).tobytes()
    clock.now += 100
    backend.tick()
    assert player.state().ended and not backend.finished()  # the buffer is still sounding
    module.buffers[2].stopped = True
    backend.tick()
    assert backend.finished()
    backend.close()


def test_simpleaudio_is_imported_only_when_selected(monkeypatch, track):
    monkeypatch.delitem(sys.modules, "simpleaudio", raising=False)
    make_backend("miniaudio")
    make_backend("fake")
    backend = make_backend("simpleaudio")
    assert "simpleaudio" not in sys.modules
    monkeypatch.setitem(sys.modules, "simpleaudio", None)  # as if not installed
    with pytest.raises(AudioDeviceError) as error:
        backend.start(Player(track))
    assert "pip install 'voicecoach[simpleaudio]'" in error.value.format()
    assert "voicecoach compile ROUTINE -o FILE.mp3" in error.value.format()


def test_make_backend_errors():
    with pytest.raises(VoicecoachError, match="unknown backend 'jack'"):
        make_backend("jack")
    with pytest.raises(VoicecoachError, match="--device is not supported by the fake backend"):
        make_backend("fake", device="1")
    assert [d.name for d in list_devices("fake")] == ["fake (no sound)"]


class FakeMiniaudio(types.ModuleType):
    """Enough of the miniaudio module to drive MiniaudioBackend without a sound system."""

    class MiniaudioError(Exception):
        pass

    class SampleFormat(enum.Enum):
        SIGNED16 = 2

    class Backend(enum.Enum):
        PULSEAUDIO = 1
        ALSA = 2
        NULL = 3

    def __init__(self, names=("Speakers", "HDMI output", "USB headset"), backend="PulseAudio", fail=None) -> None:
        super().__init__("miniaudio")
        fake = self
        self.opened: list[dict] = []

        class Devices:
            def __init__(self) -> None:
                if fail == "list":
                    raise fake.MiniaudioError("cannot init context")
                self.backend = backend

            def get_playbacks(self):
                return [{"name": n, "id": f"id-{i}"} for i, n in enumerate(names)]

        class PlaybackDevice:
            def __init__(self, **options) -> None:
                if fail == "init":
                    raise fake.MiniaudioError("failed to init device", -401)
                self.options, self.backend, self.closed = options, backend, False
                fake.opened.append(options)
                fake.device = self

            def start(self, feed) -> None:
                self.feed = feed

            def close(self) -> None:
                self.closed = True

        self.Devices, self.PlaybackDevice = Devices, PlaybackDevice


def test_miniaudio_backend_feeds_the_player_mono_int16(monkeypatch, track):
    fake = FakeMiniaudio()
    monkeypatch.setitem(sys.modules, "miniaudio", fake)
    player = Player(track)
    backend = MiniaudioBackend(buffer_ms=50)
    backend.start(player)
    options = fake.opened[0]
    assert options["nchannels"] == 1 and options["sample_rate"] == RATE and options["device_id"] is None
    assert fake.device.feed.send(300) == track.samples[:300].tobytes()
    assert fake.device.feed.send(200) == track.samples[300:500].tobytes()
    assert not backend.finished()
    player.next_step(), player.next_step(), player.next_step()  # to the end
    fake.device.feed.send(10)
    assert not backend.finished()  # what the device holds has not been heard yet
    fake.device.feed.send(RATE)
    assert backend.finished()
    backend.close()
    assert fake.device.closed


def test_miniaudio_errors_from_the_audio_thread_reach_check(monkeypatch, track):
    monkeypatch.setitem(sys.modules, "miniaudio", FakeMiniaudio())

    class Broken(Track):
        def read(self, start_sample, count):
            if start_sample > 0:
                raise RuntimeError("decoder failed")
            return super().read(start_sample, count)

    backend = MiniaudioBackend()
    backend.start(Player(Broken(track.timeline)))
    feed = sys.modules["miniaudio"].device.feed
    assert feed.send(100) == Track(track.timeline).samples[:100].tobytes()
    assert feed.send(100) == bytes(200)  # silence, never an exception into the audio callback
    with pytest.raises(RuntimeError, match="decoder failed"):
        backend.check()


def test_a_device_that_stops_calling_is_reported_not_waited_for(monkeypatch, track):
    monkeypatch.setitem(sys.modules, "miniaudio", FakeMiniaudio())
    now = [100.0]
    backend = MiniaudioBackend(stall_s=5.0, clock=lambda: now[0])
    backend.start(Player(track))
    feed = sys.modules["miniaudio"].device.feed
    now[0] += 4.9  # the device may take its time to open and first call
    backend.check()
    feed.send(100)
    now[0] += 5.0
    backend.check()  # 5.0 s since the last call: not yet
    now[0] += 0.2
    with pytest.raises(AudioDeviceError, match=r"the audio output stopped taking sound 5 s ago \(PulseAudio: "):
        backend.check()
    backend.close()
    assert MiniaudioBackend(stall_s=0.0).check() is None  # not started: nothing to watch


def test_a_call_waiting_for_the_routine_to_be_made_is_not_a_stall(monkeypatch, track):
    monkeypatch.setitem(sys.modules, "miniaudio", FakeMiniaudio())
    now, checked = [0.0], []

    class Slow(Track):  # a slow engine: the audio thread waits in read() for the next span
        def read(self, start_sample, count):
            now[0] += 60.0
            backend.check()  # what the main thread sees meanwhile
            checked.append(start_sample)
            return super().read(start_sample, count)

    backend = MiniaudioBackend(stall_s=5.0, clock=lambda: now[0])
    backend.start(Player(Slow(track.timeline)))
    assert sys.modules["miniaudio"].device.feed.send(100) == Track(track.timeline).samples[:100].tobytes()
    assert checked == [0]
    backend.check()  # the call just ended


def test_miniaudio_picks_a_device_by_number_name_or_part(monkeypatch, track):
    fake = FakeMiniaudio()
    monkeypatch.setitem(sys.modules, "miniaudio", fake)
    for spec, device_id in [("2", "id-1"), ("usb headset", "id-2"), ("HDMI", "id-1"), ("speak", "id-0")]:
        MiniaudioBackend(device=spec).start(Player(track))
        assert fake.opened[-1]["device_id"] == device_id and fake.opened[-1]["backends"] == [fake.Backend.PULSEAUDIO]
    for spec, what in [("s", "matches several devices"), ("bluetooth", "matches no output device")]:
        with pytest.raises(AudioDeviceError) as error:
            MiniaudioBackend(device=spec).start(Player(track))
        assert error.value.format() == (
            f"--device {spec!r} {what}; give a number or a name from: 1 Speakers; 2 HDMI output; 3 USB headset"
        )
    assert [(d.number, d.name, d.backend) for d in list_devices("miniaudio")][1] == (2, "HDMI output", "PulseAudio")


@pytest.mark.parametrize("fake, reason", [
    (FakeMiniaudio(fail="init"), "('failed to init device', -401)"),
    (FakeMiniaudio(backend="Null"), "only miniaudio's silent null device is available"),
])
def test_no_usable_device_is_a_clear_error_that_suggests_compile(monkeypatch, track, fake, reason):
    monkeypatch.setitem(sys.modules, "miniaudio", fake)
    with pytest.raises(AudioDeviceError) as error:
        MiniaudioBackend().start(Player(track))
    message = error.value.format()
    assert message.startswith(f"no usable audio output device ({reason}); start a sound server")
    assert message.endswith("or write the routine to a file and play that: voicecoach compile ROUTINE -o FILE.mp3")


def test_listing_devices_without_a_sound_system(monkeypatch):
    monkeypatch.setitem(sys.modules, "miniaudio", FakeMiniaudio(fail="list"))
    with pytest.raises(AudioDeviceError, match=r"no usable audio output device \(cannot list devices"):
        list_devices("miniaudio")


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
    assert lines[-1] == "Logged. Practice streak: 1 day."


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


def test_play_help_lists_the_keys_but_not_the_test_option(run):
    help_text = run("play", "--help").output
    assert "space       pause / resume" in help_text and "q           quit (Ctrl-C too)" in help_text
    assert "--script-keys" not in help_text and "--devices" in help_text
    assert run("play", "--devices", "--backend", "fake").output == "  1  fake (no sound)  (fake)\n"


def test_cli_backend_choices_are_the_players(run):
    from voicecoach.cli import play
    from voicecoach.player import BACKENDS

    option = next(p for p in play.params if p.name == "backend_name")
    assert tuple(option.type.choices) == BACKENDS


# -- streaming sources --------------------------------------------------------------------


class Growing(Track):
    """A source still being made: only its first chapters are scheduled until grow() is called."""

    def __init__(self, timeline, known: int) -> None:
        super().__init__(timeline)
        self.full, self.steps = timeline, len(timeline.chapters)
        self.known = known
        self.timeline = self._partial()

    @property
    def complete(self) -> bool:
        return self.known >= self.steps

    def _partial(self):
        chapters = self.full.chapters[: self.known]
        return dataclasses.replace(self.full, chapters=chapters, length_samples=chapters[-1].end_sample,
                                   events=tuple(e for e in self.full.events if e.step < self.known))

    def grow(self) -> None:
        self.known += 1
        self.timeline = self._partial()

    def read(self, start_sample, count):
        end = self.timeline.length_samples if not self.complete else len(self.samples)
        return super().read(start_sample, max(0, min(count, end - start_sample)))  # not made yet: falls short


def test_a_growing_source_plays_what_is_made_and_skips_only_to_known_steps(timeline):
    source = Growing(timeline, known=1)
    player = Player(source)
    assert StatusView(source.timeline, live=True, steps_total=3).tick(0, paused=False, volume_percent=100).endswith(
        "| next: ...\x1b[K")
    assert player.steps_total == 3 and len(player.timeline.chapters) == 1
    c1, c2 = starts(timeline)[1:]
    player.next_step()  # step 2 is not scheduled yet: ignored, and not taken for the end
    state = player.state()
    assert state.position == 0 and not state.ended
    out = pull_all(player, c1 + 500)  # runs past what is made: a gap, not the end
    assert np.array_equal(out[:c1], source.samples[:c1]) and not out[c1:].any() and not player.state().ended
    source.grow()
    assert np.array_equal(player.pull(100), source.samples[c1 : c1 + 100])
    assert StatusView(source.timeline, live=False, steps_total=3).notice(Notice(NoticeKind.START, c1)).startswith(
        f"[{clock(c1 / RATE)}] step 2/3 Rest: rest")
    player.next_step()
    assert player.state().position == c1 + 100  # step 3 is not scheduled yet: stays
    source.grow()
    player.next_step()
    assert player.state().position == c2
    pull_all(player, len(source.samples))
    result = player.result()
    assert player.state().ended and result.finished and result.steps_total == 3 and len(result.seconds_per_step) == 3


def test_live_build_plays_exactly_the_exported_samples(tmp_path):
    from voicecoach.pipeline import LiveBuild, build

    path = tmp_path / "routine.yaml"
    path.write_text(ROUTINE)
    settings = Settings(engine="fake", sample_rate=RATE, cache_dir=tmp_path / "cache")
    live = LiveBuild(path, settings=settings)
    live.wait(chapters=1)
    player = Player(live)
    assert player.steps_total == 3
    got = []
    while not player.state().ended:
        got.append(player.pull(1000))
    whole = build(path, settings=settings)
    track = whole.read(0, whole.timeline.length_samples)
    played = np.concatenate(got)
    assert np.array_equal(played[: len(track)], track) and not played[len(track) :].any()
    assert player.timeline.chapters == whole.timeline.chapters and player.result().steps_completed == 3


def test_play_without_a_usable_device_says_so_and_suggests_compile(run, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "miniaudio", FakeMiniaudio(fail="init"))
    result = run("play", "ROUTINE", "--engine", "fake", "--no-keys")
    assert result.exit_code == 2 and "Traceback" not in result.output and "Played" not in result.stdout
    assert result.stderr.startswith("no usable audio output device (('failed to init device', -401)); ")
    assert result.stderr.rstrip().endswith("voicecoach compile ROUTINE -o FILE.mp3")
    from voicecoach.practice_log import PracticeLog

    assert PracticeLog(tmp_path / "data" / "practice.sqlite3").sessions() == []  # nothing played, nothing logged

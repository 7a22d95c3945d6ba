"""backends.py: miniaudio (with a fake module), simpleaudio (with a fake module) and the fake device."""

from __future__ import annotations

import enum
import sys
import types

import numpy as np
import pytest

from voicecoach.errors import AudioDeviceError, VoicecoachError
from voicecoach.play.backends import MiniaudioBackend, SimpleaudioBackend, list_devices, make_backend
from voicecoach.play.player import Player

from tests.play.tracks import RATE, Track, starts, timeline, track  # noqa: F401  (fixtures)


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


@pytest.mark.parametrize(("fail", "names", "why"), [
    ("list", (), "no usable audio output device (cannot list devices: cannot init context); start a sound server"),
    (None, (), "the sound system lists none; start a sound server"),
])
def test_play_devices_without_a_device_says_what_exists_and_why(monkeypatch, fail, names, why):
    """`play --devices` is how to find out what is wrong: it lists (nothing) and explains, exit 0."""
    from click.testing import CliRunner

    from voicecoach.cli import cli

    monkeypatch.setitem(sys.modules, "miniaudio", FakeMiniaudio(names=names, fail=fail))
    result = CliRunner().invoke(cli, ["play", "--devices"], catch_exceptions=False)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith(f"no output devices: {why}") and result.stdout.count("\n") == 1
    assert "--devices" not in result.stdout  # no advice to run what was just run
    assert result.stdout.rstrip().endswith("voicecoach compile ROUTINE -o FILE.mp3")
    monkeypatch.setitem(sys.modules, "miniaudio", FakeMiniaudio())
    listed = CliRunner().invoke(cli, ["play", "--devices"], catch_exceptions=False)
    assert listed.stdout.splitlines()[1] == "  2  HDMI output  (PulseAudio)"

"""Audio backends: what sounds the player (miniaudio, simpleaudio, a fake device for tests).

A backend is started with a :class:`~voicecoach.play.player.Player` and runs its own audio
thread: a pull backend asks the player for frames, a push backend follows the clock (see
``player.py``).  Adding a backend: one class here and one entry in :func:`make_backend` and
:data:`BACKENDS`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import numpy as np

from ..errors import AudioDeviceError, VoicecoachError
from .player import Player

BACKENDS = ("miniaudio", "simpleaudio", "fake")
COMPILE_HINT = "or write the routine to a file and play that: voicecoach compile ROUTINE -o FILE.mp3"


class Backend(Protocol):
    name: str
    audible: bool = True
    """Someone can hear it: only such sessions are practice (the fake backend's are not logged)."""

    def start(self, player: Player) -> None:
        """Begin sounding the player (returns at once; audio runs on its own thread)."""

    def finished(self) -> bool:
        """The track ended and everything handed to the device has been heard."""

    def check(self) -> None:
        """Raise what went wrong on the audio thread, if anything did."""

    def close(self) -> None:
        """Stop sounding and release the device; safe to call twice."""


class _AudioThread:
    """What backends share: an audio thread whose errors are raised on the main thread by check()."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def _spawn(self, loop: Callable[[], None], name: str) -> None:
        def run() -> None:
            try:
                loop()
            except BaseException as error:  # never lost: check() raises it
                self.error = error
            finally:
                self._done.set()

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def finished(self) -> bool:
        return self._done.is_set()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class FakeBackend(_AudioThread):
    """A device without sound that pulls frames as fast as asked (tests, scripted checks).

    ``keep=True`` keeps every pulled chunk in :attr:`chunks`.
    """

    name = "fake"
    audible = False

    def __init__(self, *, chunk_frames: int = 1024, keep: bool = False) -> None:
        super().__init__()
        self.chunk_frames = chunk_frames
        self.keep = keep
        self.chunks: list[np.ndarray] = []

    def start(self, player: Player) -> None:
        self._spawn(lambda: self._pull_until_done(player), "voicecoach-fake-audio")

    def _pull_until_done(self, player: Player) -> None:
        while not self._closing.is_set():
            chunk = player.pull(self.chunk_frames)
            if self.keep:
                self.chunks.append(chunk)
            state = player.state()
            if state.ended or state.stopped:
                return
            time.sleep(0)  # let the other threads in

    def played(self) -> np.ndarray:
        """Every frame pulled so far, in order."""
        return np.concatenate([np.zeros(0, np.int16), *self.chunks])


@dataclass(frozen=True)
class DeviceInfo:
    """An output device."""

    number: int
    """1-based, as listed by ``--devices`` (``--device 2`` picks the second)."""
    name: str
    """The name the system gives it."""
    backend: str
    """The sound system it belongs to (PulseAudio, ALSA, ...)."""


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence C libraries (ALSA) that print to file descriptor 2 while probing devices."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _no_device(reason: str) -> AudioDeviceError:
    return AudioDeviceError(
        f"no usable audio output device ({reason})",
        hint=f"start a sound server (PulseAudio, PipeWire) or pick a device with --device (see --devices), {COMPILE_HINT}",
    )


def load_miniaudio():
    try:
        return importlib.import_module("miniaudio")
    except ImportError as error:
        raise AudioDeviceError(
            f"the miniaudio backend is not available ({error})", hint=f"pip install miniaudio, {COMPILE_HINT}"
        ) from None


def _miniaudio_list(ma, *, inputs: bool) -> tuple[str, list[dict]]:
    """The sound system miniaudio chose and its output (or input) devices."""
    with quiet_stderr():
        try:
            context = ma.Devices()
            return context.backend, context.get_captures() if inputs else context.get_playbacks()
        except ma.MiniaudioError as error:
            if inputs:
                raise AudioDeviceError(f"cannot list the input devices ({error})",
                                       hint="start a sound server (PulseAudio, PipeWire) or plug in a microphone") from None
            raise _no_device(f"cannot list devices: {error}") from None


def miniaudio_devices(*, inputs: bool) -> list[DeviceInfo]:
    """The sound system's output devices (``--device``), or its input devices (``--mic``)."""
    backend, found = _miniaudio_list(load_miniaudio(), inputs=inputs)
    return [DeviceInfo(i + 1, d["name"], backend) for i, d in enumerate(found)]


def pick_device(ma, spec: str, *, inputs: bool):
    """``--device`` / ``--mic``: a number from ``--devices``, a name, or a unique part of one.

    Returns miniaudio's device id and the backend list to open it with.
    """
    system, found = _miniaudio_list(ma, inputs=inputs)
    names = [d["name"] for d in found]
    wanted = spec.strip().casefold()
    matches = [i for i, n in enumerate(names) if n.casefold() == wanted]
    if not matches and wanted.isdigit() and 1 <= int(wanted) <= len(names):
        matches = [int(wanted) - 1]
    if not matches:
        matches = [i for i, n in enumerate(names) if wanted in n.casefold()]
    if len(matches) != 1:
        option, kind = ("--mic", "input") if inputs else ("--device", "output")
        listing = "; ".join(f"{i + 1} {n}" for i, n in enumerate(names)) or "none found"
        what = "matches several devices" if matches else f"matches no {kind} device"
        raise AudioDeviceError(f"{option} {spec!r} {what}", hint=f"give a number or a name from: {listing}")
    backend = {m.name.casefold(): m for m in ma.Backend}.get(system.replace(" ", "").casefold())
    return found[matches[0]]["id"], [backend] if backend is not None else None


class MiniaudioBackend(_AudioThread):
    """Sound through miniaudio (PulseAudio, PipeWire, ALSA, JACK, ...), pulling from the player.

    miniaudio runs the audio thread itself and calls :meth:`_feed` from it.  A device that
    stops calling (the sound server died, the device went away without the server moving the
    stream elsewhere) is reported by :meth:`check` after ``stall_s``: the session ends with an
    error and is logged, rather than hanging silent in front of someone with their eyes closed.
    """

    name = "miniaudio"

    # 150 ms asks the sound server for ~95 ms of queued sound.  With 50 ms (~37 ms queued) a busy
    # machine starved the stream: PulseAudio logged "Implicit underrun" and rewound the sink, an
    # audible gap (and the recorded-playback tests lost or repeated samples).  The extra ~60 ms a
    # pause takes to be heard is far inside the latency goals.
    def __init__(self, *, device: str | None = None, buffer_ms: int = 150, stall_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.device = device
        self.buffer_ms = buffer_ms
        self.stall_s = stall_s
        self._clock = clock
        self._device = None
        self._player: Player | None = None
        self._in_call = False
        self._last_call_s = 0.0

    @classmethod
    def devices(cls) -> list[DeviceInfo]:
        return miniaudio_devices(inputs=False)

    def start(self, player: Player) -> None:
        ma = load_miniaudio()
        device_id, backends = pick_device(ma, self.device, inputs=False) if self.device else (None, None)
        with quiet_stderr():
            try:
                device = ma.PlaybackDevice(
                    output_format=ma.SampleFormat.SIGNED16,
                    nchannels=1,
                    sample_rate=player.sample_rate,
                    buffersize_msec=self.buffer_ms,
                    device_id=device_id,
                    backends=backends,
                    app_name="voicecoach",
                )
            except ma.MiniaudioError as error:
                raise _no_device(str(error)) from None
        if device.backend.casefold() == "null":
            device.close()
            raise _no_device("only miniaudio's silent null device is available")
        self._device = device
        self._player = player
        self._last_call_s = self._clock()
        feed = self._feed(player)
        next(feed)
        try:
            device.start(feed)
        except ma.MiniaudioError as error:
            self.close()
            raise _no_device(str(error)) from None

    def _feed(self, player: Player):
        frames = yield b""
        while True:
            # A call waiting for the routine to be made (a slow engine) is not a stalled device.
            self._in_call = True
            try:
                data = player.pull(frames).tobytes()
            except BaseException as error:  # never raise into the audio thread: report it
                self.error = error
                data = bytes(2 * frames)
            finally:
                self._last_call_s = self._clock()
                self._in_call = False
            frames = yield data

    def check(self) -> None:
        super().check()
        if self._device is None or self._in_call:
            return
        silent_s = self._clock() - self._last_call_s
        if silent_s > self.stall_s:
            raise AudioDeviceError(
                f"the audio output stopped taking sound {silent_s:.0f} s ago "
                f"({self._device.backend}: the sound server quit or the device went away)",
                hint="reconnect it or restart the sound server, then play on from the step you were in "
                     "with --from; or export the routine with compile -o",
            )

    def finished(self) -> bool:
        state = self._player.state() if self._player else None
        if state is None or state.ended_at_frame is None:
            return False
        # The device still holds a few periods of sound: wait until they have been pulled past.
        drain = round(self._player.sample_rate * (4 * self.buffer_ms / 1000 + 0.2))
        return state.device_frames - state.ended_at_frame >= drain

    def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            device.close()


class SimpleaudioBackend(_AudioThread):
    """Sound through simpleaudio (optional: ``voicecoach[simpleaudio]``), which plays whole buffers.

    It has no pause or position: the player's position follows the clock, and on every jump
    (pause, resume, seek, volume, loop) the buffer is stopped and replayed from the position.
    The module is imported only when this backend starts.
    """

    name = "simpleaudio"
    POLL_S = 0.02

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, module=None) -> None:
        super().__init__()
        self.clock = clock
        self._module = module
        self._player: Player | None = None
        self._play = None
        self._generation: int | None = None
        self._origin: tuple[float, int] = (0.0, 0)

    def start(self, player: Player, *, thread: bool = True) -> None:
        """Start playing; ``thread=False`` leaves the ticking to the caller (tests)."""
        if self._module is None:
            try:
                self._module = importlib.import_module("simpleaudio")
            except ImportError as error:
                raise AudioDeviceError(
                    f"the simpleaudio backend is not installed ({error})",
                    hint=f"pip install 'voicecoach[simpleaudio]', use --backend miniaudio, {COMPILE_HINT}",
                ) from None
        self._player = player
        self._origin = (self.clock(), player.state().device_frames)
        self.tick()
        if thread:
            self._spawn(self._tick_until_done, "voicecoach-simpleaudio")

    def _tick_until_done(self) -> None:
        while not self._closing.is_set() and not self._done.is_set():
            self.tick()
            time.sleep(self.POLL_S)

    def tick(self) -> None:
        """Advance the position by the clock; restart the buffer if playback jumped."""
        player = self._player
        assert player is not None
        origin_s, origin_frames = self._origin
        target = origin_frames + int((self.clock() - origin_s) * player.sample_rate)
        player.advance(target - player.state().device_frames)
        state = player.state()
        if state.generation != self._generation:
            self._generation = state.generation
            self._stop_buffer()
            if not (state.paused or state.ended or state.stopped):
                samples = player.render(state.position, player.timeline.length_samples - state.position)
                try:
                    self._play = self._module.play_buffer(samples.tobytes(), 1, 2, player.sample_rate)
                except Exception as error:
                    raise _no_device(f"simpleaudio: {error}") from None
        playing = self._play is not None and self._play.is_playing()
        if state.stopped or (state.ended and not playing):
            self._done.set()

    def _stop_buffer(self) -> None:
        play, self._play = self._play, None
        if play is not None:
            play.stop()

    def close(self) -> None:
        super().close()
        self._stop_buffer()


def make_backend(name: str, *, device: str | None = None) -> Backend:
    """A backend by name (``BACKENDS``)."""
    if name == "miniaudio":
        return MiniaudioBackend(device=device)
    if device is not None:
        raise VoicecoachError(f"--device is not supported by the {name} backend", hint="use --backend miniaudio")
    if name == "simpleaudio":
        return SimpleaudioBackend()
    if name == "fake":
        return FakeBackend()
    raise VoicecoachError(f"unknown backend {name!r}", hint=f"choose one of: {', '.join(BACKENDS)}")


def device_report(backend: str) -> tuple[list[DeviceInfo], str]:
    """``--devices``: the output devices of a backend and, when there are none, why (a sentence
    with what to do): listing never fails the way playing does, it says what is there."""
    advice = ("start a sound server (PulseAudio, PipeWire) or connect a device, then list again; "
              f"to listen elsewhere, {COMPILE_HINT.removeprefix('or ')}")
    try:
        found = list_devices(backend)
    except AudioDeviceError as error:
        return [], f"{error.message}; {advice}"
    if not found:
        return [], f"the sound system lists none; {advice}"
    return found, ""


def list_devices(backend: str, *, inputs: bool = False) -> list[DeviceInfo]:
    """Output devices of a backend (``--devices``); ``inputs``: the microphones (``--mic``, always miniaudio's)."""
    if inputs:
        return miniaudio_devices(inputs=True)
    if backend == "miniaudio":
        return MiniaudioBackend.devices()
    if backend == "simpleaudio":
        return [DeviceInfo(1, "the system's default output", "simpleaudio")]
    return [DeviceInfo(1, "fake (no sound)", "fake")]

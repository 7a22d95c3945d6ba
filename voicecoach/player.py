"""Playback: a sample-exact player over a routine's track, and the backends that sound it.

:class:`Player` owns the play position, in track samples.  Backends move it: a *pull* backend
(miniaudio, the fake one) asks :meth:`Player.pull` for the next frames from its audio thread;
a *push* backend (simpleaudio, which can only play a whole buffer) advances it by the clock
and restarts its buffer whenever playback jumps.  Either way the samples sounded between a
start and a stop are exactly the track's samples at those positions (times a volume gain;
at 100 % they are unchanged), a pause resumes at the very sample where it stopped, and a
skip starts at a step's first sample.

Device time (frames handed to the device, silence while paused included) is the player's
clock: scripted keys fire at exact device frames, so a scripted session is reproducible.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import importlib
import itertools
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np

from .errors import AudioDeviceError, VoicecoachError
from .keys import KEY_ACTIONS, Action, RawTerminal, ScriptedKey
from .model import Timeline
from .status import Notice, NoticeKind, StatusView, TimelineIndex

VOLUME_STEP_PERCENT = 10
BACK_TWICE_S = 1.5
"""A second 'back' within this long goes to the previous step."""
BACKENDS = ("miniaudio", "simpleaudio", "fake")
COMPILE_HINT = "or write the routine to a file and play that: voicecoach compile ROUTINE -o FILE.mp3"


class Source(Protocol):
    """What the player plays: ``pipeline.Build``, or ``pipeline.LiveBuild`` while it is being made.

    The sample rate is ``timeline.sample_rate``.  A streaming source's ``timeline`` may grow
    (chapters appended, a new object each time) until its optional ``complete`` attribute is
    true; its optional ``steps`` is the final number of chapters.  ``read`` is called from the
    audio thread, a device period (~50 ms) at a time; a streaming source may block until a
    span is rendered, or return fewer samples (the device then hears a gap, never wrong
    samples: the position moves only by what was read).
    """

    timeline: Timeline

    def read(self, start_sample: int, count: int) -> np.ndarray:
        """int16 mono samples ``[start, start + count)`` of the track (shorter at its end)."""


@dataclass(frozen=True)
class PlayerState:
    """A consistent snapshot of the player."""

    position: int
    """Next track sample to play."""
    paused: bool
    """Silence is played and the position stays."""
    volume_percent: int
    """Gain applied to the track, 0-100."""
    ended: bool
    """The track played to its end (and does not loop)."""
    stopped: bool
    """The user quit."""
    device_frames: int
    """Frames handed to the device so far, silence included."""
    ended_at_frame: int | None
    """Device frame at which the track ended, if it did."""
    generation: int
    """Bumped on every jump (pause, resume, seek, volume, loop): push backends restart on it."""


@dataclass(frozen=True)
class SessionResult:
    """What a session played, for the practice log."""

    played_s: float
    """Seconds of the track played (pauses not counted)."""
    seconds_per_step: tuple[float, ...]
    """Seconds played of each step (chapter)."""
    steps_completed: int
    """Steps played through to their end (a skipped step does not count)."""
    steps_total: int
    """Steps in the routine."""
    finished: bool
    """The routine played to its end."""


def find_step(titles: Sequence[str], spec: str, *, routine: str) -> int:
    """``--from``: a 1-based step number or a name (case-insensitive prefix) -> step index.

    ``titles`` are the steps' chapter titles, known before a streaming source schedules them.
    """
    text = spec.strip()
    if text.isdigit() and 1 <= int(text) <= len(titles):
        return int(text) - 1
    wanted = text.casefold()
    if wanted and not text.isdigit():
        for exact in (True, False):
            for i, title in enumerate(titles):
                folded = title.casefold()
                if (folded == wanted) if exact else folded.startswith(wanted):
                    return i
    listing = ", ".join(f"{i + 1} {title}" for i, title in enumerate(titles))
    raise VoicecoachError(
        f"no step {spec!r} in {routine!r}",
        hint=f"give a number 1-{len(titles)} or the start of a step's name: {listing}",
    )


class Player:
    """The play position, pause, seek, volume and loop over one source; thread-safe."""

    def __init__(self, source: Source, *, start_step: int = 0, loop: bool = False, volume_percent: int = 100) -> None:
        self.source = source
        self.notices: queue.SimpleQueue[Notice] = queue.SimpleQueue()
        """What happened, in order, for the display (filled from the audio thread)."""
        self._lock = threading.RLock()
        self._played: list[int] = []
        self._sync()
        self.rate = self.timeline.sample_rate
        chapters = self.timeline.chapters
        if not 0 <= start_step < len(chapters):
            raise ValueError(f"start_step {start_step} out of range (scheduled: {len(chapters)} steps)")
        self.loop = loop
        self._loop_start = chapters[start_step].start_sample
        self._position = self._loop_start
        self._paused = False
        self._volume = max(0, min(100, volume_percent))
        self._ended = False
        self._ended_at: int | None = None
        self._stopped = False
        self._reached_end = False
        self._device_frames = 0
        self._generation = 0
        self._completed = 0
        self._scheduled: list[tuple[int, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._notify(NoticeKind.START)

    def _sync(self) -> None:
        """Follow a streaming source: take its timeline again when it has grown."""
        timeline = self.source.timeline
        if timeline is getattr(self, "timeline", None):
            return
        self.timeline = timeline
        self.index = TimelineIndex(timeline)
        self._boundaries = self.index.boundaries()
        self._played.extend([0] * (len(timeline.chapters) - len(self._played)))

    def _complete(self) -> bool:
        """Whether the track's length is final (always, except for a source still being made)."""
        return bool(getattr(self.source, "complete", True))

    @property
    def steps_total(self) -> int:
        """Chapters the routine has (known in advance by a streaming source)."""
        return int(getattr(self.source, "steps", len(self.timeline.chapters)))

    # -- the audio side ------------------------------------------------------------------

    def pull(self, frames: int) -> np.ndarray:
        """The next ``frames`` samples to sound (silence while paused or after the end)."""
        out = np.zeros(max(0, frames), dtype=np.int16)
        self._run(out.size, out)
        return out

    def advance(self, frames: int) -> None:
        """Move on by ``frames`` device frames without making samples (push backends)."""
        self._run(max(0, frames), None)

    def render(self, start_sample: int, count: int) -> np.ndarray:
        """Track samples with the current volume applied (push backends)."""
        with self._lock:
            volume = self._volume
        return self._gain(self.source.read(start_sample, count), volume)

    def prime(self) -> None:
        """Make the source ready at the start position before a device starts pulling."""
        self.source.read(self._position, 1)

    def _run(self, frames: int, out: np.ndarray | None) -> None:
        with self._lock:
            self._sync()
            done = 0
            while done < frames:
                self._fire_due()
                n = frames - done
                if self._scheduled:
                    n = min(n, self._scheduled[0][0] - self._device_frames)
                if not (self._paused or self._ended or self._stopped):
                    start = self._position
                    complete = self._complete()
                    if complete:  # else the source waits for (or falls short of) what is not made yet
                        n = min(n, self.timeline.length_samples - start)
                    played = n
                    if out is not None:
                        chunk = self._gain(self.source.read(start, n), self._volume)[:n]
                        out[done : done + len(chunk)] = chunk
                        played = len(chunk)  # a source behind (streaming) leaves a gap, never skips samples
                    self._sync()
                    self._account(start, start + played)
                    self._position = start + played
                self._device_frames += n
                done += n
                if self._complete() and self._position >= self.timeline.length_samples and not self._ended:
                    self._sync()
                    self._at_end(jumped=False)
            self._fire_due()

    @staticmethod
    def _gain(samples: np.ndarray, volume_percent: int) -> np.ndarray:
        if volume_percent >= 100:
            return samples  # untouched: what you hear is the exported track
        scaled = np.rint(samples.astype(np.float32) * np.float32(volume_percent / 100))
        return scaled.astype(np.int16)

    def _account(self, a: int, b: int) -> None:
        """Credit played samples ``[a, b)`` to their steps; report the boundaries crossed."""
        chapters = self.timeline.chapters
        start = a
        index = self.index.chapter_at(a)
        while a < b and index < len(chapters):
            chapter = chapters[index]
            end = min(b, chapter.end_sample)
            self._played[index] += end - a
            if end == chapter.end_sample:
                self._completed += 1
            a = end
            index += 1
        lo = bisect.bisect_right(self._boundaries, start)
        hi = bisect.bisect_right(self._boundaries, b)
        for sample in self._boundaries[lo:hi]:
            self.notices.put(Notice(NoticeKind.PHASE, sample, self._volume))

    def _at_end(self, *, jumped: bool) -> None:
        """The track is over: loop, or end.  ``jumped``: skipped to it rather than played into it."""
        self._reached_end = True
        if self.loop:
            self._position = self._loop_start
            self._generation += 1
            self._notify(NoticeKind.LOOP)
            return
        self._position = self.timeline.length_samples
        self._ended = True
        self._ended_at = self._device_frames
        if jumped:  # a push backend must stop its buffer; one played to its end stops by itself
            self._generation += 1
        self._notify(NoticeKind.END)

    def _fire_due(self) -> None:
        while self._scheduled and self._scheduled[0][0] <= self._device_frames:
            _, _, action = heapq.heappop(self._scheduled)
            action()

    def _notify(self, kind: NoticeKind) -> None:
        self.notices.put(Notice(kind, self._position, self._volume))

    # -- commands (any thread) -----------------------------------------------------------

    def schedule(self, device_frame: int, action: Callable[[], None]) -> None:
        """Run ``action`` (under the player's lock) when the device reaches ``device_frame``."""
        with self._lock:
            heapq.heappush(self._scheduled, (device_frame, next(self._order), action))

    def toggle_pause(self) -> None:
        with self._lock:
            if self._ended or self._stopped:
                return
            self._paused = not self._paused
            self._generation += 1
            self._notify(NoticeKind.PAUSE if self._paused else NoticeKind.RESUME)

    def seek_step(self, index: int) -> None:
        """Jump to the first sample of step ``index`` (clamped); the pause state stays."""
        with self._lock:
            self._sync()
            if self._stopped:
                return
            index = max(0, min(index, len(self.timeline.chapters) - 1))
            self._position = self.timeline.chapters[index].start_sample
            self._ended = False
            self._ended_at = None
            self._generation += 1
            self._notify(NoticeKind.SEEK)

    def current_step(self) -> int:
        with self._lock:
            self._sync()
            return self.index.chapter_at(min(self._position, self.timeline.length_samples - 1))

    def next_step(self) -> None:
        """The next step's first sample; past the last step, the end (or the loop's start).

        A step a streaming source has not scheduled yet cannot be skipped to: the key is ignored.
        """
        with self._lock:
            if self._ended or self._stopped:
                return
            index = self.current_step() + 1
            if index < len(self.timeline.chapters):
                self.seek_step(index)
            elif self._complete():
                self._at_end(jumped=True)

    def restart_step(self) -> None:
        with self._lock:
            self.seek_step(self.current_step())

    def previous_step(self) -> None:
        with self._lock:
            self.seek_step(self.current_step() - 1)

    def change_volume(self, delta_percent: int) -> None:
        with self._lock:
            volume = max(0, min(100, self._volume + delta_percent))
            if volume != self._volume:
                self._volume = volume
                self._generation += 1
            self._notify(NoticeKind.VOLUME)

    def quit(self) -> None:
        with self._lock:
            if not self._stopped:
                self._stopped = True
                self._generation += 1
                self._notify(NoticeKind.QUIT)

    # -- state ---------------------------------------------------------------------------

    def state(self) -> PlayerState:
        with self._lock:
            return PlayerState(
                position=self._position,
                paused=self._paused,
                volume_percent=self._volume,
                ended=self._ended,
                stopped=self._stopped,
                device_frames=self._device_frames,
                ended_at_frame=self._ended_at,
                generation=self._generation,
            )

    def result(self) -> SessionResult:
        with self._lock:
            self._sync()
            return SessionResult(
                played_s=sum(self._played) / self.rate,
                seconds_per_step=tuple(n / self.rate for n in self._played),
                steps_completed=self._completed,
                steps_total=self.steps_total,
                finished=self._reached_end,
            )


class Controller:
    """Keys -> player commands; remembers when 'back' was last pressed."""

    def __init__(self, player: Player) -> None:
        self.player = player
        self._last_back_s: float | None = None

    def apply(self, action: Action, now_s: float) -> None:
        player = self.player
        if action is Action.BACK:
            quick = self._last_back_s is not None and now_s - self._last_back_s <= BACK_TWICE_S
            player.previous_step() if quick else player.restart_step()
            self._last_back_s = now_s
            return
        commands: dict[Action, Callable[[], None]] = {
            Action.PAUSE: player.toggle_pause,
            Action.NEXT: player.next_step,
            Action.REPEAT: player.restart_step,
            Action.VOLUME_UP: lambda: player.change_volume(VOLUME_STEP_PERCENT),
            Action.VOLUME_DOWN: lambda: player.change_volume(-VOLUME_STEP_PERCENT),
            Action.QUIT: player.quit,
        }
        commands[action]()


def schedule_keys(player: Player, script: Sequence[ScriptedKey]) -> Controller:
    """Press scripted keys at their exact device frames; returns the controller they use."""
    controller = Controller(player)
    for key in script:
        frame = round(key.at_s * player.rate)
        player.schedule(frame, lambda action=key.action, at=frame: controller.apply(action, at / player.rate))
    return controller


# ---------------------------------------------------------------------------------------
# Backends


class Backend(Protocol):
    name: str

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
def _quiet_stderr() -> Iterator[None]:
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


def _miniaudio():
    try:
        return importlib.import_module("miniaudio")
    except ImportError as error:
        raise AudioDeviceError(
            f"the miniaudio backend is not available ({error})", hint=f"pip install miniaudio, {COMPILE_HINT}"
        ) from None


class MiniaudioBackend(_AudioThread):
    """Sound through miniaudio (PulseAudio, PipeWire, ALSA, JACK, ...), pulling from the player.

    miniaudio runs the audio thread itself and calls :meth:`_feed` from it.  A device that
    stops calling (the sound server died, the device went away without the server moving the
    stream elsewhere) is reported by :meth:`check` after ``stall_s``: the session ends with an
    error and is logged, rather than hanging silent in front of someone with their eyes closed.
    """

    name = "miniaudio"

    def __init__(self, *, device: str | None = None, buffer_ms: int = 50, stall_s: float = 5.0,
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

    @staticmethod
    def _playbacks(ma) -> tuple[str, list[dict]]:
        """The sound system miniaudio chose and its output devices."""
        with _quiet_stderr():
            try:
                context = ma.Devices()
                return context.backend, context.get_playbacks()
            except ma.MiniaudioError as error:
                raise _no_device(f"cannot list devices: {error}") from None

    @classmethod
    def devices(cls) -> list[DeviceInfo]:
        backend, found = cls._playbacks(_miniaudio())
        return [DeviceInfo(i + 1, d["name"], backend) for i, d in enumerate(found)]

    def _pick(self, ma, spec: str):
        """``--device``: a number from ``--devices``, a name, or a unique part of one."""
        system, found = self._playbacks(ma)
        names = [d["name"] for d in found]
        wanted = spec.strip().casefold()
        matches = [i for i, n in enumerate(names) if n.casefold() == wanted]
        if not matches and wanted.isdigit() and 1 <= int(wanted) <= len(names):
            matches = [int(wanted) - 1]
        if not matches:
            matches = [i for i, n in enumerate(names) if wanted in n.casefold()]
        if len(matches) != 1:
            listing = "; ".join(f"{i + 1} {n}" for i, n in enumerate(names)) or "none found"
            what = "matches several devices" if matches else "matches no output device"
            raise AudioDeviceError(f"--device {spec!r} {what}", hint=f"give a number or a name from: {listing}")
        backend = {m.name.casefold(): m for m in ma.Backend}.get(system.replace(" ", "").casefold())
        return found[matches[0]]["id"], [backend] if backend is not None else None

    def start(self, player: Player) -> None:
        ma = _miniaudio()
        device_id, backends = self._pick(ma, self.device) if self.device else (None, None)
        with _quiet_stderr():
            try:
                device = ma.PlaybackDevice(
                    output_format=ma.SampleFormat.SIGNED16,
                    nchannels=1,
                    sample_rate=player.rate,
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
        drain = round(self._player.rate * (4 * self.buffer_ms / 1000 + 0.2))
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
        target = origin_frames + int((self.clock() - origin_s) * player.rate)
        player.advance(target - player.state().device_frames)
        state = player.state()
        if state.generation != self._generation:
            self._generation = state.generation
            self._stop_buffer()
            if not (state.paused or state.ended or state.stopped):
                samples = player.render(state.position, player.timeline.length_samples - state.position)
                try:
                    self._play = self._module.play_buffer(samples.tobytes(), 1, 2, player.rate)
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


def list_devices(backend: str) -> list[DeviceInfo]:
    """Output devices of a backend (``--devices``)."""
    if backend == "miniaudio":
        return MiniaudioBackend.devices()
    if backend == "simpleaudio":
        return [DeviceInfo(1, "the system's default output", "simpleaudio")]
    return [DeviceInfo(1, "fake (no sound)", "fake")]


# ---------------------------------------------------------------------------------------
# A whole session


def run_session(
    player: Player,
    backend: Backend,
    *,
    view: StatusView,
    show: Callable[[str], None],
    terminal: RawTerminal | None = None,
    script: Sequence[ScriptedKey] = (),
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = 0.05,
) -> SessionResult:
    """Play until the end (drained), ``q`` or Ctrl-C; keys from ``terminal`` and/or ``script``.

    ``show`` receives the display's text (status lines); the terminal and the device are
    always restored and released, also when interrupted.
    """
    controller = schedule_keys(player, script)
    player.prime()

    def drain() -> None:
        while True:
            try:
                notice = player.notices.get_nowait()
            except queue.Empty:
                return
            text = view.notice(notice)
            if text:
                show(text + "\n")

    with terminal if terminal is not None else contextlib.nullcontext():
        backend.start(player)
        try:
            while True:
                if terminal is not None:
                    key = terminal.read_key(poll_s)
                    if key in KEY_ACTIONS:
                        controller.apply(KEY_ACTIONS[key], clock())
                else:
                    time.sleep(poll_s)
                view.follow(player.timeline)
                drain()
                state = player.state()
                line = view.tick(state.position, paused=state.paused, volume_percent=state.volume_percent)
                if line:
                    show(line)
                backend.check()
                if state.stopped or backend.finished():
                    break
        finally:
            backend.close()
            view.follow(player.timeline)
            drain()
            show(view.close())
    return player.result()

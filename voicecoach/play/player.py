"""The player: a sample-exact play position over a routine's track; thread-safe.

:class:`Player` owns the play position, in track samples.  Backends (``backends.py``) move
it: a *pull* backend (miniaudio, the fake one) asks :meth:`Player.pull` for the next frames
from its audio thread; a *push* backend (simpleaudio, which can only play a whole buffer)
advances it by the clock and restarts its buffer whenever playback jumps.  Either way the
samples sounded between a start and a stop are exactly the track's samples at those
positions (times a volume gain; at 100 % they are unchanged), a pause resumes at the very
sample where it stopped, and a skip starts at a step's first sample.

Device time (frames handed to the device, silence while paused included) is the player's
clock: scripted actions fire at exact device frames, so a scripted session is reproducible.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import queue
import threading
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from ..errors import VoicecoachError
from ..model import Timeline
from .status import Notice, NoticeKind, TimelineIndex

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
    """Steps played through to their end (a skipped step does not count), each once however often
    it played (``--loop``, going back): never more than ``steps_total``."""
    steps_total: int
    """Steps in the routine."""
    finished: bool
    """The routine played to its end."""
    passes: int = 0
    """Times the routine played to its end (``--loop`` goes round again)."""


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
        self.lock = threading.RLock()
        """Held by every command and by the audio side; a controller takes it to act atomically."""
        self._played: list[int] = []
        self._sync()
        self.sample_rate = self.timeline.sample_rate
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
        self._completed: set[int] = set()  # chapter indices played to their end, each counted once
        self._passes = 0
        self._scheduled: list[tuple[int, int, Callable[[], None]]] = []
        self._overlay = np.zeros(0, np.int32)
        self.output_tap: Callable[[np.ndarray], None] | None = None
        """Sees every block :meth:`pull` hands out (the voice input measures its echo with it)."""
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
        """The next ``frames`` samples to sound (silence while paused or after the end), overlay mixed in."""
        out = np.zeros(max(0, frames), dtype=np.int16)
        self._run(out.size, out)
        with self.lock:
            if self._overlay.size:
                n = min(out.size, self._overlay.size)
                mixed = out[:n].astype(np.int32) + self._overlay[:n]
                out[:n] = np.clip(mixed, -32768, 32767)
                self._overlay = self._overlay[n:]
        if self.output_tap is not None:
            self.output_tap(out)
        return out

    def overlay(self, samples: np.ndarray) -> None:
        """Sound ``samples`` over the track (or a pause's silence) from the next pull on.

        For feedback such as a recognized command's acknowledgement: the play position does
        not move and nothing is credited to a step.  Pull backends only.
        """
        with self.lock:
            self._overlay = np.asarray(samples, dtype=np.int32).copy()

    def advance(self, frames: int) -> None:
        """Move on by ``frames`` device frames without making samples (push backends)."""
        self._run(max(0, frames), None)

    def render(self, start_sample: int, count: int) -> np.ndarray:
        """Track samples with the current volume applied (push backends)."""
        with self.lock:
            volume = self._volume
        return self._gain(self.source.read(start_sample, count), volume)

    def prime(self) -> None:
        """Make the source ready at the start position before a device starts pulling."""
        self.source.read(self._position, 1)

    def _run(self, frames: int, out: np.ndarray | None) -> None:
        with self.lock:
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
                self._completed.add(index)
            a = end
            index += 1
        lo = bisect.bisect_right(self._boundaries, start)
        hi = bisect.bisect_right(self._boundaries, b)
        for sample in self._boundaries[lo:hi]:
            self.notices.put(Notice(NoticeKind.PHASE, sample, self._volume))

    def _at_end(self, *, jumped: bool) -> None:
        """The track is over: loop, or end.  ``jumped``: skipped to it rather than played into it."""
        self._reached_end = True
        self._passes += 1
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
        with self.lock:
            heapq.heappush(self._scheduled, (device_frame, next(self._order), action))

    def toggle_pause(self) -> None:
        with self.lock:
            self.set_paused(not self._paused)

    def set_paused(self, paused: bool) -> None:
        """Pause or resume; asking for the state it is in does nothing."""
        with self.lock:
            if self._ended or self._stopped or paused == self._paused:
                return
            self._paused = paused
            self._generation += 1
            self._notify(NoticeKind.PAUSE if self._paused else NoticeKind.RESUME)

    def seek_step(self, index: int) -> None:
        """Jump to the first sample of step ``index`` (clamped); the pause state stays."""
        with self.lock:
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
        with self.lock:
            self._sync()
            return self.index.chapter_at(min(self._position, self.timeline.length_samples - 1))

    def next_step(self) -> None:
        """The next step's first sample; past the last step, the end (or the loop's start).

        A step a streaming source has not scheduled yet cannot be skipped to: the key is ignored.
        """
        with self.lock:
            if self._ended or self._stopped:
                return
            index = self.current_step() + 1
            if index < len(self.timeline.chapters):
                self.seek_step(index)
            elif self._complete():
                self._at_end(jumped=True)

    def restart_step(self) -> None:
        with self.lock:
            self.seek_step(self.current_step())

    def previous_step(self) -> None:
        with self.lock:
            self.seek_step(self.current_step() - 1)

    def change_volume(self, delta_percent: int) -> None:
        with self.lock:
            volume = max(0, min(100, self._volume + delta_percent))
            if volume != self._volume:
                self._volume = volume
                self._generation += 1
            self._notify(NoticeKind.VOLUME)

    def quit(self) -> None:
        with self.lock:
            if not self._stopped:
                self._stopped = True
                self._generation += 1
                self._notify(NoticeKind.QUIT)

    # -- state ---------------------------------------------------------------------------

    def state(self) -> PlayerState:
        with self.lock:
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
        with self.lock:
            self._sync()
            return SessionResult(
                played_s=sum(self._played) / self.sample_rate,
                seconds_per_step=tuple(n / self.sample_rate for n in self._played),
                steps_completed=len(self._completed),
                steps_total=self.steps_total,
                finished=self._reached_end,
                passes=self._passes,
            )



"""What the player shows: the live status line and plain log lines, computed from the timeline.

Everything here is a pure function of the timeline and a play position (in samples): which
step is playing, its phase (the label of the last event that started, e.g. ``hold 3 of 5``),
the time left in the step and in the routine, and what comes next.  :class:`StatusView`
turns player notices into text; the caller decides where the text goes.
"""

from __future__ import annotations

import bisect
import enum
import math
from dataclasses import dataclass

from ..model import Timeline


@dataclass(frozen=True)
class Status:
    """What is playing at one position of the track."""

    routine: str
    """Routine title."""
    step: int
    """Index of the current step (chapter), 0-based."""
    steps: int
    """Number of steps."""
    title: str
    """The current step's title."""
    phase: str
    """Label of the latest event in this step (``"hold 3 of 5"``, ``"rest"``), ``""`` before any."""
    step_left_s: float
    """Seconds until the next step starts."""
    elapsed_s: float
    """Seconds of the track before the position."""
    remaining_s: float
    """Seconds of the track after the position."""
    next_title: str | None
    """The next step's title; ``None`` on the last step."""
    paused: bool = False
    """Playback is paused."""
    volume_percent: int = 100
    """Player volume."""

    @property
    def key(self) -> tuple[int, str]:
        """What a plain log line is about: a new line is printed when it changes."""
        return (self.step, self.phase)


class TimelineIndex:
    """Fast status lookups for one timeline (bisect over chapter and phase starts).

    ``steps_total``: the routine's number of steps when the timeline is still growing.
    """

    def __init__(self, timeline: Timeline, *, steps_total: int | None = None) -> None:
        self.timeline = timeline
        self.steps_total = steps_total if steps_total is not None else len(timeline.chapters)
        self._chapter_starts = [c.start_sample for c in timeline.chapters]
        marks: list[tuple[int, int, str]] = []
        for event in timeline.events:  # sorted by start sample
            if event.label and (not marks or marks[-1][1:] != (event.step, event.label)):
                marks.append((event.start_sample, event.step, event.label))
        self._mark_starts = [m[0] for m in marks]
        self._marks = marks

    def boundaries(self) -> list[int]:
        """Samples where the status key may change (chapter and phase starts), sorted, unique."""
        return sorted(set(self._chapter_starts) | set(self._mark_starts))

    def chapter_at(self, sample: int) -> int:
        return max(0, min(bisect.bisect_right(self._chapter_starts, sample) - 1, len(self._chapter_starts) - 1))

    def status(self, sample: int, *, paused: bool = False, volume_percent: int = 100) -> Status:
        timeline = self.timeline
        rate = timeline.sample_rate
        sample = max(0, min(sample, timeline.length_samples))
        index = self.chapter_at(sample)
        chapter = timeline.chapters[index]
        phase = ""
        at = bisect.bisect_right(self._mark_starts, sample) - 1
        if at >= 0 and self._marks[at][1] == index:
            phase = self._marks[at][2]
        chapters = timeline.chapters
        return Status(
            routine=timeline.routine,
            step=index,
            steps=max(self.steps_total, len(chapters)),
            title=chapter.title,
            phase=phase,
            step_left_s=max(0, chapter.end_sample - sample) / rate,
            elapsed_s=sample / rate,
            remaining_s=(timeline.length_samples - sample) / rate,
            next_title=chapters[index + 1].title if index + 1 < len(chapters)
            else ("..." if index + 1 < self.steps_total else None),  # not scheduled yet
            paused=paused,
            volume_percent=volume_percent,
        )


def status_at(timeline: Timeline, sample: int, *, paused: bool = False, volume_percent: int = 100) -> Status:
    """The status at one position (builds an index; use :class:`TimelineIndex` when repeating)."""
    return TimelineIndex(timeline).status(sample, paused=paused, volume_percent=volume_percent)


def clock(seconds: float) -> str:
    """``83.4`` -> ``"1:23"``; an hour or more -> ``"1:02:03"`` (whole seconds, rounded down)."""
    whole = max(0, math.floor(seconds + 1e-9))
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _left(seconds: float) -> str:
    # Time left counts up to the next whole second, so it reads 0:01 until the step ends.
    return clock(math.ceil(seconds - 1e-9))


def live_line(status: Status, *, width: int = 100) -> str:
    """The one-line display: routine | 2/6 Step | hold 3 of 5 | 0:12 left | 1:23 / 3:52 | next: ..."""
    parts = []
    if status.paused:
        parts.append("PAUSED")
    parts.append(status.routine)
    step = f"{status.step + 1}/{status.steps} {status.title}"
    parts.append(f"{step}: {status.phase}" if status.phase else step)
    parts.append(f"{_left(status.step_left_s)} left")
    total = status.elapsed_s + status.remaining_s
    parts.append(f"{clock(status.elapsed_s)} / {clock(round(total))}")
    if status.volume_percent != 100:
        parts.append(f"vol {status.volume_percent}%")
    parts.append(f"next: {status.next_title}" if status.next_title else "last step")
    text = " | ".join(parts)
    limit = max(10, width - 1)  # never fill the last column: some terminals wrap there
    return text if len(text) <= limit else text[: limit - 3] + "..."


def log_line(status: Status) -> str:
    """A plain line for one step or phase change (when output is not a terminal)."""
    step = f"step {status.step + 1}/{status.steps} {status.title}"
    phase = f": {status.phase}" if status.phase else ""
    nxt = f" (next: {status.next_title})" if status.next_title else ""
    return f"[{clock(status.elapsed_s)}] {step}{phase}, {_left(status.step_left_s)} left{nxt}"


class NoticeKind(enum.Enum):
    """What a player notice reports."""

    START = "start"
    PHASE = "phase"  # playback reached a step or phase boundary
    PAUSE = "pause"
    RESUME = "resume"
    SEEK = "seek"
    VOLUME = "volume"
    LOOP = "loop"
    END = "end"
    QUIT = "quit"


@dataclass(frozen=True)
class Notice:
    """Something the player did, at a track position (sent from the audio thread)."""

    kind: NoticeKind
    """What happened."""
    position: int
    """Track sample at which it happened."""
    volume_percent: int = 100
    """Volume after it."""


class StatusView:
    """Turns notices and positions into text: a live line (terminal) or plain log lines.

    ``live=True``: :meth:`tick` returns the redrawn line (``"\\r...\\x1b[K"``) when it changed.
    ``live=False``: :meth:`notice` returns one line per step/phase change and per control action.
    """

    def __init__(self, timeline: Timeline, *, live: bool, width: int = 100, steps_total: int | None = None) -> None:
        self.index = TimelineIndex(timeline, steps_total=steps_total)
        self.live = live
        self.width = width
        self._last_key: tuple[int, str] | None = None
        self._last_line = ""

    def follow(self, timeline: Timeline) -> None:
        """Use a timeline that has grown (a routine still being made while it plays)."""
        if timeline is not self.index.timeline:
            self.index = TimelineIndex(timeline, steps_total=self.index.steps_total)

    def notice(self, notice: Notice) -> str | None:
        """A plain log line for a notice, or ``None`` (live mode, or nothing new to say)."""
        if self.live:
            return None
        status = self.index.status(notice.position, volume_percent=notice.volume_percent)
        at = f"[{clock(status.elapsed_s)}]"
        kind = notice.kind
        if kind is NoticeKind.PAUSE:
            return f"{at} paused"
        if kind is NoticeKind.VOLUME:
            return f"{at} volume {notice.volume_percent}%"
        if kind is NoticeKind.END:
            return f"{at} finished"
        if kind is NoticeKind.QUIT:
            return f"{at} stopped"
        prefix = ""
        if kind is NoticeKind.RESUME:
            prefix = f"{at} resumed\n"
        elif kind is NoticeKind.SEEK:
            prefix = f"{at} jump to step {status.step + 1}\n"
            self._last_key = None
        elif kind is NoticeKind.LOOP:
            prefix = f"{at} again from step {status.step + 1}\n"
            self._last_key = None
        if status.key == self._last_key:
            return prefix.rstrip("\n") or None
        self._last_key = status.key
        return prefix + log_line(status)

    def tick(self, position: int, *, paused: bool, volume_percent: int) -> str | None:
        """The redrawn live line when it changed, else ``None`` (always ``None`` in plain mode)."""
        if not self.live:
            return None
        line = live_line(self.index.status(position, paused=paused, volume_percent=volume_percent), width=self.width)
        if line == self._last_line:
            return None
        self._last_line = line
        return "\r" + line + "\x1b[K"

    def close(self) -> str:
        """Text that ends the display: a newline after a live line."""
        return "\n" if self.live and self._last_line else ""

"""A whole play session: the player, its backend, its input sources and the status view, and the log.

:func:`play_routine` is the one call behind ``voicecoach play`` (and ``voicecoach today``): it
makes the routine while it plays, wires the player to a backend, the input sources (the
keyboard, scripted keys, ...) and the status view, records the session in the practice log
and says how it went.  :func:`run_session` is the loop of one session with parts the caller
made (tests drive it with the fake backend).
"""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..errors import AudioDeviceError, VoicecoachError
from ..grammar import count
from ..compile import step_title
from ..model import Timeline, flat_steps
from ..pipeline import LiveBuild, Settings
from ..practice_log import PracticeLog, PracticeLogError, file_hash, new_session
from ..timing import format_duration
from .backends import Backend, make_backend
from .controller import Applied, Controller, InputSource
from .keyboard import HELP, Keyboard, RawTerminal, ScriptedKey, parse_script, schedule_keys
from .player import Player, SessionResult, Source, find_step
from .status import StatusView


def run_session(
    player: Player,
    backend: Backend,
    *,
    view: StatusView,
    show: Callable[[str], None],
    inputs: Sequence[InputSource] = (),
    script: Sequence[ScriptedKey] = (),
    controller: Controller | None = None,
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = 0.05,
) -> SessionResult:
    """Play until the end (drained), a quit or Ctrl-C; actions from the ``inputs`` and the ``script``.

    ``show`` receives the display's text (status lines).  Every input source is closed (the
    terminal restored, ...) and the device released, also when interrupted.
    """
    controller = controller or Controller(player, clock=clock)
    actions: queue.SimpleQueue[Applied] = queue.SimpleQueue()
    controller.on_action = actions.put  # shown by this thread, in order with the player's notices
    schedule_keys(player, script, controller)
    player.prime()
    view.listening = any(getattr(source, "listening", False) for source in inputs)

    def drain() -> None:
        while True:
            try:
                notice = player.notices.get_nowait()
            except queue.Empty:
                break
            text = view.notice(notice)
            if text:
                show(text + "\n")
        while True:
            try:
                applied = actions.get_nowait()
            except queue.Empty:
                return
            text = view.action(applied) if applied.source != "script" else None  # scripted keys: notices say it
            if text:
                show(text + "\n")

    with contextlib.ExitStack() as started:
        # The inputs first: starting one can hold the interpreter for a while (the recognizer loads
        # its model), and a device already pulling would starve meanwhile (a gap in the first words).
        for source in inputs:
            started.callback(source.close)
            source.start(controller)
        backend.start(player)
        started.callback(backend.close)
        try:
            while True:
                time.sleep(poll_s)
                view.follow(player.timeline)
                drain()
                state = player.state()
                line = view.tick(state.position, paused=state.paused, volume_percent=state.volume_percent)
                if line:
                    show(line)
                backend.check()
                for source in inputs:  # an input source that broke on its thread says so here
                    error = getattr(source, "error", None)
                    if error is not None:
                        raise error
                if state.stopped or backend.finished():
                    break
        finally:
            started.close()
            view.follow(player.timeline)
            drain()
            show(view.close())
    return player.result()


# ---------------------------------------------------------------------------------------
# What a session adds up to


def area_seconds(timeline: Timeline, seconds_per_step: Sequence[float]) -> dict[str, float]:
    """Seconds played per face area (``{"brows": 40.0, ...}``): steps without an area do not count."""
    areas: dict[str, float] = {}
    for chapter, seconds in zip(timeline.chapters, seconds_per_step):
        if chapter.area is not None and seconds:
            areas[chapter.area.value] = areas.get(chapter.area.value, 0.0) + seconds
    return areas


def session_summary(result: SessionResult, *, stopped: bool = False) -> str:
    """``"Played 4:12: 5 of 6 steps completed, finished."`` (``Stopped`` after Ctrl-C)."""
    return (f"{'Stopped' if stopped else 'Played'} {format_duration(round(result.played_s))}: "
            f"{result.steps_completed} of {count(result.steps_total, 'step')} completed"
            + (f", {count(result.passes, 'pass', 'passes')}" if result.passes > 1 else "")
            + (", finished." if result.finished else "."))


def streak_line(days: int) -> str:
    """``"Logged. Practice streak: 3 days."``"""
    return f"Logged. Practice streak: {count(days, 'day')}."


# ---------------------------------------------------------------------------------------
# The one call behind `voicecoach play`


@dataclass(frozen=True)
class PlayOptions:
    """How to play: the command line's choices."""

    from_step: str | None = None
    """Start at this step: its number or the start of its name (``--from``)."""
    loop: bool = False
    """Play again from the start step when the routine ends."""
    keys: bool = True
    """Read keys from the terminal (when standard input is one)."""
    volume_percent: int = 100
    """Start volume, 0-100."""
    backend: str = "miniaudio"
    """Sound output (``backends.BACKENDS``)."""
    device: str | None = None
    """Output device: a number or (part of) a name from ``--devices``."""
    script_keys: str = ""
    """Timed keys for tests (``keyboard.parse_script``)."""
    settings: Settings = field(default_factory=Settings)
    """How to make the routine (engine, voice, cache)."""
    log: bool = True
    """Record the session in the practice log."""
    log_path: Path | None = None
    """The practice log's file (``None``: the default place)."""
    live: bool | None = None
    """Redraw one status line (``None``: when standard output is a terminal); else plain lines."""
    width: int | None = None
    """Width of the status line (``None``: the terminal's)."""
    media_keys: bool = True
    """Register an MPRIS player on the session D-Bus (headphone and media keys, playerctl)."""
    listen: bool = False
    """Take voice commands from the microphone (opened only then)."""
    mic: str | None = None
    """Input device for ``listen``: a number or (part of) a name from ``--devices``."""
    wake_word: str | None = None
    """Only commands said after this word count (``"coach"``)."""
    verbose: bool = False
    """Also say what is off (no session bus for media keys, ...)."""
    extra_inputs: tuple[InputSource, ...] = field(default=())
    """More input sources, started with the others."""
    log_fields: Mapping[str, object] = field(default_factory=dict)
    """More for the practice log's session: a program's ``program``, ``program_path``,
    ``program_day`` and the ``local_date`` it counts for (``voicecoach today``)."""


@dataclass(frozen=True)
class PlayReport:
    """How a session went."""

    result: SessionResult
    """What was played."""
    logged: bool
    """The session is in the practice log."""
    streak_days: int | None
    """The practice streak after it, when logged."""
    action_counts: Mapping[str, int]
    """Actions carried out per input source name."""


def play_routine(
    routine: str | os.PathLike | Source,
    options: PlayOptions = PlayOptions(),
    *,
    show: Callable[[str], None],
    warn: Callable[[str], None],
) -> PlayReport:
    """Play a routine file (made while it plays) or an already made source, log it, say how it went.

    ``routine``: a routine file, or a source (``pipeline.Build``, ``pipeline.LiveBuild``, or any
    object with ``timeline`` and ``read``; optional ``routine`` (its :class:`~voicecoach.model.Routine`),
    ``wait(chapters=)``, ``close()``, ``path`` (the file whose hash the log keeps)).
    ``show`` receives the text for standard output (no newline added), ``warn`` one line for
    standard error.  Ctrl-C (``KeyboardInterrupt``) ends the session, which is logged, then
    propagates; a device lost mid-session is logged, then raised with a hint to go on from the step.
    """
    script = parse_script(options.script_keys) if options.script_keys else []
    audio = make_backend(options.backend, device=options.device)
    path: Path | None
    if isinstance(routine, (str, os.PathLike)):
        path = Path(routine)
        # Plays while later steps are still being synthesized and scheduled: the same samples as compile.
        source = LiveBuild(path, settings=options.settings)
    else:
        source, path = routine, getattr(routine, "path", None)
    try:
        made = getattr(source, "routine", None)
        if made is not None:
            title = made.title
            titles = [step_title(step, label) for step, label in flat_steps(made.steps)]
        else:
            title = source.timeline.routine
            titles = [chapter.title for chapter in source.timeline.chapters]
        start = find_step(titles, options.from_step, routine=title) if options.from_step else 0
        if hasattr(source, "wait"):
            # Playing starts on the first phrase of the start step (the rest is made meanwhile); a
            # scripted session (--script-keys) waits for the whole routine: its keys then act on
            # the same steps however fast the device pulls, and the session is reproducible.
            source.wait() if script else source.wait(chapters=start + 1)
        # Nobody heard a session without sound: it is not practice, so it stays out of the real
        # log (a log named explicitly, as tests do, still records it).
        practised = getattr(audio, "audible", True) or options.log_path is not None
        practice = PracticeLog(options.log_path) if options.log and practised else None
        if practice is not None:
            try:
                practice.check()
            except PracticeLogError as error:  # never blocks playing
                warn(f"warning: {error.format()}; this session will not be logged")
                practice = None
        player = Player(source, start_step=start, loop=options.loop, volume_percent=options.volume_percent)
        inputs: list[InputSource] = []
        if options.keys and RawTerminal.available():
            inputs.append(Keyboard(RawTerminal()))
        if options.listen:
            from .listen import VoiceCommands

            inputs.append(VoiceCommands.for_routine(made, mic=options.mic, wake_word=options.wake_word))
        if options.media_keys:
            from .mpris import MediaKeys

            inputs.append(MediaKeys(cover_png=_cover(made, title), report=warn if options.verbose else None))
        inputs.extend(options.extra_inputs)
        show(f"{title}: {count(len(titles), 'step')}" + (f" | {HELP}" if any(isinstance(i, Keyboard) for i in inputs) else "")
             + "\n")
        live = sys.stdout.isatty() if options.live is None else options.live
        width = options.width or shutil.get_terminal_size().columns
        view = StatusView(player.timeline, live=live, width=width, steps_total=len(titles))
        controller = Controller(player)
        started = datetime.now(timezone.utc)
        interrupt, failure = None, None
        try:
            run_session(player, audio, view=view, show=show, inputs=inputs, script=script, controller=controller)
        except KeyboardInterrupt as stop:  # Ctrl-C (or SIGTERM): stop cleanly, log, then exit as interrupted
            interrupt = stop
        except VoicecoachError as error:  # e.g. the device went away: still log what was played
            failure = error
    finally:
        if hasattr(source, "close"):
            source.close()
    outcome = player.result()
    if failure is not None and not outcome.played_s:
        raise failure
    if isinstance(failure, AudioDeviceError):  # lost mid-session: say how to go on from here
        again = f"voicecoach play {shlex.quote(str(path))} " if path is not None else "play again with "
        failure = AudioDeviceError(failure.message, hint=(
            "reconnect it or restart the sound server, then go on from this step: "
            f"{again}--from {player.current_step() + 1}"))
    show(session_summary(outcome, stopped=interrupt is not None) + "\n")
    if options.log and not practised and outcome.played_s > 0:
        show(f"Not logged: the {audio.name} backend plays no sound, so this was not practice.\n")
    streak = None
    if practice is not None and outcome.played_s > 0:
        streak = _record(practice, path, player.timeline, outcome, started, controller.counts(), warn=warn,
                         fields=options.log_fields)
        if streak is not None:
            show(streak_line(streak) + "\n")
    report = PlayReport(outcome, streak is not None, streak, controller.counts())
    if failure is not None:
        raise failure
    if interrupt is not None:
        raise interrupt
    return report


def _cover(routine, title: str) -> Callable[[], bytes]:
    """The routine's cover art, drawn when media keys ask for it."""
    def draw() -> bytes:
        from ..phone.cover import cover_png, routine_cover_png

        return routine_cover_png(routine, size_px=512) if routine is not None else cover_png(title, size_px=512)

    return draw


def _record(practice: PracticeLog, path: Path | None, timeline: Timeline, outcome: SessionResult,
            started: datetime, action_counts: Mapping[str, int], *, warn: Callable[[str], None],
            fields: Mapping[str, object] = {}) -> int | None:
    """Record a played session; returns the streak, or ``None`` (a broken log only warns)."""
    session = new_session(
        routine=timeline.routine, file_hash=file_hash(path) if path is not None else "", started=started,
        seconds_played=outcome.played_s, steps_completed=outcome.steps_completed, steps_total=outcome.steps_total,
        finished=outcome.finished, area_seconds=area_seconds(timeline, outcome.seconds_per_step),
        action_counts=action_counts, seconds_total=timeline.duration_s, **fields,  # type: ignore[arg-type]
    )
    try:
        practice.record(session)
        return practice.summary(today=session.local_date).current_streak_days
    except PracticeLogError as error:
        warn(f"warning: {error.format()}; this session was not logged")
        return None

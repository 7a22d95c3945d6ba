"""Errors the user can act on.

Every problem caused by input (a routine file, an option, the machine's setup) is a
:class:`VoicecoachError` carrying a location and a hint.  The CLI turns it into one line,
``path:line:col: what is wrong; how to fix it``, and exit code 2 -- in one place (cli.py).
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True, order=True)
class Location:
    """A place in a routine file, 1-based like editors count.

    >>> str(Location("scripts/morning.yaml", line=3, col=5))
    'scripts/morning.yaml:3:5'
    """

    path: str
    """The file as the user named it (or as an include resolved it)."""
    line: int = 1
    """Line number, starting at 1."""
    col: int = 1
    """Column number, starting at 1."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class VoicecoachError(Exception):
    """A problem the user can fix; formatted as ``path:line:col: message; hint``.

    The command line prints it as one line and exits with ``exit_code`` (2).

    >>> error = VoicecoachError("unknown field 'strokse'", location=Location("r.yaml", 4, 5),
    ...                         hint="did you mean 'strokes'?")
    >>> error.format()
    "r.yaml:4:5: unknown field 'strokse'; did you mean 'strokes'?"
    >>> error.exit_code
    2
    """

    exit_code = 2

    def __init__(self, message: str, *, location: Location | None = None, hint: str = "") -> None:
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(self.format())

    def format(self) -> str:
        text = self.message
        if self.hint:
            text = f"{text}; {self.hint}"
        if self.location is not None:
            text = f"{self.location}: {text}"
        return text

    def at_file(self, path: str | os.PathLike) -> "VoicecoachError":
        """This error, placed at ``path:1:1`` if it names no place of its own.

        Commands over many routines start every error with its file, so the user can tell
        which routine failed; an error about the file as a whole (an engine that failed, a
        disk that is full) is at its first line.
        """
        if self.location is not None:
            return self
        return self.at(Location(os.fspath(path)))

    def at(self, location: Location) -> "VoicecoachError":
        """This error, placed at ``location``."""
        placed = copy.copy(self)
        placed.location = location
        placed.args = (placed.format(),)
        return placed


class RoutineErrors(VoicecoachError):
    """Several problems found in one routine file (``check`` prints them all)."""

    def __init__(self, errors: list[VoicecoachError]) -> None:
        if not errors:
            raise ValueError("RoutineErrors needs at least one error")
        self.errors = sorted(errors, key=_sort_key)
        first = self.errors[0]
        super().__init__(first.message, location=first.location, hint=first.hint)

    def at_file(self, path: str | os.PathLike) -> "RoutineErrors":
        return RoutineErrors([error.at_file(path) for error in self.errors])

    def format(self) -> str:  # one line per problem
        return "\n".join(e.format() for e in getattr(self, "errors", []))


def _sort_key(error: VoicecoachError) -> tuple:
    loc = error.location
    return (loc.path, loc.line, loc.col) if loc else ("", 0, 0)


class EngineError(VoicecoachError):
    """The speech engine failed, hung or is not installed."""

    text: str | None = None
    """The phrase it failed on, when one phrase was the trouble (placed where the routine says it)."""


class TimingError(VoicecoachError):
    """Speech does not fit the slot the routine gives it (found at compile time)."""


class AudioDeviceError(VoicecoachError):
    """No usable audio output for playback."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C where the main thread is, so every cleanup runs on the way out."""


def raise_terminated(signum, frame) -> None:
    """The SIGTERM handler of the command line: ``kill`` then stops it like Ctrl-C does."""
    raise Terminated


def stop_message(stop: KeyboardInterrupt) -> tuple[str, int]:
    """The one line and the exit code a stopped command ends with: Ctrl-C 130, SIGTERM 143."""
    return ("Terminated.", 143) if isinstance(stop, Terminated) else ("Interrupted.", 130)


_worker_busy = False  # in a worker process: whether a job runs (see worker_job)


def _stop_worker(signum, frame) -> None:
    if _worker_busy:  # unwind the job: its temporary files go on the way out
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    # Idle (waiting for a job, or still starting: a held signal acts in init_worker_signals):
    # nothing to clean up.  Exit at once: an exception raised there would reach the pool's
    # own code, which prints it ("Exception in initializer: ..." with a traceback).
    os._exit(128 + signum)


def init_worker_signals() -> None:
    """The initializer of worker processes: Ctrl-C in a terminal and a service manager's stop
    signal the whole process group, workers too.  A busy worker stops its job like the command
    stops (cleanups run, see :func:`worker_job`); an idle one exits quietly.

    It lives here, in a light module, so that it runs before a spawned worker imports the
    audio stack (a signal during that import would end it with a traceback).
    """
    signal.signal(signal.SIGINT, _stop_worker)
    signal.signal(signal.SIGTERM, _stop_worker)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)  # what came while starting (signals_held) acts now


_HELD = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM held in this thread while it starts worker processes.  A spawned
    worker inherits the mask through exec, so a signal to the process group waits in it until
    :func:`init_worker_signals` has set its handlers; before them, it would end the worker's
    start (its imports) with a traceback.  Here, a held signal acts when the block ends."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


@contextlib.contextmanager
def worker_job() -> Iterator[None]:
    """Marks a job running in a worker set up by :func:`init_worker_signals`."""
    global _worker_busy
    _worker_busy = True
    try:
        yield
    finally:
        _worker_busy = False

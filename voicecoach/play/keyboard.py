"""The keyboard input source: single keys (no Enter), arrow keys included, and scripted key sequences.

:class:`RawTerminal` switches a terminal to cbreak mode (keys arrive one by one, not echoed;
Ctrl-C still interrupts) and always restores it: on exit, on Ctrl-C, on any error.
:class:`Keyboard` is the input source that reads it on its own thread and hands the
controller an :class:`~voicecoach.play.controller.Action` per key.  :func:`parse_script` reads
the timed key sequences used by tests and scripted checks; :func:`schedule_keys` presses them
at exact device frames.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from dataclasses import dataclass
from typing import Sequence

from ..errors import VoicecoachError
from .controller import Action, Controller
from .player import Player


KEY_ACTIONS: dict[str, Action] = {
    "space": Action.PAUSE,
    "n": Action.NEXT,
    "right": Action.NEXT,
    "p": Action.BACK,
    "left": Action.BACK,
    "r": Action.REPEAT,
    "+": Action.VOLUME_UP,
    "=": Action.VOLUME_UP,  # the unshifted '+' key
    "up": Action.VOLUME_UP,
    "-": Action.VOLUME_DOWN,
    "down": Action.VOLUME_DOWN,
    "q": Action.QUIT,
}
"""Key names (as :func:`decode` returns them) and what they do."""

HELP = "keys: space pause | n/-> next | p/<- back (twice: previous) | r repeat | +/- volume | q quit"

_ARROWS = {b"A": "up", b"B": "down", b"C": "right", b"D": "left"}


def decode(data: bytes) -> tuple[list[str], bytes]:
    """Split terminal input into key names; returns ``(keys, unfinished escape sequence)``.

    Letters come back lower-case, the space bar as ``"space"``, arrows as ``"left"``,
    ``"right"``, ``"up"``, ``"down"`` (``ESC [ C`` and ``ESC O C`` forms), a lone Escape as
    ``"escape"``.  Other escape sequences (function keys, ...) are dropped whole.
    """
    keys: list[str] = []
    i = 0
    while i < len(data):
        byte = data[i : i + 1]
        if byte != b"\x1b":
            keys.append("space" if byte == b" " else byte.decode("latin-1").lower())
            i += 1
            continue
        if i + 1 >= len(data):
            return keys, data[i:]  # maybe the start of a sequence: wait for the rest
        intro = data[i + 1 : i + 2]
        if intro not in (b"[", b"O"):
            keys.append("escape")
            i += 1
            continue
        # CSI / SS3: parameters (digits, ';') then one final byte.
        j = i + 2
        while j < len(data) and data[j : j + 1] in b"0123456789;":
            j += 1
        if j >= len(data):
            return keys, data[i:]
        final = data[j : j + 1]
        if final in _ARROWS:
            keys.append(_ARROWS[final])
        i = j + 1
    return keys, b""


class RawTerminal:
    """A terminal in cbreak mode for the duration of a ``with`` block, restored afterwards.

    ``fd`` defaults to standard input.  Use :meth:`read_key` to wait for the next key.
    """

    ESCAPE_WAIT_S = 0.05
    """How long to wait for the rest of an escape sequence before taking Escape alone."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._saved: list | None = None
        self._pending: list[str] = []
        self._partial = b""
        self.at_end = False
        """The input was closed (no key can come any more)."""

    @staticmethod
    def available(fd: int | None = None) -> bool:
        """Whether ``fd`` (standard input by default) is a terminal we can read keys from."""
        try:
            return os.isatty(sys.stdin.fileno() if fd is None else fd)
        except (OSError, ValueError):
            return False

    def __enter__(self) -> "RawTerminal":
        import termios
        import tty

        self._saved = termios.tcgetattr(self.fd)
        try:
            tty.setcbreak(self.fd, termios.TCSANOW)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def read_key(self, timeout_s: float) -> str | None:
        """The next key, waiting at most ``timeout_s``; ``None`` if none came."""
        if self._pending:
            return self._pending.pop(0)
        wait = timeout_s
        while True:
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                # Nothing more came: a lone Escape is a key, a cut-off sequence is dropped.
                lone_escape, self._partial = self._partial == b"\x1b", b""
                return "escape" if lone_escape else None
            data = os.read(self.fd, 64)
            if not data:
                self.at_end = True
                return None  # end of input
            keys, self._partial = decode(self._partial + data)
            self._pending.extend(keys)
            if self._pending:
                return self._pending.pop(0)
            wait = self.ESCAPE_WAIT_S


@dataclass(frozen=True)
class ScriptedKey:
    """One key of a scripted sequence."""

    at_s: float
    """Seconds of playback (device time, pauses included) after the start when it is pressed."""
    key: str
    """Key name, as :func:`decode` returns them."""

    @property
    def action(self) -> Action:
        return KEY_ACTIONS[self.key]


def parse_script(spec: str) -> list[ScriptedKey]:
    """``"wait:1.0,space,wait:1.0,space,n"`` -> timed keys.

    Items are key names (``space n p r + - q left right up down``) or ``wait:SECONDS``; keys
    with no wait between them are pressed at the same moment, in order.
    """
    keys: list[ScriptedKey] = []
    at = 0.0
    for raw in spec.split(","):
        item = raw.strip().lower()
        if item.startswith("wait:"):
            try:
                seconds = float(item[5:])
            except ValueError:
                seconds = -1.0
            if not seconds >= 0 or seconds == float("inf"):
                raise VoicecoachError(f"bad key script item {raw.strip()!r}", hint="write waits as wait:SECONDS, e.g. wait:1.5")
            at += seconds
        elif item in KEY_ACTIONS:
            keys.append(ScriptedKey(at, item))
        else:
            raise VoicecoachError(
                f"unknown key {raw.strip()!r} in the key script",
                hint=f"use wait:SECONDS or one of: {', '.join(KEY_ACTIONS)}",
            )
    return keys


def schedule_keys(player: Player, script: Sequence[ScriptedKey], controller: Controller | None = None) -> Controller:
    """Press scripted keys at their exact device frames (source ``"script"``); returns the controller."""
    controller = controller or Controller(player)
    rate = player.sample_rate
    for key in script:
        frame = round(key.at_s * rate)
        player.schedule(frame, lambda action=key.action, at=frame: controller.apply(action, at / rate, source="script"))
    return controller


class Keyboard:
    """The input source of a terminal's keys: :data:`KEY_ACTIONS`, read on a thread of its own."""

    name = "keys"
    POLL_S = 0.05

    def __init__(self, terminal: RawTerminal) -> None:
        self.terminal = terminal
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._entered = False

    def start(self, controller: Controller) -> None:
        self.terminal.__enter__()
        self._entered = True
        self._thread = threading.Thread(target=self._read, args=(controller,), name="voicecoach-keys", daemon=True)
        self._thread.start()

    def _read(self, controller: Controller) -> None:
        while not (self._closing.is_set() or self.terminal.at_end):
            key = self.terminal.read_key(self.POLL_S)
            if key in KEY_ACTIONS:
                controller.apply(KEY_ACTIONS[key], source=self.name)

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._entered:
            self._entered = False
            self.terminal.__exit__(None, None, None)

"""One controller for every input source: keys, voice commands, media keys all produce :class:`Action`s.

An *input source* (:class:`InputSource`) is started with the session's :class:`Controller` and
calls :meth:`Controller.apply` from its own thread whenever the user asks for something; the
controller turns the action into player commands.  Adding a way to control the player means
one new module with one input source; the player and the controller stay as they are.
"""

from __future__ import annotations

import enum
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Protocol

if TYPE_CHECKING:
    from .player import Player

VOLUME_STEP_PERCENT = 10
BACK_TWICE_S = 1.5
"""A second 'back' within this long goes to the previous step."""


class Action(enum.Enum):
    """What the user asks the player to do, whatever the input source."""

    PAUSE = "pause/resume"
    NEXT = "next step"
    BACK = "back to the step's start (twice quickly: previous step)"
    REPEAT = "repeat the current step"
    VOLUME_UP = "volume up"
    VOLUME_DOWN = "volume down"
    QUIT = "quit"


@dataclass(frozen=True)
class Applied:
    """One action the controller carried out, for the display and the practice log."""

    action: Action
    """What was asked."""
    source: str
    """The input source's name (``"keys"``, ``"script"``, ...)."""
    position: int
    """Track sample at which it was asked."""
    heard: str = ""
    """What the source took in, when it says (a spoken command's words)."""


class Controller:
    """Actions -> player commands, from any thread; remembers when 'back' was last asked for.

    ``on_action`` is called after each action is carried out (keep it short: a scripted action
    calls it from the audio thread).
    """

    def __init__(self, player: "Player", *, clock: Callable[[], float] = time.monotonic,
                 on_action: Callable[[Applied], None] | None = None) -> None:
        self.player = player
        self.clock = clock
        self.on_action = on_action
        self._last_back_s: float | None = None
        self._counts: Counter[str] = Counter()

    def apply(self, action: Action, now_s: float | None = None, *, source: str = "keys", heard: str = "") -> Applied:
        """Carry out ``action`` at ``now_s`` (the controller's clock by default) for ``source``."""
        now_s = self.clock() if now_s is None else now_s
        player = self.player
        with player.lock:  # the player's lock, never one of ours: scheduled actions already hold it
            position = player.state().position
            if action is Action.BACK:
                quick = self._last_back_s is not None and now_s - self._last_back_s <= BACK_TWICE_S
                self._last_back_s = now_s
                player.previous_step() if quick else player.restart_step()
            else:
                commands: dict[Action, Callable[[], None]] = {
                    Action.PAUSE: player.toggle_pause,
                    Action.NEXT: player.next_step,
                    Action.REPEAT: player.restart_step,
                    Action.VOLUME_UP: lambda: player.change_volume(VOLUME_STEP_PERCENT),
                    Action.VOLUME_DOWN: lambda: player.change_volume(-VOLUME_STEP_PERCENT),
                    Action.QUIT: player.quit,
                }
                commands[action]()
            self._counts[source] += 1
        applied = Applied(action, source, position, heard)
        if self.on_action is not None:
            self.on_action(applied)
        return applied

    def counts(self) -> Mapping[str, int]:
        """Actions carried out so far, per input source name."""
        with self.player.lock:
            return dict(sorted(self._counts.items()))


class InputSource(Protocol):
    """Something the user controls the player with (the keyboard, the voice, media keys).

    ``start`` returns at once (a source reads on its own thread) and calls
    ``controller.apply(action, source=self.name)`` for each request; ``close`` stops reading and
    gives back what it took (the terminal's mode, the microphone, the bus name); safe to call twice.
    """

    name: str

    def start(self, controller: Controller) -> None:
        """Begin taking input."""

    def close(self) -> None:
        """Stop taking input and restore what was changed."""

"""Playing a routine hands-free: ``voicecoach play``.

- ``player.py``: the sample-exact play position over a track (pause, seek, volume, loop).
- ``controller.py``: :class:`Action`, the :class:`Controller` that carries actions out, and the
  :class:`InputSource` protocol every way of controlling the player implements.
- ``keyboard.py``: the keyboard input source (single keys in a raw terminal) and scripted keys.
- ``backends.py``: audio backends that sound the player (miniaudio, simpleaudio, fake).
- ``status.py``: the status line and plain log lines, computed from the timeline.
- ``session.py``: a whole session (:func:`run_session`) and the one call behind the command
  (:func:`play_routine`), which also records the practice log.

Adding an input source: one module with a class that has ``name``, ``start(controller)`` and
``close()`` and calls ``controller.apply(Action.X, source=name)``; pass it in
``PlayOptions.extra_inputs`` (or append it where ``play_routine`` builds its inputs).
"""

from .controller import Action, Controller, InputSource
from .session import PlayOptions, PlayReport, play_routine, run_session

__all__ = ["Action", "Controller", "InputSource", "PlayOptions", "PlayReport", "play_routine", "run_session"]

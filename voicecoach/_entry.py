"""The console script's entry point.

It imports the command line (click, numpy, the audio stack: a few hundred milliseconds) with
the same Ctrl-C and SIGTERM handling as a running command, so stopping ``voicecoach`` while it
is still loading ends with ``Interrupted.`` (130) or ``Terminated.`` (143), not a traceback.
"""

from __future__ import annotations

import signal
import sys

from .errors import raise_terminated, stop_message


def main() -> None:
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        from .cli import main as run
    except KeyboardInterrupt as stop:
        message, code = stop_message(stop)
        sys.stderr.write(message + "\n")
        raise SystemExit(code) from None
    run()

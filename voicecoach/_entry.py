"""The console script's entry point.

It imports the command line (click, numpy, the audio stack: a few hundred milliseconds) inside
the same Ctrl-C handling as a running command, so stopping ``voicecoach`` while it is still
loading ends with ``Interrupted.`` and exit code 130, not a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        raise SystemExit(130) from None
    run()

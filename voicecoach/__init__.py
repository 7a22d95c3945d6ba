"""voicecoach: compile facial-fitness routine scripts into spoken, timed audio.

The public API, top-down like the pipeline::

    routine = load_routine("scripts/morning.yaml")      # script: YAML -> Routine
    result = build(routine, settings=Settings())         # compile + speech (cached)
    export(result, "morning.mp3")                        # mix + export
"""

__version__ = "0.1.0"

from .errors import Location, VoicecoachError  # noqa: E402
from .model import Routine, Timeline  # noqa: E402


def __getattr__(name: str):
    # The pipeline pulls in numpy and the audio stack; load it only when asked for.
    if name in {"build", "export", "plan", "Settings", "Build"}:
        from . import pipeline

        return getattr(pipeline, name)
    if name == "load_routine":
        from .script import load_routine

        return load_routine
    raise AttributeError(name)


__all__ = ["Location", "VoicecoachError", "Routine", "Timeline", "build", "export", "plan", "Settings",
           "Build", "load_routine"]

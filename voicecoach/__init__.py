"""voicecoach: compile facial-fitness routine scripts into spoken, timed audio.

The public API, top-down like the pipeline::

    routine = load_routine("scripts/morning.yaml")      # script: YAML -> Routine
    result = build(routine, settings=Settings())         # compile + speech (cached)
    export(result, "morning.mp3")                        # mix + export
"""

__version__ = "0.1.0"



def __getattr__(name: str):
    # Load on first use: the pipeline pulls in numpy and the audio stack, and the console script
    # (voicecoach._entry) must get its Ctrl-C handling in place before anything heavy is imported.
    if name in {"Location", "VoicecoachError"}:
        from . import errors

        return getattr(errors, name)
    if name in {"Routine", "Timeline"}:
        from . import model

        return getattr(model, name)
    if name in {"build", "export", "plan", "Settings", "Build"}:
        from . import pipeline

        return getattr(pipeline, name)
    if name == "load_routine":
        from .script import load_routine

        return load_routine
    raise AttributeError(name)


__all__ = ["Location", "VoicecoachError", "Routine", "Timeline", "build", "export", "plan", "Settings",
           "Build", "load_routine"]

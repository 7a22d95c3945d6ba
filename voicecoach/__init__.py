"""voicecoach: compile facial-fitness routine scripts into spoken, timed audio.

The public API, top-down like the pipeline::

    routine = load_routine("scripts/morning.yaml")      # script: YAML -> Routine
    result = build(routine, settings=Settings())         # compile + speech (cached)
    export(result, "morning.mp3")                        # mix + export (.mp3 .m4b .opus .flac .wav)

These are all the public names (``__all__``); each has a docstring with an example, and
``tests/test_api.py`` runs the examples and checks every name against this list::

    load_routine(path, *, limits=...) -> Routine
    plan(routine, *, settings=..., overflow=None) -> Timeline
    build(routine, *, settings=..., progress=None) -> Build
    export(result, out, *, settings=..., timeline_json=None, captions=None, progress=None) -> Path
    class Settings(engine=None, voice=None, rate=None, sample_rate=None, bitrate_kbps=96, mp3_quality=5, jobs=None, cache_dir=None, use_cache=True, strict_engine=False)
    class Build
    class Routine
    class Timeline
    class Location(path, line=1, col=1)
    class VoicecoachError(message, *, location=None, hint='')

``routine`` is a :class:`Routine` or the path of a routine file.  Everything else
(``voicecoach.formats``, ``voicecoach.encode``, ...) is internal and may change.
"""

__version__ = "0.1.0"

# No submodule is named like a public name: importing one (``import voicecoach.pipeline``)
# binds it on the package, and it would then hide the function or class of the same name.


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

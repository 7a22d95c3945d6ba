"""The routine format described for people and editors: a JSON Schema and a starter routine.

The schema is generated from the parser's own key tables (:func:`script.routine_format`), so
a key added there either appears here or stops generation with a clear error; the types of
keys and their words (areas, sides, ...) come from model.py's Enums.  ``check`` stays the
authority: the schema cannot see includes, text lengths or the order of duration units.
"""

from __future__ import annotations

import json
import os
import re
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .engines import AUTO, ENGINES
from .errors import VoicecoachError
from .files import atomic_write
from .model import Area, CountMode, Pressure, Side
from .script import DEFAULT_LIMITS, routine_format
from .vocab import available_languages

__all__ = ["PROGRAM_SCHEMA_FILE", "SCHEMA_FILE", "program_schema", "routine_schema", "schema_text", "starter_routine", "write_new_file"]

SCHEMA_FILE = "routine.schema.json"
"""The name routines point their ``# yaml-language-server: $schema=`` line at."""

# What each key means, for editors' hover text; per-kind entries win over the shared ones.
_DESCRIPTIONS = {
    "routine": "Title of the routine, spoken first. Required in a routine; blocks for include leave it out.",
    "description": "What the routine is for and who it helps (not spoken).",
    "language": "Language of the cues and the voice: a language with a cue vocabulary, or a regional tag of one "
                "(de-AT, en-GB): it speaks the base language's cues with the engine's closest voice.",
    "voice": "Engine voice (see `voicecoach voices`); leave it out for the language's default voice.",
    "rate": "Speech speed multiplier, 0.5 (slow) to 2.0 (fast).",
    "intro": "Spoken after the title, before the first step.",
    "outro": "Spoken after the last step.",
    "steps": "The steps in play order; at least one.",
    "cues": "Cue phrases replacing the language's own, by cue name; {placeholders} as in vocab/en.yaml.",
    "music": "A background track under the whole routine, looped or cut to fit and ducked under speech.",
    "music.file": "The audio file (WAV, MP3, FLAC, OGG or M4A), relative to this file, in its folder or below.",
    "music.volume": "Loudness multiplier on the normalized music, 0 (silent) to 2; default 1.",
    "music.duck": "How far the music goes down under speech, in dB (0 to 40); default 18.",
    "sounds": "Audio files replacing the built-in tones (chime, tick, bell or release, finish), relative to "
              "this file.",
    "reserved": "Reserved for a later feature; accepted and ignored.",
    "say": "Instructions, spoken once before the work starts.",
    "say.say": "Narration, spoken at its natural length.",
    "exercise.exercise": "An exercise: muscles against gentle resistance or holding a position, in reps and sets. "
                         "The value is its spoken title.",
    "massage.massage": "A massage: strokes at a steady tempo. The value is its spoken title.",
    "breathe.breathe": "Paced breathing. The value is its spoken title.",
    "rest.rest": "A pause that announces itself and, before it ends, what comes next.",
    "repeat.repeat": "How many times to play the steps under it.",
    "include.include": "Path of another routine file (relative to this one, in its folder or below) whose steps "
                       "play here.",
    "area": "Face area worked; check pairs each exercise with a massage of the same area.",
    "tip": "Spoken once after the instructions (forehead and eye exercises need one against wrinkling).",
    "cue": "Spoken before each rep's hold.",
    "massage.cue": "A short word spoken on every stroke instead of a tick.",
    "reps": "Repetitions per set.",
    "hold": "Seconds each rep is held; the release cue starts exactly this long after the hold cue.",
    "breathe.hold": "Seconds holding the breath after breathing in.",
    "release": "Relax time after each rep, onset to onset.",
    "sets": "Sets per side.",
    "exercise.rest": "Rest between sets, onset to onset.",
    "sides": "Each side does all sets or strokes: [left, right]; [both] (the default) announces no side.",
    "count": "How each hold is counted: down, up, or none (ticks only).",
    "massage.count": "true speaks stroke numbers instead of ticks (and wins over cue).",
    "stroke": "The motion of one stroke, spoken with the instructions.",
    "strokes": "Strokes per side.",
    "tempo": "Seconds per stroke: stroke k starts exactly (k-1) x tempo after the first.",
    "pressure": "Pressure, spoken with the instructions.",
    "inhale": "Seconds breathing in.",
    "exhale": "Seconds breathing out.",
    "cycles": "Number of breaths.",
}

_NUMBER = r"\d+(\.\d+)?"
# 5s, 1.5s, 2m, 1m30s, 250ms, 1h (units in this order, any case) or a bare number; not zero.
_DURATION_PATTERN = (rf"^(?=.*[1-9])\s*({_NUMBER}\s*|({_NUMBER}\s*[hH]\s*)?({_NUMBER}\s*[mM]\s*)?"
                     rf"({_NUMBER}\s*[sS]\s*)?({_NUMBER}\s*[mM][sS]\s*)?)$")


def _json_number(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


def _words(enum: type) -> list[str]:
    return [member.value for member in enum]


def engine_description() -> str:
    """The ``engine:`` field's description, from the engine registry."""
    choices = [f"{AUTO} (the default: the most natural installed voice for the routine's language)",
               *(f"{spec.name} ({spec.about})" for spec in ENGINES.values())]
    return f"Speech engine: {', '.join(choices[:-1])} or {choices[-1]}. --engine on the command line wins."


def _describe(kind: str, key: str) -> dict[str, str]:
    text = _DESCRIPTIONS.get(f"{kind}.{key}") or _DESCRIPTIONS.get(key)
    if (kind, key) == ("", "engine"):
        text = engine_description()
    if text is None:
        raise ValueError(f"schema.py has no description for {kind}.{key}; add one to _DESCRIPTIONS")
    return {"description": text}


def _value(kind: str, key: str, fmt: dict[str, Any]) -> dict[str, Any]:
    """The schema of one key's value, from the parser's tables and the Enums."""
    if key == "steps":
        return {"$ref": "#/$defs/steps"}
    if key in fmt["durations"]:
        return {"$ref": "#/$defs/duration"}
    if key in fmt["counts"]:
        return {"type": "integer", "minimum": 1, "maximum": fmt["counts"][key]}
    if key == kind:  # the kind word's value is the step's title (or the include path)
        return {"$ref": "#/$defs/name"}
    if key in fmt["text"]:
        return {"type": "string"}
    if key == "area":
        return {"enum": _words(Area)}
    if key == "pressure":
        return {"enum": _words(Pressure)}
    if key == "sides":
        return {"$ref": "#/$defs/sides"}
    if (kind, key) == ("exercise", "count"):
        return {"enum": _words(CountMode)}
    if (kind, key) == ("massage", "count"):
        return {"type": "boolean"}
    raise ValueError(f"schema.py does not know the type of {kind}.{key}; add it to _value")


def _top_value(key: str, fmt: dict[str, Any]) -> dict[str, Any]:
    if key == "steps":
        return {"$ref": "#/$defs/steps"}
    if key == "routine":
        return {"$ref": "#/$defs/name"}
    if key in ("description", "intro", "outro"):
        return {"type": "string"}
    if key == "voice":
        models = [{"type": "string", "pattern": "(" + "|".join(map(_any_case, spec.model_extensions)) + ")$",
                   "description": spec.model_help} for spec in ENGINES.values() if spec.model_extensions]
        return {"anyOf": [{"$ref": "#/$defs/name"}, *models, {"type": "null"}]}
    if key == "engine":
        return {"enum": list(fmt["engines"])}
    if key == "cues":
        return {"type": "object", "additionalProperties": False,
                "properties": {cue: {"$ref": "#/$defs/name", "description": _cue_description(names)}
                               for cue, names in fmt["cues"].items()}}
    if key == "music":
        properties: dict[str, Any] = {}
        for name, limits in fmt["music"].items():
            value = {"$ref": "#/$defs/audio_file"} if limits is None else {
                "type": "number", "minimum": _json_number(limits[0]), "maximum": _json_number(limits[1])}
            properties[name] = {**value, "description": _DESCRIPTIONS[f"music.{name}"]}
        return {"type": "object", "properties": properties, "required": ["file"], "additionalProperties": False}
    if key == "sounds":
        return {"type": "object", "additionalProperties": False,
                "properties": {name: {"$ref": "#/$defs/audio_file"} for name in fmt["sounds"]},
                "not": {"required": ["bell", "release"]}}
    if key == "language":  # suggests only the languages that have a vocabulary
        return {"type": "string", "pattern": fmt["language_pattern"], "examples": list(available_languages())}
    if key == "rate":
        return {"type": "number", "minimum": 0.5, "maximum": 2.0}
    raise ValueError(f"schema.py does not know the type of the top-level key {key}; add it to _top_value")


def _any_case(suffix: str) -> str:
    """A regular expression for ``suffix`` in any case (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in suffix)


def _cue_description(placeholders: tuple[str, ...]) -> str:
    if not placeholders:
        return "A phrase with no placeholders."
    return "A phrase using exactly " + ", ".join(f"{{{name}}}" for name in placeholders) + "."


def routine_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a routine file, as a dict."""
    fmt = routine_format()
    kinds = fmt["kinds"]
    defs: dict[str, Any] = {
        "name": {"type": "string", "pattern": r"\S", "description": "Text that may not be empty."},
        "duration": {
            "description": "A duration: 5s, 1.5s, 2m, 1m30s, 250ms or a number of seconds.",
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": _json_number(DEFAULT_LIMITS.max_duration_s)},
                {"type": "string", "pattern": _DURATION_PATTERN},
            ],
        },
        "sides": {
            "anyOf": [
                {"enum": _words(Side)},
                {"type": "array", "items": {"enum": [w for w in _words(Side) if w != Side.BOTH.value]},
                 "minItems": 1, "uniqueItems": True},
                {"const": [Side.BOTH.value]},
            ],
        },
        "audio_file": {
            "type": "string",
            "pattern": "(" + "|".join(_any_case(e) for e in fmt["audio_extensions"]) + ")$",
            "description": "An audio file (" + ", ".join(e[1:].upper() for e in fmt["audio_extensions"])
                           + "), relative to this file, in its folder or below.",
        },
        "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
        "step": {"oneOf": [{"$ref": f"#/$defs/{kind}"} for kind in kinds]},
    }
    for kind, keys in kinds.items():
        defs[kind] = {
            "type": "object",
            "description": _describe(kind, kind)["description"],
            "properties": {key: {**_value(kind, key, fmt), **_describe(kind, key)} for key in keys},
            "required": [kind, "steps"] if kind == "repeat" else [kind],
            "additionalProperties": False,
        }
    properties = {key: {**_top_value(key, fmt), **_describe("", key)} for key in fmt["top_keys"]}
    for key in fmt["reserved_top_keys"]:
        properties[key] = {"description": _DESCRIPTIONS["reserved"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "voicecoach routine",
        "description": "A facial-fitness routine script that voicecoach compiles into spoken, timed audio. "
                       "`voicecoach check` is the full check; this schema helps editors complete fields.",
        "type": "object",
        "properties": properties,
        "required": ["steps"],
        "additionalProperties": False,
        "$defs": defs,
    }


def schema_text(*, program: bool = False) -> str:
    """The schema as the text ``voicecoach schema`` prints (and scripts/routine.schema.json holds);
    ``program``: the program schema (scripts/programs/program.schema.json)."""
    return json.dumps(program_schema() if program else routine_schema(), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------
# Programs (programs/format.py)

PROGRAM_SCHEMA_FILE = "program.schema.json"
"""The program schema's file name (``scripts/programs/`` holds it beside the programs)."""

_PROGRAM_DESCRIPTIONS = {
    "program": "Title of the program.",
    "description": "What the program is for and who it helps (not spoken).",
    "start": "Its first day, like 2026-12-01; leave it out to start on the day of the first session.",
    "days": "Length in days, rest days included.",
    "schedule": "A cycle of days, repeated until `days`: each a list of routine files (relative to this file, "
                "inside the folder that holds programs/) played as one session, or `rest`.",
    "progress": "What grows once per completed week, for every exercise and massage.",
    "progress.reps": "Reps added per week, like +1.",
    "progress.hold": "Seconds added to each hold per week, like +1s.",
    "progress.strokes": "Strokes added per week, like +2.",
    "progress.limits": "How far each value may grow: {reps: 10, hold: 20s, strokes: 16}.",
    "progress.deload": "Weeks (2 or later) played at the routines' own values, to recover, like [4].",
}


def program_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a program file, from the program parser's tables."""
    from .programs.format import program_format

    fmt = program_format()
    increment = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^\+?\s*\d+$"}]}
    hold = {"anyOf": [{"type": "number", "minimum": 0},
                      {"type": "string", "pattern": r"^\+?" + _DURATION_PATTERN.removeprefix("^")}]}
    routine_file = {"type": "string", "pattern": r"\.[yY][aA]?[mM][lL]$"}
    progress = {
        "reps": increment, "hold": hold, "strokes": increment,
        "limits": {"type": "object", "additionalProperties": False, "properties": {
            "reps": {"type": "integer", "minimum": 1}, "hold": {"$ref": "#/$defs/duration"},
            "strokes": {"type": "integer", "minimum": 1}}},
        "deload": {"anyOf": [{"type": "integer", "minimum": 2}, {"type": "array", "items": {"type": "integer",
                                                                                          "minimum": 2}}]},
    }
    top = {
        "program": {"type": "string", "pattern": r"\S"},
        "description": {"type": "string"},
        "start": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "days": {"type": "integer", "minimum": 1, "maximum": fmt["max_days"]},
        "schedule": {"type": "array", "minItems": 1, "maxItems": fmt["max_cycle"], "items": {"anyOf": [
            {"const": fmt["rest"]}, routine_file,
            {"type": "array", "minItems": 1, "maxItems": fmt["max_routines_per_day"], "items": routine_file}]}},
        "progress": {"type": "object", "additionalProperties": False,
                     "properties": {key: {**progress[key], "description": _PROGRAM_DESCRIPTIONS[f"progress.{key}"]}
                                    for key in fmt["progress_keys"]}},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "voicecoach program",
        "description": "Routines day by day, growing a little each week. `voicecoach program check` is the full "
                       "check; this schema helps editors complete fields.",
        "type": "object",
        "properties": {key: {**top[key], "description": _PROGRAM_DESCRIPTIONS[key]} for key in fmt["top_keys"]},
        "required": ["program", "days", "schedule"],
        "additionalProperties": False,
        "$defs": {"duration": routine_schema()["$defs"]["duration"]},
    }


# ---------------------------------------------------------------------------------------
# The starter routine of `voicecoach new`

_PLAIN_TITLE = re.compile(r"[A-Za-z0-9][\w ,.'()&/-]*")


def _yaml_text(text: str) -> str:
    """``text`` as a YAML scalar: plain when that is safe, else double-quoted."""
    if _PLAIN_TITLE.fullmatch(text) and yaml.safe_load(f"k: {text}") == {"k": text}:  # not yes, 1e3, ...
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def starter_routine(title: str) -> str:
    """A commented starter routine titled ``title`` that documents every field."""
    title = " ".join(title.split())
    if not title:
        raise VoicecoachError("the routine name is empty", hint="give a name, like: voicecoach new \"Evening calm\"")
    template = (resources.files("voicecoach") / "templates" / "starter.yaml").read_text(encoding="utf-8")
    languages = ", ".join(available_languages())  # only languages it can speak cues in
    return (template.replace("__TITLE__", _yaml_text(title)).replace("__SCHEMA__", SCHEMA_FILE)
            .replace("__LANGUAGES__", languages))


def default_file_name(title: str) -> str:
    """``"Evening calm!"`` -> ``evening-calm.yaml``."""
    slug = re.sub(r"[\W_]+", "-", title.lower()).strip("-")
    return f"{slug or 'routine'}.yaml"


def _looks_like_a_path(name: str) -> bool:
    return "/" in name or os.sep in name or name.lower().endswith((".yaml", ".yml"))


def new_routine_target(name: str, out: str | os.PathLike | None) -> tuple[str, Path]:
    """The title and the file of ``voicecoach new NAME [-o OUT]``.

    NAME is a title; a NAME that looks like a path (``sub/evening.yaml``) is the file to write,
    titled after its name (``Evening``).  With ``-o`` too, such a NAME is refused: which is meant?

    >>> new_routine_target("Evening calm", None)
    ('Evening calm', PosixPath('evening-calm.yaml'))
    >>> new_routine_target("sub/evening-calm.yaml", None)
    ('Evening calm', PosixPath('sub/evening-calm.yaml'))
    """
    if not _looks_like_a_path(name):
        return name, Path(out) if out is not None else Path(default_file_name(name))
    if out is not None:
        raise VoicecoachError(f"the name {name!r} looks like a file name, and -o gives the file too",
                              hint=f"give the routine's title as NAME, e.g. voicecoach new \"Evening calm\" -o {out}")
    path = Path(name) if Path(name).suffix else Path(name + ".yaml")
    title = " ".join(re.sub(r"[-_]+", " ", path.stem).split())
    return (title[:1].upper() + title[1:]) or "Routine", path


def write_new_file(path: str | os.PathLike, text: str, *, force: bool = False) -> Path:
    """Write ``text`` atomically, refusing to replace an existing file unless ``force``."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise VoicecoachError(f"{str(target)!r} is a folder", hint="give a file name with -o")
    if target.exists() and not force:
        raise VoicecoachError(f"{str(target)!r} already exists",
                              hint="choose another name with -o, or pass --force to replace it")
    if not folder.is_dir():
        raise VoicecoachError(f"output folder {str(folder)!r} does not exist", hint="create it first")
    try:
        with atomic_write(target) as handle:
            handle.write(text.encode("utf-8"))
    except OSError as exc:
        raise VoicecoachError(f"cannot write {str(target)!r}: {exc.strerror or exc}",
                              hint="check the folder's permissions") from None
    return target

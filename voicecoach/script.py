"""Routine scripts: YAML text -> :class:`~voicecoach.model.Routine`.

Routine files come from users, so every bad input -- binary junk, broken YAML, alias bombs,
misspelled keys, includes that escape the folder -- becomes a :class:`VoicecoachError` that
points at ``path:line:col`` and says how to fix it.  Field problems are collected so that
``check`` shows all of them at once (:class:`RoutineErrors`); problems that make the rest of
the file unreadable (encoding, syntax, tags, size) stop at once.

YAML is only *composed* (text -> nodes with positions); this module turns the nodes into
values itself, accepting the core scalar types only, so no tag can build a Python object.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable

import yaml
from yaml.constructor import SafeConstructor

from .errors import Location, RoutineErrors, VoicecoachError
from .model import (Area, Breathe, CountMode, Exercise, Massage, Music, Pressure, Repeat, Rest, Routine, Say, Side,
                    Sound, Step, Tone)
from .text import MAX_SENTENCE_CHARS, longest_sentence
from .languages import TAG as LANGUAGE_TAG
from .sound import AUDIO_EXTENSIONS
from .engines import ENGINE_CHOICES, model_extensions
from .timing import has_pauses, parse_duration, split_pauses
from .vocab import REQUIRED_PHRASES, phrase_problem

__all__ = ["DEFAULT_LIMITS", "ROUTINE_SUFFIXES", "Limits", "find_routine_files", "is_block_file", "load_block",
           "load_routine", "parse_routine", "resolve_inside", "routine_format"]


@dataclass(frozen=True)
class Limits:
    """Ceilings that keep a hostile or mistaken file from using unbounded time or memory."""

    max_file_bytes: int = 1_000_000
    """Largest routine file read, in bytes (checked before reading it all)."""
    max_yaml_nodes: int = 100_000
    """YAML values per file; an alias counts again every time it is used (alias bombs)."""
    max_include_depth: int = 8
    """How deeply includes may nest."""
    max_steps: int = 5_000
    """Steps once every repeat round and include is expanded (counted, never built)."""
    max_text_chars: int = 2_000
    """Characters per text field, after whitespace is collapsed."""
    max_sentence_chars: int = MAX_SENTENCE_CHARS
    """Characters a text may run without a sentence or clause break (speech engines need pauses)."""
    max_reps: int = 1000
    """Largest ``reps`` of an exercise."""
    max_sets: int = 100
    """Largest ``sets`` of an exercise."""
    max_strokes: int = 1000
    """Largest ``strokes`` of a massage."""
    max_cycles: int = 500
    """Largest ``cycles`` of a breathe step."""
    max_repeat: int = 100
    """Largest ``repeat`` count."""
    max_duration_s: Fraction = Fraction(3600)
    """Longest single duration field, in seconds."""


DEFAULT_LIMITS = Limits()

_KINDS = ("say", "exercise", "massage", "rest", "breathe", "repeat", "include")
# `say` and `rest` are also fields of other kinds, so they name the kind only when alone.
_PRIMARY_KINDS = ("exercise", "massage", "breathe", "repeat", "include")
_FIELDS = {
    "say": {"say"},
    "exercise": {"exercise", "say", "area", "cue", "reps", "hold", "release", "sets", "rest", "sides", "count",
                 "tip"},
    "massage": {"massage", "say", "area", "stroke", "strokes", "tempo", "sides", "count", "cue", "pressure",
                "tip"},
    "rest": {"rest"},
    "breathe": {"breathe", "inhale", "hold", "exhale", "cycles", "say"},
    "repeat": {"repeat", "steps"},
    "include": {"include"},
}
_ALL_FIELDS = set().union(*_FIELDS.values())
_TEXT_FIELDS = ("say", "cue", "tip", "stroke")  # free text besides the names (kind words)
_TOP_KEYS = ("routine", "description", "language", "voice", "rate", "intro", "outro", "engine", "cues", "music",
             "sounds", "steps")
_RESERVED_TOP_KEYS: tuple[str, ...] = ()  # accepted and ignored (none at the moment)
_MUSIC_KEYS = ("file", "volume", "duck")
_MUSIC_RANGES = {"volume": (Fraction(0), Fraction(2)), "duck": (Fraction(0), Fraction(40))}  # duck in dB
# sounds: what each key replaces; 'release' is another name for the bell that rings at release
_SOUND_KEYS = {"chime": Tone.CHIME, "tick": Tone.TICK, "bell": Tone.BELL, "release": Tone.BELL,
               "finish": Tone.FINISH}
_DURATION_ATTRS = {"hold": "hold_s", "release": "release_s", "rest": "rest_s", "tempo": "tempo_s",
                   "inhale": "inhale_s", "exhale": "exhale_s"}
_COUNT_LIMITS = {"reps": "max_reps", "sets": "max_sets", "strokes": "max_strokes", "cycles": "max_cycles",
                 "repeat": "max_repeat"}
_CONTROL_TO_SPACE = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], " ")  # all of category Cc
_LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")  # what PyYAML counts as a new line
_MAX_NESTING = 64  # far beyond any real routine; keeps recursion bounded
_MAX_ERRORS = 200  # a wall of errors helps nobody, and aliases could make millions
_MAX_WORD = 100  # longer values cannot be a duration or an enum word; refused unread
_DURATION_HINT = "write a positive duration like 5s, 1.5s, 2m or 1m30s"
_TOO_LARGE_HINT = "a routine is a short text file; check that this is the right file"
_EMPTY_HINT = "start it with 'routine: Title' and a list of 'steps:'"
_STEP_HINT = "start the step with one of: " + ", ".join(_KINDS)

_YAML = "tag:yaml.org,2002:"
# Implicit tags PyYAML may give a plain scalar that we read as text (dates, '=', '<<').
_TEXT_TAGS = {_YAML + "str", _YAML + "timestamp", _YAML + "value", _YAML + "merge"}
_CORE = SafeConstructor()  # only its int/float/bool parsers are used: they build no objects
_BAD = object()  # a field value that already produced an error


class _TooManyErrors(Exception):
    """Stops a parse that has already found enough problems to report."""


@dataclass
class _Node:
    """A converted YAML value with where it was written."""

    value: Any  # str/int/float/bool/None, list[_Node], or dict[str, tuple[Location, _Node]]
    loc: Location
    raw: str = ""  # source text of a scalar, for messages

    def describe(self) -> str:
        if isinstance(self.value, dict):
            return "a mapping"
        if isinstance(self.value, list):
            return "a list"
        return _show(self.raw)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _show(text: str) -> str:
    return repr(_short(text))


def _clean(text: str) -> str:
    """Control characters and line breaks become spaces; runs of whitespace become one."""
    return " ".join(text.translate(_CONTROL_TO_SPACE).split())


def _line_col(text: str, index: int) -> tuple[int, int]:
    line, start = 1, 0
    for match in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, match.end()
    return line, index - start + 1


def _suggest(word: str, choices: list[str] | tuple[str, ...], used: Iterable[str] = ()) -> str:
    """The hint for an unknown key: the closest valid key not already in the mapping (a key
    written twice is an error of its own), else the closest at all, else the list."""
    taken = set(used)
    close = (difflib.get_close_matches(word, [c for c in choices if c not in taken], n=1, cutoff=0.6)
             or difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6))
    if close:
        return f"did you mean '{close[0]}'?"
    return "valid keys are: " + ", ".join(choices)


# ---------------------------------------------------------------------------------------
# Bytes -> text -> YAML nodes: each problem here stops at once.


def _decode(data: str | bytes, path: str, limits: Limits) -> str:
    def fail(message: str, hint: str, line: int = 1, col: int = 1) -> VoicecoachError:
        return VoicecoachError(message, location=Location(path, line, col), hint=hint)

    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > limits.max_file_bytes:
        raise fail(f"the file is {size} bytes, more than the limit of {limits.max_file_bytes}", _TOO_LARGE_HINT)
    if isinstance(data, bytes):
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise fail("the file is UTF-16, not UTF-8", "save the file as UTF-8")
        if b"\0" in data:
            raise fail("this is a binary file, not a YAML routine", "choose the .yaml routine file")
        data = data.removeprefix(b"\xef\xbb\xbf")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            prefix = data[: exc.start].decode("utf-8")  # valid up to the first bad byte
            raise fail(f"byte 0x{data[exc.start]:02X} is not valid UTF-8", "save the file as UTF-8",
                       *_line_col(prefix, len(prefix))) from None
    else:
        text = data.removeprefix("\ufeff")
        if "\0" in text:
            raise fail("this is a binary file, not a YAML routine", "choose the .yaml routine file")
    if not text.strip():
        raise fail("the routine file is empty", _EMPTY_HINT)
    # YAML forbids tabs in indentation but reports them obscurely; say it plainly.
    for line_no, line in enumerate(_LINE_BREAK.split(text), 1):
        body = line.lstrip(" \t")
        tab = line.find("\t", 0, len(line) - len(body))
        if body and tab >= 0:
            raise fail("tab used for indentation", "indent with spaces", line_no, tab + 1)
    return text


def _compose(text: str, path: str) -> yaml.Node | None:
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # already checks for characters YAML forbids
        if not loader.check_node():
            return None
        node = loader.get_node()
        if not loader.check_event(yaml.StreamEndEvent):
            mark = loader.peek_event().start_mark
            raise VoicecoachError("the file holds more than one YAML document",
                                  location=Location(path, mark.line + 1, mark.column + 1),
                                  hint="remove the '---' line; a routine is one document")
        return node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
        message = exc.problem or exc.context or "invalid YAML"
        context = exc.context_mark
        if exc.problem and exc.context and context and context.line != mark.line:
            message += f", {exc.context} at line {context.line + 1}"  # e.g. where a quote opened
        raise VoicecoachError(message, location=where,
                              hint="check the indentation and quoting near here") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow in text
        raise VoicecoachError(f"the file contains the character U+{exc.character:04X}, "
                              "which YAML does not allow", location=Location(path, *_line_col(text, exc.position)),
                              hint="remove it; a routine is plain text") from None
    except yaml.YAMLError as exc:
        raise VoicecoachError(f"invalid YAML: {exc}", location=Location(path),
                              hint="check the indentation and quoting") from None
    except RecursionError:
        raise VoicecoachError("the YAML is nested too deeply", location=Location(path),
                              hint="flatten the lists and mappings") from None
    finally:
        if loader is not None:
            loader.dispose()


class _Converter:
    """YAML nodes -> :class:`_Node` values, counting every visit against the node budget."""

    def __init__(self, path: str, limits: Limits) -> None:
        self.path = path
        self.limit = limits.max_yaml_nodes
        self.count = 0
        self.active: set[int] = set()  # nodes on the current path, to catch recursive aliases

    def loc(self, node: yaml.Node) -> Location:
        return Location(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: yaml.Node, message: str, hint: str) -> VoicecoachError:
        return VoicecoachError(message, location=self.loc(node), hint=hint)

    def convert(self, node: yaml.Node, depth: int = 0) -> _Node:
        self.count += 1
        if self.count > self.limit:
            raise self.fail(node, f"the YAML expands to more than the limit of {self.limit} values",
                            "aliases (*name) count every time they are used; write fewer of them")
        if depth > _MAX_NESTING:
            raise self.fail(node, f"the YAML is nested more than {_MAX_NESTING} levels deep",
                            "flatten the lists and mappings")
        if isinstance(node, yaml.ScalarNode):
            return _Node(self.scalar(node), self.loc(node), node.value)
        if node.tag not in (_YAML + "seq", _YAML + "map"):
            raise self.tag_error(node)
        if id(node) in self.active:
            raise self.fail(node, "an alias refers to a value that contains it", "remove the recursive alias")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return _Node([self.convert(item, depth + 1) for item in node.value], self.loc(node))
            entries: dict[str, tuple[Location, _Node]] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node, "a key must be a plain word", "write keys like 'hold:'")
                key = self.convert(key_node, depth + 1)
                if key.raw in entries:
                    raise self.fail(key_node, f"duplicate key {_show(key.raw)}",
                                    f"remove one of them; the first is on line {entries[key.raw][0].line}")
                entries[key.raw] = (key.loc, self.convert(value_node, depth + 1))
            return _Node(entries, self.loc(node))
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag in _TEXT_TAGS:
            return node.value
        if tag == _YAML + "null":
            return None
        if tag == _YAML + "bool":
            return _CORE.construct_yaml_bool(node)
        if tag == _YAML + "float":
            return _CORE.construct_yaml_float(node)
        if tag == _YAML + "int":
            try:
                return _CORE.construct_yaml_int(node)
            except ValueError:  # more digits than Python converts
                raise self.fail(node, f"the number {_show(node.value)} is too long",
                                "use a smaller number") from None
        raise self.tag_error(node)

    def tag_error(self, node: yaml.Node) -> VoicecoachError:
        tag = node.tag.replace(_YAML, "!!")
        return self.fail(node, "YAML tags are not allowed",
                         f"remove the '{tag}' tag; a routine holds only text, numbers and lists")


# ---------------------------------------------------------------------------------------
# Values -> Routine: problems are collected, one per bad field.


class _Parser:
    """One load: the shared error list, include cache and include chain."""

    def __init__(self, limits: Limits, root: str | None) -> None:
        self.limits = limits
        self.root = root
        self.errors: list[VoicecoachError] = []
        self.chain: list[str] = []  # real paths of the files being read, for include cycles
        self.depth = 0
        self.cache: dict[tuple[str, int], tuple[list[Step], int] | None] = {}

    def err(self, loc: Location, message: str, hint: str) -> None:
        self.errors.append(VoicecoachError(message, location=loc, hint=hint))
        if len(self.errors) >= _MAX_ERRORS:
            raise _TooManyErrors

    def bad(self, loc: Location, message: str, hint: str) -> Any:
        """Record a bad value; callers return the marker in place of the value."""
        self.err(loc, message, hint)
        return _BAD

    # -- files --------------------------------------------------------------------------

    def file(self, data: str | bytes, path: str, folder: str | None, *,
             top: bool) -> tuple[dict[str, Any], list[Step], int] | None:
        """One file's top-level settings, steps and expanded step count (None after errors)."""
        text = _decode(data, path, self.limits)
        node = _compose(text, path)
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _YAML + "null"):
            raise VoicecoachError("the routine file is empty", location=Location(path), hint=_EMPTY_HINT)
        root = _Converter(path, self.limits).convert(node)
        if not isinstance(root.value, dict):
            raise VoicecoachError(f"expected 'routine:' and 'steps:' at the top level, found {root.describe()}",
                                  location=root.loc, hint="start the file with 'routine: Title'")
        settings: dict[str, Any] = {}
        steps = None
        misspelled = set()  # a misspelled 'steps:' is not also reported as missing
        for key, (key_loc, value) in root.value.items():
            if key in _RESERVED_TOP_KEYS:
                continue
            if key not in _TOP_KEYS:
                misspelled.update(difflib.get_close_matches(key, _TOP_KEYS, n=1, cutoff=0.6))
                self.err(key_loc, f"unknown key {_show(key)} at the top level", _suggest(key, _TOP_KEYS, root.value))
            elif key == "steps":
                steps = self.steps(value, key, folder)
            else:
                settings[key] = self.setting(key, value, folder)
                settings[key + "_loc"] = key_loc
        if top and "routine" not in root.value and "routine" not in misspelled:  # blocks need no title
            self.err(root.loc, "the routine has no title", "add 'routine: Title' at the top")
        if "steps" not in root.value and "steps" not in misspelled:
            self.err(root.loc, "the routine has no steps", "add 'steps:' with a list of steps")
        return None if steps is None else (settings, *steps)

    def include(self, node: _Node, folder: str | None) -> tuple[list[Step], int] | None:
        rel = self.text("include", node, name=True)
        if rel is _BAD:
            return None
        if folder is None or self.root is None:
            return self.err(node.loc, "cannot include files: this routine was not read from a file",
                            "load it with load_routine(path), or pass base_dir")
        try:
            real = os.fspath(resolve_inside(folder, self.root, rel, node.loc, key="include"))
        except VoicecoachError as exc:
            return self.err(exc.location or node.loc, exc.message, exc.hint)
        joined = os.path.join(folder, rel)
        if real in self.chain:
            cycle = [os.path.relpath(p, self.root) for p in self.chain[self.chain.index(real):]]
            return self.err(node.loc, "include cycle: " + " -> ".join(cycle + [cycle[0]]),
                            "remove one of these includes")
        if self.depth >= self.limits.max_include_depth:
            return self.err(node.loc, f"includes are nested more than {self.limits.max_include_depth} levels "
                            "deep", "include the file from a higher level")
        if not os.path.isfile(real):
            what = "is a folder" if os.path.isdir(real) else "was not found"
            return self.err(node.loc, f"include file {_show(rel)} {what}",
                            "the path is relative to the folder of the file that includes it")
        key = (real, self.depth)  # each file parsed once per depth, so fan-out cannot explode
        if key not in self.cache:
            display = os.path.normpath(os.path.join(os.path.dirname(node.loc.path), rel))
            self.cache[key] = None
            self.chain.append(real)
            self.depth += 1
            try:
                data = _read(real, display, self.limits)
                parsed = self.file(data, display, os.path.dirname(joined), top=False)
                self.cache[key] = None if parsed is None else parsed[1:]
            except VoicecoachError as exc:  # a syntax-level stop: reported with the includer's problems
                self.errors.append(exc)
            finally:
                self.chain.pop()
                self.depth -= 1
        return self.cache[key]

    # -- top-level settings -------------------------------------------------------------

    def setting(self, key: str, node: _Node, folder: str | None = None) -> Any:
        if key == "routine":
            return self.text(key, node, name=True)
        if key == "description":  # not spoken
            return self.text(key, node, spoken=False)
        if key in ("intro", "outro"):
            return self.text(key, node)
        if key == "voice":  # null: the language's default voice
            if node.value is None:
                return None
            # a voice naming an engine's model file (Piper's .onnx) is resolved like an include
            if isinstance(node.value, str) and node.value.strip().lower().endswith(model_extensions()):
                return self.file_path("voice", node, folder, model_extensions())
            return self.text(key, node, name=True)
        if self.missing(key, node):
            return _BAD
        if key == "engine":
            return self.word(key, node, ENGINE_CHOICES)
        if key == "cues":
            return self.cues(node)
        if key == "music":
            return self.music(node, folder)
        if key == "sounds":
            return self.sounds(node, folder)
        if key == "language":
            if not isinstance(node.value, str) or not LANGUAGE_TAG.match(node.value.strip()):
                return self.bad(node.loc, f"language: {node.describe()} is not a language code",
                                "write a short code like en, de or pt-BR")
            return node.value.strip()
        value = node.value  # rate
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self.bad(node.loc, f"rate: expected a number, got {node.describe()}",
                            "write a number like 1.0 or 0.8")
        if not 0.5 <= value <= 2.0:  # also refuses nan
            return self.bad(node.loc, f"rate: {_short(node.raw)} is outside 0.5 to 2.0",
                            "use a speed between 0.5 (slow) and 2.0 (fast)")
        return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)

    def cues(self, node: _Node) -> Any:
        """``cues:``: phrases replacing the vocabulary's, each checked like a vocabulary's."""
        if not isinstance(node.value, dict):
            return self.bad(node.loc, f"cues: expected a mapping of cue names to phrases, got {node.describe()}",
                            "write one cue per line under 'cues:', like 'hold: Hold it there.'")
        cues = []
        before = len(self.errors)
        for key, (key_loc, value) in node.value.items():
            if key not in REQUIRED_PHRASES:
                self.err(key_loc, f"unknown cue {_show(key)}", _suggest(key, tuple(REQUIRED_PHRASES), node.value))
                continue
            text = self.text(f"cues: {key}", value)
            if text is _BAD:
                continue
            problem = phrase_problem(key, text)
            if problem is not None:
                self.err(value.loc, problem, "see voicecoach/vocab/en.yaml for each cue's placeholders")
                continue
            cues.append((key, text))
        return _BAD if len(self.errors) > before else tuple(cues)

    def music(self, node: _Node, folder: str | None) -> Any:
        """``music: {file, volume, duck}``."""
        entries = self.mapping("music", node, _MUSIC_KEYS, "{file: calm.mp3, volume: 1.0, duck: 18}")
        if entries is _BAD:
            return _BAD
        if "file" not in entries:
            return self.bad(node.loc, "music needs 'file'", "write the audio file's path: music: {file: calm.mp3}")
        before = len(self.errors)
        file_loc, file_node = entries["file"]
        path = self.file_path("music file", file_node, folder, AUDIO_EXTENSIONS)
        numbers = {attr: self.number(f"music {key}", entries[key][1], *_MUSIC_RANGES[key])
                   for key, attr in (("volume", "volume"), ("duck", "duck_db")) if key in entries}
        if len(self.errors) > before:
            return _BAD
        return Music(file=path, loc=file_loc, **numbers)

    def sounds(self, node: _Node, folder: str | None) -> Any:
        """``sounds:``: tone name -> audio file replacing it."""
        entries = self.mapping("sounds", node, tuple(_SOUND_KEYS), "{chime: bowl.wav, tick: click.wav}")
        if entries is _BAD:
            return _BAD
        if "bell" in entries and "release" in entries:
            return self.bad(entries["release"][0], "sounds: 'release' and 'bell' are the same sound",
                            "keep one of them")
        sounds = []
        for key, (key_loc, value) in entries.items():
            path = self.file_path(f"sound {key}", value, folder, AUDIO_EXTENSIONS)
            if path is not _BAD:
                sounds.append(Sound(tone=_SOUND_KEYS[key], file=path, loc=value.loc))
        return _BAD if len(sounds) < len(entries) else tuple(sounds)

    def mapping(self, key: str, node: _Node, allowed: tuple[str, ...], example: str) -> Any:
        """The entries of a mapping whose keys must be among ``allowed``."""
        if not isinstance(node.value, dict):
            return self.bad(node.loc, f"{key}: expected a mapping, got {node.describe()}",
                            f"write it like {key}: {example}")
        before = len(self.errors)
        for name, (key_loc, _) in node.value.items():
            if name not in allowed:
                self.err(key_loc, f"unknown key {_show(name)} in {key}", _suggest(name, allowed, node.value))
        return _BAD if len(self.errors) > before else node.value

    def file_path(self, key: str, node: _Node, folder: str | None, extensions: tuple[str, ...]) -> Any:
        """A file the routine names: inside its folder (like an include), existing, of a known type.

        A routine not read from a file keeps the path as written; using the file then fails.
        """
        rel = self.text(key, node, name=True, spoken=False)
        if rel is _BAD:
            return _BAD
        if not rel.lower().endswith(extensions):
            kinds = [e[1:].upper() for e in extensions]
            kind = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
            return self.bad(node.loc, f"{key} {_show(rel)} is not a {kind} file",
                            "name a file with one of these extensions: " + ", ".join(extensions))
        if folder is None or self.root is None:
            return rel
        try:
            real = resolve_inside(folder, self.root, rel, node.loc, key=key)
        except VoicecoachError as exc:
            return self.bad(exc.location or node.loc, exc.message, exc.hint)
        if not real.is_file():
            what = "is a folder" if real.is_dir() else "was not found"
            return self.bad(node.loc, f"{key} {_show(rel)} {what}", "the path is relative to the routine's folder")
        return os.fspath(real)

    def word(self, key: str, node: _Node, allowed: tuple[str, ...]) -> Any:
        word = node.value.strip().lower() if isinstance(node.value, str) and len(node.raw) <= _MAX_WORD else None
        if word not in allowed:
            return self.bad(node.loc, f"unknown {key} {node.describe()}", "use one of: " + ", ".join(allowed))
        return word

    def number(self, key: str, node: _Node, low: Fraction, high: Fraction) -> Any:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self.bad(node.loc, f"{key}: expected a number, got {node.describe()}",
                            f"write a number from {low} to {high}")
        if not low <= value <= high:  # also refuses nan
            return self.bad(node.loc, f"{key}: {_short(node.raw)} is outside {low} to {high}",
                            f"use a number from {low} to {high}")
        return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)

    # -- steps --------------------------------------------------------------------------

    def steps(self, node: _Node, key: str, folder: str | None) -> tuple[list[Step], int] | None:
        """A list of steps with includes flattened in, and how many steps it expands to."""
        if self.missing(key, node):
            return None
        if not isinstance(node.value, list):
            return self.err(node.loc, f"{key}: expected a list of steps, got {node.describe()}",
                            "write each step on its own line starting with '- '")
        if not node.value:
            return self.err(node.loc, f"{key}: the list of steps is empty", "add at least one step")
        out: list[Step] = []
        total = 0
        for item in node.value:
            parsed = self.step(item, folder)
            if parsed is None:
                continue
            steps, count = parsed
            # Counted, never expanded: nested repeats and includes multiply.
            if total + count > self.limits.max_steps:
                return self.err(item.loc, f"the routine has more than the limit of {self.limits.max_steps} "
                                "steps (counting every repeat round and included step)",
                                "use fewer repeats or split the routine into several files")
            out.extend(steps)
            total += count
        return out, total

    def step(self, node: _Node, folder: str | None) -> tuple[list[Step], int] | None:
        if not isinstance(node.value, dict):
            return self.err(node.loc, f"a step must be a mapping like 'say: Hello', got {node.describe()}",
                            _STEP_HINT)
        entries = node.value
        kind = next((k for k in entries if k in _PRIMARY_KINDS), None)
        kind = kind or ("rest" if "rest" in entries else "say" if "say" in entries else None)
        if kind is None:
            for key, (key_loc, _) in entries.items():
                close = difflib.get_close_matches(key, _KINDS, n=1, cutoff=0.6)
                if close and key not in _ALL_FIELDS:
                    return self.err(key_loc, f"unknown step kind {_show(key)}", f"did you mean '{close[0]}'?")
            return self.err(node.loc, "this step has no kind", _STEP_HINT)
        for key, (key_loc, _) in entries.items():
            if key in _KINDS and key not in _FIELDS[kind]:
                return self.err(key_loc, f"a step has both '{kind}' and '{key}'", "split it into two steps")
        before = len(self.errors)
        for key, (key_loc, _) in entries.items():
            if key not in _FIELDS[kind]:
                others = sorted(_FIELDS[kind] - {kind})
                hint = _suggest(key, others, entries) if others else f"a '{kind}' step takes no other keys; remove it"
                self.err(key_loc, f"unknown key {_show(key)} in {kind}", hint)
        kind_loc, kind_node = entries[kind]
        if kind == "include":
            return None if len(self.errors) > before else self.include(kind_node, folder)
        if kind == "repeat":
            times = self.integer(kind, kind_node)
            inner = None
            if "steps" in entries:
                inner = self.steps(entries["steps"][1], "steps", folder)
            else:
                self.err(kind_loc, "repeat needs 'steps'",
                         "add 'steps:' under the repeat with the steps to repeat")
            if times is _BAD or inner is None or len(self.errors) > before:
                return None
            return [Repeat(times, tuple(inner[0]), kind_loc)], times * inner[1]
        if kind == "say":
            text = self.text(kind, kind_node, name=True)
            return None if text is _BAD else ([Say(text, kind_loc)], 1)
        if kind == "rest":
            seconds = self.duration(kind, kind_node)
            return None if seconds is _BAD else ([Rest(seconds, kind_loc, locs={kind: kind_loc})], 1)
        fields = {"name": self.text(kind, kind_node, name=True)}
        for key, (_, value) in entries.items():
            if key != kind and key in _FIELDS[kind]:
                fields[_DURATION_ATTRS.get(key, key)] = self.field(kind, key, value)
        if any(value is _BAD for value in fields.values()) or len(self.errors) > before:
            return None
        locs = {key: key_loc for key, (key_loc, _) in entries.items()}
        cls = {"exercise": Exercise, "massage": Massage, "breathe": Breathe}[kind]
        return [cls(loc=kind_loc, locs=locs, **fields)], 1

    def field(self, kind: str, key: str, node: _Node) -> Any:
        if key in _TEXT_FIELDS:
            return self.text(key, node)
        if key in _DURATION_ATTRS:
            return self.duration(key, node)
        if key in _COUNT_LIMITS:
            return self.integer(key, node)
        if key == "sides":
            return self.sides(node)
        if key == "area":
            return self.choice(key, node, Area)
        if key == "pressure":
            return self.choice(key, node, Pressure)
        if kind == "exercise":  # count: a mode for exercises, on/off for massages
            return self.choice(key, node, CountMode)
        if self.missing(key, node):
            return _BAD
        if not isinstance(node.value, bool):
            return self.bad(node.loc, f"count: expected true or false, got {node.describe()}",
                            "write 'count: true' to speak stroke numbers")
        return node.value

    # -- values -------------------------------------------------------------------------

    def missing(self, key: str, node: _Node) -> bool:
        if node.value is None:
            self.err(node.loc, f"'{key}' has no value", f"write a value after '{key}:' or remove the line")
            return True
        return False

    def text(self, key: str, node: _Node, *, name: bool = False, spoken: bool = True) -> Any:
        if self.missing(key, node):
            return _BAD
        if isinstance(node.value, dict) and key in _KINDS:  # the fields indented under the name
            return self.bad(node.loc, f"{key}: expected text, got a mapping",
                            f"write the other fields at the same indentation as '{key}:', not under it")
        if not isinstance(node.value, str):
            hint = f'put it in quotes: {key}: "{_short(node.raw)}"' if node.raw else "write the text on one line"
            return self.bad(node.loc, f"{key}: expected text, got {node.describe()}", hint)
        # An alias may reuse one huge string many times: refuse it before doing any work on it.
        text = _clean(node.value) if len(node.value) <= 4 * self.limits.max_text_chars else node.value
        if name and not text:
            return self.bad(node.loc, f"{key}: the text is empty", f"write something after '{key}:'")
        if len(text) > self.limits.max_text_chars:
            return self.bad(node.loc, f"{key}: the text is {len(text)} characters, more than the limit of "
                            f"{self.limits.max_text_chars}", "shorten it or split it over several steps")
        run = longest_sentence(text) if spoken else 0
        if run > self.limits.max_sentence_chars:
            return self.bad(node.loc, f"{key}: a sentence runs {run} characters without a break, more than the "
                            f"limit of {self.limits.max_sentence_chars}",
                            "end sentences with '.', '?' or '!', or break them with commas")
        if spoken and has_pauses(text):
            if name and key != "say":  # a say step's text must not be empty, but it is narration
                return self.bad(node.loc, f"{key}: a name cannot hold a pause",
                                "put [pause ...] in spoken text such as 'say:', not in names")
            try:
                split_pauses(text)
            except ValueError as exc:
                return self.bad(node.loc, f"{key}: {exc}", "write a pause like [pause 2s] or [pause 500ms]")
        return text

    def integer(self, key: str, node: _Node) -> Any:
        if self.missing(key, node):
            return _BAD
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int):
            return self.bad(node.loc, f"{key}: expected a whole number, got {node.describe()}",
                            "write a number like 3")
        if value < 1:
            return self.bad(node.loc, f"{key}: must be at least 1, got {_short(node.raw)}", "use 1 or more")
        limit = getattr(self.limits, _COUNT_LIMITS[key])
        if value > limit:
            return self.bad(node.loc, f"{key}: {_short(node.raw)} is more than the limit of {limit}",
                            f"use at most {limit}")
        return value

    def duration(self, key: str, node: _Node) -> Any:
        if self.missing(key, node):
            return _BAD
        if isinstance(node.value, (dict, list)) or len(node.raw) > _MAX_WORD:
            return self.bad(node.loc, f"{key}: expected a duration, got {node.describe()}", _DURATION_HINT)
        try:
            seconds = parse_duration(node.value)
        except (ValueError, OverflowError, ZeroDivisionError) as exc:
            reason = str(exc)
            return self.bad(node.loc, f"{key}: {reason}", _DURATION_HINT)
        if seconds <= 0:
            return self.bad(node.loc, f"{key}: must be longer than zero, got {_short(node.raw)}",
                            _DURATION_HINT)
        limit = self.limits.max_duration_s
        if seconds > limit:
            return self.bad(node.loc, f"{key}: {_short(node.raw)} is more than the limit of {limit} seconds",
                            "use a shorter duration")
        return seconds

    def choice(self, key: str, node: _Node, enum: type) -> Any:
        if self.missing(key, node):
            return _BAD
        allowed = [member.value for member in enum]
        if isinstance(node.value, (dict, list)) or len(node.raw) > _MAX_WORD:
            return self.bad(node.loc, f"{key}: expected one word, got {node.describe()}",
                            "use one of: " + ", ".join(allowed))
        word = node.value.strip().lower() if isinstance(node.value, str) else None
        if word not in allowed:
            return self.bad(node.loc, f"unknown {key} {node.describe()}", "use one of: " + ", ".join(allowed))
        return enum(word)

    def sides(self, node: _Node) -> Any:
        if self.missing("sides", node):
            return _BAD
        items = node.value if isinstance(node.value, list) else [node]  # `sides: left` is one side
        if not items:
            return self.bad(node.loc, "sides: the list is empty",
                            "write [left, right] or [both], or remove the line")
        sides: list[Side] = []
        for item in items:
            side = self.choice("side", item, Side)
            if side is _BAD:
                return _BAD
            if side in sides:
                return self.bad(item.loc, f"side '{side.value}' is listed twice", "list each side once")
            if sides and Side.BOTH in (side, sides[0]):
                return self.bad(item.loc, "'both' cannot be combined with left or right",
                                "write [left, right] or [both]")
            sides.append(side)
        return tuple(sides)


def resolve_inside(base_dir: str | os.PathLike, root_dir: str | os.PathLike, relative: str, location: Location,
                   *, key: str = "include") -> Path:
    """The real path of ``relative``, written in a file in ``base_dir``, if it stays inside ``root_dir``.

    For every path a routine names (``include``, sound files): absolute paths, ``..`` that
    climbs out and symlinks that point out are refused with a :class:`VoicecoachError` at
    ``location`` (messages name ``key``).  Every link is resolved before the check, so a link
    inside the folder that leads inside is fine.  Whether the file exists is not checked.
    """
    if "\0" in relative:
        raise VoicecoachError(f"{key} path {_show(relative)} contains a NUL character", location=location,
                              hint="write a plain relative path")
    if os.path.isabs(relative):
        raise VoicecoachError(f"{key} path {_show(relative)} is absolute", location=location,
                              hint="write the path relative to this file's folder")
    root = os.path.realpath(root_dir)
    real = os.path.realpath(os.path.join(base_dir, relative))  # symlinks resolved: a link cannot lead outside
    if os.path.commonpath([root, real]) != root:
        files = "included files" if key == "include" else f"{key} files"
        raise VoicecoachError(f"{key} {_show(relative)} is outside the routine's folder", location=location,
                              hint=f"keep {files} in the main routine's folder or below it")
    return Path(real)


def top_level_keys(path: str | os.PathLike) -> frozenset[str] | None:
    """The keys of a YAML file's top-level mapping, ``None`` if it is not one or unreadable.

    Only composed (never constructed) and size-limited: for telling routines, blocks and
    programs apart before loading them, which then reports any real problem.  Remembered
    per file version (an export asks "block?" and "program?" of every file).
    """
    try:
        info = os.stat(path)
    except OSError:
        return None
    if info.st_size > DEFAULT_LIMITS.max_file_bytes:
        return None
    return _top_level_keys(os.path.realpath(path), info.st_size, info.st_mtime_ns, info.st_ino)


_EVENT_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML has it (its wheels do): telling files apart reads only events,
so it needs none of the pure loader's marks or messages, at a tenth of the time."""


@functools.lru_cache(maxsize=256)
def _top_level_keys(path: str, size: int, mtime_ns: int, inode: int) -> frozenset[str] | None:
    try:
        with open(path, "rb") as handle:
            return _mapping_keys(handle.read().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _mapping_keys(text: str) -> frozenset[str] | None:
    """The scalar keys of a one-document stream's top-level mapping, from the parser's events
    (nothing is composed: no recursion however deep the nesting); None if it is not one."""
    parser = _EVENT_PARSER(text)
    try:
        events = iter(parser.get_event, None)
        kinds = [type(next(events)) for _ in range(3)]
        if kinds != [yaml.StreamStartEvent, yaml.DocumentStartEvent, yaml.MappingStartEvent]:
            return None
        keys: set[str] = set()
        depth, is_key = 0, True  # depth below the top mapping; is the next top-level node a key?
        for event in events:
            if depth == 0 and isinstance(event, yaml.MappingEndEvent):
                break
            if depth == 0 and is_key and isinstance(event, yaml.ScalarEvent):
                keys.add(event.value)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if depth == 0:  # a top-level node is complete
                is_key = not is_key
        if [type(next(events)) for _ in range(2)] != [yaml.DocumentEndEvent, yaml.StreamEndEvent]:
            return None  # more than one document: not a routine, block or program
        return frozenset(keys)
    except StopIteration:
        return None
    finally:
        parser.dispose()


def _read(path: str, display: str, limits: Limits) -> bytes:
    """The file's bytes, refusing a too-large file before reading it."""
    where = Location(display)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise VoicecoachError("this is a folder, not a routine file", location=where,
                                  hint="give the path of a .yaml routine file")
        if info.st_size > limits.max_file_bytes:
            raise VoicecoachError(f"the file is {info.st_size} bytes, more than the limit of "
                                  f"{limits.max_file_bytes}", location=where, hint=_TOO_LARGE_HINT)
        with open(path, "rb") as handle:
            return handle.read(limits.max_file_bytes + 1)  # a special file may not know its size
    except FileNotFoundError:
        raise VoicecoachError("routine file not found", location=where, hint="check the path") from None
    except OSError as exc:
        raise VoicecoachError(f"cannot read the file: {exc.strerror or exc}", location=where,
                              hint="check the path and its permissions") from None


def _parse(data: str | bytes, path: str, base_dir: Path | None, limits: Limits, real: str | None) -> Routine:
    folder = None if base_dir is None else os.fspath(base_dir)
    parser = _Parser(limits, None if folder is None else os.path.realpath(folder))
    if real is not None:
        parser.chain.append(real)
    try:
        parsed = parser.file(data, path, folder, top=True)
    except _TooManyErrors:
        parsed = None
    if parser.errors:
        raise parser.errors[0] if len(parser.errors) == 1 else RoutineErrors(parser.errors)
    assert parsed is not None  # no steps without an error
    settings, steps, _ = parsed
    return Routine(
        title=settings["routine"],
        steps=tuple(steps),
        path=path,
        description=settings.get("description", ""),
        language=settings.get("language", "en"),
        voice=settings.get("voice"),
        rate=settings.get("rate", Fraction(1)),
        intro=settings.get("intro", ""),
        outro=settings.get("outro", ""),
        loc=settings["routine_loc"],
        engine=settings.get("engine"),
        cues=settings.get("cues", ()),
        music=settings.get("music"),
        sounds=settings.get("sounds", ()),
        locs={key[:-4]: value for key, value in settings.items() if key.endswith("_loc")},
    )


def read_yaml(path: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS) -> "Node | None":
    """A YAML file's value with positions, read safely (the toolkit below, in one call); ``None`` for
    an empty document.

    Raises :class:`VoicecoachError` at ``path:line:col`` for anything unreadable.
    """
    display = os.fspath(path)
    text = _decode(_read(display, display, limits), display, limits)
    node = _compose(text, display)
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _YAML + "null"):
        return None
    return _Converter(display, limits).convert(node)


def parse_routine(text_or_bytes: str | bytes, *, path: str = "<routine>", base_dir: Path | None = None,
                  limits: Limits = DEFAULT_LIMITS) -> Routine:
    """Parse routine text; ``path`` names it in messages, ``base_dir`` is where includes live.

    Without ``base_dir`` the routine may not include files.  Raises :class:`VoicecoachError`
    for one problem and :class:`RoutineErrors` for several.
    """
    return _parse(text_or_bytes, path, base_dir, limits, None)


def load_routine(path: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS) -> Routine:
    """Read and parse a routine file; includes may reach files in its folder and below.

    A file that is not a valid routine raises :class:`~voicecoach.errors.RoutineErrors`
    (a :class:`~voicecoach.errors.VoicecoachError`) that names each problem's line.

    >>> routine = load_routine("scripts/morning.yaml")
    >>> routine.title
    'Morning wake-up'
    """
    display = os.fspath(path)
    data = _read(display, display, limits)
    return _parse(data, display, Path(display).parent, limits, os.path.realpath(display))


def load_block(path: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS) -> tuple[Step, ...]:
    """Read and check an include-only block (steps, no title): its steps, as an include gets them.

    Raises like :func:`load_routine`; ``check`` uses it so a block is checked, not refused for
    having no title.
    """
    display = os.fspath(path)
    data = _read(display, display, limits)
    parser = _Parser(limits, os.path.realpath(Path(display).parent))
    parser.chain.append(os.path.realpath(display))
    try:
        parsed = parser.file(data, display, os.fspath(Path(display).parent), top=False)
    except _TooManyErrors:
        parsed = None
    if parser.errors:
        raise parser.errors[0] if len(parser.errors) == 1 else RoutineErrors(parser.errors)
    assert parsed is not None  # no steps without an error
    return tuple(parsed[1])


# ---------------------------------------------------------------------------------------
# The parsing toolkit, public for the YAML formats built on the routine's (programs/format.py):
# the same size limits, locations and error collection.

BAD = _BAD
"""A field value that already produced an error: parsers return it in place of the value."""
TooManyErrors = _TooManyErrors
"""Raised by :meth:`Parser.err` past the error limit."""
Node = _Node
"""A converted YAML value with its location."""
Converter = _Converter
"""YAML nodes -> :class:`Node` values, within the limits."""
Parser = _Parser
"""One load: shared error list, include cache and chain; subclass it for another format."""
decode_text = _decode
"""A file's bytes -> text (UTF-8, no binary), within the limits."""
compose_yaml = _compose
"""Text -> one YAML node (safe composing, clear syntax errors)."""
read_limited = _read
"""A file's bytes, refusing a too-large file before reading it."""


# ---------------------------------------------------------------------------------------
# Routine files: one notion for every command (check, export, ...)

ROUTINE_SUFFIXES = (".yaml", ".yml")
"""What a routine (or block) file is called; a folder given to a command means these below it."""


def is_block_file(path: str | os.PathLike) -> bool:
    """A YAML file of steps meant for ``include:`` only: a top-level mapping without ``routine:``.

    Only composed (never constructed), size-limited; anything unreadable is not a block, so
    loading it as a routine reports the real problem.
    """
    keys = top_level_keys(path) or set()
    return "routine" not in keys and "steps" in keys


def find_routine_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named, and every ``.yaml``/``.yml`` below a folder named (sorted, hidden ones left
    out); each file once."""
    found: list[Path] = []
    seen: set[str] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            candidates = sorted(
                p for p in path.rglob("*")
                if p.suffix.lower() in ROUTINE_SUFFIXES and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            candidates = [path]
        for candidate in candidates:
            real = os.path.realpath(candidate)
            if real not in seen:
                seen.add(real)
                found.append(candidate)
    return found


def routine_format(limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The parser's own key tables, for tools that describe the format (``voicecoach schema``).

    ``top_keys`` and ``reserved_top_keys`` (accepted, ignored); ``kinds``: step kind -> its
    keys, the kind word first; ``text``: free-text fields; ``durations``; ``counts``: whole-number
    field -> its largest value; ``language_pattern``: the regular expression for ``language``;
    ``engines``; ``cues``: cue key -> its placeholders; ``music``: key -> (lowest, highest) for
    the numbers, ``None`` for ``file``; ``sounds``: the tone names; ``audio_extensions``;
    ``voice_model_extensions``.
    """
    return {
        "top_keys": _TOP_KEYS,
        "reserved_top_keys": _RESERVED_TOP_KEYS,
        "engines": ENGINE_CHOICES,
        "cues": {key: tuple(sorted(names)) for key, names in REQUIRED_PHRASES.items()},
        "music": {key: _MUSIC_RANGES.get(key) for key in _MUSIC_KEYS},
        "sounds": tuple(_SOUND_KEYS),
        "audio_extensions": AUDIO_EXTENSIONS,
        "voice_model_extensions": model_extensions(),
        "kinds": {kind: (kind, *sorted(fields - {kind})) for kind, fields in _FIELDS.items()},
        "text": _TEXT_FIELDS,
        "durations": tuple(_DURATION_ATTRS),
        "counts": {key: getattr(limits, attr) for key, attr in _COUNT_LIMITS.items()},
        "language_pattern": LANGUAGE_TAG.pattern,
    }

"""Fuzzing with hostile routines: the loader, the rules and the compiler never crash.

Three generators feed the whole front of the pipeline -- ``load_routine``/``parse_routine``
-> ``rules.check_routine`` -> ``compile.compile_timeline`` (fake clip lengths, as in
test_golden.py):

- YAML documents built by hypothesis from plausible and implausible keys and values
  (mostly-valid routines with bad fields, and arbitrary nesting), dumped with PyYAML;
- "token soup": YAML fragments that attack the parser (aliases, tags, merge keys, tabs,
  documents, flow collections) glued together;
- byte-level mutation (flip, insert, delete, duplicate, splice) of every routine file in
  scripts/, loaded in a copy of the folder so that includes resolve.

The only acceptable outcomes are success or a VoicecoachError with a location.  Each input
has a per-example deadline (hypothesis) and a memory ceiling (RLIMIT_AS: the address space may
grow by at most MEMORY_HEADROOM_BYTES while an input is processed).

Budget: FUZZ_EXAMPLES examples per generator (a few seconds each in CI); run longer with
``VOICECOACH_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import resource
import shutil
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Callable

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicecoach.compile import CompileSettings, compile_timeline
from voicecoach.errors import RoutineErrors, VoicecoachError
from voicecoach.mix import tone_length
from voicecoach.model import Area, CountMode, Pressure, Side
from voicecoach.rules import check_routine
from voicecoach.script import load_routine, parse_routine, routine_format
from voicecoach.engines.fake import FakeEngine
from voicecoach.timing import to_samples
from voicecoach.vocab import load_vocabulary

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
RATE = 44100
FUZZ_EXAMPLES = int(os.environ.get("VOICECOACH_FUZZ_EXAMPLES", "400"))
DEADLINE = timedelta(seconds=float(os.environ.get("VOICECOACH_FUZZ_DEADLINE_S", "5")))
MEMORY_HEADROOM_BYTES = 1 << 30

FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=DEADLINE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# ---------------------------------------------------------------------------------------
# Driving one input through the pipeline's front


@contextlib.contextmanager
def memory_ceiling() -> None:
    """Let the address space grow by at most MEMORY_HEADROOM_BYTES (a MemoryError is a crash)."""
    with open("/proc/self/status", encoding="ascii") as status:
        vm_kb = int(re.search(r"^VmSize:\s+(\d+) kB", status.read(), re.MULTILINE)[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = vm_kb * 1024 + MEMORY_HEADROOM_BYTES
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@functools.lru_cache(maxsize=4096)
def fake_clip_samples(text: str, rate: Fraction) -> int:
    """The length of the fake engine's clip, exactly as `compile --engine fake` gets it."""
    [(_, clip)] = FakeEngine().synthesize([text], voice="en", rate=rate, sample_rate=RATE, jobs=1, timeout_s=10)
    return len(clip)


def compile_fake(routine) -> None:
    compile_timeline(
        routine,
        vocab=load_vocabulary(routine.language),
        speech_samples=lambda text: fake_clip_samples(text, Fraction(routine.rate)),
        tone_samples=lambda tone: tone_length(tone, sample_rate=RATE),
        settings=CompileSettings(sample_rate=RATE),
    )


def drive(load: Callable[[], object], figures: dict[str, int]) -> str:
    """Load, check and compile; 'accepted' or 'clear error'.  Anything else is counted and raised."""
    figures["inputs fuzzed"] += 1
    try:
        with memory_ceiling():
            try:
                routine = load()
                check_routine(routine)
                compile_fake(routine)
            except VoicecoachError as error:
                problems = error.errors if isinstance(error, RoutineErrors) else [error]
                unlocated = [p.format() for p in problems if p.location is None]
                assert not unlocated, f"errors without a location: {unlocated}"
                assert all(p.message and "Traceback" not in p.format() for p in problems)
                figures["clear errors"] += 1
                return "clear error"
    except BaseException:
        figures["crashes"] += 1
        raise
    figures["accepted"] += 1
    return "accepted"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A copy of scripts/ with traps beside it: a symlink out, a folder, a secret outside."""
    root = tmp_path_factory.mktemp("fuzz")
    copy = root / "scripts"
    shutil.copytree(SCRIPTS, copy)
    (root / "secret.yaml").write_text("routine: Secret\nsteps:\n  - say: You should not hear this.\n")
    (copy / "escape.yaml").symlink_to(root / "secret.yaml")
    (root / "secret.wav").write_bytes(b"RIFF")
    (copy / "escape.wav").symlink_to(root / "secret.wav")
    (copy / "inside-link.yaml").symlink_to(copy / "library" / "warm-up.yaml")
    (copy / "a-folder.yaml").mkdir()
    return copy


# ---------------------------------------------------------------------------------------
# Generator 1: YAML structure

FORMAT = routine_format()
KINDS = dict(FORMAT["kinds"])
FIELDS = sorted({key for keys in KINDS.values() for key in keys})
TOP_KEYS = [*FORMAT["top_keys"], *FORMAT["reserved_top_keys"]]

PATHS = ["../secret.yaml", "/etc/passwd", "escape.yaml", "inside-link.yaml", "a-folder.yaml", "_fuzz.yaml",
         "library/warm-up.yaml", "library/../library/cheek-release.yaml", "morning.yaml", "nope.yaml",
         "escape.wav", "../secret.wav", "/etc/x.wav", "library/../escape.wav"]
NAMES = ["Brow lift", "Cheek sweep", "Calm breaths", "Jaw release", "Neck stretch"]
HOSTILE_TEXT = [
    "", " ", "\t", "\x01200A loud", "\x015S slow", "<break time='30s'/>", "<speak><audio src='/etc/passwd'/></speak>",
    "[[h@l'oU]]", "Close. [pause 3s] Open.", "[pause 99999h]", "[pause", "[pause 0s]", "[pause 2s][pause 2s]", "\u202eevil\u202c", "\ue03c", "a" * 450, "word " * 120, "x. " * 700, "Ω" * 2100,
    *PATHS, "\0",
    "5s", "-1s", "0s", "0", "1e309", "nan", "inf", "1m30s", "99999h", "3600s", "3601s", "0.0001s", "1ms",
    "left", "right", "both", "down", "up", "none", "light", "firm", "jaw", "masseter", "bite trainer",
    "null", "~", "yes", "on", "0x1F", "0o17", "1_000", "2001-01-01", "<<", "=", "!!str", "*alias", "&anchor",
]
texts = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-3, max_value=30),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
keys = st.one_of(st.sampled_from(FIELDS + TOP_KEYS), texts)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=30,
)


def plausible(field: str) -> st.SearchStrategy:
    """Values that are usually right for a field, mixed with anything at all."""
    words = {"area": [a.value for a in Area], "pressure": [p.value for p in Pressure],
             "count": [c.value for c in CountMode] + [True, False]}
    if field in FORMAT["durations"]:
        good = st.one_of(st.integers(1, 20), st.sampled_from(["5s", "1.5s", "2m", "1m30s", "0.5s"]))
    elif field in FORMAT["counts"]:
        good = st.integers(1, 12)
    elif field == "sides":
        good = st.sampled_from([[s.value for s in Side if s is not Side.BOTH], ["both"], "left", ["left", "left"]])
    elif field in words:
        good = st.sampled_from(words[field])
    elif field == "steps":
        good = st.lists(step(depth=1), min_size=1, max_size=3)
    else:
        good = st.one_of(st.sampled_from(["Lift the brows.", "Sweep out.", "Breathe.", "Relax the jaw."]), texts)
    return st.one_of(*[good] * 9, anything)  # mostly right: whole routines get through to the compiler




def step(depth: int = 0, *, wild: bool = True) -> st.SearchStrategy:
    def of_kind(kind: str) -> st.SearchStrategy:
        fields = [f for f in KINDS[kind][1:] if f in FORMAT["durations"] or f in FORMAT["counts"]
                  or f in ("sides", "area", "pressure", "count", "say", "tip", "cue", "stroke", "steps")]
        fields = [f for f in fields if depth == 0 or f != "steps"]
        if kind == "include":
            name = st.one_of(st.sampled_from(PATHS), anything)
        elif kind in ("rest", "repeat"):
            name = plausible(kind)
        else:
            name = st.one_of(st.sampled_from(NAMES), texts) if wild else st.sampled_from(NAMES)
        required = {kind: name}
        if kind == "repeat" and depth == 0:  # its steps, nearly always
            required["steps"] = plausible("steps")
            fields.remove("steps")
        return st.fixed_dictionaries(required, optional={f: plausible(f) for f in fields})

    kinds = [of_kind(kind) for kind in KINDS]
    return st.one_of(*kinds, anything) if wild else st.one_of(*kinds)


# Mostly valid: whole routines reach the compiler and the rules, with a bad value here and there.
mostly_valid = st.fixed_dictionaries(
    {"routine": st.sampled_from(NAMES), "steps": st.lists(step(wild=False), min_size=1, max_size=6)},
    optional={"language": st.just("en"), "rate": st.sampled_from([0.8, 1, 1.25]), "intro": st.sampled_from(NAMES)},
)
# Wild: any key, any value, anywhere.
routines = st.fixed_dictionaries(
    {"routine": st.one_of(st.just("Fuzzed routine"), texts), "steps": st.lists(step(), max_size=6)},
    optional={"language": st.sampled_from(["en", "de", "xx", "en-US", "e", 5]), "rate": plausible("rate"),
              "intro": texts, "outro": texts, "voice": texts, "description": texts,
              "music": st.one_of(st.fixed_dictionaries({"file": st.sampled_from(PATHS)}, optional={"volume": scalars}),
                                 anything),
              "sounds": st.one_of(st.dictionaries(st.sampled_from(["chime", "tick", "bell", "finish", "x"]),
                                                  st.sampled_from(PATHS), max_size=3), anything),
              "cues": anything, "engine": anything, "bogus": anything},
)


def dump(document: object, flow: bool) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, default_flow_style=flow, width=10**6)


@FUZZ_SETTINGS
@given(document=st.one_of(mostly_valid, mostly_valid, routines, anything), flow=st.booleans())
def test_generated_yaml_routines(folder, figures, document, flow):
    path = folder / "_fuzz.yaml"
    path.write_text(dump(document, flow), encoding="utf-8")
    drive(lambda: load_routine(path), figures)


PLAUSIBLE_EXAMPLES = 100
MIN_ACCEPTED_SHARE = 0.2
MIX_UP_TO_S = 600  # accepted routines up to this long are mixed whole too


def test_plausible_routines_are_mostly_accepted_and_each_accepted_one_compiles(folder, figures):
    """A fuzzer that only ever meets rejections tests nothing past the loader: the mostly-valid
    generator must give a healthy share of accepted routines, and every one of them must compile
    with the fake engine (speech, schedule, and the mixed track's exact length)."""
    from voicecoach.pipeline import Settings, build

    outcomes: list[str] = []
    mixed = []

    @settings(max_examples=PLAUSIBLE_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(document=mostly_valid, flow=st.booleans())
    def run(document, flow):
        path = folder / "_plausible.yaml"
        path.write_text(dump(document, flow), encoding="utf-8")
        outcome = drive(lambda: load_routine(path), figures)
        outcomes.append(outcome)
        if outcome == "accepted":
            result = build(path, settings=Settings(engine="fake", use_cache=False))
            total = result.timeline.length_samples
            assert total > 0 and result.timeline.chapters
            if total <= MIX_UP_TO_S * result.render_settings.sample_rate:
                assert sum(len(chunk) for chunk in result.chunks()) == total
                mixed.append(total)

    run()
    accepted = outcomes.count("accepted")
    assert accepted >= MIN_ACCEPTED_SHARE * len(outcomes), f"{accepted} of {len(outcomes)} accepted"
    assert len(mixed) >= accepted // 2, f"only {len(mixed)} of {accepted} accepted routines were short enough to mix"


# ---------------------------------------------------------------------------------------
# Generator 2: token soup against the YAML layer

FRAGMENTS = [
    "routine: T\n", "steps:\n", "  - say: Hi\n", "  - rest: 5s\n", "- exercise: E\n", "    hold: 5s\n",
    "    reps: 3\n", "&a [*a]\n", "a: &x [1, 2]\nb: [*x, *x, *x, *x]\n", "!!python/object/apply:os.system ['true']\n",
    "!custom x\n", "? [a, b]\n: c\n", "<<: *x\n", "%YAML 1.1\n---\n", "---\n", "...\n", "\t- x\n", "{", "}", "[",
    "]", '"unterminated\n', "'", "|\n  block\n", ">-\n  folded\n", "  " * 40, "- " * 70 + "x\n", "[" * 70,
    "key: value\n" * 3, "say: 1e99999\n", "reps: 99999999999999999999999999999999\n", "\ufeff", "\x85",
    "\u2028", "include: ../secret.yaml\n", "  - include: escape.yaml\n", "# comment\n", "\x01\x02", "\r\n",
    "*undefined\n", "&anchor\n", "!!binary aGVsbG8=\n", "!!set {a, b}\n", "!!omap [a: 1]\n", "2001-12-14t21:59:43.10-05:00\n",
]


@FUZZ_SETTINGS
@given(parts=st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=10)), max_size=25))
def test_token_soup(figures, parts):
    data = "".join(parts).encode("utf-8", "surrogatepass")
    drive(lambda: parse_routine(data, path="<soup>"), figures)


# ---------------------------------------------------------------------------------------
# Generator 3: byte-level mutation of every routine file in scripts/

ROUTINE_FILES = sorted(p.relative_to(SCRIPTS) for p in SCRIPTS.rglob("*.yaml"))
MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete", "duplicate", "splice"]),
              st.integers(0, 1 << 20), st.integers(0, 255), st.integers(1, 64)),
    min_size=1, max_size=6,
)


def mutate(data: bytes, mutations: list[tuple[str, int, int, int]]) -> bytes:
    buffer = bytearray(data)
    for op, where, value, length in mutations:
        at = where % (len(buffer) + 1)
        if op == "flip" and at < len(buffer):
            buffer[at] ^= 1 << (value % 8)
        elif op == "insert":
            buffer[at:at] = bytes([value])
        elif op == "delete":
            del buffer[at : at + length]
        elif op == "duplicate":
            buffer[at:at] = buffer[at : at + length * 8]
        elif op == "splice":
            buffer[at:at] = FRAGMENTS[value % len(FRAGMENTS)].encode("utf-8")
    return bytes(buffer)


def includers(relative: Path) -> list[Path]:
    """Top-level routines that include this file (so a mutated block is also loaded through them)."""
    return [p.relative_to(SCRIPTS) for p in sorted(SCRIPTS.glob("*.yaml"))
            if f"include: {relative.as_posix()}" in p.read_text(encoding="utf-8")]


def test_every_routine_file_is_mutated():
    assert len(ROUTINE_FILES) >= 10 and any(p.parent.name == "library" for p in ROUTINE_FILES)
    assert all(includers(p) for p in ROUTINE_FILES if p.parent.name == "library")


@FUZZ_SETTINGS
@given(relative=st.sampled_from(ROUTINE_FILES), mutations=MUTATIONS)
def test_mutated_scripts(folder, figures, relative, mutations):
    target = folder / relative
    original = (SCRIPTS / relative).read_bytes()
    target.write_bytes(mutate(original, mutations))
    try:
        drive(lambda: load_routine(target), figures)
        for top in includers(relative)[:1]:
            drive(lambda: load_routine(folder / top), figures)
    finally:
        target.write_bytes(original)


# ---------------------------------------------------------------------------------------
# Known hostile inputs, each with the error it must give


@pytest.mark.parametrize(
    "text, message",
    [
        ("routine: R\nsteps:\n  - say: " + "word " * 100 + "\n", "a sentence runs 499 characters without a break"),
        ("routine: R\nsteps:\n  - include: ../secret.yaml\n", "is outside the routine's folder"),
        ("routine: R\nsteps:\n  - include: escape.yaml\n", "is outside the routine's folder"),
        ("routine: R\nsteps:\n  - include: /etc/passwd\n", "is absolute"),
        ("routine: R\nmusic:\n  file: escape.wav\nsteps:\n  - say: Hi.\n", "is outside the routine's folder"),
        ("routine: R\nsounds:\n  chime: ../secret.wav\nsteps:\n  - say: Hi.\n", "is outside the routine's folder"),
        ("routine: R\nsteps:\n  - include: a-folder.yaml\n", "is a folder"),
        ("a: &a [*a]\n", "an alias refers to a value that contains it"),
        ("routine: !!python/object/apply:os.system ['true']\nsteps: []\n", "YAML tags are not allowed"),
    ],
    ids=["long-sentence", "dotdot", "symlink-out", "absolute", "music-symlink-out", "sound-dotdot", "folder",
         "recursive-alias", "python-tag"],
)
def test_known_hostile_inputs_give_located_errors(folder, figures, text, message):
    path = folder / "_known.yaml"
    path.write_text(text, encoding="utf-8")
    assert drive(lambda: load_routine(path), figures) == "clear error"
    with pytest.raises(VoicecoachError) as caught:
        load_routine(path)
    assert message in caught.value.format() and caught.value.format().startswith(f"{path}:")


def test_a_symlink_that_stays_inside_is_followed(folder, figures):
    path = folder / "_inside.yaml"
    path.write_text("routine: R\nsteps:\n  - include: inside-link.yaml\n", encoding="utf-8")
    assert drive(lambda: load_routine(path), figures) == "accepted"

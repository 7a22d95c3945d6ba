"""Speech engines: one module per engine and this registry of their specs.

Everything that names engines is derived from :data:`ENGINES`: ``--engine``'s choices,
``voicecoach voices``, the routine schema, the missing-engine messages and the voice identity
in every clip's cache key.  Adding an engine: a module with an engine class (see
:class:`Engine`) and its :class:`EngineSpec`, and one entry below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import EngineError, VoicecoachError
from . import espeak, fake, piper
from .base import SPEECH_SAMPLE_RATE, Engine, EngineSpec, VoiceInfo

ENGINES: dict[str, EngineSpec] = {spec.name: spec for spec in (espeak.SPEC, fake.SPEC, piper.SPEC)}
"""Every engine by name, in the order they are listed."""

AUTO = "auto"
"""Not an engine but a choice: per routine, the most natural installed voice for its language
(the engine with the lowest ``auto_rank`` that speaks it: a Piper voice where there is one)."""

DEFAULT_ENGINE = AUTO
"""The engine when neither the command line nor the routine names one."""

ENGINE_CHOICES = (AUTO, *ENGINES)
"""What ``--engine`` and ``engine:`` accept."""

_LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}([-_][a-z0-9]{2,8})*$", re.IGNORECASE)


@dataclass(frozen=True)
class EngineChoice:
    """The engine and voice that speak a routine, and why they differ from what was asked."""

    engine: str
    """A registered engine's name (never ``auto``)."""
    voice: str | None
    """The voice for it; ``None``: its voice for the routine's language."""
    note: str | None = None
    """Set when the engine asked for cannot speak the routine and another does instead."""


def speaks(spec: EngineSpec, voice: str | None, language: str) -> bool:
    """Whether ``spec``'s engine can speak with ``voice`` (if given) or else ``language``."""
    if spec.auto_rank is None:
        return True  # test engines speak anything
    if voice:
        return spec.claims_voice(voice) or bool(_LANGUAGE_TAG.match(voice) and spec.voice_for(voice) is not None)
    return spec.voice_for(language) is not None


def auto_choice(voice: str | None, language: str) -> EngineChoice:
    """What ``auto`` picks: the first installed engine by ``auto_rank`` that speaks it."""
    ranked = sorted((s for s in ENGINES.values() if s.auto_rank is not None and s.installed()),
                    key=lambda s: s.auto_rank)  # type: ignore[arg-type, return-value]
    for spec in ranked:
        if speaks(spec, voice, language):
            return EngineChoice(spec.name, voice)
    if not ranked:
        raise EngineError("no speech engine is installed", hint=f"install one: {ENGINES['espeak'].install}")
    return EngineChoice(ranked[-1].name, voice)  # none speaks it: the widest engine says so, in its words


def choose_engine(asked: str | None, voice: str | None, language: str, *, strict: bool = False) -> EngineChoice:
    """The engine that speaks a routine: ``asked`` (``None``: :data:`DEFAULT_ENGINE`) if it can,
    else what ``auto`` picks, with a note -- or, with ``strict``, an error."""
    asked = asked or DEFAULT_ENGINE
    if asked == AUTO:
        return auto_choice(voice, language)
    spec = engine_spec(asked)
    if not spec.installed() or speaks(spec, voice, language):
        return EngineChoice(asked, voice)  # a missing engine is reported where it is used
    problem = f"{asked} has no voice {voice!r}" if voice else f"{asked} has no voice for the language {language!r}"
    if strict:
        raise EngineError(problem, hint="add one (voicecoach voices add MODEL.onnx), or drop --strict-engine "
                                        "to fall back to another engine")
    instead = auto_choice(voice, language)
    return replace(instead, note=f"{problem}; speaking with {instead.engine} instead")


def engine_spec(name: str | None) -> EngineSpec:
    """An engine's registry entry; unknown names (and ``auto``, which is a choice) are a clear error."""
    try:
        return ENGINES[name or ""]
    except KeyError:
        raise VoicecoachError(f"unknown speech engine {name!r}", hint=f"use one of: {', '.join(ENGINES)}") from None


def get_engine(name: str) -> Engine:
    """A new engine by name; ``close()`` it when done."""
    return engine_spec(name).create()


def speech_engines() -> list[str]:
    """Engines that really speak and are installed (``voices`` lists these; ``fake`` only when asked for)."""
    return [name for name, spec in ENGINES.items() if spec.speaks and spec.installed()]


def missing_engines() -> dict[str, EngineSpec]:
    """Engines that are not installed here, by name (their specs say how to install them)."""
    return {name: spec for name, spec in ENGINES.items() if not spec.installed()}


def model_extensions() -> tuple[str, ...]:
    """File endings that make a ``voice:`` a model file (resolved like an include)."""
    return tuple(ext for spec in ENGINES.values() for ext in spec.model_extensions)


def speaks_language(voice: VoiceInfo, language: str) -> bool:
    """Whether ``voice`` speaks ``language`` (``en`` matches ``en``, ``en-us``, ``en-gb-x-rp``; case-insensitive)."""
    code = language.lower()
    return any(tag.lower() == code or tag.lower().startswith(code + "-") for tag in voice.languages)


def list_voices(engine: str | None = None, language: str | None = None) -> list[VoiceInfo]:
    """The voices of one engine (``None``: every installed speaking engine), for ``language`` if given."""
    names = [engine_spec(engine).name] if engine else speech_engines()
    found = [voice for name in names if ENGINES[name].installed() for voice in ENGINES[name].voices()]
    return [voice for voice in found if speaks_language(voice, language)] if language else found


def auto_picks(voices: list[VoiceInfo]) -> dict[tuple[str, str], tuple[str, ...]]:
    """For ``voicecoach voices``: (engine, voice id) -> the languages ``auto`` speaks with that voice,
    among the languages the listed voices speak."""
    picks: dict[tuple[str, str], list[str]] = {}
    for language in dict.fromkeys(tag.lower() for voice in voices for tag in voice.languages):
        try:
            choice = auto_choice(None, language)
        except EngineError:
            continue
        named = ENGINES[choice.engine].voice_for(language)
        candidates = [v for v in voices if v.engine == choice.engine]
        picked = next((v for v in candidates if v.id == named), None) or next(
            (v for v in candidates if language in (tag.lower() for tag in v.languages)), None)
        if picked is not None:
            picks.setdefault((picked.engine, picked.id), []).append(language)
    return {key: tuple(languages) for key, languages in picks.items()}


__all__ = ["AUTO", "DEFAULT_ENGINE", "ENGINES", "ENGINE_CHOICES", "SPEECH_SAMPLE_RATE", "Engine", "EngineChoice",
           "EngineSpec", "VoiceInfo", "auto_choice", "auto_picks", "choose_engine", "engine_spec", "get_engine",
           "list_voices", "missing_engines", "model_extensions", "speaks", "speaks_language", "speech_engines"]

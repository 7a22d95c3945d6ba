"""Speech engines: one module per engine and this registry of their specs.

Everything that names engines is derived from :data:`ENGINES`: ``--engine``'s choices,
``voicecoach voices``, the routine schema, the missing-engine messages and the voice identity
in every clip's cache key.  Adding an engine: a module with an engine class (see
:class:`Engine`) and its :class:`EngineSpec`, and one entry below.
"""

from __future__ import annotations

from . import espeak, fake, piper
from .base import Engine, EngineSpec, VoiceInfo
from ..errors import VoicecoachError

ENGINES: dict[str, EngineSpec] = {spec.name: spec for spec in (espeak.SPEC, fake.SPEC, piper.SPEC)}
"""Every engine by name, in the order they are listed."""

DEFAULT_ENGINE = next(spec.name for spec in ENGINES.values() if spec.default)
"""The engine when neither the command line nor the routine names one."""


def engine_spec(name: str | None) -> EngineSpec:
    """An engine's registry entry (``None``: :data:`DEFAULT_ENGINE`'s); unknown names are a clear error."""
    try:
        return ENGINES[name or DEFAULT_ENGINE]
    except KeyError:
        raise VoicecoachError(f"unknown speech engine {name!r}", hint=f"use one of: {', '.join(ENGINES)}") from None


def get_engine(name: str | None) -> Engine:
    """A new engine by name (``None``: :data:`DEFAULT_ENGINE`); ``close()`` it when done."""
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


__all__ = ["DEFAULT_ENGINE", "ENGINES", "Engine", "EngineSpec", "VoiceInfo", "engine_spec", "get_engine",
           "list_voices", "missing_engines", "model_extensions", "speaks_language", "speech_engines"]

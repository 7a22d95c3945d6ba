"""What every speech engine is: the :class:`Engine` protocol, its voices, and its registry entry.

An engine module (espeak.py, piper.py, fake.py) defines an engine class and one
:class:`EngineSpec`; the registry (``voicecoach.engines.ENGINES``) lists the specs, and
everything that names engines -- ``--engine``, ``voicecoach voices``, the schema, the
missing-engine messages, the clip keys -- is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from importlib import metadata
from typing import Callable, Iterator, Protocol

import numpy as np


@dataclass(frozen=True)
class VoiceInfo:
    """A voice an engine offers."""

    engine: str
    """Engine name (``espeak``, ...)."""
    id: str
    """What to write in ``voice:``."""
    name: str
    """Human-readable name."""
    languages: tuple[str, ...] = ()
    """Language codes it speaks."""


class Engine(Protocol):
    """What a speech engine offers the pipeline."""

    name: str
    sample_rate: int

    def identity(self) -> str:
        """Engine and version, cheaply (no synthesis): part of every clip's cache key."""

    def synthesize(
        self, texts: list[str], *, voice: str, rate: Fraction, sample_rate: int, jobs: int, timeout_s: float
    ) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(text, finished clip)`` for each text, in any order.

        A finished clip is what :func:`mix.process_clip` makes of the engine's raw output at
        ``sample_rate``; engines with worker processes do that work there, in parallel.
        """

    def voices(self) -> list[VoiceInfo]:
        """The voices available."""

    def close(self) -> None:
        """Release worker processes."""


FileHash = Callable[[str], str]
"""The sha256 of a file's bytes (the cache's remembered one, see ``Cache.file_sha256``)."""


SPEECH_SAMPLE_RATE = 22050
"""What espeak-ng and Piper's voices speak at; a track of speech and tones alone is mixed at it."""


def _voice_name(voice: str, file_hash: FileHash | None = None) -> str:
    return voice


@dataclass(frozen=True)
class EngineSpec:
    """One engine's entry in the registry: everything the rest of voicecoach knows about it."""

    name: str
    """What ``--engine`` and ``engine:`` call it."""
    about: str
    """What it is, in a few words (help texts, the schema, the missing-engine message)."""
    create: Callable[[], Engine]
    """A new engine object (it may start worker processes on first use; ``close()`` it)."""
    installed: Callable[[], bool] = lambda: True
    """Whether it can run here, checked cheaply (no import of the engine's libraries)."""
    install: str = ""
    """The command that installs it, for the missing-engine message."""
    speaks: bool = True
    """``False`` for test engines: ``voicecoach voices`` lists them only when asked for."""
    voice_identity: Callable[[str, FileHash | None], str] = _voice_name
    """What a ``voice:`` sounds like, for the clip cache key (default: its name; a model's
    content hash for engines whose voices are files, hashed with the given ``FileHash``)."""
    auto_rank: int | None = None
    """Where ``auto`` looks first (lowest first: the most natural voice); ``None``: never picked."""
    voice_for: Callable[[str], str | None] = lambda language: None
    """The voice it would speak a language with (``None``: it has none), checked cheaply."""
    claims_voice: Callable[[str], bool] = lambda voice: False
    """Whether a ``voice:`` surely is one of its own (a model file, an installed voice's name)."""
    voice_sample_rate: Callable[[str], int] = lambda voice: SPEECH_SAMPLE_RATE
    """The rate a voice (a ``voice:``, or a language code: its voice for it) speaks at, checked
    cheaply (a model's config); a voice above :data:`SPEECH_SAMPLE_RATE` makes the track 44.1 kHz."""
    model_extensions: tuple[str, ...] = ()
    """A ``voice:`` ending in one of these is a model file, resolved like an include."""
    model_help: str = ""
    """How to give a model file as ``voice:`` (the schema's description)."""

    def voices(self) -> list[VoiceInfo]:
        """Its voices (starting and stopping the engine if it needs to)."""
        engine = self.create()
        try:
            return engine.voices()
        finally:
            engine.close()


def dist_version(name: str) -> str:
    """An installed distribution's version (``unknown`` if it is not installed)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"

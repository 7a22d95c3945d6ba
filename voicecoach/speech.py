"""Speech, the pipeline's stage after compile: clips for the timeline's phrases, through an
engine (see voicecoach.engines) with the clip cache in front of it.

An engine synthesizes raw clips at its own sample rate; :class:`Speech` looks each text up
in the cache first, sends only the misses to the engine (in one parallel batch), processes
the new clips (trim, resample, loudness; see mix.process_clip) and stores them.  A clip's key
covers everything that changes its samples, so a cached clip is always the right one.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable

import numpy as np

from .cache import NOT_IN_KEY, Cache, settings_key
from .engines import ENGINES, Engine
from .engines.base import FileHash
from .mix import CLIP_VERSION


@dataclass(frozen=True)
class SpeechSettings:
    """Everything that changes how a text sounds; with the engine's voice identity, they make the clip key."""

    voice: str | None = field(default=None, metadata=NOT_IN_KEY)
    """Engine voice; ``None`` uses the language's default voice.  Its key is the engine's
    voice identity (see :func:`voice_identity`): a model file moved is the same voice."""
    language: str = "en"
    """Language code."""
    rate: Fraction = Fraction(1)
    """Speed multiplier."""
    sample_rate: int = 44100
    """Rate the clips are resampled to (the track's)."""

    @property
    def voice_id(self) -> str:
        return self.voice or self.language

    def cache_key(self, text: str, *, voice: str) -> str:
        """The key of ``text``'s clip; ``voice`` is :func:`voice_identity` of the engine and ``voice_id``."""
        return settings_key("clip", CLIP_VERSION, self, text, voice)


def voice_identity(engine: Engine, voice: str, file_hash: FileHash | None = None) -> str:
    """What makes a voice sound as it does, for cache keys: the engine's name and version, and
    what its registry entry says identifies the voice (its name, or a model's content hash,
    hashed with ``file_hash``: the cache's memo)."""
    spec = ENGINES.get(engine.name)
    return f"{engine.name}|{engine.identity()}|{spec.voice_identity(voice, file_hash) if spec is not None else voice}"


@dataclass
class SpeechStats:
    synthesized: int = 0
    """Clips the engine made in this run."""
    cached: int = 0
    """Clips taken from the cache."""


@dataclass
class Speech:
    """Clips for texts, from the cache or the engine."""

    engine: Engine
    cache: Cache
    settings: SpeechSettings
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    timeout_s: float = 60.0
    on_clip: Callable[[str], None] | None = None
    """Called after each clip is ready (progress)."""
    stats: SpeechStats = field(default_factory=SpeechStats)
    max_resident_bytes: int = 24 * 2**20
    """Clips kept in memory at most; the rest are read back from the cache when mixed, so
    memory stays flat however long the routine (clips the cache could not store stay)."""
    _lengths: dict[str, int] = field(default_factory=dict, repr=False)
    _pinned: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _recent: "OrderedDict[str, np.ndarray]" = field(default_factory=OrderedDict, repr=False)
    _recent_bytes: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _keys: dict[str, str] = field(default_factory=dict, repr=False)
    _voice_identity: str | None = field(default=None, repr=False)
    misses: int | None = field(default=None, repr=False)
    """How many clips :meth:`prepare` did not find in the cache (None until it has looked)."""
    looked_up: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set once :meth:`prepare` has looked every clip up (``misses`` is known)."""

    def key(self, text: str) -> str:
        """The cache key of ``text``'s clip (see :meth:`SpeechSettings.cache_key`)."""
        key = self._keys.get(text)
        if key is None:
            key = self._keys[text] = self.settings.cache_key(text, voice=self.voice_identity())
        return key

    def voice_identity(self) -> str:
        """:func:`voice_identity` of this engine and voice (worked out once)."""
        if self._voice_identity is None:
            self._voice_identity = voice_identity(self.engine, self.settings.voice_id, self._file_hash)
        return self._voice_identity

    def _file_hash(self, path: str) -> str:
        """A voice file's hash, remembered by the cache; a file it does not know yet means its
        clips are not there either, so the engine starts warming up (loading the model) meanwhile."""
        return self.cache.file_sha256(path, on_miss=self._warm_up)

    def _warm_up(self) -> None:
        start = getattr(self.engine, "prestart", None)
        if start is not None:
            start(self.settings.voice_id)

    def prepare(self, texts: Iterable[str]) -> None:
        """Make every text's clip available, synthesizing only the cache misses."""
        missing = []
        for text in dict.fromkeys(texts):
            if text in self._lengths:
                continue
            length = self.cache.clip_samples(self.key(text), sample_rate=self.settings.sample_rate)
            if length is None:
                if not missing:
                    self._warm_up()  # the first miss: the engine starts while the rest are looked up
                missing.append(text)
                continue
            with self._lock:  # read back when mixed (a track from the cache needs no clip at all)
                self._lengths[text] = length
            self.stats.cached += 1
            if self.on_clip:
                self.on_clip(text)
        self.misses = len(missing)
        self.looked_up.set()
        if not missing:
            return
        results = self.engine.synthesize(
            missing, voice=self.settings.voice_id, rate=self.settings.rate, sample_rate=self.settings.sample_rate,
            jobs=self.jobs, timeout_s=self.timeout_s,
        )
        for text, clip in results:
            stored = self.cache.put_clip(self.key(text), clip, sample_rate=self.settings.sample_rate)
            self._remember(text, clip, stored=stored)
            self.stats.synthesized += 1
            if self.on_clip:
                self.on_clip(text)

    def _remember(self, text: str, clip: np.ndarray, *, stored: bool) -> None:
        with self._lock:
            if stored:
                self._keep_recent(text, clip)
            else:
                self._pinned[text] = clip
            self._lengths[text] = len(clip)

    def _keep_recent(self, text: str, clip: np.ndarray) -> None:
        """Least recently used first out, past ``max_resident_bytes`` (call with the lock)."""
        if text in self._recent:
            self._recent.move_to_end(text)
            return
        self._recent[text] = clip
        self._recent_bytes += clip.nbytes
        while self._recent_bytes > self.max_resident_bytes and len(self._recent) > 1:
            _, old = self._recent.popitem(last=False)
            self._recent_bytes -= old.nbytes

    def has_clip(self, text: str) -> bool:
        """Whether the clip is ready (no synthesis)."""
        return text in self._lengths

    def clip(self, text: str) -> np.ndarray:
        with self._lock:
            clip = self._pinned.get(text)
            if clip is None and text in self._recent:
                clip = self._recent[text]
                self._recent.move_to_end(text)
        if clip is not None:
            return clip
        if text not in self._lengths:
            self.prepare([text])
            return self.clip(text)
        clip = self.cache.read_clip(self.key(text), sample_rate=self.settings.sample_rate)
        if clip is None or len(clip) != self._lengths[text]:
            # gone from the cache since (pruned, damaged): make it again, same bytes
            with self._lock:
                del self._lengths[text]
            self.prepare([text])
            return self.clip(text)
        with self._lock:
            self._keep_recent(text, clip)
        return clip

    def samples(self, text: str) -> int:
        if text not in self._lengths:
            self.prepare([text])
        return self._lengths[text]

    def clip_keys(self, texts: Iterable[str]) -> list[str]:
        return [self.key(t) for t in texts]


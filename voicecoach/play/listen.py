"""Voice commands: ``voicecoach play --listen``, fully offline, with PocketSphinx keyword spotting.

The microphone (opened only with ``--listen``; nothing is stored or sent) is captured through
miniaudio at 16 kHz mono and fed to PocketSphinx: keyword spotting finds candidates for the
command words (``vocab/commands/<language>.yaml``; English where the recognizer has no model for
the routine's language; said as its dictionary says them or as ``vocab/commands/pronunciations-<model>.dict``
adds) with per-phrase thresholds (``vocab/commands/thresholds-<model>.json``,
written by ``benchmarks/calibrate_listen.py``, never by hand), and a grammar of the command
phrases alone, decoding the whole word a candidate falls in, confirms it (:class:`Recognizer`).

With speakers the microphone hears the coach.  The player knows what it plays: a hit on a word
the coach spoke in the last :data:`ECHO_WINDOW_S` (the timeline's text around the play
position) is ignored, so "Next up: ..." never skips a step, and while the coach is speaking only
a phrase spotted at the stricter threshold calibrated for that state counts (in the quiet
between cues, and while paused, the permissive one).  The player also hands what it sounds to an
:class:`EchoMeter`, which learns the echo's delay and level: the :class:`EchoSuppressor` takes
the expected echo out of the microphone's sound before recognition (a word said over the coach
is decoded alone, not mixed with its voice), and a word that does not rise above the coach's
echo is the coach's, whatever the thresholds.  The output's last two seconds are kept in memory
for this, never stored.  A recognized command becomes the same
:class:`~voicecoach.play.controller.Action` a key makes, and plays a short acknowledgement (two
rising blips: no cue sounds like it).
"""

from __future__ import annotations

import functools
import json
import math
import os
import queue
import re
import tempfile
import threading
import time
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
    rivals: tuple[str, ...] = ()
    """Phrases the recognizer knows but never acts on: with a wake word, the commands said
    without it.  A word heard as one of them is not a command, however close a phrase came."""

    def with_wake_word(self, wake_word: str | None) -> "CommandWords":
        """Only ``"<wake word> <command>"`` counts (``None``: the commands alone)."""
        if not wake_word:
            return self
        wake = " ".join(words_of(wake_word))
        return CommandWords(self.language, self.model, {f"{wake} {p}": a for p, a in self.phrases.items()},
                            wake, rivals=tuple(sorted(self.phrases)))


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
def pronunciations(model: str) -> Mapping[str, tuple[str, ...]]:
    """Word -> its other pronunciations in the model's phones (``vocab/commands/pronunciations-<model>.dict``):
    the accents the model's dictionary lacks (British English for en-us)."""
    path = _commands_folder() / f"pronunciations-{model}.dict"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    variants: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        fields = line.split("#")[0].split()  # the word, its phones; a comment after '#'
        if len(fields) > 1:
            variants[fields[0]] = variants.get(fields[0], ()) + (" ".join(fields[1:]),)
    return variants


def _alternates(word: str, variants: Mapping[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """The dictionary entries of a word's other pronunciations: ``[("back(2)", "B AA K"), ...]``."""
    return [(f"{word}({n})", phones) for n, phones in enumerate(variants.get(word, ()), 2)]


def _unspelled(entries: str) -> str:
    """Dictionary entries back to their words: ``"coach back(2)"`` -> ``"coach back"`` (see :func:`_alternates`)."""
    return re.sub(r"\(\d+\)", "", entries).strip()


def _spellings(phrase: str, variants: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The phrase with each of its words' dictionary entries: ``back``, ``back(2)``, ..."""
    spellings = [""]
    for word in phrase.split():
        entries = [word] + [entry for entry, _ in _alternates(word, variants)]
        spellings = [f"{s} {e}".strip() for s in spellings for e in entries]
    return spellings


@dataclass(frozen=True)
class Thresholds:
    """Keyword-spotting thresholds per phrase, one set for each state of the coach.

    A smaller threshold spots more (and more falsely).  While the coach speaks, the microphone
    hears its voice too, so that set is stricter; where both sets are equal one spotter serves.
    """

    quiet: Mapping[str, float]
    """Phrase -> threshold while the coach is silent."""
    speaking: Mapping[str, float]
    """Phrase -> threshold that holds while the coach speaks."""
    clear_db: float = math.inf
    """A word the echo meter heard rise this far (dB) above the coach's echo is clear of it: the
    quiet set holds for it even while the coach speaks (its echo, taken out by the suppressor,
    is then far below the word).  Calibrated like the thresholds; infinite: never."""
    grammar_alone: frozenset[str] = frozenset()
    """Phrases the confirmation alone may find: a word it decodes as one of these acts though no
    spotter offered that phrase, only another (the spotter's phone loop outscores espeak's "back"
    and "continue" at any threshold, where the grammar hears them right).  Calibrated: the
    phrases whose actions found so on the calibration's corpus were right at least once and
    never false."""

    @classmethod
    def same(cls, thresholds: Mapping[str, float]) -> "Thresholds":
        """One set for both states."""
        return cls(dict(thresholds), dict(thresholds))


@functools.lru_cache(maxsize=None)
def calibrated_thresholds(model: str) -> Thresholds:
    """The thresholds ``benchmarks/calibrate_listen.py`` wrote (empty sets where there is no file)."""
    path = thresholds_path(model)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Thresholds({}, {})
    tiers = data["thresholds"]
    return Thresholds(*({phrase: float(v) for phrase, v in tiers[tier].items()} for tier in ("quiet", "speaking")),
                      clear_db=float(data.get("clear_db", math.inf)),
                      grammar_alone=frozenset(data.get("grammar_alone", ())))


def thresholds_for(words: CommandWords, overrides: Mapping[str, float] | None = None) -> Thresholds:
    """Each phrase's thresholds: the override (both states), the calibrated ones, or :data:`DEFAULT_THRESHOLD`."""
    calibrated = calibrated_thresholds(words.model)

    def pick(tier: Mapping[str, float]) -> dict[str, float]:
        return {p: (overrides[p] if overrides and p in overrides else tier.get(p, DEFAULT_THRESHOLD))
                for p in words.phrases}

    return Thresholds(pick(calibrated.quiet), pick(calibrated.speaking), calibrated.clear_db,
                      calibrated.grammar_alone & frozenset(words.phrases))


# ---------------------------------------------------------------------------------------
# The recognizer


@dataclass(frozen=True)
class Hit:
    """A phrase spotted in the stream (and confirmed)."""

    phrase: str
    """What was heard."""
    end_s: float
    """Seconds of audio fed before the phrase's end (stream time): where its word stopped sounding."""
    found_s: float
    """Seconds of audio fed when it was found."""
    while_speaking: bool = False
    """Spotted at the threshold that holds while the coach speaks (else only in the quiet)."""
    near_end_db: float | None = None
    """How far the microphone rose above the coach's echo during the phrase (:class:`EchoMeter`;
    infinite where the coach was silent then); ``None``: not measured."""
    metered: bool = False
    """An echo meter listened (play's pull backends): ``near_end_db`` ``None`` then means the
    coach sounded but the meter did not know its echo (its first seconds)."""
    grammar_alone: bool = False
    """Found by the confirmation alone (:attr:`Thresholds.grammar_alone`): no spotter offered
    the phrase, so it holds only where the quiet set does."""


def _pocketsphinx():
    try:
        import pocketsphinx
    except ImportError as error:
        raise VoicecoachError(
            f"voice commands need PocketSphinx ({error})",
            hint="pip install pocketsphinx (its wheel has the English model), or play without --listen",
        ) from None
    return pocketsphinx


FRAME_S = 0.01
"""The echo meter's frame: energies per 10 ms."""
ECHO_LAGS_S = (0.0, 1.0)
"""How late the coach's output may reach the microphone (device buffers, both ways)."""
ECHO_HISTORY_S = 8.0
"""The recent sound the meter learns the echo's delay and level from."""
ECHO_MIN_CORRELATION = 0.3
"""Below this correlation of the envelopes at the best lag the echo is not known (too little of
the coach heard yet: a few clicks and silence say nothing of the echo's delay)."""
OUTPUT_SILENT = 100.0
"""An output frame with less energy (int16 squared: -50 dBFS) is silence."""
ECHO_MIN_GAIN = 1e-4
"""An echo learned 40 dB or more below the output is a wrong lag's (silence against clicks), not
known; with headphones the echo stays unknown, and over the coach's voice only the timeline
decides (:meth:`CommandFilter.decide`)."""
NEAR_END_DB = 6.0
"""A phrase heard this far above the coach's echo was said by someone in the room."""
NEAR_END_PERCENTILE = 75
"""How far a word rose above the echo: this percentile of its frames.  A word's run of sounding
frames takes in some of the coach's echo around it, often half of the run; the coach's own
words stay near the echo in all their frames."""


def _energies(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean square of each whole 10 ms frame of ``samples``."""
    per = max(1, round(sample_rate * FRAME_S))
    n = len(samples) // per
    blocks = np.asarray(samples[: n * per], dtype=np.float64).reshape(n, per)
    return np.mean(blocks**2, axis=1)


class EchoMeter:
    """How much louder the microphone is than the coach's own output explains.

    The player hands over every block it sounds (:meth:`output`) and the microphone every piece
    it captures (:meth:`mic`), both stamped on one clock.  From the last seconds the meter learns
    the echo's delay (the lag at which the two energy envelopes agree best) and level (the
    microphone over the output where the coach sounds); :meth:`near_end_db` then says by how much
    the microphone exceeded that echo while a word was heard.  The coach's echo alone stays near
    0 dB; a person speaking over it rises well above.  Of the microphone only energies are kept;
    of the output also its last :data:`REFERENCE_S` of samples (at 16 kHz, in memory), which
    :class:`EchoSuppressor` takes out of the microphone's sound.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames = round(ECHO_HISTORY_S / FRAME_S)
        self._out: dict[int, float] = {}  # frame number (clock / FRAME_S) -> output energy
        self._mic: dict[int, float] = {}
        self._learned: tuple[int, tuple[int, float, float] | None] | None = None  # (until frame, what was learned)
        self._ring = np.zeros(round(REFERENCE_S * SAMPLE_RATE), np.float32)  # output sample i at i % len
        self._ring_end: int | None = None  # the stream sample after the newest one written
        self._known: tuple[int, float, float] | None = None  # the last echo learned: kept through the coach's silences

    def _store(self, table: dict[int, float], start_s: float, samples: np.ndarray, sample_rate: int) -> None:
        first = round(start_s / FRAME_S)
        energies = _energies(samples, sample_rate)
        with self._lock:
            for i, energy in enumerate(energies):
                table[first + i] = float(energy)
            newest = first + len(energies)
            for key in [k for k in table if k < newest - 2 * self._frames]:  # a bounded history
                del table[key]

    def output(self, start_s: float, samples: np.ndarray, sample_rate: int) -> None:
        """The coach's output: ``samples`` begin to sound at ``start_s`` (the meter's clock)."""
        self._store(self._out, start_s, samples, sample_rate)
        first = round(start_s * SAMPLE_RATE)
        count = round(len(samples) * SAMPLE_RATE / sample_rate)
        if count <= 0:
            return
        at = np.arange(count) * (sample_rate / SAMPLE_RATE)  # linear resampling to 16 kHz
        block = np.interp(at, np.arange(len(samples)), np.asarray(samples, dtype=np.float64)).astype(np.float32)
        size = len(self._ring)
        with self._lock:
            end = self._ring_end
            if end is not None and first > end:  # a gap (a stall): nothing sounded there
                gap = np.arange(end, min(first, end + size))
                self._ring[gap % size] = 0.0
            block = block[-size:]
            first += count - len(block)
            self._ring[np.arange(first, first + len(block)) % size] = block
            self._ring_end = first + len(block) if end is None else max(end, first + len(block))

    def reference(self, first: int, count: int) -> np.ndarray:
        """The output sounded at stream samples ``first .. first + count`` (16 kHz; zeros where unknown)."""
        size = len(self._ring)
        out = np.zeros(count, np.float64)
        with self._lock:
            end = self._ring_end
            if end is None:
                return out
            lo, hi = max(first, end - size), min(first + count, end)
            if hi > lo:
                out[lo - first : hi - first] = self._ring[np.arange(lo, hi) % size]
        return out

    def mic(self, start_s: float, samples: np.ndarray) -> None:
        """The microphone: ``samples`` (16 kHz) were captured from ``start_s`` on."""
        self._store(self._mic, start_s, samples, SAMPLE_RATE)

    def _learn(self, out: dict[int, float], mic: dict[int, float], until: int) -> tuple[int, float, float] | None:
        """The echo's lag (frames), gain and the microphone's floor, from the history before frame ``until``.

        ``None`` before the meter has heard the coach enough to know its echo.
        """
        lags = range(round(ECHO_LAGS_S[0] / FRAME_S), round(ECHO_LAGS_S[1] / FRAME_S) + 1)
        learn = [k for k in range(until - self._frames, until) if k in mic]
        if len(learn) < 100:
            return None
        m = np.array([mic[k] for k in learn])
        floor = float(np.percentile(m, 10))
        reference = np.array([[out.get(k - lag, 0.0) for k in learn] for lag in lags])
        active = reference > 1e-3 * max(float(reference.max()), 1.0)
        if active.sum() < 50:
            return None
        log_m = np.log10(m + 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):  # a silent microphone: no correlation (nan)
            scores = [np.corrcoef(np.log10(reference[i][active[i]] + 1.0), log_m[active[i]])[0, 1]
                      if active[i].sum() >= 50 else -1.0 for i in range(len(lags))]
        scores = np.nan_to_num(np.array(scores), nan=-1.0)
        best = int(np.argmax(scores))
        if not scores[best] >= ECHO_MIN_CORRELATION:  # too little of the coach, or no echo at any lag
            return None
        sounding = active[best]
        gain = float(np.percentile(m[sounding] / reference[best][sounding], 30))  # robust to words over it
        return (lags[best], gain, floor) if gain >= ECHO_MIN_GAIN else None

    @staticmethod
    def _expected(out: dict[int, float], frames: Iterable[int], lag: int, gain: float) -> np.ndarray:
        frames = np.fromiter(frames, dtype=np.int64)
        if not len(frames):
            return np.zeros(0)
        # The room goes on sounding after the output stops (its reverberation): the output's
        # energy is held, falling ECHO_TAIL a frame.  Then the loudest of five frames around the
        # lag: the delay is only known to a frame or two.
        lo = int(frames.min()) - lag - 2 - ECHO_TAIL_FRAMES
        energy = [out.get(k, 0.0) for k in range(lo, int(frames.max()) - lag + 3)]
        held = np.empty(len(energy))
        last = 0.0
        for i, value in enumerate(energy):
            last = held[i] = max(value, ECHO_TAIL * last)
        at = frames - lag - lo
        return gain * np.max([held[at + d] for d in (-2, -1, 0, 1, 2)], axis=0)

    def near_end_db(self, start_s: float, end_s: float, *, heard: Mapping[int, float] | None = None) -> float | None:
        """How far the microphone rose over the echo expected in ``[start_s, end_s)``, in dB
        (:data:`NEAR_END_PERCENTILE` of its frames).

        ``heard``: instead of the microphone's, these energies per frame (what is left of it once
        :class:`EchoSuppressor` took the echo out: the echo it knows per frequency, a tone the
        room resonates with included, then stays below the broadband expectation).  Infinite
        where the coach was silent then (no echo explains anything); ``None`` where it sounded
        but the meter does not know its echo (its first seconds; clicks in silence).
        """
        with self._lock:
            out, mic = dict(self._out), dict(self._mic)
        lo, hi = round(start_s / FRAME_S), round(end_s / FRAME_S)
        learned = self._learn(out, mic, lo) or self._known
        level = mic if heard is None else heard
        word = [k for k in range(lo, hi) if k in level]
        if not word:
            return None
        if learned is None:  # the echo is not known: only a coach that was silent explains nothing
            reach = round(ECHO_LAGS_S[1] / FRAME_S) + ECHO_TAIL_FRAMES
            sounded = any(out.get(k, 0.0) > OUTPUT_SILENT for k in range(lo - reach, hi))
            return None if sounded else math.inf
        lag, gain, floor = learned
        expected = self._expected(out, word, lag, gain)
        if not (expected > floor).any():
            return math.inf  # the coach was silent then: whatever was heard, it was not the coach
        excess = np.array([level[k] for k in word]) / (expected + floor + 1.0)
        return float(np.percentile(10 * np.log10(excess + 1e-12), NEAR_END_PERCENTILE))

    def echo(self, first: int, count: int) -> np.ndarray | None:
        """The coach's echo expected in the microphone's frames ``first .. first + count`` (energies).

        Learned anew at most every :data:`ECHO_RELEARN_S` (the recognizer asks every 30 ms while
        a word is pending); ``None`` while the echo is not known.
        """
        learned = self.learned(first + count)
        if learned is None:
            return None
        with self._lock:
            out = dict(self._out)
        lag, gain, _ = learned
        return self._expected(out, range(first, first + count), lag, gain)

    def learned(self, until: int) -> tuple[int, float, float] | None:
        """The echo's lag (frames), energy gain and the microphone's floor, as learned before
        frame ``until`` (anew at most every :data:`ECHO_RELEARN_S`; where the last seconds say too
        little, as learned before: the room does not change when the coach pauses); ``None``
        while not known."""
        if self._learned is None or not 0 <= until - self._learned[0] < ECHO_RELEARN_S / FRAME_S:
            with self._lock:
                out, mic = dict(self._out), dict(self._mic)
            learned = self._learn(out, mic, until)
            self._known = learned or self._known
            self._learned = (until, learned or self._known)
        return self._learned[1]


ECHO_TAIL = 10 ** (-2.0 / 10)
"""How much of the output's energy the room still sounds 10 ms later (-2 dB a frame: a room
whose reverberation falls 60 dB in 0.3 s)."""
ECHO_TAIL_FRAMES = 30
"""How far back (frames) the room's tail is followed."""
ECHO_RELEARN_S = 1.0
"""How long the echo's lag and gain, once learned, serve :meth:`EchoMeter.echo`."""
REFERENCE_S = 2.0
"""The output samples the meter keeps for the suppressor: the longest lag and a frame, with room."""


SUPPRESS_FRAME = 512
"""The suppressor's analysis frame (32 ms at 16 kHz; half-overlapping, square-root Hann windows)."""
SUPPRESS_HOP = SUPPRESS_FRAME // 2
SUPPRESS_OVER = 4.0
"""How much more of the expected echo's power is taken out than expected (the estimate is rough)."""
SUPPRESS_FLOOR = 0.01
"""The least a bin keeps of its power (-20 dB): the near-end word under the echo is not cut away."""
SUPPRESS_TAIL = 0.5
"""How much of the echo's expected power the next hop (16 ms) still holds: the room's reverberation."""
SUPPRESS_HISTORY = 400
"""Hops (6.4 s) of spectra where the coach sounded that the echo path's gain per frequency is learned from."""
SUPPRESS_RELEARN = 60
"""Such hops between two learnings of that gain (about 1 s of the coach's sound)."""


class EchoSuppressor:
    """Takes the coach's expected echo out of the microphone's sound, before recognition.

    The meter knows what the player sounded (its last samples) and how late and how loud the
    echo comes back.  Frame by frame (:data:`SUPPRESS_FRAME`), the spectrum of the output as it
    sounded one lag earlier, held for the room's tail (:data:`SUPPRESS_TAIL`) and scaled by the
    echo path's gain per frequency (learned from the last seconds: a low percentile of the
    microphone's power over the output's where the output sounds, robust to words said over
    it), is subtracted from the microphone's power spectrum, :data:`SUPPRESS_OVER` times over
    and down to :data:`SUPPRESS_FLOOR` of each bin.  Magnitudes only: robust to a lag known to
    10 ms and to the stamps' jitter, where a sample-exact canceller would not be.  Where the
    coach was silent the sound passes unchanged.  The output lags the input by up to
    :data:`SUPPRESS_FRAME` samples (:meth:`process` returns what is ready).
    """

    def __init__(self, meter: EchoMeter) -> None:
        self.meter = meter
        self._window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(SUPPRESS_FRAME) / SUPPRESS_FRAME))
        self._input = np.zeros(SUPPRESS_HOP)  # unprocessed input from stream sample self._start on
        self._start = -SUPPRESS_HOP  # the next frame's first sample (the stream starts mid-frame)
        self._lead_in = True
        self._overlap = np.zeros(SUPPRESS_HOP)
        self._held = np.zeros(SUPPRESS_FRAME // 2 + 1)  # the expected echo's power with its tail
        self._mic_power = np.zeros((SUPPRESS_HISTORY, SUPPRESS_FRAME // 2 + 1))
        self._echo_power = np.zeros_like(self._mic_power)
        self._hops = 0
        self._gain: np.ndarray | None = None  # the echo path's power gain per bin

    def process(self, samples: np.ndarray) -> np.ndarray:
        """The next input samples -> the next cleaned samples (int16; fewer or more than given)."""
        self._input = np.concatenate([self._input, np.asarray(samples, dtype=np.float64)])
        done = []
        while len(self._input) >= SUPPRESS_FRAME:
            done.append(self._frame(self._input[:SUPPRESS_FRAME]))
            self._input = self._input[SUPPRESS_HOP:]
            self._start += SUPPRESS_HOP
        ready = np.concatenate(done) if done else np.zeros(0)
        if self._lead_in and len(ready):  # the first frame's first half is before the stream
            ready, self._lead_in = ready[SUPPRESS_HOP:], False
        return np.clip(np.rint(ready), -32768, 32767).astype(np.int16)

    def _frame(self, frame: np.ndarray) -> np.ndarray:
        mic = np.fft.rfft(frame * self._window)
        learned = self.meter.learned((self._start + SUPPRESS_FRAME) // round(FRAME_S * SAMPLE_RATE))
        if learned is not None:
            lag = learned[0] * round(FRAME_S * SAMPLE_RATE)
            reference = self.meter.reference(self._start - lag, SUPPRESS_FRAME)
            power = np.abs(np.fft.rfft(reference * self._window)) ** 2
            self._held = np.maximum(power, SUPPRESS_TAIL * self._held)
            mic_power = np.abs(mic) ** 2
            if self._held.max() * learned[1] > 1e4:  # the coach sounds: something to learn the path from
                row = self._hops % SUPPRESS_HISTORY
                self._mic_power[row], self._echo_power[row] = mic_power, self._held
                self._hops += 1
                if self._hops % SUPPRESS_RELEARN == 0:
                    self._gain = None
            if self._gain is None:
                self._gain = self._learn_gain(learned[1])
            echo = SUPPRESS_OVER * self._gain * self._held
            if echo.any():
                mic = mic * np.sqrt(np.maximum(1.0 - echo / np.maximum(mic_power, 1e-9), SUPPRESS_FLOOR))
        out = np.fft.irfft(mic, SUPPRESS_FRAME) * self._window
        ready = self._overlap + out[:SUPPRESS_HOP]
        self._overlap = out[SUPPRESS_HOP:]
        return ready

    def _learn_gain(self, meter_gain: float) -> np.ndarray:
        """The echo path's power gain per bin: where the output sounded in a bin (within 30 dB of
        its peak over the history), the median of microphone over output; the meter's broadband
        gain where a bin has too little to go by."""
        n = min(self._hops, SUPPRESS_HISTORY)
        mic, echo = self._mic_power[:n], self._echo_power[:n]
        gain = np.full(mic.shape[1], meter_gain)
        # loud: within 30 dB of the bin's peak, and far above the microphone's quantization
        loud = (echo > 1e-3 * echo.max(axis=0, initial=0.0)) & (echo * meter_gain > 1e3)
        counts = loud.sum(axis=0)
        ratio = np.where(loud, mic / np.maximum(echo, 1e-9), np.nan)
        enough = counts >= 20
        if enough.any():
            gain[enough] = np.nanmedian(ratio[:, enough], axis=0)
        # smooth across neighbouring bins (the room's response is smooth at this resolution)
        smooth = np.convolve(np.log(np.maximum(gain, 1e-12)), np.ones(5) / 5, mode="same")
        return np.exp(smooth)


CONFIRM_BEFORE_S = 0.7
"""Audio before a spotted word's end that the confirmation decodes (more for longer phrases)."""
CONFIRM_AFTER_S = 0.15
"""Audio after it: the word's tail.  The action waits for it (part of the latency)."""
SAME_WORD_S = 0.5
"""Detections of one phrase this close together are one word (spotters match a word more than once)."""
VOICE_DB = 12.0
"""A 10 ms frame this far above the microphone's quiet floor is someone (or something) sounding."""
VOICE_GAP_S = 0.15
"""Shorter pauses do not end a spoken word: a word is a run of sounding frames (its *burst*)."""
VOICE_MIN_S = 0.08
"""Runs with fewer sounding frames than this are clicks or the noise's peaks, not words."""
RESIDUAL_DB = -6.0
"""After the echo suppressor, frames under the coach's expected echo by more than this are its
residue, not a word's sound (the suppressor leaves 10-20 dB less)."""
VOICE_PAD_S = 0.15
"""Audio either side of a word that its confirmation decodes too."""
CMN_CONTEXT_S = 1.0
"""Audio before a word that, with the word, sets the mean its confirmation normalizes by."""
VOICE_MAX_S = 2.0
"""Longer runs (continuous noise, the coach's voice) are not one word: candidates in them are
confirmed each on its own window (:data:`CONFIRM_BEFORE_S`)."""
RESTART_AFTER_S = 20.0
"""A spotter's utterance is restarted in a quiet moment after this long (its detection list grows)."""
RESTART_AT_MOST_S = 120.0
"""... and after this long anyway."""


def _temporary_file(suffix: str, text: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as handle:  # the decoder reads files
        handle.write(text)
    return handle.name


class _Spotter:
    """One PocketSphinx keyword-spotting decoder over the stream: new detections as they come.

    The utterance runs on across detections: ending it at each one (as one might) resets the
    search, and a spurious early detection of one word then costs the real one being spoken.
    """

    def __init__(self, pocketsphinx, thresholds: Mapping[str, float], dictionary: str, *, while_speaking: bool,
                 variants: Mapping[str, tuple[str, ...]]) -> None:
        lines = "".join(f"{spelling} /{value:.3g}/\n" for phrase, value in sorted(thresholds.items())
                        for spelling in _spellings(phrase, variants))
        keys = _temporary_file(".kws", lines)
        try:
            self._decoder = pocketsphinx.Decoder(kws=keys, dict=dictionary, lm=None, loglevel="FATAL",
                                                 samprate=SAMPLE_RATE)
        finally:
            os.unlink(keys)
        self.phrases = set(thresholds)
        self.while_speaking = while_speaking
        self._start = 0  # stream sample of the utterance's start
        self._seen: set[tuple[str, int]] = set()
        self._decoder.start_utt()

    def feed(self, data: bytes) -> list[tuple[str, int, int]]:
        """Feed samples; ``(phrase, start sample, end sample)`` of each new detection."""
        self._decoder.process_raw(data, False, False)
        if self._decoder.hyp() is None:
            return []
        found = []
        for segment in self._decoder.seg():
            phrase = _unspelled(segment.word)  # "back(2)": another way to say "back"
            if phrase in self.phrases and (phrase, segment.end_frame) not in self._seen:
                self._seen.add((phrase, segment.end_frame))
                found.append((phrase, self._start + segment.start_frame * SAMPLE_RATE // 100,
                              self._start + (segment.end_frame + 1) * SAMPLE_RATE // 100))
        return found

    def restart(self, at_sample: int) -> None:
        self._decoder.end_utt()
        self._start = at_sample
        self._seen.clear()
        self._decoder.start_utt()

    def close(self) -> None:
        try:
            self._decoder.end_utt()
        except Exception:
            pass


class Recognizer:
    """Voice commands in a 16 kHz mono int16 stream: :meth:`feed` returns the phrases heard.

    Two stages.  Keyword spotting (one spotter per threshold set, see :class:`Thresholds`) finds
    candidates with permissive thresholds; each candidate is then confirmed by decoding the
    audio around it against a grammar of the command phrases alone (and of ``rivals``, phrases
    that never act: :attr:`CommandWords.rivals`): the phrase that fits best must be the one
    spotted.  The command words are alike ("stop" / "softer", "back" / "next"), and keyword
    spotting scores each phrase on its own; the grammar makes them compete.

    The audio decoded is the whole spoken word: the run of frames sounding above the quiet floor
    (:data:`VOICE_DB`) that the candidate falls in, once it has ended.  All the candidates of one
    word share its decoding, so a word acts at most once, as the phrase that fits it best: a
    window cut at each candidate's own end let "stop", spotted early in "back", win on half of
    the word.  A candidate where nothing sounded above the floor is dropped.
    """

    def __init__(self, thresholds: Thresholds | Mapping[str, float], *, meter: EchoMeter | None = None,
                 suppress: bool = True, rivals: Iterable[str] = ()) -> None:
        pocketsphinx = _pocketsphinx()
        self.meter = meter
        """Where the microphone's audio goes for echo measurement (its clock: stream seconds)."""
        self.suppress = suppress
        """With a meter: take the coach's expected echo out of the sound first (:class:`EchoSuppressor`)."""
        if not isinstance(thresholds, Thresholds):
            thresholds = Thresholds.same(thresholds)
        self.thresholds = thresholds
        phrases = sorted(set(thresholds.quiet) | set(thresholds.speaking))
        # The grammar knows the rivals too (CommandWords.rivals): a bare "pause" that a spotter
        # took for "coach pause" is decoded as "pause", which no candidate is, and dropped.
        known = phrases + sorted(set(rivals) - set(phrases))
        lookup = pocketsphinx.Decoder(loglevel="FATAL", samprate=SAMPLE_RATE, lm=None)  # the full dictionary
        words = sorted({w for phrase in known for w in phrase.split()})
        self._phrase_words = frozenset(words)
        missing = [w for w in words if lookup.lookup_word(w) is None]
        if missing:
            raise VoicecoachError(f"the recognizer does not know the word {missing[0]!r}",
                                  hint="pick command and wake words from its English dictionary")
        variants = {w: v for w, v in pronunciations(MODELS[0]).items() if w in words}
        dictionary = _temporary_file(".dict", "".join(
            f"{w} {lookup.lookup_word(w)}\n" + "".join(f"{entry} {phones}\n" for entry, phones in _alternates(w, variants))
            for w in words))
        rules = " | ".join(known)
        grammar = _temporary_file(".gram", f"#JSGF V1.0;\ngrammar commands;\npublic <command> = {rules};\n")
        try:
            def spotter(tier: Mapping[str, float], while_speaking: bool) -> _Spotter:
                return _Spotter(pocketsphinx, tier, dictionary, while_speaking=while_speaking, variants=variants)

            if thresholds.quiet == thresholds.speaking:
                self._spotters = [spotter(thresholds.quiet, True)]
            else:
                self._spotters = [spotter(thresholds.quiet, False), spotter(thresholds.speaking, True)]
            self._grammar = pocketsphinx.Decoder(jsgf=grammar, dict=dictionary, lm=None, loglevel="FATAL",
                                                 samprate=SAMPLE_RATE)
        finally:
            os.unlink(dictionary)
            os.unlink(grammar)
        self._keep = round((CONFIRM_BEFORE_S + 3.0) * SAMPLE_RATE)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: stream time back to 0, nothing pending."""
        self._fed = 0  # samples decoded (the suppressor's output lags the microphone's)
        self._heard = 0  # samples the microphone delivered
        self._suppressor: EchoSuppressor | None = None
        self._recent = np.zeros(0, np.int16)  # the last seconds of audio, for confirmation
        self._pending: list[list] = []  # [phrase, start, end, while_speaking]
        self._confirmed: list[tuple[str, int]] = []  # (phrase, end) of the last second's hits
        self._words: dict[tuple[int, int], str | None] = {}  # (start, end) of a decoded word -> what it was
        self._acted: list[tuple[int, int]] = []  # the words (start, end) that made a hit
        self._utterance_start = 0
        self._quiet_run = 0
        self._levels: list[float] = []
        self._floor = 0.0
        for spotter in self._spotters:
            spotter.restart(0)

    def feed(self, samples: np.ndarray) -> list[Hit]:
        """Feed int16 samples; the phrases confirmed in them, in the order they were said."""
        data = np.ascontiguousarray(samples, dtype=np.int16)
        if self.meter is not None:
            self.meter.mic(self._heard / SAMPLE_RATE, data)
        self._heard += len(data)
        if self.meter is not None and self.suppress:
            if self._suppressor is None or self._suppressor.meter is not self.meter:
                self._suppressor = EchoSuppressor(self.meter)
            data = self._suppressor.process(data)
        raw = data.tobytes()
        for spotter in self._spotters if len(data) else ():
            for phrase, start, end in spotter.feed(raw):
                self._add_candidate(phrase, start, end, spotter.while_speaking)
        self._recent = np.concatenate([self._recent, data])[-self._keep :]
        self._fed += len(data)
        self._maybe_restart(data)
        hits = []
        bursts = self._bursts() if self._pending else []
        for candidate in list(self._pending):
            phrase, start, end, while_speaking = candidate
            verdict = self._settle(phrase, start, end, bursts)
            if verdict is None:
                continue  # its word goes on
            self._pending.remove(candidate)
            heard, word_start, word_end = verdict
            if heard is not None:
                alone = heard != phrase
                self._confirmed = [(p, e) for p, e in self._confirmed if e > end - SAMPLE_RATE] + [(heard, end)]
                # measured over the whole word: the spotter's match may lie before the sound it found
                near_end_db = None if self.meter is None else self.meter.near_end_db(
                    word_start / SAMPLE_RATE, word_end / SAMPLE_RATE, heard=self._frame_energies(word_start, word_end))
                hits.append(Hit(heard, word_end / SAMPLE_RATE, self._heard / SAMPLE_RATE, while_speaking and not alone,
                                near_end_db, self.meter is not None, alone))
        return sorted(hits, key=lambda h: h.end_s)

    def _frame_energies(self, start: int, end: int) -> dict[int, float] | None:
        """Energies of the decoded (echo-suppressed) audio per 10 ms frame of stream samples
        ``[start, end)``; ``None`` without a suppressor (the meter has the microphone's own)."""
        if self._suppressor is None:
            return None
        frame = round(FRAME_S * SAMPLE_RATE)
        first = self._fed - len(self._recent)
        lo, hi = -(-max(start, first) // frame), min(end, self._fed) // frame
        if hi <= lo:
            return {}
        return dict(zip(range(lo, hi), map(float, _energies(self._recent[lo * frame - first : hi * frame - first],
                                                             SAMPLE_RATE))))

    def _bursts(self) -> list[tuple[int, int]]:
        """The sounding runs (stream samples ``[start, end)``) in the recent audio, see :data:`VOICE_DB`."""
        first = self._fed - len(self._recent)
        frame = round(FRAME_S * SAMPLE_RATE)
        offset = -first % frame  # frames on the stream's 10 ms grid
        count = (len(self._recent) - offset) // frame
        if count <= 0:
            return []
        energy = _energies(self._recent[offset : offset + count * frame], SAMPLE_RATE)
        sounding = energy > max(self._floor**2, 1.0) * 10 ** (VOICE_DB / 10)
        # Where the coach sounds, a word is the room's only if enough of it rose above the coach's
        # echo; its extent is still where it sounded (its edges may not rise above the echo).
        echo = None if self.meter is None else self.meter.echo((first + offset) // frame, count)
        if echo is not None and self._suppressor is not None:
            # what the suppressor left of the coach's echo is no word: a word's extent (its edges
            # included) stands above it, well under the echo's expected level
            sounding &= energy > echo * 10 ** (RESIDUAL_DB / 10)
        voice = sounding if echo is None else sounding & (energy > echo * 10 ** (NEAR_END_DB / 10))
        edges = np.flatnonzero(np.diff(np.concatenate([[0], sounding.astype(np.int8), [0]])))
        runs: list[list[int]] = []  # [first frame, end frame]
        for lo, hi in zip(edges[::2], edges[1::2]):
            if runs and (lo - runs[-1][1]) * FRAME_S <= VOICE_GAP_S:
                runs[-1][1] = hi
            else:
                runs.append([lo, hi])
        base = first + offset
        return [(base + lo * frame, base + hi * frame) for lo, hi in runs
                if np.count_nonzero(voice[lo:hi]) * FRAME_S >= VOICE_MIN_S]

    def _settle(self, phrase: str, start: int, end: int,
                bursts: list[tuple[int, int]]) -> tuple[str | None, int, int] | None:
        """What a candidate's word was heard as (``None``: no command, or one that already acted),
        and where the word began and ended (the spotter may match early in it); ``None``: not
        yet (its word goes on).  Mostly the candidate's phrase; another one only where the
        confirmation heard a phrase of :attr:`Thresholds.grammar_alone` and no spotter offered it."""
        after = round(CONFIRM_AFTER_S * SAMPLE_RATE)
        mine = [(lo, hi) for lo, hi in bursts if lo < end and hi > start]
        if not mine:  # nothing sounded: noise the spotter took for a word
            return (None, start, end) if self._fed >= end + after else None
        lo, hi = mine[0][0], mine[-1][1]
        if hi - lo > VOICE_MAX_S * SAMPLE_RATE:  # not one word: the candidate's own window decides
            if self._fed < end + after:
                return None
            return (phrase if self._confirm(phrase, start, end) else None), start, end
        if hi > self._fed - round(VOICE_GAP_S * SAMPLE_RATE):
            return None
        if (lo, hi) not in self._words:
            pad = round(VOICE_PAD_S * SAMPLE_RATE)
            self._words[lo, hi] = self._decode(lo - pad, hi + pad, sounding=(lo, hi))
            self._words = {word: heard for word, heard in self._words.items() if word[1] > self._fed - self._keep}
        heard = self._words[lo, hi]
        if heard is None or any(a < hi and b > lo for a, b in self._acted):
            return None, lo, hi
        if heard != phrase and (heard not in self.thresholds.grammar_alone
                                or any(c[0] == heard and c[1] < hi and c[2] > lo for c in self._pending)):
            return None, lo, hi  # the grammar's phrase: its own candidate decides, or none may
        self._acted = [(a, b) for a, b in self._acted if b > self._fed - self._keep] + [(lo, hi)]
        return heard, lo, hi

    def _decode(self, lo: int, hi: int, *, sounding: tuple[int, int] | None = None) -> str | None:
        """The command phrase that fits stream samples ``[lo, hi)`` best (``None``: none at all,
        or, with ``sounding``, a phrase one of whose words is not where the run of sound is)."""
        first = self._fed - len(self._recent)
        # The decoder normalizes its features by a running cepstral mean, which would start from
        # wherever the last word it decoded (seconds ago) left it, and alike words flip with that:
        # espeak's "next" was heard as "back" one time in six.  First a pass in batch mode over the
        # word and the second before it (its result dropped) sets the mean from this sound alone.
        context = self._recent[max(0, lo - first - round(CMN_CONTEXT_S * SAMPLE_RATE)) : max(0, hi - first)]
        self._grammar.start_utt()
        self._grammar.process_raw(context.tobytes(), False, True)
        self._grammar.end_utt()
        start = max(lo, first)  # the window's first stream sample: the segments' frames count from it
        window = self._recent[start - first : max(0, hi - first)]
        self._grammar.start_utt()
        self._grammar.process_raw(window.tobytes(), False, False)
        self._grammar.end_utt()
        heard = self._grammar.hyp()
        if heard is None or (sounding is not None and not self._every_word_sounds(start, sounding)):
            return None
        return heard.hypstr.strip()

    def _every_word_sounds(self, window_start: int, sounding: tuple[int, int]) -> bool:
        """Whether each word of the phrase the grammar heard overlaps the run of sound by
        :data:`VOICE_MIN_S`.  The grammar may fit a short word into the quiet padding around
        the run: a bare "repeat" in room noise was heard as "coach repeat", its "coach" 90-180
        ms long and almost all before the word began (a "coach" said sounds 270-490 ms, inside
        it).  A word of its own is the run: on the benchmark the rule changed nothing for them."""
        per_frame = SAMPLE_RATE // 100
        least = VOICE_MIN_S * SAMPLE_RATE
        for segment in self._grammar.seg():
            if _unspelled(segment.word) not in self._phrase_words:
                continue  # silence, fillers
            start = window_start + segment.start_frame * per_frame
            end = window_start + (segment.end_frame + 1) * per_frame
            if min(end, sounding[1]) - max(start, sounding[0]) < least:
                return False
        return True

    def _add_candidate(self, phrase: str, start: int, end: int, while_speaking: bool) -> None:
        if any(p == phrase and abs(e - end) <= SAME_WORD_S * SAMPLE_RATE for p, e in self._confirmed):
            return  # the spotter's later, longer match of a word already confirmed
        for candidate in self._pending:  # both spotters found it: one candidate, held to the laxer rule
            if candidate[0] == phrase and abs(candidate[2] - end) <= SAME_WORD_S * SAMPLE_RATE:
                candidate[3] = candidate[3] or while_speaking
                return
        self._pending.append([phrase, start, end, while_speaking])

    def _confirm(self, phrase: str, start: int, end: int) -> bool:
        """Whether the command grammar, decoding the audio around the candidate, hears this phrase."""
        before = max(round(CONFIRM_BEFORE_S * SAMPLE_RATE), end - start + round(0.3 * SAMPLE_RATE))
        return self._decode(end - before, end + round(CONFIRM_AFTER_S * SAMPLE_RATE)) == phrase

    def _maybe_restart(self, data: np.ndarray) -> None:
        # Restart the spotters in a quiet moment (never mid-word): the level of each piece against
        # the quietest of the last seconds.
        if not len(data):
            return
        level = float(np.sqrt(np.mean(data.astype(np.float64) ** 2)))
        self._levels = (self._levels + [level])[-700:]
        self._floor = floor = sorted(self._levels)[len(self._levels) // 10]  # RMS of the quiet
        self._quiet_run = self._quiet_run + len(data) if level <= 2 * floor + 1 else 0
        age_s = (self._fed - self._utterance_start) / SAMPLE_RATE
        quiet = self._quiet_run >= 0.3 * SAMPLE_RATE and not self._pending
        if (age_s >= RESTART_AFTER_S and quiet) or age_s >= RESTART_AT_MOST_S:
            self._utterance_start = self._fed
            self._quiet_run = 0
            for spotter in self._spotters:
                spotter.restart(self._fed)

    def close(self) -> None:
        for spotter in self._spotters:
            spotter.close()


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
                 repeat_guard_s: float = REPEAT_GUARD_S, clear_db: float = math.inf) -> None:
        self.words = words
        self.echo_window_s = echo_window_s
        self.repeat_guard_s = repeat_guard_s
        self.clear_db = clear_db
        """See :attr:`Thresholds.clear_db`."""
        self._last_s: float | None = None

    def coach_covers(self, hit: Hit, timeline: Timeline, position: int) -> bool:
        """Whether the hit may be the coach's own sound (``position``: the track's, now).

        Yes where the echo meter heard the coach's output during the word and the microphone
        did not rise clearly above that echo; no where it rose :attr:`clear_db` above it; else
        where the timeline says the coach spoke while the word was heard (then only the strict
        spotter's hits count, see :meth:`decide`).
        """
        if hit.near_end_db is not None and hit.near_end_db < NEAR_END_DB:
            return True
        if hit.near_end_db is not None and math.isfinite(self.clear_db) and hit.near_end_db >= self.clear_db:
            return False
        heard_s = hit.found_s - hit.end_s + GATE_WORD_S
        return coach_speaking(timeline, position, round(heard_s * timeline.sample_rate))

    def decide(self, hit: Hit, timeline: Timeline, position: int) -> Decision:
        spoken = [w for w in words_of(hit.phrase) if w != self.words.wake_word]
        if spoken_recently(timeline, position, spoken, window_s=self.echo_window_s):
            return Decision(hit, None, "echo")
        # Over the coach's voice only a phrase spotted at the strict threshold that holds then
        # counts, and only where the meter (if one listens) heard it rise above the coach's echo.
        heard_echo = hit.near_end_db is not None and hit.near_end_db < NEAR_END_DB
        unknown_echo = hit.metered and hit.near_end_db is None
        if heard_echo or (self.coach_covers(hit, timeline, position) and (unknown_echo or not hit.while_speaking)):
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


OUTPUT_RESYNC_S = 0.25
"""An output block requested this far from where the last one ended follows a stall: stamped anew."""
OUTPUT_FOLLOW = 0.05
"""How much of the gap to the clock each output block's stamp closes."""


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
        self.filter = CommandFilter(words, clear_db=self.thresholds.clear_db)
        self._chunks: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._delivered = 0
        self._clock = (time.monotonic(), 0.0)
        self.meter: EchoMeter | None = None
        self._sounds_at: float | None = None  # where the next output block is stamped (stream seconds)
        self._player = None

    @classmethod
    def for_routine(cls, routine, *, mic: str | None = None, wake_word: str | None = None) -> "VoiceCommands":
        """The commands for a routine's language (``routine`` may be ``None``: English)."""
        words = command_words(getattr(routine, "language", "en") or "en").with_wake_word(wake_word)
        return cls(words, capture=MicCapture(mic))

    def _on_chunk(self, chunk: np.ndarray) -> None:
        """The microphone's delivery: stamps the stream clock, queues the piece for decoding."""
        self._delivered += len(chunk)
        self._clock = (time.monotonic(), self._delivered / SAMPLE_RATE)
        self._chunks.put(chunk)

    def stream_seconds(self) -> float:
        """Now, on the microphone stream's clock (seconds of audio delivered, and since the last piece)."""
        at, seconds = self._clock
        return seconds + (time.monotonic() - at)

    def _tap(self, samples: np.ndarray, sample_rate: int) -> None:
        """The player's output, stamped for the echo meter.

        The device sounds its blocks back to back, but asks for them in bursts (its buffer), so
        the clock at each request jitters by tens of milliseconds.  Each block is stamped where the
        last one ended, drawn slowly toward the clock (the two devices' rates differ a little) and
        moved to it only after a stall.
        """
        now = self.stream_seconds()
        at = self._sounds_at
        at = now if at is None or abs(now - at) > OUTPUT_RESYNC_S else at + (now - at) * OUTPUT_FOLLOW
        self._sounds_at = at + len(samples) / sample_rate
        self.meter.output(at, samples, sample_rate)

    def start(self, controller: Controller) -> None:
        self.meter = EchoMeter()
        self._sounds_at = None
        recognizer = Recognizer(self.thresholds, meter=self.meter, rivals=self.words.rivals)  # before the microphone opens: a missing model says so first
        player = controller.player
        player.output_tap = lambda samples: self._tap(samples, player.sample_rate)
        self._player = player
        ack = acknowledgement(controller.player.sample_rate) if self.ack else None
        self._thread = threading.Thread(target=self._decode, args=(recognizer, controller, ack),
                                        name="voicecoach-listen", daemon=True)
        self._thread.start()
        try:
            self.capture.start(self._on_chunk)
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
        if self._player is not None:
            self._player.output_tap = None
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
    "COMMAND_ACTIONS", "CommandFilter", "CommandWords", "Decision", "EchoMeter", "Hit", "MicCapture", "Recognizer",
    "Thresholds", "VoiceCommands",
    "acknowledgement", "calibrated_thresholds", "command_words", "feed_all", "spoken_recently", "thresholds_for",
]

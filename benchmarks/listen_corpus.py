"""Spoken commands and coach echo for benchmarks/calibrate_listen.py and benchmarks/listen.py.

A *stream* is 16 kHz microphone audio: command words (synthesized by the project's engines at
a speech rate) placed every few seconds, optionally over room noise and over the coach's own
voice at an echo level, with the truth (which word ends where) and, for the echo, the coach's
timeline (what the player knows it plays).  Everything is seeded: the same corpus every run.

The echo reaches the microphone as it would in a room (:func:`room_response`): late by some tens
of milliseconds (device buffers, the sound's way) and smeared by a short decaying room response,
while the player's reference is its clean output, stamped with the small, slowly varying error
of live play's block stamps (:data:`STAMP_JITTER_S`).  (Until 2026-11-30 the echo was an exact,
zero-delay copy of the reference: it flattered anything that uses the reference.)
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.play.spoken import RATE_16K, coach_track, noise, spoken_words, to_int16  # noqa: E402
from voicecoach.model import Timeline  # noqa: E402
from voicecoach.play.listen import CommandFilter, EchoMeter, Hit, Recognizer, command_words  # noqa: E402

ECHO_DB = -10.0
NOISE_DB = -40.0
GAP_S = 2.5
"""Seconds from one word's start to the next one's."""
ECHO_DELAY_S = (0.03, 0.09)
"""The echo's delay behind the reference, drawn per stream (live: the loopback's 60 ms, device buffers)."""
ROOM_DRR_DB = 3.0
"""Direct sound over the room's reflections (a laptop's speakers and microphone, close together)."""
ROOM_RT60_S = (0.15, 0.35)
"""The room's reverberation time, drawn per stream."""
STAMP_JITTER_S = 0.006
"""How far the reference's stamps stray (a slow wander, as live play's smoothed block stamps do)."""


def room_response(seed: int) -> np.ndarray:
    """The echo path for a seed: a delay, the direct sound, then exponentially decaying
    reflections (Gaussian, :data:`ROOM_DRR_DB` below it), scaled to the echo level :data:`ECHO_DB`."""
    rng = np.random.default_rng([seed, 7])
    delay = round(rng.uniform(*ECHO_DELAY_S) * RATE_16K)
    rt60 = rng.uniform(*ROOM_RT60_S)
    t = np.arange(1, round(rt60 * RATE_16K)) / RATE_16K
    tail = rng.normal(0.0, 1.0, len(t)) * np.exp(-6.9 * t / rt60)
    tail *= np.sqrt(10 ** (-ROOM_DRR_DB / 10) / np.sum(tail**2))
    response = np.concatenate([np.zeros(delay), [1.0], tail])
    return response / np.sqrt(np.sum(response**2)) * 10 ** (ECHO_DB / 20)


def through_room(reference: np.ndarray, seed: int) -> np.ndarray:
    """What the microphone hears of ``reference`` (float64, same length): :func:`room_response` applied."""
    response = room_response(seed)
    n = len(reference) + len(response)
    size = 1 << (n - 1).bit_length()
    echo = np.fft.irfft(np.fft.rfft(reference.astype(np.float64), size) * np.fft.rfft(response, size), size)
    return echo[: len(reference)]


def stamp_error_s(seed: int, at_s: float) -> float:
    """The seeded error of the reference's stamp at stream second ``at_s`` (within +-:data:`STAMP_JITTER_S`)."""
    phase, period = np.random.default_rng([seed, 8]).uniform(0, 2 * np.pi), 11.0
    return STAMP_JITTER_S * float(np.sin(2 * np.pi * at_s / period + phase))


@dataclass(frozen=True)
class Spoken:
    """One command in a stream."""

    phrase: str
    end_s: float
    """Where the word's clip ends in the stream."""
    engine: str
    rate: float
    noisy: bool
    echo: bool


@dataclass
class Stream:
    samples: np.ndarray
    spoken: list[Spoken]
    timeline: Timeline | None
    """The coach's timeline when the stream holds echo (its sample 0 is the stream's)."""
    reference: np.ndarray | None = None
    """The coach's output the echo came from (full level, aligned with the stream; the echo is
    this through :func:`room_response`)."""
    seed: int = 0
    """The echo path's and the stamps' seed."""


def work_folder() -> Path:
    folder = ROOT / "benchmarks" / ".listen"
    folder.mkdir(exist_ok=True)
    return folder


def coach(routine: str, engine: str) -> tuple[np.ndarray, Timeline]:
    return coach_track(ROOT / "scripts" / routine, engine=engine)


def command_stream(engine: str, rate: float, *, noisy: bool, echo: tuple[np.ndarray, Timeline] | None,
                   seed: int, phrases: list[str] | None = None, lead_s: float = 1.0) -> Stream:
    phrases = phrases or list(command_words("en").phrases)
    clips = spoken_words(phrases, engine=engine, rate=rate, folder=work_folder())
    gap = round(GAP_S * RATE_16K)
    length = round(lead_s * RATE_16K) + gap * len(phrases) + RATE_16K
    mixed = np.zeros(length)
    spoken = []
    rng = np.random.default_rng(seed)
    at = round(lead_s * RATE_16K)
    for phrase in rng.permutation(phrases):
        clip = clips[str(phrase)]
        start = at + int(rng.integers(0, RATE_16K // 2))
        mixed[start : start + len(clip)] += clip
        spoken.append(Spoken(str(phrase), (start + len(clip)) / RATE_16K, engine, rate, noisy, echo is not None))
        at += gap
    timeline = piece = None
    if echo is not None:
        track, timeline = echo
        offset = int(rng.integers(0, max(1, len(track) - length)))
        piece = track[offset : offset + length]
        mixed[: len(piece)] += through_room(piece, seed)
        timeline = shifted(timeline, offset)
    if noisy:
        mixed += noise(length, level_db=NOISE_DB, seed=seed)
    return Stream(to_int16(mixed), spoken, timeline, piece, seed)


def command_streams(engines, rates, echo: tuple[np.ndarray, Timeline], *, first_seed: int,
                    phrases: list[str] | None = None) -> list[Stream]:
    """Every condition of a corpus: engine x rate x quiet/noisy x without/with echo, seeded from
    ``first_seed + 1``; each stream says ``phrases`` (default: the English command words)."""
    streams = []
    seed = first_seed
    for engine in engines:
        for rate in rates:
            for noisy in (False, True):
                for with_echo in (False, True):
                    seed += 1
                    streams.append(command_stream(engine, rate, noisy=noisy, echo=echo if with_echo else None,
                                                  seed=seed, phrases=phrases))
    return streams


def shifted(timeline: Timeline, offset: int) -> Timeline:
    """The timeline seen from ``offset`` on (events' samples moved back by it)."""
    import dataclasses

    events = tuple(dataclasses.replace(e, start_sample=e.start_sample - offset) for e in timeline.events)
    return dataclasses.replace(timeline, events=events)


def echo_stream(track: np.ndarray, timeline: Timeline, *, seed: int = 0) -> Stream:
    """The coach alone at the echo level, through a room: what the microphone hears when nobody speaks."""
    return Stream(to_int16(through_room(track, seed)), [], timeline, track, seed)


LATENCY_S = 0.1
"""The player's position runs this far ahead of what the microphone hears (output buffers)."""


@dataclass(frozen=True)
class Outcome:
    hit: Hit
    taken: bool
    reason: str
    coach_covers: bool
    """The hit may be the coach's own sound, as play judges it (the echo meter where it tells)."""
    coach_spoke: bool
    """The coach spoke while the hit's word was heard (the timeline alone: play without a meter)."""


def run(recognizer: Recognizer, stream: Stream, *, chunk: int = 480,
        wake_word: str | None = None) -> tuple[list[Outcome], float, list[float]]:
    """Feed a stream as the microphone would; every hit with the echo filter's verdict (the
    recognizer's :attr:`Thresholds.clear_db` holds; ``wake_word``: its phrases are "WORD pause", ...).

    Returns the outcomes, the CPU seconds spent and the wall seconds of each feed call.
    """
    hits, cpu, feeds = spot(recognizer, stream, chunk=chunk)
    return decide(hits, stream, clear_db=recognizer.thresholds.clear_db, wake_word=wake_word), cpu, feeds


def spot(recognizer: Recognizer, stream: Stream, *, chunk: int = 480) -> tuple[list[Hit], float, list[float]]:
    """Feed a stream as the microphone would: the hits, the CPU seconds spent and the wall
    seconds of each feed call."""
    recognizer.reset()  # stream time starts at the stream's first sample
    recognizer.meter = EchoMeter() if stream.reference is not None else None
    hits: list[Hit] = []
    feeds: list[float] = []
    cpu0 = time.process_time()
    for start in range(0, len(stream.samples), chunk):
        t0 = time.perf_counter()
        if recognizer.meter is not None:  # what the player hands the device as it plays, stamped as live
            at_s = start / RATE_16K
            recognizer.meter.output(at_s + stamp_error_s(stream.seed, at_s), stream.reference[start : start + chunk],
                                    RATE_16K)
        hits += recognizer.feed(stream.samples[start : start + chunk])
        feeds.append(time.perf_counter() - t0)
    return hits, time.process_time() - cpu0, feeds


def decide(hits: list[Hit], stream: Stream, *, clear_db: float, wake_word: str | None = None) -> list[Outcome]:
    """The echo filter's verdict on each hit of a stream, as play decides while it plays (the
    decisions never change what the recognizer hears, so they may be made again afterwards)."""
    guard = CommandFilter(command_words("en").with_wake_word(wake_word), clear_db=clear_db)
    timeline = stream.timeline or Timeline("", RATE_16K, 0, (), ())
    outcomes: list[Outcome] = []
    for hit in hits:
        position = round((hit.found_s + LATENCY_S) * RATE_16K)
        decision = guard.decide(hit, timeline, position)
        outcomes.append(Outcome(hit, decision.action is not None, decision.reason,
                                guard.coach_covers(hit, timeline, position),
                                guard.coach_covers(dataclasses.replace(hit, near_end_db=None), timeline, position)))
    return outcomes


WORD_WINDOW_S = (-0.4, 1.5)
"""A hit this close to a spoken word's end (seconds before, after) is about that word."""


def is_about(outcome: Outcome, word: Spoken) -> bool:
    """Whether the outcome's hit is about ``word`` (:data:`WORD_WINDOW_S`)."""
    return WORD_WINDOW_S[0] <= outcome.hit.end_s - word.end_s <= WORD_WINDOW_S[1]


def near(outcomes: list[Outcome], word: Spoken) -> list[Outcome]:
    """The outcomes about ``word``."""
    return [o for o in outcomes if is_about(o, word)]


def action_of(phrase: str):
    """What a phrase does: a command word's action, also after a wake word ("coach pause")."""
    phrases = command_words("en").phrases
    return phrases[phrase] if phrase in phrases else phrases[phrase.split(" ", 1)[-1]]


def match(outcomes: list[Outcome], spoken: list[Spoken]):
    """Pair taken hits with the spoken words: ``(recognized [(Spoken, Hit)], false [Outcome])``."""
    recognized = []
    used: set[int] = set()
    false = []
    for outcome in outcomes:
        if not outcome.taken:
            continue
        for i, word in enumerate(spoken):
            if i not in used and is_about(outcome, word):
                used.add(i)
                if action_of(outcome.hit.phrase) is action_of(word.phrase):
                    recognized.append((word, outcome.hit))
                else:
                    false.append(outcome)
                break
        else:
            false.append(outcome)
    return recognized, false

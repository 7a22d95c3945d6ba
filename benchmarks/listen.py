"""Voice commands: recognition, false actions, latency and CPU of `play --listen` (run on demand).

    python benchmarks/listen.py                     # baseline (no suppressor) and play's recognizer
    python benchmarks/listen.py --suppressor-only   # play's recognizer alone
    python benchmarks/listen.py --suppressor-only --threshold 1e-45   # one threshold for every phrase
    python benchmarks/listen.py --suppressor-only --wake-word coach   # "coach pause", ... (play --wake-word)

Spoken commands: the nine command words (pause, resume, continue, next, back, repeat, louder,
softer, stop) by espeak and Piper at speech rates 0.85 and 1.15, quiet and over room noise
(-40 dBFS pink), alone and over the coach's voice at -10 dB (echo): 2 x 2 x 2 x 2 x 9 = 144
commands, through the recognizer with the calibrated thresholds and the echo filter, fed in
30 ms pieces as the microphone delivers them.  Rates, noise and echo differ from the
calibration's (benchmarks/calibrate_listen.py), so these figures are not its own.

- recognized: the right action within 1.5 s of the word's end (goal >= 95 %);
- false actions: actions taken on whole routines of coach audio at the echo level with nobody
  speaking, per hour of that audio (goal 0), and wrong actions during the commands;
- latency: from the end of the word (its clip's last sample) to the action: the audio the
  recognizer needed past the word's end, plus the 30 ms capture buffer, plus the time the feed
  call took (goal median <= 0.6 s);
- CPU: process time over audio time while listening, one core (goal <= 20 %).

With ``--wake-word WORD`` the streams say "WORD pause", "WORD next", ... and the recognizer
listens for those phrases only, with their calibrated thresholds (``calibrate_listen.py
--wake-word WORD``) where there are some; the same 144 commands said without the wake word
are then negatives too: every action on them is false.

The echo comes through a simulated room (a delay of 30-90 ms and a short decaying response, see
listen_corpus.py) and the reference is stamped with a slow jitter, as live.  Each figure is
measured twice on the same corpus in the same run: without the echo suppressor (the baseline)
and with it, as play runs.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field

from listen_corpus import Outcome, Spoken, coach, command_streams, echo_stream, match, near, run

from voicecoach.play.listen import Recognizer, command_words, thresholds_for

RATES = (0.85, 1.15)
ENGINES = ("espeak", "piper")
ECHO_ROUTINE = ("eye-area.yaml", "piper")
QUIET_ROUTINES = (("eye-area.yaml", "piper"), ("quick-3-minute.yaml", "espeak"))
CAPTURE_BUFFER_S = 0.03


@dataclass
class Figures:
    """One recognizer's figures over the corpus."""

    total: int = 0
    recognized: int = 0
    wrong: int = 0
    latencies: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    audio_s: float = 0.0
    quiet_false: int = 0
    bare_false: int = 0
    """Actions on commands said without the wake word (``--wake-word``)."""
    bare_total: int = 0
    quiet_s: float = 0.0
    by_part: Counter = field(default_factory=Counter)
    """(engine, echo) -> [recognized, said] as two counters ``("ok", ...)``, ``("said", ...)``."""
    missed: Counter = field(default_factory=Counter)
    why_missed: Counter = field(default_factory=Counter)
    """What became of the missed words (:func:`why_missed`)."""


WHY_DROPPED = {
    "gate": "heard, dropped as the coach's sound (near-end under the echo, or only the quiet threshold passed "
            "while the coach spoke)",
    "echo": "heard, dropped: the coach had just said it",
}


def why_missed(word: Spoken, outcomes: list[Outcome]) -> str:
    """What the recognizer and the echo filter made of a word it missed."""
    about = near(outcomes, word)
    own = [o for o in about if o.hit.phrase == word.phrase]
    if own:
        return WHY_DROPPED.get(own[0].reason, f"heard, dropped ({own[0].reason})")
    if any(o.taken for o in about):
        return "taken for another command"
    if about:
        return "heard as another command, dropped"
    return "no hit (no candidate of its phrase, or the confirmation heard another)"


def condition(stream) -> str:
    """A command stream's condition: ``espeak x0.85 noisy echo``."""
    said = stream.spoken[0]
    return f"{said.engine} x{said.rate} {'noisy' if said.noisy else 'quiet'} {'echo' if said.echo else 'no echo'}"


def measure(thresholds, streams, quiet_streams, *, suppress: bool, bare_streams=(), wake_word=None,
            rivals=()) -> Figures:
    """The recognizer over every stream (``suppress``: with the echo suppressor); every action
    on ``bare_streams`` (commands without the wake word) is false."""
    label = "suppressor" if suppress else "no suppressor"
    figures = Figures()

    def recognize(stream):
        """One recognizer, as play makes it, over one stream: run's outcomes, CPU and feed times."""
        recognizer = Recognizer(thresholds, suppress=suppress, rivals=rivals)
        try:
            return run(recognizer, stream, wake_word=wake_word)
        finally:
            recognizer.close()

    for stream in bare_streams:
        outcomes, _, _ = recognize(stream)
        taken = [o for o in outcomes if o.taken]
        figures.bare_false += len(taken)
        figures.bare_total += len(stream.spoken)
        print(f"[{label}] without the wake word: {condition(stream)}: {len(taken)} actions "
              f"({', '.join(o.hit.phrase for o in taken) or 'none'})", flush=True)
    for stream in streams:
        outcomes, cpu, feeds = recognize(stream)
        figures.cpu_s += cpu
        figures.audio_s += len(stream.samples) / 16000
        hits, false = match(outcomes, stream.spoken)
        mean_feed = statistics.fmean(feeds)
        figures.latencies += [hit.found_s - word.end_s + CAPTURE_BUFFER_S + mean_feed for word, hit in hits]
        figures.total += len(stream.spoken)
        figures.recognized += len(hits)
        figures.wrong += len(false)
        said = stream.spoken[0]
        figures.by_part["ok", said.engine, said.echo] += len(hits)
        figures.by_part["said", said.engine, said.echo] += len(stream.spoken)
        heard = {id(word) for word, _ in hits}
        figures.missed.update(f"{w.phrase} ({w.engine})" for w in stream.spoken if id(w) not in heard)
        figures.why_missed.update(why_missed(w, outcomes) for w in stream.spoken if id(w) not in heard)
        print(f"[{label}] {condition(stream):<32} {len(hits)}/{len(stream.spoken)}, wrong actions {len(false)}",
              flush=True)
    for name, stream in quiet_streams:
        outcomes, cpu, _ = recognize(stream)
        taken = [o for o in outcomes if o.taken]
        figures.quiet_false += len(taken)
        figures.quiet_s += len(stream.samples) / 16000
        figures.cpu_s += cpu
        figures.audio_s += len(stream.samples) / 16000
        print(f"[{label}] {name} echo alone, {len(stream.samples) / 16000 / 60:.1f} min: {len(taken)} actions "
              f"({', '.join(o.hit.phrase for o in taken) or 'none'}); echo filter dropped "
              f"{sum(1 for o in outcomes if o.reason == 'echo')}", flush=True)
    return figures


def report(label: str, figures: Figures) -> None:
    latencies = sorted(figures.latencies)
    p90 = latencies[int(0.9 * (len(latencies) - 1))] if latencies else float("nan")
    print(f"--- {label}")
    print(f"recognized: {figures.recognized}/{figures.total} = {100 * figures.recognized / figures.total:.1f} % "
          f"(goal >= 95 %)")
    for engine in ENGINES:
        parts = [f"{'over the coach' if echo else 'alone'} {figures.by_part['ok', engine, echo]}/"
                 f"{figures.by_part['said', engine, echo]}" for echo in (False, True)]
        print(f"  {engine}: {', '.join(parts)}")
    print(f"missed: {', '.join(f'{k} x{n}' for k, n in figures.missed.most_common()) or 'none'}")
    for why, n in figures.why_missed.most_common():
        print(f"  {n} x {why}")
    print(f"wrong actions while commands were spoken: {figures.wrong}")
    print(f"false actions on {figures.quiet_s / 60:.1f} min of coach echo: {figures.quiet_false} = "
          f"{figures.quiet_false / (figures.quiet_s / 3600):.1f} per hour (goal 0)")
    if figures.bare_total:
        print(f"actions on {figures.bare_total} commands said without the wake word: {figures.bare_false} (goal 0)")
    if latencies:
        print(f"latency end of word -> action: median {statistics.median(latencies):.2f} s, p90 {p90:.2f} s "
              f"(goal median <= 0.6 s)")
    print(f"CPU while listening: {100 * figures.cpu_s / figures.audio_s:.1f} % of one core (goal <= 20 %)")


def main() -> None:
    thresholds = thresholds_for(command_words("en"))  # as play: the words' phrases only (not the wake phrases)
    echo = coach(*ECHO_ROUTINE)
    phrases = wake_word = None
    bare_streams, rivals = [], ()
    if "--wake-word" in sys.argv:
        wake_word = sys.argv[sys.argv.index("--wake-word") + 1]
        words = command_words("en").with_wake_word(wake_word)
        thresholds, phrases, rivals = thresholds_for(words), sorted(words.phrases), words.rivals
        bare_streams = command_streams(ENGINES, RATES, echo, first_seed=700)
    if "--threshold" in sys.argv:  # the calibration's trade-off against one permissive threshold for all
        value = float(sys.argv[sys.argv.index("--threshold") + 1])
        thresholds = {phrase: value for phrase in thresholds.quiet}
    streams = command_streams(ENGINES, RATES, echo, first_seed=500, phrases=phrases)
    quiet_streams = [(f"{name} ({engine})", echo_stream(*coach(name, engine), seed=900 + i))
                     for i, (name, engine) in enumerate(QUIET_ROUTINES)]
    modes = [True] if "--suppressor-only" in sys.argv else [False, True]
    results = {suppress: measure(thresholds, streams, quiet_streams, suppress=suppress, bare_streams=bare_streams,
                                 wake_word=wake_word, rivals=rivals)
               for suppress in modes}
    print()
    print(f"machine: {platform.machine()}, {platform.processor() or platform.platform()}, "
          f"Python {platform.python_version()}, {os.cpu_count()} cores")
    for suppress, figures in results.items():
        report("with the echo suppressor (play --listen)" if suppress else "baseline: without the echo suppressor",
               figures)


if __name__ == "__main__":
    main()

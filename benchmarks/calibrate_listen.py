"""Tune the keyword-spotting threshold of every voice command; writes the thresholds data file.

    python benchmarks/calibrate_listen.py        # -> voicecoach/vocab/commands/thresholds-en-us.json

Positives: every command word spoken by espeak and Piper at speech rates 0.9 and 1.1, quiet and
over room noise, alone and over the coach's voice at -10 dB (echo).  Negatives: a whole routine
of coach audio at the echo level (scripts/morning.yaml in Piper's voice).
benchmarks/listen.py measures on other rates, noise and routines, so the figures in the README
are not the calibration's own.

For each threshold of a grid, all phrases are spotted at once and each phrase is scored on its
own hits (a hit near a word of its own counts as recognized, anywhere else as false, echo
dropped by the filter as in play); per phrase the threshold kept is the one with no false hit
that recognizes the most of its own positives; among equals, the strictest.  Nothing here is set by hand but the grid.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter

from listen_corpus import ROOT, command_stream, coach, echo_stream, run

from voicecoach.play.listen import Recognizer, command_words, thresholds_path

GRID = [10.0 ** -e for e in (-10, -5, -2, 0, 2, 5, 10, 15, 20, 25, 30)]
RATES = (0.9, 1.1)
WINDOW_S = (-0.4, 1.5)
"""A hit this close to a spoken word's end (seconds before, after) is about that word."""
ENGINES = ("espeak", "piper")
NEGATIVES = (("morning.yaml", "piper"),)


def main() -> None:
    words = command_words("en")
    phrases = sorted(words.phrases)
    echo = coach("quick-3-minute.yaml", "piper")
    positives = []
    seed = 100
    for engine in ENGINES:
        for rate in RATES:
            for noisy in (False, True):
                for with_echo in (False, True):
                    seed += 1
                    positives.append(command_stream(engine, rate, noisy=noisy, echo=echo if with_echo else None,
                                                    seed=seed))
    negatives = [echo_stream(*coach(name, engine)) for name, engine in NEGATIVES]
    negative_s = sum(len(s.samples) for s in negatives) / 16000
    print(f"{sum(len(s.spoken) for s in positives)} spoken commands, {negative_s / 60:.1f} min of coach echo")
    global _WORK
    _WORK = (phrases, positives, negatives)
    with multiprocessing.get_context("fork").Pool(3) as pool:
        table = dict(zip(GRID, pool.map(_measure, GRID)))
    for threshold, (recognized, total, false) in table.items():
        print(f"threshold {threshold:.0e}: recognized {sum(recognized.values())}/{sum(total.values())}, "
              f"false {sum(false.values())}")
    _report(words, phrases, table, positives, negative_s)


_WORK: tuple = ()


def _measure(threshold: float) -> tuple[Counter, Counter, Counter]:
    phrases, positives, negatives = _WORK
    recognizer = Recognizer({p: threshold for p in phrases})
    recognized: Counter = Counter()
    total: Counter = Counter()
    false: Counter = Counter()
    for stream in positives:  # each phrase on its own: a hit counts whatever else was spotted near it
        outcomes, _, _ = run(recognizer, stream)
        total.update(word.phrase for word in stream.spoken)
        for outcome in outcomes:
            if outcome.reason == "echo":
                continue
            near = [w for w in stream.spoken if WINDOW_S[0] <= outcome.hit.end_s - w.end_s <= WINDOW_S[1]]
            if any(w.phrase == outcome.hit.phrase for w in near):
                recognized[outcome.hit.phrase] += 1
            else:
                false[outcome.hit.phrase] += 1
    for stream in negatives:
        outcomes, _, _ = run(recognizer, stream)
        false.update(o.hit.phrase for o in outcomes if o.reason != "echo")
    recognizer.close()
    return recognized, total, false


def _report(words, phrases, table, positives, negative_s: float) -> None:
    chosen = {}
    report = {}
    for phrase in phrases:
        def score(threshold: float) -> tuple:
            recognized, _, false = table[threshold]
            return (-false[phrase], recognized[phrase], threshold)  # no false action first, then recall, then strict

        best = max(GRID, key=score)
        recognized, total, false = table[best]
        chosen[phrase] = best
        report[phrase] = {"recognized": f"{recognized[phrase]}/{total[phrase]}", "false_actions": false[phrase]}
        print(f"{phrase:>9}: {best:.0e}  recognized {recognized[phrase]}/{total[phrase]}, false {false[phrase]}")
    data = {
        "model": words.model,
        "made_by": "benchmarks/calibrate_listen.py",
        "grid": [f"{t:.0e}" for t in GRID],
        "thresholds": {p: float(f"{chosen[p]:.0e}") for p in phrases},
        "calibration": report,
        "positives": sum(len(s.spoken) for s in positives),
        "negative_minutes": round(negative_s / 60, 1),
    }
    path = ROOT / "voicecoach" / "vocab" / "commands" / thresholds_path(words.model).name
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Measure each speech engine's speaking rate per language on the library routines.

    python benchmarks/speaking_rate.py [--write] [--cache-dir DIR]

For every engine that really speaks (espeak, and Piper for the languages it has a voice for)
and the fake engine, it synthesizes the distinct phrases of the library routines in scripts/
(through the cache, so a second run is quick), fits the model of voicecoach/estimate.py to
the clip lengths per engine and language by least squares, and prints, per routine, the
``preview`` total (the estimate) against the compiled total.  ``--write`` stores the fitted
coefficients in voicecoach/speaking_rates.json, which the estimate reads.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voicecoach import estimate  # noqa: E402
from voicecoach.compile import collect_phrases  # noqa: E402
from voicecoach.pipeline import Settings, build, plan, routine_vocabulary  # noqa: E402
from voicecoach.script import load_routine  # noqa: E402
from voicecoach.engines.piper import installed as piper_installed  # noqa: E402

SCRIPTS = sorted((ROOT / "scripts").glob("*.yaml"))
RATES_PATH = ROOT / "voicecoach" / estimate.RATES_FILE


PIPER_ROUTINES = ("cheeks-lift.yaml", "morning.yaml", "quick-3-minute.yaml", "full-session.yaml")
"""Piper is measured on these (it is slow on a small machine; 170 phrases are plenty for a fit)."""


def engines_for(path: Path, language: str) -> list[str]:
    """Engines measured for a routine: espeak always, Piper where it has a voice (English), fake."""
    names = ["espeak", "fake"]
    if piper_installed() and language.split("-")[0] == "en" and path.name in PIPER_ROUTINES:
        names.append("piper")
    return names


def measure(cache_dir: Path) -> tuple[dict, dict]:
    """``samples[(engine, language)] = [(features, seconds)]`` and ``totals[(engine, routine)] = (compiled_s, build)``."""
    samples: dict[tuple[str, str], list] = defaultdict(list)
    builds = {}
    for path in SCRIPTS:
        routine = load_routine(path)
        language = routine.language.split("-")[0]
        phrases = collect_phrases(routine, vocab=routine_vocabulary(routine))
        for engine in engines_for(path, language):
            settings = Settings(engine=engine, cache_dir=cache_dir)
            result = build(routine, settings=settings)
            rate = result.speech.settings.sample_rate
            for text in phrases:
                samples[(engine, language)].append((estimate.text_features(text), result.speech.samples(text) / rate))
            builds[(engine, path.name)] = (routine, settings, result.timeline.duration_s)
            print(f"  measured {engine:<6} {path.name:<26} {len(phrases):>3} phrases", file=sys.stderr)
    return samples, builds


def fit(rows: list) -> dict[str, float]:
    """Least squares of seconds on (1, letters, words, breaks), coefficients kept non-negative."""
    x = np.array([[1.0, *features] for features, _ in rows])
    y = np.array([seconds for _, seconds in rows])
    active = list(range(4))
    while True:  # drop a negative coefficient and fit again (a tiny non-negative least squares)
        coef = np.zeros(4)
        coef[active] = np.linalg.lstsq(x[:, active], y, rcond=None)[0]
        negative = [i for i in active if coef[i] < 0]
        if not negative:
            break
        active.remove(min(negative, key=lambda i: coef[i]))
    return {name: round(float(value), 5) for name, value in zip(("margin_s", "letter_s", "word_s", "break_s"), coef)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the fit in voicecoach/speaking_rates.json")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "voicecoach-speaking-rate")
    args = parser.parse_args()

    samples, builds = measure(args.cache_dir)
    table: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (engine, language), rows in sorted(samples.items()):
        table[engine][language] = fit(rows)
    for engine in table:
        table[engine]["*"] = fit([row for (name, _), rows in samples.items() if name == engine for row in rows])
    if args.write:
        RATES_PATH.write_text(json.dumps({"version": 1, "engines": table}, indent=1, sort_keys=True) + "\n",
                              encoding="utf-8")
        estimate._table.cache_clear()
        print(f"wrote {RATES_PATH.relative_to(ROOT)}")

    print(f"machine: {platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(f"{'engine':<7} {'language':<8} {'phrases':>7}  {'letter ms':>9} {'word ms':>8} {'break ms':>8} "
          f"{'margin ms':>9}  phrase error (median)")
    for engine in sorted(table):
        for language, values in sorted(table[engine].items()):
            if language == "*":
                continue
            rate = estimate.SpeakingRate(**values)
            rows = samples[(engine, language)]
            errors = [abs(rate.margin_s + rate.letter_s * f[0] + rate.word_s * f[1] + rate.break_s * f[2] - s) / s
                      for f, s in rows]
            print(f"{engine:<7} {language:<8} {len(rows):>7}  {values['letter_s'] * 1000:>9.1f} "
                  f"{values['word_s'] * 1000:>8.1f} {values['break_s'] * 1000:>8.1f} {values['margin_s'] * 1000:>9.1f}"
                  f"  {np.median(errors) * 100:.1f} %")
    print()
    print(f"{'engine':<7} {'routine':<26} {'preview':>8} {'compiled':>8} {'error':>7}")
    worst = 0.0
    for (engine, name), (routine, settings, compiled_s) in sorted(builds.items()):
        estimated_s = plan(routine, settings=settings).duration_s
        error = (estimated_s - compiled_s) / compiled_s
        worst = max(worst, abs(error))
        print(f"{engine:<7} {name:<26} {estimated_s:>8.1f} {compiled_s:>8.1f} {error * 100:>+6.1f} %")
    print(f"largest preview error: {worst * 100:.1f} %")


if __name__ == "__main__":
    main()

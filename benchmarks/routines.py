"""Generated routines of a given length with many distinct phrases, for the benchmark."""

from __future__ import annotations

from pathlib import Path

AREAS = ["forehead", "brows", "eyes", "cheeks", "mouth", "chin", "neck", "temples"]
VERBS = ["Lift", "Press", "Smooth", "Hold", "Draw", "Soften", "Widen", "Lengthen", "Open", "Relax"]
NOUNS = ["brows", "cheeks", "lips", "chin", "jaw line", "temples", "forehead", "eyelids", "neck", "smile"]


def routine_yaml(minutes: int, *, seed: int = 0) -> str:
    """A routine of about ``minutes`` minutes: exercise + releasing massage pairs, rests between.

    Every pair has its own name, instructions, tip and cue, so the phrase count grows with
    the length, like a real library session (one pair lasts about 66 s with espeak).
    """
    pairs = max(1, round(minutes * 60 / 66))
    lines = [f"routine: Benchmark {minutes} minutes", "steps:"]
    for i in range(pairs):
        k = i + seed
        area = AREAS[k % len(AREAS)]
        verb, noun = VERBS[k % len(VERBS)], NOUNS[(k * 3) % len(NOUNS)]
        lines += [
            f"  - exercise: {verb} the {noun}, part {i + 1}",
            f"    area: {area}",
            f"    say: Place your fingertips on the {noun} and {verb.lower()} gently against them, movement {i + 1}.",
            f"    tip: Keep breathing slowly; this is tip number {i + 1}.",
            f"    cue: {verb} now, round {i + 1}.",
            "    reps: 3",
            "    hold: 5s",
            "    release: 3s",
            f"  - massage: Release the {noun}, part {i + 1}",
            f"    area: {area}",
            f"    stroke: Sweep outward across the {noun}, stroke set {i + 1}.",
            "    strokes: 6",
            "    tempo: 2s",
            "    count: true",
            "    pressure: light",
        ]
        if i % 4 == 3:
            lines.append("  - rest: 15s")
    return "\n".join(lines) + "\n"


def write_routine(folder: Path, minutes: int, *, seed: int = 0) -> Path:
    path = folder / f"bench-{minutes}.yaml"
    path.write_text(routine_yaml(minutes, seed=seed), encoding="utf-8")
    return path

"""Tune the keyword-spotting thresholds of every voice command; writes the thresholds data file.

    python benchmarks/calibrate_listen.py           # -> voicecoach/vocab/commands/thresholds-en-us.json
    python benchmarks/calibrate_listen.py --reuse   # choose again from the last run's measurements
    python benchmarks/calibrate_listen.py --clear-only  # keep the thresholds: clear_db and grammar_alone anew
    python benchmarks/calibrate_listen.py --wake-word coach  # add the thresholds of "coach pause", ...

Positives: every command word spoken by espeak and Piper at speech rates 0.8, 0.9, 1.1 and 1.2,
quiet and over room noise, alone and over the coach's voice at -10 dB (echo; two routines, two
voices): 288 words.  Negatives: whole routines of coach audio at the echo level, in Piper's and
in espeak's voice.  benchmarks/listen.py measures on other rates, noise and routines, so the
figures in the README are not the calibration's own.

For each threshold of a grid, all phrases are spotted and confirmed at once (the recognizer as
``play --listen`` runs it), and each hit is scored for its phrase: near a word of its own it is
recognized, anywhere else it is false (the coach's own words are dropped by the echo filter as
in play).  Hits are counted apart for the two states of the coach: quiet, and speaking (what
the microphone hears then is mostly the coach): quiet where play, with its echo meter or
without one, takes the coach for silent; speaking where, without a meter, it spoke.  Per phrase and state the threshold kept is the
most permissive one with no false hit at it or at any stricter one, then two steps (five decades) stricter
(the benchmark's corpus is not this one; a margin against fitting this one).  The threshold
that holds while the coach speaks also holds in the quiet, so its false hits count in both.
Then, with the thresholds chosen, how far a word must rise above the coach's echo for the quiet
set to hold while the coach speaks (``clear_db``, see :class:`voicecoach.play.listen.Thresholds`):
the lowest of a grid (40 dB down to 6, steps of 2) at which no more actions are false than with
no such rule, at it or any higher value, then :data:`CLEAR_MARGIN_STEPS` higher.  Last, the
phrases the confirmation alone may find (``grammar_alone``): with every phrase allowed, those
of whose actions found so at least one was right and none false (a phrase the corpus never
found so has nothing to show for it).
Nothing here is set by hand but the grids and the margins.

``--wake-word WORD`` calibrates the phrases of ``play --wake-word WORD`` ("WORD pause", ...)
and adds them to the file (the command words' thresholds, ``clear_db`` and ``grammar_alone``
stay).  Positives: those phrases, spoken as above (288).  Negatives: the coach's echo as
above, and every command word said without the wake word (espeak and Piper, rates 0.8, 0.9,
1.1 and 1.2, quiet and noisy, alone and over the coach: 288), where any action is false.  The grid is
every other value of the commands' (steps of five decades: 16-26 minutes on 2 cores), and
the margin one step, the same five decades.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import pickle
import sys
from collections import Counter
from pathlib import Path

from listen_corpus import ROOT, coach, command_streams, decide, echo_stream, is_about, match, run, spot, work_folder

from voicecoach.play.listen import Recognizer, Thresholds, command_words, thresholds_path

GRID = [10.0 ** -(e / 2) for e in range(0, 105, 5)]
"""Strictest first: 1e0 to 1e-50 in steps of 10^2.5."""
MARGIN_STEPS = 2
"""Five decades."""
ENGINES = ("espeak", "piper")
POSITIVES = (
    ((0.9, 1.1), ("quick-3-minute.yaml", "piper"), 100),
    ((0.8, 1.2), ("neck-jawline.yaml", "espeak"), 300),
)
"""Two sets of every command word: (speech rates, the routine whose voice is the echo, first seed).
With one set (144 words) a phrase's false hits came by the luck of a few words: one calibration
set "stop" to 1e-10 in the quiet (CI's live test missed it twice), the next let through three
wrong actions on the benchmark's corpus."""
NEGATIVES = (("morning.yaml", "piper"), ("neck-jawline.yaml", "espeak"))
STATES = ("quiet", "speaking")
CLEAR_GRID = [float(db) for db in range(40, 5, -2)]
"""Strictest first: 40 dB down to 6 (the gate's own :data:`NEAR_END_DB`)."""
CLEAR_MARGIN_STEPS = 2
"""Four dB."""


WAKE_BARE = (
    ((0.9, 1.1), ("quick-3-minute.yaml", "piper"), 400),
    ((0.8, 1.2), ("neck-jawline.yaml", "espeak"), 450),
)
"""The command words said without the wake word, twice over (negatives of ``--wake-word``):
with one set (144 words; before Recognizer._every_word_sounds) the thresholds chosen let 5 of
the benchmark's 144 act."""


def main() -> None:
    if "--wake-word" in sys.argv:
        return wake_main(sys.argv[sys.argv.index("--wake-word") + 1])
    words = command_words("en")
    phrases = sorted(words.phrases)
    positives = [stream for rates, echo, seed in POSITIVES
                 for stream in command_streams(ENGINES, rates, coach(*echo), first_seed=seed)]
    negatives = [echo_stream(*coach(name, engine), seed=200 + i) for i, (name, engine) in enumerate(NEGATIVES)]
    negative_s = sum(len(s.samples) for s in negatives) / 16000
    print(f"{sum(len(s.spoken) for s in positives)} spoken commands, {negative_s / 60:.1f} min of coach echo",
          flush=True)
    path = _data_file(words)
    old = json.loads(path.read_text()) if path.exists() else {}
    if "--clear-only" in sys.argv:
        data = old
    else:
        data = _thresholds(words, phrases, positives, negatives, negative_s)
        # the wake phrases' thresholds (--wake-word) stay
        for state in STATES:
            data["thresholds"][state].update({p: v for p, v in old.get("thresholds", {}).get(state, {}).items()
                                              if p not in words.phrases})
        data["calibration"].update({p: v for p, v in old.get("calibration", {}).items() if p not in words.phrases})
        if "wake_words" in old:
            data["wake_words"] = old["wake_words"]
    thresholds = Thresholds(*({p: data["thresholds"][state][p] for p in phrases} for state in STATES))
    data["clear_db"], data["clear_calibration"] = _clear(thresholds, positives, negatives)
    every = Thresholds(thresholds.quiet, thresholds.speaking, data["clear_db"], frozenset(phrases))
    data["grammar_alone"], data["grammar_alone_calibration"] = _grammar_alone(every, positives, negatives)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"clear_db {data['clear_db']}, grammar_alone {data['grammar_alone']}; wrote {path.relative_to(ROOT)}")


def _data_file(words) -> Path:
    """The thresholds file of the words' model, in the source tree (the package data)."""
    return ROOT / "voicecoach" / "vocab" / "commands" / thresholds_path(words.model).name


def wake_main(wake_word: str) -> None:
    """``--wake-word``: the wake phrases' thresholds, added to the data file."""
    words = command_words("en").with_wake_word(wake_word)
    phrases = sorted(words.phrases)
    positives = [stream for rates, echo, seed in POSITIVES
                 for stream in command_streams(ENGINES, rates, coach(*echo), first_seed=seed, phrases=phrases)]
    bare = [stream for rates, echo, seed in WAKE_BARE
            for stream in command_streams(ENGINES, rates, coach(*echo), first_seed=seed)]
    negatives = [echo_stream(*coach(name, engine), seed=200 + i) for i, (name, engine) in enumerate(NEGATIVES)]
    negative_s = sum(len(s.samples) for s in negatives) / 16000
    print(f"{sum(len(s.spoken) for s in positives)} spoken wake phrases, {sum(len(s.spoken) for s in bare)} "
          f"commands without the wake word, {negative_s / 60:.1f} min of coach echo", flush=True)
    grid, margin = GRID[::2], 1
    found = _thresholds(words, phrases, positives, bare + negatives, negative_s, grid=grid, margin=margin,
                        saved_name=f"calibration-table-{words.wake_word}.pickle", wake_word=words.wake_word)
    path = _data_file(words)
    data = json.loads(path.read_text())
    for state in STATES:
        data["thresholds"][state].update(found["thresholds"][state])
    data["calibration"].update(found["calibration"])
    data.setdefault("wake_words", {})[words.wake_word] = {
        "grid": found["grid"], "margin_steps": margin, "positives": found["positives"],
        "without_wake_word": sum(len(s.spoken) for s in bare), "negative_minutes": found["negative_minutes"]}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote the thresholds of {len(phrases)} phrases with the wake word {words.wake_word!r} to "
          f"{path.relative_to(ROOT)}")


def _thresholds(words, phrases, positives, negatives, negative_s: float, *, grid=GRID, margin=MARGIN_STEPS,
                saved_name="calibration-table.pickle", wake_word: str | None = None) -> dict:
    """The thresholds per phrase and state, measured over the grid (the data file's content);
    ``wake_word``: the phrases are ``words.with_wake_word(wake_word)``'s."""
    saved = work_folder() / saved_name
    # --reuse: choose again from the saved measurements, measuring only thresholds new to the grid
    table = pickle.loads(saved.read_bytes()) if "--reuse" in sys.argv and saved.exists() else {}
    missing = [t for t in grid if t not in table]
    if missing:
        global _WORK
        _WORK = (phrases, positives, negatives, words.rivals, wake_word)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            table.update(zip(missing, pool.map(_measure, missing)))
        saved.write_bytes(pickle.dumps(table))
    table = {t: table[t] for t in grid}
    for threshold, (recognized, false) in table.items():
        print(f"threshold {threshold:.2g}: recognized {sum(recognized.values())}, false "
              + ", ".join(f"{state} {sum(v for (s, _), v in false.items() if s == state)}" for state in STATES))
    return _report(words, phrases, table, positives, negative_s, grid=grid, margin=margin)


def _spot(index: int):
    thresholds, streams = _WORK
    recognizer = Recognizer(thresholds)
    hits, _, _ = spot(recognizer, streams[index])
    recognizer.close()
    return hits


def _hits(thresholds: Thresholds, streams) -> list:
    """The hits in each stream, with ``thresholds`` (on both cores)."""
    global _WORK
    _WORK = (thresholds, streams)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        return pool.map(_spot, range(len(streams)))


def _grammar_alone(thresholds: Thresholds, positives, negatives) -> tuple[list[str], dict]:
    """The phrases of ``thresholds.grammar_alone`` of whose actions found by the grammar alone
    at least one was right and none false, and those actions' tally per phrase."""
    streams = positives + negatives
    tally = {phrase: {"recognized": 0, "false": 0} for phrase in sorted(thresholds.grammar_alone)}
    for stream, found in zip(streams, _hits(thresholds, streams)):
        ok, wrong = match(decide(found, stream, clear_db=thresholds.clear_db), stream.spoken)
        for hit in [hit for _, hit in ok if hit.grammar_alone]:
            tally[hit.phrase]["recognized"] += 1
        for outcome in wrong:
            if outcome.hit.grammar_alone:
                tally[outcome.hit.phrase]["false"] += 1
    for phrase, counts in tally.items():
        print(f"grammar alone {phrase}: {counts}")
    return [phrase for phrase, counts in tally.items() if counts["recognized"] and not counts["false"]], tally


def _clear(thresholds: Thresholds, positives, negatives) -> tuple[float, dict]:
    """``clear_db`` for ``thresholds``, and the actions recognized and false at each value of the grid."""
    streams = positives + negatives
    hits = _hits(thresholds, streams)

    def tally(clear_db: float) -> tuple[int, int]:
        recognized = false = 0
        for stream, found in zip(streams, hits):
            ok, wrong = match(decide(found, stream, clear_db=clear_db), stream.spoken)
            recognized, false = recognized + len(ok), false + len(wrong)
        return recognized, false

    never = tally(math.inf)
    table = {db: tally(db) for db in CLEAR_GRID}
    print(f"clear_db never: recognized {never[0]}, false {never[1]}")
    for db, (recognized, false) in table.items():
        print(f"clear_db {db:g}: recognized {recognized}, false {false}")
    clean = _last_clean(CLEAR_GRID, lambda db: table[db][1] > never[1])
    chosen = math.inf if clean is None or clean < CLEAR_MARGIN_STEPS else CLEAR_GRID[clean - CLEAR_MARGIN_STEPS]
    report = {"never": {"recognized": never[0], "false": never[1]}}
    report.update({f"{db:g}": {"recognized": r, "false": f} for db, (r, f) in table.items()})
    return chosen, report


_WORK: tuple = ()


def _measure(threshold: float) -> tuple[Counter, Counter]:
    """Recognized and false hits per (state, phrase) at one threshold for every phrase."""
    phrases, positives, negatives, rivals, wake_word = _WORK
    recognizer = Recognizer({p: threshold for p in phrases}, rivals=rivals)
    recognized: Counter = Counter()
    false: Counter = Counter()
    for stream in positives + negatives:
        outcomes, _, _ = run(recognizer, stream, wake_word=wake_word)
        for outcome in outcomes:
            if outcome.reason in ("echo", "gate"):  # play drops these at any threshold
                continue
            # The quiet set holds where play judges the coach silent, with its echo meter or
            # without one (a backend that pushes); the speaking set where, without, it spoke.
            states = ["quiet"] if not (outcome.coach_covers and outcome.coach_spoke) else []
            states += ["speaking"] if outcome.coach_spoke else []
            near = [w for w in stream.spoken if is_about(outcome, w)]
            tally = recognized if any(w.phrase == outcome.hit.phrase for w in near) else false
            for state in states:
                tally[state, outcome.hit.phrase] += 1
    recognizer.close()
    return recognized, false


def _last_clean(grid: list[float], false_at) -> int | None:
    """The index of the most permissive value of ``grid`` (strictest first) such that neither it
    nor any stricter one is ``false_at``; ``None`` where even the strictest is."""
    clean = None
    for i, value in enumerate(grid):
        if false_at(value):
            break
        clean = i
    return clean


def _choose(table, phrase: str, states: tuple[str, ...], *, grid=GRID, margin=MARGIN_STEPS) -> float:
    """The most permissive threshold with no false hit in ``states`` down to it, made ``margin`` steps stricter."""
    clean = _last_clean(grid, lambda threshold: any(table[threshold][1][state, phrase] for state in states)) or 0
    return grid[max(0, clean - margin)]


def _report(words, phrases, table, positives, negative_s: float, *, grid=GRID, margin=MARGIN_STEPS) -> dict:
    chosen = {"quiet": {}, "speaking": {}}
    report = {}
    for phrase in phrases:
        chosen["quiet"][phrase] = _choose(table, phrase, ("quiet",), grid=grid, margin=margin)
        chosen["speaking"][phrase] = _choose(table, phrase, STATES, grid=grid, margin=margin)
        report[phrase] = {}
        for state in STATES:
            recognized, false = table[chosen[state][phrase]]
            report[phrase][state] = {"recognized": recognized[state, phrase], "false": false[state, phrase]}
        print(f"{phrase:>9}: quiet {chosen['quiet'][phrase]:.2g}, speaking {chosen['speaking'][phrase]:.2g}  "
              f"{report[phrase]}")
    data = {
        "model": words.model,
        "made_by": "benchmarks/calibrate_listen.py",
        "grid": [f"{t:.3g}" for t in grid],
        "margin_steps": margin,
        "thresholds": {state: {p: float(f"{chosen[state][p]:.3g}") for p in phrases} for state in STATES},
        "calibration": report,
        "positives": sum(len(s.spoken) for s in positives),
        "negative_minutes": round(negative_s / 60, 1),
    }
    return data


if __name__ == "__main__":
    main()

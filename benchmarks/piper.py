"""Piper at its physical limit: voicecoach's cold compile with the default engine (auto) against
synthesizing the same distinct phrases with Piper directly, and the first sound of `play`.

    python benchmarks/piper.py                   # the 30-minute benchmark routine and scripts/
    python benchmarks/piper.py --minutes 5 --no-library --runs 1
    python benchmarks/piper.py --no-routine --pairs 3   # the library, limit and export alternating

- limit: the routine's distinct phrases (those auto gives Piper), synthesized by Piper itself
  -- the same model, the same synthesis and session settings (one thread, no graph
  optimization, malloc in huge pages: the fastest found, see piper_server and piper.py), one
  process per core, each loading the model once, no voicecoach code -- from launching the
  processes to the last phrase done;
- cold: `voicecoach compile ROUTINE -o x.mp3` with an empty cache, a fresh process (the
  interpreter, the model load, synthesis, mixing and encoding included), and cold / limit
  (goal <= 1.25x); the same for `voicecoach export scripts -d DIR` (the library); and the
  CPU seconds both took (all their processes): on a shared machine the wall times swing with
  the others' load, the CPU seconds much less;
- first sound of `play` with Piper, from process start (interpreter and model load included)
  to the first non-silent frame a fake device pulls: cold cache (goal <= 1.5 s) and warm
  (every clip cached by a compile before; goal <= 0.5 s), the median of --runs runs, with
  benchmarks/first_sound.py.  voicecoach's modules are compiled to bytecode first, as
  `pip install` does (a checkout run with PYTHONDONTWRITEBYTECODE=1 would compile them on
  every start: about 0.1 s more).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# One worker of the limit: plain Piper, no voicecoach import.
_WORKER = textwrap.dedent(
    """
    import json, os, sys
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # as voicecoach does: no telemetry, no stray files
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig, SynthesisConfig
    job = json.load(open(sys.argv[1]))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(job["model"], sess_options=options, providers=["CPUExecutionProvider"])
    voice = PiperVoice(session=session, config=PiperConfig.from_dict(json.load(open(job["config"]))))
    for text, length_scale in job["phrases"]:
        for chunk in voice.synthesize(text, syn_config=SynthesisConfig(length_scale=length_scale, normalize_audio=False)):
            chunk.audio_int16_bytes
    """
)


def piper_phrases(routine_files: list[Path]) -> tuple[list[tuple[str, float]], object]:
    """The distinct (text as Piper gets it, length scale) pairs that auto gives Piper, and the model."""
    sys.path.insert(0, str(ROOT))
    from voicecoach.compile import collect_phrases
    from voicecoach.errors import VoicecoachError
    from voicecoach.engines.piper import find_model, model_length_scale
    from voicecoach.pipeline import Settings, routine_vocabulary
    from voicecoach.script import load_routine
    from voicecoach.text import speech_text

    phrases: dict[tuple[str, float], None] = {}
    model = None
    for path in routine_files:
        try:
            routine = load_routine(path)
        except VoicecoachError:  # not a routine (a program file): export skips or reports it too
            continue
        settings = Settings()
        if settings.engine_for(routine) != "piper":
            continue
        speech = settings.speech_settings(routine)
        choice = find_model(speech.voice_id)
        if model is None:
            model = choice.files
        elif choice.files != model:
            raise SystemExit("the benchmark assumes one Piper voice")
        scale = model_length_scale(choice.files.config) / float(speech.rate)
        for text in collect_phrases(routine, vocab=routine_vocabulary(routine)):
            phrases.setdefault((speech_text(text), scale), None)
    return list(phrases), model


def limit_seconds(phrases: list[tuple[str, float]], model, folder: Path) -> float:
    """Piper alone: one process per core, phrases dealt round-robin, wall time to the last one."""
    cores = os.cpu_count() or 1
    jobs = []
    for index in range(cores):
        job = folder / f"limit-{index}.json"
        job.write_text(json.dumps({"model": model.model, "config": model.config, "phrases": phrases[index::cores]}))
        jobs.append(job)
    from voicecoach.engines.piper import PiperEngine

    # glibc's malloc tunables of voicecoach's Piper server (huge pages: fewer page faults): the same for both
    env = {**os.environ, "GLIBC_TUNABLES": PiperEngine.GLIBC_TUNABLES}
    began = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(job)], env=env) for job in jobs]
    if any(proc.wait() for proc in procs):
        raise SystemExit("a Piper worker failed")
    return time.perf_counter() - began


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr}")
    return time.perf_counter() - began


def first_sound(routine: Path, cache: Path) -> float:
    env = {**os.environ, "VOICECOACH_BENCH_LAUNCHED": repr(time.time())}
    proc = subprocess.run([sys.executable, str(HERE / "first_sound.py"), str(routine), str(cache)],
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"first-sound probe failed:\n{proc.stderr}")
    line = next(line for line in proc.stderr.splitlines() if line.startswith("since process start:"))
    return float(line.split(":")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=30, help="the generated routine's length (benchmarks/routines.py)")
    parser.add_argument("--library", type=Path, default=ROOT / "scripts", help="the folder `export` exports")
    parser.add_argument("--no-library", action="store_true")
    parser.add_argument("--no-routine", action="store_true", help="only the library export")
    parser.add_argument("--runs", type=int, default=3, help="first-sound runs (the median is reported)")
    parser.add_argument("--pairs", type=int, default=1,
                        help="limit and cold compile measured this many times, alternating (the median ratio is "
                             "reported): on a shared machine the others' load swings single runs by several seconds")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from bench import children_cpu_s, machine
    from routines import routine_yaml

    voicecoach = [sys.executable, "-m", "voicecoach.cli"]
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="voicecoach-piper-bench-") as tmp:
        folder = Path(tmp)
        routine = folder / f"bench-{args.minutes}.yaml"
        routine.write_text(routine_yaml(args.minutes), encoding="utf-8")
        targets = [] if args.no_routine else [
            (f"{args.minutes}-minute benchmark routine", [routine],
             [*voicecoach, "compile", str(routine), "-o", str(folder / "cold.mp3"), "--cache-dir"])]
        if not args.no_library:
            sys.path.insert(0, str(ROOT))
            from voicecoach.phone.library import find_routine_files, is_block_file

            files = [p for p in find_routine_files([args.library]) if not is_block_file(p)]
            targets.append((f"library export ({args.library.name}/, {len(files)} routines)", files,
                            [*voicecoach, "export", str(args.library), "-d", str(folder / "phone"), "--cache-dir"]))
        for index, (name, files, command) in enumerate(targets):
            phrases, model = piper_phrases(files)
            pairs = []
            for pair in range(args.pairs):
                cpu = children_cpu_s()
                limit = limit_seconds(phrases, model, folder)
                limit_cpu, cpu = children_cpu_s() - cpu, children_cpu_s()
                shutil.rmtree(folder / "phone", ignore_errors=True)  # an export into a fresh folder
                cold = timed([*command, str(folder / f"cache-{index}-{pair}")])
                pairs.append((limit, cold, limit_cpu, children_cpu_s() - cpu))
                print(f"done: {name}, pair {pair + 1}: {cold / limit:.2f}x", file=sys.stderr)
            rows.append((name, len(phrases), pairs))
        fast_start = ROOT / "scripts" / "morning.yaml"
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "voicecoach")], check=True,
                       capture_output=True)
        cold_sound = [first_sound(fast_start, folder / f"play-cold-{run}") for run in range(args.runs)]
        warm = folder / "play-warm"
        timed([*voicecoach, "compile", str(fast_start), "-o", str(folder / "warm.mp3"), "--cache-dir", str(warm)])
        warm_sound = [first_sound(fast_start, warm) for _ in range(args.runs)]
    load = os.getloadavg()
    print(f"Machine: {machine()}\n")
    print("| what | distinct Piper phrases | Piper limit | cold with auto | ratio (<= 1.25x) | CPU: limit / cold / ratio |")
    print("|---|---|---|---|---|---|")
    for name, count, pairs in rows:
        # the pair with the median ratio (its own limit: both ran under the same load)
        limit, cold, limit_cpu, cold_cpu = sorted(pairs, key=lambda p: p[1] / p[0])[len(pairs) // 2]
        ratios = "" if len(pairs) == 1 else f" (median of {len(pairs)}: {', '.join(f'{c / l:.2f}' for l, c, _, _ in pairs)})"
        print(f"| {name} | {count} | {limit:.1f} s | {cold:.1f} s | {cold / limit:.2f}x{ratios} "
              f"| {limit_cpu:.0f} s / {cold_cpu:.0f} s / {cold_cpu / limit_cpu:.2f}x |")
    print(f"\nLoad average before: {load_before[0]:.1f} (1 min); at the end: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min), "
          f"{load[2]:.1f} (15 min)")
    if not args.runs:
        return
    print(f"\nFirst sound of play (scripts/morning.yaml, Piper), from process start, median of {args.runs}: "
          f"cold {statistics.median(cold_sound):.2f} s (goal <= 1.5 s; runs {', '.join(f'{s:.2f}' for s in cold_sound)}), "
          f"warm {statistics.median(warm_sound):.2f} s (goal <= 0.5 s; runs {', '.join(f'{s:.2f}' for s in warm_sound)})")


if __name__ == "__main__":
    main()

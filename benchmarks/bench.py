"""voicecoach's speed and memory benchmark (issue 6). Not part of the test suite.

    python benchmarks/bench.py                      # 5, 15, 30, 60 minutes; naive baseline up to 30
    python benchmarks/bench.py --minutes 5 15 --naive-max 15

With espeak (the engine the naive baseline uses too; benchmarks/piper.py measures Piper and
the default engine, auto).  For each generated routine (benchmarks/routines.py) it measures,
each in a fresh process:
- cold: compile to MP3 with an empty cache;
- naive: the baseline of benchmarks/naive.py on the same timeline (pyttsx3 per cue, pydub
  concatenation, pydub/ffmpeg MP3), and the ratio naive / cold (target >= 10);
- incremental: compile again after editing one phrase (all other clips cached, the track
  not), against the bare cost of encoding the same PCM with lameenc at the same settings
  (target <= 1.5x), and how many clips it synthesized (target 1);
- unchanged: compile again with nothing changed (track from the cache);
- peak RSS of the cold compile (target < 150 MB at 60 minutes), of the unchanged one (the track
  read from the cache) and of `export` to MP3 (the track streamed into the encoder);
- first sound of `play` with a fake audio backend, cached and cold (targets 0.3 s and 1 s),
  when the player is available.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Each measurement runs in its own interpreter so that peak RSS is its own.
_RUNNER = textwrap.dedent(
    """
    import json, resource, sys, time
    sys.path.insert(0, {here!r})
    kind, routine, cache, out = sys.argv[1:5]
    began = time.perf_counter()
    result = {{}}
    if kind == "compile":
        from voicecoach.pipeline import Settings, build, export
        settings = Settings(engine="espeak", cache_dir=cache)
        built = build(routine, settings=settings)
        export(built, out, settings=settings)
        result.update(synthesized=built.speech.stats.synthesized, track_cached=built.track_was_cached,
                      duration_s=built.timeline.duration_s)
    elif kind == "export":  # `voicecoach export` to MP3, the track cached: streamed, never held whole
        from voicecoach.phone.library import LibrarySettings, export_library
        from voicecoach.pipeline import Settings
        report = export_library([routine], out, settings=Settings(engine="espeak", cache_dir=cache), library=LibrarySettings(jobs=1))
        assert not report.failed
    elif kind == "naive":
        import warnings
        warnings.simplefilter("ignore")
        from naive import naive_compile
        from voicecoach.pipeline import Settings, build
        timeline = build(routine, settings=Settings(engine="espeak", cache_dir=cache)).timeline  # cached: not timed below
        began = time.perf_counter()
        naive_compile(timeline, out)
    elif kind == "encode":
        import lameenc, numpy as np
        from voicecoach.pipeline import Settings, build
        settings = Settings(engine="espeak", cache_dir=cache)
        pcm = np.concatenate(list(build(routine, settings=settings).chunks())).astype("<i2").tobytes()
        began = time.perf_counter()
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(settings.bitrate_kbps); encoder.set_in_sample_rate(settings.sample_rate)
        encoder.set_out_sample_rate(settings.sample_rate); encoder.set_channels(1)
        encoder.set_quality(settings.mp3_quality)
        with open(out, "wb") as handle:
            handle.write(encoder.encode(pcm)); handle.write(encoder.flush())
    result["seconds"] = time.perf_counter() - began
    # the largest process: this one, or a worker it ran (export)
    result["peak_rss_mb"] = max(resource.getrusage(who).ru_maxrss
                                for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(json.dumps(result))
    """
).format(here=str(HERE))


def run(kind: str, routine: Path, cache: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, kind, str(routine), str(cache), str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )
    if proc.returncode:
        raise SystemExit(f"{kind} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def first_sound(routine: Path, cache: Path) -> float | None:
    """Seconds from `play` starting to its first non-silent frame, with a fake backend."""
    try:
        from voicecoach.play import player  # noqa: F401  (issue 3)
    except ImportError:
        return None
    probe = HERE / "first_sound.py"
    if not probe.exists():
        return None
    proc = subprocess.run([sys.executable, str(probe), str(routine), str(cache), "--engine", "espeak"],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"first-sound probe failed:\n{proc.stderr}")
    return float(proc.stdout.strip().splitlines()[-1])


def bench(minutes: int, folder: Path, *, naive: bool) -> dict:
    sys.path.insert(0, str(HERE))
    from routines import routine_yaml

    routine = folder / f"bench-{minutes}.yaml"
    routine.write_text(routine_yaml(minutes), encoding="utf-8")
    cache = folder / f"cache-{minutes}"
    row: dict = {"minutes": minutes}
    cold = run("compile", routine, cache, folder / "cold.mp3")
    row.update(duration_min=cold["duration_s"] / 60, cold_s=cold["seconds"], cold_rss_mb=cold["peak_rss_mb"])
    unchanged = run("compile", routine, cache, folder / "again.mp3")
    row.update(unchanged_s=unchanged["seconds"], unchanged_track_cached=unchanged["track_cached"],
               unchanged_rss_mb=unchanged["peak_rss_mb"])
    row["export_rss_mb"] = run("export", routine, cache, folder / f"phone-{minutes}")["peak_rss_mb"]
    # Edit one phrase: only its clip is new, and the track must be mixed again.
    text = routine.read_text(encoding="utf-8")
    routine.write_text(text.replace("cue: Lift now, round 1.", "cue: Lift slowly now, round 1.", 1), encoding="utf-8")
    incremental = run("compile", routine, cache, folder / "edit.mp3")
    encode = run("encode", routine, cache, folder / "bare.mp3")
    row.update(
        incremental_s=incremental["seconds"], incremental_synthesized=incremental["synthesized"],
        bare_encode_s=encode["seconds"], incremental_ratio=incremental["seconds"] / encode["seconds"],
    )
    if naive:
        baseline = run("naive", routine, cache, folder / "naive.mp3")
        row.update(naive_s=baseline["seconds"], speedup=baseline["seconds"] / cold["seconds"])
    cold_cache = folder / f"cold-play-{minutes}"
    row["first_sound_cold_s"] = first_sound(routine, cold_cache)
    row["first_sound_cached_s"] = first_sound(routine, cache)
    return row


def table(rows: list[dict]) -> str:
    def f(value, fmt="{:.2f}"):
        return "n/a" if value is None else fmt.format(value)

    lines = [
        "| routine | cold compile | naive | speedup (>= 10x) | unchanged | incremental / bare encode (<= 1.5x) "
        "| clips re-synthesized | peak RSS cold / unchanged / export (< 150 MB) "
        "| first sound cached / cold (0.3 s / 1 s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['duration_min']:.0f} min | {r['cold_s']:.1f} s | {f(r.get('naive_s'), '{:.1f} s')} "
            f"| {f(r.get('speedup'), '{:.1f}x')} | {r['unchanged_s']:.1f} s "
            f"| {r['incremental_s']:.1f} s / {r['bare_encode_s']:.1f} s = {r['incremental_ratio']:.2f}x "
            f"| {r['incremental_synthesized']} "
            f"| {r['cold_rss_mb']:.0f} / {r['unchanged_rss_mb']:.0f} / {r['export_rss_mb']:.0f} MB "
            f"| {f(r.get('first_sound_cached_s'), '{:.2f} s')} / {f(r.get('first_sound_cold_s'), '{:.2f} s')} |"
        )
    return "\n".join(lines)


def children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes (and theirs) so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, nargs="+", default=[5, 15, 30, 60])
    parser.add_argument("--naive-max", type=int, default=30, help="run the (slow, quadratic) baseline up to this length")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="voicecoach-bench-") as folder:
        for minutes in args.minutes:
            rows.append(bench(minutes, Path(folder), naive=minutes <= args.naive_max))
            print(f"done: {minutes} min", file=sys.stderr)
    print(f"Machine: {machine()}\n")
    print(table(rows))
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

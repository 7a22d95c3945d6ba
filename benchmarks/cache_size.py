"""The cache's size and warm-compile speed: compact entries against raw PCM, in the same run.

Goal (issue 16): the library's cache (every routine in scripts/, one voice) at most a quarter
of its size with raw PCM entries, and a warm compile (track from the cache, encoded to MP3)
no more than 10 % slower.

The baseline is the code just before compact entries (``--baseline``, a git revision: the
same cache keys, entries as raw PCM), unpacked from git into a temporary folder.  Both sides
compile every routine cold into their own cache, then warm (``--repeats`` times, old and new
alternating, each a fresh ``voicecoach compile`` process), and the sizes and times are compared.

    python benchmarks/cache_size.py                 # about 10 minutes on 2 cores
    python benchmarks/cache_size.py --routines scripts/morning.yaml --repeats 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "6b95a44"  # cache keys by settings_key, entries still raw PCM (.pcm)


def unpack(revision: str, into: Path) -> Path:
    """The ``voicecoach`` package of ``revision``, in ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision, "voicecoach"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def compile_once(source: Path, routine: Path, out: Path, cache: Path) -> float:
    """Wall time of one ``voicecoach compile`` process with the code of ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source), "VOICECOACH_CACHE_MAX": "none"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "voicecoach.cli", "compile", str(routine), "-o", str(out),
                           "--cache-dir", str(cache)], env=env, capture_output=True, text=True,
                          cwd=out.parent)  # not the repository: `-m` puts the current folder first on sys.path
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"compile failed with {source}: {done.stderr.strip()}")
    return elapsed


def entry_bytes(cache: Path) -> dict[str, int]:
    """Bytes of entries by kind (temporary files excluded)."""
    sizes = {"clips": 0, "tracks": 0}
    for kind in sizes:
        for path in (cache / kind).rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                sizes[kind] += path.stat().st_size
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help="git revision with raw PCM entries")
    parser.add_argument("--routines", nargs="*", type=Path, default=sorted((ROOT / "scripts").glob("*.yaml")))
    parser.add_argument("--repeats", type=int, default=3, help="warm compiles per routine and side")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vc-cache-bench-") as tmp:
        work = Path(tmp)
        sides = {"raw PCM (old)": unpack(args.baseline, work / "old"), "compact (new)": ROOT}
        caches = {name: work / f"cache-{i}" for i, name in enumerate(sides)}
        cold = {name: 0.0 for name in sides}
        warm: dict[str, list[float]] = {name: [] for name in sides}
        for routine in args.routines:
            for name, source in sides.items():
                cold[name] += compile_once(source, routine, work / "out.mp3", caches[name])
        old_name, new_name = sides
        if not any(caches[old_name].rglob("*.pcm")) or any(caches[new_name].rglob("*.pcm")):
            raise SystemExit("the baseline did not write raw .pcm entries: both sides ran the same code?")
        for _ in range(args.repeats):
            for routine in args.routines:
                for name, source in sides.items():
                    warm[name].append(compile_once(source, routine, work / "out.mp3", caches[name]))

        sizes = {name: entry_bytes(caches[name]) for name in sides}
        print(f"{len(args.routines)} routines, {args.repeats} warm compiles each per side; "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"| cache | clips | tracks | total | cold compiles | warm compiles (sum of medians) |")
        print("|---|---|---|---|---|---|")
        per_routine = {name: [statistics.median(warm[name][i::len(args.routines)])
                              for i in range(len(args.routines))] for name in sides}
        for name in sides:
            s = sizes[name]
            print(f"| {name} | {s['clips'] / 1e6:.1f} MB | {s['tracks'] / 1e6:.1f} MB | "
                  f"{(s['clips'] + s['tracks']) / 1e6:.1f} MB | {cold[name]:.1f} s | {sum(per_routine[name]):.1f} s |")
        total = {name: sum(sizes[name].values()) for name in sides}
        ratio_size = total[new_name] / total[old_name]
        ratio_warm = sum(per_routine[new_name]) / sum(per_routine[old_name])
        print(f"size new/old: {ratio_size:.3f} (goal <= 0.25); warm compile new/old: {ratio_warm:.3f} (goal <= 1.10); "
              f"cold compile new/old: {cold[new_name] / cold[old_name]:.3f}")


if __name__ == "__main__":
    main()

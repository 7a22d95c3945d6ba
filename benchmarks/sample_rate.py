"""The track's sample rate: a compile at 44.1 kHz against 22.05 kHz (the default for speech and
tones, see README *Sample rate*), in the same run, on the same generated routine.

Each side compiles the routine to MP3 in a fresh process with an empty cache (cold: Piper
synthesis, mixing, encoding), then ``--repeats`` times with every clip cached and the track
not (mixing and encoding only: what an edited routine's recompile costs), the two rates
alternating.  Printed: wall seconds and CPU seconds (all processes) per run.

    python benchmarks/sample_rate.py                  # the 30-minute routine, about 3 minutes
    python benchmarks/sample_rate.py --minutes 5 --repeats 1
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.append(str(HERE))  # appended: benchmarks/piper.py must not shadow the piper package
from bench import children_cpu_s, machine  # noqa: E402
RATES = (44100, 22050)

_COMPILE = (
    "import sys\n"
    "from pathlib import Path\n"
    "from voicecoach.pipeline import Settings, compile_to\n"
    "rate, routine, out, cache = int(sys.argv[1]), *map(Path, sys.argv[2:])\n"
    "compile_to(routine, out, settings=Settings(sample_rate=rate, cache_dir=cache))\n"
)


def compiled(rate: int, routine: Path, out: Path, cache: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one compile in a fresh process."""
    cpu, began = children_cpu_s(), time.perf_counter()
    subprocess.run([sys.executable, "-c", _COMPILE, str(rate), str(routine), str(out), str(cache)],
                   check=True, cwd=ROOT)
    return time.perf_counter() - began, children_cpu_s() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=30, help="the generated routine's length (benchmarks/routines.py)")
    parser.add_argument("--repeats", type=int, default=2, help="compiles with the clips cached, per rate")
    args = parser.parse_args()
    from routines import routine_yaml

    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="voicecoach-rate-bench-") as tmp:
        folder = Path(tmp)
        routine = folder / f"bench-{args.minutes}.yaml"
        routine.write_text(routine_yaml(args.minutes), encoding="utf-8")
        cold = {rate: compiled(rate, routine, folder / f"cold-{rate}.mp3", folder / f"cache-{rate}") for rate in RATES}
        warm: dict[int, list[tuple[float, float]]] = {rate: [] for rate in RATES}
        for _ in range(args.repeats):
            for rate in RATES:
                shutil.rmtree(folder / f"cache-{rate}" / "tracks", ignore_errors=True)  # mix again, clips cached
                warm[rate].append(compiled(rate, routine, folder / f"warm-{rate}.mp3", folder / f"cache-{rate}"))
        print(f"\n{args.minutes}-minute routine, MP3 96 kbps")
        print("| track rate | cold: wall / CPU | clips cached: wall / CPU (each run) |")
        print("|---|---|---|")
        for rate in RATES:
            runs = ", ".join(f"{w:.1f} s / {c:.1f} s" for w, c in warm[rate])
            print(f"| {rate} Hz | {cold[rate][0]:.1f} s / {cold[rate][1]:.1f} s | {runs} |")
        (wall_a, cpu_a), (wall_b, cpu_b) = cold[RATES[0]], cold[RATES[1]]
        print(f"\ncold 22.05 / 44.1 kHz: wall {wall_b / wall_a:.2f}, CPU {cpu_b / cpu_a:.2f}")
        mix_a = min(c for _, c in warm[RATES[0]])
        mix_b = min(c for _, c in warm[RATES[1]])
        print(f"clips cached 22.05 / 44.1 kHz (least CPU of the runs): CPU {mix_b / mix_a:.2f}")


if __name__ == "__main__":
    main()
